import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { QueryTypes, type Transaction } from 'sequelize';
import { compareSemver } from '../../lib/analytics/crash-groups.js';
import { crashTotalsByVersion, versionCrashRates } from '../../lib/analytics/health.js';
import { rollingOutStatuses } from '../../lib/analytics/wiring.js';
import { evaluateHealth } from '../../lib/health.js';
import { AppError, notFound } from '../../lib/errors.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { MiniProgramParams, WorkspaceParams, errorResponses, json } from '../schemas.js';
import { decodeCursor, encodeCursor } from '../cursor.js';

const dayMs = 86_400_000;
/** Days of the list's trend sparkline (today included), and of the detail's hourly trend. */
export const trendDays = 14;
export const hourlyDays = 7;

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
const who = (id: string | null, name: string | null) => (id ? { id, name: name ?? 'unknown' } : null);
const dayString = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const rate = (crashes: number, launches: number) => (launches > 0 ? crashes / launches : null);

const Person = z.object({ id: z.string(), name: z.string() });
const VersionRef = z.object({ id: z.string(), version: z.string() });
const FrameSchema = z.object({ fn: z.string().nullable(), file: z.string().nullable(), module: z.string(), line: z.number().nullable(), column: z.number().nullable() });
const GroupSchema = z
  .object({
    id: z.string(), miniProgramId: z.string(), miniProgramName: z.string(), kind: z.enum(['error', 'crash']).describe('crash once any of its events was a crash'),
    title: z.string(), message: z.string(), status: z.enum(['open', 'resolved']), events: z.number(), users: z.number().describe('distinct users affected'),
    firstSeen: z.string(), lastSeen: z.string(), versions: z.array(VersionRef).describe('versions that had it, newest first'),
    trend: z.array(z.number()).describe(`events per UTC day over the last ${trendDays} days, oldest first (today last)`),
    resolvedAt: z.string().nullable(), resolvedBy: Person.nullable(),
  })
  .openapi('CrashGroup');
const GroupDetailSchema = GroupSchema.extend({ topFrames: z.array(FrameSchema), fingerprint: z.string(), reopenedAt: z.string().nullable() }).openapi('CrashGroupDetail');
const SampleSchema = z.object({
  eventId: z.string(), at: z.string(), versionId: z.string(), version: z.string().nullable(), hostAppId: z.string().nullable(), userId: z.string(),
  page: z.string().nullable(), message: z.string(), stack: z.string().nullable(),
});
const DetailSchema = z
  .object({
    group: GroupDetailSchema,
    samples: z.array(SampleSchema).describe('the newest events (up to 5; a stack is kept up to 16 KB here, whole in the raw events)'),
    hourly: z.array(z.object({ hour: z.string(), events: z.number() })).describe(`events per hour over the last ${hourlyDays} days, oldest first, zeros included`),
    byVersion: z.array(z.object({ versionId: z.string(), version: z.string().nullable(), events: z.number() })).describe('all events per version, newest version first'),
    changes: z.array(z.object({
      action: z.enum(['created', 'resolved', 'reopened']), actor: Person.nullable().describe('null: the platform (first seen, or reopened by a newer version)'),
      versionId: z.string().nullable(), version: z.string().nullable(), comment: z.string().nullable(), at: z.string(),
    })).describe('newest first'),
  })
  .openapi('CrashGroupDetailPage');
