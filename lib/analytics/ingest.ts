import type pg from 'pg';
import type { Config } from '../config.js';
import { copyIn } from './pg-copy.js';
import { runAnalyticsMaintenance, utcDay, type MaintenanceResult } from './maintenance.js';
import { IngestOverloaded, type AcceptResult, type AnalyticsEvent, type CrashGroupApplier, type CrashGroupNews, type FlushResult, type IngestSink } from './types.js';

export interface IngestOptions {
  pool: pg.Pool;
  settings: Config['analytics'];
  /** Maintains crash groups inside the flush transaction (lib/analytics/crash-groups.ts). */
  applyCrashGroups?: CrashGroupApplier;
  /** Told after commit about crash groups that are new or reopened (alerts). */
  onCrashNews?: (news: CrashGroupNews[]) => void;
  /** Told after each committed flush (the daily rollups refresh after flushes that wrote rows). */
  onFlushed?: (r: FlushResult) => void;
  /** Runs runAnalyticsMaintenance at start and every settings.maintenanceIntervalMs (default true). */
  maintenance?: boolean;
  /** Flushes running at once (default 2: one writes its raw rows while the other upserts rollups). */
  concurrency?: number;
  /** Most (mini program, day, user, version, host app) and (mini program, user) keys remembered as written. */
  knownKeysMax?: number;
  /** Where failures are told (default console.error). */
  log?: (message: string, err?: unknown) => void;
}

const hourMs = 3_600_000;
const minuteMs = 60_000;
const sep = '\u001f';
/** Retry delays after a failed flush: 250 ms doubling up to 30 s (with jitter). */
const retryBaseMs = 250;
const retryMaxMs = 30_000;

/** Someone waiting for events to be committed: acceptAndWait() (its events) or flush() (all buffered). */
interface Waiter {
  remaining: number;
  written: number;
  duplicates: number;
  settled: boolean;
  resolve(r: FlushResult): void;
  reject(err: unknown): void;
}

/** A run of accepted events in the queue (events[from, to)), with who waits for it. */
interface Segment {
  events: AnalyticsEvent[];
  from: number;
  to: number;
  waiters: Waiter[];
}

interface Batch {
  events: AnalyticsEvent[];
  parts: Segment[];
}

/** What one flush transaction did, per event of its batch. */
interface WriteOutcome {
  /** 1 = written, 0 = duplicate (already stored, or twice in the batch), 2 = refused by PostgreSQL (dropped). */
  status: Uint8Array;
  written: number;
  duplicates: number;
  news: CrashGroupNews[];
  /** See FlushResult.firstDay. */
  firstDay: string | null;
}

/**
 * The raw rows go in with COPY, PostgreSQL's cheapest way in: straight into analytics_events while
 * no duplicates come (a duplicate fails the COPY with a unique violation; the transaction is then
 * redone the other way), else into a per-connection temporary table and from there with one
 * INSERT … SELECT … ON CONFLICT DO NOTHING. Measured against INSERT … SELECT FROM unnest(arrays) and
 * json_to_recordset, both cost PostgreSQL less CPU per row (README, "Analytics ingest").
 */
const rawColumns = 'id, at, received_at, type, workspace_id, mini_program_id, version_id, host_app_id, user_id, session_id, page, name, value, fingerprint, message, stack, props';
const sqlCreateStage = `
  CREATE TEMP TABLE IF NOT EXISTS analytics_ingest_stage (id uuid, at timestamptz, received_at timestamptz, type text, workspace_id text,
    mini_program_id text, version_id text, host_app_id text, user_id text, session_id text, page text, name text, value float8,
    fingerprint text, message text, stack text, props jsonb) ON COMMIT DELETE ROWS`;
const sqlCopyDirect = `COPY analytics_events (${rawColumns}) FROM STDIN`;
const sqlCopyStage = `COPY analytics_ingest_stage (${rawColumns}) FROM STDIN`;
const sqlInsertEvents = `INSERT INTO analytics_events (${rawColumns}) SELECT ${rawColumns} FROM analytics_ingest_stage ON CONFLICT DO NOTHING`;
/** After a flush met duplicates, this many flushes go through the stage table without trying COPY first. */
const stageFlushesAfterDuplicates = 8;

/**
 * After an insert that wrote fewer rows than it was given: which of them were there before (not
 * written by this transaction — a retried event, or one a concurrent flush just committed).
 */
const sqlFindDuplicates = `
  SELECT u.i::int - 1 AS i
  FROM unnest($1::uuid[], $2::float8[]) WITH ORDINALITY AS u(id, at, i)
  JOIN analytics_events e ON e.id = u.id AND e.at = to_timestamp(u.at / 1000.0)
  WHERE e.xmin <> pg_current_xact_id()::xid`;

