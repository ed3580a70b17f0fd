import { OpenAPIHono } from '@hono/zod-openapi';
import type { ApiDeps, AppEnv } from '../deps.js';

/** Routes of the members part of issue 3. */
export function memberRoutes(deps: ApiDeps) {
  void deps;
  return new OpenAPIHono<AppEnv>();
}
