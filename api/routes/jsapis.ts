import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { QueryTypes, type Sequelize } from 'sequelize';
import { appendAudit } from '../../activities/audit.js';
import { AppError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import {
  checkJsonSchema, hostVersionPattern, jsapiCategories, jsapiNamePattern, jsapiStatuses, permissionLevels,
  type JsapiCategory, type JsapiStatus, type PermissionLevel,
} from '../../lib/jsapi-catalog.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { requirePermission } from '../middleware.js';
import { WorkspaceParams, errorResponses, json } from '../schemas.js';

const iso = (d: Date | string) => new Date(d).toISOString();

// ---- schemas ----
const SchemaObject = z.record(z.string(), z.unknown()).describe('a JSON Schema object: { type: "object", properties: { … }, required: [ … ] }');
const Person = z.object({ id: z.string(), name: z.string() });

const JsapiSummarySchema = z
  .object({
    name: z.string().describe('as code calls it: my.<name>(…) / wx.<name>(…)'), category: z.enum(jsapiCategories), description: z.string(),
    permissionLevel: z.enum(permissionLevels), minHostVersion: z.string(), status: z.enum(jsapiStatuses), revision: z.number().int(), updatedAt: z.string(),
  })
  .openapi('JsapiSummary');
const JsapiSchema = JsapiSummarySchema.extend({
  params: SchemaObject, result: SchemaObject, builtin: z.boolean().describe('from the platform catalog'), updatedBy: Person.nullable(),
}).openapi('Jsapi');
const GrantingFeatureSchema = z
  .object({ id: z.string(), key: z.string(), name: z.string(), accessMode: z.string(), status: z.string() })
  .openapi('JsapiGrantingFeature');
const EditSchema = z
  .object({
    id: z.string(), revision: z.number().int().describe('the revision this edit produced'), editedBy: Person.nullable(), editedAt: z.string(),
    changes: z.record(z.string(), z.object({ from: z.unknown(), to: z.unknown() })).describe('field → { from, to }'), note: z.string().nullable(),
  })
  .openapi('JsapiEdit');

const counts = <T extends readonly string[]>(keys: T) => z.object(Object.fromEntries(keys.map((k) => [k, z.number().int()])) as { [K in T[number]]: z.ZodNumber });
const ListAnswer = z
  .object({
    items: z.array(JsapiSummarySchema), nextCursor: z.string().nullable(), total: z.number().int().describe('entries matching every filter'),
    counts: z.object({
      category: counts(jsapiCategories).describe('per category, with every filter but the category'),
      permissionLevel: counts(permissionLevels).describe('per permission level, with every filter but the permission level'),
    }),
  })
  .openapi('JsapiPage');

const ListQuery = z.object({
  q: z.string().trim().max(100).optional().describe('words in the name or description'),
  category: z.enum(jsapiCategories).optional(), permissionLevel: z.enum(permissionLevels).optional(), status: z.enum(jsapiStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50), cursor: z.string().max(300).optional(),
});
const JsapiParams = WorkspaceParams.extend({ name: z.string().min(1).max(80).regex(jsapiNamePattern, 'a JSAPI name: letters, digits and _') });
const HistoryQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(30), cursor: z.string().max(200).optional() });
const PatchBody = z
  .object({
    expectedRevision: z.number().int().min(1).describe('the revision the edit is based on; a stale one answers 409 edit_conflict'),
    description: z.string().trim().min(1, 'describe what the API does').max(2000).optional(),
    permissionLevel: z.enum(permissionLevels).optional(),
    status: z.enum(jsapiStatuses).optional(),
    minHostVersion: z.string().trim().regex(hostVersionPattern, 'a version like 10.2 or 10.2.30').optional(),
    params: SchemaObject.optional(),
    result: SchemaObject.optional(),
    note: z.string().trim().max(500).optional().describe('why, kept with the edit'),
  })
  .strict()
  .refine((b) => ['description', 'permissionLevel', 'status', 'minHostVersion', 'params', 'result'].some((k) => b[k as keyof typeof b] !== undefined), {
    message: 'change at least one of description, permissionLevel, status, minHostVersion, params, result', path: ['description'],
  })
  .openapi('EditJsapi');

