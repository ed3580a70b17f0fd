import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { classicScript, sdkHandler } from '../api/routes/sdk.js';
import { createTracker, type TrackedEvent, type TrackerOptions, type TrackerStorage, type TransportAnswer } from './mpdp-tracker.js';

/**
 * The tracker against a fake transport, fake timers (vitest's, which also move Date.now), a fake
 * storage and a fake window (an EventTarget with a document): batching, limits, retries, sessions,
 * ids, error capture and page hide.
 */

const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const key = 'mpik_test_key';

class FakeWindow extends EventTarget {
  crypto = globalThis.crypto;
  location = { pathname: '/shop/cart' };
  document = Object.assign(new EventTarget(), { visibilityState: 'visible' as 'visible' | 'hidden' });
  hide() {
    this.document.visibilityState = 'hidden';
    this.document.dispatchEvent(new Event('visibilitychange'));
  }
  show() {
    this.document.visibilityState = 'visible';
    this.document.dispatchEvent(new Event('visibilitychange'));
  }
}

function memoryStorage(): TrackerStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, get: (k) => data.get(k) ?? null, set: (k, v) => void data.set(k, v), remove: (k) => void data.delete(k) };
}

interface Call { url: string; events: TrackedEvent[]; at: number }

/** A transport that records each send and answers with the next scripted answer (default: all accepted). */
function fakeTransport() {
  const calls: Call[] = [];
  const beacons: Call[] = [];
  const answers: (TransportAnswer | Error | ((events: TrackedEvent[]) => TransportAnswer))[] = [];
  let beaconAccepts = true;
  return {
    calls, beacons, answers,
    refuseBeacons() { beaconAccepts = false; },
    transport: {
      async send(url: string, body: string): Promise<TransportAnswer> {
        const events = (JSON.parse(body) as { events: TrackedEvent[] }).events;
        calls.push({ url, events, at: Date.now() });
        const next = answers.shift();
        if (next instanceof Error) throw next;
        if (typeof next === 'function') return next(events);
        return next ?? { status: 202, retryAfter: null, body: { accepted: events.length, rejected: [] } };
      },
      beacon(url: string, body: string) {
        if (!beaconAccepts) return false;
        beacons.push({ url, events: (JSON.parse(body) as { events: TrackedEvent[] }).events, at: Date.now() });
        return true;
      },
    },
  };
}

let win: FakeWindow;
let storage: ReturnType<typeof memoryStorage>;
let net: ReturnType<typeof fakeTransport>;
let dropped: { events: TrackedEvent[]; reason: string }[];

function tracker(o: Partial<TrackerOptions> = {}) {
  return createTracker({
    endpoint: 'https://mpdp.example.test/', ingestKey: key, miniProgramId: 'mp_1', version: '1.2.0',
    global: win, storage, transport: net.transport, random: () => 0.5,
    onDrop: (events, reason) => dropped.push({ events, reason }),
    ...o,
  });
}

/** Lets the fake transport's promises settle between timer steps. */
async function settle() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
async function advance(ms: number) {
  await vi.advanceTimersByTimeAsync(ms);
  await settle();
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-12-07T10:00:00Z') });
  win = new FakeWindow();
  storage = memoryStorage();
  net = fakeTransport();
  dropped = [];
});
afterEach(() => {
  vi.useRealTimers();
});