const sqlHourly = `
  INSERT INTO analytics_hourly AS h (mini_program_id, hour, version_id, host_app_id, workspace_id,
    launches, page_views, custom_events, errors, crashes, perf_count, perf_sum_ms, events)
  SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
    $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::float8[], $13::bigint[])
  ON CONFLICT (mini_program_id, hour, version_id, host_app_id) DO UPDATE SET
    launches = h.launches + excluded.launches, page_views = h.page_views + excluded.page_views,
    custom_events = h.custom_events + excluded.custom_events, errors = h.errors + excluded.errors,
    crashes = h.crashes + excluded.crashes, perf_count = h.perf_count + excluded.perf_count,
    perf_sum_ms = h.perf_sum_ms + excluded.perf_sum_ms, events = h.events + excluded.events`;

const sqlPageHourly = `
  INSERT INTO analytics_page_hourly AS p (mini_program_id, hour, page, version_id, host_app_id, workspace_id, views, timed_views, time_ms_sum)
  SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::float8[])
  ON CONFLICT (mini_program_id, hour, page, version_id, host_app_id) DO UPDATE SET
    views = p.views + excluded.views, timed_views = p.timed_views + excluded.timed_views, time_ms_sum = p.time_ms_sum + excluded.time_ms_sum`;

const sqlUserDays = `
  INSERT INTO analytics_user_days (mini_program_id, day, user_id, version_id, host_app_id, workspace_id)
  SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], $6::text[])
  ON CONFLICT DO NOTHING`;

const sqlUsers = `
  INSERT INTO analytics_users AS u (mini_program_id, user_id, workspace_id, first_day, first_version_id, first_host_app_id, first_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::text[], $7::timestamptz[])
  ON CONFLICT (mini_program_id, user_id) DO UPDATE SET
    first_day = excluded.first_day, first_version_id = excluded.first_version_id, first_host_app_id = excluded.first_host_app_id,
    first_at = excluded.first_at
  WHERE u.first_at IS NULL OR excluded.first_at < u.first_at`;

const sqlSessions = `
  INSERT INTO analytics_sessions AS s (mini_program_id, session_id, workspace_id, version_id, host_app_id, user_id, day, started_at, last_at, events)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::date[], $8::timestamptz[], $9::timestamptz[], $10::int[])
  ON CONFLICT (mini_program_id, session_id) DO UPDATE SET
    day = CASE WHEN excluded.started_at < s.started_at THEN excluded.day ELSE s.day END,
    version_id = CASE WHEN excluded.started_at < s.started_at THEN excluded.version_id ELSE s.version_id END,
    host_app_id = CASE WHEN excluded.started_at < s.started_at THEN excluded.host_app_id ELSE s.host_app_id END,
    user_id = CASE WHEN excluded.started_at < s.started_at THEN excluded.user_id ELSE s.user_id END,
    started_at = LEAST(s.started_at, excluded.started_at), last_at = GREATEST(s.last_at, excluded.last_at),
    events = s.events + excluded.events
  RETURNING s.day`;
/** The sessions' upsert, answering only the earliest start day it wrote (one row, whatever the batch). */
const sqlSessionsFirstDay = `WITH up AS (${sqlSessions}) SELECT to_char(min(day), 'YYYY-MM-DD') AS first FROM up`;

// Only versions that still exist (runtime_counts references them): a version deleted after its
// events were accepted must not make the flush fail forever.
const sqlRuntimeCounts = `
  INSERT INTO runtime_counts AS rc (mini_program_id, version_id, minute, launches, crashes)
  SELECT u.mp, u.v, u.minute, u.launches, u.crashes
  FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[]) WITH ORDINALITY AS u(mp, v, minute, launches, crashes, i)
  WHERE EXISTS (SELECT 1 FROM versions ver WHERE ver.id = u.v AND ver.mini_program_id = u.mp)
  ORDER BY u.i
  ON CONFLICT (mini_program_id, version_id, minute) DO UPDATE SET
    launches = rc.launches + excluded.launches, crashes = rc.crashes + excluded.crashes`;

/** Pool clients whose session has the stage table (made outside any transaction, so it stays). */
const staged = new WeakSet<pg.PoolClient>();

/** A bounded set of keys (oldest forgotten first): rollup rows known to be in the database already. */
class KnownKeys<V> {
  private map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string) {
    return this.map.get(key);
  }
  set(key: string, value: V) {
    if (this.map.size >= this.max && !this.map.has(key)) {
      const drop = Math.max(1, Math.floor(this.max / 10));
      const it = this.map.keys();
      for (let i = 0; i < drop; i++) this.map.delete(it.next().value as string);
    }
    this.map.set(key, value);
  }
}

const byKey = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
const iso = (ms: number) => new Date(ms).toISOString();

/** PostgreSQL errors that are the data's fault (so retrying the same rows cannot help). */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  if (isMissingPartition(err)) return false;
  return code.startsWith('22') || code.startsWith('23') || code === '54000';
}
function isMissingPartition(err: unknown): boolean {
  return (err as { code?: unknown }).code === '23514' && /no partition/i.test(String((err as Error).message));
}
/** Errors of the moment (lost connection, deadlock, shutdown, lock timeouts): retry the whole flush. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return true;
  return /^(08|40|53|57|55P03)/.test(code);
}

/** A string PostgreSQL takes: no NUL, no lone surrogate. */
const unfit = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const clean = (s: string) => s.replace(unfit, '\uFFFD');
function cleanEvent(e: AnalyticsEvent): AnalyticsEvent {
  const c = (s: string | null) => (s === null ? null : clean(s));
  let props = e.props;
  if (props !== null) {
    try {
      props = JSON.stringify(JSON.parse(props, (_k, v: unknown) => (typeof v === 'string' ? clean(v) : v)));
      if (props.includes('\\u0000')) props = props.replaceAll('\\u0000', '\\ufffd');
    } catch {
      props = null;
    }
  }
  return {
    ...e, userId: clean(e.userId), sessionId: clean(e.sessionId), page: c(e.page), name: c(e.name),
    message: c(e.message), stack: c(e.stack), fingerprint: c(e.fingerprint), props,
  };
}

