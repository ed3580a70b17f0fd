import { OpenAPIHono } from '@hono/zod-openapi';
import type { ApiDeps, AppEnv } from '../deps.js';

/** PLACEHOLDER (issue 7 scaffolding): user behaviour dashboards, CSV exports, ingest keys. */
export function analyticsRoutes(_deps: ApiDeps) {
  return new OpenAPIHono<AppEnv>();
}