describe('batching', () => {
  it('holds events for flushIntervalMs, then sends them in one batch to the collect URL with ?key=', async () => {
    const t = tracker();
    t.launch();
    t.pageView('/home', 1200);
    t.track('add_to_cart', { sku: 'A1' });
    t.perf('first_paint', 312.5);
    await advance(4999);
    expect(net.calls).toHaveLength(0);
    await advance(1);
    expect(net.calls).toHaveLength(1);
    const [call] = net.calls;
    expect(call!.url).toBe(`https://mpdp.example.test/api/v1/collect?key=${key}`);
    expect(call!.events.map((e) => e.type)).toEqual(['launch', 'page_view', 'custom', 'perf']);
    const [launch, view, custom, perf] = call!.events;
    expect(launch).toMatchObject({ miniProgramId: 'mp_1', version: '1.2.0', at: Date.parse('2026-12-07T10:00:00Z'), userId: t.userId, sessionId: t.sessionId });
    expect(view).toMatchObject({ page: '/home', value: 1200 });
    expect(custom).toMatchObject({ name: 'add_to_cart', properties: { sku: 'A1' }, page: '/shop/cart' });
    expect(perf).toMatchObject({ name: 'first_paint', value: 312.5 });
    expect(t.stats()).toMatchObject({ pending: 0, sent: 4, dropped: 0 });
  });

  it('sends at once when maxBatch events wait, in batches of at most maxBatch', async () => {
    const t = tracker({ maxBatch: 10 });
    for (let i = 0; i < 25; i++) t.track(`e${i}`);
    await advance(0);
    expect(net.calls.map((c) => c.events.length)).toEqual([10, 10, 5]);
    expect(net.calls.flatMap((c) => c.events.map((e) => e.name))).toEqual(Array.from({ length: 25 }, (_, i) => `e${i}`));
    expect(t.stats().pending).toBe(0);
  });

  it('never sends more than 500 events in a batch, whatever maxBatch says', async () => {
    const t = tracker({ maxBatch: 5000, maxQueue: 5000 });
    for (let i = 0; i < 1200; i++) t.track('tap');
    await t.flush();
    expect(net.calls.map((c) => c.events.length)).toEqual([500, 500, 200]);
  });

  it('uses a collect URL as given, and versionId and hostAppId when configured', async () => {
    const t = tracker({ endpoint: 'https://in.example.test/api/v1/collect', version: undefined, versionId: 'ver_9', hostAppId: 'app_1' });
    t.launch();
    await t.flush();
    expect(net.calls[0]!.url).toBe(`https://in.example.test/api/v1/collect?key=${key}`);
    expect(net.calls[0]!.events[0]).toMatchObject({ versionId: 'ver_9', hostAppId: 'app_1' });
    expect(net.calls[0]!.events[0]).not.toHaveProperty('version');
  });

  it('refuses to start without an endpoint, key or version', () => {
    expect(() => tracker({ endpoint: '' })).toThrow(/endpoint/);
    expect(() => tracker({ ingestKey: '' })).toThrow(/ingestKey/);
    expect(() => tracker({ version: undefined })).toThrow(/version/);
  });
});