const copySpecial = /[\\\t\n\r]/;
const copyEscapes: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
/** A text value in COPY's text format (`\N` is NULL). */
const t = (v: string | null) => (v === null ? '\\N' : copySpecial.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => copyEscapes[c]!) : v);

const dayMs = 86_400_000;
const isoDays = new Map<number, string>();
/** utcDay with the few days a batch has remembered (it is asked once per event and rollup). */
function dayOf(ms: number): string {
  const d = Math.floor(ms / dayMs);
  let s = isoDays.get(d);
  if (s === undefined) {
    if (isoDays.size > 1000) isoDays.clear();
    isoDays.set(d, (s = utcDay(ms)));
  }
  return s;
}

const isoMinutes = new Map<number, string>();
/** new Date(ms).toISOString(), from a cache of the minutes' prefixes (it is asked once per event). */
function isoTime(ms: number): string {
  const minute = Math.floor(ms / minuteMs);
  let prefix = isoMinutes.get(minute);
  if (prefix === undefined) {
    if (isoMinutes.size > 20_000) isoMinutes.clear();
    isoMinutes.set(minute, (prefix = new Date(minute * minuteMs).toISOString().slice(0, 17)));
  }
  const rest = ms - minute * minuteMs; // 0 … 59,999 ms
  const sec = Math.floor(rest / 1000);
  const milli = rest - sec * 1000;
  return prefix + (sec < 10 ? '0' : '') + sec + '.' + (milli < 10 ? '00' : milli < 100 ? '0' : '') + milli + 'Z';
}

/** Rows per COPY data message (the text is turned into bytes this often, not all at once). */
const copyChunkRows = 1000;
/** The events as COPY text (raw columns), in chunks; strings PostgreSQL would refuse are mended first. */
function copyChunks(events: AnalyticsEvent[], receivedAt: string): Buffer[] {
  const chunks: Buffer[] = [];
  for (let from = 0; from < events.length; from += copyChunkRows) {
    const part = events.slice(from, from + copyChunkRows);
    let out = copyText(part, receivedAt);
    // NUL cannot be stored in text, nor \u0000 or a lone surrogate escape in jsonb (lone surrogates in
    // text become U+FFFD on the wire by themselves): look closer only when one may be there.
    // (JSON.stringify writes \u escapes only for control characters and lone surrogates: rare.)
    if (out.includes('\u0000') || out.includes('\\\\u')) out = copyText(part.map(cleanEvent), receivedAt);
    chunks.push(Buffer.from(out));
  }
  return chunks;
}
function copyText(events: AnalyticsEvent[], receivedAt: string): string {
  let out = '';
  for (const e of events) {
    out += e.id + '\t' + isoTime(e.at) + '\t' + receivedAt + '\t' + t(e.type) + '\t' + t(e.workspaceId) + '\t' + t(e.miniProgramId) + '\t' +
      t(e.versionId) + '\t' + t(e.hostAppId) + '\t' + t(e.userId) + '\t' + t(e.sessionId) + '\t' + t(e.page) + '\t' + t(e.name) + '\t' +
      (e.value === null ? '\\N' : e.value) + '\t' + t(e.fingerprint) + '\t' + t(e.message) + '\t' + t(e.stack) + '\t' + t(e.props) + '\n';
  }
  return out;
}

/**
 * The events without repeats of an earlier one in the same batch (a client retry that arrived
 * before the flush), with their indexes. The key is (id, at): the same id at another time is
 * another event (those are kept in `others`, rare).
 */
function withoutRepeats(events: AnalyticsEvent[], index: number[]): [AnalyticsEvent[], number[]] {
  const firstAt = new Map<string, number>();
  let others: Set<string> | undefined;
  const out: AnalyticsEvent[] = [];
  const outIndex: number[] = [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const at = firstAt.get(e.id);
    if (at === undefined) firstAt.set(e.id, e.at);
    else if (at === e.at) continue;
    else {
      const key = e.id + sep + e.at;
      if ((others ??= new Set()).has(key)) continue;
      others.add(key);
    }
    out.push(e);
    outIndex.push(index[i]!);
  }
  return [out, outIndex];
}