const RawEventSchema = z.object({
  eventId: z.string(), type: z.enum(['error', 'crash']), at: z.string(), receivedAt: z.string(), versionId: z.string(), version: z.string().nullable(),
  hostAppId: z.string().nullable(), userId: z.string(), sessionId: z.string(), page: z.string().nullable(), message: z.string().nullable(), stack: z.string().nullable(),
  properties: z.record(z.string(), z.unknown()).nullable(),
});
const HealthCheckSchema = z.object({
  since: z.string().describe('the start of the rollout\'s current stage: what the health check counts from'),
  launches: z.number(), crashes: z.number(), rate: z.number(), liveLaunches: z.number(), liveCrashes: z.number(), liveRate: z.number(),
  verdict: z.enum(['green', 'red', 'insufficient_data']), reason: z.string(),
  thresholds: z.object({ maxCrashRate: z.number(), maxRatioToLive: z.number(), minLaunches: z.number() }),
});
const CrashRatesSchema = z
  .object({
    range: z.object({ from: z.string(), to: z.string() }),
    live: VersionRef.extend({ versionId: z.string() }).omit({ id: true }).nullable(),
    versions: z.array(z.object({
      versionId: z.string(), version: z.string(), status: z.string().describe('the version\'s status (rolling_out, released, superseded…)'),
      launches: z.number(), crashes: z.number(), crashRate: z.number().nullable().describe('crashes per launch over the range; null without launches'),
      liveCrashRate: z.number().nullable().describe('the live version\'s crash rate over the same range'),
      ratio: z.number().nullable().describe('crashRate / liveCrashRate; null when either is null or the live rate is 0'),
      healthCheck: HealthCheckSchema.nullable().describe('while the version rolls out: the rollout health check\'s own numbers over its current stage (the same function and instant the auto-halt uses)'),
    })).describe('versions with launches or crashes in the range, the live one and any rolling out, newest first'),
  })
  .openapi('CrashRates');

const statusField = z.enum(['open', 'resolved', 'all']).default('open').describe('default open');
const ListQuery = z.object({
  miniProgramId: z.string().min(1).max(100).optional(), versionId: z.string().min(1).max(100).optional(),
  status: statusField, kind: z.enum(['error', 'crash']).optional(), q: z.string().trim().max(200).optional().describe('words in the title or message'),
  sort: z.enum(['last_seen', 'events', 'users']).default('last_seen'),
  limit: z.coerce.number().int().min(1).max(100).default(50), cursor: z.string().max(300).optional(),
});
const GroupParams = WorkspaceParams.extend({ groupId: z.string().min(1).max(100) });
const ChangeBody = z.object({ comment: z.string().trim().max(1000).optional() }).openapi('CrashGroupChange');
const dayField = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a day as YYYY-MM-DD').refine((s) => dayString(Date.parse(`${s}T00:00:00Z`) || 0) === s, 'not a calendar day');
const RatesQuery = z.object({ from: dayField.optional().describe('first UTC day (inclusive); default 29 days before to'), to: dayField.optional().describe('last UTC day (inclusive); default today') });

interface GroupRow {
  id: string; workspace_id: string; mini_program_id: string; mini_program_name: string; fingerprint: string; kind: 'error' | 'crash'; title: string; message: string;
  top_frames: z.infer<typeof FrameSchema>[]; status: 'open' | 'resolved'; resolved_at: Date | null; resolved_by: string | null; resolved_by_name: string | null;
  reopened_at: Date | null; first_seen: Date; last_seen: Date; events: string; users: string; version_ids: string[];
  samples: { eventId: string; at: string; versionId: string; hostAppId: string | null; userId: string; page: string | null; message: string; stack: string | null }[];
  last_seen_text: string;
}
const selectGroup = `
  SELECT g.*, g.last_seen::text AS last_seen_text, m.name AS mini_program_name, u.name AS resolved_by_name
  FROM crash_groups g JOIN mini_programs m ON m.id = g.mini_program_id LEFT JOIN users u ON u.id = g.resolved_by`;

/** Keyset cursor of a list sorted by a count: [sort, count, id] (the time sort uses api/cursor.ts). */
const encodeCountCursor = (sort: string, n: string, id: string) => Buffer.from(JSON.stringify([sort, n, id])).toString('base64url');
function decodeCountCursor(cursor: string, sort: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown;
    if (Array.isArray(v) && v.length === 3 && v[0] === sort && /^\d+$/.test(String(v[1])) && typeof v[2] === 'string') return [String(v[1]), v[2]];
  } catch { /* fall through */ }
  throw new AppError(400, 'invalid_cursor', 'The cursor is not one this API issued for this sort');
}

