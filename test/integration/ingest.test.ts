import net from 'node:net';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { IngestBuffer, type IngestOptions } from '../../lib/analytics/ingest.js';
import { runAnalyticsMaintenance, utcDay } from '../../lib/analytics/maintenance.js';
import { IngestOverloaded, type AnalyticsEvent, type EventType } from '../../lib/analytics/types.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * The ingest buffer against the run's real PostgreSQL: rollups equal to raw SQL over the events it
 * wrote, duplicates counted nowhere, day partitions, retention, failed flushes that keep their
 * events, close(), overload. No API and no Temporal: events never go through either.
 */

const dayMs = 86_400_000;
let pool: pg.Pool;
const workspaceId = uid('ws_ing_');
const mps = [uid('mp_ing_a_'), uid('mp_ing_b_')];
const versionsOf: Record<string, string[]> = Object.fromEntries(mps.map((mp) => [mp, [`${mp}_v1`, `${mp}_v2`]]));
const hostApps = [null, uid('ha_ing_1_'), uid('ha_ing_2_')];
const buffers: IngestBuffer[] = [];

const settings = (o: Partial<IngestOptions['settings']> = {}): IngestOptions['settings'] => ({
  flushIntervalMs: 60_000, flushMaxEvents: 100_000, bufferMaxEvents: 1_000_000, retentionDays: 90, maintenanceIntervalMs: 3_600_000, rollupIntervalMs: 5000, ...o,
});
function buffer(o: Partial<Omit<IngestOptions, 'settings'>> & { settings?: Partial<IngestOptions['settings']> } = {}) {
  const b = new IngestBuffer({ pool, maintenance: false, ...o, settings: settings(o.settings), log: () => undefined });
  buffers.push(b);
  return b;
}

/** A small seeded PRNG (mulberry32): the same events every run. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function event(o: Partial<AnalyticsEvent> & { type: EventType; at: number; miniProgramId: string }): AnalyticsEvent {
  return {
    id: randomUUID(), workspaceId, versionId: versionsOf[o.miniProgramId]![0]!, hostAppId: null, userId: 'u', sessionId: 's',
    page: null, name: null, value: null, message: null, stack: null, fingerprint: null, props: null, ...o,
  };
}

/** Sessions of users: launch, page views with time on page, custom, perf, some errors and crashes, over the last two days. */
function generate(n: number, seed: number, mpList = mps): AnalyticsEvent[] {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const now = Date.now();
  const out: AnalyticsEvent[] = [];
  while (out.length < n) {
    const mp = pick(mpList);
    const versionId = pick(versionsOf[mp]!);
    const hostAppId = pick(hostApps);
    const userId = `user-${Math.floor(rnd() * 150)}`;
    const sessionId = randomUUID();
    let at = now - Math.floor(rnd() * 2 * dayMs) - 60_000;
    const base = { miniProgramId: mp, versionId, hostAppId, userId, sessionId };
    out.push(event({ ...base, type: 'launch', at }));
    const steps = 2 + Math.floor(rnd() * 10);
    for (let i = 0; i < steps && at < now - 1000; i++) {
      at += Math.floor(rnd() * 40_000);
      const r = rnd();
      if (r < 0.55) out.push(event({ ...base, type: 'page_view', at, page: pick(['pages/index', 'pages/cart', 'pages/item?id=1', 'pages/me']), value: rnd() < 0.7 ? Math.floor(rnd() * 30_000) : null }));
      else if (r < 0.75) out.push(event({ ...base, type: 'custom', at, name: pick(['add_to_cart', 'share']), props: JSON.stringify({ sku: Math.floor(rnd() * 99) }) }));
      else if (r < 0.88) out.push(event({ ...base, type: 'perf', at, name: 'first_paint', value: Math.round(rnd() * 2000 * 100) / 100 }));
      else if (r < 0.96) out.push(event({ ...base, type: 'error', at, message: 'TypeError: x is undefined', stack: 'at render (app.js:1:2)', fingerprint: 'fp-error-1' }));
      else out.push(event({ ...base, type: 'crash', at, message: 'RangeError: too deep', stack: 'at loop (app.js:9:9)', fingerprint: 'fp-crash-1' }));
    }
  }
  return out.slice(0, n);
}

