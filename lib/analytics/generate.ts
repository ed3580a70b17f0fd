/**
 * A deterministic, realistic event generator: the same options (seed and `end` included) give the
 * same events, ids and all. Used by the tests (rollup correctness), the dashboards bench and the
 * demo data.
 *
 * The model: `users` anonymous users, each first seen on a day of the range (acquisition grows a
 * little towards the end), sticky to one host app (weighted). A user is active on their first day
 * and comes back on later days with a probability that decays (a loyal core stays). An active day
 * has 1–3 sessions at diurnal times; a session is a `launch`, 2–9 `page_view`s with time on page
 * (most of them timed), some `custom` events with properties, a `perf` launch metric, and now and
 * then an `error` or (rarer) a `crash` with a V8-shaped stack. Versions roll out over the range:
 * a newer version becomes available later and takes most users once it is there.
 * Events come out day by day (roughly in time order), in chunks.
 */
import type { AnalyticsEvent, EventType } from './types.js';
import { fingerprintOf } from './fingerprint.js';

export interface GenerateOptions {
  /** Any number or string; the same seed gives the same events. */
  seed?: number | string;
  workspaceId: string;
  miniProgramId: string;
  /** The mini program's versions, oldest first; each becomes available a bit later than the one before. */
  versions: readonly string[];
  /** Host apps users come through, with weights; `null` = the mini program's own ingest key (no host app). Default: [null]. */
  hostApps?: readonly { id: string | null; weight?: number }[];
  /** How many distinct users the range sees. */
  users: number;
  /** Days the events spread over, ending with the day of `end`. */
  days: number;
  /** No event is at or after this instant (ms). Default: now (pass one for determinism across runs). */
  end?: number;
  /** Events per chunk yielded (default 10,000). */
  chunkSize?: number;
  /** Pages of the mini program (default: a shop's). */
  pages?: readonly string[];
  /**
   * User ids are `<userPrefix>_<n>` (the same prefix in two generators gives the same user ids, e.g.
   * one host app user in two mini programs); default `u_<seed>_<n>`, so two seeds share no user.
   */
  userPrefix?: string;
}

const dayMs = 86_400_000;

const defaultPages = [
  'pages/index/index', 'pages/catalog/list', 'pages/catalog/detail', 'pages/search/search', 'pages/cart/cart',
  'pages/checkout/checkout', 'pages/orders/list', 'pages/orders/detail', 'pages/profile/profile', 'pages/coupons/coupons',
];
const customNames = ['add_to_cart', 'search', 'share', 'apply_coupon', 'checkout_started', 'order_placed', 'favourite'];
const perfNames = ['launch_ms', 'first_render_ms', 'request_ms'];

const errorTemplates: { message: (r: Rng) => string; frames: string[] }[] = [
  {
    message: (r) => `TypeError: Cannot read properties of undefined (reading 'price') at item ${r.int(1, 9999)}`,
    frames: ['renderItem (pages/catalog/list.js:{l}:{c})', 'Array.map (<anonymous>)', 'Page.onLoad (pages/catalog/list.js:{l}:{c})', 'callHook (framework/app-service.js:{l}:{c})'],
  },
  {
    message: (r) => `Error: request:fail timeout ${r.int(3000, 15000)}ms https://api.shop.example/v1/cart/${r.hex(8)}`,
    frames: ['fetchCart (utils/request.js:{l}:{c})', 'async loadCart (pages/cart/cart.js:{l}:{c})', 'Page.onShow (pages/cart/cart.js:{l}:{c})'],
  },
  {
    message: () => 'RangeError: Maximum call stack size exceeded',
    frames: ['flatten (utils/tree.js:{l}:{c})', 'flatten (utils/tree.js:{l}:{c})', 'flatten (utils/tree.js:{l}:{c})', 'buildMenu (pages/index/index.js:{l}:{c})'],
  },
  {
    message: (r) => `SyntaxError: Unexpected token '<' in JSON at position ${r.int(0, 40)}`,
    frames: ['JSON.parse (<anonymous>)', 'parseOrder (pages/orders/detail.js:{l}:{c})', 'Page.onLoad (pages/orders/detail.js:{l}:{c})'],
  },
];
const crashTemplates: typeof errorTemplates = [
  {
    message: () => 'Error: out of memory: image decode failed',
    frames: ['decodeImage (framework/render-layer.js:{l}:{c})', 'ImageComponent.attached (components/image.js:{l}:{c})', 'Page.onReady (pages/catalog/detail.js:{l}:{c})'],
  },
  {
    message: (r) => `TypeError: null is not an object (evaluating 'order.items.length') order ${r.hex(12)}`,
    frames: ['submitOrder (pages/checkout/checkout.js:{l}:{c})', 'onTapPay (pages/checkout/checkout.js:{l}:{c})', 'invokeHandler (framework/app-service.js:{l}:{c})'],
  },
];

