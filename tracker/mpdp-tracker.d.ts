/** Types of tracker/mpdp-tracker.js (the mpdp JavaScript tracker). */

export interface TrackerStorage {
  get(key: string): string | null;
  set(key: string, value: string): void;
  remove(key: string): void;
}

export interface TransportAnswer {
  status: number;
  /** The Retry-After header as sent (seconds or an HTTP date), or null. */
  retryAfter?: string | null;
  /** The parsed JSON answer (202: { accepted, rejected: [{ index, code, field, message }], … }). */
  body?: unknown;
}

export interface TrackerTransport {
  /** POSTs the body (JSON text) to url; rejects on a network error. */
  send?(url: string, body: string): Promise<TransportAnswer>;
  /** Fire-and-forget delivery on page hide (navigator.sendBeacon); false when it would not take it. */
  beacon?(url: string, body: string): boolean;
}

/** An event as the tracker sends it to POST /api/v1/collect. */
export interface TrackedEvent {
  id: string;
  type: 'launch' | 'page_view' | 'custom' | 'error' | 'crash' | 'perf';
  at: number;
  miniProgramId?: string;
  versionId?: string;
  version?: string;
  hostAppId?: string;
  userId: string;
  sessionId: string;
  page?: string;
  name?: string;
  value?: number;
  message?: string;
  stack?: string;
  properties?: Record<string, unknown>;
  /** Set on events handed to onDrop with reason 'rejected': what the server said. */
  rejected?: { index: number; code: string; field?: string | null; message: string };
}

export type DropReason = 'rejected' | 'queue_full' | `http_${number}`;

export interface TrackerOptions {
  /** The platform's URL (…/api/v1/collect is appended) or the collect URL itself. */
  endpoint: string;
  /** The mini program's public ingest key (mpik_…), sent as ?key=. */
  ingestKey: string;
  miniProgramId?: string;
  /** The running version, as a semver string of the mini program … */
  version?: string;
  /** … or its id. */
  versionId?: string;
  hostAppId?: string;
  /** A signed-in user's id; default: an anonymous id kept in storage. */
  userId?: string;
  storage?: TrackerStorage;
  transport?: TrackerTransport;
  /** Where listeners go and host APIs are found (default globalThis). */
  global?: any;
  flushIntervalMs?: number;
  maxBatch?: number;
  maxQueue?: number;
  sessionTimeoutMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  captureErrors?: boolean;
  /** What an uncaught exception is recorded as (default 'crash'); unhandled rejections are 'error'. */
  uncaught?: 'crash' | 'error';
  maxErrorsPerMinute?: number;
  persistQueue?: boolean;
  /** The current page for custom, perf and error events (default location.pathname). */
  page?: () => string | null;
  random?: () => number;
  onDrop?: (events: TrackedEvent[], reason: DropReason) => void;
}

export interface TrackerStats {
  pending: number;
  queued: number;
  sent: number;
  rejected: number;
  dropped: number;
  retries: number;
  beacons: number;
}

export interface Tracker {
  launch(properties?: Record<string, unknown>): string | null;
  pageView(page: string, durationMs?: number): string | null;
  track(name: string, properties?: Record<string, unknown>): string | null;
  perf(name: string, ms: number): string | null;
  captureError(error: unknown, options?: { fatal?: boolean; page?: string; properties?: Record<string, unknown> }): string | null;
  setUserId(userId: string | null): void;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
  stats(): TrackerStats;
  readonly userId: string;
  readonly sessionId: string | null;
}

export function createTracker(options: TrackerOptions): Tracker;
