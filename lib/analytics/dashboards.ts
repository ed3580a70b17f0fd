/**
 * The user behaviour dashboards: overview (DAU/WAU/MAU, new users, launches, sessions, page views,
 * errors, crashes), top pages, retention cohorts, the split by version or host app, and their CSV.
 * Every query reads small rollups, never the raw events: analytics_hourly and analytics_page_hourly
 * (maintained by the ingest flush), and the daily rollups built from the flush's per-user rollups by
 * lib/analytics/daily-rollups.ts (analytics_daily_users, analytics_daily_sessions, analytics_cohorts).
 *
 * Definitions (all days are UTC days; a range is inclusive on both ends):
 * - A user is an (mini program, user id) pair: the same anonymous id in two mini programs is two users.
 * - Active users of a day / ISO week (Monday start) / calendar month: distinct users with any event
 *   in it, counting only the days of the week or month that fall inside the range.
 * - New users of a day: users whose first event ever (in that mini program) was on that day. With a
 *   version or host app filter: users whose first event was in that version / through that host app.
 * - Sessions: sessions that started on the day; length = last event − first event.
 * - Retention cohort of a day: its new users (same filters); dN: cohort users active (in that mini
 *   program, any version, any host app) on day + N; null while day + N is after today (UTC).
 * - Crash rate: crashes / launches (null without launches).
 */
import type pg from 'pg';
import { formatCsv } from '../csv.js';

export interface DashboardFilter {
  workspaceId: string;
  /** Inclusive UTC days, YYYY-MM-DD. */
  from: string;
  to: string;
  miniProgramId?: string | null;
  versionId?: string | null;
  hostAppId?: string | null;
}

export interface DayRow {
  day: string;
  activeUsers: number;
  newUsers: number;
  launches: number;
  sessions: number;
  avgSessionMs: number | null;
  pageViews: number;
  errors: number;
  crashes: number;
}

export interface Overview {
  range: { from: string; to: string };
  totals: { activeUsers: number; newUsers: number; launches: number; sessions: number; avgSessionMs: number | null; pageViews: number; errors: number; crashes: number; crashRate: number | null };
  daily: DayRow[];
  weekly: { weekStart: string; activeUsers: number }[];
  monthly: { month: string; activeUsers: number }[];
}

export interface PageRow { page: string; views: number; avgTimeMs: number | null; share: number }
export interface CohortRow { day: string; users: number; d1: number | null; d7: number | null; d30: number | null }
export interface Retention { cohorts: CohortRow[]; average: { d1: number | null; d7: number | null; d30: number | null } }
export type SplitBy = 'version' | 'host_app';
export interface SplitRow { key: string; label: string; activeUsers: number; launches: number; sessions: number; crashes: number; crashRate: number | null }

/** Longest range a dashboard answers, in days. */
export const maxRangeDays = 366;
/** Default range: the last 30 days, today included. */
export const defaultRangeDays = 30;
export const retentionOffsets = [1, 7, 30] as const;

const dayMs = 86_400_000;
export const dayString = (ms: number) => new Date(ms).toISOString().slice(0, 10);
export const dayNumber = (day: string) => Date.parse(`${day}T00:00:00Z`) / dayMs;
/** Every day from `from` to `to`, inclusive. */
export function daysOf(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = dayNumber(from); d <= dayNumber(to); d++) out.push(dayString(d * dayMs));
  return out;
}
export const rangeDays = (from: string, to: string) => dayNumber(to) - dayNumber(from) + 1;

/** Columns that carry the filters in each rollup. */
interface Cols { mp: string; version: string; hostApp: string }
const plain: Cols = { mp: 'mini_program_id', version: 'version_id', hostApp: 'host_app_id' };

/** WHERE conditions (workspace, then the filters) and their parameters, numbered from $1. */
function filterSql(f: DashboardFilter, cols: Cols, values: unknown[], o: { version?: boolean; hostApp?: boolean } = {}): string {
  const add = (v: unknown) => `$${values.push(v)}`;
  const conds = [`workspace_id = ${add(f.workspaceId)}`];
  if (f.miniProgramId) conds.push(`${cols.mp} = ${add(f.miniProgramId)}`);
  if (f.versionId && o.version !== false) conds.push(`${cols.version} = ${add(f.versionId)}`);
  if (f.hostAppId && o.hostApp !== false) conds.push(`${cols.hostApp} = ${add(f.hostAppId)}`);
  return conds.join(' AND ');
}

