/**
 * Shared shapes of the analytics work: what the collect route hands the ingest buffer, what the
 * buffer writes, and what the crash grouping receives inside the same transaction.
 */
import type pg from 'pg';

export const eventTypes = ['launch', 'page_view', 'custom', 'error', 'crash', 'perf'] as const;
export type EventType = (typeof eventTypes)[number];

/** Most events in one collect batch, and most bytes in its body. */
export const maxBatchEvents = 500;
export const maxBatchBytes = 1024 * 1024;

/** Event times accepted: up to this far back (never older than the retention) and this far ahead. */
export const maxEventAgeMs = 7 * 24 * 3600_000;
export const maxEventFutureMs = 5 * 60_000;

/**
 * An event that passed validation and authentication, ready to be written. Ids are the client's
 * (a uuid; a retried event keeps it: the second copy counts nowhere). `at` is ms since the epoch.
 */
export interface AnalyticsEvent {
  id: string;
  type: EventType;
  at: number;
  workspaceId: string;
  miniProgramId: string;
  versionId: string;
  /** null when the mini program's own ingest key sent it and named no host app. */
  hostAppId: string | null;
  userId: string;
  sessionId: string;
  page: string | null;
  /** custom: event name; perf: metric name. */
  name: string | null;
  /** perf: value in ms; page_view: time on page in ms (optional). */
  value: number | null;
  /** error / crash: message and stack as sent, and the group fingerprint computed at validation. */
  message: string | null;
  stack: string | null;
  fingerprint: string | null;
  /** JSON text of the properties (already size-checked), or null. */
  props: string | null;
}

/** What accept() answers; the collect route puts it in its 202. */
export interface AcceptResult {
  /** Events taken into the buffer (duplicates among them are found at write time). */
  buffered: number;
  /** When the buffer will be written at the latest (ms since the epoch). */
  flushBy: number;
}

/** What a flush wrote (for `wait=true` answers, tests and the bench). */
export interface FlushResult {
  written: number;
  duplicates: number;
  /**
   * The earliest UTC day (YYYY-MM-DD) whose daily rollups the written rows change: the earliest
   * event's day, or a touched session's start day when earlier. Null when nothing was written.
   */
  firstDay?: string | null;
}

/** The ingest buffer the collect route writes to (lib/analytics/ingest.ts). */
export interface IngestSink {
  /** Takes validated events; throws IngestOverloaded when the buffer is full. */
  accept(events: AnalyticsEvent[]): AcceptResult;
  /** Writes these events now (and everything buffered before them); resolves once committed. */
  acceptAndWait(events: AnalyticsEvent[]): Promise<FlushResult>;
  /** Writes everything buffered; resolves once committed. */
  flush(): Promise<FlushResult>;
  /** Final flush and stop the timers. */
  close(): Promise<void>;
  /** Events waiting to be written. */
  readonly pending: number;
}

export class IngestOverloaded extends Error {
  constructor(readonly retryAfterMs: number) {
    super('The analytics buffer is full; retry shortly');
  }
}

/**
 * Called by the flush inside its transaction with the error and crash events that the raw insert
 * really wrote (never a duplicate): maintains crash_groups and friends. Returns the groups that
 * are new or reopened, so the caller can alert after commit.
 */
export type CrashGroupApplier = (client: pg.PoolClient, events: AnalyticsEvent[]) => Promise<CrashGroupNews[]>;

export interface CrashGroupNews {
  groupId: string;
  workspaceId: string;
  miniProgramId: string;
  versionId: string;
  change: 'new' | 'reopened';
}
