import { proxyActivities, sleep } from '@temporalio/workflow';

/** Workflows of the release-ladder benchmark only (bundled by bench/release-ladder.ts, not by the worker). */
const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '10 seconds' });

export interface LadderBaselineInput {
  /** Timers to start, in turn. */
  timers: number;
  /** Activities to run: one awaited after each timer, the others alongside. */
  activities: number;
  /** Sum of the timers' durations (the ladder's soak time). */
  totalSleepMs: number;
}

/**
 * The least a ladder rollout can cost, in the same shape and nothing else: a timer per soak, one
 * activity awaited after each (the health check), the rest started alongside without waiting (the
 * projections and webhooks), in a batch at the start and after each awaited one; done when all are.
 */
export async function ladderBaseline({ timers, activities, totalSleepMs }: LadderBaselineInput): Promise<void> {
  const onPath = Math.min(timers, activities);
  let background = activities - onPath;
  const started: Promise<void>[] = [];
  const batches = timers + 1;
  for (let i = 0; i < batches; i++) {
    if (i > 0) {
      await sleep(totalSleepMs / timers);
      if (i <= onPath) await noop();
    }
    const n = Math.ceil(background / (batches - i));
    for (let k = 0; k < n; k++) started.push(noop());
    background -= n;
  }
  await Promise.all(started);
}
