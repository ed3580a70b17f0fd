/**
 * Validation of a collect batch, pure and fast (it runs for every event at ingest rates): the
 * batch's shape, then each event's fields by type, then (over lookups the caller prepared) its mini
 * program, version and host app. Hand-written checks and precompiled patterns, no schema library
 * per event. A bad event becomes a rejection with a code, by its index; the others go on.
 *
 * Strings that PostgreSQL cannot store (a NUL character; in properties also an unpaired surrogate)
 * are refused or replaced here, so one event can never make a whole flush fail.
 */
import { fingerprintOf } from './fingerprint.js';
import { maxBatchEvents, maxEventAgeMs, maxEventFutureMs, type AnalyticsEvent, type EventType } from './types.js';

/** Per-event rejection codes (the README's table lists them with their meaning). */
export type RejectionCode =
  | 'invalid_event' | 'invalid_id' | 'unknown_type'
  | 'wrong_mini_program' | 'unknown_mini_program' | 'unknown_version' | 'unknown_host_app' | 'wrong_host_app'
  | 'invalid_user_id' | 'invalid_session_id' | 'invalid_time' | 'time_out_of_range'
  | 'missing_page' | 'invalid_page' | 'missing_name' | 'invalid_name' | 'invalid_value'
  | 'missing_message' | 'message_too_long' | 'invalid_stack' | 'stack_too_long'
  | 'invalid_properties' | 'properties_too_large';

export interface Rejection {
  index: number;
  code: RejectionCode;
  /** The event field at fault; null when the event itself is not an object. */
  field: string | null;
  message: string;
}

/** Field limits (characters unless said otherwise). */
export const limits = Object.freeze({
  idLength: 100,
  userIdLength: 128,
  sessionIdLength: 128,
  pageLength: 512,
  nameLength: 128,
  versionLength: 64,
  /** UTF-8 bytes. */
  messageBytes: 8 * 1024,
  stackBytes: 32 * 1024,
  propertiesKeys: 50,
  /** UTF-8 bytes of the properties as JSON. */
  propertiesBytes: 4 * 1024,
});

/** How the batch authenticated; it decides the defaults and what events may name. */
export type CollectAuth =
  | { kind: 'ingest_key'; miniProgramId: string; workspaceId: string }
  | { kind: 'host_app'; hostAppId: string; workspaceId: string };

export interface ValidateContext {
  auth: CollectAuth;
  /** The server's clock (ms). */
  now: number;
  /** Raw-event retention in days: nothing older than min(7 days, this) is accepted. */
  retentionDays: number;
}

/**
 * An event whose own fields passed; its mini program, version and host app still need the
 * lookups (resolveEvents).
 */
export interface CheckedEvent {
  index: number;
  id: string;
  type: EventType;
  at: number;
  miniProgramId: string;
  /** A version id (byId) or a version string of the mini program. */
  versionRef: string;
  byId: boolean;
  hostAppId: string | null;
  userId: string;
  sessionId: string;
  page: string | null;
  name: string | null;
  value: number | null;
  message: string | null;
  stack: string | null;
  props: string | null;
}

/** What the caller knows about the ids a batch names (from its cache or the database). */
export interface Lookups {
  /** The workspace of a mini program that exists and is not removed; undefined otherwise. */
  programWorkspace(miniProgramId: string): string | undefined;
  /** The id of the mini program's version named by id (byId) or by its version string; undefined when none. */
  versionOf(miniProgramId: string, ref: string, byId: boolean): string | undefined;
  /** The workspace of a host app; undefined when unknown. */
  hostAppWorkspace(hostAppId: string): string | undefined;
}

/** A batch refused as a whole (nothing stored). */
export interface BatchError {
  status: 400 | 413;
  code: 'invalid_json' | 'invalid_batch' | 'no_events' | 'too_many_events';
  message: string;
}

