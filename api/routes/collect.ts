import { OpenAPIHono } from '@hono/zod-openapi';
import type { Handler } from 'hono';
import type { ApiDeps, AppEnv } from '../deps.js';
import { AppError } from '../../lib/errors.js';

/** PLACEHOLDER (issue 7 scaffolding): POST /api/v1/collect, mounted before the session middleware. */
export function collectEdge(_deps: ApiDeps): Handler<AppEnv> {
  return () => {
    throw new AppError(503, 'not_implemented', 'collect is being built');
  };
}

/** The collect route's documentation in the OpenAPI document (the handler is collectEdge). */
export function collectRoutes(_deps: ApiDeps) {
  return new OpenAPIHono<AppEnv>();
}