// ---- SQL (exported: the bench serves the same statements from a bare server) ----
export interface JsapiListFilters { q?: string; category?: JsapiCategory; permissionLevel?: PermissionLevel; status?: JsapiStatus }
interface ListRow {
  name: string; category: JsapiCategory; description: string; permission_level: PermissionLevel; min_host_version: string; status: JsapiStatus;
  revision: number; updated_at: Date; rank: number;
}
interface CountRow { category: JsapiCategory; permission_level: PermissionLevel; n: number }

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (m) => `\\${m}`);
/** Search ranks: exact name 0, name prefix 1, name contains 2, description only 3. */
const rankSql = `CASE WHEN lower(j.name) = :qLower THEN 0 WHEN lower(j.name) LIKE :qPrefix THEN 1 WHEN j.name ILIKE :qPattern THEN 2 ELSE 3 END`;

/** The list's statements and their replacements, for one request. */
export function jsapiListQuery(workspaceId: string, f: JsapiListFilters, page: { limit: number; cursor?: [number, string] | null }) {
  const q = f.q?.trim() || '';
  const replacements: Record<string, unknown> = {
    workspaceId, category: f.category ?? null, permissionLevel: f.permissionLevel ?? null, status: f.status ?? null, limit: page.limit + 1,
    qLower: q.toLowerCase(), qPrefix: `${likeEscape(q.toLowerCase())}%`, qPattern: `%${likeEscape(q)}%`,
    cRank: page.cursor?.[0] ?? null, cName: page.cursor?.[1] ?? null,
  };
  const rank = q ? rankSql : '0';
  // The search predicate is the trigram index's expression (migration 0011). One scan (m) feeds
  // both the page and the grouped counts the chips' numbers are sums of; the page is aggregated
  // in order (json_agg … ORDER BY sorts just the page).
  const search = q ? `AND (j.name || ' ' || j.description) ILIKE :qPattern` : '';
  const sql = `WITH m AS (
      SELECT j.name, j.category, j.description, j.permission_level, j.min_host_version, j.status, j.revision, j.updated_at, ${rank} AS rank
      FROM jsapis j
      WHERE j.workspace_id = :workspaceId ${search} ${f.status ? 'AND j.status = :status' : ''}
    ), page AS (
      SELECT * FROM m
      WHERE true ${f.category ? 'AND m.category = :category' : ''} ${f.permissionLevel ? 'AND m.permission_level = :permissionLevel' : ''}
        ${page.cursor ? 'AND (m.rank, m.name) > (:cRank, :cName)' : ''}
      ORDER BY m.rank, m.name LIMIT :limit
    )
    SELECT (SELECT coalesce(json_agg(p ORDER BY p.rank, p.name), '[]'::json) FROM page p) AS items,
           (SELECT coalesce(json_agg(c), '[]'::json) FROM (SELECT m.category, m.permission_level, count(*)::int AS n FROM m GROUP BY 1, 2) c) AS counts`;
  return { sql, replacements };
}

export const jsapiSummaryOut = (r: ListRow) => ({
  name: r.name, category: r.category, description: r.description, permissionLevel: r.permission_level, minHostVersion: r.min_host_version,
  status: r.status, revision: r.revision, updatedAt: iso(r.updated_at),
});

const encodeListCursor = (rank: number, name: string) => Buffer.from(JSON.stringify([rank, name])).toString('base64url');
function decodeListCursor(cursor: string): [number, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown;
    if (Array.isArray(v) && v.length === 2 && Number.isInteger(v[0]) && typeof v[1] === 'string') return [v[0] as number, v[1]];
  } catch { /* fall through */ }
  throw new AppError(400, 'invalid_cursor', 'The cursor is not one this API issued');
}