const uuidPattern = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** ISO-8601 date and time with an offset (a time without one would mean the server's zone). */
const isoPattern = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$/;
/** In JSON text: a \u0000 escape or an unpaired surrogate escape (JSON.stringify writes pairs raw), not preceded by an escaped backslash. */
const jsonUnstorable = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

const nonBlank = /\S/;
const typeSet: ReadonlySet<string> = new Set<EventType>(['launch', 'page_view', 'custom', 'error', 'crash', 'perf']);
const dayMs = 24 * 3600_000;

/** Parses and checks a batch body (already within the size limit): its events, or why it is refused. */
export function readBatch(body: Uint8Array | string): unknown[] | BatchError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return { status: 400, code: 'invalid_json', message: 'The body is not JSON' };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || !Array.isArray((parsed as { events?: unknown }).events)) {
    return { status: 400, code: 'invalid_batch', message: 'The body must be an object {"events": [ … ]}' };
  }
  const events = (parsed as { events: unknown[] }).events;
  if (!events.length) return { status: 400, code: 'no_events', message: 'The batch has no events' };
  if (events.length > maxBatchEvents) return { status: 400, code: 'too_many_events', message: `A batch holds at most ${maxBatchEvents} events; this one has ${events.length}` };
  return events;
}

/** UTF-8 length of a string, counted only when it could be over `limit`. */
function overBytes(s: string, limit: number): boolean {
  if (s.length * 3 <= limit) return false;
  if (s.length > limit) return true;
  return Buffer.byteLength(s, 'utf8') > limit;
}

/** A non-empty string of at most `max` characters without a NUL. */
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max && !v.includes('\0');

const absent = (v: unknown) => v === undefined || v === null;

/** NUL characters cannot be stored in text: replaced, as in any text a program may have mangled. */
const storable = (s: string) => (s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s);

/**
 * Fingerprints of recent errors, by message and stack: the same crash arrives many times, and
 * parsing a stack costs far more than a lookup. Bounded in entries and in the length of a key.
 */
const fingerprints = new Map<string, string>();
const maxFingerprints = 1000;
const maxFingerprintKey = 8 * 1024;

export function cachedFingerprint(message: string, stack: string | null): string {
  const key = stack === null ? message : `${message}\n\u0000${stack}`;
  if (key.length > maxFingerprintKey) return fingerprintOf(message, stack);
  let fingerprint = fingerprints.get(key);
  if (fingerprint === undefined) {
    fingerprint = fingerprintOf(message, stack);
    if (fingerprints.size >= maxFingerprints) fingerprints.delete(fingerprints.keys().next().value!);
    fingerprints.set(key, fingerprint);
  }
  return fingerprint;
}

/** Oldest event time accepted at `now`. */
export const oldestAccepted = (now: number, retentionDays: number) => now - Math.min(maxEventAgeMs, retentionDays * dayMs);

/**
 * First pass: each event's own fields. Events that pass come back as CheckedEvent; the others as
 * rejections (the first fault of each event). Unknown extra fields are ignored.
 */
