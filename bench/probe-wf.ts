import { condition, defineUpdate, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { ReleaseStateKey } from '../workflows/contracts/search-attributes.js';
export const u = defineUpdate<number, [number]>('u');
const { noop } = proxyActivities<{ noop(): Promise<void> }>({ startToCloseTimeout: '10s' });
export async function wfA() { setHandler(u, (n) => n); await condition(() => false); }
export async function wfB() { const q: number[] = []; setHandler(u, (n) => { q.push(n); return n; }); for (;;) { await condition(() => q.length > 0); q.shift(); await noop(); } }
export async function wfC() { setHandler(u, (n) => { upsertSearchAttributes([{ key: ReleaseStateKey, value: String(n) }]); return n; }); await condition(() => false); }