const num = (x: unknown) => (x === null ? null : Math.round(Number(x) * 1000) / 1000);
async function rows(sql: string, params: unknown[]) {
  const { rows } = await pool.query(sql, params);
  return rows.map((r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' || (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) ? num(v) : v instanceof Date ? v.toISOString() : v])));
}

/** Every rollup as it is, and as GROUP BY over the raw events computes it (for these mini programs). */
async function rollupsVsRaw(mpIds: string[]) {
  const pairs: [string, string, string][] = [
    ['hourly',
      `SELECT mini_program_id, hour, version_id, host_app_id, workspace_id, launches, page_views, custom_events, errors, crashes, perf_count, perf_sum_ms, events
       FROM analytics_hourly WHERE mini_program_id = ANY($1) ORDER BY 1, 2, 3, 4`,
      `SELECT mini_program_id, date_trunc('hour', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, version_id, coalesce(host_app_id, '') AS host_app_id, workspace_id,
         count(*) FILTER (WHERE type = 'launch') AS launches, count(*) FILTER (WHERE type = 'page_view') AS page_views,
         count(*) FILTER (WHERE type = 'custom') AS custom_events, count(*) FILTER (WHERE type = 'error') AS errors,
         count(*) FILTER (WHERE type = 'crash') AS crashes, count(*) FILTER (WHERE type = 'perf') AS perf_count,
         coalesce(sum(value) FILTER (WHERE type = 'perf'), 0) AS perf_sum_ms, count(*) AS events
       FROM analytics_events WHERE mini_program_id = ANY($1) GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4`],
    ['page_hourly',
      `SELECT mini_program_id, hour, page, version_id, host_app_id, views, timed_views, time_ms_sum FROM analytics_page_hourly WHERE mini_program_id = ANY($1) ORDER BY 1, 2, 3, 4, 5`,
      `SELECT mini_program_id, date_trunc('hour', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, page, version_id, coalesce(host_app_id, '') AS host_app_id,
         count(*) AS views, count(value) AS timed_views, coalesce(sum(value), 0) AS time_ms_sum
       FROM analytics_events WHERE mini_program_id = ANY($1) AND type = 'page_view' GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`],
    ['user_days',
      `SELECT mini_program_id, day::text, user_id, version_id, host_app_id, workspace_id FROM analytics_user_days WHERE mini_program_id = ANY($1) ORDER BY 1, 2, 3, 4, 5`,
      `SELECT DISTINCT mini_program_id, (at AT TIME ZONE 'UTC')::date::text AS day, user_id, version_id, coalesce(host_app_id, '') AS host_app_id, workspace_id
       FROM analytics_events WHERE mini_program_id = ANY($1) ORDER BY 1, 2, 3, 4, 5`],
    ['users',
      `SELECT mini_program_id, user_id, workspace_id, first_day::text, first_version_id, first_host_app_id, first_at FROM analytics_users WHERE mini_program_id = ANY($1) ORDER BY 1, 2`,
      `SELECT DISTINCT ON (mini_program_id, user_id) mini_program_id, user_id, workspace_id, (at AT TIME ZONE 'UTC')::date::text AS first_day,
         version_id AS first_version_id, coalesce(host_app_id, '') AS first_host_app_id, at AS first_at
       FROM analytics_events WHERE mini_program_id = ANY($1) ORDER BY 1, 2, at`],
    ['sessions',
      `SELECT mini_program_id, session_id, workspace_id, version_id, host_app_id, user_id, day::text, started_at, last_at, events FROM analytics_sessions WHERE mini_program_id = ANY($1) ORDER BY 1, 2`,
      `SELECT DISTINCT ON (mini_program_id, session_id) mini_program_id, session_id, workspace_id, version_id, coalesce(host_app_id, '') AS host_app_id, user_id,
         (min(at) OVER w AT TIME ZONE 'UTC')::date::text AS day, min(at) OVER w AS started_at, max(at) OVER w AS last_at, count(*) OVER w AS events
       FROM analytics_events WHERE mini_program_id = ANY($1) WINDOW w AS (PARTITION BY mini_program_id, session_id) ORDER BY 1, 2, at`],
    ['runtime_counts',
      `SELECT mini_program_id, version_id, minute, launches, crashes FROM runtime_counts WHERE mini_program_id = ANY($1) ORDER BY 1, 2, 3`,
      `SELECT mini_program_id, version_id, date_trunc('minute', at) AS minute, count(*) FILTER (WHERE type = 'launch') AS launches, count(*) FILTER (WHERE type = 'crash') AS crashes
       FROM analytics_events WHERE mini_program_id = ANY($1) AND type IN ('launch', 'crash') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`],
  ];
  const out: Record<string, { rollup: unknown[]; raw: unknown[] }> = {};
  for (const [name, rollup, raw] of pairs) out[name] = { rollup: await rows(rollup, [mpIds]), raw: await rows(raw, [mpIds]) };
  return out;
}

async function expectRollupsMatchRaw(mpIds: string[], o: { someOfEach?: boolean } = {}) {
  const all = await rollupsVsRaw(mpIds);
  for (const [name, { rollup, raw }] of Object.entries(all)) {
    if (o.someOfEach ?? true) expect(raw.length, `${name}: raw rows`).toBeGreaterThan(0);
    expect(rollup, name).toEqual(raw);
  }
}

const countRaw = async (mpIds: string[]) => Number((await pool.query('SELECT count(*) AS n FROM analytics_events WHERE mini_program_id = ANY($1)', [mpIds])).rows[0].n);

/** A TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones refused) and restored. */
async function pgProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  let up = true;
  const server = net.createServer((client) => {
    if (!up) return client.destroy();
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => (sockets.delete(s), client.destroy(), upstream.destroy()));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = new URL(target.toString());
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    cut() {
      up = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      up = true;
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

async function newMiniProgram(): Promise<string> {
  const mp = uid('mp_ing_x_');
  await pool.query(`INSERT INTO mini_programs (id, workspace_id, name, status, created_by, created_at, updated_at, seq) VALUES ($1, $2, $1, 'active', 'test', now(), now(), 1)`, [mp, workspaceId]);
  versionsOf[mp] = [`${mp}_v1`];
  await pool.query(`INSERT INTO versions (id, mini_program_id, workspace_id, version, status, package_sha256, package_size, page_count, created_by, created_at, updated_at, seq)
    VALUES ($1, $2, $3, '1.0.0', 'released', 'x', 1, 1, 'test', now(), now(), 1)`, [`${mp}_v1`, mp, workspaceId]);
  return mp;
}

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: inject('databaseUrl'), max: 6 });
  await pool.query(`INSERT INTO workspaces (id, name, code, type) VALUES ($1, 'Ingest', $1, 'merchant')`, [workspaceId]);
  for (const mp of mps) {
    await pool.query(`INSERT INTO mini_programs (id, workspace_id, name, status, created_by, created_at, updated_at, seq) VALUES ($1, $2, $1, 'active', 'test', now(), now(), 1)`, [mp, workspaceId]);
    for (const [i, v] of versionsOf[mp]!.entries()) {
      await pool.query(`INSERT INTO versions (id, mini_program_id, workspace_id, version, status, package_sha256, package_size, page_count, created_by, created_at, updated_at, seq)
        VALUES ($1, $2, $3, $4, 'released', 'x', 1, 1, 'test', now(), now(), $5)`, [v, mp, workspaceId, `1.${i}.0`, i + 1]);
    }
  }
});

