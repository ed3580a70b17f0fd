import { randomUUID } from 'node:crypto';
import { QueryTypes } from 'sequelize';
import type { Stack } from './stack.js';

/** An event as a test posts it to POST /api/v1/collect (the API validates it). */
export type CollectEvent = Record<string, unknown>;

const keys = new Map<string, string>();

/** The mini program's public ingest key, read from the database (cached: rotate tests pass `key`). */
export async function ingestKeyOf(stack: Stack, miniProgramId: string): Promise<string> {
  const cached = keys.get(miniProgramId);
  if (cached) return cached;
  const [row] = await stack.sequelize.query<{ ingest_key: string }>('SELECT ingest_key FROM mini_programs WHERE id = :id', { replacements: { id: miniProgramId }, type: QueryTypes.SELECT });
  if (!row) throw new Error(`no mini program ${miniProgramId}`);
  keys.set(miniProgramId, row.ingest_key);
  return row.ingest_key;
}

/**
 * Posts events to the real collect endpoint with the mini program's ingest key (the key of the
 * first event's mini program unless given); `wait` (default true) answers after the commit.
 */
export async function collect(stack: Stack, events: CollectEvent[], o: { key?: string; wait?: boolean } = {}) {
  let key = o.key;
  if (!key) {
    const miniProgramId = events.find((e) => typeof e.miniProgramId === 'string')?.miniProgramId as string | undefined;
    if (!miniProgramId) throw new Error('collect(): no key given and no event names its miniProgramId');
    key = await ingestKeyOf(stack, miniProgramId);
  }
  const res = await fetch(`${stack.baseUrl}/api/v1/collect${o.wait === false ? '' : '?wait=true'}`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-mpdp-ingest-key': key }, body: JSON.stringify({ events }),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch { /* not JSON */ }
  return { status: res.status, body, headers: res.headers };
}

/**
 * What a host app's runtime reports for the rollout health check: `launches` launch events and
 * `crashes` crash events of one version (random users and sessions, fresh uuid ids), posted in
 * batches of 500 with `wait=true`, so they are in runtime_counts when this resolves.
 * Launches go first: a health check that runs between two batches never sees crashes without
 * their launches.
 */
export async function reportHealth(stack: Stack, o: { miniProgramId: string; versionId: string; launches: number; crashes: number; at?: Date | string | number }) {
  const at = o.at === undefined ? Date.now() : typeof o.at === 'number' ? o.at : new Date(o.at).getTime();
  const users = Math.max(1, Math.ceil(o.launches / 3));
  const event = (type: 'launch' | 'crash', i: number): CollectEvent => ({
    id: randomUUID(), type, at, miniProgramId: o.miniProgramId, versionId: o.versionId,
    userId: `user-${i % users}-${randomUUID().slice(0, 8)}`, sessionId: randomUUID(),
    ...(type === 'crash' ? { message: 'TypeError: Cannot read properties of undefined (reading \'items\')', stack: 'TypeError: Cannot read properties of undefined (reading \'items\')\n    at renderCart (pages/cart/cart.js:42:17)\n    at Page.onShow (pages/cart/cart.js:12:5)' } : {}),
  });
  const events = [...Array.from({ length: o.launches }, (_, i) => event('launch', i)), ...Array.from({ length: o.crashes }, (_, i) => event('crash', i))];
  let written = 0;
  for (let i = 0; i < events.length; i += 500) {
    const res = await collect(stack, events.slice(i, i + 500));
    if (res.status !== 202 || res.body?.rejected?.length) throw new Error(`collect answered ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
    written += Number(res.body.written ?? 0);
  }
  return { launches: o.launches, crashes: o.crashes, written };
}
