import { condition, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';

/** Workflows of the dispatch benchmark only (bundled by bench/dispatch.ts, not by the worker). */
export const echoUpdate = defineUpdate<number, [number]>('echo');
const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '10s' });

/** Answers an update at once. */
export async function bareEcho(): Promise<void> {
  setHandler(echoUpdate, (n) => n);
  await condition(() => false);
}

/** Answers an update after one activity: one activity dispatch plus one workflow task dispatch. */
export async function echoAfterActivity(): Promise<void> {
  setHandler(echoUpdate, async (n) => {
    await noop();
    return n;
  });
  await condition(() => false);
}
