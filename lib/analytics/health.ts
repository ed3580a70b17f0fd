import { QueryTypes, type Sequelize } from 'sequelize';
import type { HealthCounts } from '../health.js';

export interface VersionCrashRatesInput {
  miniProgramId: string;
  /** The version rolling out. */
  versionId: string;
  /** The live version it is compared with (none on a first release). */
  baselineVersionId: string | null;
  /** Count from this instant (a stage's start): from the minute it falls in. */
  since: string;
  /** Count up to this instant (exclusive, by minute); omitted: up to now and beyond. */
  until?: string | null;
}

/** The minute `iso` falls in (runtime_counts is kept per minute). */
export function minuteOf(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`versionCrashRates: not a time: ${iso}`);
  return new Date(Math.floor(ms / 60_000) * 60_000).toISOString();
}

/**
 * Launches and crashes of a version and of the live version since an instant, from runtime_counts
 * (the per-minute rollup ingest maintains from launch and crash events). The one reading of the
 * numbers: the rollout's health check (activities/runtime.ts) and the crash-rate API both call it,
 * so the console shows exactly what the auto-halt judged.
 */
export async function versionCrashRates(sequelize: Sequelize, input: VersionCrashRatesInput): Promise<HealthCounts> {
  const [row] = await sequelize.query<{ launches: string; crashes: string; live_launches: string; live_crashes: string }>(
    `SELECT coalesce(sum(launches) FILTER (WHERE version_id = :versionId), 0) AS launches,
            coalesce(sum(crashes) FILTER (WHERE version_id = :versionId), 0) AS crashes,
            coalesce(sum(launches) FILTER (WHERE version_id = :baselineVersionId), 0) AS live_launches,
            coalesce(sum(crashes) FILTER (WHERE version_id = :baselineVersionId), 0) AS live_crashes
     FROM runtime_counts
     WHERE mini_program_id = :miniProgramId AND version_id IN (:versionId, :baselineId) AND minute >= :fromMinute
       AND (:untilMinute::timestamptz IS NULL OR minute < :untilMinute::timestamptz)`,
    {
      replacements: {
        miniProgramId: input.miniProgramId, versionId: input.versionId, fromMinute: minuteOf(input.since),
        untilMinute: input.until ? minuteOf(input.until) : null,
        // Without a baseline the IN list repeats the new version, and `= NULL` matches nothing: live sums stay 0.
        baselineVersionId: input.baselineVersionId, baselineId: input.baselineVersionId ?? input.versionId,
      },
      type: QueryTypes.SELECT,
    },
  );
  return {
    launches: Number(row?.launches ?? 0), crashes: Number(row?.crashes ?? 0),
    liveLaunches: Number(row?.live_launches ?? 0), liveCrashes: Number(row?.live_crashes ?? 0),
  };
}

export interface VersionTotals {
  versionId: string;
  launches: number;
  crashes: number;
}

/** Launches and crashes per version of a mini program over [from, to) (runtime_counts, by minute). */
export async function crashTotalsByVersion(sequelize: Sequelize, input: { miniProgramId: string; from: string; to: string }): Promise<VersionTotals[]> {
  const rows = await sequelize.query<{ version_id: string; launches: string; crashes: string }>(
    `SELECT version_id, sum(launches) AS launches, sum(crashes) AS crashes FROM runtime_counts
     WHERE mini_program_id = :miniProgramId AND minute >= :from AND minute < :to GROUP BY version_id`,
    { replacements: { miniProgramId: input.miniProgramId, from: minuteOf(input.from), to: minuteOf(input.to) }, type: QueryTypes.SELECT },
  );
  return rows.map((r) => ({ versionId: r.version_id, launches: Number(r.launches), crashes: Number(r.crashes) }));
}
