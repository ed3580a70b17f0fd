import { OpenAPIHono } from '@hono/zod-openapi';
import type { ApiDeps, AppEnv } from '../deps.js';

/** Routes of the accounts part of issue 3. */
export function accountRoutes(deps: ApiDeps) {
  void deps;
  return new OpenAPIHono<AppEnv>();
}