afterAll(async () => {
  for (const b of buffers) await b.close().catch(() => undefined);
  await pool.end();
});

describe('IngestBuffer', () => {
  it('writes rollups equal to raw SQL over the events, duplicates (in a batch, across flushes, concurrent) counting nowhere', async () => {
    // Small flushes, two at a time: rollup rows are shared between concurrent transactions.
    const b = buffer({ settings: { flushMaxEvents: 700 }, concurrency: 2 });
    const events = generate(4000, 7);
    for (let i = 0; i < 3000; i += 500) b.accept(events.slice(i, i + 500));
    // A retried batch arriving before the first copy was written: same ids and times.
    b.accept(events.slice(2500, 2600));
    await b.flush();
    expect(b.pending).toBe(0);
    expect(await countRaw(mps)).toBe(3000);
    // The rest, with retries of events written in earlier flushes mixed in, and a batch with an event twice.
    const retried = [...events.slice(0, 300), ...events.slice(1000, 1100)];
    const late = events.slice(3000);
    const mixed = [...late.slice(0, 400), ...retried, late[0]!, ...late.slice(400)];
    for (let i = 0; i < mixed.length; i += 450) b.accept(mixed.slice(i, i + 450));
    // Same id at another time is another event (the key is id and time).
    const sameIdLater = { ...events[5]!, at: events[5]!.at + 1 };
    const sameIdLaterStill = { ...events[5]!, at: events[5]!.at + 2 };
    const r = await b.acceptAndWait([sameIdLater, events[6]!, sameIdLaterStill, { ...sameIdLaterStill }, { ...sameIdLater }]);
    expect(r).toEqual({ written: 2, duplicates: 3 });
    // acceptAndWait answers once its own events are in; what came before may still be committing.
    await b.flush();
    expect(b.pending).toBe(0);
    expect(await countRaw(mps)).toBe(4002);
    await expectRollupsMatchRaw(mps);
    // Everything again: nothing more is counted anywhere.
    const before = await rollupsVsRaw(mps);
    const again = await b.acceptAndWait(events);
    expect(again).toEqual({ written: 0, duplicates: 4000 });
    expect(await rollupsVsRaw(mps)).toEqual(before);
  });

  it('puts events of two UTC days in two day partitions, making a partition on demand for any day', async () => {
    const mp = await newMiniProgram();
    const b = buffer();
    const midnight = Math.floor(Date.now() / dayMs) * dayMs;
    const longAgo = midnight - 40 * dayMs; // no maintenance makes this one ahead (it makes today-7 … today+2)
    const partition = (ms: number) => `analytics_events_${utcDay(ms).replaceAll('-', '')}`;
    await pool.query(`DROP TABLE IF EXISTS ${partition(longAgo)}`);
    const evs = [
      event({ type: 'launch', at: midnight - 1, miniProgramId: mp }),
      event({ type: 'launch', at: midnight, miniProgramId: mp }),
      event({ type: 'page_view', at: longAgo + 5000, miniProgramId: mp, page: 'pages/old' }),
    ];
    expect(await b.acceptAndWait(evs)).toEqual({ written: 3, duplicates: 0 });
    const { rows: placed } = await pool.query(`SELECT id, tableoid::regclass::text AS part FROM analytics_events WHERE mini_program_id = $1`, [mp]);
    const partOf = Object.fromEntries(placed.map((p: { id: string; part: string }) => [p.id, p.part]));
    expect(partOf).toEqual({ [evs[0]!.id]: partition(midnight - 1), [evs[1]!.id]: partition(midnight), [evs[2]!.id]: partition(longAgo) });
    expect(partition(midnight - 1)).not.toBe(partition(midnight));
    await expectRollupsMatchRaw([mp], { someOfEach: false });
    await pool.query(`DROP TABLE IF EXISTS ${partition(longAgo)}`);
  });

  it('retention drops exactly the partitions whose every event is older than retentionDays, and keeps the rest', async () => {
    // Days in 2001: nothing else in the database lives there.
    const days = Array.from({ length: 9 }, (_, i) => `2001-01-0${i + 1}`);
    for (const d of days) await pool.query('SELECT analytics_ensure_partition($1::date)', [d]);
    const now = Date.parse('2001-01-10T12:00:00Z');
    let result = await runAnalyticsMaintenance(pool, { retentionDays: 3, now });
    for (let i = 0; !result.ran && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 250)); // another process's maintenance holds the lock
      result = await runAnalyticsMaintenance(pool, { retentionDays: 3, now });
    }
    expect(result.ran).toBe(true);
    // Day D goes once D + 1 day ≤ now − 3 days = 2001-01-07T12:00Z: the 1st … the 6th.
    expect(result.dropped).toEqual(days.slice(0, 6));
    // Made ahead: 2001-01-03 … 2001-01-12, except days already past the retention and days that exist.
    expect(result.created).toEqual(['2001-01-10', '2001-01-11', '2001-01-12']);
    const { rows } = await pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'analytics_events'::regclass AND c.relname LIKE 'analytics_events_2001%' ORDER BY 1`,
    );
    expect(rows.map((r) => r.name)).toEqual(['07', '08', '09', '10', '11', '12'].map((d) => `analytics_events_200101${d}`));
    // Today's partition (others' events) is untouched.
    expect((await pool.query(`SELECT to_regclass($1) AS r`, [`analytics_events_${utcDay(Date.now()).replaceAll('-', '')}`])).rows[0].r).not.toBeNull();
    // With the lock held elsewhere, a second runner does nothing.
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [0x6d70_6470_0007]);
      expect(await runAnalyticsMaintenance(pool, { retentionDays: 3, now })).toEqual({ ran: false, created: [], dropped: [] });
      await holder.query('ROLLBACK');
    } finally {
      holder.release();
    }
    for (const r of rows) await pool.query(`DROP TABLE IF EXISTS ${r.name}`);
  });

  it('a flush that fails (connection lost, or a rollup table locked after the raw insert) keeps its events; a later flush writes them once', async () => {
    const mp = await newMiniProgram();
    const proxy = await pgProxy(new URL(inject('databaseUrl')));
    // lock_timeout: the locked table fails the flush instead of waiting.
    const flaky = new pg.Pool({ connectionString: proxy.url, max: 2, options: '-c lock_timeout=300' });
    flaky.on('error', () => undefined);
    try {
      const b = buffer({ pool: flaky });
      const evs = generate(600, 11, [mp]);
      b.accept(evs.slice(0, 300));
      proxy.cut();
      await expect(b.flush()).rejects.toThrow();
      expect(b.pending).toBe(300);
      expect(await countRaw([mp])).toBe(0);
      proxy.restore();
      b.accept(evs.slice(300));
      // The raw rows go in, then analytics_sessions is locked: the whole transaction rolls back.
      const locker = await pool.connect();
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE analytics_sessions IN ACCESS EXCLUSIVE MODE');
        await expect(b.flush()).rejects.toThrow(/lock/);
        expect(b.pending).toBe(600);
        await locker.query('ROLLBACK');
      } finally {
        locker.release();
      }
      expect(await countRaw([mp])).toBe(0);
      expect(await b.flush()).toEqual({ written: 600, duplicates: 0 });
      expect(b.pending).toBe(0);
      expect(await countRaw([mp])).toBe(600);
      await expectRollupsMatchRaw([mp]);
      await b.close();
    } finally {
      await flaky.end();
      await proxy.close();
    }
  });

  it('retries on its own after a failure, and flushes on its timer', async () => {
    const mp = await newMiniProgram();
    const impatient = new pg.Pool({ connectionString: inject('databaseUrl'), max: 2, options: '-c lock_timeout=100' });
    const b = buffer({ pool: impatient, settings: { flushIntervalMs: 100 } });
    const evs = generate(50, 13, [mp]);
    const locker = await pool.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE analytics_hourly IN ACCESS EXCLUSIVE MODE');
    b.accept(evs);
    await new Promise((r) => setTimeout(r, 400));
    expect(b.pending).toBe(50);
    await locker.query('ROLLBACK');
    locker.release();
    await expect.poll(() => countRaw([mp])).toBe(50);
    await expect.poll(() => b.pending).toBe(0);
    await expectRollupsMatchRaw([mp]);
    await b.close();
    await impatient.end();
  });

  it('close() writes everything buffered, then refuses more', async () => {
    const mp = await newMiniProgram();
    const b = buffer({ settings: { flushMaxEvents: 250 } });
    const evs = generate(1200, 17, [mp]);
    for (let i = 0; i < evs.length; i += 400) b.accept(evs.slice(i, i + 400));
    await b.close();
    expect(b.pending).toBe(0);
    expect(await countRaw([mp])).toBe(1200);
    await expectRollupsMatchRaw([mp]);
    expect(() => b.accept(evs.slice(0, 1))).toThrow(IngestOverloaded);
  });

  it('refuses events over bufferMaxEvents with IngestOverloaded (and a Retry-After), keeping what it holds', async () => {
    const mp = await newMiniProgram();
    const b = buffer({ settings: { bufferMaxEvents: 1000 } });
    const evs = generate(1001, 19, [mp]);
    b.accept(evs.slice(0, 500));
    const r = b.accept(evs.slice(500, 1000));
    expect(r.buffered).toBe(500);
    expect(r.flushBy).toBeGreaterThan(Date.now());
    let refused: unknown;
    try {
      b.accept(evs.slice(1000));
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(IngestOverloaded);
    expect((refused as IngestOverloaded).retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(b.pending).toBe(1000);
    expect(await b.flush()).toEqual({ written: 1000, duplicates: 0 });
    expect(b.accept(evs.slice(1000)).buffered).toBe(1);
    await b.flush();
    expect(await countRaw([mp])).toBe(1001);
  });

  it('mends text PostgreSQL refuses (NUL, lone surrogates) and drops only an event it cannot take', async () => {
    const mp = await newMiniProgram();
    const b = buffer();
    const now = Date.now() - 1000;
    const mended = event({ type: 'error', at: now, miniProgramId: mp, message: 'bad\u0000byte', stack: 'lone \ud800 surrogate', fingerprint: 'fp', props: JSON.stringify({ k: 'v\u0000', s: '\udc00' }) });
    const hopeless = event({ type: 'launch', at: now, miniProgramId: mp, id: 'not-a-uuid' });
    const fine = event({ type: 'launch', at: now, miniProgramId: mp });
    expect(await b.acceptAndWait([mended, hopeless, fine])).toEqual({ written: 2, duplicates: 0 });
    const { rows } = await pool.query(`SELECT message, stack, props FROM analytics_events WHERE id = $1`, [mended.id]);
    expect(rows[0]).toEqual({ message: 'bad\uFFFDbyte', stack: 'lone \uFFFD surrogate', props: { k: 'v\uFFFD', s: '\uFFFD' } });
    expect(await countRaw([mp])).toBe(2);
    await expectRollupsMatchRaw([mp], { someOfEach: false });
  });

  it('hands crash grouping the error and crash events it really wrote, inside the transaction, and tells the news after commit', async () => {
    const mp = await newMiniProgram();
    const seen: string[][] = [];
    const news: unknown[] = [];
    const b = buffer({
      applyCrashGroups: async (client, evs) => {
        seen.push(evs.map((e) => e.id));
        // Inside the flush: the raw rows are visible to this transaction.
        const { rows } = await client.query('SELECT count(*)::int AS n FROM analytics_events WHERE id = ANY($1::uuid[])', [evs.map((e) => e.id)]);
        expect(rows[0].n).toBe(evs.length);
        return [{ groupId: 'cg_x', workspaceId, miniProgramId: mp, versionId: `${mp}_v1`, change: 'new' }];
      },
      onCrashNews: (n) => news.push(...n),
    });
    const at = Date.now() - 5000;
    const err = event({ type: 'error', at, miniProgramId: mp, message: 'm', fingerprint: 'f' });
    const crash = event({ type: 'crash', at, miniProgramId: mp, message: 'm', fingerprint: 'f' });
    await b.acceptAndWait([err, crash, event({ type: 'launch', at, miniProgramId: mp })]);
    expect(seen).toEqual([[err.id, crash.id]]);
    expect(news).toHaveLength(1);
    // Duplicates only: grouping is not called.
    await b.acceptAndWait([err, crash]);
    expect(seen).toHaveLength(1);
  });
});
