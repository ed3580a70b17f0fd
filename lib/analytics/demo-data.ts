import pg from 'pg';
import type { Config } from '../config.js';
import { applyCrashGroups } from './crash-groups.js';
import { generateEvents } from './generate.js';
import { IngestBuffer } from './ingest.js';

/** Days of demo traffic, and its users. */
export const demoAnalyticsDays = 14;
const demoUsersCount = 600;

/**
 * Demo data for the analytics dashboards: two weeks of generated traffic for the demo mini program
 * (its released and rolling-out versions), written through the ingest buffer like real events, so
 * every rollup, crash group and the rollout's health counts are there. Idempotent: does nothing when
 * the mini program already has analytics rows, or has no version yet. Returns the events written.
 */
export async function seedDemoAnalytics(o: { databaseUrl: string; settings: Config['analytics']; workspaceId: string; miniProgramId: string; versionIds: string[]; now?: number }): Promise<number> {
  const pool = new pg.Pool({ connectionString: o.databaseUrl, max: 2 });
  try {
    const { rowCount: has } = await pool.query('SELECT 1 FROM analytics_hourly WHERE mini_program_id = $1 LIMIT 1', [o.miniProgramId]);
    if (has) return 0;
    const { rows } = await pool.query<{ id: string }>('SELECT id FROM versions WHERE mini_program_id = $1 AND id = ANY($2::text[])', [o.miniProgramId, o.versionIds]);
    const versions = o.versionIds.filter((id) => rows.some((r) => r.id === id));
    if (!versions.length) return 0;
    const { rows: apps } = await pool.query<{ id: string }>('SELECT id FROM host_apps WHERE workspace_id = $1 ORDER BY created_at LIMIT 2', [o.workspaceId]);
    // Crash groups, yes; alerts for history, no (no onCrashNews).
    const buffer = new IngestBuffer({ pool, settings: o.settings, applyCrashGroups, maintenance: false });
    let written = 0;
    try {
      for (const chunk of generateEvents({
        seed: 'demo', workspaceId: o.workspaceId, miniProgramId: o.miniProgramId, versions, users: demoUsersCount, days: demoAnalyticsDays,
        end: o.now ?? Date.now(), hostApps: [...apps.map((a, i) => ({ id: a.id, weight: 3 - i })), { id: null, weight: 1 }], chunkSize: 5000,
      })) written += (await buffer.acceptAndWait(chunk)).written;
    } finally {
      await buffer.close();
    }
    return written;
  } finally {
    await pool.end();
  }
}
