import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { QueryTypes } from 'sequelize';
import { randomBytes } from 'node:crypto';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { isvScopes, type IsvScope } from '../../lib/permissions.js';
import {
  approveAuthorizationUpdate, authorizationStatusQuery, authorizationStatuses, authorizationWorkflowId, authorizationWorkflowType, cancelRevocationUpdate, denyAuthorizationUpdate,
  revokeAuthorizationUpdate, withdrawAuthorizationUpdate,
  type AuthorizationInput, type AuthorizationState, type AuthorizationStatus, type RevocationReport,
} from '../../workflows/contracts/authorization.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission, requireUser } from '../middleware.js';
import { WorkspaceParams, errorResponses, json } from '../schemas.js';

/** Most mini programs one request names. */
export const maxMiniProgramsPerRequest = 50;

const iso = (d: Date | string | null | undefined) => (d === null || d === undefined ? null : new Date(d).toISOString());
const Person = z.object({ id: z.string(), name: z.string() });
const WorkspaceRef = z.object({ id: z.string(), name: z.string(), code: z.string() });
const Scope = z.enum(isvScopes);

const AuthorizationSchema = z
  .object({
    id: z.string(),
    direction: z.enum(['incoming', 'outgoing']).describe('incoming: a developer workspace asks (or holds) a grant on this merchant workspace; outgoing: this developer workspace asked another'),
    label: z.string().describe('in words, from this workspace\'s side'),
    developerWorkspace: WorkspaceRef, merchantWorkspace: WorkspaceRef, status: z.enum(authorizationStatuses),
    requestedMiniPrograms: z.array(z.object({ id: z.string(), name: z.string() })), requestedScope: z.array(Scope),
    miniPrograms: z.array(z.object({ id: z.string(), name: z.string() })).describe('granted (a narrowing of the request); empty until approved'), scope: z.array(Scope),
    endsAt: z.string().nullable(), message: z.string(), requestedBy: Person, requestedAt: z.string(), requestExpiresAt: z.string().nullable(),
    decidedBy: Person.nullable(), decidedAt: z.string().nullable(), decisionReason: z.string().nullable(),
    revokeScheduledAt: z.string().nullable(), revokeTrigger: z.enum(['merchant', 'developer', 'lapse']).nullable(), revokedBy: Person.nullable(), revokeReason: z.string().nullable(),
    revokedAt: z.string().nullable(), updatedAt: z.string(), seq: z.number(),
  })
  .openapi('Authorization');
const HistorySchema = z.object({ at: z.string(), action: z.string(), actor: Person.nullable(), comment: z.string().optional() });
const ActivitySchema = z.object({ at: z.string(), actor: Person.nullable(), subjectType: z.string(), subjectId: z.string(), action: z.string(), fromState: z.string().nullable(), toState: z.string().nullable(), comment: z.string().nullable() });
const AuthorizationDetailSchema = z
  .object({
    authorization: AuthorizationSchema,
    history: z.array(HistorySchema),
    report: z.record(z.string(), z.unknown()).nullable().describe('the revocation report (RevocationReport), once a revocation started'),
    activity: z.array(ActivitySchema).describe('what members of the developer workspace did on the granted mini programs since approval (audit log, newest first, at most 500)'),
  })
  .openapi('AuthorizationDetail');
const AuthorizedMiniProgramSchema = z
  .object({
    miniProgram: z.object({ id: z.string(), name: z.string(), icon: z.string().nullable(), status: z.string() }),
    merchantWorkspace: WorkspaceRef, developerWorkspace: WorkspaceRef, scope: z.array(Scope),
    authorizations: z.array(z.object({ id: z.string(), scope: z.array(Scope), endsAt: z.string().nullable() })),
  })
  .openapi('AuthorizedMiniProgram');
const DeveloperWorkspaceSchema = z.object({ id: z.string(), name: z.string(), code: z.string(), type: z.literal('developer'), role: z.literal('admin') }).openapi('DeveloperWorkspace');

