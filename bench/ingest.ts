import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { dropDatabase, migrate } from '../db/index.js';
import { generateEvents } from '../lib/analytics/generate.js';
import { copyIn, copyText } from '../lib/analytics/pg-copy.js';
import type { AnalyticsEvent } from '../lib/analytics/types.js';
import { startSmtpPeer } from '../lib/smtp-peer.js';
import { findOrBuildTemporal, repoRoot } from '../temporal/binary.js';
import { startDevServer, waitForPort } from '../temporal/dev-server.js';
import { readFileSync } from 'node:fs';
import { freePort } from './harness.js';

/** CPU seconds a process has used (Linux /proc; 0 when it is gone). */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * Sustained analytics ingest: the real API process (api/server.ts over a fresh PostgreSQL database)
 * takes realistic 500-event batches on POST /api/v1/collect (mini program ingest keys) from several
 * keep-alive connections for BENCH_SECONDS (default 60). Prints the events per second written to
 * PostgreSQL (rows counted there), a bare COPY of the same rows into the same table in the same
 * run, the ratio, and the API process's memory (RSS and heap, peak and at the end).
 *
 * BENCH_CONNECTIONS (default 8) concurrent connections; ANALYTICS_* settings pass to the API.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 60);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 8);
const batch = 500;
const dayMs = 86_400_000;
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;

// The platform pieces the API needs: Temporal (the API connects at start; events never touch it), SMTP, a database.
const temporalPort = await freePort();
const temporalProc = await startDevServer({
  binary: findOrBuildTemporal(), dataDir: mkdtempSync(path.join(os.tmpdir(), 'mpdp-bench-t-')), port: temporalPort, uiPort: 0, namespace: 'default', persistent: false, ui: false,
});
const databaseUrl = `postgres://postgres@127.0.0.1:5432/mpdp_bench_${randomBytes(4).toString('hex')}`;
await migrate(databaseUrl);
const smtp = await startSmtpPeer();
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mpdp-bench-'));
const apiPort = await freePort();
const pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });

// A workspace with two mini programs (three versions each) and two host apps.
const workspaceId = 'ws_bench_ingest';
const hostApps = ['ha_bench_1', 'ha_bench_2'];
const programs = ['mp_bench_shop', 'mp_bench_news'].map((id) => ({ id, versions: [1, 2, 3].map((v) => `${id}_v${v}`), key: '' }));
await pool.query(`INSERT INTO workspaces (id, name, code, type) VALUES ($1, 'Bench ingest', 'BENCHI', 'merchant')`, [workspaceId]);
for (const h of hostApps) await pool.query(`INSERT INTO host_apps (id, workspace_id, name, platform, bundle_id) VALUES ($1, $2, $1, 'ios', $1)`, [h, workspaceId]);
for (const p of programs) {
  const { rows: [row] } = await pool.query<{ ingest_key: string }>(
    `INSERT INTO mini_programs (id, workspace_id, name, status, created_by, created_at, updated_at, seq) VALUES ($1, $2, $1, 'active', 'bench', now(), now(), 1) RETURNING ingest_key`,
    [p.id, workspaceId],
  );
  p.key = row!.ingest_key;
  for (const [i, v] of p.versions.entries()) {
    await pool.query(`INSERT INTO versions (id, mini_program_id, workspace_id, version, status, package_sha256, package_size, page_count, created_by, created_at, updated_at, seq)
      VALUES ($1, $2, $3, $4, 'released', 'x', 1, 1, 'bench', now(), now(), $5)`, [v, p.id, workspaceId, `1.${i}.0`, i + 1]);
  }
}