/** Runs the list statements and shapes the answer (the route and the bench's bare server both use it). */
export async function listJsapis(sequelize: Sequelize, workspaceId: string, f: JsapiListFilters, page: { limit: number; cursor?: string | null }) {
  const { sql, replacements } = jsapiListQuery(workspaceId, f, { limit: page.limit, cursor: page.cursor ? decodeListCursor(page.cursor) : null });
  const [answer] = await sequelize.query<{ items: ListRow[]; counts: CountRow[] }>(sql, { replacements, type: QueryTypes.SELECT });
  const rows = answer?.items ?? [];
  const countRows = answer?.counts ?? [];
  const items = rows.slice(0, page.limit);
  const last = items[items.length - 1];
  const category = Object.fromEntries(jsapiCategories.map((c) => [c, 0])) as Record<JsapiCategory, number>;
  const permissionLevel = Object.fromEntries(permissionLevels.map((l) => [l, 0])) as Record<PermissionLevel, number>;
  let total = 0;
  for (const r of countRows) {
    if (!f.permissionLevel || r.permission_level === f.permissionLevel) category[r.category] += r.n;
    if (!f.category || r.category === f.category) permissionLevel[r.permission_level] += r.n;
    if ((!f.permissionLevel || r.permission_level === f.permissionLevel) && (!f.category || r.category === f.category)) total += r.n;
  }
  return {
    items: items.map(jsapiSummaryOut), nextCursor: rows.length > page.limit && last ? encodeListCursor(Number(last.rank), last.name) : null,
    total, counts: { category, permissionLevel },
  };
}

interface DetailRow extends Omit<ListRow, 'rank'> { params: Record<string, unknown>; result: Record<string, unknown>; builtin: boolean; updated_by: string | null; updated_by_name: string | null }
interface EditRow { id: string; revision: number; edited_by: string | null; edited_by_name: string | null; edited_at: Date; changes: Record<string, { from: unknown; to: unknown }>; note: string | null; cursor_at: string }

const detailOut = (r: DetailRow) => ({
  ...jsapiSummaryOut({ ...r, rank: 0 }), params: r.params, result: r.result, builtin: r.builtin,
  updatedBy: r.updated_by ? { id: r.updated_by, name: r.updated_by_name ?? 'unknown' } : null,
});
const editOut = (e: EditRow) => ({
  id: e.id, revision: e.revision, editedBy: e.edited_by ? { id: e.edited_by, name: e.edited_by_name ?? 'unknown' } : null, editedAt: iso(e.edited_at), changes: e.changes, note: e.note,
});

