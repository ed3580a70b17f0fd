import { OpenAPIHono } from '@hono/zod-openapi';
import { serveStatic } from '@hono/node-server/serve-static';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { ApiDeps, AppEnv } from './deps.js';
import { onError } from './errors.js';
import { authenticate, csrf, publicRoute, requestId } from './middleware.js';
import { contentSecurityPolicy, inlineScriptHashes, jsonOnlyWhenAnonymous, securityHeaders } from './security.js';
import { accountRoutes } from './routes/accounts.js';
import { authRoutes } from './routes/auth.js';
import { memberRoutes } from './routes/members.js';
import { testerRoutes } from './routes/testers.js';
import { eventRoutes } from './routes/events.js';
import { miniProgramRoutes } from './routes/mini-programs.js';
import { versionRoutes } from './routes/versions.js';
import { runtimeEdge, runtimeRoutes } from './routes/runtime.js';
import { webhookRoutes } from './routes/webhooks.js';
import { reviewRoutes } from './routes/reviews.js';
import { pipelineRoutes } from './routes/pipelines.js';
import { authorizationRoutes } from './routes/authorizations.js';
import { jsapisRoutes } from './routes/jsapis.js';
import { featuresRoutes } from './routes/features.js';
import { hostAppsRoutes } from './routes/host-apps.js';
import { workspaceSettingsRoutes } from './routes/workspace-settings.js';
import { feedbackRoutes } from './routes/feedback.js';
import { brandingRoutes } from './routes/branding.js';
import { preferencesRoutes } from './routes/preferences.js';
import { analyticsRoutes } from './routes/analytics.js';
import { crashRoutes } from './routes/crashes.js';
import { collectEdge, collectPreflight, collectRoutes } from './routes/collect.js';
import { sdkHandler } from './routes/sdk.js';
import { createIngest } from '../lib/analytics/wiring.js';
import { AppError } from '../lib/errors.js';

/** The API's human index: the routes of the OpenAPI document. */
const docsPage = `<!doctype html><html><head><title>mpdp API</title><meta charset="utf-8"><link rel="icon" href="data:,">
<style>body{font:15px/1.5 system-ui,sans-serif;margin:0;background:#f6f7fb;color:#1d2433}main{max-width:980px;margin:0 auto;padding:32px}h1{margin:0 0 4px}code{background:#eef1f7;padding:1px 5px;border-radius:4px}
.op{background:#fff;border:1px solid #e3e7ef;border-radius:10px;padding:12px 16px;margin:10px 0}.m{display:inline-block;min-width:58px;font-weight:700;font-size:12px;text-transform:uppercase;color:#fff;border-radius:5px;padding:2px 8px;margin-right:10px;text-align:center}
.get{background:#2f80ed}.post{background:#27ae60}.put{background:#f2994a}.delete{background:#eb5757}.tag{color:#6b7385;font-size:13px}</style></head>
<body><main><h1>mpdp API</h1><p>The OpenAPI document: <a href="/api/v1/openapi.json"><code>/api/v1/openapi.json</code></a></p><div id="ops">Loading…</div></main>
<script>fetch('/api/v1/openapi.json').then(r=>r.json()).then(d=>{const o=document.getElementById('ops');o.innerHTML='';for(const [p,ms] of Object.entries(d.paths))for(const [m,op] of Object.entries(ms)){const e=document.createElement('div');e.className='op';e.innerHTML='<span class="m '+m+'">'+m+'</span><code></code><div class="tag"></div>';e.querySelector('code').textContent='/api/v1'+p;e.querySelector('.tag').textContent=(op.tags||[]).join(', ')+' — '+(op.summary||'');o.appendChild(e)}})</script></body></html>`;

