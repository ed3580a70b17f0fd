import { proxyActivities, sleep } from '@temporalio/workflow';

/** Workflows of the release-ladder benchmark only (bundled by bench/release-ladder.ts, not by the worker). */
const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '10 seconds' });

export interface LadderBaselineInput {
  /** Timers to start, in turn. */
  timers: number;
  /** Activities to run, spread over a batch before the first timer and one after each. */
  activities: number;
  /** Sum of the timers' durations (the ladder's soak time). */
  totalSleepMs: number;
}

/**
 * The least a ladder rollout can cost: its timers and activities and nothing else. A batch's
 * activities run side by side, as a pipeline's projection and webhook run alongside its next soak.
 */
export async function ladderBaseline({ timers, activities, totalSleepMs }: LadderBaselineInput): Promise<void> {
  const batches = timers + 1;
  let left = activities;
  for (let i = 0; i < batches; i++) {
    const n = Math.ceil(left / (batches - i));
    await Promise.all(Array.from({ length: n }, () => noop()));
    left -= n;
    if (i < timers) await sleep(totalSleepMs / timers);
  }
}