/** JSON with sorted keys: jsonb does not keep key order, so compare schemas in this form. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

const fieldColumns = {
  description: 'description', permissionLevel: 'permission_level', status: 'status', minHostVersion: 'min_host_version', params: 'params', result: 'result',
} as const;
type Field = keyof typeof fieldColumns;
const fieldWords: Record<Field, string> = {
  description: 'description', permissionLevel: 'permission level', status: 'status', minHostVersion: 'minimum host version', params: 'parameters', result: 'result',
};

/** The workspace's JSAPI catalog: browse, search, read an API in detail, and (Admins) edit it with a recorded history. */
export function jsapisRoutes(deps: ApiDeps) {
  const { sequelize } = deps;
  const selectDetail = `SELECT j.*, u.name AS updated_by_name FROM jsapis j LEFT JOIN users u ON u.id = j.updated_by`;

  async function find(workspaceId: string, name: string): Promise<DetailRow> {
    const [row] = await sequelize.query<DetailRow>(`${selectDetail} WHERE j.workspace_id = :workspaceId AND j.name = :name`, {
      replacements: { workspaceId, name }, type: QueryTypes.SELECT,
    });
    if (!row) throw new AppError(404, 'not_found', `No JSAPI named "${name}" in this workspace`);
    return row;
  }

  // The features table belongs to migration 0012 (features); until it exists, nothing grants anything.
  let featuresReady = false;
  async function hasFeatures(): Promise<boolean> {
    if (featuresReady) return true;
    const [r] = await sequelize.query<{ t: string | null }>(`SELECT to_regclass('public.features')::text AS t`, { type: QueryTypes.SELECT });
    featuresReady = !!r?.t;
    return featuresReady;
  }
  async function grantingFeatures(workspaceId: string, name: string, onlyDirect = false) {
    if (!(await hasFeatures())) return [];
    const rows = await sequelize.query<{ id: string; key: string; name: string; access_mode: string; status: string }>(
      `SELECT f.id, f.key, f.name, f.access_mode, f.status FROM features f
       WHERE f.workspace_id = :workspaceId AND :name = ANY(f.jsapis) ${onlyDirect ? `AND f.access_mode = 'direct' AND f.status = 'active'` : ''}
       ORDER BY f.status = 'active' DESC, f.name`,
      { replacements: { workspaceId, name }, type: QueryTypes.SELECT },
    );
    return rows.map((f) => ({ id: f.id, key: f.key, name: f.name, accessMode: f.access_mode, status: f.status }));
  }

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/jsapis', tags: ['jsapis'],
        summary: 'Browse the JSAPI catalog: search name and description, filter by category, permission level and status; counts for the filter chips',
        middleware: [requirePermission('jsapi.read')], request: { params: WorkspaceParams, query: ListQuery },
        responses: { 200: json(ListAnswer, 'A page, best matches first when searching, else by name'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { q, category, permissionLevel, status, limit, cursor } = c.req.valid('query');
        return c.json(await listJsapis(sequelize, workspaceId, { q, category, permissionLevel, status }, { limit, cursor }), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/jsapis/{name}', tags: ['jsapis'],
        summary: 'One JSAPI: description, parameters and result (JSON Schema), and the workspace\'s features that grant it',
        middleware: [requirePermission('jsapi.read')], request: { params: JsapiParams },
        responses: { 200: json(z.object({ jsapi: JsapiSchema, grantedBy: z.array(GrantingFeatureSchema) }).openapi('JsapiDetail'), 'The API'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, name } = c.req.valid('param');
        const row = await find(workspaceId, name);
        return c.json({ jsapi: detailOut(row), grantedBy: await grantingFeatures(workspaceId, row.name) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'patch', path: '/workspaces/{workspaceId}/jsapis/{name}', tags: ['jsapis'],
        summary: 'Edit an API (Admins): description, permission level, status, minimum host version, parameters, result. Needs the current revision; every edit is recorded',
        middleware: [requirePermission('jsapi.manage')],
        request: { params: JsapiParams, body: { content: { 'application/json': { schema: PatchBody } }, required: true } },
        responses: { 200: json(z.object({ jsapi: JsapiSchema, edit: EditSchema.nullable().describe('null when nothing changed') }).openapi('JsapiEdited'), 'Saved'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, name } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        for (const field of ['params', 'result'] as const) {
          if (body[field] === undefined) continue;
          const err = checkJsonSchema(body[field]);
          if (err) throw new AppError(400, 'invalid_json_schema', `${field}${err.path ? `.${err.path}` : ''}: ${err.message}`, { field, path: err.path });
        }
        const restrictedConflict = body.permissionLevel === 'restricted' ? await grantingFeatures(workspaceId, name, true) : [];

        const outcome = await sequelize.transaction(async (transaction) => {
          const [before] = await sequelize.query<DetailRow>('SELECT * FROM jsapis WHERE workspace_id = :workspaceId AND name = :name FOR UPDATE', {
            replacements: { workspaceId, name }, type: QueryTypes.SELECT, transaction,
          });
          if (!before) throw new AppError(404, 'not_found', `No JSAPI named "${name}" in this workspace`);
          if (before.revision !== body.expectedRevision) {
            throw new AppError(409, 'edit_conflict', `Someone saved ${name} since you opened it (revision ${before.revision}, yours ${body.expectedRevision}): reload and apply your change again`, {
              currentRevision: before.revision, updatedAt: iso(before.updated_at), updatedBy: before.updated_by,
            });
          }
          const current: Record<Field, unknown> = {
            description: before.description, permissionLevel: before.permission_level, status: before.status, minHostVersion: before.min_host_version, params: before.params, result: before.result,
          };
          const changes: Partial<Record<Field, { from: unknown; to: unknown }>> = {};
          for (const f of Object.keys(fieldColumns) as Field[]) {
            const next = body[f];
            if (next !== undefined && canonical(next) !== canonical(current[f])) changes[f] = { from: current[f], to: next };
          }
          const fields = Object.keys(changes) as Field[];
          if (!fields.length) return { edit: null };
          if (changes.permissionLevel && restrictedConflict.length) {
            throw new AppError(409, 'jsapi_granted_directly', `A restricted API may only be granted by features that need activation; ${restrictedConflict.map((f) => f.name).join(', ')} grant${restrictedConflict.length === 1 ? 's' : ''} ${name} directly. Change their access mode or remove ${name} from them first`, {
              features: restrictedConflict,
            });
          }
          const sets = fields.map((f) => `${fieldColumns[f]} = :${f}${f === 'params' || f === 'result' ? '::json' : ''}`);
          const values = Object.fromEntries(fields.map((f) => [f, f === 'params' || f === 'result' ? JSON.stringify(changes[f]!.to) : changes[f]!.to]));
          const [after] = await sequelize.query<{ revision: number }>(
            `UPDATE jsapis SET ${sets.join(', ')}, revision = revision + 1, updated_at = now(), updated_by = :userId
             WHERE workspace_id = :workspaceId AND name = :name RETURNING revision`,
            { replacements: { ...values, workspaceId, name, userId: user.id }, type: QueryTypes.SELECT, transaction },
          );
          const editId = newId('jse');
          await sequelize.query(
            `INSERT INTO jsapi_edits (id, workspace_id, name, revision, edited_by, changes, note) VALUES (:editId, :workspaceId, :name, :revision, :userId, :changes::jsonb, :note)`,
            { replacements: { editId, workspaceId, name, revision: after!.revision, userId: user.id, changes: JSON.stringify(changes), note: body.note || null }, transaction },
          );
          const words = fields.map((f) => (f === 'permissionLevel' || f === 'status' || f === 'minHostVersion' ? `${fieldWords[f]} ${String(changes[f]!.from)} → ${String(changes[f]!.to)}` : fieldWords[f]));
          await appendAudit(sequelize, {
            dedupeKey: `jsapi:edit:${editId}`, workspaceId, subjectType: 'jsapi', subjectId: name, actorId: user.id, action: 'jsapi_edited',
            fromState: changes.status ? String(changes.status.from) : null, toState: changes.status ? String(changes.status.to) : null,
            comment: `${name} (revision ${after!.revision}): ${words.join('; ')}${body.note ? ` · ${body.note}` : ''}`, at: new Date().toISOString(),
          }, transaction);
          return { edit: editId };
        });
        const jsapi = detailOut(await find(workspaceId, name));
        let edit = null;
        if (outcome.edit) {
          const [e] = await sequelize.query<EditRow>(
            `SELECT e.*, u.name AS edited_by_name, e.edited_at::text AS cursor_at FROM jsapi_edits e LEFT JOIN users u ON u.id = e.edited_by WHERE e.id = :id`,
            { replacements: { id: outcome.edit }, type: QueryTypes.SELECT },
          );
          edit = e ? editOut(e) : null;
        }
        return c.json({ jsapi, edit }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/jsapis/{name}/history', tags: ['jsapis'], summary: 'Every edit of an API, newest first: who, when, what changed (cursor paging)',
        middleware: [requirePermission('jsapi.read')], request: { params: JsapiParams, query: HistoryQuery },
        responses: { 200: json(z.object({ items: z.array(EditSchema), nextCursor: z.string().nullable() }).openapi('JsapiHistory'), 'A page'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, name } = c.req.valid('param');
        const { limit, cursor } = c.req.valid('query');
        await find(workspaceId, name);
        const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
        const rows = await sequelize.query<EditRow>(
          `SELECT e.*, u.name AS edited_by_name, e.edited_at::text AS cursor_at FROM jsapi_edits e LEFT JOIN users u ON u.id = e.edited_by
           WHERE e.workspace_id = :workspaceId AND e.name = :name ${cursor ? 'AND (e.edited_at, e.id) < (:cAt::timestamptz, :cId)' : ''}
           ORDER BY e.edited_at DESC, e.id DESC LIMIT :limit`,
          { replacements: { workspaceId, name, cAt, cId, limit: limit + 1 }, type: QueryTypes.SELECT },
        );
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        return c.json({ items: page.map(editOut), nextCursor: rows.length > limit && last ? encodeCursor(last.cursor_at, last.id) : null }, 200);
      },
    );
}