describe('retries', () => {
  it('retries network errors with exponential backoff and jitter, keeping the events in order', async () => {
    const t = tracker({ retryBaseMs: 1000, random: () => 0.5 });
    net.answers.push(new Error('offline'), new Error('offline'), new Error('offline'));
    t.launch();
    t.pageView('/a');
    await t.flush();
    expect(net.calls).toHaveLength(1);
    // Equal jitter at random() = 0.5: 750 ms, then 1500 ms, then 3000 ms.
    for (const wait of [750, 1500, 3000]) {
      const before = net.calls.length;
      await advance(wait - 1);
      expect(net.calls).toHaveLength(before);
      await advance(1);
      expect(net.calls).toHaveLength(before + 1);
    }
    expect(net.calls.map((c) => c.events.map((e) => e.id))).toEqual(Array(4).fill(net.calls[0]!.events.map((e) => e.id)));
    expect(t.stats()).toMatchObject({ pending: 0, sent: 2, retries: 3 });
  });

  it('spreads retries with jitter and caps the wait at retryMaxMs', async () => {
    const delays = (random: number) => {
      const cap = (n: number) => Math.min(8000, 1000 * 2 ** n);
      return [0, 1, 2, 3, 4, 5, 6].map((n) => cap(n) / 2 + random * (cap(n) / 2));
    };
    expect(delays(0)).toEqual([500, 1000, 2000, 4000, 4000, 4000, 4000]);
    // Measured: with random() = 0 and 1 the retries come at the low and high ends of each step.
    for (const random of [0, 0.999]) {
      net = fakeTransport();
      for (let i = 0; i < 7; i++) net.answers.push({ status: 503, retryAfter: null });
      const t = tracker({ retryBaseMs: 1000, retryMaxMs: 8000, random: () => random });
      t.launch();
      await t.flush();
      for (let i = 0; i < 6; i++) await advance(8000);
      const gaps = net.calls.slice(1).map((c, i) => c.at - net.calls[i]!.at);
      expect(gaps).toEqual(delays(random).map((d) => Math.ceil(d)));
      await t.shutdown();
    }
  });

  it('honours Retry-After (seconds or an HTTP date) on 429 and 503', async () => {
    const t = tracker({ random: () => 0 });
    net.answers.push({ status: 429, retryAfter: '7' }, { status: 503, retryAfter: new Date(Date.now() + 7000 + 20_000).toUTCString() });
    t.launch();
    await t.flush();
    await advance(6999);
    expect(net.calls).toHaveLength(1);
    await advance(1);
    expect(net.calls).toHaveLength(2);
    // The date said 20 s after the second try (HTTP dates have whole seconds).
    await advance(19_000);
    expect(net.calls).toHaveLength(2);
    await advance(1000);
    expect(net.calls).toHaveLength(3);
    expect(t.stats()).toMatchObject({ pending: 0, sent: 1 });
  });

  it('explicit flush() waits out a backoff instead of hammering the server', async () => {
    const t = tracker();
    net.answers.push({ status: 503, retryAfter: '30' });
    t.launch();
    await t.flush();
    await t.flush();
    await t.flush();
    expect(net.calls).toHaveLength(1);
    await advance(30_500);
    expect(net.calls).toHaveLength(2);
  });

  it('drops a batch refused with a 4xx other than 429, without retrying', async () => {
    const t = tracker();
    net.answers.push({ status: 401, body: { error: { code: 'unknown_ingest_key' } } });
    t.launch();
    t.pageView('/a');
    await t.flush();
    await advance(120_000);
    expect(net.calls).toHaveLength(1);
    expect(dropped).toEqual([{ events: net.calls[0]!.events, reason: 'http_401' }]);
    expect(t.stats()).toMatchObject({ pending: 0, dropped: 2, sent: 0 });
    // The next events go out normally.
    t.pageView('/b');
    await t.flush();
    expect(net.calls).toHaveLength(2);
  });

  it('drops the events the server rejected (by index) and never resends them', async () => {
    const t = tracker();
    net.answers.push((events) => ({ status: 202, body: { accepted: events.length - 1, rejected: [{ index: 1, code: 'missing_page', field: 'page', message: 'page is required' }], durable: false } }));
    t.launch();
    t.track('ok');
    t.track('ok2');
    await t.flush();
    await advance(60_000);
    expect(net.calls).toHaveLength(1);
    expect(dropped).toHaveLength(1);
    expect(dropped[0]!.reason).toBe('rejected');
    expect(dropped[0]!.events).toEqual([{ ...net.calls[0]!.events[1], rejected: { index: 1, code: 'missing_page', field: 'page', message: 'page is required' } }]);
    expect(t.stats()).toMatchObject({ pending: 0, sent: 2, rejected: 1 });
  });

  it('keeps at most maxQueue events while the server is away, dropping the oldest', async () => {
    const t = tracker({ maxQueue: 5, maxBatch: 50 });
    net.answers.push(new Error('offline'), new Error('offline'));
    const ids = Array.from({ length: 8 }, (_, i) => t.track(`e${i}`));
    await t.flush();
    expect(t.stats().pending).toBe(5);
    expect(dropped.flatMap((d) => d.events.map((e) => e.id))).toEqual(ids.slice(0, 3));
    expect(dropped.every((d) => d.reason === 'queue_full')).toBe(true);
    await advance(10_000);
    expect(net.calls.at(-1)!.events.map((e) => e.name)).toEqual(['e3', 'e4', 'e5', 'e6', 'e7']);
    expect(t.stats().pending).toBe(0);
  });
});

