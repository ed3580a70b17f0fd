import { condition, setHandler } from '@temporalio/workflow';
import { pingUpdate } from './contracts/ping.js';

/** An empty workflow whose only job is to answer a `ping` Update; it ends after `ttlMs`. */
export async function pingWorkflow(ttlMs: number): Promise<void> {
  setHandler(pingUpdate, (n) => n);
  await condition(() => false, ttlMs);
}