const hourBounds = (f: DashboardFilter) => [`${f.from}T00:00:00Z`, `${dayString((dayNumber(f.to) + 1) * dayMs)}T00:00:00Z`] as const;
const num = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

/**
 * Runs one dashboard query with room to aggregate in memory (a month of a busy workspace is a few
 * hundred thousand user-days: hashed on disk at the default work_mem, it would be several times slower)
 * and without parallel workers: a dashboard already runs its queries side by side, and workers on
 * top of that only fight over the same cores (measured: the 90-day overview a third faster).
 */
async function read<R extends pg.QueryResultRow>(pool: pg.Pool, text: string, values: unknown[]): Promise<R[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN READ ONLY');
    await client.query("SET LOCAL work_mem = '64MB'; SET LOCAL max_parallel_workers_per_gather = 0");
    const { rows } = await client.query<R>(text, values);
    await client.query('COMMIT');
    return rows;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** The workspace's mini programs (removed ones too: their history still counts). */
async function programsOf(pool: pg.Pool, workspaceId: string): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>('SELECT id FROM mini_programs WHERE workspace_id = $1', [workspaceId]);
  return rows.map((r) => r.id);
}

/** The Monday of the ISO week of a day. */
export function weekStart(day: string): string {
  const n = dayNumber(day);
  // 1970-01-01 was a Thursday: day 0 → weekday 3 (Monday 0).
  return dayString((n - ((n + 3) % 7)) * dayMs);
}
const monthIndex = (day: string) => Number(day.slice(0, 4)) * 12 + Number(day.slice(5, 7)) - 1;

/**
 * WHERE conditions on the daily rollups (analytics_daily_users, analytics_daily_sessions,
 * analytics_cohorts): the mini programs (their primary keys start with it), the workspace, and one
 * scope — the filter's version and host app, '*' for all. `split` names the column to list by
 * (every value but '*').
 */
async function dailyWhere(pool: pg.Pool, f: DashboardFilter, values: unknown[], split?: SplitBy): Promise<string> {
  const add = (v: unknown) => `$${values.push(v)}`;
  const programs = f.miniProgramId ? [f.miniProgramId] : await programsOf(pool, f.workspaceId);
  const conds = [`mini_program_id = ANY(${add(programs)}::text[])`, `workspace_id = ${add(f.workspaceId)}`];
  conds.push(split === 'version' ? "version_id <> '*'" : `version_id = ${add(f.versionId || '*')}`);
  conds.push(split === 'host_app' ? "host_app_id <> '*'" : `host_app_id = ${add(f.hostAppId || '*')}`);
  return conds.join(' AND ');
}

/** The Monday of a day's ISO week and the first of its month, in SQL. */
const mondayOf = (day: string) => `(${day} - (extract(isodow FROM ${day})::int - 1))`;
const monthStartOf = (day: string) => `(${day} - (extract(day FROM ${day})::int - 1))`;

/**
 * Distinct active users per day, and per ISO week, calendar month and the whole range, from
 * analytics_daily_users (users active on a day by the gap since their previous active day in the
 * same scope): the users of an interval [a, b] are those of its days d whose gap > d − a, i.e. each
 * user counted on its first active day of the interval. Weeks and months count only their days
 * inside the range (a = max(period start, range start)).
 */
