import { defaultHealth, type HealthReport, type HealthThresholds } from '../workflows/contracts/release.js';

/** Launch and crash counts of the version rolling out and of the live version, over one window. */
export interface HealthCounts {
  launches: number;
  crashes: number;
  liveLaunches: number;
  liveCrashes: number;
}

const rate = (crashes: number, launches: number) => (launches > 0 ? crashes / launches : 0);
const pct = (r: number) => `${(r * 100).toFixed(2)}%`;
const n = (x: number) => x.toLocaleString('en-US');
const launchesOf = (x: number) => `${n(x)} launch${x === 1 ? '' : 'es'}`;
const crashesOf = (x: number) => `${n(x)} crash${x === 1 ? '' : 'es'}`;
const figures = (crashes: number, launches: number) => `${crashesOf(crashes)} / ${launchesOf(launches)}`;

/**
 * The rollout health verdict (pure). Below `minLaunches` launches of the new version there is no
 * verdict. Red when the crash rate is above `maxCrashRate`, or — when the live version has enough
 * launches and any crashes to compare with — above `maxRatioToLive` times the live version's rate.
 */
export function evaluateHealth(counts: HealthCounts, thresholds: Partial<HealthThresholds> = {}): Omit<HealthReport, 'at'> {
  const t = { ...defaultHealth, ...thresholds };
  const { launches, crashes, liveLaunches, liveCrashes } = counts;
  const crashRate = rate(crashes, launches);
  const liveCrashRate = rate(liveCrashes, liveLaunches);
  const base = { launches, crashes, crashRate, liveLaunches, liveCrashes, liveCrashRate };
  const mine = `crash rate ${pct(crashRate)} (${figures(crashes, launches)})`;
  const live = `the live version's ${pct(liveCrashRate)} (${figures(liveCrashes, liveLaunches)})`;

  if (launches < t.minLaunches) {
    return { ...base, verdict: 'insufficient_data', reason: `only ${launchesOf(launches)} of the new version so far (${crashesOf(crashes)}); the check judges from ${n(t.minLaunches)}` };
  }
  const comparable = liveLaunches >= t.minLaunches && liveCrashRate > 0;
  const aboveLimit = crashRate > t.maxCrashRate;
  const aboveLive = comparable && crashRate > t.maxRatioToLive * liveCrashRate;
  if (aboveLimit || aboveLive) {
    const why = [
      aboveLimit ? `is above the ${pct(t.maxCrashRate)} limit` : null,
      aboveLive ? `is above ${t.maxRatioToLive}× ${live}` : null,
    ].filter(Boolean).join(' and ');
    return { ...base, verdict: 'red', reason: `${mine} ${why}` };
  }
  const against = comparable
    ? `and ${t.maxRatioToLive}× ${live}`
    : liveLaunches >= t.minLaunches
      ? `(the live version had no crashes in ${launchesOf(liveLaunches)}, so no ratio applies)`
      : `(the live version has too few launches to compare: ${n(liveLaunches)})`;
  return { ...base, verdict: 'green', reason: `${mine} is within the ${pct(t.maxCrashRate)} limit ${against}` };
}