export function checkEvents(raw: readonly unknown[], ctx: ValidateContext): { checked: CheckedEvent[]; rejected: Rejection[] } {
  const checked: CheckedEvent[] = [];
  const rejected: Rejection[] = [];
  const oldest = oldestAccepted(ctx.now, ctx.retentionDays);
  const newest = ctx.now + maxEventFutureMs;
  const auth = ctx.auth;
  const reject = (index: number, code: RejectionCode, field: string | null, message: string) => {
    rejected.push({ index, code, field, message });
  };

  for (let index = 0; index < raw.length; index++) {
    const e = raw[index] as Record<string, unknown>;
    if (!e || typeof e !== 'object' || Array.isArray(e)) {
      reject(index, 'invalid_event', null, 'An event must be a JSON object');
      continue;
    }
    const id = e.id;
    if (typeof id !== 'string' || !uuidPattern.test(id)) {
      reject(index, 'invalid_id', 'id', 'id must be a UUID (the client makes it; a retried event keeps it)');
      continue;
    }
    const type = e.type;
    if (typeof type !== 'string' || !typeSet.has(type)) {
      reject(index, 'unknown_type', 'type', 'type must be one of launch, page_view, custom, error, crash, perf');
      continue;
    }

    let miniProgramId: string;
    const mp = e.miniProgramId;
    if (auth.kind === 'ingest_key') {
      if (!absent(mp) && mp !== auth.miniProgramId) {
        reject(index, 'wrong_mini_program', 'miniProgramId', 'This ingest key only accepts events of its own mini program');
        continue;
      }
      miniProgramId = auth.miniProgramId;
    } else {
      if (!isText(mp, limits.idLength)) {
        reject(index, 'unknown_mini_program', 'miniProgramId', absent(mp) ? 'miniProgramId is required with a host app signature' : 'miniProgramId must be a mini program id');
        continue;
      }
      miniProgramId = mp;
    }

    let versionRef: string;
    let byId: boolean;
    const vid = e.versionId;
    const vs = e.version;
    if (!absent(vid)) {
      if (!isText(vid, limits.idLength)) {
        reject(index, 'unknown_version', 'versionId', 'versionId must be a version id of the mini program');
        continue;
      }
      versionRef = vid;
      byId = true;
    } else if (!absent(vs)) {
      if (!isText(vs, limits.versionLength)) {
        reject(index, 'unknown_version', 'version', 'version must be a version string of the mini program (e.g. 1.2.0)');
        continue;
      }
      versionRef = vs;
      byId = false;
    } else {
      reject(index, 'unknown_version', 'versionId', 'versionId or version is required');
      continue;
    }

    let hostAppId: string | null;
    const ha = e.hostAppId;
    if (auth.kind === 'host_app') {
      if (!absent(ha) && ha !== auth.hostAppId) {
        reject(index, 'wrong_host_app', 'hostAppId', 'A host app signature only accepts events of that host app');
        continue;
      }
      hostAppId = auth.hostAppId;
    } else if (absent(ha)) {
      hostAppId = null;
    } else if (isText(ha, limits.idLength)) {
      hostAppId = ha;
    } else {
      reject(index, 'unknown_host_app', 'hostAppId', 'hostAppId must be a host app id of the workspace');
      continue;
    }

    const userId = e.userId;
    if (!isText(userId, limits.userIdLength)) {
      reject(index, 'invalid_user_id', 'userId', `userId is required: 1 to ${limits.userIdLength} characters`);
      continue;
    }
    const sessionId = e.sessionId;
    if (!isText(sessionId, limits.sessionIdLength)) {
      reject(index, 'invalid_session_id', 'sessionId', `sessionId is required: 1 to ${limits.sessionIdLength} characters`);
      continue;
    }

    const rawAt = e.at;
    let at: number;
    if (typeof rawAt === 'number') at = rawAt;
    else if (typeof rawAt === 'string' && rawAt.length <= 40 && isoPattern.test(rawAt)) at = Date.parse(rawAt);
    else at = NaN;
    if (!Number.isFinite(at)) {
      reject(index, 'invalid_time', 'at', 'at is required: an ISO-8601 time with its offset, or milliseconds since the epoch');
      continue;
    }
    at = Math.floor(at);
    if (at < oldest || at > newest) {
      reject(index, 'time_out_of_range', 'at', `at must be within the last ${Math.round((ctx.now - oldest) / dayMs)} days and at most 5 minutes ahead of the server's clock`);
      continue;
    }

    let page: string | null = null;
    const p = e.page;
    if (!absent(p) && p !== '') {
      if (!isText(p, limits.pageLength)) {
        reject(index, 'invalid_page', 'page', `page must be a path of at most ${limits.pageLength} characters`);
        continue;
      }
      page = p;
    } else if (type === 'page_view') {
      reject(index, 'missing_page', 'page', 'A page_view needs its page');
      continue;
    }

    let name: string | null = null;
    if (type === 'custom' || type === 'perf') {
      const n = e.name;
      if (absent(n) || n === '') {
        reject(index, 'missing_name', 'name', `A ${type} event needs its ${type === 'perf' ? 'metric ' : ''}name`);
        continue;
      }
      if (!isText(n, limits.nameLength)) {
        reject(index, 'invalid_name', 'name', `name must be a string of at most ${limits.nameLength} characters`);
        continue;
      }
      name = n;
    }

    let value: number | null = null;
    const v = e.value;
    if (!absent(v)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        reject(index, 'invalid_value', 'value', 'value must be a finite number ≥ 0 (milliseconds for perf and page_view)');
        continue;
      }
      value = v;
    } else if (type === 'perf') {
      reject(index, 'invalid_value', 'value', 'A perf event needs its value (milliseconds)');
      continue;
    }

    let message: string | null = null;
    let stack: string | null = null;
    if (type === 'error' || type === 'crash') {
      const m = e.message;
      if (typeof m !== 'string' || !nonBlank.test(m)) {
        reject(index, 'missing_message', 'message', `An ${type} event needs its message`);
        continue;
      }
      if (overBytes(m, limits.messageBytes)) {
        reject(index, 'message_too_long', 'message', `message is at most ${limits.messageBytes / 1024} KB`);
        continue;
      }
      message = storable(m);
      const s = e.stack;
      if (!absent(s) && s !== '') {
        if (typeof s !== 'string') {
          reject(index, 'invalid_stack', 'stack', 'stack must be the stack trace as text');
          continue;
        }
        if (overBytes(s, limits.stackBytes)) {
          reject(index, 'stack_too_long', 'stack', `stack is at most ${limits.stackBytes / 1024} KB`);
          continue;
        }
        stack = storable(s);
      }
    }

    let props: string | null = null;
    const pr = e.properties;
    if (!absent(pr)) {
      if (typeof pr !== 'object' || Array.isArray(pr)) {
        reject(index, 'invalid_properties', 'properties', 'properties must be an object');
        continue;
      }
      let keys = 0;
      for (const _ in pr) if (++keys > limits.propertiesKeys) break;
      if (keys > limits.propertiesKeys) {
        reject(index, 'invalid_properties', 'properties', `properties has at most ${limits.propertiesKeys} keys`);
        continue;
      }
      if (keys) {
        const text = JSON.stringify(pr);
        if (overBytes(text, limits.propertiesBytes)) {
          reject(index, 'properties_too_large', 'properties', `properties is at most ${limits.propertiesBytes / 1024} KB as JSON`);
          continue;
        }
        if (text.includes('\\u') && jsonUnstorable.test(text)) {
          reject(index, 'invalid_properties', 'properties', 'properties may not hold a NUL character or an unpaired surrogate');
          continue;
        }
        props = text;
      }
    }

    checked.push({
      index, id: id.toLowerCase(), type: type as EventType, at, miniProgramId, versionRef, byId, hostAppId,
      userId, sessionId, page, name, value, message, stack, props,
    });
  }
  return { checked, rejected };
}

