import { OpenAPIHono } from '@hono/zod-openapi';
import type { ApiDeps, AppEnv } from '../deps.js';

/** Routes of the testers part of issue 3. */
export function testerRoutes(deps: ApiDeps) {
  void deps;
  return new OpenAPIHono<AppEnv>();
}