/**
 * The API process's event buffer. accept() queues validated events in memory; a flush writes up to
 * flushMaxEvents of them in one transaction: the raw rows into analytics_events (day partitions made
 * on demand), then, from the rows that insert really wrote (a duplicate id+time counts nowhere), the
 * rollups the dashboards and the rollout health check read, and the crash groups. Flushes run every
 * flushIntervalMs and as soon as flushMaxEvents wait; a failed flush keeps its events at the front
 * of the queue and is retried with backoff. The queue holds at most bufferMaxEvents (then
 * IngestOverloaded). Events handed to accept() are kept by reference: the caller must not change them.
 */
export class IngestBuffer implements IngestSink {
  private queue: Segment[] = [];
  private queued = 0;
  private inFlight = new Set<Batch>();
  private inFlightEvents = 0;
  /** Drain everything queued now (tick, flush(), acceptAndWait()) rather than wait for full batches. */
  private urgent = false;
  private closed = false;
  private failures = 0;
  /** Flushes left to go through the stage table (after duplicates were met). */
  private stageFlushes = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private maintenanceRun: Promise<unknown> | undefined;
  private nextTickAt: number;
  /** Moving average of a flush's duration and size, for flushBy and Retry-After. */
  private avgFlushMs = 50;
  private avgFlushEvents = 1000;
  private readonly knownDays = new Set<string>();
  private readonly knownUserDays: KnownKeys<true>;
  private readonly knownUsers: KnownKeys<number>;
  private readonly concurrency: number;
  private readonly log: (message: string, err?: unknown) => void;

  constructor(readonly options: IngestOptions) {
    const s = options.settings;
    this.concurrency = Math.max(1, options.concurrency ?? 2);
    this.log = options.log ?? ((message, err) => console.error(`[ingest] ${message}`, err ?? ''));
    this.knownUserDays = new KnownKeys(options.knownKeysMax ?? 200_000);
    this.knownUsers = new KnownKeys(options.knownKeysMax ?? 200_000);
    this.nextTickAt = Date.now() + s.flushIntervalMs;
    this.tickTimer = setInterval(() => {
      this.nextTickAt = Date.now() + s.flushIntervalMs;
      if (this.queued > 0) {
        this.urgent = true;
        this.pump();
      }
    }, s.flushIntervalMs);
    this.tickTimer.unref();
    if (options.maintenance ?? true) {
      void this.maintain();
      this.maintenanceTimer = setInterval(() => void this.maintain(), s.maintenanceIntervalMs);
      this.maintenanceTimer.unref();
    }
  }

  /** Events accepted and not yet committed (queued or being written). */
  get pending() {
    return this.queued + this.inFlightEvents;
  }

  accept(events: AnalyticsEvent[]): AcceptResult {
    this.admit(events);
    return { buffered: events.length, flushBy: this.flushBy() };
  }

  async acceptAndWait(events: AnalyticsEvent[]): Promise<FlushResult> {
    const { waiter, done } = this.waiter(events.length);
    const segment = this.admit(events);
    if (!segment) return { written: 0, duplicates: 0 };
    segment.waiters.push(waiter);
    this.urgent = true;
    this.pump();
    return done;
  }