/**
 * Crash and tracking: errors and crashes grouped by fingerprint (lib/analytics/fingerprint.ts),
 * resolve / reopen with a comment, raw drill-down, and the crash rate per version with the rollout
 * health check's own figures.
 */
export function crashRoutes(deps: ApiDeps) {
  const { sequelize, config } = deps;

  async function versionNames(ids: string[], transaction?: Transaction): Promise<Map<string, string>> {
    if (!ids.length) return new Map();
    const rows = await sequelize.query<{ id: string; version: string }>('SELECT id, version FROM versions WHERE id IN (:ids)', { replacements: { ids: [...new Set(ids)] }, type: QueryTypes.SELECT, transaction });
    return new Map(rows.map((r) => [r.id, r.version]));
  }

  /** The list shape of groups (versions named, trend filled), in the order given. */
  async function groupsOut(rows: GroupRow[]) {
    const names = await versionNames(rows.flatMap((r) => r.version_ids));
    const today = Math.floor(Date.now() / dayMs);
    const trend = new Map<string, number[]>(rows.map((r) => [r.id, new Array<number>(trendDays).fill(0)]));
    if (rows.length) {
      const daily = await sequelize.query<{ group_id: string; day: number; events: string }>(
        `SELECT group_id, floor(extract(epoch FROM hour) / 86400)::int AS day, sum(events) AS events FROM crash_group_hourly
         WHERE group_id IN (:ids) AND hour >= :from GROUP BY 1, 2`,
        { replacements: { ids: rows.map((r) => r.id), from: new Date((today - trendDays + 1) * dayMs).toISOString() }, type: QueryTypes.SELECT },
      );
      for (const d of daily) {
        const i = d.day - (today - trendDays + 1);
        const t = trend.get(d.group_id);
        if (t && i >= 0 && i < trendDays) t[i] = Number(d.events);
      }
    }
    return rows.map((r) => ({
      id: r.id, miniProgramId: r.mini_program_id, miniProgramName: r.mini_program_name, kind: r.kind, title: r.title, message: r.message, status: r.status,
      events: Number(r.events), users: Number(r.users), firstSeen: iso(r.first_seen)!, lastSeen: iso(r.last_seen)!,
      versions: r.version_ids.map((id) => ({ id, version: names.get(id) ?? id })).sort((a, b) => compareSemver(b.version, a.version)),
      trend: trend.get(r.id)!, resolvedAt: iso(r.resolved_at), resolvedBy: who(r.resolved_by, r.resolved_by_name),
    }));
  }

  async function findGroup(workspaceId: string, groupId: string, transaction?: Transaction, lock = false): Promise<GroupRow> {
    const [row] = await sequelize.query<GroupRow>(`${selectGroup} WHERE g.id = :groupId AND g.workspace_id = :workspaceId${lock ? ' FOR UPDATE OF g' : ''}`, {
      replacements: { workspaceId, groupId }, type: QueryTypes.SELECT, transaction,
    });
    if (!row) throw notFound('Crash group');
    return row;
  }

  /** Resolve or reopen: one transaction with the row locked, the change recorded with who and why. */
  async function change(workspaceId: string, groupId: string, to: 'resolved' | 'open', actorId: string | null, comment: string | null) {
    await sequelize.transaction(async (t) => {
      const g = await findGroup(workspaceId, groupId, t, true);
      if (g.status === to) throw new AppError(409, 'wrong_state', `The group is already ${to}`, { status: g.status });
      if (to === 'resolved') {
        // Resolved "as of" the newest version that had it: an event of a newer version reopens it.
        const names = await versionNames(g.version_ids, t);
        const newest = [...g.version_ids].sort((a, b) => compareSemver(names.get(b) ?? '', names.get(a) ?? ''))[0] ?? null;
        await sequelize.query(
          `UPDATE crash_groups SET status = 'resolved', resolved_at = now(), resolved_by = :actorId, resolved_version_id = :newest WHERE id = :groupId`,
          { replacements: { groupId, actorId, newest }, transaction: t },
        );
        await addChange(t, groupId, 'resolved', actorId, newest, comment);
      } else {
        await sequelize.query(
          `UPDATE crash_groups SET status = 'open', reopened_at = now(), resolved_at = NULL, resolved_by = NULL, resolved_version_id = NULL WHERE id = :groupId`,
          { replacements: { groupId }, transaction: t },
        );
        await addChange(t, groupId, 'reopened', actorId, null, comment);
      }
    });
    const [out] = await groupsOut([await findGroup(workspaceId, groupId)]);
    return out!;
  }

  async function addChange(t: Transaction, groupId: string, action: string, actorId: string | null, versionId: string | null, comment: string | null) {
    await sequelize.query(
      `INSERT INTO crash_group_changes (id, group_id, action, actor_id, version_id, comment)
       VALUES ('cgc_' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS') || substr(md5(random()::text), 1, 12), :groupId, :action, :actorId, :versionId, :comment)`,
      { replacements: { groupId, action, actorId, versionId, comment: comment || null }, transaction: t },
    );
  }

  const rangeError = (code: string, message: string, field: string) => new AppError(400, code, message, { fields: { [field]: [message] } });

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/crash-groups', tags: ['crashes'],
        summary: 'Error and crash groups: counts, users, first/last seen, versions and a 14-day trend (filter by mini program, version, status, kind, words)',
        description: 'status defaults to open. sort: last_seen (default), events or users, newest/largest first; page with nextCursor. A miniProgramId or versionId of another workspace answers 404.',
        middleware: [requirePermission('analytics.read')], request: { params: WorkspaceParams, query: ListQuery },
        responses: { 200: json(z.object({ groups: z.array(GroupSchema), nextCursor: z.string().nullable() }).openapi('CrashGroupList'), 'A page of groups'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const q = c.req.valid('query');
        if (q.miniProgramId || q.versionId) {
          const [row] = await sequelize.query<{ mp: boolean; version_mp: string | null }>(
            `SELECT EXISTS (SELECT 1 FROM mini_programs WHERE id = :mp AND workspace_id = :workspaceId) AS mp,
                    (SELECT mini_program_id FROM versions WHERE id = :v AND workspace_id = :workspaceId) AS version_mp`,
            { replacements: { workspaceId, mp: q.miniProgramId ?? '', v: q.versionId ?? '' }, type: QueryTypes.SELECT },
          );
          if (q.miniProgramId && !row?.mp) throw notFound('Mini program');
          if (q.versionId && (!row?.version_mp || (q.miniProgramId && row.version_mp !== q.miniProgramId))) throw notFound('Version');
        }
        const where = ['g.workspace_id = :workspaceId'];
        if (q.miniProgramId) where.push('g.mini_program_id = :miniProgramId');
        if (q.versionId) where.push(':versionId = ANY (g.version_ids)');
        if (q.status !== 'all') where.push('g.status = :status');
        if (q.kind) where.push('g.kind = :kind');
        if (q.q) where.push("(g.title ILIKE :like ESCAPE '\\' OR g.message ILIKE :like ESCAPE '\\')");
        const column = q.sort === 'last_seen' ? 'g.last_seen' : `g.${q.sort}`;
        let cursorValue: string | null = null;
        let cursorId: string | null = null;
        if (q.cursor) [cursorValue, cursorId] = q.sort === 'last_seen' ? decodeCursor(q.cursor) : decodeCountCursor(q.cursor, q.sort);
        if (q.cursor) where.push(`(${column}, g.id) < (:cursorValue::${q.sort === 'last_seen' ? 'timestamptz' : 'bigint'}, :cursorId)`);
        const rows = await sequelize.query<GroupRow>(`${selectGroup} WHERE ${where.join(' AND ')} ORDER BY ${column} DESC, g.id DESC LIMIT :limit`, {
          replacements: {
            workspaceId, miniProgramId: q.miniProgramId ?? null, versionId: q.versionId ?? null, status: q.status, kind: q.kind ?? null,
            like: q.q ? `%${q.q.replace(/[\\%_]/g, (m) => `\\${m}`)}%` : null, cursorValue, cursorId, limit: q.limit + 1,
          },
          type: QueryTypes.SELECT,
        });
        const page = rows.slice(0, q.limit);
        const last = page[page.length - 1];
        const nextCursor = rows.length > q.limit && last
          ? (q.sort === 'last_seen' ? encodeCursor(last.last_seen_text, last.id) : encodeCountCursor(q.sort, String(q.sort === 'events' ? last.events : last.users), last.id))
          : null;
        c.header('Cache-Control', 'no-store');
        return c.json({ groups: await groupsOut(page), nextCursor }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/crash-groups/{groupId}', tags: ['crashes'],
        summary: 'One crash group: top frames, sample stacks, hourly trend, events per version and its history',
        middleware: [requirePermission('analytics.read')], request: { params: GroupParams },
        responses: { 200: json(DetailSchema, 'The group'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, groupId } = c.req.valid('param');
        const g = await findGroup(workspaceId, groupId);
        const hourFrom = Math.floor(Date.now() / 3_600_000) - hourlyDays * 24 + 1;
        const [[out], hourly, byVersion, changes] = await Promise.all([
          groupsOut([g]),
          sequelize.query<{ h: number; events: string }>(
            `SELECT floor(extract(epoch FROM hour) / 3600)::int AS h, sum(events) AS events FROM crash_group_hourly WHERE group_id = :groupId AND hour >= :from GROUP BY 1`,
            { replacements: { groupId, from: new Date(hourFrom * 3_600_000).toISOString() }, type: QueryTypes.SELECT },
          ),
          sequelize.query<{ version_id: string; version: string | null; events: string }>(
            `SELECT h.version_id, v.version, sum(h.events) AS events FROM crash_group_hourly h LEFT JOIN versions v ON v.id = h.version_id
             WHERE h.group_id = :groupId GROUP BY h.version_id, v.version`,
            { replacements: { groupId }, type: QueryTypes.SELECT },
          ),
          sequelize.query<{ action: 'created' | 'resolved' | 'reopened'; actor_id: string | null; actor_name: string | null; version_id: string | null; version: string | null; comment: string | null; at: Date }>(
            `SELECT ch.action, ch.actor_id, u.name AS actor_name, ch.version_id, v.version, ch.comment, ch.at FROM crash_group_changes ch
             LEFT JOIN users u ON u.id = ch.actor_id LEFT JOIN versions v ON v.id = ch.version_id
             WHERE ch.group_id = :groupId ORDER BY ch.at DESC, ch.id DESC LIMIT 200`,
            { replacements: { groupId }, type: QueryTypes.SELECT },
          ),
        ]);
        const perHour = new Map(hourly.map((h) => [h.h, Number(h.events)]));
        const names = await versionNames(g.samples.map((s) => s.versionId));
        c.header('Cache-Control', 'no-store');
        return c.json({
          group: { ...out!, topFrames: g.top_frames, fingerprint: g.fingerprint, reopenedAt: iso(g.reopened_at) },
          samples: g.samples.map((s) => ({ ...s, version: names.get(s.versionId) ?? null })),
          hourly: Array.from({ length: hourlyDays * 24 }, (_, i) => ({ hour: new Date((hourFrom + i) * 3_600_000).toISOString(), events: perHour.get(hourFrom + i) ?? 0 })),
          byVersion: byVersion.map((v) => ({ versionId: v.version_id, version: v.version, events: Number(v.events) })).sort((a, b) => compareSemver(b.version ?? '', a.version ?? '')),
          changes: changes.map((ch) => ({ action: ch.action, actor: who(ch.actor_id, ch.actor_name), versionId: ch.version_id, version: ch.version, comment: ch.comment, at: iso(ch.at)! })),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/crash-groups/{groupId}/events', tags: ['crashes'],
        summary: 'The group\'s raw events, newest first (drill-down; within the retention period)',
        middleware: [requirePermission('analytics.read')],
        request: { params: GroupParams, query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: z.string().max(300).optional() }) },
        responses: { 200: json(z.object({ events: z.array(RawEventSchema), nextCursor: z.string().nullable() }).openapi('CrashGroupEvents'), 'A page of events'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, groupId } = c.req.valid('param');
        const { limit, cursor } = c.req.valid('query');
        const g = await findGroup(workspaceId, groupId);
        const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
        if (cId !== null && !/^[0-9a-f-]{36}$/i.test(cId)) throw new AppError(400, 'invalid_cursor', 'The cursor is not one this API issued');
        const rows = await sequelize.query<{
          id: string; type: 'error' | 'crash'; at: Date; at_text: string; received_at: Date; version_id: string; version: string | null; host_app_id: string | null; user_id: string;
          session_id: string; page: string | null; message: string | null; stack: string | null; props: Record<string, unknown> | null;
        }>(
          `SELECT e.id::text AS id, e.type, e.at, e.at::text AS at_text, e.received_at, e.version_id, v.version, e.host_app_id, e.user_id, e.session_id, e.page, e.message, e.stack, e.props
           FROM analytics_events e LEFT JOIN versions v ON v.id = e.version_id
           WHERE e.fingerprint = :fingerprint AND e.mini_program_id = :miniProgramId AND e.type IN ('error', 'crash')
             ${cursor ? 'AND (e.at, e.id) < (:cAt::timestamptz, :cId::uuid)' : ''}
           ORDER BY e.at DESC, e.id DESC LIMIT :limit`,
          { replacements: { fingerprint: g.fingerprint, miniProgramId: g.mini_program_id, cAt, cId, limit: limit + 1 }, type: QueryTypes.SELECT },
        );
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        c.header('Cache-Control', 'no-store');
        return c.json({
          events: page.map((e) => ({
            eventId: e.id, type: e.type, at: iso(e.at)!, receivedAt: iso(e.received_at)!, versionId: e.version_id, version: e.version, hostAppId: e.host_app_id, userId: e.user_id,
            sessionId: e.session_id, page: e.page, message: e.message, stack: e.stack, properties: e.props,
          })),
          nextCursor: rows.length > limit && last ? encodeCursor(last.at_text, last.id) : null,
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/crash-groups/{groupId}/resolve', tags: ['crashes'],
        summary: 'Mark a group resolved (with a comment): it reopens by itself when it comes back in a newer version than the newest it was seen in',
        middleware: [requirePermission('crash.manage')],
        request: { params: GroupParams, body: { content: { 'application/json': { schema: ChangeBody } }, required: false } },
        responses: { 200: json(GroupSchema, 'The group, resolved'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, groupId } = c.req.valid('param');
        const body = c.req.valid('json') ?? {};
        return c.json(await change(workspaceId, groupId, 'resolved', c.get('user')?.id ?? null, body.comment ?? null), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/crash-groups/{groupId}/reopen', tags: ['crashes'],
        summary: 'Reopen a resolved group (with a comment)',
        middleware: [requirePermission('crash.manage')],
        request: { params: GroupParams, body: { content: { 'application/json': { schema: ChangeBody } }, required: false } },
        responses: { 200: json(GroupSchema, 'The group, open'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, groupId } = c.req.valid('param');
        const body = c.req.valid('json') ?? {};
        return c.json(await change(workspaceId, groupId, 'open', c.get('user')?.id ?? null, body.comment ?? null), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/crash-rates', tags: ['crashes'],
        summary: 'Crash rate (crashes per launch) per version over a range of UTC days, against the live version; for a version rolling out, the health check\'s own figures',
        description: 'Launches and crashes come from the same per-minute rollup the rollout health check reads. Range: from/to inclusive (default the last 30 days, at most 366): 400 invalid_range / range_too_long.',
        middleware: [requirePermission('analytics.read')], request: { params: MiniProgramParams, query: RatesQuery },
        responses: { 200: json(CrashRatesSchema, 'Crash rates'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        const q = c.req.valid('query');
        const today = dayString(Date.now());
        const to = q.to ?? today;
        const from = q.from ?? dayString(Date.parse(`${to}T00:00:00Z`) - 29 * dayMs);
        const fromMs = Date.parse(`${from}T00:00:00Z`);
        const toMs = Date.parse(`${to}T00:00:00Z`) + dayMs;
        if (toMs <= fromMs) throw rangeError('invalid_range', `to (${to}) is before from (${from})`, 'to');
        if ((toMs - fromMs) / dayMs > 366) throw rangeError('range_too_long', `The range is ${(toMs - fromMs) / dayMs} days; at most 366`, 'from');
        const [mp] = await sequelize.query<{ live_version_id: string | null }>('SELECT live_version_id FROM mini_programs WHERE id = :miniProgramId AND workspace_id = :workspaceId', {
          replacements: { workspaceId, miniProgramId }, type: QueryTypes.SELECT,
        });
        if (!mp) throw notFound('Mini program');
        const [totals, rolling] = await Promise.all([
          crashTotalsByVersion(sequelize, { miniProgramId, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() }),
          sequelize.query<{ version_id: string; baseline_version_id: string | null; rollout: { stageStartedAt?: string | null } | null }>(
            `SELECT DISTINCT ON (version_id) version_id, baseline_version_id, rollout FROM pipelines
             WHERE mini_program_id = :miniProgramId AND kind = 'release' AND status IN (:statuses) ORDER BY version_id, submitted_at DESC`,
            { replacements: { miniProgramId, statuses: [...rollingOutStatuses] }, type: QueryTypes.SELECT },
          ),
        ]);
        const ids = new Set([...totals.map((t) => t.versionId), ...rolling.map((r) => r.version_id), ...(mp.live_version_id ? [mp.live_version_id] : [])]);
        const versions = ids.size
          ? await sequelize.query<{ id: string; version: string; status: string }>('SELECT id, version, status FROM versions WHERE id IN (:ids) AND mini_program_id = :miniProgramId', {
            replacements: { ids: [...ids], miniProgramId }, type: QueryTypes.SELECT,
          })
          : [];
        const byId = new Map(totals.map((t) => [t.versionId, t]));
        const live = mp.live_version_id ? byId.get(mp.live_version_id) : undefined;
        const liveRate = live ? rate(live.crashes, live.launches) : null;
        const liveRef = mp.live_version_id ? versions.find((v) => v.id === mp.live_version_id) : undefined;
        const health = config.release.health;
        const out = await Promise.all(versions.map(async (v) => {
          const t = byId.get(v.id) ?? { launches: 0, crashes: 0 };
          const crashRate = rate(t.crashes, t.launches);
          const p = rolling.find((r) => r.version_id === v.id);
          let healthCheck: z.infer<typeof HealthCheckSchema> | null = null;
          const since = p?.rollout?.stageStartedAt;
          if (p && since) {
            // The very reading and judgement the rollout's activity makes (activities/runtime.ts).
            const counts = await versionCrashRates(sequelize, { miniProgramId, versionId: v.id, baselineVersionId: p.baseline_version_id, since });
            const e = evaluateHealth(counts, health);
            healthCheck = {
              since, launches: e.launches, crashes: e.crashes, rate: e.crashRate, liveLaunches: e.liveLaunches, liveCrashes: e.liveCrashes, liveRate: e.liveCrashRate,
              verdict: e.verdict, reason: e.reason, thresholds: { ...health },
            };
          }
          return {
            versionId: v.id, version: v.version, status: v.status, launches: t.launches, crashes: t.crashes, crashRate, liveCrashRate: liveRate,
            ratio: crashRate !== null && liveRate ? crashRate / liveRate : null, healthCheck,
          };
        }));
        out.sort((a, b) => compareSemver(b.version, a.version));
        c.header('Cache-Control', 'no-store');
        return c.json({ range: { from, to }, live: liveRef ? { versionId: liveRef.id, version: liveRef.version } : null, versions: out }, 200);
      },
    );
}