async function activeUsers(pool: pg.Pool, f: DashboardFilter) {
  const values: unknown[] = [];
  const where = await dailyWhere(pool, f, values);
  const from = `$${values.push(f.from)}::date`;
  const rows = await read<{ day: string; n: string; w: string | null; m: string | null; t: string | null }>(pool,
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, sum(users) AS n,
            sum(users) FILTER (WHERE gap > day - greatest(${mondayOf('day')}, ${from})) AS w,
            sum(users) FILTER (WHERE gap > day - greatest(${monthStartOf('day')}, ${from})) AS m,
            sum(users) FILTER (WHERE gap > day - ${from}) AS t
     FROM analytics_daily_users WHERE ${where} AND day BETWEEN ${from} AND $${values.push(f.to)}::date GROUP BY day`, values);
  const weekly = new Map<string, number>();
  for (let w = dayNumber(weekStart(f.from)); w <= dayNumber(f.to); w += 7) weekly.set(dayString(w * dayMs), 0);
  const monthly = new Map<string, number>();
  for (let m = monthIndex(f.from); m <= monthIndex(f.to); m++) monthly.set(`${Math.floor(m / 12)}-${String((m % 12) + 1).padStart(2, '0')}`, 0);
  let total = 0;
  for (const r of rows) {
    const w = weekStart(r.day);
    const m = r.day.slice(0, 7);
    weekly.set(w, (weekly.get(w) ?? 0) + num(r.w));
    monthly.set(m, (monthly.get(m) ?? 0) + num(r.m));
    total += num(r.t);
  }
  return { daily: new Map(rows.map((r) => [r.day, num(r.n)])), weekly, monthly, total };
}

async function hourlyByDay(pool: pg.Pool, f: DashboardFilter) {
  const values: unknown[] = [];
  const where = filterSql(f, plain, values);
  const [lo, hi] = hourBounds(f);
  const rows = await read<{ day: string; launches: string; page_views: string; errors: string; crashes: string }>(pool,
    `SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, sum(launches) AS launches, sum(page_views) AS page_views, sum(errors) AS errors, sum(crashes) AS crashes
     FROM analytics_hourly WHERE ${where} AND hour >= $${values.push(lo)} AND hour < $${values.push(hi)} GROUP BY 1`,
    values,
  );
  return new Map(rows.map((r) => [r.day, { launches: num(r.launches), pageViews: num(r.page_views), errors: num(r.errors), crashes: num(r.crashes) }]));
}

/** New users per day: the sizes of the day's cohorts (users by their first day, first version and first host app). */
async function newUsersByDay(pool: pg.Pool, f: DashboardFilter) {
  const values: unknown[] = [];
  const where = await dailyWhere(pool, f, values);
  const rows = await read<{ day: string; n: string }>(pool,
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, sum(users) AS n FROM analytics_cohorts
     WHERE ${where} AND day BETWEEN $${values.push(f.from)}::date AND $${values.push(f.to)}::date GROUP BY day`,
    values,
  );
  return new Map(rows.map((r) => [r.day, num(r.n)]));
}

