import pg from 'pg';
import { setImmediate as tick } from 'node:timers/promises';
import { applyCrashGroups } from '../lib/analytics/crash-groups.js';
import { refreshDailyRollups } from '../lib/analytics/daily-rollups.js';
import { IngestBuffer } from '../lib/analytics/ingest.js';
import { generateEvents, usersForEvents } from '../lib/analytics/generate.js';
import { loadConfig } from '../lib/config.js';
import { realisticPackage } from '../test/fixtures/packages.js';
import { percentile, session, startPlatform } from './harness.js';

/**
 * The user behaviour dashboards at 10 million events (BENCH_EVENTS to change it): 90 days of
 * generated traffic for three mini programs (60 / 30 / 10 %), several versions each, two host apps
 * and some events without one, written through the real IngestBuffer (the flush the API runs, with
 * its rollups) straight into the platform's database. Then each dashboard endpoint over HTTP, on
 * the API process as deployed, for a 30-day and a 90-day range, workspace-wide and for the
 * biggest mini program: p50 and p95 of BENCH_REQUESTS (20) sequential requests after two warm-ups.
 * Before them, the daily rollups (lib/analytics/daily-rollups.ts) are built — the backfill and an
 * incremental refresh are timed — as the API's refresh after flushes would have kept them.
 * Target: p95 < 300 ms.
 */

const totalEvents = Number(process.env.BENCH_EVENTS ?? 10_000_000);
const requests = Number(process.env.BENCH_REQUESTS ?? 20);
const days = 90;

