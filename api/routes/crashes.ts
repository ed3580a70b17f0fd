import { OpenAPIHono } from '@hono/zod-openapi';
import type { ApiDeps, AppEnv } from '../deps.js';

/** PLACEHOLDER (issue 7 scaffolding): crash groups, resolve/reopen, crash rate per version. */
export function crashRoutes(_deps: ApiDeps) {
  return new OpenAPIHono<AppEnv>();
}
