import type { Context } from 'hono';
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { AppError, notFound } from '../../lib/errors.js';
import { cohortLimit, rolloutBucket } from '../../lib/rollout-hash.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { publicRoute } from '../middleware.js';
import { ErrorSchema, errorResponses, json } from '../schemas.js';

/** How long a mini program's resolve plan is served from memory before it is read again. */
export const resolveTtlMs = 1000;
/** Past the TTL, a plan may still answer (while a fresh one loads) up to this age. */
const resolveStaleMs = 2000;
/** Most mini programs whose plan is kept in memory (the oldest goes first). */
const maxCachedPlans = 10_000;
const maxIdLength = 100;
const maxUserIdLength = 256;

const channels = ['live', 'rollout', 'whitelist'] as const;
type Channel = (typeof channels)[number];

const ResolveSchema = z
  .object({
    miniProgramId: z.string(),
    versionId: z.string(),
    version: z.string(),
    packageUrl: z.string().describe('the package zip, content-addressed and immutable'),
    packageSha256: z.string(),
    channel: z.enum(channels).describe('live: the live version; rollout: the user is in the staged rollout\'s share; whitelist: the user is a tester and the rollout serves testers'),
    rolloutPercent: z.number().nullable().describe('share of users the staged rollout serves now (0–100), null when none is rolling out or paused'),
    domains: z
      .object({ server: z.array(z.string()), webview: z.array(z.string()) })
      .describe('the workspace\'s domain preference as it was when this version was submitted: origins (https://, wss://; a leading *. matches subdomains) the runtime lets it call / open in a web view; empty lists for versions submitted before domain preferences existed'),
  })
  .openapi('ResolvedVersion');

/** What resolve answers for one mini program, read at most once per TTL and prepared in advance. */
interface Plan {
  loadedAt: number;
  /** Offline, removed or unknown: every caller gets this. */
  error: AppError | null;
  /** Answer body for users outside the cohort (the live version, or everyone's once completed). */
  live: string | null;
  /** Answer body for users in the share, and buckets below `limit` are in it (0: no share). */
  cohort: string | null;
  limit: number;
  /** Testers of the mini program and of its workspace, while a whitelist stage serves them. */
  testers: { ids: Set<string>; emails: Set<string>; body: string } | null;
}

interface VersionDomains { server: string[]; webview: string[] }
const noDomains: VersionDomains = { server: [], webview: [] };

interface PlanRow {
  workspace_id: string;
  status: string;
  live_version_id: string | null;
  live_version: string | null;
  live_sha: string | null;
  live_domains: VersionDomains | null;
  r_status: string | null;
  r_version_id: string | null;
  r_version: string | null;
  r_sha: string | null;
  r_domains: VersionDomains | null;
  r_percent: number | null;
  r_whitelist: boolean | null;
}

const offline = new AppError(410, 'mini_program_offline', 'This mini program is offline');
const unknown = notFound('Mini program');
const noLiveVersion = new AppError(404, 'no_live_version', 'This mini program has no live version for this user yet');

/**
 * The runtime side host apps call, with no user session: resolve which version a user gets and
 * download a package. Launches and crashes go to POST /api/v1/collect (api/routes/collect.ts).
 */
const resolveHandlers = new WeakMap<ApiDeps, (c: Context<AppEnv>) => Promise<Response>>();

/**
 * The runtime's hot path for host apps, mounted by app.ts before the console's middleware: no
 * session lookup, CSRF, request id or browser headers (no cookies, no HTML: the caller is a host
 * app's backend, not a browser), only `nosniff` and the handler. Same handler and cache as the
 * documented route.
 */
export function runtimeEdge(deps: ApiDeps) {
  const handler = resolveHandlers.get(deps);
  if (!handler) throw new Error('runtimeRoutes(deps) must be built before runtimeEdge(deps)');
  return handler;
}

