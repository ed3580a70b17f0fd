import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { QueryTypes } from 'sequelize';
import { createHash } from 'node:crypto';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { permissionsOf, principalsOf } from '../../lib/permissions.js';
import { miniProgramRoleList } from './members.js';
import { miniProgramStatuses, miniProgramStatusQuery, miniProgramWorkflowId, syncUpdate, type MiniProgramInput } from '../../workflows/contracts/mini-program.js';
import { MiniProgramIdKey, WorkspaceIdKey } from '../../workflows/contracts/search-attributes.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { findMiniProgram, listVersions, miniProgramColumns, miniProgramOut, type MiniProgramRowOut } from '../queries.js';
import { MiniProgramDetailSchema, MiniProgramParams, MiniProgramSchema, WorkspaceParams, errorResponses, json } from '../schemas.js';
import { decodeCursor, encodeCursor } from '../cursor.js';

export const categories = ['shopping', 'food', 'travel', 'finance', 'lifestyle', 'education', 'entertainment', 'health', 'tools', 'other'] as const;

const CreateBody = z
  .object({
    name: z.string().trim().min(2).max(60),
    description: z.string().trim().max(500).default(''),
    category: z.enum(categories).default('other'),
    icon: z.string().trim().max(8).nullable().optional().describe('an emoji or up to two letters shown as the icon'),
  })
  .openapi('CreateMiniProgram');

const ListQuery = z.object({
  q: z.string().max(100).optional(),
  status: z.enum(miniProgramStatuses).optional().describe('removed mini programs are listed only when asked for by this filter'),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
});


/** The list query, shared with the bench's bare-route baseline so both serve the same SQL. */
export const listMiniProgramsSql = (o: { q: boolean; status: boolean; cursor: boolean }) =>
  `SELECT ${miniProgramColumns} FROM mini_programs WHERE workspace_id = :workspaceId
   ${o.q ? `AND (name ILIKE :q OR description ILIKE :q)` : ''} ${o.status ? 'AND status = :status' : "AND status <> 'removed'"}
   ${o.cursor ? 'AND (created_at, id) < (:cAt::timestamptz, :cId)' : ''}
   ORDER BY created_at DESC, id DESC LIMIT :limit`;

export function miniProgramRoutes({ sequelize, temporal, config }: ApiDeps) {
  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs', tags: ['mini programs'], summary: 'List mini programs (search, filter, cursor paging)',
        middleware: [requirePermission('miniProgram.read')], request: { params: WorkspaceParams, query: ListQuery },
        responses: { 200: json(z.object({ items: z.array(MiniProgramSchema), nextCursor: z.string().nullable() }), 'A page'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { q, status, limit, cursor } = c.req.valid('query');
        const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
        const rows = await sequelize.query<MiniProgramRowOut>(listMiniProgramsSql({ q: !!q, status: !!status, cursor: !!cursor }), {
          replacements: { workspaceId, q: q ? `%${q.replace(/[\\%_]/g, (m) => `\\${m}`)}%` : null, status: status ?? null, cAt, cId, limit: limit + 1 },
          type: QueryTypes.SELECT,
        });
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        return c.json({ items: page.map(miniProgramOut), nextCursor: rows.length > limit && last ? encodeCursor(new Date(last.created_at), last.id) : null }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs', tags: ['mini programs'], summary: 'Create a mini program',
        middleware: [requirePermission('miniProgram.create')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: CreateBody } }, required: true } },
        responses: { 201: json(MiniProgramSchema, 'Created'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        const key = c.req.header('idempotency-key');
        // A retried create with the same Idempotency-Key lands on the same id, hence the same workflow.
        const id = key ? `mp_${createHash('sha256').update(`${workspaceId}:${user.id}:${key}`).digest('hex').slice(0, 24)}` : newId('mp');
        const [taken] = await sequelize.query<{ id: string }>('SELECT id FROM mini_programs WHERE workspace_id = :workspaceId AND lower(name) = lower(:name) AND id <> :id', {
          replacements: { workspaceId, name: body.name, id }, type: QueryTypes.SELECT,
        });
        if (taken) throw new AppError(409, 'name_taken', `A mini program named "${body.name}" already exists in this workspace`, { miniProgramId: taken.id });
        const input: MiniProgramInput = {
          miniProgramId: id, workspaceId, name: body.name, description: body.description, category: body.category, icon: body.icon ?? null,
          createdBy: user.id, createdAt: new Date().toISOString(), releaseConfig: { reviewReminderMs: config.release.reviewReminderMs },
        };
        try {
          await temporal.workflow.start('miniProgramEntity', {
            workflowId: miniProgramWorkflowId(id), taskQueue: config.temporal.taskQueue, args: [input],
            typedSearchAttributes: [{ key: WorkspaceIdKey, value: workspaceId }, { key: MiniProgramIdKey, value: id }],
          });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        }
        await temporal.workflow.getHandle(miniProgramWorkflowId(id)).executeUpdate(syncUpdate, { args: [] });
        const row = await findMiniProgram(sequelize, workspaceId, id);
        if (!row) throw new Error(`mini program ${id} was not projected`);
        return c.json(miniProgramOut(row), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}', tags: ['mini programs'], summary: 'A mini program with its versions',
        middleware: [requirePermission('miniProgram.read')], request: { params: MiniProgramParams },
        responses: { 200: json(MiniProgramDetailSchema, 'Detail'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        const row = await findMiniProgram(sequelize, workspaceId, miniProgramId);
        if (!row) throw notFound('Mini program');
        const user = c.get('user')!;
        const [versions, miniProgramRoles] = await Promise.all([
          listVersions(sequelize, { workspaceId, miniProgramId, role: c.get('role'), miniProgramRole: c.get('miniProgramRole'), grants: c.get('grants'), userId: user.id }),
          // Its people are for the workspace's members, not for an authorized outside developer.
          c.get('role') || c.get('miniProgramRole') ? miniProgramRoleList(sequelize, workspaceId, miniProgramId) : Promise.resolve([]),
        ]);
        const permissions = permissionsOf(principalsOf({ role: c.get('role'), miniProgramRole: c.get('miniProgramRole'), grants: c.get('grants') }));
        return c.json({ miniProgram: miniProgramOut(row), versions, permissions, miniProgramRoles }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/live', tags: ['mini programs'], summary: "The entity workflow's live state",
        middleware: [requirePermission('miniProgram.read')], request: { params: MiniProgramParams },
        responses: { 200: json(z.record(z.string(), z.unknown()), 'Live state'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        if (!(await findMiniProgram(sequelize, workspaceId, miniProgramId))) throw notFound('Mini program');
        const state = await temporal.workflow.getHandle(miniProgramWorkflowId(miniProgramId)).query(miniProgramStatusQuery);
        return c.json(state as unknown as Record<string, unknown>, 200);
      },
    );
}