describe('identity', () => {
  it('keeps one anonymous user id in storage across trackers; userId overrides it', async () => {
    const a = tracker();
    const b = tracker();
    expect(a.userId).toMatch(uuidV4);
    expect(b.userId).toBe(a.userId);
    expect(storage.data.get('mpdp_uid')).toBe(a.userId);
    const other = createTracker({ endpoint: 'https://x.test', ingestKey: key, version: '1.0.0', global: win, storage: memoryStorage(), transport: net.transport });
    expect(other.userId).not.toBe(a.userId);
    const signedIn = tracker({ userId: 'member-42' });
    signedIn.launch();
    signedIn.setUserId('member-43');
    signedIn.track('x');
    signedIn.setUserId(null);
    signedIn.track('y');
    await signedIn.flush();
    expect(net.calls[0]!.events.map((e) => e.userId)).toEqual(['member-42', 'member-43', a.userId]);
  });

  it('starts a session per launch and after 30 minutes without events', async () => {
    const t = tracker();
    t.launch();
    const first = t.sessionId;
    expect(first).toMatch(uuidV4);
    await advance(29 * 60_000);
    t.pageView('/a');
    expect(t.sessionId).toBe(first);
    await advance(29 * 60_000);
    t.pageView('/b');
    expect(t.sessionId).toBe(first);
    await advance(30 * 60_000 + 1);
    t.pageView('/c');
    const second = t.sessionId;
    expect(second).not.toBe(first);
    t.launch();
    expect(t.sessionId).not.toBe(second);
    await t.flush();
    const sessions = net.calls.flatMap((c) => c.events.map((e) => e.sessionId));
    expect(new Set(sessions).size).toBe(3);
    // A reloaded page within the timeout continues the stored session.
    expect(tracker().sessionId).toBe(t.sessionId);
  });

  it('gives every event a unique uuid v4, with and without crypto.randomUUID', async () => {
    const t = tracker();
    const noRandomUuid = new FakeWindow();
    noRandomUuid.crypto = { getRandomValues: (b: Uint8Array) => globalThis.crypto.getRandomValues(b) } as Crypto;
    const u = tracker({ global: noRandomUuid });
    const noCrypto = new FakeWindow();
    noCrypto.crypto = undefined as unknown as Crypto;
    const v = tracker({ global: noCrypto, storage: memoryStorage() });
    const ids = [...Array.from({ length: 200 }, () => t.track('a')), ...Array.from({ length: 200 }, () => u.track('b')), ...Array.from({ length: 200 }, () => v.track('c'))];
    for (const id of ids) expect(id).toMatch(uuidV4);
    expect(new Set(ids).size).toBe(600);
    expect(v.userId).toMatch(uuidV4);
  });
});

