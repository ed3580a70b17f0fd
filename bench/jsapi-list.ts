import { serve } from '@hono/node-server';
import { spawn } from 'node:child_process';
import { Hono } from 'hono';
import { fileURLToPath } from 'node:url';
import { QueryTypes } from 'sequelize';
import { jsapiListQuery, listJsapis } from '../api/routes/jsapis.js';
import { createSequelize } from '../db/index.js';
import { waitForPort } from '../temporal/dev-server.js';
import { fmt, freePort, session, startPlatform } from './harness.js';
import { load } from './load.js';

/**
 * The JSAPI list with search at 10,000 entries in one workspace: GET …/jsapis?q=<term> (50 per
 * page, with the category and permission-level counts) with 50 connections, against the same SQL
 * and shaping served by a bare Hono route in a child process, both measured in this run.
 *   BENCH_SECONDS (default 10), BENCH_TERM (default "location").
 * Run with JSAPI_BENCH_BARE_PORT set, this file is that bare server.
 */
const bareMode = process.env.JSAPI_BENCH_BARE_PORT;

if (bareMode) {
  const sequelize = createSequelize(process.env.DATABASE_URL!, { pool: 20 });
  const app = new Hono().get('/jsapis/:workspaceId', async (c) =>
    c.json(await listJsapis(sequelize, c.req.param('workspaceId'), { q: c.req.query('q') }, { limit: 50 })));
  serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(bareMode) }, () => console.error('[bare] listening'));
} else {
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  const term = process.env.BENCH_TERM ?? 'location';
  const connections = 50;
  const entries = 10_000;
  const p = await startPlatform();
  const barePort = await freePort();
  const bare = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, DATABASE_URL: p.env.DATABASE_URL, JSAPI_BENCH_BARE_PORT: String(barePort) }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    // The workspace got the built-in catalog from the trigger; vendor variants of it fill it up to 10,000.
    await p.sequelize.query(
      `INSERT INTO jsapis (workspace_id, name, category, description, params, result, permission_level, min_host_version, status, builtin)
       SELECT :ws, b.name || 'V' || g, b.category, b.description || ' Vendor variant ' || g || ' for partner host apps.', b.params, b.result, b.permission_level,
              b.min_host_version, b.status, false
       FROM generate_series(1, 200) g CROSS JOIN jsapi_builtins b
       ORDER BY g, b.name
       LIMIT :n - (SELECT count(*) FROM jsapis WHERE workspace_id = :ws)`,
      { replacements: { ws: p.workspaceId, n: entries } },
    );
    await p.sequelize.query('ANALYZE jsapis');
    const [{ n }] = (await p.sequelize.query<{ n: number }>('SELECT count(*)::int AS n FROM jsapis WHERE workspace_id = :ws', { replacements: { ws: p.workspaceId }, type: QueryTypes.SELECT })) as [{ n: number }];
    const [{ trgm }] = (await p.sequelize.query<{ trgm: boolean }>(`SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'jsapis_search_trgm_idx') AS trgm`, { type: QueryTypes.SELECT })) as [{ trgm: boolean }];
    const { sql, replacements } = jsapiListQuery(p.workspaceId, { q: term }, { limit: 50 });
    const plan = await p.sequelize.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS OFF) ${sql}`, { replacements, type: QueryTypes.SELECT });

    await waitForPort(barePort);
    const dev = await session(p.baseUrl, 'developer@bench.test');
    const path = `/api/v1/workspaces/${p.workspaceId}/jsapis?q=${encodeURIComponent(term)}&limit=50`;
    const check = (await dev.get(path)) as { items: unknown[]; total: number };
    const bareUrl = `http://127.0.0.1:${barePort}/jsapis/${p.workspaceId}?q=${encodeURIComponent(term)}`;
    const bareCheck = (await (await fetch(bareUrl)).json()) as { items: unknown[]; total: number };
    if (check.items.length !== 50 || bareCheck.total !== check.total) throw new Error(`unexpected answers: api ${check.items.length}/${check.total}, bare ${bareCheck.items.length}/${bareCheck.total}`);

    await load(p.baseUrl + path, { connections, seconds: 2, headers: { cookie: dev.headers.cookie } }); // warm-up
    await load(bareUrl, { connections, seconds: 2 });
    const api = await load(p.baseUrl + path, { connections, seconds, headers: { cookie: dev.headers.cookie } });
    const base = await load(bareUrl, { connections, seconds });
    console.log(`entries in the workspace: ${n}; search term "${term}" matches ${check.total}; trigram index: ${trgm ? 'yes' : 'no (prefix index fallback)'}`);
    console.log(`list query plan: ${plan.map((r) => r['QUERY PLAN']).filter((l) => /Scan|Execution/.test(l)).map((l) => l.trim()).join(' | ')}`);
    console.log(`jsapis?q=${term}, API (auth + validation), ${connections} connections ${seconds}s: ${api.rps.toFixed(0)} req/s   p50 ${fmt(api.p50)}   p99 ${fmt(api.p99)}   errors ${api.errors}`);
    console.log(`jsapis?q=${term}, bare Hono + same SQL,  ${connections} connections ${seconds}s: ${base.rps.toFixed(0)} req/s   p50 ${fmt(base.p50)}   p99 ${fmt(base.p99)}   errors ${base.errors}`);
    console.log(`throughput ratio API/bare: ${(api.rps / base.rps).toFixed(2)}`);
  } finally {
    bare.kill('SIGTERM');
    await p.stop();
  }
}