/** Builds the whole HTTP app over its dependencies; server.ts is the only file that listens. */
export function createApp(given: ApiDeps) {
  // One ingest buffer per API process: events are batched in memory and written by its flusher.
  const deps: ApiDeps & { ingest: NonNullable<ApiDeps['ingest']> } = { ...given, ingest: given.ingest ?? createIngest(given) };
  const api = new OpenAPIHono<AppEnv>({
    // Every validation failure has the same shape: 400, a code, and the bad fields.
    defaultHook: (result) => {
      if (!result.success) {
        const fields = z.flattenError(result.error as z.ZodError).fieldErrors as Record<string, string[]>;
        const first = Object.entries(fields)[0];
        throw new AppError(400, 'validation_failed', first ? `${first[0]}: ${first[1]?.[0]}` : (result.error as z.ZodError).issues[0]?.message ?? 'invalid input', { fields });
      }
    },
  })
    .route('/', authRoutes(deps))
    .route('/', accountRoutes(deps))
    .route('/', memberRoutes(deps))
    .route('/', testerRoutes(deps))
    .route('/', miniProgramRoutes(deps))
    .route('/', versionRoutes(deps))
    .route('/', eventRoutes(deps))
    .route('/', runtimeRoutes(deps))
    .route('/', webhookRoutes(deps))
    .route('/', reviewRoutes(deps))
    .route('/', pipelineRoutes(deps))
    .route('/', authorizationRoutes(deps))
    .route('/', jsapisRoutes(deps))
    .route('/', featuresRoutes(deps))
    .route('/', hostAppsRoutes(deps))
    .route('/', workspaceSettingsRoutes(deps))
    .route('/', feedbackRoutes(deps))
    .route('/', brandingRoutes(deps))
    .route('/', preferencesRoutes(deps))
    .route('/', collectRoutes(deps))
    .route('/', analyticsRoutes(deps))
    .route('/', crashRoutes(deps));

  api.get('/sample-package', publicRoute, (c) => {
    const file = path.join(deps.config.dataDir, 'sample-package.zip');
    if (!existsSync(file)) throw new AppError(404, 'not_found', 'No sample package on this server');
    return c.body(new Uint8Array(readFileSync(file)), 200, { 'Content-Type': 'application/zip', 'Content-Disposition': 'attachment; filename="mpdp-sample-shop-1.0.0.zip"' });
  });
  api.get('/health', publicRoute, async (c) => {
    await deps.sequelize.query('SELECT 1');
    return c.json({ ok: true }, 200);
  });
  api.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: { title: 'mpdp API', version: '1', description: 'Mini Program Development Platform. Console: session cookie + X-CSRF-Token; CLI: Authorization: Bearer <token>.' },
  });
  api.notFound((c) => c.json({ error: { code: 'not_found', message: `No route ${c.req.method} ${c.req.path}`, details: {}, requestId: c.get('requestId') } }, 404));

  const app = new OpenAPIHono<AppEnv>();
  app.onError(onError);
  // Host apps' hot path first: it ends here, before the console's middleware (documented in the API above).
  app.get('/api/v1/runtime/mini-programs/:miniProgramId/resolve', publicRoute, async (c, next) => {
    c.header('X-Content-Type-Options', 'nosniff');
    await next();
  }, runtimeEdge(deps));
  // Event ingest: host apps and trackers, authenticated by key or signature, never by session.
  app.post('/api/v1/collect', publicRoute, collectEdge(deps));
  app.options('/api/v1/collect', publicRoute, collectPreflight());
  // The JavaScript tracker mini programs embed (public, cacheable; with or without the console).
  app.get('/sdk/:file', publicRoute, sdkHandler());
  const indexFile = deps.webRoot ? path.join(deps.webRoot, 'index.html') : undefined;
  app.use('*', securityHeaders({ indexFile }));
  app.use('*', requestId);
  app.use('/api/*', authenticate(deps.sequelize, deps.pool));
  app.use('/api/*', csrf);
  app.use('/api/*', jsonOnlyWhenAnonymous);
  app.route('/api/v1', api);
  app.get('/api/docs', (c) => {
    c.header('Content-Security-Policy', contentSecurityPolicy(inlineScriptHashes(docsPage)));
    return c.html(docsPage);
  });

  if (deps.webRoot && existsSync(deps.webRoot)) {
    const root = path.relative(process.cwd(), deps.webRoot) || '.';
    const indexFile = path.join(deps.webRoot, 'index.html');
    app.use('/*', serveStatic({ root }));
    // The console is a single-page app: any other non-API path gets its shell (read per request,
    // so a rebuilt console is served without a restart).
    app.get('*', (c) => (c.req.path.startsWith('/api/') ? c.json({ error: { code: 'not_found', message: 'No such route', details: {}, requestId: c.get('requestId') } }, 404) : c.html(readFileSync(indexFile, 'utf8'))));
  }
  return { app, api, ingest: deps.ingest };
}

export type AppType = ReturnType<typeof createApp>['api'];
