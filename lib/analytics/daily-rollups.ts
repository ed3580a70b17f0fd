/**
 * The daily rollups the behaviour dashboards read (lib/analytics/dashboards.ts), rebuilt from the
 * rollups the ingest flush maintains (analytics_user_days, analytics_users, analytics_sessions):
 *
 * - analytics_daily_users: users active on a day, by `gap` = days since that user's previous active
 *   day in the same scope (367 = none in the 366 days before). Distinct users of any range [a, b]
 *   = Σ users over the days d of [a, b] with gap > d − a (each user counted on its first day in the
 *   range), so DAU, WAU, MAU, a whole range and the split need no per-user rows at read time.
 * - analytics_daily_sessions: sessions by the day they started, and the sum of their lengths.
 * - analytics_cohorts: each day's new users (by their FIRST version and host app) and how many of
 *   them were active on day + 1, + 7, + 30 (retention; `users` is also the day's new users).
 *
 * Every row comes once per scope: version_id / host_app_id '*' = all (GROUPING SETS), so a filter is
 * an equality on the primary key. A refresh replaces the rows of a range of days (DELETE + INSERT …
 * SELECT in one transaction, under an advisory lock so two API processes never both run it). Events
 * are accepted up to 7 days late (and 5 minutes ahead), so a refresh that knows nothing of what
 * changed rebuilds today − 8 … today + 1, and the cohorts whose day + 1/7/30 falls in it (cohort days
 * from 30 days earlier). The scheduler knows better: each flush reports the earliest day its rows
 * change (an event's day, or a touched session's start day), so a refresh rebuilds from there on:
 * usually today only (3.6× less work than the 10-day window at 10 M events). The first refresh (empty tables) rebuilds from the
 * earliest day; `fromDay` rebuilds from a given day.
 */
import type pg from 'pg';
import type { FlushResult } from './types.js';

/** pg_advisory_xact_lock key of the refresh ("mpdp" "roll"). */
export const rollupLockKey = 0x6d706470_726f6c6c;
/** Days rebuilt behind today: events may arrive 7 days late (a day more for a session that crosses midnight). */
export const lateDays = 8;
/** Gap meaning "no activity in the 366 days before" (a range is at most 366 days). */
export const noPreviousDay = 367;
const retentionSpan = 30;

const dayMs = 86_400_000;
const dayString = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const addDays = (day: string, n: number) => dayString(Date.parse(`${day}T00:00:00Z`) + n * dayMs);

export interface RefreshOptions {
  /** The clock (default now). */
  now?: Date;
  /** Rebuild from this day (YYYY-MM-DD) instead of today − 8. */
  fromDay?: string;
  /**
   * The earliest day whose source rows changed since the last refresh (the flushes say): rebuild
   * from it (earlier than today − 8 too) instead of today − 8. Null or absent: today − 8.
   */
  changedSince?: string | null;
  /** Rebuild up to this day (default today + 1: events may be up to 5 minutes ahead). */
  toDay?: string;
  /** Return at once (skipped) when another refresh holds the lock, instead of waiting for it. */
  skipIfBusy?: boolean;
}

export interface RefreshResult {
  /** Another process was refreshing (skipIfBusy). */
  skipped: boolean;
  /** The days rebuilt, or null when there is nothing to rebuild. */
  from: string | null;
  to: string | null;
  /** Rows written per table. */
  rows: { dailyUsers: number; dailySessions: number; cohorts: number };
  /** Time per table (ms) and in all. */
  steps: { users: number; sessions: number; cohorts: number };
  ms: number;
}

/** Grouping sets over (version, host app): every scope a dashboard filter can ask for. */
const scopes = (v: string, h: string) => `GROUPING SETS ((${v}, ${h}), (${v}), (${h}), ())`;
const scoped = (col: string, alias: string) => `CASE WHEN grouping(${col}) = 1 THEN '*' ELSE ${col} END AS ${alias}`;

