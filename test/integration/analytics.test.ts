import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import { seedUsers } from '../../db/seed.js';
import { parseCsv } from '../../lib/csv.js';
import { weekStart } from '../../lib/analytics/dashboards.js';
import { refreshDailyRollups } from '../../lib/analytics/daily-rollups.js';
import { generateAll } from '../../lib/analytics/generate.js';
import type { AnalyticsEvent } from '../../lib/analytics/types.js';
import { realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * The user behaviour dashboards over the real stack: generated events written through the API's
 * ingest buffer, then every number of every dashboard checked against SQL over the raw events
 * (rollup correctness), with the filters, the CSV exports, bad input and who may read them.
 */

let stack: Stack;
let admin: Agent;
let ws: string;
const dayMs = 86_400_000;
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const today = day(Date.now());
const back = (n: number) => day(Date.now() - n * dayMs);
let shop: { id: string; versions: string[] };
let games: { id: string; versions: string[] };
let hostApps: string[];
let other: { ws: string; miniProgramId: string; admin: Agent };
let events: AnalyticsEvent[];

async function createProgram(name: string, versions: string[]) {
  const res = await admin.post(`/api/v1/workspaces/${ws}/mini-programs`, { name });
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  const out: string[] = [];
  for (const version of versions) {
    const up = await admin.upload(`/api/v1/workspaces/${ws}/mini-programs/${id}/versions`, realisticPackage({ version }), version);
    expect(up.status).toBe(201);
    out.push(up.body.id);
  }
  await eventually(async () => {
    const [row] = await stack.sequelize.query<{ n: number }>('SELECT version_count AS n FROM mini_programs WHERE id = :id', { replacements: { id }, type: QueryTypes.SELECT });
    return row?.n === versions.length;
  }, { what: `${name} versions projected` });
  return { id, versions: out };
}

const sql = <T extends object>(text: string, replacements: Record<string, unknown> = {}) => stack.sequelize.query<T>(text, { replacements, type: QueryTypes.SELECT });

beforeAll(async () => {
  stack = await startStack();
  ws = stack.workspaceId;
  admin = await stack.agent('admin');
  shop = await createProgram('Dash Shop', ['1.0.0', '1.1.0', '2.0.0']);
  games = await createProgram('Dash Games', ['0.9.0']);
  hostApps = [];
  for (const name of ['Wallet', 'Travel']) {
    const res = await admin.post(`/api/v1/workspaces/${ws}/host-apps`, { name, platform: 'ios', bundleId: `com.example.${uid('app')}` });
    expect(res.status).toBe(201);
    hostApps.push(res.body.id);
  }
  // Another workspace with its own admin and mini program: a non-member here, and ids from elsewhere.
  const tag = uid();
  const otherWs = `ws_other_${tag}`;
  const otherAdmin = { id: `usr_o_${tag}`, email: `other-${tag}@example.test`, name: 'Olga Other', role: 'admin' as const };
  await seedUsers(stack.sequelize, { workspaceId: otherWs, workspaceName: `Other ${tag}`, code: `O${tag}`.toUpperCase().slice(0, 12), users: [otherAdmin], password: testPassword });
  const oa = new Agent(stack.baseUrl);
  await oa.login(otherAdmin.email);
  const op = await oa.post(`/api/v1/workspaces/${otherWs}/mini-programs`, { name: 'Elsewhere' });
  expect(op.status).toBe(201);
  other = { ws: otherWs, miniProgramId: op.body.id, admin: oa };

  // 40 days of traffic (retention needs day 30), ending a minute ago.
  const end = Date.now() - 60_000;
  const hosts = [{ id: hostApps[0]!, weight: 3 }, { id: hostApps[1]!, weight: 1 }, { id: null, weight: 1 }];
  events = [
    ...generateAll({ seed: 'shop', workspaceId: ws, miniProgramId: shop.id, versions: shop.versions, hostApps: hosts, users: 120, days: 40, end, userPrefix: 'shop' }),
    // The same user ids in another mini program are other users.
    ...generateAll({ seed: 'games', workspaceId: ws, miniProgramId: games.id, versions: games.versions, hostApps: hosts.slice(1), users: 50, days: 40, end, userPrefix: 'shop' }),
  ];
  let written = 0;
  for (let i = 0; i < events.length; i += 4000) written += (await stack.ingest.acceptAndWait(events.slice(i, i + 4000))).written;
  expect(written).toBe(events.length);
  // A client's retry of a batch counts once.
  const again = await stack.ingest.acceptAndWait(events.slice(0, 500));
  expect(again).toMatchObject({ written: 0, duplicates: 500 });
  // The dashboards read the daily rollups: rebuilt from the earliest day (the flushes' own refreshes
  // run in the background, throttled; this one waits for them and covers every day).
  const built = await refreshDailyRollups(stack.pool, { fromDay: '2000-01-01' });
  expect(built.skipped).toBe(false);
  expect(built.from! <= back(39)).toBe(true);
  expect(built.rows.dailyUsers).toBeGreaterThan(0);
}, 600_000);

afterAll(async () => {
  await stack?.stop();
});

interface Filter { from?: string; to?: string; miniProgramId?: string; versionId?: string; hostAppId?: string }
const qs = (f: Filter | Record<string, string | undefined>) => new URLSearchParams(Object.entries(f).filter(([, v]) => v !== undefined) as [string, string][]).toString();
const get = async (path: string, f: Filter | Record<string, string | undefined> = {}, agent = admin) => agent.get(`/api/v1/workspaces/${ws}/analytics/${path}?${qs(f)}`);

/** The raw events' conditions for a filter (host app '' = none), as SQL over analytics_events. */
function rawWhere(f: Filter) {
  const conds = ['workspace_id = :ws'];
  if (f.miniProgramId) conds.push('mini_program_id = :mp');
  if (f.versionId) conds.push('version_id = :v');
  if (f.hostAppId) conds.push("coalesce(host_app_id, '') = :h");
  return { where: conds.join(' AND '), params: { ws, mp: f.miniProgramId, v: f.versionId, h: f.hostAppId } };
}
const utcDay = "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
const n = (v: unknown) => Number(v ?? 0);

/** What the overview must say, computed from the raw events only. */
async function expectedOverview(f: Required<Pick<Filter, 'from' | 'to'>> & Filter) {
  const { where, params } = rawWhere(f);
  const p = { ...params, from: f.from, to: f.to };
  const inRange = `(at AT TIME ZONE 'UTC')::date BETWEEN :from::date AND :to::date`;
  const perDay = await sql<{ d: string; users: string; launches: string; views: string; errors: string; crashes: string }>(
    `SELECT ${utcDay} AS d, count(DISTINCT mini_program_id || '/' || user_id) AS users, count(*) FILTER (WHERE type = 'launch') AS launches,
            count(*) FILTER (WHERE type = 'page_view') AS views, count(*) FILTER (WHERE type = 'error') AS errors, count(*) FILTER (WHERE type = 'crash') AS crashes
     FROM analytics_events WHERE ${where} AND ${inRange} GROUP BY 1`, p);
  // Users' first event ever (in their mini program), with its version and host app.
  const firsts = `SELECT DISTINCT ON (mini_program_id, user_id) mini_program_id, user_id, ${utcDay} AS d, version_id, coalesce(host_app_id, '') AS host_app_id
                  FROM analytics_events WHERE workspace_id = :ws ORDER BY mini_program_id, user_id, at`;
  const fresh = await sql<{ d: string; n: string }>(`SELECT d, count(*) AS n FROM (${firsts}) f WHERE ${where.replace('workspace_id = :ws', 'true')} AND d BETWEEN :from AND :to GROUP BY d`, p);
  // Sessions by the day they started; their version and host app are those of their first event.
  const sessions = `SELECT DISTINCT ON (mini_program_id, session_id) mini_program_id, session_id, version_id, coalesce(host_app_id, '') AS host_app_id,
                      ${utcDay} AS d, extract(epoch FROM max(at) OVER w - min(at) OVER w) * 1000 AS ms
                    FROM analytics_events WHERE workspace_id = :ws WINDOW w AS (PARTITION BY mini_program_id, session_id) ORDER BY mini_program_id, session_id, at`;
  const perSession = await sql<{ d: string; n: string; ms: string }>(`SELECT d, count(*) AS n, sum(ms) AS ms FROM (${sessions}) s WHERE ${where.replace('workspace_id = :ws', 'true')} AND d BETWEEN :from AND :to GROUP BY d`, p);
  const distinct = async (bucket: string) => sql<{ k: string; n: string }>(
    `SELECT ${bucket} AS k, count(DISTINCT mini_program_id || '/' || user_id) AS n FROM analytics_events WHERE ${where} AND ${inRange} GROUP BY 1 ORDER BY 1`, p);
  const weekly = await distinct(`to_char(date_trunc('week', (at AT TIME ZONE 'UTC')::date), 'YYYY-MM-DD')`);
  const monthly = await distinct(`to_char(at AT TIME ZONE 'UTC', 'YYYY-MM')`);
  const [total] = await distinct(`'all'`);
  return { perDay: new Map(perDay.map((r) => [r.d, r])), fresh: new Map(fresh.map((r) => [r.d, n(r.n)])), sessions: new Map(perSession.map((r) => [r.d, r])), weekly, monthly, total: n(total?.n) };
}

async function checkOverview(f: Required<Pick<Filter, 'from' | 'to'>> & Filter) {
  const [res, want] = await Promise.all([get('overview', f), expectedOverview(f)]);
  expect(res.status).toBe(200);
  const o = res.body;
  expect(o.range).toEqual({ from: f.from, to: f.to });
  const days: string[] = [];
  for (let t = Date.parse(`${f.from}T00:00:00Z`); t <= Date.parse(`${f.to}T00:00:00Z`); t += dayMs) days.push(day(t));
  expect(o.daily.map((d: { day: string }) => d.day)).toEqual(days);
  let sessionMs = 0;
  for (const d of o.daily) {
    const r = want.perDay.get(d.day);
    const s = want.sessions.get(d.day);
    sessionMs += n(s?.ms);
    expect({ day: d.day, activeUsers: d.activeUsers, newUsers: d.newUsers, launches: d.launches, sessions: d.sessions, pageViews: d.pageViews, errors: d.errors, crashes: d.crashes }).toEqual({
      day: d.day, activeUsers: n(r?.users), newUsers: want.fresh.get(d.day) ?? 0, launches: n(r?.launches), sessions: n(s?.n), pageViews: n(r?.views), errors: n(r?.errors), crashes: n(r?.crashes),
    });
    if (s) expect(Math.abs(d.avgSessionMs - n(s.ms) / n(s.n))).toBeLessThanOrEqual(1);
    else expect(d.avgSessionMs).toBeNull();
  }
  // Every ISO week and month the range touches, zeros included.
  const weeks = new Map(want.weekly.map((w) => [w.k, n(w.n)]));
  const months = new Map(want.monthly.map((m) => [m.k, n(m.n)]));
  const mondays: string[] = [];
  for (let t = Date.parse(`${weekStart(f.from)}T00:00:00Z`); t <= Date.parse(`${f.to}T00:00:00Z`); t += 7 * dayMs) mondays.push(day(t));
  expect(o.weekly).toEqual(mondays.map((w) => ({ weekStart: w, activeUsers: weeks.get(w) ?? 0 })));
  expect(o.monthly).toEqual([...new Set(days.map((d) => d.slice(0, 7)))].map((m) => ({ month: m, activeUsers: months.get(m) ?? 0 })));
  expect([...weeks.keys()].every((w) => mondays.includes(w))).toBe(true);
  const sum = (k: string) => o.daily.reduce((a: number, d: Record<string, number>) => a + d[k]!, 0);
  expect(o.totals).toMatchObject({ activeUsers: want.total, newUsers: sum('newUsers'), launches: sum('launches'), sessions: sum('sessions'), pageViews: sum('pageViews'), errors: sum('errors'), crashes: sum('crashes') });
  expect(o.totals.crashRate).toBeCloseTo(sum('crashes') / sum('launches'), 10);
  expect(Math.abs(o.totals.avgSessionMs - sessionMs / sum('sessions'))).toBeLessThanOrEqual(1);
  return o;
}

describe('overview', () => {
  it('matches the raw events for the whole workspace over 40 days: DAU, WAU, MAU, new users, launches, sessions and their length, page views, errors, crashes', async () => {
    const o = await checkOverview({ from: back(39), to: today });
    // Real traffic was there: the checks above compared numbers, not zeros.
    expect(o.totals.activeUsers).toBeGreaterThan(100);
    expect(o.totals.launches).toBeGreaterThan(300);
    expect(o.totals.crashes).toBeGreaterThan(0);
    expect(o.weekly.length).toBeGreaterThanOrEqual(6);
    // The same user id in two mini programs is two users.
    const [both] = await sql<{ n: string }>(`SELECT count(*) AS n FROM (SELECT user_id FROM analytics_events WHERE workspace_id = :ws GROUP BY user_id HAVING count(DISTINCT mini_program_id) > 1) s`, { ws });
    expect(n(both?.n)).toBeGreaterThan(0);
  });

  it('matches for each filter: mini program, version, host app, combinations of them, and a one-day range', async () => {
    await checkOverview({ from: back(20), to: back(5), miniProgramId: shop.id });
    await checkOverview({ from: back(39), to: today, miniProgramId: shop.id, versionId: shop.versions[1] });
    await checkOverview({ from: back(39), to: today, versionId: games.versions[0] });
    await checkOverview({ from: back(13), to: today, hostAppId: hostApps[0] });
    await checkOverview({ from: back(30), to: back(2), miniProgramId: shop.id, versionId: shop.versions[2], hostAppId: hostApps[1] });
    await checkOverview({ from: back(3), to: back(3) });
  });

  it('defaults to the last 30 days, today included, zeros for days without events', async () => {
    const res = await get('overview');
    expect(res.status).toBe(200);
    expect(res.body.range).toEqual({ from: back(29), to: today });
    expect(res.body.daily).toHaveLength(30);
    const empty = await get('overview', { from: '2020-01-01', to: '2020-01-03' });
    expect(empty.body.daily).toEqual(['2020-01-01', '2020-01-02', '2020-01-03'].map((d) => ({ day: d, activeUsers: 0, newUsers: 0, launches: 0, sessions: 0, avgSessionMs: null, pageViews: 0, errors: 0, crashes: 0 })));
    expect(empty.body.totals).toMatchObject({ activeUsers: 0, crashRate: null, avgSessionMs: null });
    expect(empty.body.weekly).toEqual([{ weekStart: '2019-12-30', activeUsers: 0 }]);
  });
});

describe('pages, retention, split', () => {
  it('top pages: views, average time on page and share match the raw page views', async () => {
    for (const f of [{ from: back(39), to: today }, { from: back(10), to: back(1), miniProgramId: shop.id, hostAppId: hostApps[0] }] as Filter[]) {
      const res = await get('pages', { ...f, limit: '5' });
      expect(res.status).toBe(200);
      const { where, params } = rawWhere(f);
      const rows = await sql<{ page: string; views: string; avg: number | null; total: string }>(
        `SELECT page, count(*) AS views, avg(value) AS avg, sum(count(*)) OVER () AS total FROM analytics_events
         WHERE ${where} AND type = 'page_view' AND (at AT TIME ZONE 'UTC')::date BETWEEN :from AND :to GROUP BY page ORDER BY count(*) DESC, page LIMIT 5`, { ...params, from: f.from, to: f.to });
      expect(rows.length).toBe(5);
      expect(res.body.pages).toHaveLength(5);
      res.body.pages.forEach((p: { page: string; views: number; avgTimeMs: number; share: number }, i: number) => {
        const r = rows[i]!;
        expect(p.page).toBe(r.page);
        expect(p.views).toBe(n(r.views));
        expect(Math.abs(p.avgTimeMs - n(r.avg))).toBeLessThanOrEqual(0.5);
        expect(p.share).toBeCloseTo(n(r.views) / n(r.total), 10);
      });
    }
  });

  it('retention cohorts: each day\'s new users and who of them came back on day 1, 7 and 30; null where the day is not reached', async () => {
    for (const f of [{ from: back(39), to: today }, { from: back(39), to: back(20), miniProgramId: shop.id, versionId: shop.versions[0] }] as Filter[]) {
      const res = await get('retention', f);
      expect(res.status).toBe(200);
      const { where, params } = rawWhere(f);
      const rows = await sql<{ d: string; users: string; d1: string; d7: string; d30: string }>(
        `WITH firsts AS (SELECT DISTINCT ON (mini_program_id, user_id) mini_program_id, user_id, (at AT TIME ZONE 'UTC')::date AS d, version_id, coalesce(host_app_id, '') AS host_app_id
                         FROM analytics_events WHERE workspace_id = :ws ORDER BY mini_program_id, user_id, at),
              active AS (SELECT DISTINCT mini_program_id, user_id, (at AT TIME ZONE 'UTC')::date AS d FROM analytics_events WHERE workspace_id = :ws)
         SELECT to_char(f.d, 'YYYY-MM-DD') AS d, count(*) AS users,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM active a WHERE a.mini_program_id = f.mini_program_id AND a.user_id = f.user_id AND a.d = f.d + 1)) AS d1,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM active a WHERE a.mini_program_id = f.mini_program_id AND a.user_id = f.user_id AND a.d = f.d + 7)) AS d7,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM active a WHERE a.mini_program_id = f.mini_program_id AND a.user_id = f.user_id AND a.d = f.d + 30)) AS d30
         FROM firsts f WHERE ${where.replace('workspace_id = :ws', 'true')} AND f.d BETWEEN :from AND :to GROUP BY f.d`, { ...params, from: f.from, to: f.to });
      const byDay = new Map(rows.map((r) => [r.d, r]));
      const reached = (d: string, k: number) => Date.parse(`${d}T00:00:00Z`) + k * dayMs <= Date.parse(`${today}T00:00:00Z`);
      const sums = { d1: [0, 0], d7: [0, 0], d30: [0, 0] } as Record<string, [number, number]>;
      for (const c of res.body.cohorts) {
        const r = byDay.get(c.day);
        const want = { day: c.day, users: n(r?.users), d1: null as number | null, d7: null as number | null, d30: null as number | null };
        for (const k of [1, 7, 30] as const) {
          if (!reached(c.day, k)) continue;
          want[`d${k}`] = n(r?.[`d${k}`]);
          sums[`d${k}`]![0] += n(r?.[`d${k}`]);
          sums[`d${k}`]![1] += n(r?.users);
        }
        expect(c).toEqual(want);
      }
      expect(res.body.cohorts.length).toBe(Math.round((Date.parse(`${f.to}T00:00:00Z`) - Date.parse(`${f.from}T00:00:00Z`)) / dayMs) + 1);
      for (const k of ['d1', 'd7', 'd30']) {
        const [back, users] = sums[k]!;
        if (users) expect(res.body.average[k]).toBeCloseTo(back / users, 10);
        else expect(res.body.average[k]).toBeNull();
      }
      expect(rows.reduce((a, r) => a + n(r.d1), 0)).toBeGreaterThan(0);
    }
    // The last 30 days' cohorts have not reached day 30; today's has not reached day 1.
    const res = await get('retention', { from: back(2), to: today });
    expect(res.body.cohorts.map((c: { d1: number | null; d30: number | null }) => [c.d1 === null, c.d30 === null])).toEqual([[false, true], [false, true], [true, true]]);
  });

  it('split by version and by host app: active users, launches, sessions, crashes and crash rate per key, with labels', async () => {
    for (const [by, col] of [['version', 'version_id'], ['host_app', "coalesce(host_app_id, '')"]] as const) {
      for (const f of [{ from: back(39), to: today }, { from: back(9), to: today, miniProgramId: shop.id }] as Filter[]) {
        const res = await get('split', { ...f, by });
        expect(res.status).toBe(200);
        expect(res.body.by).toBe(by);
        const { where, params } = rawWhere(f);
        const rows = await sql<{ k: string; users: string; launches: string; crashes: string; sessions: string }>(
          `SELECT ${col} AS k, count(DISTINCT mini_program_id || '/' || user_id) AS users, count(*) FILTER (WHERE type = 'launch') AS launches,
                  count(*) FILTER (WHERE type = 'crash') AS crashes, count(DISTINCT session_id) FILTER (WHERE type = 'launch') AS sessions
           FROM analytics_events WHERE ${where} AND (at AT TIME ZONE 'UTC')::date BETWEEN :from AND :to GROUP BY 1`, { ...params, from: f.from, to: f.to });
        expect(res.body.rows.map((r: { key: string }) => r.key).sort()).toEqual(rows.map((r) => r.k).sort());
        for (const r of rows) {
          const got = res.body.rows.find((x: { key: string }) => x.key === r.k);
          expect(got).toMatchObject({ activeUsers: n(r.users), launches: n(r.launches), crashes: n(r.crashes), sessions: n(r.sessions) });
          expect(got.crashRate).toBeCloseTo(n(r.crashes) / n(r.launches), 10);
        }
        const labels = Object.fromEntries(res.body.rows.map((r: { key: string; label: string }) => [r.key, r.label]));
        if (by === 'version') expect(labels[shop.versions[0]!]).toBe(f.miniProgramId ? '1.0.0' : 'Dash Shop 1.0.0');
        else expect(labels).toMatchObject({ [hostApps[0]!]: 'Wallet', '': 'No host app (ingest key)' });
      }
    }
  });
});

describe('CSV exports', () => {
  it('each report is a CSV attachment whose header and rows are the JSON answer\'s numbers', async () => {
    const f = { from: back(39), to: today, miniProgramId: shop.id };
    const fetchCsv = async (report: string) => {
      const res = await fetch(`${stack.baseUrl}/api/v1/workspaces/${ws}/analytics/export.csv?${qs({ ...f, report })}`, { headers: { cookie: admin.cookie } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="analytics-${report}-${f.from}-${f.to}.csv"`);
      return parseCsv(await res.text()).map((r) => r.fields);
    };
    const cell = (v: unknown) => (v === null ? '' : String(v));

    const daily = await fetchCsv('daily');
    const o = (await get('overview', f)).body;
    expect(daily[0]).toEqual(['day', 'active_users', 'new_users', 'launches', 'sessions', 'avg_session_ms', 'page_views', 'errors', 'crashes']);
    expect(daily.slice(1)).toEqual(o.daily.map((d: Record<string, unknown>) => [d.day, d.activeUsers, d.newUsers, d.launches, d.sessions, d.avgSessionMs, d.pageViews, d.errors, d.crashes].map(cell)));

    const pages = await fetchCsv('pages');
    const p = (await get('pages', { ...f, limit: '500' })).body.pages;
    expect(pages[0]).toEqual(['page', 'views', 'avg_time_ms', 'share']);
    expect(pages.slice(1)).toEqual(p.map((r: Record<string, unknown>) => [r.page, r.views, r.avgTimeMs, r.share].map(cell)));

    const ret = await fetchCsv('retention');
    const r = (await get('retention', f)).body.cohorts;
    expect(ret[0]).toEqual(['day', 'users', 'd1', 'd7', 'd30']);
    expect(ret.slice(1)).toEqual(r.map((c: Record<string, unknown>) => [c.day, c.users, c.d1, c.d7, c.d30].map(cell)));
    expect(ret.slice(1).some((row) => row[4] === '')).toBe(true);

    for (const [report, by, key] of [['versions', 'version', 'version_id'], ['host_apps', 'host_app', 'host_app_id']] as const) {
      const rows = await fetchCsv(report);
      const s = (await get('split', { ...f, by })).body.rows;
      expect(rows[0]).toEqual([key, 'label', 'active_users', 'launches', 'sessions', 'crashes', 'crash_rate']);
      expect(rows.slice(1)).toEqual(s.map((x: Record<string, unknown>) => [x.key, x.label, x.activeUsers, x.launches, x.sessions, x.crashes, x.crashRate].map(cell)));
      expect(rows.length).toBeGreaterThan(1);
    }
  });
});

describe('bad input and access', () => {
  it('refuses bad ranges and filters with a code, and filters from another workspace with 404', async () => {
    const cases: [Filter & Record<string, string>, number, string][] = [
      [{ from: back(3), to: back(5) }, 400, 'invalid_range'],
      [{ from: '2024-01-01', to: '2025-06-01' }, 400, 'range_too_long'],
      [{ from: '2026-02-30' }, 400, 'validation_failed'],
      [{ to: 'yesterday' }, 400, 'validation_failed'],
      [{ miniProgramId: other.miniProgramId }, 404, 'not_found'],
      [{ miniProgramId: 'mp_nope' }, 404, 'not_found'],
      [{ versionId: 'ver_nope' }, 404, 'not_found'],
      [{ miniProgramId: shop.id, versionId: games.versions[0]! }, 404, 'not_found'],
      [{ hostAppId: 'ha_nope' }, 404, 'not_found'],
    ];
    for (const path of ['overview', 'pages', 'retention', 'split', 'export.csv']) {
      for (const [f, status, code] of cases) {
        const res = await get(path, f);
        expect([path, f, res.status, res.body?.error?.code]).toEqual([path, f, status, code]);
      }
    }
    expect((await get('split', { by: 'country' })).body.error.code).toBe('validation_failed');
    expect((await get('export.csv', { report: 'everything' })).body.error.code).toBe('validation_failed');
    expect((await get('pages', { limit: '0' })).body.error.code).toBe('validation_failed');
    // 366 days is the longest range.
    expect((await get('overview', { from: '2025-01-01', to: '2026-01-01' })).status).toBe(200);
  });

  it('lets every member read (admin, reviewer, developer); a non-member gets 404, an anonymous caller 401', async () => {
    for (const role of ['admin', 'reviewer', 'developer'] as const) {
      const agent = role === 'admin' ? admin : await stack.agent(role);
      for (const path of ['overview', 'pages', 'retention', 'split', 'export.csv']) expect([role, path, (await get(path, {}, agent)).status]).toEqual([role, path, 200]);
    }
    const stranger = new Agent(stack.baseUrl);
    const email = `stranger-${uid()}@outside.example.test`;
    await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)', { replacements: { id: uid('usr_'), email, name: 'Stranger', hash: await hashPassword(testPassword) } });
    await stranger.login(email);
    const anonymous = new Agent(stack.baseUrl);
    for (const path of ['overview', 'pages', 'retention', 'split', 'export.csv']) {
      expect((await get(path, {}, stranger)).status).toBe(404);
      expect((await get(path, {}, other.admin)).status).toBe(404);
      const anon = await get(path, {}, anonymous);
      expect([anon.status, anon.body?.error?.code]).toEqual([401, 'unauthenticated']);
    }
  });
});

describe('daily rollups', () => {
  const rollupRows = async () => {
    const out: unknown[] = [];
    for (const t of ['analytics_daily_users', 'analytics_daily_sessions', 'analytics_cohorts']) {
      out.push(await sql(`SELECT * FROM ${t} WHERE workspace_id = :ws ORDER BY mini_program_id, version_id, host_app_id, day${t === 'analytics_daily_users' ? ', gap' : ''}`, { ws }));
    }
    return out;
  };
  /** A new user's session (launch and a page view) at noon UTC on a day. */
  const visit = (userId: string, dayString: string): AnalyticsEvent[] => {
    const at = Date.parse(`${dayString}T12:00:00Z`);
    const base = { workspaceId: ws, miniProgramId: shop.id, versionId: shop.versions[1]!, hostAppId: hostApps[1]!, userId, sessionId: `s-${userId}`, name: null, value: null, message: null, stack: null, fingerprint: null, props: null };
    return [{ ...base, id: crypto.randomUUID(), type: 'launch', at, page: null }, { ...base, id: crypto.randomUUID(), type: 'page_view', at: at + 30_000, page: 'pages/late/index' }];
  };

  it('a second refresh changes nothing; an incremental one rebuilds today − 8 … today + 1', async () => {
    const before = await rollupRows();
    const r = await refreshDailyRollups(stack.pool);
    expect(r).toMatchObject({ skipped: false, from: back(8), to: day(Date.now() + dayMs) });
    expect(await rollupRows()).toEqual(before);
  });

  it('events that arrive 3 days late are counted by the next refresh (users, new users, sessions, cohorts, weeks, months, split)', async () => {
    const f = { from: back(20), to: today, miniProgramId: shop.id };
    const was = (await get('overview', f)).body;
    const late = back(3);
    expect((await stack.ingest.acceptAndWait([...visit('late-user-1', late), ...visit('late-user-2', late)])).written).toBe(4);
    // Rebuilt from the day that changed only (as the scheduler does): the same rows as a rebuild of everything.
    const partial = await refreshDailyRollups(stack.pool, { changedSince: late });
    expect([partial.from, partial.to]).toEqual([late, day(Date.now() + dayMs)]);
    const afterPartial = await rollupRows();
    await refreshDailyRollups(stack.pool, { fromDay: '2000-01-01' });
    expect(await rollupRows()).toEqual(afterPartial);
    const o = await checkOverview(f);
    const d = (x: { daily: { day: string; activeUsers: number; newUsers: number; sessions: number }[] }) => x.daily.find((r) => r.day === late)!;
    expect([d(o).activeUsers - d(was).activeUsers, d(o).newUsers - d(was).newUsers, d(o).sessions - d(was).sessions, o.totals.activeUsers - was.totals.activeUsers]).toEqual([2, 2, 2, 2]);
    const cohort = (await get('retention', f)).body.cohorts.find((c: { day: string }) => c.day === late);
    expect(cohort.users).toBe(d(o).newUsers);
    // A range that starts and ends inside the data (partial first and last weeks and months).
    await checkOverview({ from: back(25), to: back(4) });
    await checkOverview({ from: back(17), to: back(2), hostAppId: hostApps[1] });
  });

  it('a session that began 10 days ago and goes on today: the automatic refresh rebuilds its start day (the flush says which day changed)', async () => {
    const started = back(10);
    const sessionDay = async () => (await sql<{ sessions: string; total_ms: string }>(
      `SELECT sessions, total_ms FROM analytics_daily_sessions WHERE mini_program_id = :mp AND day = :d AND version_id = '*' AND host_app_id = '*'`, { mp: shop.id, d: started }))[0];
    const was = await sessionDay();
    // (The buffer takes events of any age; the collect route would refuse these as over 7 days late.)
    await stack.ingest.acceptAndWait(visit('long-session-user', started));
    await eventually(async () => Number((await sessionDay())?.sessions ?? 0) === Number(was?.sessions ?? 0) + 1, { what: 'the old session counted', timeoutMs: 30_000 });
    const before = Number((await sessionDay())!.total_ms);
    const now = Date.now() - 60_000;
    const [launch] = visit('long-session-user', started);
    await stack.ingest.acceptAndWait([{ ...launch!, id: crypto.randomUUID(), type: 'page_view', at: now, page: 'pages/late/index' }]);
    // Its length now runs to today: over 9 days more on the day it began, outside today − 8 … today.
    await eventually(async () => Number((await sessionDay())!.total_ms) - before > 9 * dayMs, { what: 'the long session\'s new length on its start day', timeoutMs: 30_000 });
  });

  it('refreshes on its own after a flush that wrote rows (throttled, off the flush path)', async () => {
    const f = { from: back(6), to: today, miniProgramId: shop.id };
    const was = (await get('overview', f)).body.totals.activeUsers as number;
    await stack.ingest.acceptAndWait(visit('late-user-3', back(5)));
    await eventually(async () => (await get('overview', f)).body.totals.activeUsers === was + 1, { what: 'the late user counted without an explicit refresh', timeoutMs: 30_000 });
  });
});