describe('errors', () => {
  const errorEvent = (error: unknown, extra: Record<string, unknown> = {}) => Object.assign(new Event('error'), { error, message: error instanceof Error ? error.message : '', ...extra });
  const rejection = (reason: unknown) => Object.assign(new Event('unhandledrejection'), { reason });

  it('records an uncaught exception as a crash and an unhandled rejection as an error, with stacks', async () => {
    const t = tracker();
    const thrown = new TypeError("Cannot read properties of undefined (reading 'price')");
    thrown.stack = `TypeError: Cannot read properties of undefined (reading 'price')\n    at renderCart (https://shop.example/assets/cart.3f9a.js:12:34)\n    at onShow (https://shop.example/assets/app.js:1:99)`;
    win.dispatchEvent(errorEvent(thrown));
    const rejected = new Error('checkout failed: 502');
    win.dispatchEvent(rejection(rejected));
    win.dispatchEvent(rejection('plain string reason'));
    // A resource that failed to load is not a script error.
    win.dispatchEvent(new Event('error'));
    // A cross-origin script error carries only a message and a place.
    win.dispatchEvent(errorEvent(null, { message: 'Script error.', filename: 'https://cdn.example/x.js', lineno: 3, colno: 7 }));
    await t.flush();
    const events = net.calls[0]!.events;
    expect(events.map((e) => e.type)).toEqual(['crash', 'error', 'error', 'crash']);
    expect(events[0]).toMatchObject({ message: "TypeError: Cannot read properties of undefined (reading 'price')", stack: thrown.stack, page: '/shop/cart' });
    expect(events[1]).toMatchObject({ message: 'checkout failed: 502', stack: rejected.stack });
    expect(events[1]!.stack).toContain('mpdp-tracker.unit.test.ts');
    expect(events[2]).toMatchObject({ message: 'UnhandledRejection: plain string reason' });
    expect(events[2]).not.toHaveProperty('stack');
    expect(events[3]).toMatchObject({ message: 'Script error.', stack: 'at https://cdn.example/x.js:3:7' });
  });

  it('captureError reports error, or crash when fatal; uncaught: "error" keeps uncaught ones as errors', async () => {
    const t = tracker({ uncaught: 'error' });
    t.captureError(new RangeError('bad quantity'));
    t.captureError(new Error('white screen'), { fatal: true, page: '/pay' });
    win.dispatchEvent(errorEvent(new Error('uncaught')));
    await t.flush();
    expect(net.calls[0]!.events.map((e) => [e.type, e.message, e.page])).toEqual([
      ['error', 'RangeError: bad quantity', '/shop/cart'], ['crash', 'white screen', '/pay'], ['error', 'uncaught', '/shop/cart'],
    ]);
  });

  it('clips messages and stacks to what the server takes, and caps an error storm per minute', async () => {
    const t = tracker({ maxErrorsPerMinute: 3 });
    const huge = new Error('x'.repeat(20_000));
    huge.stack = 'y'.repeat(100_000);
    for (let i = 0; i < 5; i++) t.captureError(huge);
    await t.flush();
    const events = net.calls[0]!.events;
    expect(events).toHaveLength(3);
    expect(events[0]!.message!.length).toBe(8 * 1024);
    expect(events[0]!.stack!.length).toBe(32 * 1024);
    await advance(60_000);
    t.captureError(new Error('later'));
    await t.flush();
    expect(net.calls.at(-1)!.events.map((e) => e.message)).toEqual(['later']);
  });

  it('hooks my.onError / wx.onError and their unhandled rejections when present', async () => {
    const handlers: Record<string, (arg: unknown) => void> = {};
    const my = { onError: (fn: (a: unknown) => void) => (handlers.error = fn), onUnhandledRejection: (fn: (a: unknown) => void) => (handlers.rejection = fn), onAppHide: (fn: (a: unknown) => void) => (handlers.hide = fn) };
    const g = Object.assign(new FakeWindow(), { my });
    // A mini program's transport: requests, no sendBeacon.
    const t = tracker({ global: g, transport: { send: net.transport.send } });
    handlers.error!('ReferenceError: cart is not defined\n    at Page.onLoad (pages/cart/cart.js:10:3)');
    handlers.rejection!({ reason: new Error('request:fail timeout') });
    await t.flush();
    expect(net.calls[0]!.events.map((e) => [e.type, e.message, e.stack ?? null])).toEqual([
      ['crash', 'ReferenceError: cart is not defined', '    at Page.onLoad (pages/cart/cart.js:10:3)'],
      ['error', 'request:fail timeout', expect.stringContaining('Error: request:fail timeout')],
    ]);
    // App hide in a mini program: a normal send (there is no sendBeacon there).
    t.track('leaving');
    handlers.hide!(undefined);
    await settle();
    expect(net.calls.at(-1)!.events.map((e) => e.name)).toEqual(['leaving']);
  });

  it('shutdown() stops listening and sends what is left', async () => {
    const t = tracker();
    t.launch();
    await t.shutdown();
    expect(net.calls).toHaveLength(1);
    win.dispatchEvent(errorEvent(new Error('after shutdown')));
    expect(t.track('ignored')).toBeNull();
    await advance(10_000);
    expect(net.calls).toHaveLength(1);
  });
});