/**
 * Second pass over the lookups: mini program (in the caller's workspace), version (of that mini
 * program), host app (of the same workspace). Computes the crash group fingerprint of accepted
 * errors and crashes.
 */
export function resolveEvents(checked: readonly CheckedEvent[], ctx: ValidateContext, lookups: Lookups): { events: AnalyticsEvent[]; rejected: Rejection[] } {
  const events: AnalyticsEvent[] = [];
  const rejected: Rejection[] = [];
  const workspaceId = ctx.auth.workspaceId;
  for (const c of checked) {
    if (lookups.programWorkspace(c.miniProgramId) !== workspaceId) {
      rejected.push({ index: c.index, code: 'unknown_mini_program', field: 'miniProgramId', message: `No mini program ${c.miniProgramId} in this host app's workspace` });
      continue;
    }
    const versionId = lookups.versionOf(c.miniProgramId, c.versionRef, c.byId);
    if (versionId === undefined) {
      rejected.push({ index: c.index, code: 'unknown_version', field: c.byId ? 'versionId' : 'version', message: `No version ${c.versionRef} of mini program ${c.miniProgramId}` });
      continue;
    }
    if (c.hostAppId !== null && ctx.auth.kind === 'ingest_key' && lookups.hostAppWorkspace(c.hostAppId) !== workspaceId) {
      rejected.push({ index: c.index, code: 'unknown_host_app', field: 'hostAppId', message: `No host app ${c.hostAppId} in this mini program's workspace` });
      continue;
    }
    events.push({
      id: c.id, type: c.type, at: c.at, workspaceId, miniProgramId: c.miniProgramId, versionId, hostAppId: c.hostAppId,
      userId: c.userId, sessionId: c.sessionId, page: c.page, name: c.name, value: c.value,
      message: c.message, stack: c.stack, fingerprint: c.message !== null ? cachedFingerprint(c.message, c.stack) : null, props: c.props,
    });
  }
  return { events, rejected };
}

/** Both passes over lookups already at hand (tests and callers without lookups to load). Rejections by index. */
export function validateEvents(raw: readonly unknown[], ctx: ValidateContext, lookups: Lookups): { events: AnalyticsEvent[]; rejected: Rejection[] } {
  const first = checkEvents(raw, ctx);
  const second = resolveEvents(first.checked, ctx, lookups);
  return { events: second.events, rejected: mergeRejections(first.rejected, second.rejected) };
}

/** The two passes' rejections in index order (each list is already in order). */
export function mergeRejections(a: Rejection[], b: Rejection[]): Rejection[] {
  if (!b.length) return a;
  if (!a.length) return b;
  const out: Rejection[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]!.index < b[j]!.index)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}
