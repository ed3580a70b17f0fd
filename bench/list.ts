import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../temporal/binary.js';
import { waitForPort } from '../temporal/dev-server.js';
import { fmt, freePort, session, startPlatform } from './harness.js';
import { load } from './load.js';

/**
 * GET the mini program list (50 items, signed in) with 50 connections for 10 s, against the
 * same SQL and mapping served by a bare Hono route, both measured in this run.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = 50;
const p = await startPlatform();
const barePort = await freePort();
const bare = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'bench/bare-list-server.ts')], { env: { ...process.env, DATABASE_URL: p.env.DATABASE_URL, PORT: String(barePort) }, stdio: ['ignore', 'ignore', 'inherit'] });
try {
  await p.sequelize.query(
    `INSERT INTO mini_programs (id, workspace_id, name, description, category, icon, status, version_count, created_by, created_at, updated_at, seq)
     SELECT 'mp_bench_' || g, :ws, 'Bench program ' || g, 'A mini program for the list benchmark', 'shopping', NULL, 'released', 3, 'usr_b_dev', now() - (g || ' minutes')::interval, now(), 1
     FROM generate_series(1, 60) g`,
    { replacements: { ws: p.workspaceId } },
  );
  await waitForPort(barePort);
  const dev = await session(p.baseUrl, 'developer@bench.test');
  const apiUrl = `${p.baseUrl}/api/v1/workspaces/${p.workspaceId}/mini-programs?limit=50`;
  const check = (await dev.get(`/api/v1/workspaces/${p.workspaceId}/mini-programs?limit=50`)) as { items: unknown[] };
  if (check.items.length !== 50) throw new Error(`expected 50 items, got ${check.items.length}`);

  await load(apiUrl, { connections, seconds: 2, headers: { cookie: dev.headers.cookie } }); // warm-up
  await load(`http://127.0.0.1:${barePort}/list/${p.workspaceId}`, { connections, seconds: 2 });
  const api = await load(apiUrl, { connections, seconds, headers: { cookie: dev.headers.cookie } });
  const base = await load(`http://127.0.0.1:${barePort}/list/${p.workspaceId}`, { connections, seconds });
  console.log(`list, API (auth + validation), ${connections} connections ${seconds}s: ${api.rps.toFixed(0)} req/s   p50 ${fmt(api.p50)}   p99 ${fmt(api.p99)}   errors ${api.errors}`);
  console.log(`list, bare Hono + same SQL,  ${connections} connections ${seconds}s: ${base.rps.toFixed(0)} req/s   p50 ${fmt(base.p50)}   p99 ${fmt(base.p99)}   errors ${base.errors}`);
  console.log(`throughput ratio API/bare: ${(api.rps / base.rps).toFixed(2)}  (target >= 0.6)`);
} finally {
  bare.kill('SIGTERM');
  await p.stop();
}