const future = (field: string) => (s: string | null | undefined) => {
  if (!s) return;
  if (new Date(s).getTime() <= Date.now()) throw new AppError(400, `${field}_in_past`, `${field} must be in the future`, { [field]: s });
};
const uniqueIds = z.array(z.string().min(1).max(100)).transform((a) => [...new Set(a)]);
const uniqueScope = z.array(Scope).min(1, 'give at least one scope').transform((a) => isvScopes.filter((s) => a.includes(s)));

const RequestBody = z
  .object({
    merchantCode: z.string().trim().min(1).max(100).describe('the public code of the merchant workspace'),
    miniProgramIds: uniqueIds.pipe(z.array(z.string()).min(1, 'name at least one mini program').max(maxMiniProgramsPerRequest, `at most ${maxMiniProgramsPerRequest} mini programs`)),
    scope: uniqueScope,
    endsAt: z.iso.datetime({ offset: true }).nullable().optional(),
    message: z.string().trim().max(2000).optional().default(''),
  })
  .openapi('RequestAuthorization');
const ApproveBody = z
  .object({
    miniProgramIds: uniqueIds.pipe(z.array(z.string()).min(1).max(maxMiniProgramsPerRequest)).optional(),
    scope: uniqueScope.optional(),
    endsAt: z.iso.datetime({ offset: true }).nullable().optional(),
    comment: z.string().trim().max(2000).optional(),
  })
  .openapi('ApproveAuthorization');
const DenyBody = z.object({ reason: z.string().trim().min(1, 'say why').max(2000) }).openapi('DenyAuthorization');
const RevokeBody = z
  .object({ reason: z.string().trim().min(1, 'say why').max(2000), at: z.iso.datetime({ offset: true }).optional().describe('schedule the revocation for then (cancellable until it starts); omitted: now') })
  .openapi('RevokeAuthorization');
const AuthorizationParams = WorkspaceParams.extend({ authorizationId: z.string().min(1).max(100) });

interface Row {
  id: string; developer_workspace_id: string; merchant_workspace_id: string; status: AuthorizationStatus;
  requested_mini_program_ids: string[]; requested_scope: IsvScope[]; mini_program_ids: string[]; scope: IsvScope[]; ends_at: Date | null; message: string;
  requested_by: string; requested_at: Date; request_expires_at: Date | null; decided_by: string | null; decided_at: Date | null; decision_reason: string | null;
  revoke_trigger: 'merchant' | 'developer' | 'lapse' | null; revoked_by: string | null; revoke_reason: string | null; revoke_scheduled_at: Date | null; revoked_at: Date | null;
  updated_at: Date; seq: number;
  dev_name: string; dev_code: string; merchant_name: string; merchant_code: string;
}

const select = `SELECT a.*, d.name AS dev_name, d.code AS dev_code, w.name AS merchant_name, w.code AS merchant_code
  FROM authorizations a JOIN workspaces d ON d.id = a.developer_workspace_id JOIN workspaces w ON w.id = a.merchant_workspace_id`;

