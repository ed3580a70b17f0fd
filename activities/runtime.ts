import { QueryTypes } from 'sequelize';
import { evaluateHealth } from '../lib/health.js';
import type { HealthReport, HealthThresholds } from '../workflows/contracts/release.js';
import type { ActivityDeps } from './index.js';

export interface HealthCheckInput {
  miniProgramId: string;
  /** The version rolling out. */
  versionId: string;
  /** The live version it is compared with (none on a first release). */
  baselineVersionId: string | null;
  /** Count reports from this instant (the stage's start). */
  since: string;
  thresholds: HealthThresholds;
}

/** The rollout health check (owned by the runtime work; see lib/health.ts). */
export function createRuntimeActivities({ sequelize }: ActivityDeps) {
  return {
    /**
     * Sums the runtime reports of the new version and of the baseline since the stage started
     * (from the minute it started in) and judges them. Reads only, so a retry is harmless.
     */
    async checkRolloutHealth(input: HealthCheckInput): Promise<HealthReport> {
      const since = Date.parse(input.since);
      if (Number.isNaN(since)) throw new Error(`checkRolloutHealth: since is not a time: ${input.since}`);
      const fromMinute = new Date(Math.floor(since / 60_000) * 60_000).toISOString();
      const [row] = await sequelize.query<{ launches: string; crashes: string; live_launches: string; live_crashes: string }>(
        `SELECT coalesce(sum(launches) FILTER (WHERE version_id = :versionId), 0) AS launches,
                coalesce(sum(crashes) FILTER (WHERE version_id = :versionId), 0) AS crashes,
                coalesce(sum(launches) FILTER (WHERE version_id = :baselineVersionId), 0) AS live_launches,
                coalesce(sum(crashes) FILTER (WHERE version_id = :baselineVersionId), 0) AS live_crashes
         FROM runtime_counts
         WHERE mini_program_id = :miniProgramId AND version_id IN (:versionId, :baselineId) AND minute >= :fromMinute`,
        {
          replacements: {
            miniProgramId: input.miniProgramId, versionId: input.versionId, fromMinute,
            // Without a baseline the IN list repeats the new version, and `= NULL` matches nothing: live sums stay 0.
            baselineVersionId: input.baselineVersionId, baselineId: input.baselineVersionId ?? input.versionId,
          },
          type: QueryTypes.SELECT,
        },
      );
      const counts = {
        launches: Number(row?.launches ?? 0), crashes: Number(row?.crashes ?? 0),
        liveLaunches: Number(row?.live_launches ?? 0), liveCrashes: Number(row?.live_crashes ?? 0),
      };
      return { at: new Date().toISOString(), ...evaluateHealth(counts, input.thresholds) };
    },
  };
}
