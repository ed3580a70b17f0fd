import { evaluateHealth } from '../lib/health.js';
import { versionCrashRates } from '../lib/analytics/health.js';
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
     * Sums the launches and crashes of the new version and of the baseline since the stage started
     * (from the minute it started in; lib/analytics/health.ts, which the crash-rate API reads too)
     * and judges them. Reads only, so a retry is harmless.
     */
    async checkRolloutHealth(input: HealthCheckInput): Promise<HealthReport> {
      if (Number.isNaN(Date.parse(input.since))) throw new Error(`checkRolloutHealth: since is not a time: ${input.since}`);
      const counts = await versionCrashRates(sequelize, input);
      return { at: new Date().toISOString(), ...evaluateHealth(counts, input.thresholds) };
    },
  };
}