describe('page hide', () => {
  it('sends what is queued by sendBeacon with ?key= when the page is hidden, without waiting for the timer', async () => {
    const t = tracker();
    t.launch();
    t.pageView('/a', 5000);
    win.hide();
    expect(net.beacons).toHaveLength(1);
    expect(net.beacons[0]!.url).toBe(`https://mpdp.example.test/api/v1/collect?key=${key}`);
    expect(net.beacons[0]!.events.map((e) => e.type)).toEqual(['launch', 'page_view']);
    expect(t.stats()).toMatchObject({ pending: 0, beacons: 1 });
    await advance(10_000);
    expect(net.calls).toHaveLength(0);
    // pagehide (bfcache, navigation) does the same.
    t.track('late');
    win.dispatchEvent(new Event('pagehide'));
    expect(net.beacons[1]!.events.map((e) => e.name)).toEqual(['late']);
  });

  it('beacons even during a backoff, in chunks under the 64 KB beacon quota', async () => {
    const t = tracker({ maxBatch: 500, maxQueue: 2000 });
    net.answers.push({ status: 503, retryAfter: '600' });
    t.launch();
    await t.flush();
    for (let i = 0; i < 600; i++) t.track('scroll', { depth: i, note: 'z'.repeat(200) });
    win.hide();
    expect(net.beacons.length).toBeGreaterThan(1);
    for (const b of net.beacons) expect(JSON.stringify({ events: b.events }).length).toBeLessThanOrEqual(60 * 1024);
    expect(net.beacons.flatMap((b) => b.events)).toHaveLength(601);
    expect(t.stats().pending).toBe(0);
  });

  it('keeps what the beacon refused in storage, and the next page sends it', async () => {
    net.refuseBeacons();
    const t = tracker();
    net.answers.push(new Error('offline'));
    t.launch();
    t.pageView('/checkout');
    await t.flush();
    win.hide();
    const kept = JSON.parse(storage.data.get('mpdp_queue')!) as TrackedEvent[];
    expect(kept.map((e) => e.type)).toEqual(['launch', 'page_view']);
    // Shown again: the events are still in memory; the stored copy goes.
    win.show();
    expect(storage.data.has('mpdp_queue')).toBe(false);
    win.hide();
    await t.shutdown();

    // The page is gone; the next one starts with the kept events.
    const next = tracker();
    expect(storage.data.has('mpdp_queue')).toBe(false);
    await advance(0);
    expect(net.calls.at(-1)!.events.map((e) => e.id)).toEqual(kept.map((e) => e.id));
    expect(next.stats().pending).toBe(0);
  });
});

describe('served by the API', () => {
  const app = new Hono().get('/sdk/:file', sdkHandler());

  it('serves the ES module and a classic script, cacheable, with CORS and an ETag', async () => {
    const res = await app.request('/sdk/mpdp-tracker.js');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toMatch(/^public, max-age=\d+/);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const body = await res.text();
    expect(body).toBe(readFileSync(new URL('./mpdp-tracker.js', import.meta.url), 'utf8'));
    const again = await app.request('/sdk/mpdp-tracker.js', { headers: { 'If-None-Match': res.headers.get('etag')! } });
    expect(again.status).toBe(304);

    const classic = await (await app.request('/sdk/mpdp-tracker.global.js')).text();
    expect(classic).toBe(classicScript(body));
    expect(classic).not.toMatch(/^export /m);
    // A classic script: runs (twice, as a page might include it twice) and sets the global; CommonJS gets module.exports.
    const context = vm.createContext({ module: { exports: {} } });
    vm.runInContext(classic, context);
    vm.runInContext(classic, context);
    expect(typeof (context as { mpdpTracker: { createTracker: unknown } }).mpdpTracker.createTracker).toBe('function');
    expect(typeof (context as { module: { exports: { createTracker: unknown } } }).module.exports.createTracker).toBe('function');

    expect((await app.request('/sdk/nope.js')).status).toBe(404);
    expect((await app.request('/sdk/mpdp-tracker.d.ts')).headers.get('content-type')).toMatch(/^text\/plain/);
  });
});