const platform = await startPlatform();
const { baseUrl, workspaceId: ws } = platform;
const pool = new pg.Pool({ connectionString: platform.env.DATABASE_URL, max: 6 });
try {
  const admin = await session(baseUrl, platform.users[0]!.email);
  const programs = [
    { name: 'Bench Shop', share: 0.6, versions: ['1.0.0', '1.1.0', '1.2.0', '2.0.0'] },
    { name: 'Bench Travel', share: 0.3, versions: ['3.0.0', '3.1.0'] },
    { name: 'Bench News', share: 0.1, versions: ['0.9.0'] },
  ];
  const made: { id: string; share: number; versions: string[] }[] = [];
  for (const p of programs) {
    const mp = await admin.post(`/api/v1/workspaces/${ws}/mini-programs`, { name: p.name });
    const versions: string[] = [];
    for (const v of p.versions) versions.push((await admin.upload(`/api/v1/workspaces/${ws}/mini-programs/${mp.id}/versions`, realisticPackage({ version: v }), v)).id);
    made.push({ id: mp.id, share: p.share, versions });
  }
  const hostApps: string[] = [];
  for (const name of ['Wallet', 'Travel Pass']) hostApps.push((await admin.post(`/api/v1/workspaces/${ws}/host-apps`, { name, platform: 'android', bundleId: `com.bench.${name.replace(/\W/g, '').toLowerCase()}` })).id);

  // Written by the buffer the API uses (no HTTP), with crash grouping: its flushes maintain every rollup the dashboards read.
  const settings = { ...loadConfig({ MPDP_MODE: 'test', DATABASE_URL: platform.env.DATABASE_URL }).analytics, retentionDays: 120 };
  const buffer = new IngestBuffer({ pool, settings, applyCrashGroups });
  const end = Date.now() - 60_000;
  const started = performance.now();
  let sent = 0;
  let written = 0;
  for (const [i, mp] of made.entries()) {
    const o = {
      seed: `bench-${i}`, workspaceId: ws, miniProgramId: mp.id, versions: mp.versions, days, end, userPrefix: `b${i}`, chunkSize: 10_000,
      hostApps: [{ id: hostApps[0]!, weight: 3 }, { id: hostApps[1]!, weight: 2 }, { id: null, weight: 1 }],
    };
    const users = usersForEvents(totalEvents * mp.share, o);
    for (const chunk of generateEvents({ ...o, users })) {
      buffer.accept(chunk);
      sent += chunk.length;
      // Keep the buffer well under its cap: wait for the writer when it falls behind.
      if (buffer.pending > settings.bufferMaxEvents / 2) written += (await buffer.flush()).written;
      else await tick();
      if (sent % 1_000_000 < chunk.length) console.error(`[bench] ${sent.toLocaleString('en')} events generated, ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
  }
  written += (await buffer.flush()).written;
  await buffer.close();
  const loadSeconds = (performance.now() - started) / 1000;
  const { rows: [raw] } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM analytics_events');
  // What autovacuum does after a bulk load: statistics and the visibility map (index-only scans).
  await pool.query('VACUUM ANALYZE analytics_hourly, analytics_page_hourly, analytics_user_days, analytics_users, analytics_sessions');
  // The daily rollups the dashboards read: the first refresh builds every day, later ones the last 8 (+ cohorts 30 days before).
  const backfill = await refreshDailyRollups(pool, { fromDay: '2000-01-01' });
  const incremental = await refreshDailyRollups(pool);
  const again = await refreshDailyRollups(pool);
  // What the scheduler runs after flushes of today's events: the flushes say today is the earliest day changed.
  const todayOnly = await refreshDailyRollups(pool, { changedSince: new Date(end).toISOString().slice(0, 10) });
  await pool.query('VACUUM ANALYZE analytics_daily_users, analytics_daily_sessions, analytics_cohorts');
  const rollupTables = ['analytics_hourly', 'analytics_page_hourly', 'analytics_user_days', 'analytics_users', 'analytics_sessions', 'analytics_daily_users', 'analytics_daily_sessions', 'analytics_cohorts'];
  const { rows: sizes } = await pool.query<{ t: string; n: string }>(
    `SELECT relname AS t, n_live_tup AS n FROM pg_stat_user_tables WHERE relname = ANY($1::text[]) ORDER BY relname`, [rollupTables]);
  console.log(`events: ${Number(raw!.n).toLocaleString('en')} raw rows (${sent.toLocaleString('en')} generated) written through the IngestBuffer in ${loadSeconds.toFixed(0)} s (${Math.round(Number(raw!.n) / loadSeconds).toLocaleString('en')} events/s, generation included)`);
  console.log(`rollups: ${sizes.map((s) => `${s.t} ${Number(s.n).toLocaleString('en')}`).join(', ')}`);
  console.log(`daily rollups: backfill of ${backfill.from} … ${backfill.to} in ${(backfill.ms / 1000).toFixed(1)} s; incremental refresh (${incremental.from} … ${incremental.to}) in ${(incremental.ms / 1000).toFixed(1)} s, again in ${(again.ms / 1000).toFixed(1)} s`);
  const steps = (r: typeof backfill) => Object.entries(r.steps).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)} s`).join(', ');
  console.log(`  per table — backfill: ${steps(backfill)}; incremental: ${steps(incremental)}; again: ${steps(again)}`);
  console.log(`daily rollups after flushes of today's events only (the scheduler's usual refresh, ${todayOnly.from} … ${todayOnly.to}): ${(todayOnly.ms / 1000).toFixed(2)} s (${steps(todayOnly)}), ${(again.ms / todayOnly.ms).toFixed(1)}× less than the 10-day window`);

  const day = (n: number) => new Date(end - n * 86_400_000).toISOString().slice(0, 10);
  const endpoints = ['overview', 'pages', 'retention', 'split?by=version', 'split?by=host_app', 'export.csv?report=daily'];
  const scopes = [['workspace', ''], ['one mini program', `&miniProgramId=${made[0]!.id}`]] as const;
  const rows: string[] = [];
  let worst = 0;
  for (const range of [30, 90]) {
    for (const [scope, filter] of scopes) {
      for (const e of endpoints) {
        const url = `${baseUrl}/api/v1/workspaces/${ws}/analytics/${e}${e.includes('?') ? '&' : '?'}from=${day(range - 1)}&to=${day(0)}${filter}`;
        const times: number[] = [];
        for (let i = 0; i < requests + 2; i++) {
          const t = performance.now();
          const res = await fetch(url, { headers: admin.headers });
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
          if (i >= 2) times.push(performance.now() - t);
        }
        const p95 = percentile(times, 95);
        worst = Math.max(worst, p95);
        rows.push(`| ${range} days | ${scope} | ${e} | ${percentile(times, 50).toFixed(0)} ms | ${p95.toFixed(0)} ms |`);
      }
    }
  }
  console.log('\n| range | scope | endpoint | p50 | p95 |\n| --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
  console.log(`\nworst p95: ${worst.toFixed(0)} ms (target < 300 ms) ${worst < 300 ? 'OK' : 'MISSED'}`);
  void written;
} finally {
  await pool.end();
  await platform.stop();
}
