import type pg from 'pg';

const dayMs = 86_400_000;
/** Partitions made ahead of need: from this many days back to this many days ahead of today. */
const aheadDaysBack = 7;
const aheadDaysForward = 2;
/** One maintenance at a time across API processes (pg_try_advisory_xact_lock key). */
const maintenanceLockKey = 0x6d70_6470_0007; // "mpdp" + issue 7
const partitionName = /^analytics_events_(\d{4})(\d{2})(\d{2})$/;

export interface MaintenanceResult {
  /** False when another process held the maintenance lock: nothing was done. */
  ran: boolean;
  /** Days (YYYY-MM-DD) whose partition this run created. */
  created: string[];
  /** Days whose partition this run dropped (every event in it older than the retention). */
  dropped: string[];
}

/** The UTC day (YYYY-MM-DD) of a time in ms. */
export function utcDay(ms: number): string {
  return new Date(Math.floor(ms / dayMs) * dayMs).toISOString().slice(0, 10);
}

/**
 * Keeps the raw event partitions in shape: makes the partitions of today-7 … today+2 (so a flush
 * rarely has to), and drops whole the partitions whose every event is older than `retentionDays`
 * (the day D goes once D + 1 day ≤ now − retentionDays). Under a transaction-level advisory lock,
 * so API processes running it at once do it once; the others answer `ran: false`.
 */
export async function runAnalyticsMaintenance(pool: pg.Pool, o: { retentionDays: number; now?: number | Date }): Promise<MaintenanceResult> {
  const now = o.now === undefined ? Date.now() : typeof o.now === 'number' ? o.now : o.now.getTime();
  const today = Math.floor(now / dayMs) * dayMs;
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const { rows: [lock] } = await client.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS got', [maintenanceLockKey]);
      if (!lock?.got) {
        await client.query('ROLLBACK');
        return { ran: false, created: [], dropped: [] };
      }
      // Dropping a partition waits for the flushes that use it: never for long, never forever.
      await client.query(`SET LOCAL lock_timeout = '10s'`);
      const { rows } = await client.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'analytics_events'::regclass`,
      );
      const existing = new Set<string>();
      for (const { name } of rows) {
        const m = partitionName.exec(name);
        if (m) existing.add(`${m[1]}-${m[2]}-${m[3]}`);
      }
      const cutoff = now - o.retentionDays * dayMs;
      const created: string[] = [];
      for (let d = -aheadDaysBack; d <= aheadDaysForward; d++) {
        const start = today + d * dayMs;
        const day = utcDay(start);
        if (existing.has(day) || start + dayMs <= cutoff) continue;
        await client.query('SELECT analytics_ensure_partition($1::date)', [day]);
        created.push(day);
      }
      const dropped: string[] = [];
      for (const day of [...existing].sort()) {
        if (Date.parse(`${day}T00:00:00Z`) + dayMs > cutoff) continue;
        await client.query(`DROP TABLE IF EXISTS analytics_events_${day.replaceAll('-', '')}`);
        dropped.push(day);
      }
      await client.query('COMMIT');
      return { ran: true, created, dropped };
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    }
  } finally {
    client.release(broken);
  }
}
