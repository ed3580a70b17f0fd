import { OpenAPIHono } from '@hono/zod-openapi';
import type { ApiDeps, AppEnv } from '../deps.js';

/** (placeholder: filled in by the issue-6 work) */
export function preferencesRoutes(_deps: ApiDeps) {
  return new OpenAPIHono<AppEnv>();
}
