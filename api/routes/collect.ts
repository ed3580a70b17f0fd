import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { Context, Handler } from 'hono';
import { randomBytes, randomUUID } from 'node:crypto';
import { announce, appendAudit } from '../../activities/audit.js';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { verifyHostAppSignature } from '../../lib/host-app-keys.js';
import { IngestOverloaded, eventTypes, maxBatchBytes, maxBatchEvents } from '../../lib/analytics/types.js';
import {
  checkEvents, limits, mergeRejections, readBatch, resolveEvents, type CheckedEvent, type CollectAuth, type Lookups,
} from '../../lib/analytics/validate.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { ErrorSchema, MiniProgramParams, errorResponses, json } from '../schemas.js';

/**
 * Event ingest (POST /api/v1/collect) and a mini program's public ingest key.
 *
 * The collect handler is mounted by app.ts ahead of the console's middleware (no session, CSRF or
 * browser headers: trackers and host apps call it), documented here. It authenticates the batch by
 * a mini program's ingest key or a host app's request signature, validates every event
 * (lib/analytics/validate.ts), and hands the good ones to the process's ingest buffer.
 *
 * Lookups (ingest key → mini program, mini program → workspace and versions, host app → workspace)
 * are cached in this process for at most `lookupTtlMs` (unknown ids for `missTtlMs`); a change a
 * projection announces (a new version, a rotated key) drops the mini program's entries at once.
 */

/** Longest a lookup is served from memory. */
export const lookupTtlMs = 10_000;
/** Longest an unknown id (or a missing version of a known mini program) is remembered. */
const missTtlMs = 1_000;
/** A version a cached mini program does not know: read the mini program again if its entry is older than this. */
const versionMissRefreshMs = 200;
/** Most entries per cache (the oldest goes first). */
const maxEntries = 10_000;

const ingestKeyPattern = /^mpik_[A-Za-z0-9_-]{8,128}$/;