// Realistic batches (sessions of launches, page views with time on page, custom events, perf, errors
// and crashes with stacks) built before the clock starts; each request only gets fresh event ids.
interface Template { key: string; items: string[]; events: AnalyticsEvent[] }
const templates: Template[] = [];
const end = Date.now() - 60_000;
for (const p of programs) {
  let pending: AnalyticsEvent[] = [];
  for (const chunk of generateEvents({ seed: p.id, workspaceId, miniProgramId: p.id, versions: p.versions, hostApps: [{ id: null, weight: 2 }, ...hostApps.map((id) => ({ id }))], users: 20_000, days: 1, end })) {
    pending.push(...chunk);
    while (pending.length >= batch) {
      const events = pending.slice(0, batch);
      pending = pending.slice(batch);
      const items = events.map((e) => JSON.stringify({
        type: e.type, versionId: e.versionId, hostAppId: e.hostAppId ?? undefined, userId: e.userId, sessionId: e.sessionId, at: e.at,
        page: e.page ?? undefined, name: e.name ?? undefined, value: e.value ?? undefined, message: e.message ?? undefined, stack: e.stack ?? undefined,
        properties: e.props ? JSON.parse(e.props) : undefined,
      }).slice(1));
      templates.push({ key: p.key, items, events });
    }
    if (templates.length >= 200 * (programs.indexOf(p) + 1)) break;
  }
}
const bodyOf = (t: Template) => `{"events":[${t.items.map((rest) => `{"id":"${randomUUID()}",${rest}`).join(',')}]}`;
console.log(`batches: ${templates.length} templates of ${batch} events (${(bodyOf(templates[0]!).length / 1024).toFixed(0)} KiB each), ${connections} connections, ${seconds} s`);

// The API: api/server.ts itself, with a preload that reports its memory over IPC.
const env = {
  ...process.env, MPDP_MODE: 'test', DATABASE_URL: databaseUrl, TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`, TEMPORAL_TASK_QUEUE: 'bench',
  SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, DATA_DIR: dataDir, PORT: String(apiPort), HOST: '127.0.0.1', REVIEW_REMINDER_MS: '0', LOG_LEVEL: 'warn',
};
const probe = pathToFileURL(path.join(repoRoot, 'bench/ingest-memory-probe.ts')).href;
// BENCH_CPU_PROF_DIR=<dir>: the API writes a V8 CPU profile there when it exits (as bench/harness.ts children do).
const prof = process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
const api = spawn(process.execPath, [...prof, '--import', 'tsx', '--import', probe, path.join(repoRoot, 'api/server.ts')], { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
const memory = { rssPeak: 0, heapPeak: 0, rss: 0, heap: 0 };
api.on('message', (m: { rss: number; heapUsed: number }) => {
  memory.rss = m.rss;
  memory.heap = m.heapUsed;
  memory.rssPeak = Math.max(memory.rssPeak, m.rss);
  memory.heapPeak = Math.max(memory.heapPeak, m.heapUsed);
});
await waitForPort(apiPort, '127.0.0.1', 120_000);

const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
function post(body: string, key: string, query = ''): Promise<{ status: number; text: string; retryAfter: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: apiPort, path: `/api/v1/collect${query}`, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-mpdp-ingest-key': key } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, retryAfter: Number(res.headers['retry-after'] ?? 1) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Warm-up (lookups cached, JIT warm), not counted.
const first = await post(bodyOf(templates[0]!), templates[0]!.key, '?wait=true');
if (first.status !== 202) throw new Error(`collect answered ${first.status}: ${first.text}`);
const warm = JSON.parse(first.text) as { accepted: number; rejected: unknown[] };
if (warm.accepted !== batch) throw new Error(`collect refused events of the bench batch: ${JSON.stringify(warm.rejected.slice(0, 3))}`);

const stats = { requests: 0, accepted: 0, overloaded: 0, latencies: [] as number[] };
const backends = async () => (await pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)).rows.map((r) => r.pid);
const cpuStart = { api: cpuSeconds(api.pid!), self: process.cpuUsage(), pg: new Map((await backends()).map((pid) => [pid, cpuSeconds(pid)])) };
const startRows = Number((await pool.query('SELECT count(*) AS n FROM analytics_events')).rows[0].n);
const started = Date.now();
const stopAt = started + seconds * 1000;
let next = 1;
async function connection() {
  while (Date.now() < stopAt) {
    const t = templates[next++ % templates.length]!;
    const t0 = performance.now();
    const r = await post(bodyOf(t), t.key);
    stats.latencies.push(performance.now() - t0);
    stats.requests++;
    if (r.status === 202) stats.accepted += (JSON.parse(r.text) as { accepted: number }).accepted;
    else if (r.status === 503) {
      stats.overloaded++;
      await new Promise((res) => setTimeout(res, Math.min(1000, r.retryAfter * 1000)));
    } else throw new Error(`collect answered ${r.status}: ${r.text.slice(0, 300)}`);
  }
}
// Progress every 10 s from PostgreSQL's own insert counters (cheap: a count(*) would slow the writes down).
const inserted = async () => Number((await pool.query(`SELECT coalesce(sum(n_tup_ins), 0) AS n FROM pg_stat_user_tables WHERE relname LIKE 'analytics_events_%'`)).rows[0].n);
const samples: { t: number; n: number }[] = [];
const progress = setInterval(() => {
  void inserted().then((n) => {
    samples.push({ t: Date.now(), n });
    console.log(`  t=${((Date.now() - started) / 1000).toFixed(0)} s: ${fmt(stats.accepted)} accepted, ~${fmt(n)} written, API RSS ${mib(memory.rss)} heap ${mib(memory.heap)}`);
  });
}, 10_000);
await Promise.all(Array.from({ length: connections }, connection));
const loadEnded = Date.now();
clearInterval(progress);

// Written = rows in PostgreSQL once the API's buffer has drained (the insert counters stop moving), counted.
let last = -1;
let drainedAt = loadEnded;
for (;;) {
  const n = await inserted();
  if (n !== last) ((last = n), (drainedAt = Date.now()));
  else if (Date.now() - drainedAt > 2500 || Date.now() - loadEnded > 180_000) break;
  await new Promise((r) => setTimeout(r, 250));
}
const rows = Number((await pool.query('SELECT count(*) AS n FROM analytics_events')).rows[0].n) - startRows;
const ingestSeconds = (drainedAt - started) / 1000;
const selfCpu = process.cpuUsage(cpuStart.self);
const pgCpu = (await backends()).reduce((sum, pid) => sum + cpuSeconds(pid) - (cpuStart.pg.get(pid) ?? 0), 0);
const cpu = { api: cpuSeconds(api.pid!) - cpuStart.api, load: (selfCpu.user + selfCpu.system) / 1e6, pg: pgCpu };
const ingestRate = rows / ingestSeconds;
const sorted = [...stats.latencies].sort((a, b) => a - b);
const p = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
console.log(`ingest: ${fmt(stats.accepted)} events accepted in ${fmt(stats.requests)} requests (${stats.overloaded} answered 503), ${fmt(rows)} rows written in ${ingestSeconds.toFixed(1)} s`);
console.log(`  => ${fmt(ingestRate)} events/s written to PostgreSQL, start to last row (request p50 ${p(0.5).toFixed(1)} ms, p99 ${p(0.99).toFixed(1)} ms)`);
// Sustained: between the progress samples after the first third of the load (warm-up and the first fill of the buffer left out).
const steady = samples.filter((x) => x.t - started >= (seconds * 1000) / 3);
let sustainedRate: number | undefined;
if (steady.length >= 2) {
  const a = steady[0]!;
  const b = steady[steady.length - 1]!;
  sustainedRate = ((b.n - a.n) * 1000) / (b.t - a.t);
  console.log(`  sustained (t=${((a.t - started) / 1000).toFixed(0)}…${((b.t - started) / 1000).toFixed(0)} s): ${fmt(sustainedRate)} events/s`);
}
console.log(`  CPU seconds (of ${ingestSeconds.toFixed(1)} s on ${os.cpus().length} cores): API ${cpu.api.toFixed(1)}, PostgreSQL backends ${cpu.pg.toFixed(1)}, load generator ${cpu.load.toFixed(1)}`);
console.log(`  API memory: RSS peak ${mib(memory.rssPeak)}, at end ${mib(memory.rss)}; heap peak ${mib(memory.heapPeak)}, at end ${mib(memory.heap)}`);

// Bare COPY of the same rows into the same table: the same events with fresh ids, three days
// earlier (their own, fresh day partitions, as the ingest's were), 10,000 rows per COPY.
const cols = 'id, at, received_at, type, workspace_id, mini_program_id, version_id, host_app_id, user_id, session_id, page, name, value, fingerprint, message, stack, props';
const copyTotal = rows;
const all = templates.flatMap((t) => t.events);
const days = [...new Set(all.map((e) => new Date(Math.floor((e.at - 3 * dayMs) / dayMs) * dayMs).toISOString().slice(0, 10)))];
await pool.query('SELECT analytics_ensure_partition(d::date) FROM unnest($1::text[]) AS d', [days]);
const client = await pool.connect();
const copyStarted = Date.now();
let copied = 0;
for (let i = 0; copied < copyTotal; ) {
  const now = new Date().toISOString();
  let text = '';
  const n = Math.min(10_000, copyTotal - copied);
  for (let k = 0; k < n; k++, i++) {
    const e = all[i % all.length]!;
    text += [randomUUID(), new Date(e.at - 3 * dayMs).toISOString(), now, e.type, e.workspaceId, e.miniProgramId, e.versionId, e.hostAppId, e.userId, e.sessionId, e.page, e.name, e.value, e.fingerprint, e.message, e.stack, e.props].map(copyText).join('\t') + '\n';
  }
  copied += await copyIn(client, `COPY analytics_events (${cols}) FROM STDIN`, [text]);
}
const copySeconds = (Date.now() - copyStarted) / 1000;
client.release();
const copyRate = copied / copySeconds;
console.log(`bare COPY: ${fmt(copied)} rows in ${copySeconds.toFixed(1)} s => ${fmt(copyRate)} rows/s`);
console.log(`ratio ingest / bare COPY: ${(ingestRate / copyRate).toFixed(2)}${sustainedRate ? ` (sustained: ${(sustainedRate / copyRate).toFixed(2)})` : ''} (targets: >= 100,000 events/s, ratio >= 0.5)`);

api.kill('SIGTERM');
await new Promise((r) => (api.exitCode !== null ? r(null) : api.once('exit', r)));
agent.destroy();
await pool.end();
await smtp.close();
temporalProc.kill('SIGTERM');
await dropDatabase(databaseUrl);
rmSync(dataDir, { recursive: true, force: true });