/** mulberry32: small, fast, good enough for test data. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)]!;
  }
  /** 32 random bits. */
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  hex(n: number): string {
    let s = '';
    while (s.length < n) s += hex8(this.u32());
    return s.slice(0, n);
  }
  /** A version-4-shaped uuid. */
  uuid(): string {
    const a = this.u32();
    const b = this.u32();
    const c = this.u32();
    const d = this.u32();
    return `${hex8(a)}-${hex4(b >>> 16)}-${hex4(0x4000 | (b & 0x0fff))}-${hex4(0x8000 | ((c >>> 16) & 0x3fff))}-${hex4(c & 0xffff)}${hex8(d)}`;
  }
}

const byteHex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const hex4 = (v: number) => byteHex[(v >>> 8) & 255]! + byteHex[v & 255]!;
const hex8 = (v: number) => hex4(v >>> 16) + hex4(v & 0xffff);

function hash32(...parts: (string | number)[]): number {
  let h = 2166136261;
  for (const p of parts) {
    const s = String(p);
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    h ^= 0x2f;
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

function weighted<T>(r: Rng, items: readonly { value: T; weight: number }[]): T {
  const total = items.reduce((n, i) => n + i.weight, 0);
  let x = r.next() * total;
  for (const i of items) {
    x -= i.weight;
    if (x < 0) return i.value;
  }
  return items[items.length - 1]!.value;
}

/** Share of the day's traffic per hour (UTC): quiet at night, peaks at noon and in the evening. */
const hourWeights = [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 3.5, 4, 4.5, 4, 3.5, 3.5, 3.5, 4, 5, 5.5, 5, 4, 3, 2].map((weight, value) => ({ value, weight }));

function stackOf(r: Rng, frames: readonly string[]): string {
  return frames.map((f) => `    at ${f.replace('{l}', String(r.int(1, 900))).replace('{c}', String(r.int(1, 80)))}`).join('\n');
}

/**
 * The events, `chunkSize` at a time, day by day. Deterministic for the same options and `end`.
 */
export function* generateEvents(o: GenerateOptions): Generator<AnalyticsEvent[]> {
  if (!o.versions.length) throw new Error('generateEvents: at least one version');
  const seed = typeof o.seed === 'number' ? o.seed >>> 0 : hash32(o.seed ?? 'mpdp');
  const end = o.end ?? Date.now();
  const days = Math.max(1, Math.floor(o.days));
  const chunkSize = o.chunkSize ?? 10_000;
  const pages = o.pages ?? defaultPages;
  const hostApps = (o.hostApps?.length ? o.hostApps : [{ id: null }]).map((h) => ({ value: h.id, weight: h.weight ?? 1 }));
  const lastDay = Math.floor((end - 1) / dayMs);
  const firstDay = lastDay - days + 1;
  const nv = o.versions.length;
  // Version i is available from this day index on (the first from the start).
  const availableFrom = o.versions.map((_, i) => (i === 0 ? 0 : Math.floor((i / nv) * days * 0.8)));

  // Users: first day (acquisition grows towards the end), host app, loyalty.
  const setup = new Rng(hash32(seed, 'users'));
  const dayWeights = Array.from({ length: days }, (_, d) => ({ value: d, weight: 1 + d / days }));
  const users = Array.from({ length: o.users }, (_, n) => ({
    id: o.userPrefix ? `${o.userPrefix}_${n.toString(36)}` : `u_${seed.toString(36)}_${n.toString(36)}`,
    first: weighted(setup, dayWeights),
    hostApp: weighted(setup, hostApps),
    // Chance to come back on a day, long term; most users drift away, some stay.
    loyalty: setup.chance(0.25) ? 0.35 + setup.next() * 0.4 : setup.next() * 0.12,
  }));
  const byFirstDay: number[][] = Array.from({ length: days }, () => []);
  users.forEach((u, i) => byFirstDay[u.first]!.push(i));

  let chunk: AnalyticsEvent[] = [];
  const active: number[] = [];
  for (let d = 0; d < days; d++) {
    const dayStart = (firstDay + d) * dayMs;
    for (const i of byFirstDay[d]!) active.push(i);
    const available = o.versions.map((id, i) => ({ value: id, weight: d >= availableFrom[i]! ? 4 ** i : 0 }));
    for (const i of active) {
      const u = users[i]!;
      const age = d - u.first;
      const r = new Rng(hash32(seed, u.id, d));
      const p = age === 0 ? 1 : u.loyalty + (0.5 - u.loyalty / 2) * Math.exp(-age / 3);
      if (!r.chance(p)) continue;
      const version = weighted(r, available);
      const sessions = weighted(r, [{ value: 1, weight: 6 }, { value: 2, weight: 3 }, { value: 3, weight: 1 }]);
      for (let s = 0; s < sessions; s++) {
        const sessionId = `s_${r.hex(20)}`;
        let at = dayStart + weighted(r, hourWeights) * 3_600_000 + r.int(0, 3_599_999);
        const events: { type: EventType; at: number; page?: string; name?: string; value?: number; message?: string; stack?: string; props?: string }[] = [];
        events.push({ type: 'launch', at });
        events.push({ type: 'perf', at: at + r.int(200, 900), name: 'launch_ms', value: r.int(250, 2500) });
        const views = r.int(2, 9);
        let page = pages[0]!;
        for (let v = 0; v < views; v++) {
          at += r.int(300, 2_000);
          const timeOnPage = Math.round(2_000 + r.next() ** 2 * 120_000);
          events.push({ type: 'page_view', at, page, ...(r.chance(0.85) ? { value: timeOnPage } : {}) });
          if (r.chance(0.3)) events.push({ type: 'custom', at: at + r.int(500, 1_500), page, name: r.pick(customNames), props: JSON.stringify({ items: r.int(1, 5), amount: r.int(1, 500) }) });
          if (r.chance(0.1)) events.push({ type: 'perf', at: at + r.int(100, 400), page, name: r.pick(perfNames.slice(1)), value: r.int(40, 1500) });
          if (r.chance(0.03)) {
            const t = r.pick(errorTemplates);
            events.push({ type: 'error', at: at + r.int(100, 2_000), page, message: t.message(r), stack: stackOf(r, t.frames) });
          }
          at += timeOnPage;
          page = r.chance(0.2) ? pages[0]! : r.pick(pages);
        }
        // About 0.6% of sessions end in a crash: under the default health threshold (1.09% of launches).
        if (r.chance(0.006)) {
          const t = r.pick(crashTemplates);
          events.push({ type: 'crash', at: at + r.int(100, 2_000), page, message: t.message(r), stack: stackOf(r, t.frames) });
        }
        for (const e of events) {
          // Nothing at or after `end` (today's events stop at the end instant).
          if (e.at >= end) continue;
          const message = e.message ?? null;
          const stack = e.stack ?? null;
          chunk.push({
            id: r.uuid(), type: e.type, at: e.at,
            workspaceId: o.workspaceId, miniProgramId: o.miniProgramId, versionId: version, hostAppId: u.hostApp,
            userId: u.id, sessionId, page: e.page ?? null, name: e.name ?? null, value: e.value ?? null,
            message, stack, fingerprint: message !== null ? fingerprintOf(message, stack) : null, props: e.props ?? null,
          });
          if (chunk.length >= chunkSize) {
            yield chunk;
            chunk = [];
          }
        }
      }
    }
  }
  if (chunk.length) yield chunk;
}

/** Every event at once (small ranges: tests, demo data). */
export function generateAll(o: GenerateOptions): AnalyticsEvent[] {
  const out: AnalyticsEvent[] = [];
  for (const c of generateEvents(o)) for (const e of c) out.push(e);
  return out;
}

/**
 * About how many users give `events` events over `days` days with these options (measured on a
 * small sample, then scaled): the bench asks for 10 million events, not for a number of users.
 */
export function usersForEvents(events: number, o: Omit<GenerateOptions, 'users'>): number {
  const sample = 400;
  let n = 0;
  for (const c of generateEvents({ ...o, users: sample, end: o.end ?? Date.UTC(2026, 0, 1) })) n += c.length;
  return Math.max(1, Math.round((events / Math.max(1, n)) * sample));
}