/** Rebuilds the daily rollups for the recent days (or everything on the first run / from `fromDay`). */
export async function refreshDailyRollups(pool: pg.Pool, o: RefreshOptions = {}): Promise<RefreshResult> {
  const started = performance.now();
  const today = dayString((o.now ?? new Date()).getTime());
  const rows = { dailyUsers: 0, dailySessions: 0, cohorts: 0 };
  const steps = { users: 0, sessions: 0, cohorts: 0 };
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    if (o.skipIfBusy) {
      const { rows: [lock] } = await client.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS got', [rollupLockKey]);
      if (!lock?.got) {
        await client.query('ROLLBACK');
        return { skipped: true, from: null, to: null, rows, steps, ms: performance.now() - started };
      }
    } else {
      await client.query('SELECT pg_advisory_xact_lock($1)', [rollupLockKey]);
    }
    await client.query("SET LOCAL work_mem = '64MB'");
    let from = o.fromDay ?? o.changedSince ?? addDays(today, -lateDays);
    const to = o.toDay ?? addDays(today, 1);
    const { rows: [state] } = await client.query<{ built: boolean; first: string | null }>(
      `SELECT EXISTS (SELECT 1 FROM analytics_daily_users) AS built, (SELECT to_char(min(day), 'YYYY-MM-DD') FROM analytics_user_days) AS first`);
    if (!state?.first) {
      await client.query('COMMIT');
      return { skipped: false, from: null, to: null, rows, steps, ms: performance.now() - started };
    }
    if (!state.built || from < state.first) from = state.first;

    // Active users by gap. The previous active day of a user in a scope: the day before in the range,
    // or for the user's first day in the range, the last one in the 367 days before it (one hash
    // aggregate over the history of the users active in the range, not a sort of all of it).
    let t = performance.now();
    await client.query('DELETE FROM analytics_daily_users WHERE day BETWEEN $1::date AND $2::date', [from, to]);
    rows.dailyUsers = (await client.query(
      `INSERT INTO analytics_daily_users (mini_program_id, workspace_id, day, version_id, host_app_id, gap, users)
       WITH win AS (
         SELECT workspace_id, mini_program_id, user_id, day, ${scoped('version_id', 'v')}, ${scoped('host_app_id', 'h')}
         FROM analytics_user_days WHERE day BETWEEN $1::date AND $2::date
         GROUP BY workspace_id, mini_program_id, user_id, day, ${scopes('version_id', 'host_app_id')}
       ), before AS (
         SELECT a.mini_program_id, a.user_id, ${scoped('a.version_id', 'v')}, ${scoped('a.host_app_id', 'h')}, max(a.day) AS last
         FROM analytics_user_days a
         WHERE a.day BETWEEN $1::date - ${noPreviousDay} AND $1::date - 1
           AND (a.mini_program_id, a.user_id) IN (SELECT mini_program_id, user_id FROM analytics_user_days WHERE day BETWEEN $1::date AND $2::date)
         GROUP BY a.mini_program_id, a.user_id, ${scopes('a.version_id', 'a.host_app_id')}
       ), gaps AS (
         SELECT w.workspace_id, w.mini_program_id, w.day, w.v, w.h,
                least(coalesce(w.day - coalesce(lag(w.day) OVER (PARTITION BY w.mini_program_id, w.v, w.h, w.user_id ORDER BY w.day), b.last), ${noPreviousDay}), ${noPreviousDay}) AS gap
         FROM win w LEFT JOIN before b ON b.mini_program_id = w.mini_program_id AND b.user_id = w.user_id AND b.v = w.v AND b.h = w.h
       )
       SELECT mini_program_id, workspace_id, day, v, h, gap, count(*) FROM gaps GROUP BY mini_program_id, workspace_id, day, v, h, gap`,
      [from, to])).rowCount ?? 0;
    steps.users = performance.now() - t;

    t = performance.now();
    // Sessions by their start day (its version and host app are the session's first event's).
    await client.query('DELETE FROM analytics_daily_sessions WHERE day BETWEEN $1::date AND $2::date', [from, to]);
    rows.dailySessions = (await client.query(
      `INSERT INTO analytics_daily_sessions (mini_program_id, workspace_id, day, version_id, host_app_id, sessions, total_ms)
       SELECT mini_program_id, workspace_id, day, ${scoped('version_id', 'v')}, ${scoped('host_app_id', 'h')},
              count(*), coalesce(sum(round(date_part('epoch', last_at - started_at) * 1000)), 0)::bigint
       FROM analytics_sessions WHERE day BETWEEN $1::date AND $2::date
       GROUP BY mini_program_id, workspace_id, day, ${scopes('version_id', 'host_app_id')}`,
      [from, to])).rowCount ?? 0;

    steps.sessions = performance.now() - t;
    t = performance.now();

    // Cohorts whose day or day + 1/7/30 is in the range.
    const cohortFrom = addDays(from, -retentionSpan);
    await client.query('DELETE FROM analytics_cohorts WHERE day BETWEEN $1::date AND $2::date', [cohortFrom, to]);
    const back = (n: number) => `EXISTS (SELECT 1 FROM analytics_user_days a WHERE a.mini_program_id = u.mini_program_id AND a.day = u.first_day + ${n} AND a.user_id = u.user_id)`;
    rows.cohorts = (await client.query(
      `INSERT INTO analytics_cohorts (mini_program_id, workspace_id, day, version_id, host_app_id, users, d1, d7, d30)
       SELECT mini_program_id, workspace_id, first_day, ${scoped('first_version_id', 'v')}, ${scoped('first_host_app_id', 'h')},
              count(*), count(*) FILTER (WHERE d1), count(*) FILTER (WHERE d7), count(*) FILTER (WHERE d30)
       FROM (SELECT u.mini_program_id, u.workspace_id, u.first_day, u.first_version_id, u.first_host_app_id, ${back(1)} AS d1, ${back(7)} AS d7, ${back(30)} AS d30
             FROM analytics_users u WHERE u.first_day BETWEEN $1::date AND $2::date) u
       GROUP BY mini_program_id, workspace_id, first_day, ${scopes('first_version_id', 'first_host_app_id')}`,
      [cohortFrom, to])).rowCount ?? 0;
    steps.cohorts = performance.now() - t;
    await client.query('COMMIT');
    return { skipped: false, from, to, rows, steps, ms: performance.now() - started };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export interface RollupScheduler {
  /** Tell it about a flush: one that wrote rows makes a refresh due. */
  flushed(r: FlushResult): void;
  /** No more refreshes (a running one finishes). */
  stop(): void;
}

/**
 * Runs refreshDailyRollups after flushes that wrote rows, one at a time and at least `intervalMs`
 * after the previous one ended (so a slow refresh never keeps the database busy back to back; a
 * flush inside the interval makes one refresh at its end, so the last events are never left out),
 * off the flush path: a failure is logged (once per streak) and retried after the interval.
 */
export function rollupScheduler(pool: pg.Pool, intervalMs: number, log: (message: string, err?: unknown) => void = console.error): RollupScheduler {
  let due = false;
  /** The earliest day the flushes since the last refresh changed; null: none reported. */
  let dirty: string | null = null;
  /** This process's first refresh also covers the default window: a previous process may have flushed and stopped before refreshing. */
  let first = true;
  const earlier = (a: string | null, b: string | null) => (a === null ? b : b === null ? a : a < b ? a : b);
  /** The window a refresh covers when it knows nothing better: today − 8. */
  const window = () => addDays(dayString(Date.now()), -lateDays);
  let running = false;
  let stopped = false;
  let lastEnd = 0;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  const kick = () => {
    if (!due || running || timer || stopped) return;
    const wait = lastEnd + intervalMs - Date.now();
    if (wait > 0) {
      timer = setTimeout(() => ((timer = undefined), kick()), wait);
      timer.unref();
      return;
    }
    if ((pool as { ending?: boolean }).ending) return;
    due = false;
    running = true;
    const taken = dirty;
    dirty = null;
    const changedSince = first || taken === null ? earlier(taken, window()) : taken;
    refreshDailyRollups(pool, { skipIfBusy: true, changedSince })
      .then((r) => {
        failures = 0;
        // Another process was refreshing: its run may have started before these rows; try again.
        if (r.skipped) ((due = true), (dirty = earlier(dirty, taken)));
        else first = false;
      })
      .catch((err: unknown) => {
        due = true;
        dirty = earlier(dirty, taken);
        if (failures++ === 0) log('daily rollups: refresh failed; retrying', err);
      })
      .finally(() => {
        running = false;
        lastEnd = Date.now();
        kick();
      });
  };
  return {
    flushed(r) {
      if (r.written > 0) {
        due = true;
        dirty = earlier(dirty, r.firstDay ?? window());
      }
      kick();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