/** Developer (ISV) workspaces, their authorization requests and grants on merchants' mini programs, revocation and its report. */
export function authorizationRoutes({ sequelize, temporal, config }: ApiDeps) {
  async function names(ids: Iterable<string>, table: 'users' | 'mini_programs') {
    const list = [...new Set([...ids].filter(Boolean))];
    if (!list.length) return new Map<string, string>();
    const rows = await sequelize.query<{ id: string; name: string }>(`SELECT id, name FROM ${table} WHERE id IN (:list)`, { replacements: { list }, type: QueryTypes.SELECT });
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  /** The row, with the workflow's freshest word on top when a command just answered. */
  function overlay(r: Row, s?: AuthorizationState): Row {
    if (!s || s.seq < r.seq) return r;
    return {
      ...r, status: s.status, mini_program_ids: s.miniProgramIds, scope: s.scope, ends_at: s.endsAt as unknown as Date | null,
      decided_by: s.decidedBy, decided_at: s.decidedAt as unknown as Date | null, decision_reason: s.decisionReason,
      revoke_trigger: s.revokeTrigger, revoked_by: s.revokedBy, revoke_reason: s.revokeReason, revoke_scheduled_at: s.revokeScheduledAt as unknown as Date | null,
      revoked_at: s.revokedAt as unknown as Date | null, seq: s.seq,
    };
  }

  async function out(rows: Row[], from: string) {
    const users = await names(rows.flatMap((r) => [r.requested_by, r.decided_by ?? '', r.revoked_by ?? '']), 'users');
    const mps = await names(rows.flatMap((r) => [...r.requested_mini_program_ids, ...r.mini_program_ids]), 'mini_programs');
    const person = (id: string | null) => (id ? { id, name: users.get(id) ?? 'unknown' } : null);
    const mp = (id: string) => ({ id, name: mps.get(id) ?? 'unknown' });
    return rows.map((r) => {
      const direction = r.merchant_workspace_id === from ? ('incoming' as const) : ('outgoing' as const);
      const label = direction === 'incoming' ? `${r.dev_name} (developer) on ${r.merchant_name}'s mini programs` : `${r.dev_name} on behalf of ${r.merchant_name}`;
      return {
        id: r.id, direction, label,
        developerWorkspace: { id: r.developer_workspace_id, name: r.dev_name, code: r.dev_code },
        merchantWorkspace: { id: r.merchant_workspace_id, name: r.merchant_name, code: r.merchant_code },
        status: r.status, requestedMiniPrograms: r.requested_mini_program_ids.map(mp), requestedScope: r.requested_scope, miniPrograms: r.mini_program_ids.map(mp), scope: r.scope,
        endsAt: iso(r.ends_at), message: r.message, requestedBy: person(r.requested_by)!, requestedAt: iso(r.requested_at)!, requestExpiresAt: iso(r.request_expires_at),
        decidedBy: person(r.decided_by), decidedAt: iso(r.decided_at), decisionReason: r.decision_reason,
        revokeScheduledAt: iso(r.revoke_scheduled_at), revokeTrigger: r.revoke_trigger, revokedBy: person(r.revoked_by), revokeReason: r.revoke_reason, revokedAt: iso(r.revoked_at),
        updatedAt: iso(r.updated_at)!, seq: r.seq,
      };
    });
  }

  /** An authorization either side of which is the path's workspace; others do not exist for the caller. */
  async function find(workspaceId: string, authorizationId: string) {
    const [row] = await sequelize.query<Row>(`${select} WHERE a.id = :authorizationId AND (a.developer_workspace_id = :workspaceId OR a.merchant_workspace_id = :workspaceId)`, {
      replacements: { workspaceId, authorizationId }, type: QueryTypes.SELECT,
    });
    if (!row) throw notFound('Authorization');
    return row;
  }

  const side = (row: Row, workspaceId: string) => (row.merchant_workspace_id === workspaceId ? ('merchant' as const) : ('developer' as const));
  function mustBe(row: Row, workspaceId: string, wanted: 'merchant' | 'developer', what: string) {
    if (side(row, workspaceId) !== wanted) throw new AppError(403, 'wrong_side', `Only the ${wanted === 'merchant' ? 'merchant' : 'developer'} workspace's Admins can ${what}`);
  }
  function mustBeOpen(row: Row, allowed: AuthorizationStatus[]) {
    if (!allowed.includes(row.status)) throw new AppError(409, 'wrong_state', `The authorization is ${row.status}`, { status: row.status });
  }

  /** Sends an update to the authorization's workflow; its refusals go through the one error funnel. */
  async function command(c: { req: { valid(t: 'param'): { workspaceId: string; authorizationId: string } } }, row: Row, run: (h: ReturnType<typeof temporal.workflow.getHandle>) => Promise<AuthorizationState>) {
    let state: AuthorizationState;
    try {
      state = await run(temporal.workflow.getHandle(authorizationWorkflowId(row.id)));
    } catch (err) {
      // The workflow's own refusals that the shared funnel does not map (it maps wrong_state and the like).
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && ['validation_failed', 'not_a_narrowing'].includes(err.cause.type ?? '')) {
        throw new AppError(400, err.cause.type!, err.cause.message, (err.cause.details?.[0] ?? undefined) as Record<string, unknown> | undefined);
      }
      throw err;
    }
    const { workspaceId } = c.req.valid('param');
    return (await out([overlay(row, state)], workspaceId))[0]!;
  }

  /** The live state (history, report) from the workflow, bounded: a finished one answers from the read model. */
  async function live(id: string): Promise<AuthorizationState | null> {
    try {
      return await temporal.withDeadline(Date.now() + 3000, () => temporal.workflow.getHandle(authorizationWorkflowId(id)).query(authorizationStatusQuery));
    } catch {
      return null;
    }
  }

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'post', path: '/developer-workspaces', tags: ['authorizations'], summary: 'Create a developer (ISV) workspace; you become its Developer Admin',
        middleware: [requireUser], request: { body: { content: { 'application/json': { schema: z.object({ name: z.string().trim().min(1).max(100) }) } }, required: true } },
        responses: { 201: json(DeveloperWorkspaceSchema, 'Created'), ...errorResponses },
      }),
      async (c) => {
        const { name } = c.req.valid('json');
        const user = c.get('user')!;
        const id = newId('ws');
        // A public code like a merchant's: DEV- and 8 characters, drawn again on the rare clash.
        for (let attempt = 0; ; attempt++) {
          const code = `DEV-${randomBytes(6).toString('base64url').replace(/[-_]/g, 'X').slice(0, 8).toUpperCase()}`;
          try {
            await sequelize.transaction(async (t) => {
              await sequelize.query(`INSERT INTO workspaces (id, name, code, type) VALUES (:id, :name, :code, 'developer')`, { replacements: { id, name, code }, transaction: t });
              await sequelize.query(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:id, :userId, 'admin')`, { replacements: { id, userId: user.id }, transaction: t });
              await sequelize.query(
                `INSERT INTO audit_log (dedupe_key, workspace_id, subject_type, subject_id, actor_id, action, to_state, comment, at) VALUES (:key, :id, 'workspace', :id, :userId, 'created', 'developer', :name, now())`,
                { replacements: { key: `workspace:created:${id}`, id, userId: user.id, name }, transaction: t },
              );
            });
            return c.json({ id, name, code, type: 'developer' as const, role: 'admin' as const }, 201);
          } catch (err) {
            if (attempt < 3 && /workspaces_code_key|unique/i.test(String((err as { parent?: Error }).parent?.message ?? (err as Error).message))) continue;
            throw err;
          }
        }
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/authorizations', tags: ['authorizations'],
        summary: 'Request authorization from a merchant workspace (by its code) on some of its mini programs, with a scope and an optional end date (developer workspace Admins)',
        middleware: [requirePermission('authorization.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: RequestBody } }, required: true } },
        responses: { 201: json(AuthorizationSchema, 'Requested: the merchant\'s Admins are mailed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        future('endsAt')(body.endsAt);
        const [[self], [merchant]] = await Promise.all([
          sequelize.query<{ type: string }>('SELECT type FROM workspaces WHERE id = :workspaceId', { replacements: { workspaceId }, type: QueryTypes.SELECT }),
          sequelize.query<{ id: string }>(`SELECT id FROM workspaces WHERE upper(code) = upper(:code) AND type = 'merchant'`, { replacements: { code: body.merchantCode }, type: QueryTypes.SELECT }),
        ]);
        if (self?.type !== 'developer') throw new AppError(403, 'not_a_developer_workspace', 'Only a developer workspace can request authorization: create one first');
        if (!merchant) throw new AppError(404, 'merchant_not_found', `No merchant workspace with the code ${body.merchantCode}`, { merchantCode: body.merchantCode });
        const owned = await sequelize.query<{ id: string }>('SELECT id FROM mini_programs WHERE workspace_id = :merchant AND id IN (:ids)', {
          replacements: { merchant: merchant.id, ids: body.miniProgramIds }, type: QueryTypes.SELECT,
        });
        const ownedIds = new Set(owned.map((r) => r.id));
        const unknown = body.miniProgramIds.filter((id) => !ownedIds.has(id));
        if (unknown.length) throw new AppError(400, 'unknown_mini_program', `Not mini programs of that merchant: ${unknown.join(', ')}`, { miniProgramIds: unknown });
        const id = newId('auth');
        const now = new Date();
        const requestExpiresAt = new Date(now.getTime() + config.authorization.requestTtlMs);
        // The row first (seq 0), so the request is listed at once; the workflow's projections carry higher seqs.
        await sequelize.query(
          `INSERT INTO authorizations (id, developer_workspace_id, merchant_workspace_id, status, requested_mini_program_ids, requested_scope, ends_at, message, requested_by, requested_at,
             request_expires_at, updated_at, seq)
           VALUES (:id, :dev, :merchant, 'requested', ARRAY[:mps]::text[], ARRAY[:scope]::text[], :endsAt, :message, :userId, :now, :requestExpiresAt, :now, 0)`,
          { replacements: { id, dev: workspaceId, merchant: merchant.id, mps: body.miniProgramIds, scope: body.scope, endsAt: body.endsAt ?? null, message: body.message, userId: user.id, now, requestExpiresAt } },
        );
        const input: AuthorizationInput = {
          authorizationId: id, developerWorkspaceId: workspaceId, merchantWorkspaceId: merchant.id, miniProgramIds: body.miniProgramIds, scope: body.scope,
          endsAt: body.endsAt ? new Date(body.endsAt).toISOString() : null, message: body.message, requestedBy: user.id,
          requestTtlMs: config.authorization.requestTtlMs, lapseReminderMs: config.authorization.lapseReminderMs,
        };
        try {
          await temporal.workflow.start(authorizationWorkflowType, { workflowId: authorizationWorkflowId(id), taskQueue: config.temporal.taskQueue, args: [input] });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
            await sequelize.query('DELETE FROM authorizations WHERE id = :id AND seq = 0', { replacements: { id } });
            throw err;
          }
        }
        return c.json((await out([await find(workspaceId, id)], workspaceId))[0]!, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/authorizations', tags: ['authorizations'],
        summary: 'Authorizations of this workspace, both directions (incoming to a merchant, outgoing from a developer workspace), newest first',
        middleware: [requirePermission('authorization.read')],
        request: { params: WorkspaceParams, query: z.object({ status: z.enum(authorizationStatuses).optional(), direction: z.enum(['incoming', 'outgoing']).optional() }) },
        responses: { 200: json(z.object({ items: z.array(AuthorizationSchema) }), 'Authorizations'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { status, direction } = c.req.valid('query');
        const sides = [direction !== 'outgoing' ? 'a.merchant_workspace_id = :workspaceId' : '', direction !== 'incoming' ? 'a.developer_workspace_id = :workspaceId' : ''].filter(Boolean);
        const rows = await sequelize.query<Row>(
          `${select} WHERE (${sides.join(' OR ')}) ${status ? 'AND a.status = :status' : ''} ORDER BY a.requested_at DESC, a.id DESC LIMIT 500`,
          { replacements: { workspaceId, status: status ?? null }, type: QueryTypes.SELECT },
        );
        return c.json({ items: await out(rows, workspaceId) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/authorizations/{authorizationId}', tags: ['authorizations'],
        summary: 'One authorization (either side): its state, history, revocation report, and what the developer workspace did under it',
        middleware: [requirePermission('authorization.read')], request: { params: AuthorizationParams },
        responses: { 200: json(AuthorizationDetailSchema, 'The authorization'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, authorizationId } = c.req.valid('param');
        const row = await find(workspaceId, authorizationId);
        const [state, [stored], activity] = await Promise.all([
          live(authorizationId),
          sequelize.query<{ report: RevocationReport }>('SELECT report FROM revocation_reports WHERE authorization_id = :authorizationId', { replacements: { authorizationId }, type: QueryTypes.SELECT }),
          row.decided_at && row.mini_program_ids.length
            ? sequelize.query<{ at: Date; actor_id: string | null; actor_name: string | null; subject_type: string; subject_id: string; action: string; from_state: string | null; to_state: string | null; comment: string | null }>(
              `SELECT a.at, a.actor_id, u.name AS actor_name, a.subject_type, a.subject_id, a.action, a.from_state, a.to_state, a.comment
               FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
               WHERE a.workspace_id = :merchant AND a.at >= :since AND a.actor_id IN (SELECT user_id FROM memberships WHERE workspace_id = :dev)
                 AND (a.subject_id = ANY(ARRAY[:mps]::text[])
                   OR EXISTS (SELECT 1 FROM versions v WHERE v.id = a.subject_id AND v.mini_program_id = ANY(ARRAY[:mps]::text[]))
                   OR EXISTS (SELECT 1 FROM pipelines p WHERE p.id = a.subject_id AND p.mini_program_id = ANY(ARRAY[:mps]::text[]))
                   OR EXISTS (SELECT 1 FROM testers t WHERE t.id = a.subject_id AND t.mini_program_id = ANY(ARRAY[:mps]::text[])))
               ORDER BY a.at DESC, a.id DESC LIMIT 500`,
              { replacements: { merchant: row.merchant_workspace_id, dev: row.developer_workspace_id, since: row.decided_at, mps: row.mini_program_ids }, type: QueryTypes.SELECT },
            )
            : Promise.resolve([]),
        ]);
        const history = state?.history ?? [];
        const actors = await names(history.map((h) => h.actorId ?? ''), 'users');
        return c.json({
          authorization: (await out([overlay(row, state ?? undefined)], workspaceId))[0]!,
          history: history.map((h) => ({ at: h.at, action: h.action, actor: h.actorId ? { id: h.actorId, name: actors.get(h.actorId) ?? 'unknown' } : null, ...(h.comment ? { comment: h.comment } : {}) })),
          report: (stored?.report ?? state?.report ?? null) as unknown as Record<string, unknown> | null,
          activity: activity.map((a) => ({
            at: iso(a.at)!, actor: a.actor_id ? { id: a.actor_id, name: a.actor_name ?? 'unknown' } : null, subjectType: a.subject_type, subjectId: a.subject_id,
            action: a.action, fromState: a.from_state, toState: a.to_state, comment: a.comment,
          })),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/authorizations/{authorizationId}/report', tags: ['authorizations'],
        summary: 'The revocation report as a JSON download (404 report_not_ready before a revocation started)',
        middleware: [requirePermission('authorization.read')], request: { params: AuthorizationParams },
        responses: { 200: { description: 'The report (RevocationReport)', content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } } }, ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, authorizationId } = c.req.valid('param');
        await find(workspaceId, authorizationId);
        const [stored] = await sequelize.query<{ report: RevocationReport }>('SELECT report FROM revocation_reports WHERE authorization_id = :authorizationId', { replacements: { authorizationId }, type: QueryTypes.SELECT });
        const report = stored?.report ?? (await live(authorizationId))?.report;
        if (!report) throw new AppError(404, 'report_not_ready', 'This authorization has no revocation report (it was not revoked)');
        c.header('Content-Disposition', `attachment; filename="revocation-${authorizationId}.json"`);
        return c.json(report as unknown as Record<string, unknown>, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/authorizations/{authorizationId}/approve', tags: ['authorizations'],
        summary: 'Approve a request, possibly narrowing its mini programs, scope or end date (merchant Admins)',
        middleware: [requirePermission('authorization.manage')],
        request: { params: AuthorizationParams, body: { content: { 'application/json': { schema: ApproveBody } }, required: true } },
        responses: { 200: json(AuthorizationSchema, 'Active'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, authorizationId } = c.req.valid('param');
        const body = c.req.valid('json');
        const row = await find(workspaceId, authorizationId);
        mustBe(row, workspaceId, 'merchant', 'approve a request');
        mustBeOpen(row, ['requested']);
        future('endsAt')(body.endsAt);
        const wider = (body.miniProgramIds ?? []).filter((id) => !row.requested_mini_program_ids.includes(id));
        if (wider.length) throw new AppError(400, 'not_a_narrowing', `Only mini programs of the request can be granted: ${wider.join(', ')}`, { miniProgramIds: wider });
        const widerScope = (body.scope ?? []).filter((s) => !row.requested_scope.includes(s));
        if (widerScope.length) throw new AppError(400, 'not_a_narrowing', `Only the requested scope can be granted, not ${widerScope.join(', ')}`, { scope: widerScope });
        if (row.ends_at && body.endsAt !== undefined && (body.endsAt === null || new Date(body.endsAt) > new Date(row.ends_at))) {
          throw new AppError(400, 'not_a_narrowing', `The request ends on ${iso(row.ends_at)}: a grant may end sooner, never later or never`, { endsAt: iso(row.ends_at) });
        }
        const actorId = c.get('user')!.id;
        return c.json(await command(c, row, (h) => h.executeUpdate(approveAuthorizationUpdate, {
          args: [{ actorId, ...(body.miniProgramIds ? { miniProgramIds: body.miniProgramIds } : {}), ...(body.scope ? { scope: body.scope } : {}), ...(body.endsAt !== undefined ? { endsAt: body.endsAt && new Date(body.endsAt).toISOString() } : {}), ...(body.comment ? { comment: body.comment } : {}) }],
        })), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/authorizations/{authorizationId}/deny', tags: ['authorizations'], summary: 'Deny a request with a reason (merchant Admins)',
        middleware: [requirePermission('authorization.manage')],
        request: { params: AuthorizationParams, body: { content: { 'application/json': { schema: DenyBody } }, required: true } },
        responses: { 200: json(AuthorizationSchema, 'Denied'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, authorizationId } = c.req.valid('param');
        const { reason } = c.req.valid('json');
        const row = await find(workspaceId, authorizationId);
        mustBe(row, workspaceId, 'merchant', 'deny a request');
        mustBeOpen(row, ['requested']);
        const actorId = c.get('user')!.id;
        return c.json(await command(c, row, (h) => h.executeUpdate(denyAuthorizationUpdate, { args: [{ actorId, reason }] })), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/authorizations/{authorizationId}/withdraw', tags: ['authorizations'], summary: 'Withdraw an undecided request (developer workspace Admins)',
        middleware: [requirePermission('authorization.manage')], request: { params: AuthorizationParams },
        responses: { 200: json(AuthorizationSchema, 'Withdrawn'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, authorizationId } = c.req.valid('param');
        const row = await find(workspaceId, authorizationId);
        mustBe(row, workspaceId, 'developer', 'withdraw a request');
        mustBeOpen(row, ['requested']);
        const actorId = c.get('user')!.id;
        return c.json(await command(c, row, (h) => h.executeUpdate(withdrawAuthorizationUpdate, { args: [{ actorId }] })), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/authorizations/{authorizationId}/revoke', tags: ['authorizations'],
        summary: 'Revoke an active authorization now or at a date (merchant Admins), or relinquish it (developer workspace Admins); runs to the end with a report',
        middleware: [requirePermission('authorization.manage')],
        request: { params: AuthorizationParams, body: { content: { 'application/json': { schema: RevokeBody } }, required: true } },
        responses: { 200: json(AuthorizationSchema, 'Revoking (or scheduled)'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, authorizationId } = c.req.valid('param');
        const { reason, at } = c.req.valid('json');
        const row = await find(workspaceId, authorizationId);
        mustBeOpen(row, ['active']);
        future('at')(at);
        const actorId = c.get('user')!.id;
        const by = side(row, workspaceId);
        return c.json(await command(c, row, (h) => h.executeUpdate(revokeAuthorizationUpdate, { args: [{ actorId, by, reason, ...(at ? { at: new Date(at).toISOString() } : {}) }] })), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/authorizations/{authorizationId}/cancel-revocation', tags: ['authorizations'],
        summary: 'Cancel a scheduled revocation before it starts (Admins of either side)',
        middleware: [requirePermission('authorization.manage')], request: { params: AuthorizationParams },
        responses: { 200: json(AuthorizationSchema, 'Active again, nothing scheduled'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, authorizationId } = c.req.valid('param');
        const row = await find(workspaceId, authorizationId);
        mustBeOpen(row, ['active']);
        const actorId = c.get('user')!.id;
        return c.json(await command(c, row, (h) => h.executeUpdate(cancelRevocationUpdate, { args: [{ actorId }] })), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/me/authorized-mini-programs', tags: ['authorizations'],
        summary: 'Mini programs you may act on through active developer authorizations, with the merchant and the scope', middleware: [requireUser],
        responses: { 200: json(z.object({ items: z.array(AuthorizedMiniProgramSchema) }), 'Granted mini programs'), ...errorResponses },
      }),
      async (c) => {
        const rows = await sequelize.query<{
          mp_id: string; mp_name: string; icon: string | null; mp_status: string; merchant_id: string; merchant_name: string; merchant_code: string;
          dev_id: string; dev_name: string; dev_code: string; auth_id: string; scope: IsvScope[]; ends_at: Date | null;
        }>(
          `SELECT mp.id AS mp_id, mp.name AS mp_name, mp.icon, mp.status AS mp_status, w.id AS merchant_id, w.name AS merchant_name, w.code AS merchant_code,
             d.id AS dev_id, d.name AS dev_name, d.code AS dev_code, a.id AS auth_id, a.scope, a.ends_at
           FROM authorizations a
           JOIN memberships m ON m.workspace_id = a.developer_workspace_id AND m.user_id = :userId AND m.status = 'active'
           JOIN mini_programs mp ON mp.id = ANY(a.mini_program_ids) AND mp.workspace_id = a.merchant_workspace_id
           JOIN workspaces w ON w.id = a.merchant_workspace_id JOIN workspaces d ON d.id = a.developer_workspace_id
           WHERE a.status = 'active' AND (a.ends_at IS NULL OR a.ends_at > now())
           ORDER BY w.name, mp.name, a.requested_at`,
          { replacements: { userId: c.get('user')!.id }, type: QueryTypes.SELECT },
        );
        const byMp = new Map<string, z.infer<typeof AuthorizedMiniProgramSchema>>();
        for (const r of rows) {
          const key = `${r.mp_id}|${r.dev_id}`;
          const item = byMp.get(key) ?? {
            miniProgram: { id: r.mp_id, name: r.mp_name, icon: r.icon, status: r.mp_status },
            merchantWorkspace: { id: r.merchant_id, name: r.merchant_name, code: r.merchant_code }, developerWorkspace: { id: r.dev_id, name: r.dev_name, code: r.dev_code },
            scope: [], authorizations: [],
          };
          item.authorizations.push({ id: r.auth_id, scope: r.scope, endsAt: iso(r.ends_at) });
          item.scope = isvScopes.filter((s) => item.scope.includes(s) || r.scope.includes(s));
          byMp.set(key, item);
        }
        return c.json({ items: [...byMp.values()] }, 200);
      },
    );
}