  async flush(): Promise<FlushResult> {
    // Whatever is being written now counts too (and when it fails, its events are queued again).
    const result: FlushResult = { written: 0, duplicates: 0 };
    const { waiter, done } = this.waiter(0);
    const seen = new Set<Waiter[]>();
    const attach = (s: Segment, n: number) => {
      waiter.remaining += n;
      if (!seen.has(s.waiters)) {
        seen.add(s.waiters);
        s.waiters.push(waiter);
      }
    };
    for (const batch of this.inFlight) for (const part of batch.parts) attach(part, part.to - part.from);
    for (const s of this.queue) attach(s, s.to - s.from);
    if (waiter.remaining === 0) return result;
    this.urgent = true;
    this.retryAt = 0; // an explicit flush does not wait for the backoff
    this.pump();
    return done;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.tickTimer);
    clearInterval(this.maintenanceTimer);
    for (let attempt = 0; this.pending > 0; attempt++) {
      try {
        await this.flush();
      } catch (err) {
        if (attempt >= 4) throw err;
        await new Promise((r) => setTimeout(r, retryBaseMs * 2 ** attempt));
      }
    }
    clearTimeout(this.retryTimer);
    await this.maintenanceRun?.catch(() => undefined);
  }

  /** Runs the partition maintenance now (also on a timer); the partitions it made or dropped update the cache. */
  async maintain(now?: number): Promise<MaintenanceResult | undefined> {
    const run = runAnalyticsMaintenance(this.options.pool, { retentionDays: this.options.settings.retentionDays, now });
    this.maintenanceRun = run;
    try {
      const result = await run;
      for (const day of result.created) this.knownDays.add(day);
      for (const day of result.dropped) this.knownDays.delete(day);
      if (result.dropped.length) this.log(`retention: dropped the raw event partitions of ${result.dropped.join(', ')}`);
      return result;
    } catch (err) {
      this.log('partition maintenance failed (retried at the next run)', err);
      return undefined;
    }
  }

  private admit(events: AnalyticsEvent[]): Segment | undefined {
    const limit = this.options.settings.bufferMaxEvents;
    if (this.closed || this.pending + events.length > limit) throw new IngestOverloaded(this.retryAfterMs());
    if (events.length === 0) return undefined;
    const segment: Segment = { events, from: 0, to: events.length, waiters: [] };
    this.queue.push(segment);
    this.queued += events.length;
    if (this.queued >= this.options.settings.flushMaxEvents) this.pump();
    return segment;
  }

  private waiter(remaining: number) {
    let waiter!: Waiter;
    const done = new Promise<FlushResult>((resolve, reject) => {
      waiter = { remaining, written: 0, duplicates: 0, settled: false, resolve, reject };
    });
    return { waiter, done };
  }

  /** How long until what is queued now should be written (a guess from recent flushes). */
  private backlogMs() {
    const perEvent = this.avgFlushMs / Math.max(1, this.avgFlushEvents);
    return (this.pending * perEvent) / this.concurrency;
  }

  private flushBy() {
    const retry = this.retryAt > Date.now() ? this.retryAt : 0;
    return Math.max(this.nextTickAt, retry) + Math.ceil(this.backlogMs());
  }

  private retryAfterMs() {
    return Math.max(1000, Math.ceil(this.backlogMs()), this.retryAt - Date.now());
  }

  /** Starts flushes while there is room and reason to. */
  private pump() {
    const max = this.options.settings.flushMaxEvents;
    while (this.inFlight.size < this.concurrency && this.queued > 0) {
      if (!this.urgent && this.queued < max) return;
      const wait = this.retryAt - Date.now();
      if (wait > 0) {
        if (!this.retryTimer) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.urgent = true;
            this.pump();
          }, wait);
          this.retryTimer.unref();
        }
        return;
      }
      const batch = this.take(max);
      this.inFlight.add(batch);
      this.inFlightEvents += batch.events.length;
      void this.run(batch).finally(() => {
        if (this.queued === 0) this.urgent = false;
        this.pump();
      });
    }
    if (this.queued === 0 && this.inFlight.size === 0) this.urgent = false;
  }

  private take(max: number): Batch {
    const events: AnalyticsEvent[] = [];
    const parts: Segment[] = [];
    while (this.queue.length && events.length < max) {
      const s = this.queue[0]!;
      const n = Math.min(s.to - s.from, max - events.length);
      parts.push({ events: s.events, from: s.from, to: s.from + n, waiters: s.waiters });
      for (let i = s.from; i < s.from + n; i++) events.push(s.events[i]!);
      s.from += n;
      if (s.from === s.to) this.queue.shift();
    }
    this.queued -= events.length;
    return { events, parts };
  }

  private async run(batch: Batch) {
    const started = Date.now();
    let outcome: WriteOutcome;
    try {
      outcome = await this.write(batch.events);
    } catch (err) {
      this.done(batch);
      // Back to the front of the queue, in order; whoever waited for these events hears of it.
      this.queue.unshift(...batch.parts);
      this.queued += batch.events.length;
      for (const part of batch.parts) for (const w of part.waiters) if (!w.settled) ((w.settled = true), w.reject(err));
      if (this.failures++ === 0) this.log(`flush of ${batch.events.length} events failed; keeping ${this.pending} events and retrying with backoff`, err);
      const delay = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(this.failures - 1, 10));
      this.retryAt = Date.now() + delay * (0.75 + Math.random() / 2);
      return;
    }
    this.done(batch);
    if (this.failures > 0) this.log(`flushing again after ${this.failures} failed attempt(s)`);
    this.failures = 0;
    this.retryAt = 0;
    this.avgFlushMs = this.avgFlushMs * 0.8 + (Date.now() - started) * 0.2;
    this.avgFlushEvents = this.avgFlushEvents * 0.8 + batch.events.length * 0.2;
    let offset = 0;
    for (const part of batch.parts) {
      const n = part.to - part.from;
      if (part.waiters.length) {
        let written = 0;
        let duplicates = 0;
        for (let i = offset; i < offset + n; i++) {
          if (outcome.status[i] === 1) written++;
          else if (outcome.status[i] === 0) duplicates++;
        }
        for (const w of part.waiters) {
          if (w.settled) continue;
          w.written += written;
          w.duplicates += duplicates;
          w.remaining -= n;
          if (w.remaining <= 0) ((w.settled = true), w.resolve({ written: w.written, duplicates: w.duplicates }));
        }
      }
      offset += n;
    }
    if (outcome.news.length && this.options.onCrashNews) {
      try {
        this.options.onCrashNews(outcome.news);
      } catch (err) {
        this.log('onCrashNews failed', err);
      }
    }
    if (this.options.onFlushed) {
      try {
        this.options.onFlushed({ written: outcome.written, duplicates: outcome.duplicates, firstDay: outcome.firstDay });
      } catch (err) {
        this.log('onFlushed failed', err);
      }
    }
  }

  /** The batch is no longer being written (before its waiters hear, so `pending` is right for them). */
  private done(batch: Batch) {
    this.inFlight.delete(batch);
    this.inFlightEvents -= batch.events.length;
  }

  /** One flush: the raw rows and every rollup in one transaction. */
  private async write(events: AnalyticsEvent[]): Promise<WriteOutcome> {
    // 0 = duplicate (until written), 1 = written, 2 = refused.
    const status = new Uint8Array(events.length);
    const client = await this.options.pool.connect();
    let broken: Error | undefined;
    try {
      if (!staged.has(client)) {
        await client.query(sqlCreateStage);
        staged.add(client);
      }
      const days = new Set<string>();
      for (const e of events) days.add(dayOf(e.at));
      const missing = [...days].filter((d) => !this.knownDays.has(d));
      if (missing.length) {
        // Outside the transaction: creating a partition locks the parent table until commit.
        await client.query('SELECT analytics_ensure_partition(d::date) FROM unnest($1::text[]) AS d', [missing]);
      }
      // The direct COPY needs no look for duplicates in the batch: one makes it fail like any other.
      let direct = this.stageFlushes === 0;
      let [rows, rowsIndex] = direct ? [events, events.map((_, i) => i)] : withoutRepeats(events, events.map((_, i) => i));
      let dropped = 0;
      let probed = false;
      for (;;) {
        await client.query('BEGIN');
        try {
          const result = await this.writeRows(client, rows, direct);
          if (!direct) this.stageFlushes = result.duplicates ? stageFlushesAfterDuplicates : Math.max(0, this.stageFlushes - 1);
          await client.query('COMMIT');
          for (let k = 0; k < rows.length; k++) status[rowsIndex[k]!] = result.inserted[k] ? 1 : 0;
          for (const d of missing) this.knownDays.add(d);
          this.remember(result.userDays, result.users);
          let written = 0;
          for (const s of status) if (s === 1) written++;
          return { status, written, duplicates: events.length - written - dropped, news: result.news, firstDay: result.firstDay };
        } catch (err) {
          await client.query('ROLLBACK').catch((e: Error) => (broken = e));
          if (broken) throw err;
          if (isMissingPartition(err)) this.knownDays.clear();
          const raw = (err as { stage?: string }).stage === 'raw';
          // A duplicate met by the direct COPY: the same rows again, through the stage table.
          if (raw && direct && (err as { code?: string }).code === '23505') {
            direct = false;
            [rows, rowsIndex] = withoutRepeats(rows, rowsIndex);
            this.stageFlushes = stageFlushesAfterDuplicates;
            continue;
          }
          // Rows PostgreSQL refuses whatever we do (bad text, out-of-range numbers): find them, drop them, write the rest.
          if (!probed && raw && isDataError(err)) {
            probed = true;
            const bad = await this.findRefused(client, rows);
            if (bad.size > 0) {
              for (const k of bad) {
                status[rowsIndex[k]!] = 2;
                this.log(`dropping event ${rows[k]!.id} (${rows[k]!.type}) that PostgreSQL refuses`, err);
              }
              rowsIndex = rowsIndex.filter((_, k) => !bad.has(k));
              rows = rows.filter((_, k) => !bad.has(k));
              dropped += bad.size;
              continue;
            }
          }
          throw err;
        }
      }
    } catch (err) {
      if (!broken && isTransient(err) && /^08/.test(String((err as { code?: string }).code ?? ''))) broken = err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** Inside the flush transaction: raw insert, then rollups from what it wrote, then crash groups. */
  private async writeRows(client: pg.PoolClient, rows: AnalyticsEvent[], direct: boolean) {
    const inserted = new Uint8Array(rows.length).fill(1);
    if (rows.length === 0) return { inserted, duplicates: 0, userDays: [] as string[], users: [] as [string, number][], news: [] as CrashGroupNews[], firstDay: null as string | null };
    let count: number;
    try {
      count = await this.insertRaw(client, rows, { direct });
    } catch (err) {
      throw Object.assign(err as Error, { stage: 'raw' });
    }
    if (count < rows.length) {
      const { rows: dups } = await client.query<{ i: number }>(sqlFindDuplicates, [rows.map((e) => e.id), rows.map((e) => e.at)]);
      for (const { i } of dups) inserted[i] = 0;
    }
    const written: AnalyticsEvent[] = [];
    for (let k = 0; k < rows.length; k++) if (inserted[k]) written.push(rows[k]!);
    const { userDays, users, firstDay } = await this.upsertRollups(client, written);
    let news: CrashGroupNews[] = [];
    const crashes = this.options.applyCrashGroups ? written.filter((e) => e.type === 'error' || e.type === 'crash') : [];
    if (crashes.length) {
      // A crash-grouping fault must not stop the events: its work is undone, the rest commits.
      await client.query('SAVEPOINT crash_groups');
      try {
        news = await this.options.applyCrashGroups!(client, crashes);
        await client.query('RELEASE SAVEPOINT crash_groups');
      } catch (err) {
        if (isTransient(err)) throw err;
        await client.query('ROLLBACK TO SAVEPOINT crash_groups');
        this.log(`crash grouping failed for ${crashes.length} events (written without it)`, err);
      }
    }
    return { inserted, duplicates: rows.length - count, userDays, users, news, firstDay };
  }

  /** Aggregates the written events in memory (one row per key), then upserts each rollup in key order. */
  private async upsertRollups(client: pg.PoolClient, written: AnalyticsEvent[]) {
    interface Page { mp: string; hour: number; page: string; v: string; host: string; ws: string; views: number; timed: number; timeSum: number }
    /** One hour × mini program × version × host app: its analytics_hourly counts, pages and users. */
    interface Group {
      mp: string; hour: number; v: string; host: string; ws: string; dayKey: string;
      launches: number; pageViews: number; custom: number; errors: number; crashes: number; perfCount: number; perfSum: number; events: number;
      pages: Map<string, Page>; users: Set<string>;
    }
    interface UserDay { key: string; mp: string; day: string; user: string; v: string; host: string; ws: string }
    interface User { key: string; mp: string; user: string; ws: string; at: number; v: string; host: string }
    interface Session { mp: string; session: string; ws: string; v: string; host: string; user: string; start: number; last: number; events: number }
    interface Minute { mp: string; v: string; minute: number; launches: number; crashes: number }
    // Keys are built once per group, session or user, not per event: consecutive events mostly share a group.
    const groups = new Map<string, Group>();
    const usersOf = new Map<string, Map<string, User>>();
    const sessionsOf = new Map<string, Map<string, Session>>();
    const minutes = new Map<string, Minute>();
    let g: Group | undefined;
    let minAt = Infinity;
    for (const e of written) {
      if (e.at < minAt) minAt = e.at;
      const mp = e.miniProgramId;
      const v = e.versionId;
      const host = e.hostAppId ?? '';
      const hour = Math.floor(e.at / hourMs) * hourMs;
      if (!g || g.hour !== hour || g.mp !== mp || g.v !== v || g.host !== host) {
        const key = mp + sep + hour + sep + v + sep + host;
        g = groups.get(key);
        if (!g) {
          const dayKey = mp + sep + dayOf(hour) + sep + v + sep + host;
          groups.set(key, (g = { mp, hour, v, host, ws: e.workspaceId, dayKey, launches: 0, pageViews: 0, custom: 0, errors: 0, crashes: 0, perfCount: 0, perfSum: 0, events: 0, pages: new Map(), users: new Set() }));
        }
      }
      g.events++;
      switch (e.type) {
        case 'launch': g.launches++; break;
        case 'page_view': g.pageViews++; break;
        case 'custom': g.custom++; break;
        case 'error': g.errors++; break;
        case 'crash': g.crashes++; break;
        case 'perf': g.perfCount++; g.perfSum += e.value ?? 0; break;
      }
      if (e.type === 'page_view' && e.page !== null) {
        let p = g.pages.get(e.page);
        if (!p) g.pages.set(e.page, (p = { mp, hour, page: e.page, v, host, ws: e.workspaceId, views: 0, timed: 0, timeSum: 0 }));
        p.views++;
        if (e.value !== null) ((p.timed++), (p.timeSum += e.value));
      }
      if (e.type === 'launch' || e.type === 'crash') {
        const minute = Math.floor(e.at / minuteMs) * minuteMs;
        const mk = mp + sep + v + sep + minute;
        let m = minutes.get(mk);
        if (!m) minutes.set(mk, (m = { mp, v, minute, launches: 0, crashes: 0 }));
        if (e.type === 'launch') m.launches++;
        else m.crashes++;
      }
      g.users.add(e.userId);
      let users = usersOf.get(mp);
      if (!users) usersOf.set(mp, (users = new Map()));
      const u = users.get(e.userId);
      if (!u) users.set(e.userId, { key: '', mp, user: e.userId, ws: e.workspaceId, at: e.at, v, host });
      else if (e.at < u.at) ((u.at = e.at), (u.v = v), (u.host = host));
      let sessions = sessionsOf.get(mp);
      if (!sessions) sessionsOf.set(mp, (sessions = new Map()));
      const s = sessions.get(e.sessionId);
      if (!s) sessions.set(e.sessionId, { mp, session: e.sessionId, ws: e.workspaceId, v, host, user: e.userId, start: e.at, last: e.at, events: 1 });
      else {
        s.events++;
        if (e.at < s.start) ((s.start = e.at), (s.v = v), (s.host = host), (s.user = e.userId));
        if (e.at > s.last) s.last = e.at;
      }
    }
    const hourly = new Map<string, Group>();
    const pages = new Map<string, Page>();
    const userDays = new Map<string, UserDay>();
    for (const [key, grp] of groups) {
      hourly.set(key, grp);
      for (const [page, p] of grp.pages) pages.set(key + sep + page, p);
      const day = dayOf(grp.hour);
      for (const user of grp.users) {
        const uk = grp.dayKey + sep + user;
        if (!userDays.has(uk) && !this.knownUserDays.get(uk)) userDays.set(uk, { key: uk, mp: grp.mp, day, user, v: grp.v, host: grp.host, ws: grp.ws });
      }
    }
    const users = new Map<string, User>();
    for (const [mp, m] of usersOf) for (const [user, u] of m) users.set((u.key = mp + sep + user), u);
    const sessions = new Map<string, Session>();
    for (const [mp, m] of sessionsOf) for (const [session, x] of m) sessions.set(mp + sep + session, x);
    // Users whose first event is known to be no later than this batch's earliest: nothing to write.
    const userRows = byKey(users).filter((u) => {
      const known = this.knownUsers.get(u.key);
      return known === undefined || u.at < known;
    });

    let firstDay: string | null = written.length ? dayOf(minAt) : null;
    const h = byKey(hourly);
    if (h.length) {
      await client.query(sqlHourly, [
        h.map((r) => r.mp), h.map((r) => iso(r.hour)), h.map((r) => r.v), h.map((r) => r.host), h.map((r) => r.ws),
        h.map((r) => r.launches), h.map((r) => r.pageViews), h.map((r) => r.custom), h.map((r) => r.errors), h.map((r) => r.crashes),
        h.map((r) => r.perfCount), h.map((r) => r.perfSum), h.map((r) => r.events),
      ]);
    }
    const p = byKey(pages);
    if (p.length) {
      await client.query(sqlPageHourly, [
        p.map((r) => r.mp), p.map((r) => iso(r.hour)), p.map((r) => r.page), p.map((r) => r.v), p.map((r) => r.host), p.map((r) => r.ws),
        p.map((r) => r.views), p.map((r) => r.timed), p.map((r) => r.timeSum),
      ]);
    }
    const ud = byKey(userDays);
    if (ud.length) {
      await client.query(sqlUserDays, [ud.map((r) => r.mp), ud.map((r) => r.day), ud.map((r) => r.user), ud.map((r) => r.v), ud.map((r) => r.host), ud.map((r) => r.ws)]);
    }
    if (userRows.length) {
      await client.query(sqlUsers, [
        userRows.map((r) => r.mp), userRows.map((r) => r.user), userRows.map((r) => r.ws), userRows.map((r) => dayOf(r.at)), userRows.map((r) => r.v),
        userRows.map((r) => r.host), userRows.map((r) => iso(r.at)),
      ]);
    }
    const ss = byKey(sessions);
    if (ss.length) {
      const { rows: [first] } = await client.query<{ first: string | null }>(sqlSessionsFirstDay, [
        ss.map((r) => r.mp), ss.map((r) => r.session), ss.map((r) => r.ws), ss.map((r) => r.v), ss.map((r) => r.host), ss.map((r) => r.user),
        ss.map((r) => dayOf(r.start)), ss.map((r) => iso(r.start)), ss.map((r) => iso(r.last)), ss.map((r) => r.events),
      ]);
      if (first?.first && (!firstDay || first.first < firstDay)) firstDay = first.first;
    }
    const m = byKey(minutes);
    if (m.length) {
      await client.query(sqlRuntimeCounts, [m.map((r) => r.mp), m.map((r) => r.v), m.map((r) => iso(r.minute)), m.map((r) => r.launches), m.map((r) => r.crashes)]);
    }
    return { userDays: ud.map((r) => r.key), users: userRows.map((r) => [r.key, r.at] as [string, number]), firstDay };
  }

  /**
   * The raw rows into analytics_events; answers the rows written. `direct`: COPY straight in (fails
   * with 23505 on any duplicate); else COPY into the stage table and INSERT … ON CONFLICT DO NOTHING.
   */
  private async insertRaw(client: pg.PoolClient, rows: AnalyticsEvent[], o: { direct: boolean; probe?: boolean }): Promise<number> {
    const chunks = copyChunks(rows, new Date().toISOString());
    if (o.direct) return copyIn(client, sqlCopyDirect, chunks);
    await copyIn(client, sqlCopyStage, chunks);
    const { rowCount } = await client.query(sqlInsertEvents);
    // The stage empties at commit (or rollback); a probe (findRefused) inserts more than once per transaction.
    if (o.probe) await client.query('TRUNCATE analytics_ingest_stage');
    return rowCount ?? 0;
  }

  /** After commit: rollup rows now known to be stored. */
  private remember(userDays: string[], users: [string, number][]) {
    for (const k of userDays) this.knownUserDays.set(k, true);
    for (const [k, at] of users) {
      const known = this.knownUsers.get(k);
      if (known === undefined || at < known) this.knownUsers.set(k, at);
    }
  }

  /**
   * Which rows the raw insert refuses on their own: halves tried under savepoints in a transaction
   * that is rolled back, down to single rows (only after an insert failed with a data error).
   */
  private async findRefused(client: pg.PoolClient, rows: AnalyticsEvent[]): Promise<Set<number>> {
    const bad = new Set<number>();
    await client.query('BEGIN');
    try {
      const probe = async (from: number, to: number): Promise<void> => {
        await client.query('SAVEPOINT probe');
        try {
          await this.insertRaw(client, rows.slice(from, to), { direct: false, probe: true });
          await client.query('RELEASE SAVEPOINT probe');
          return;
        } catch (err) {
          await client.query('ROLLBACK TO SAVEPOINT probe');
          if (!isDataError(err)) throw err;
        }
        if (to - from === 1) bad.add(from);
        else {
          const mid = (from + to) >> 1;
          await probe(from, mid);
          await probe(mid, to);
        }
      };
      await probe(0, rows.length);
    } finally {
      await client.query('ROLLBACK');
    }
    return bad;
  }
}