export function runtimeRoutes(deps: ApiDeps) {
  const { pool, store, config, hub } = deps;
  const packageUrl = (sha: string) => `${config.publicUrl}/api/v1/runtime/packages/${sha}`;

  const plans = new Map<string, Plan>();
  const loading = new Map<string, Promise<Plan>>();
  // A projection that changes a mini program, its versions or its rollout announces it: read again at once.
  hub?.subscribe((e) => {
    if (!e.miniProgramId) return;
    plans.delete(e.miniProgramId);
    loading.delete(e.miniProgramId);
  });

  async function loadPlan(miniProgramId: string): Promise<Plan> {
    const loadedAt = Date.now();
    const { rows: [row] } = await pool.query<PlanRow>({
      name: 'mpdp_runtime_plan',
      text: `SELECT m.workspace_id, m.status, m.live_version_id, lv.version AS live_version, lv.package_sha256 AS live_sha, lv.domains AS live_domains,
               r.status AS r_status, r.version_id AS r_version_id, rv.version AS r_version, rv.package_sha256 AS r_sha, rv.domains AS r_domains,
               r.percent::float8 AS r_percent, r.whitelist AS r_whitelist
             FROM mini_programs m
             LEFT JOIN versions lv ON lv.id = m.live_version_id
             LEFT JOIN rollouts r ON r.mini_program_id = m.id
             LEFT JOIN versions rv ON rv.id = r.version_id AND rv.mini_program_id = m.id
             WHERE m.id = $1`,
      values: [miniProgramId],
    });
    const plan: Plan = { loadedAt, error: null, live: null, cohort: null, limit: 0, testers: null };
    if (!row || row.status === 'removed') return { ...plan, error: unknown };
    if (row.status === 'offline') return { ...plan, error: offline };

    const active = row.r_status === 'rolling_out' || row.r_status === 'paused';
    const percent = active ? Number(row.r_percent ?? 0) : null;
    // Each answer carries the domain lists shipped with its version (read with the version, in the same query).
    const body = (versionId: string, version: string, sha: string, channel: Channel, domains: VersionDomains | null) =>
      JSON.stringify({ miniProgramId, versionId, version, packageUrl: packageUrl(sha), packageSha256: sha, channel, rolloutPercent: percent, domains: domains ?? noDomains });
    const target = row.r_version_id && row.r_version && row.r_sha ? { id: row.r_version_id, version: row.r_version, sha: row.r_sha, domains: row.r_domains } : null;

    if (row.r_status === 'completed' && target) plan.live = body(target.id, target.version, target.sha, 'live', target.domains);
    else if (row.live_version_id && row.live_version && row.live_sha) plan.live = body(row.live_version_id, row.live_version, row.live_sha, 'live', row.live_domains);
    if (active && target) {
      plan.limit = cohortLimit(percent ?? 0);
      plan.cohort = body(target.id, target.version, target.sha, 'rollout', target.domains);
      if (row.r_whitelist) {
        // Testers of this mini program or of its whole workspace, matched by account id or address.
        const { rows } = await pool.query<{ user_id: string | null; email: string }>({
          name: 'mpdp_runtime_testers',
          text: 'SELECT user_id, email FROM testers WHERE workspace_id = $1 AND (mini_program_id = $2 OR mini_program_id IS NULL)',
          values: [row.workspace_id, miniProgramId],
        });
        plan.testers = {
          ids: new Set(rows.flatMap((r) => (r.user_id ? [r.user_id] : []))),
          emails: new Set(rows.map((r) => r.email)),
          body: body(target.id, target.version, target.sha, 'whitelist', target.domains),
        };
      }
    }
    return plan;
  }

  /** The plan from memory when fresh; past the TTL one read refreshes it for everyone waiting. */
  function planOf(miniProgramId: string): Plan | Promise<Plan> {
    const cached = plans.get(miniProgramId);
    const age = cached ? Date.now() - cached.loadedAt : Infinity;
    if (cached && age < resolveTtlMs) return cached;
    let pending = loading.get(miniProgramId);
    if (!pending) {
      pending = loadPlan(miniProgramId).then(
        (plan) => {
          // Stored only if no change was announced while it loaded (that removed this promise).
          if (loading.get(miniProgramId) === pending) {
            loading.delete(miniProgramId);
            plans.delete(miniProgramId);
            plans.set(miniProgramId, plan);
            if (plans.size > maxCachedPlans) plans.delete(plans.keys().next().value!);
          }
          return plan;
        },
        (err: unknown) => {
          if (loading.get(miniProgramId) === pending) loading.delete(miniProgramId);
          throw err;
        },
      );
      loading.set(miniProgramId, pending);
    }
    // Slightly stale (not announced as changed) serves at once while the fresh plan loads.
    if (cached && age < resolveStaleMs) {
      pending.catch(() => undefined);
      return cached;
    }
    return pending;
  }

  const answer = (plan: Plan, miniProgramId: string, userId: string): string => {
    if (plan.error) throw plan.error;
    const t = plan.testers;
    if (t && (t.ids.has(userId) || t.emails.has(userId.toLowerCase()))) return t.body;
    if (plan.cohort && plan.limit > 0 && rolloutBucket(miniProgramId, userId) < plan.limit) return plan.cohort;
    if (plan.live) return plan.live;
    throw noLiveVersion;
  };

  const app = new OpenAPIHono<AppEnv>();
  // The host apps' hot path: documented here, handled below without the generic validator (the
  // two inputs are checked by hand, with the same error shape), so it stays cheap per request.
  app.openAPIRegistry.registerPath(createRoute({
    method: 'get', path: '/runtime/mini-programs/{miniProgramId}/resolve', tags: ['runtime'],
    summary: 'Host apps: which version of this mini program a user gets (stable bucket per user, testers while a whitelist stage runs)',
    description: 'Public (no session). Users are hashed into 10,000 buckets per mini program, so a user in a rollout at 5% stays in it at 20%. Answers may be up to about a second old. 410 mini_program_offline; 404 not_found (unknown or removed) or no_live_version.',
    request: {
      params: z.object({ miniProgramId: z.string().min(1).max(maxIdLength) }),
      query: z.object({ userId: z.string().min(1).max(maxUserIdLength).describe('the host app\'s stable id of the user (an account id or an email address)') }),
    },
    responses: { 200: json(ResolveSchema, 'The version this user gets'), 400: errorResponses[400], 404: errorResponses[404], 410: json(ErrorSchema, 'The mini program is offline') },
  }));
  const resolveHeaders = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' };

  /** resolve(miniProgramId, userId): also mounted by app.ts ahead of the console's middleware (see runtimeEdge). */
  const resolve = async (c: Context<AppEnv>) => {
      const miniProgramId = c.req.param('miniProgramId') ?? '';
      const userId = c.req.query('userId');
      if (miniProgramId.length > maxIdLength) throw unknown;
      if (!userId || userId.length > maxUserIdLength) {
        const why = userId ? `at most ${maxUserIdLength} characters` : 'required: the host app\'s id of the user';
        throw new AppError(400, 'validation_failed', `userId: ${why}`, { fields: { userId: [why] } });
      }
      const found = planOf(miniProgramId);
      const plan = found instanceof Promise ? await found : found;
      return c.body(answer(plan, miniProgramId, userId), 200, resolveHeaders);
  };
  resolveHandlers.set(deps, resolve);

  return app
    .openapi(
      createRoute({
        method: 'get', path: '/runtime/packages/{sha256}', tags: ['runtime'],
        summary: 'Host apps: download a version\'s package zip by its sha256 (content-addressed, cached forever)',
        middleware: [publicRoute],
        request: { params: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256') }) },
        responses: {
          200: { description: 'The zip', content: { 'application/zip': { schema: z.any() } } },
          304: { description: 'Not modified (If-None-Match matched)' },
          400: errorResponses[400], 404: errorResponses[404],
        },
      }),
      async (c) => {
        const { sha256 } = c.req.valid('param');
        const etag = `"${sha256}"`;
        const { rowCount } = await pool.query({
          name: 'mpdp_runtime_package',
          text: `SELECT 1 FROM versions v JOIN mini_programs m ON m.id = v.mini_program_id WHERE v.package_sha256 = $1 AND m.status <> 'removed' LIMIT 1`,
          values: [sha256],
        });
        if (!rowCount) throw notFound('Package');
        const headers = { ETag: etag, 'Cache-Control': 'public, max-age=31536000, immutable' };
        if ((c.req.header('if-none-match') ?? '').split(',').some((t) => t.trim() === etag || t.trim() === '*')) return c.body(null, 304, headers) as never;
        const file = store.pathOf(sha256);
        const size = await stat(file).then((s) => s.size, () => null);
        if (size === null) throw new AppError(404, 'package_missing', 'The package is not in storage');
        const stream = Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
        return c.body(stream, 200, { ...headers, 'Content-Type': 'application/zip', 'Content-Length': String(size) }) as never;
      },
    )
    .get('/runtime/mini-programs/:miniProgramId/resolve', publicRoute, resolve);
}