async function sessionsByDay(pool: pg.Pool, f: DashboardFilter) {
  const values: unknown[] = [];
  const where = await dailyWhere(pool, f, values);
  const rows = await read<{ day: string; n: string; ms: string | null }>(pool,
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, sum(sessions) AS n, sum(total_ms) AS ms FROM analytics_daily_sessions
     WHERE ${where} AND day BETWEEN $${values.push(f.from)}::date AND $${values.push(f.to)}::date GROUP BY day`,
    values,
  );
  return new Map(rows.map((r) => [r.day, { sessions: num(r.n), ms: num(r.ms) }]));
}

const round = (v: number | null) => (v === null ? null : Math.round(v));

/** The overview: totals, every day of the range (zeros included), weeks and months. */
export async function overview(pool: pg.Pool, f: DashboardFilter): Promise<Overview> {
  const [active, hourly, fresh, sessions] = await Promise.all([activeUsers(pool, f), hourlyByDay(pool, f), newUsersByDay(pool, f), sessionsByDay(pool, f)]);
  const daily: DayRow[] = daysOf(f.from, f.to).map((day) => {
    const h = hourly.get(day);
    const s = sessions.get(day);
    return {
      day, activeUsers: active.daily.get(day) ?? 0, newUsers: fresh.get(day) ?? 0, launches: h?.launches ?? 0,
      sessions: s?.sessions ?? 0, avgSessionMs: s ? round(ratio(s.ms, s.sessions)) : null,
      pageViews: h?.pageViews ?? 0, errors: h?.errors ?? 0, crashes: h?.crashes ?? 0,
    };
  });
  const sum = (k: 'newUsers' | 'launches' | 'sessions' | 'pageViews' | 'errors' | 'crashes') => daily.reduce((n, d) => n + d[k], 0);
  const sessionMs = [...sessions.values()].reduce((n, s) => n + s.ms, 0);
  const launches = sum('launches');
  const crashes = sum('crashes');
  // Weeks and months in order, each counted over its days inside the range.
  const weekly = [...active.weekly.entries()].map(([weekStart, activeUsers]) => ({ weekStart, activeUsers }));
  const monthly = [...active.monthly.entries()].map(([month, activeUsers]) => ({ month, activeUsers }));
  return {
    range: { from: f.from, to: f.to },
    totals: {
      activeUsers: active.total, newUsers: sum('newUsers'), launches, sessions: sum('sessions'), avgSessionMs: round(ratio(sessionMs, sum('sessions'))),
      pageViews: sum('pageViews'), errors: sum('errors'), crashes, crashRate: ratio(crashes, launches),
    },
    daily, weekly, monthly,
  };
}

/** Pages by views (most first), with the average time on page of the views that carried one, and their share of all views. */
export async function topPages(pool: pg.Pool, f: DashboardFilter, limit = 20): Promise<{ pages: PageRow[] }> {
  const values: unknown[] = [];
  const where = filterSql(f, plain, values);
  const [lo, hi] = hourBounds(f);
  const rows = await read<{ page: string; views: string; timed: string; ms: string; total: string }>(pool,
    `SELECT page, sum(views) AS views, sum(timed_views) AS timed, sum(time_ms_sum) AS ms, sum(sum(views)) OVER () AS total
     FROM analytics_page_hourly WHERE ${where} AND hour >= $${values.push(lo)} AND hour < $${values.push(hi)}
     GROUP BY page ORDER BY views DESC, page LIMIT $${values.push(limit)}`,
    values,
  );
  return {
    pages: rows.map((r) => ({ page: r.page, views: num(r.views), avgTimeMs: round(ratio(num(r.ms), num(r.timed))), share: ratio(num(r.views), num(r.total)) ?? 0 })),
  };
}

/** Retention cohorts: each day's new users and how many of them came back on day +1, +7, +30. */
export async function retention(pool: pg.Pool, f: DashboardFilter, today = dayString(Date.now())): Promise<Retention> {
  const values: unknown[] = [];
  const where = await dailyWhere(pool, f, values);
  const rows = await read<{ day: string; users: string; d1: string; d7: string; d30: string }>(pool,
    `SELECT to_char(day, 'YYYY-MM-DD') AS day, sum(users) AS users, sum(d1) AS d1, sum(d7) AS d7, sum(d30) AS d30 FROM analytics_cohorts
     WHERE ${where} AND day BETWEEN $${values.push(f.from)}::date AND $${values.push(f.to)}::date GROUP BY day`, values);
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const todayN = dayNumber(today);
  const sums = { d1: [0, 0], d7: [0, 0], d30: [0, 0] } as Record<'d1' | 'd7' | 'd30', [number, number]>;
  const cohorts = daysOf(f.from, f.to).map((day) => {
    const r = byDay.get(day);
    const users = num(r?.users);
    const at = (n: 1 | 7 | 30) => {
      if (dayNumber(day) + n > todayN) return null;
      const k = `d${n}` as const;
      const back = num(r?.[k]);
      sums[k][0] += back;
      sums[k][1] += users;
      return back;
    };
    return { day, users, d1: at(1), d7: at(7), d30: at(30) };
  });
  return { cohorts, average: { d1: ratio(...sums.d1), d7: ratio(...sums.d7), d30: ratio(...sums.d30) } };
}

/** Active users, launches, sessions and crashes per version or per host app ('' = sent without one). */
export async function split(pool: pg.Pool, f: DashboardFilter, by: SplitBy): Promise<{ by: SplitBy; rows: SplitRow[] }> {
  const col = by === 'version' ? 'version_id' : 'host_app_id';
  const q = async <R extends pg.QueryResultRow>(sql: (where: string, values: unknown[]) => string) => {
    const values: unknown[] = [];
    const text = sql(filterSql(f, plain, values), values);
    return read<R>(pool, text, values);
  };
  // Active users and sessions per key from the daily rollups (each user counted on its first active day of the range in that key).
  const daily = async <R extends pg.QueryResultRow>(sql: (where: string, values: unknown[]) => string) => {
    const values: unknown[] = [];
    const text = sql(await dailyWhere(pool, f, values, by), values);
    return read<R>(pool, text, values);
  };
  const [lo, hi] = hourBounds(f);
  const [users, counts, sessions] = await Promise.all([
    daily<{ k: string; n: string }>((w, v) => {
      const from = `$${v.push(f.from)}::date`;
      return `SELECT ${col} AS k, sum(users) FILTER (WHERE gap > day - ${from}) AS n FROM analytics_daily_users
      WHERE ${w} AND day BETWEEN ${from} AND $${v.push(f.to)}::date GROUP BY 1`;
    }),
    q<{ k: string; launches: string; crashes: string }>((w, v) => `SELECT ${col} AS k, sum(launches) AS launches, sum(crashes) AS crashes FROM analytics_hourly
      WHERE ${w} AND hour >= $${v.push(lo)} AND hour < $${v.push(hi)} GROUP BY 1`),
    daily<{ k: string; n: string }>((w, v) => `SELECT ${col} AS k, sum(sessions) AS n FROM analytics_daily_sessions
      WHERE ${w} AND day BETWEEN $${v.push(f.from)}::date AND $${v.push(f.to)}::date GROUP BY 1`),
  ]);
  const keys = [...new Set([...users, ...counts, ...sessions].map((r) => r.k))];
  const labels = await labelsOf(pool, f.workspaceId, by, keys, !f.miniProgramId);
  const u = new Map(users.map((r) => [r.k, num(r.n)]));
  const c = new Map(counts.map((r) => [r.k, r]));
  const s = new Map(sessions.map((r) => [r.k, num(r.n)]));
  const rows = keys.map((key) => {
    const launches = num(c.get(key)?.launches);
    const crashes = num(c.get(key)?.crashes);
    return { key, label: labels.get(key) ?? key, activeUsers: u.get(key) ?? 0, launches, sessions: s.get(key) ?? 0, crashes, crashRate: ratio(crashes, launches) };
  });
  rows.sort((a, b) => b.activeUsers - a.activeUsers || b.launches - a.launches || a.label.localeCompare(b.label));
  return { by, rows };
}

/** Readable names: "1.2.0" (or "Shop 1.2.0" across mini programs), a host app's name, or "No host app". */
async function labelsOf(pool: pg.Pool, workspaceId: string, by: SplitBy, keys: string[], withProgram: boolean): Promise<Map<string, string>> {
  if (by === 'version') {
    const { rows } = await pool.query<{ id: string; version: string; name: string }>(
      'SELECT v.id, v.version, m.name FROM versions v JOIN mini_programs m ON m.id = v.mini_program_id WHERE v.id = ANY($1::text[]) AND v.workspace_id = $2',
      [keys, workspaceId],
    );
    return new Map(rows.map((r) => [r.id, withProgram ? `${r.name} ${r.version}` : r.version]));
  }
  const { rows } = await pool.query<{ id: string; name: string }>('SELECT id, name FROM host_apps WHERE id = ANY($1::text[]) AND workspace_id = $2', [keys, workspaceId]);
  const out = new Map(rows.map((r) => [r.id, r.name]));
  out.set('', 'No host app (ingest key)');
  return out;
}

export const exportReports = ['daily', 'pages', 'retention', 'versions', 'host_apps'] as const;
export type ExportReport = (typeof exportReports)[number];

/** A report as CSV: the same numbers as the JSON answer (rates as fractions, empty for null). */
export async function exportCsv(pool: pg.Pool, f: DashboardFilter, report: ExportReport, o: { limit?: number; today?: string } = {}): Promise<string> {
  switch (report) {
    case 'daily': {
      const { daily } = await overview(pool, f);
      return formatCsv(['day', 'active_users', 'new_users', 'launches', 'sessions', 'avg_session_ms', 'page_views', 'errors', 'crashes'],
        daily.map((d) => [d.day, d.activeUsers, d.newUsers, d.launches, d.sessions, d.avgSessionMs, d.pageViews, d.errors, d.crashes]));
    }
    case 'pages': {
      const { pages } = await topPages(pool, f, o.limit ?? 1000);
      return formatCsv(['page', 'views', 'avg_time_ms', 'share'], pages.map((p) => [p.page, p.views, p.avgTimeMs, p.share]));
    }
    case 'retention': {
      const { cohorts } = await retention(pool, f, o.today);
      return formatCsv(['day', 'users', 'd1', 'd7', 'd30'], cohorts.map((c) => [c.day, c.users, c.d1, c.d7, c.d30]));
    }
    case 'versions':
    case 'host_apps': {
      const { rows } = await split(pool, f, report === 'versions' ? 'version' : 'host_app');
      return formatCsv([report === 'versions' ? 'version_id' : 'host_app_id', 'label', 'active_users', 'launches', 'sessions', 'crashes', 'crash_rate'],
        rows.map((r) => [r.key, r.label, r.activeUsers, r.launches, r.sessions, r.crashes, r.crashRate]));
    }
  }
}