const corsHeaders = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Retry-After, X-Request-Id',
} as const;
const answerHeaders = { ...corsHeaders, 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' } as const;
const answerHeaderList = Object.entries(answerHeaders);
const preflightHeaders = {
  ...corsHeaders,
  'Access-Control-Allow-Methods': 'POST, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, X-Mpdp-Ingest-Key, X-Mpdp-App, X-Mpdp-Timestamp, X-Mpdp-Signature, X-Mpdp-Key',
  'Access-Control-Max-Age': '86400',
} as const;

interface Program {
  loadedAt: number;
  /** null: no such mini program, or removed. */
  workspaceId: string | null;
  versionIds: Set<string>;
  /** version string → version id. */
  versionNames: Map<string, string>;
}

interface KeyOwner { loadedAt: number; miniProgramId: string | null; workspaceId: string | null }
interface HostApp { loadedAt: number; workspaceId: string | null }

/** A map that forgets its oldest entries past `maxEntries`. */
function remember<K, V>(map: Map<K, V>, key: K, value: V) {
  map.delete(key);
  map.set(key, value);
  if (map.size > maxEntries) map.delete(map.keys().next().value!);
}

const fresh = (entry: { loadedAt: number; workspaceId: string | null } | undefined, now: number) =>
  !!entry && now - entry.loadedAt < (entry.workspaceId === null ? missTtlMs : lookupTtlMs);

/** The per-process lookup caches of one app (shared by the collect handler and the ingest-key routes). */
class CollectLookups implements Lookups {
  readonly programs = new Map<string, Program>();
  readonly keys = new Map<string, KeyOwner>();
  readonly hostApps = new Map<string, HostApp>();
  private readonly loadingPrograms = new Map<string, Promise<void>>();
  private readonly loadingHostApps = new Map<string, Promise<void>>();
  /** Bumped by every invalidation, so a load that started before it does not store stale rows. */
  private epoch = 0;

  constructor(private readonly deps: ApiDeps) {
    deps.hub?.subscribe((e) => {
      if (e.miniProgramId) this.forgetProgram(e.miniProgramId);
    });
  }

  /** A mini program changed (a new version, a rotated key, removed): read it again on its next use. */
  forgetProgram(miniProgramId: string) {
    this.epoch++;
    this.programs.delete(miniProgramId);
    this.loadingPrograms.delete(miniProgramId);
    for (const [key, owner] of this.keys) if (owner.miniProgramId === miniProgramId) this.keys.delete(key);
  }

  /** The mini program an ingest key belongs to (never a removed one), or null. */
  async keyOwner(key: string): Promise<{ miniProgramId: string; workspaceId: string } | null> {
    const now = Date.now();
    let owner = this.keys.get(key);
    if (!owner || now - owner.loadedAt >= (owner.miniProgramId === null ? missTtlMs : lookupTtlMs)) {
      const epoch = this.epoch;
      const { rows: [row] } = await this.deps.pool.query<{ id: string; workspace_id: string }>({
        name: 'mpdp_collect_ingest_key',
        text: `SELECT id, workspace_id FROM mini_programs WHERE ingest_key = $1 AND status <> 'removed'`,
        values: [key],
      });
      owner = { loadedAt: now, miniProgramId: row?.id ?? null, workspaceId: row?.workspace_id ?? null };
      if (epoch === this.epoch) remember(this.keys, key, owner);
    }
    return owner.miniProgramId && owner.workspaceId ? { miniProgramId: owner.miniProgramId, workspaceId: owner.workspaceId } : null;
  }

  /** Loads what the checked events name: their mini programs (with versions) and host apps. */
  async prepare(checked: readonly CheckedEvent[], auth: CollectAuth): Promise<void> {
    const now = Date.now();
    const programIds = new Set<string>();
    const hostAppIds = new Set<string>();
    for (const c of checked) {
      programIds.add(c.miniProgramId);
      if (c.hostAppId !== null && auth.kind === 'ingest_key') hostAppIds.add(c.hostAppId);
    }
    const stalePrograms = [...programIds].filter((id) => !fresh(this.programs.get(id), now));
    const staleApps = [...hostAppIds].filter((id) => !fresh(this.hostApps.get(id), now));
    await Promise.all([this.loadPrograms(stalePrograms), this.loadHostApps(staleApps)]);

    // A version uploaded since the entry was read (its announcement may still be on its way): read
    // the mini program again, at most five times a second.
    const again = new Set<string>();
    for (const c of checked) {
      const p = this.programs.get(c.miniProgramId);
      if (p?.workspaceId && Date.now() - p.loadedAt >= versionMissRefreshMs && this.versionOf(c.miniProgramId, c.versionRef, c.byId) === undefined) again.add(c.miniProgramId);
    }
    if (again.size) {
      for (const id of again) this.programs.delete(id);
      await this.loadPrograms([...again]);
    }
  }

  private async loadPrograms(ids: string[]): Promise<void> {
    const waits: Promise<void>[] = [];
    const missing: string[] = [];
    for (const id of ids) {
      const pending = this.loadingPrograms.get(id);
      if (pending) waits.push(pending);
      else missing.push(id);
    }
    if (missing.length) {
      const epoch = this.epoch;
      const loadedAt = Date.now();
      const load = this.deps.pool.query<{ id: string; workspace_id: string; status: string; version_id: string | null; version: string | null }>({
        name: 'mpdp_collect_programs',
        text: `SELECT m.id, m.workspace_id, m.status, v.id AS version_id, v.version
               FROM mini_programs m LEFT JOIN versions v ON v.mini_program_id = m.id
               WHERE m.id = ANY($1::text[])`,
        values: [missing],
      }).then(({ rows }) => {
        const found = new Map<string, Program>(missing.map((id) => [id, { loadedAt, workspaceId: null, versionIds: new Set(), versionNames: new Map() }]));
        for (const r of rows) {
          const p = found.get(r.id)!;
          if (r.status === 'removed') continue;
          p.workspaceId = r.workspace_id;
          if (r.version_id && r.version) {
            p.versionIds.add(r.version_id);
            p.versionNames.set(r.version, r.version_id);
          }
        }
        for (const [id, p] of found) {
          if (this.loadingPrograms.get(id) === load) this.loadingPrograms.delete(id);
          // Invalidated while loading (a rollout announces its mini program often): this request
          // still uses what it read (it asked before the change), the next one reads it again.
          remember(this.programs, id, epoch === this.epoch ? p : { ...p, loadedAt: 0 });
        }
      }, (err: unknown) => {
        for (const id of missing) if (this.loadingPrograms.get(id) === load) this.loadingPrograms.delete(id);
        throw err;
      });
      for (const id of missing) this.loadingPrograms.set(id, load);
      waits.push(load);
    }
    await Promise.all(waits);
  }

  private async loadHostApps(ids: string[]): Promise<void> {
    const waits: Promise<void>[] = [];
    const missing: string[] = [];
    for (const id of ids) {
      const pending = this.loadingHostApps.get(id);
      if (pending) waits.push(pending);
      else missing.push(id);
    }
    if (missing.length) {
      const loadedAt = Date.now();
      const load = this.deps.pool.query<{ id: string; workspace_id: string }>({
        name: 'mpdp_collect_host_apps',
        text: 'SELECT id, workspace_id FROM host_apps WHERE id = ANY($1::text[])',
        values: [missing],
      }).then(({ rows }) => {
        const workspaces = new Map(rows.map((r) => [r.id, r.workspace_id]));
        for (const id of missing) {
          if (this.loadingHostApps.get(id) === load) this.loadingHostApps.delete(id);
          remember(this.hostApps, id, { loadedAt, workspaceId: workspaces.get(id) ?? null });
        }
      }, (err: unknown) => {
        for (const id of missing) if (this.loadingHostApps.get(id) === load) this.loadingHostApps.delete(id);
        throw err;
      });
      for (const id of missing) this.loadingHostApps.set(id, load);
      waits.push(load);
    }
    await Promise.all(waits);
  }

  /** The workspace of a host app, read (and cached) when not in memory. */
  async hostAppWorkspaceOf(hostAppId: string): Promise<string | undefined> {
    if (!fresh(this.hostApps.get(hostAppId), Date.now())) await this.loadHostApps([hostAppId]);
    return this.hostAppWorkspace(hostAppId);
  }

  programWorkspace(miniProgramId: string) {
    return this.programs.get(miniProgramId)?.workspaceId ?? undefined;
  }

  versionOf(miniProgramId: string, ref: string, byId: boolean) {
    const p = this.programs.get(miniProgramId);
    if (!p) return undefined;
    if (byId) return p.versionIds.has(ref) ? ref : undefined;
    return p.versionNames.get(ref);
  }

  hostAppWorkspace(hostAppId: string) {
    return this.hostApps.get(hostAppId)?.workspaceId ?? undefined;
  }
}

const lookupsByDeps = new WeakMap<ApiDeps, CollectLookups>();
function lookupsOf(deps: ApiDeps): CollectLookups {
  let l = lookupsByDeps.get(deps);
  if (!l) {
    l = new CollectLookups(deps);
    lookupsByDeps.set(deps, l);
  }
  return l;
}

/** Reads the body up to `max` bytes; null when it is longer (the rest is not read). */
async function readBody(c: Context<AppEnv>, max: number): Promise<Uint8Array | null> {
  const declared = c.req.header('content-length');
  if (declared !== undefined) {
    // The HTTP parser delivers exactly Content-Length bytes: checked before reading anything.
    if (!/^\d+$/.test(declared) || Number(declared) > max) return null;
    return new Uint8Array(await c.req.arrayBuffer());
  }
  // Chunked: read while it stays within the limit.
  const stream = c.req.raw.body;
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** The request path with its query, as the signature check of host apps reads it (api/routes/host-apps.ts). */
function signedPath(c: Context<AppEnv>): string {
  const url = new URL(c.req.url);
  return url.pathname + url.search;
}

const missingCredentials = () =>
  new AppError(401, 'missing_credentials', 'Send the mini program\'s ingest key (X-Mpdp-Ingest-Key header or ?key=) or a host app signature (X-Mpdp-App, X-Mpdp-Timestamp, X-Mpdp-Signature)');
const unknownKey = () => new AppError(401, 'unknown_ingest_key', 'No mini program has this ingest key (was it rotated?)');

/** Who sent the batch: an ingest key or a host app's signature over the exact body. */
async function authenticate(c: Context<AppEnv>, deps: ApiDeps, lookups: CollectLookups, body: Uint8Array): Promise<CollectAuth> {
  const appId = c.req.header('x-mpdp-app');
  if (appId) {
    const result = await verifyHostAppSignature(deps.sequelize, {
      appId, method: c.req.method, path: signedPath(c), body,
      timestamp: c.req.header('x-mpdp-timestamp'), signature: c.req.header('x-mpdp-signature'), keyFingerprint: c.req.header('x-mpdp-key'),
    });
    if (!result.verified) throw new AppError(401, result.code, result.message);
    const workspaceId = await lookups.hostAppWorkspaceOf(appId);
    if (!workspaceId) throw new AppError(401, 'unknown_app', 'No host app has this id');
    return { kind: 'host_app', hostAppId: appId, workspaceId };
  }
  const key = c.req.header('x-mpdp-ingest-key') ?? c.req.query('key');
  if (!key) throw missingCredentials();
  if (!ingestKeyPattern.test(key)) throw unknownKey();
  const owner = await lookups.keyOwner(key);
  if (!owner) throw unknownKey();
  return { kind: 'ingest_key', ...owner };
}

/**
 * POST /api/v1/collect, mounted by app.ts before the console's middleware. Every answer (errors
 * included) carries `Access-Control-Allow-Origin: *`: trackers post from any origin, without cookies.
 */
export function collectEdge(deps: ApiDeps): Handler<AppEnv> {
  const lookups = lookupsOf(deps);
  const ingest = deps.ingest;
  const retentionDays = deps.config.analytics.retentionDays;
  return async (c) => {
    for (const [k, v] of answerHeaderList) c.header(k, v);
    try {
      const body = await readBody(c, maxBatchBytes);
      if (!body) throw new AppError(413, 'batch_too_large', `A batch is at most ${maxBatchBytes / 1024 / 1024} MB`);
      const auth = await authenticate(c, deps, lookups, body);
      const raw = readBatch(body);
      if (!Array.isArray(raw)) throw new AppError(raw.status, raw.code, raw.message);

      const ctx = { auth, now: Date.now(), retentionDays };
      const first = checkEvents(raw, ctx);
      if (first.checked.length) await lookups.prepare(first.checked, auth);
      const second = resolveEvents(first.checked, ctx, lookups);
      const rejected = mergeRejections(first.rejected, second.rejected);
      const events = second.events;
      const wait = c.req.query('wait');

      if (!ingest) throw new Error('collect: no ingest buffer (createApp sets deps.ingest)');
      if (wait === 'true' || wait === '1') {
        const written = events.length ? await ingest.acceptAndWait(events) : { written: 0, duplicates: 0 };
        return c.body(JSON.stringify({ accepted: events.length, written: written.written, duplicates: written.duplicates, rejected, durable: true }), 202);
      }
      const flushBy = events.length ? ingest.accept(events).flushBy : Date.now();
      return c.body(JSON.stringify({ accepted: events.length, rejected, durable: false, flushBy: new Date(flushBy).toISOString() }), 202);
    } catch (err) {
      // The error funnel answers (app.onError); this route runs before the request-id middleware.
      const id = randomUUID();
      c.set('requestId', id);
      c.header('X-Request-Id', id);
      if (err instanceof IngestOverloaded) {
        const seconds = Math.max(1, Math.ceil(err.retryAfterMs / 1000));
        c.header('Retry-After', String(seconds));
        throw new AppError(503, 'ingest_overloaded', err.message, { retryAfterSeconds: seconds });
      }
      throw err;
    }
  };
}

/** OPTIONS /api/v1/collect: the CORS preflight of a browser's cross-origin post (any origin, no credentials). */
export function collectPreflight(): Handler<AppEnv> {
  return (c) => c.body(null, 204, preflightHeaders);
}

// ───────────── Documentation and the ingest key ─────────────

const EventDoc = z.object({
  id: z.string().uuid().describe('the client\'s event id; a retry sends the same id (and time): it counts once'),
  type: z.enum(eventTypes),
  miniProgramId: z.string().optional().describe('required with a host app signature; with an ingest key it defaults to (and must be) the key\'s mini program'),
  versionId: z.string().optional().describe('the version id, or:'),
  version: z.string().optional().describe('the version string (e.g. 1.2.0) of that mini program; one of versionId / version is required'),
  hostAppId: z.string().optional().describe('with an ingest key: a host app of the same workspace (optional); with a signature it defaults to (and must be) the signing app'),
  userId: z.string().min(1).max(limits.userIdLength).describe('anonymous, stable user id'),
  sessionId: z.string().min(1).max(limits.sessionIdLength),
  at: z.union([z.string(), z.number()]).describe('ISO-8601 with offset, or ms since the epoch; within the last 7 days (or the retention if shorter) and at most 5 minutes ahead'),
  page: z.string().max(limits.pageLength).optional().describe('required for page_view'),
  name: z.string().max(limits.nameLength).optional().describe('required for custom (event name) and perf (metric name)'),
  value: z.number().min(0).optional().describe('required for perf (ms); optional time on page (ms) for page_view'),
  message: z.string().optional().describe('required for error and crash; at most 8 KB'),
  stack: z.string().optional().describe('error and crash: the stack trace, at most 32 KB'),
  properties: z.record(z.string(), z.unknown()).optional().describe(`at most ${limits.propertiesKeys} keys and 4 KB as JSON`),
}).openapi('CollectEvent');
const CollectBody = z.object({ events: z.array(EventDoc).min(1).max(maxBatchEvents) }).openapi('CollectBatch');
const RejectionDoc = z.object({ index: z.number().int(), code: z.string(), field: z.string().nullable(), message: z.string() });
const CollectAnswer = z.union([
  z.object({ accepted: z.number().int(), rejected: z.array(RejectionDoc), durable: z.literal(false), flushBy: z.string().describe('the accepted events are written by then (buffered in the API process until then)') }),
  z.object({ accepted: z.number().int(), written: z.number().int(), duplicates: z.number().int().describe('accepted events already stored (a client retry): they count once'), rejected: z.array(RejectionDoc), durable: z.literal(true) }),
]).openapi('CollectAnswer');
const IngestKeySchema = z.object({
  ingestKey: z.string().describe('public: embedded in the mini program; it only lets events of this mini program in'),
  collectUrl: z.string(),
}).openapi('IngestKey');

/** The collect route's documentation, and a mini program's ingest key (read, rotate). */
export function collectRoutes(deps: ApiDeps) {
  const { pool, sequelize, config } = deps;
  const lookups = lookupsOf(deps);
  const collectUrl = `${config.publicUrl}/api/v1/collect`;
  const app = new OpenAPIHono<AppEnv>();
  // Handled by collectEdge (mounted by app.ts ahead of the console's middleware), documented here.
  app.openAPIRegistry.registerPath(createRoute({
    method: 'post', path: '/collect', tags: ['analytics'],
    summary: 'Trackers and host apps: post a batch of analytics events (up to 500 events, 1 MB)',
    description: [
      'Public (no session). Authenticated by the mini program\'s ingest key (header `X-Mpdp-Ingest-Key` or `?key=`, for navigator.sendBeacon) or by a host app\'s signature',
      '(`X-Mpdp-App`, `X-Mpdp-Timestamp`, `X-Mpdp-Signature`, optional `X-Mpdp-Key`, over `POST\\n<path with query>\\n<timestamp>\\n<sha256 hex of the body>`).',
      'Any content type (the body is read raw). Each bad event is listed in `rejected` by index with a code, and never stored; the good ones are.',
      'Without `wait=true` the events are buffered in the API process and written by `flushBy` (a crash of the process loses at most that buffer);',
      'with `wait=true` the answer comes once they are committed. 401: missing_credentials, unknown_ingest_key or the signature\'s code;',
      '413 batch_too_large; 400 invalid_json, invalid_batch, no_events, too_many_events (nothing stored); 503 ingest_overloaded with Retry-After.',
      `Lookups (keys, versions, host apps) are cached in the API process for at most ${lookupTtlMs / 1000} s. CORS: any origin, no credentials.`,
    ].join(' '),
    request: {
      query: z.object({ key: z.string().optional().describe('the ingest key, when no header can be set'), wait: z.enum(['true', 'false']).optional() }),
      body: { content: { 'application/json': { schema: CollectBody }, 'text/plain': { schema: z.string().describe('the same JSON (navigator.sendBeacon)') } }, required: true },
    },
    responses: {
      202: json(CollectAnswer, 'Taken (see rejected)'),
      400: errorResponses[400],
      401: json(ErrorSchema, 'No or bad credentials'),
      413: json(ErrorSchema, 'The body is larger than 1 MB'),
      503: json(ErrorSchema, 'The ingest buffer is full: retry after Retry-After seconds'),
    },
  }));

  return app
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/ingest-key', tags: ['analytics'],
        summary: 'The mini program\'s public ingest key for the tracker, and the collect URL',
        middleware: [requirePermission('analytics.read')], request: { params: MiniProgramParams },
        responses: { 200: json(IngestKeySchema, 'The key'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        const { rows: [row] } = await pool.query<{ ingest_key: string }>({
          name: 'mpdp_collect_key_read',
          text: 'SELECT ingest_key FROM mini_programs WHERE id = $1 AND workspace_id = $2',
          values: [miniProgramId, workspaceId],
        });
        if (!row) throw notFound('Mini program');
        return c.json({ ingestKey: row.ingest_key, collectUrl }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/ingest-key/rotate', tags: ['analytics'],
        summary: 'Issue a new ingest key: the old one stops being accepted at once',
        middleware: [requirePermission('analytics.manage')], request: { params: MiniProgramParams },
        responses: { 200: json(IngestKeySchema, 'The new key'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        const user = c.get('user')!;
        const ingestKey = `mpik_${randomBytes(16).toString('hex')}`;
        const row = await sequelize.transaction(async (transaction) => {
          const [rows] = await sequelize.query(
            `UPDATE mini_programs SET ingest_key = :ingestKey WHERE id = :miniProgramId AND workspace_id = :workspaceId AND status <> 'removed' RETURNING status, seq`,
            { replacements: { ingestKey, miniProgramId, workspaceId }, transaction },
          );
          const updated = (rows as { status: string; seq: number }[])[0];
          if (!updated) return null;
          await appendAudit(sequelize, {
            dedupeKey: `mini_program:ingest_key_rotated:${miniProgramId}:${newId('a')}`, workspaceId, subjectType: 'mini_program', subjectId: miniProgramId,
            actorId: user.id, action: 'ingest_key_rotated', fromState: null, toState: null, comment: 'A new ingest key was issued; the previous one is no longer accepted', at: new Date().toISOString(),
          }, transaction);
          // Every API process drops its cached key at once (this one below, the others on the notification).
          await announce(sequelize, { workspaceId, miniProgramId, kind: 'mini_program', status: updated.status, seq: updated.seq }, transaction);
          return updated;
        });
        if (!row) throw notFound('Mini program');
        lookups.forgetProgram(miniProgramId);
        return c.json({ ingestKey, collectUrl }, 200);
      },
    );
}
