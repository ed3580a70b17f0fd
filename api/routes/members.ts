import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Context } from 'hono';
import { setCookie } from 'hono/cookie';
import { QueryTypes, type Transaction } from 'sequelize';
import { timingSafeEqual } from 'node:crypto';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { miniProgramRoles, workspaceRoles, type WorkspaceRole } from '../../lib/permissions.js';
import { FailureType } from '../../workflows/contracts/errors.js';
import {
  InvitationFailure, acceptUpdate, changeRoleUpdate, declineUpdate, invitationStatuses, invitationWorkflowId, invitationWorkflowType, resendUpdate,
  withdrawInvitationUpdate, type AcceptInput, type InvitationInput, type InvitationStatus,
} from '../../workflows/contracts/invitation.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { publicRoute, requirePermission, sessionCookie } from '../middleware.js';
import { hashPassword, newSecret, sha256, verifyPassword } from '../passwords.js';
import { MiniProgramParams, MiniProgramRoleSchema, WorkspaceParams, errorResponses, json } from '../schemas.js';
import { decodeCursor, encodeCursor } from '../cursor.js';

/** Most addresses one invite request takes. */
export const maxInvitesPerRequest = 1000;

const memberStatuses = ['active', 'blocked'] as const;
const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

const InvitationSchema = z
  .object({
    id: z.string(), email: z.string(), role: z.enum(workspaceRoles), status: z.enum(invitationStatuses), invitedBy: z.object({ id: z.string(), name: z.string() }).nullable(),
    batchId: z.string().nullable(), createdAt: z.string(), expiresAt: z.string(), remindedAt: z.string().nullable(), decidedAt: z.string().nullable(),
  })
  .openapi('Invitation');
const MemberSchema = z
  .object({
    userId: z.string(), name: z.string(), email: z.string(), role: z.enum(workspaceRoles), status: z.enum(memberStatuses), joinedAt: z.string(), updatedAt: z.string(),
    miniProgramRoles: z.array(z.object({ miniProgramId: z.string(), miniProgramName: z.string(), role: z.enum(miniProgramRoles) })),
  })
  .openapi('Member');
const CutOffSchema = z
  .object({
    sessionsEnded: z.number(), apiTokensRevoked: z.number(), miniProgramRolesRemoved: z.number(),
    reviews: z.object({
      versionsInReview: z.number().describe('versions in review in this workspace that this member could have decided; they stay with the other reviewers'),
      otherReviewers: z.number().describe('active Admins and Reviewers left to decide them'),
    }),
  })
  .openapi('CutOff');
const InviteReportSchema = z
  .object({
    batchId: z.string(),
    invited: z.array(z.object({ email: z.string(), invitationId: z.string() })),
    refused: z.array(z.object({ email: z.string(), code: z.enum(['invalid_email', 'duplicate', 'already_member', 'already_invited', 'unavailable']), reason: z.string() })),
  })
  .openapi('InviteReport');
const PublicInvitationSchema = z
  .object({
    id: z.string(), email: z.string(), role: z.enum(workspaceRoles), status: z.enum(invitationStatuses), expiresAt: z.string(),
    workspace: z.object({ id: z.string(), name: z.string() }), invitedBy: z.string().nullable(), accountExists: z.boolean(),
    signedInAs: z.string().nullable().describe('the signed-in user’s address, when someone is signed in'),
  })
  .openapi('PublicInvitation');

const InviteBody = z.object({
  emails: z.array(z.string().max(320)).min(1, 'give at least one address').max(maxInvitesPerRequest, `at most ${maxInvitesPerRequest} addresses per request`),
  role: z.enum(workspaceRoles),
});
const InvitationParams = WorkspaceParams.extend({ invitationId: z.string().min(1).max(100) });
const MemberParams = WorkspaceParams.extend({ userId: z.string().min(1).max(100) });
const MpRoleParams = MiniProgramParams.extend({ userId: z.string().min(1).max(100) });
const TokenQuery = z.object({ token: z.string().min(10).max(200) });
const AcceptBody = z.object({
  token: z.string().min(10).max(200),
  name: z.string().trim().min(1).max(100).optional(),
  password: z.string().min(10, 'at least 10 characters').max(200).optional(),
});
const emailShape = z.email();

interface InvitationRow {
  id: string; workspace_id: string; email: string; role: WorkspaceRole; status: InvitationStatus; token_hash: string | null; invited_by: string | null;
  invited_by_name: string | null; batch_id: string | null; created_at: Date; expires_at: Date; reminded_at: Date | null; decided_at: Date | null; accepted_user_id: string | null;
}

/** What the world sees: a pending invitation past its deadline is expired, even before the workflow says so. */
const effectiveStatus = (r: { status: InvitationStatus; expires_at: Date }): InvitationStatus => (r.status === 'pending' && new Date(r.expires_at).getTime() <= Date.now() ? 'expired' : r.status);

const invitationOut = (r: InvitationRow) => ({
  id: r.id, email: r.email, role: r.role, status: effectiveStatus(r), invitedBy: r.invited_by ? { id: r.invited_by, name: r.invited_by_name ?? 'unknown' } : null,
  batchId: r.batch_id, createdAt: iso(r.created_at)!, expiresAt: iso(r.expires_at)!, remindedAt: iso(r.reminded_at), decidedAt: iso(r.decided_at),
});

const statusRefusal: Record<Exclude<InvitationStatus, 'pending'>, string> = {
  accepted: 'This invitation has already been accepted',
  declined: 'This invitation was declined',
  withdrawn: 'This invitation was withdrawn by the workspace',
  expired: 'This invitation has expired; ask the workspace Admin to send a new one',
};
const refuseStatus = (status: InvitationStatus) => new AppError(409, `invitation_${status}`, statusRefusal[status as Exclude<InvitationStatus, 'pending'>] ?? `The invitation is ${status}`, { status });
const invalidToken = () => new AppError(403, 'invalid_token', 'This invitation link is not valid: use the link of the latest invitation mail');

/** Temporal's refusal of an invitation command, as the API's error. */
function invitationError(err: unknown): AppError | null {
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
    const f = err.cause;
    const details = (f.details?.[0] ?? {}) as { status?: InvitationStatus };
    if (f.type === FailureType.wrongState) return refuseStatus(details.status ?? 'expired');
    if (f.type === InvitationFailure.invalidToken) return invalidToken();
    if (f.type === InvitationFailure.accountExists) return new AppError(409, 'account_exists', f.message);
    if (f.type === FailureType.notFound) return notFound('Invitation');
    if (f.type === 'validation_failed') return new AppError(400, 'validation_failed', f.message);
  }
  return null;
}

/** Invitations, members and their roles, per-mini-program roles; the public accept / decline of an invitation link. */
export function memberRoutes({ sequelize, temporal, config }: ApiDeps) {
  const invitationSelect = `SELECT i.id, i.workspace_id, i.email, i.role, i.status, i.token_hash, i.invited_by, u.name AS invited_by_name, i.batch_id, i.created_at, i.expires_at,
      i.reminded_at, i.decided_at, i.accepted_user_id FROM invitations i LEFT JOIN users u ON u.id = i.invited_by`;

  async function findInvitation(invitationId: string, workspaceId?: string) {
    const [row] = await sequelize.query<InvitationRow>(`${invitationSelect} WHERE i.id = :invitationId ${workspaceId ? 'AND i.workspace_id = :workspaceId' : ''}`, {
      replacements: { invitationId, workspaceId: workspaceId ?? null }, type: QueryTypes.SELECT,
    });
    return row;
  }

  /** The invitation behind a link, when the token is its current one (constant-time compare); unknown ids look the same as wrong tokens. */
  async function invitationByToken(invitationId: string, token: string) {
    const row = await findInvitation(invitationId);
    const presented = Buffer.from(sha256(token));
    if (!row?.token_hash || !timingSafeEqual(presented, Buffer.from(row.token_hash))) throw invalidToken();
    return row;
  }

  /** Runs an invitation update; a finished workflow answers from the read model. */
  async function command<T>(row: InvitationRow, run: () => Promise<T>): Promise<T> {
    const status = effectiveStatus(row);
    if (status !== 'pending') throw refuseStatus(status);
    try {
      return await run();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        const now = await findInvitation(row.id);
        throw refuseStatus(now ? (effectiveStatus(now) === 'pending' ? 'expired' : effectiveStatus(now)) : 'expired');
      }
      throw invitationError(err) ?? err;
    }
  }

  async function audit(t: Transaction, a: { workspaceId: string; subjectType: string; subjectId: string; actorId: string; action: string; from: string | null; to: string | null; comment?: string }) {
    await sequelize.query(
      `INSERT INTO audit_log (dedupe_key, workspace_id, subject_type, subject_id, actor_id, action, from_state, to_state, comment, at)
       VALUES (:key, :workspaceId, :subjectType, :subjectId, :actorId, :action, :from, :to, :comment, now())`,
      { replacements: { ...a, key: newId('aud'), comment: a.comment ?? null }, transaction: t },
    );
  }

  /**
   * Locks the target's membership and the workspace's active Admins, so two concurrent demotions
   * cannot both pass the last-Admin check.
   */
  async function lockMembers(t: Transaction, workspaceId: string, userId: string) {
    const rows = await sequelize.query<{ user_id: string; role: WorkspaceRole; status: string }>(
      `SELECT user_id, role, status FROM memberships WHERE workspace_id = :workspaceId AND (user_id = :userId OR (role = 'admin' AND status = 'active')) ORDER BY user_id FOR UPDATE`,
      { replacements: { workspaceId, userId }, type: QueryTypes.SELECT, transaction: t },
    );
    const target = rows.find((r) => r.user_id === userId);
    if (!target) throw notFound('Member');
    const activeAdmins = rows.filter((r) => r.role === 'admin' && r.status === 'active').length;
    const isLastAdmin = target.role === 'admin' && target.status === 'active' && activeAdmins <= 1;
    return { target, isLastAdmin };
  }
  const lastAdmin = (what: string) => new AppError(409, 'last_admin', `The last active Admin cannot ${what}: make another member Admin first`);

  /** Ends every session and API token of the user at once, and reports what the workspace loses. */
  async function cutOff(t: Transaction, workspaceId: string, userId: string, role: WorkspaceRole) {
    const [sessions] = await sequelize.query('DELETE FROM sessions WHERE user_id = :userId RETURNING id_hash', { replacements: { userId }, transaction: t });
    const [tokens] = await sequelize.query('UPDATE api_tokens SET revoked_at = now() WHERE user_id = :userId AND revoked_at IS NULL RETURNING id', { replacements: { userId }, transaction: t });
    let versionsInReview = 0;
    if (role === 'admin' || role === 'reviewer') {
      // Reviews are not assigned to one reviewer: every version in review this member could have
      // decided simply stays with the others.
      const [r] = await sequelize.query<{ n: string }>(
        `SELECT count(*) AS n FROM versions WHERE workspace_id = :workspaceId AND status = 'in_review' AND submitted_by IS DISTINCT FROM :userId`,
        { replacements: { workspaceId, userId }, type: QueryTypes.SELECT, transaction: t },
      );
      versionsInReview = Number(r?.n ?? 0);
    }
    const [others] = await sequelize.query<{ n: string }>(
      `SELECT count(*) AS n FROM memberships WHERE workspace_id = :workspaceId AND user_id <> :userId AND status = 'active' AND role IN ('admin', 'reviewer')`,
      { replacements: { workspaceId, userId }, type: QueryTypes.SELECT, transaction: t },
    );
    return {
      sessionsEnded: (sessions as unknown[]).length,
      apiTokensRevoked: (tokens as unknown[]).length,
      reviews: { versionsInReview, otherReviewers: Number(others?.n ?? 0) },
    };
  }
  const describeCutOff = (c: { sessionsEnded: number; apiTokensRevoked: number; miniProgramRolesRemoved: number; reviews: { versionsInReview: number; otherReviewers: number } }) =>
    `ended ${c.sessionsEnded} session(s), revoked ${c.apiTokensRevoked} API token(s)${c.miniProgramRolesRemoved ? `, removed ${c.miniProgramRolesRemoved} mini program role(s)` : ''}; ${c.reviews.versionsInReview} version(s) in review stay with ${c.reviews.otherReviewers} other reviewer(s)`;

  async function startSession(c: Context<AppEnv>, userId: string) {
    const sessionId = newSecret();
    const csrfToken = newSecret(18);
    await sequelize.query(
      `INSERT INTO sessions (id_hash, user_id, csrf_token, user_agent, expires_at) VALUES (:hash, :userId, :csrfToken, :ua, now() + (:ttl || ' milliseconds')::interval)`,
      { replacements: { hash: sha256(sessionId), userId, csrfToken, ua: c.req.header('user-agent')?.slice(0, 200) ?? null, ttl: String(config.sessionTtlMs) } },
    );
    setCookie(c, sessionCookie, sessionId, { httpOnly: true, sameSite: 'Lax', path: '/', secure: config.publicUrl.startsWith('https:'), maxAge: Math.floor(config.sessionTtlMs / 1000) });
    return csrfToken;
  }

  /** A developer (ISV) workspace has Developer Admins and Developers only: nobody reviews there. */
  async function checkRoleFits(workspaceId: string, role: WorkspaceRole) {
    if (role !== 'reviewer') return;
    const [ws] = await sequelize.query<{ type: string }>('SELECT type FROM workspaces WHERE id = :workspaceId', { replacements: { workspaceId }, type: QueryTypes.SELECT });
    if (ws?.type === 'developer') throw new AppError(400, 'role_not_in_developer_workspace', 'A developer workspace has Developer Admins and Developers only; reviews happen in the merchant\'s workspace', { role });
  }

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/invitations', tags: ['members'],
        summary: `Invite one or many addresses (up to ${maxInvitesPerRequest}) with a role; answers with a per-address report`,
        middleware: [requirePermission('member.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: InviteBody } }, required: true } },
        responses: { 200: json(InviteReportSchema, 'Who was invited and who was refused, and why'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { emails, role } = c.req.valid('json');
        await checkRoleFits(workspaceId, role);
        const actorId = c.get('user')!.id;
        const refused: z.infer<typeof InviteReportSchema>['refused'] = [];
        const seen = new Set<string>();
        const candidates: string[] = [];
        for (const raw of emails) {
          const email = raw.trim();
          if (!email) continue;
          if (!emailShape.safeParse(email).success) refused.push({ email, code: 'invalid_email', reason: 'not a valid email address' });
          else if (seen.has(email.toLowerCase())) refused.push({ email, code: 'duplicate', reason: 'listed more than once in this request' });
          else {
            seen.add(email.toLowerCase());
            candidates.push(email);
          }
        }
        const lower = candidates.map((e) => e.toLowerCase());
        const members = lower.length
          ? await sequelize.query<{ email: string }>(
            `SELECT lower(u.email) AS email FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = :workspaceId AND lower(u.email) IN (:lower)`,
            { replacements: { workspaceId, lower }, type: QueryTypes.SELECT },
          )
          : [];
        const memberSet = new Set(members.map((m) => m.email));
        const fresh = candidates.filter((e) => {
          if (!memberSet.has(e.toLowerCase())) return true;
          refused.push({ email: e, code: 'already_member', reason: 'already a member of this workspace' });
          return false;
        });
        const batchId = newId('batch');
        const expiresAt = new Date(Date.now() + config.accounts.invitationTtlMs);
        const planned = fresh.map((email) => ({ email, id: newId('inv') }));
        // One statement for the whole batch; the unique index on pending addresses refuses a
        // second pending invitation, even from a concurrent request.
        const inserted = planned.length
          ? ((await sequelize.query(
            `INSERT INTO invitations (id, workspace_id, email, role, status, invited_by, batch_id, expires_at, seq)
             SELECT x.id, :workspaceId, x.email, :role, 'pending', :actorId, :batchId, :expiresAt, 0 FROM unnest(ARRAY[:ids]::text[], ARRAY[:emails]::text[]) AS x(id, email)
             ON CONFLICT DO NOTHING RETURNING id`,
            { replacements: { workspaceId, role, actorId, batchId, expiresAt, ids: planned.map((p) => p.id), emails: planned.map((p) => p.email) } },
          ))[0] as { id: string }[])
          : [];
        const insertedIds = new Set(inserted.map((r) => r.id));
        const invited: { email: string; invitationId: string }[] = [];
        const toStart = planned.filter((p) => {
          if (insertedIds.has(p.id)) return true;
          refused.push({ email: p.email, code: 'already_invited', reason: 'a pending invitation for this address exists; resend it instead' });
          return false;
        });
        // Start the workflows a few dozen at a time: enough to keep Temporal busy, not a flood.
        for (let i = 0; i < toStart.length; i += 50) {
          await Promise.all(
            toStart.slice(i, i + 50).map(async (p) => {
              const input: InvitationInput = {
                invitationId: p.id, workspaceId, email: p.email, role, invitedBy: actorId, batchId,
                ttlMs: config.accounts.invitationTtlMs, reminderMs: config.accounts.invitationReminderMs,
              };
              try {
                await temporal.workflow.start(invitationWorkflowType, { workflowId: invitationWorkflowId(p.id), taskQueue: config.temporal.taskQueue, args: [input] });
                invited.push({ email: p.email, invitationId: p.id });
              } catch (err) {
                if (err instanceof WorkflowExecutionAlreadyStartedError) {
                  invited.push({ email: p.email, invitationId: p.id });
                  return;
                }
                console.error(`[api] invitation ${p.id} could not start`, (err as Error).message);
                await sequelize.query(`DELETE FROM invitations WHERE id = :id AND seq = 0`, { replacements: { id: p.id } });
                refused.push({ email: p.email, code: 'unavailable', reason: 'the invitation could not be started; try again' });
              }
            }),
          );
        }
        return c.json({ batchId, invited, refused }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/invitations', tags: ['members'], summary: 'Invitations of the workspace, newest first (filter by status)',
        middleware: [requirePermission('member.read')],
        request: { params: WorkspaceParams, query: z.object({ status: z.enum(invitationStatuses).optional(), batchId: z.string().max(100).optional(), limit: z.coerce.number().int().min(1).max(1000).default(200), cursor: z.string().max(300).optional() }) },
        responses: { 200: json(z.object({ items: z.array(InvitationSchema), counts: z.record(z.string(), z.number()), nextCursor: z.string().nullable() }), 'Invitations, a page at a time'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { status, batchId, limit, cursor } = c.req.valid('query');
        const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
        const effective = `(CASE WHEN i.status = 'pending' AND i.expires_at <= now() THEN 'expired' ELSE i.status END)`;
        const [rows, counts] = await Promise.all([
          // A batch shares one created_at: the id breaks ties, and the cursor keeps microseconds (text).
          sequelize.query<InvitationRow & { cursor_at: string }>(
            `${invitationSelect.replace(' FROM invitations i', ', i.created_at::text AS cursor_at FROM invitations i')}
             WHERE i.workspace_id = :workspaceId ${status ? `AND ${effective} = :status` : ''} ${batchId ? 'AND i.batch_id = :batchId' : ''}
             ${cursor ? 'AND (i.created_at, i.id) < (:cAt::timestamptz, :cId)' : ''}
             ORDER BY i.created_at DESC, i.id DESC LIMIT :limit + 1`,
            { replacements: { workspaceId, status: status ?? null, batchId: batchId ?? null, limit, cAt, cId }, type: QueryTypes.SELECT },
          ),
          sequelize.query<{ status: string; n: string }>(`SELECT ${effective} AS status, count(*) AS n FROM invitations i WHERE i.workspace_id = :workspaceId GROUP BY 1`, {
            replacements: { workspaceId }, type: QueryTypes.SELECT,
          }),
        ]);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return c.json({
          items: page.map(invitationOut), counts: Object.fromEntries(counts.map((r) => [r.status, Number(r.n)])),
          nextCursor: rows.length > limit && last ? encodeCursor(last.cursor_at, last.id) : null,
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/invitations/{invitationId}/resend', tags: ['members'], summary: 'Resend a pending invitation: a new link (the old one stops working) and a fresh deadline',
        middleware: [requirePermission('member.manage')], request: { params: InvitationParams }, responses: { 200: json(InvitationSchema, 'Resent'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, invitationId } = c.req.valid('param');
        const row = await findInvitation(invitationId, workspaceId);
        if (!row) throw notFound('Invitation');
        await command(row, () => temporal.workflow.getHandle(invitationWorkflowId(invitationId)).executeUpdate(resendUpdate, { args: [{ actorId: c.get('user')!.id, workspaceId }] }));
        return c.json(invitationOut((await findInvitation(invitationId, workspaceId))!), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/invitations/{invitationId}/withdraw', tags: ['members'], summary: 'Withdraw a pending invitation: its link stops working',
        middleware: [requirePermission('member.manage')], request: { params: InvitationParams }, responses: { 200: json(InvitationSchema, 'Withdrawn'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, invitationId } = c.req.valid('param');
        const row = await findInvitation(invitationId, workspaceId);
        if (!row) throw notFound('Invitation');
        await command(row, () => temporal.workflow.getHandle(invitationWorkflowId(invitationId)).executeUpdate(withdrawInvitationUpdate, { args: [{ actorId: c.get('user')!.id, workspaceId }] }));
        return c.json(invitationOut((await findInvitation(invitationId, workspaceId))!), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'patch', path: '/workspaces/{workspaceId}/invitations/{invitationId}', tags: ['members'], summary: 'Change the role of a pending invitation',
        middleware: [requirePermission('member.manage')],
        request: { params: InvitationParams, body: { content: { 'application/json': { schema: z.object({ role: z.enum(workspaceRoles) }) } }, required: true } },
        responses: { 200: json(InvitationSchema, 'Changed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, invitationId } = c.req.valid('param');
        const { role } = c.req.valid('json');
        await checkRoleFits(workspaceId, role);
        const row = await findInvitation(invitationId, workspaceId);
        if (!row) throw notFound('Invitation');
        await command(row, () => temporal.workflow.getHandle(invitationWorkflowId(invitationId)).executeUpdate(changeRoleUpdate, { args: [{ actorId: c.get('user')!.id, workspaceId, role }] }));
        return c.json(invitationOut((await findInvitation(invitationId, workspaceId))!), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/invitations/{invitationId}', tags: ['invitations'], middleware: [publicRoute], summary: 'Public: an invitation behind a link (workspace, role, whether the address has an account)',
        request: { params: z.object({ invitationId: z.string().min(1).max(100) }), query: TokenQuery },
        responses: { 200: json(PublicInvitationSchema, 'The invitation'), ...errorResponses },
      }),
      async (c) => {
        const { invitationId } = c.req.valid('param');
        const { token } = c.req.valid('query');
        const row = await invitationByToken(invitationId, token);
        const status = effectiveStatus(row);
        if (status !== 'pending') throw refuseStatus(status);
        const [[ws], [account]] = await Promise.all([
          sequelize.query<{ name: string }>('SELECT name FROM workspaces WHERE id = :id', { replacements: { id: row.workspace_id }, type: QueryTypes.SELECT }),
          sequelize.query<{ id: string }>('SELECT id FROM users WHERE lower(email) = lower(:email)', { replacements: { email: row.email }, type: QueryTypes.SELECT }),
        ]);
        return c.json({
          id: row.id, email: row.email, role: row.role, status, expiresAt: iso(row.expires_at)!, workspace: { id: row.workspace_id, name: ws?.name ?? '' },
          invitedBy: row.invited_by_name, accountExists: !!account, signedInAs: c.get('user')?.email ?? null,
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/invitations/{invitationId}/accept', tags: ['invitations'], middleware: [publicRoute],
        summary: 'Public: accept an invitation. A new account gives a name and a password; an existing one is signed in as the invited address or gives its password',
        request: { params: z.object({ invitationId: z.string().min(1).max(100) }), body: { content: { 'application/json': { schema: AcceptBody } }, required: true } },
        responses: { 200: json(z.object({ workspaceId: z.string(), userId: z.string(), accountCreated: z.boolean(), csrfToken: z.string().nullable() }), 'Accepted; signed in'), ...errorResponses },
      }),
      async (c) => {
        const { invitationId } = c.req.valid('param');
        const body = c.req.valid('json');
        const row = await invitationByToken(invitationId, body.token);
        const tokenHash = sha256(body.token);
        const signedIn = c.get('user');
        const [account] = await sequelize.query<{ id: string; email: string; password_hash: string }>('SELECT id, email, password_hash FROM users WHERE lower(email) = lower(:email)', {
          replacements: { email: row.email }, type: QueryTypes.SELECT,
        });
        const input: AcceptInput = { tokenHash };
        if (account) {
          if (signedIn?.id !== account.id) {
            if (!body.password) {
              throw signedIn
                ? new AppError(403, 'wrong_account', `This invitation is for ${row.email}, but you are signed in as ${signedIn.email}: sign out, or give the password of ${row.email}`)
                : new AppError(401, 'sign_in_required', `An account exists for ${row.email}: sign in or give its password to accept`);
            }
            if (!(await verifyPassword(body.password, account.password_hash))) throw new AppError(401, 'invalid_credentials', 'Wrong password for this address');
          }
          input.existingUserId = account.id;
        } else {
          if (!body.name || !body.password) throw new AppError(400, 'validation_failed', 'Choose your name and a password (at least 10 characters) to create your account', { fields: { ...(!body.name ? { name: ['required'] } : {}), ...(!body.password ? { password: ['required'] } : {}) } });
          // The same link always makes the same account id, so a repeated accept lands on the same account.
          input.newAccount = { userId: `usr_${tokenHash.slice(0, 24)}`, name: body.name, passwordHash: await hashPassword(body.password) };
        }
        const userId = input.existingUserId ?? input.newAccount!.userId;
        let accountCreated = false;
        try {
          const result = await command(row, () =>
            temporal.workflow.getHandle(invitationWorkflowId(invitationId)).executeUpdate(acceptUpdate, { args: [input], updateId: `accept:${tokenHash.slice(0, 32)}:${userId}` }),
          );
          accountCreated = result.accountCreated;
        } catch (err) {
          // A repeat after the workflow finished: the same account accepting again gets the same answer.
          const now = await findInvitation(invitationId);
          if (!(err instanceof AppError && err.code === 'invitation_accepted' && now?.accepted_user_id === userId)) throw err;
        }
        const csrfToken = signedIn?.id === userId ? c.get('csrfToken') : await startSession(c, userId);
        return c.json({ workspaceId: row.workspace_id, userId, accountCreated, csrfToken }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/invitations/{invitationId}/decline', tags: ['invitations'], middleware: [publicRoute], summary: 'Public: decline an invitation',
        request: { params: z.object({ invitationId: z.string().min(1).max(100) }), body: { content: { 'application/json': { schema: z.object({ token: z.string().min(10).max(200) }) } }, required: true } },
        responses: { 200: json(z.object({ status: z.enum(invitationStatuses) }), 'Declined'), ...errorResponses },
      }),
      async (c) => {
        const { invitationId } = c.req.valid('param');
        const { token } = c.req.valid('json');
        const row = await invitationByToken(invitationId, token);
        const state = await command(row, () => temporal.workflow.getHandle(invitationWorkflowId(invitationId)).executeUpdate(declineUpdate, { args: [{ tokenHash: sha256(token) }] }));
        return c.json({ status: state.status }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/members', tags: ['members'], summary: 'Members with their roles (filter by role and status)',
        middleware: [requirePermission('member.read')],
        request: { params: WorkspaceParams, query: z.object({ role: z.enum(workspaceRoles).optional(), status: z.enum(memberStatuses).optional(), q: z.string().max(100).optional() }) },
        responses: { 200: json(z.object({ items: z.array(MemberSchema), counts: z.record(z.string(), z.number()) }), 'Members'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { role, status, q } = c.req.valid('query');
        const [rows, mpRoles, counts] = await Promise.all([
          sequelize.query<{ user_id: string; name: string; email: string; role: WorkspaceRole; status: 'active' | 'blocked'; created_at: Date; updated_at: Date }>(
            `SELECT m.user_id, u.name, u.email, m.role, m.status, m.created_at, m.updated_at FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = :workspaceId ${role ? 'AND m.role = :role' : ''} ${status ? 'AND m.status = :status' : ''} ${q ? 'AND (u.name ILIKE :q OR u.email ILIKE :q)' : ''}
             ORDER BY lower(u.name), m.user_id LIMIT 2000`,
            { replacements: { workspaceId, role: role ?? null, status: status ?? null, q: q ? `%${q.replace(/[\\%_]/g, (m) => `\\${m}`)}%` : null }, type: QueryTypes.SELECT },
          ),
          sequelize.query<{ user_id: string; mini_program_id: string; name: string; role: 'owner' | 'developer' }>(
            `SELECT r.user_id, r.mini_program_id, mp.name, r.role FROM mini_program_roles r JOIN mini_programs mp ON mp.id = r.mini_program_id WHERE r.workspace_id = :workspaceId ORDER BY mp.name`,
            { replacements: { workspaceId }, type: QueryTypes.SELECT },
          ),
          sequelize.query<{ key: string; n: string }>(
            `SELECT role AS key, count(*) AS n FROM memberships WHERE workspace_id = :workspaceId GROUP BY role UNION ALL SELECT status, count(*) FROM memberships WHERE workspace_id = :workspaceId GROUP BY status`,
            { replacements: { workspaceId }, type: QueryTypes.SELECT },
          ),
        ]);
        const byUser = new Map<string, { miniProgramId: string; miniProgramName: string; role: 'owner' | 'developer' }[]>();
        for (const r of mpRoles) byUser.set(r.user_id, [...(byUser.get(r.user_id) ?? []), { miniProgramId: r.mini_program_id, miniProgramName: r.name, role: r.role }]);
        return c.json({
          items: rows.map((r) => ({ userId: r.user_id, name: r.name, email: r.email, role: r.role, status: r.status, joinedAt: iso(r.created_at)!, updatedAt: iso(r.updated_at)!, miniProgramRoles: byUser.get(r.user_id) ?? [] })),
          counts: Object.fromEntries(counts.map((r) => [r.key, Number(r.n)])),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'patch', path: '/workspaces/{workspaceId}/members/{userId}', tags: ['members'], summary: 'Change a member’s role (the last active Admin cannot be demoted)',
        middleware: [requirePermission('member.manage')],
        request: { params: MemberParams, body: { content: { 'application/json': { schema: z.object({ role: z.enum(workspaceRoles) }) } }, required: true } },
        responses: { 200: json(z.object({ userId: z.string(), role: z.enum(workspaceRoles) }), 'Changed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, userId } = c.req.valid('param');
        const { role } = c.req.valid('json');
        await checkRoleFits(workspaceId, role);
        await sequelize.transaction(async (t) => {
          const { target, isLastAdmin } = await lockMembers(t, workspaceId, userId);
          if (target.role === role) return;
          if (isLastAdmin) throw lastAdmin('be demoted');
          await sequelize.query('UPDATE memberships SET role = :role, updated_at = now() WHERE workspace_id = :workspaceId AND user_id = :userId', { replacements: { role, workspaceId, userId }, transaction: t });
          await audit(t, { workspaceId, subjectType: 'member', subjectId: userId, actorId: c.get('user')!.id, action: 'role_changed', from: target.role, to: role });
        });
        return c.json({ userId, role }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/members/{userId}/block', tags: ['members'],
        summary: 'Block a member: their role stops counting at once, their sessions end and their API tokens are revoked; answers with what was cut off',
        middleware: [requirePermission('member.manage')], request: { params: MemberParams },
        responses: { 200: json(z.object({ userId: z.string(), status: z.enum(memberStatuses), cutOff: CutOffSchema }), 'Blocked'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, userId } = c.req.valid('param');
        if (userId === c.get('user')!.id) throw new AppError(409, 'cannot_block_self', 'You cannot block yourself; use “Leave workspace” instead');
        const cut = await sequelize.transaction(async (t) => {
          const { target, isLastAdmin } = await lockMembers(t, workspaceId, userId);
          if (target.status === 'blocked') throw new AppError(409, 'wrong_state', 'This member is already blocked', { status: 'blocked' });
          if (isLastAdmin) throw lastAdmin('be blocked');
          await sequelize.query(`UPDATE memberships SET status = 'blocked', updated_at = now() WHERE workspace_id = :workspaceId AND user_id = :userId`, { replacements: { workspaceId, userId }, transaction: t });
          const cutOffNow = { ...(await cutOff(t, workspaceId, userId, target.role)), miniProgramRolesRemoved: 0 };
          await audit(t, { workspaceId, subjectType: 'member', subjectId: userId, actorId: c.get('user')!.id, action: 'blocked', from: 'active', to: 'blocked', comment: describeCutOff(cutOffNow) });
          return cutOffNow;
        });
        return c.json({ userId, status: 'blocked' as const, cutOff: cut }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/members/{userId}/unblock', tags: ['members'], summary: 'Unblock a member: their role counts again (they sign in anew)',
        middleware: [requirePermission('member.manage')], request: { params: MemberParams },
        responses: { 200: json(z.object({ userId: z.string(), status: z.enum(memberStatuses) }), 'Unblocked'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, userId } = c.req.valid('param');
        await sequelize.transaction(async (t) => {
          const { target } = await lockMembers(t, workspaceId, userId);
          if (target.status !== 'blocked') throw new AppError(409, 'wrong_state', 'This member is not blocked', { status: target.status });
          await sequelize.query(`UPDATE memberships SET status = 'active', updated_at = now() WHERE workspace_id = :workspaceId AND user_id = :userId`, { replacements: { workspaceId, userId }, transaction: t });
          await audit(t, { workspaceId, subjectType: 'member', subjectId: userId, actorId: c.get('user')!.id, action: 'unblocked', from: 'blocked', to: 'active' });
        });
        return c.json({ userId, status: 'active' as const }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/workspaces/{workspaceId}/members/{userId}', tags: ['members'],
        summary: 'Remove a member: membership and mini program roles go, their sessions end and their API tokens are revoked; answers with what was cut off',
        middleware: [requirePermission('member.manage')], request: { params: MemberParams },
        responses: { 200: json(z.object({ userId: z.string(), cutOff: CutOffSchema }), 'Removed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, userId } = c.req.valid('param');
        if (userId === c.get('user')!.id) throw new AppError(409, 'cannot_remove_self', 'To remove yourself, use “Leave workspace”');
        const cut = await sequelize.transaction(async (t) => {
          const { target, isLastAdmin } = await lockMembers(t, workspaceId, userId);
          if (isLastAdmin) throw lastAdmin('be removed');
          await sequelize.query('DELETE FROM memberships WHERE workspace_id = :workspaceId AND user_id = :userId', { replacements: { workspaceId, userId }, transaction: t });
          const [roles] = await sequelize.query('DELETE FROM mini_program_roles WHERE workspace_id = :workspaceId AND user_id = :userId RETURNING mini_program_id', { replacements: { workspaceId, userId }, transaction: t });
          const cutOffNow = { ...(await cutOff(t, workspaceId, userId, target.role)), miniProgramRolesRemoved: (roles as unknown[]).length };
          await audit(t, { workspaceId, subjectType: 'member', subjectId: userId, actorId: c.get('user')!.id, action: 'removed', from: target.status, to: null, comment: describeCutOff(cutOffNow) });
          return cutOffNow;
        });
        return c.json({ userId, cutOff: cut }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/leave', tags: ['members'], summary: 'Leave the workspace yourself (not as its last active Admin)',
        middleware: [requirePermission('workspace.read')], request: { params: WorkspaceParams },
        responses: { 200: json(z.object({ left: z.literal(true) }), 'Left'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const userId = c.get('user')!.id;
        await sequelize.transaction(async (t) => {
          const { target, isLastAdmin } = await lockMembers(t, workspaceId, userId);
          if (isLastAdmin) throw lastAdmin('leave');
          await sequelize.query('DELETE FROM memberships WHERE workspace_id = :workspaceId AND user_id = :userId', { replacements: { workspaceId, userId }, transaction: t });
          await sequelize.query('DELETE FROM mini_program_roles WHERE workspace_id = :workspaceId AND user_id = :userId', { replacements: { workspaceId, userId }, transaction: t });
          await sequelize.query('UPDATE users SET last_workspace_id = NULL WHERE id = :userId AND last_workspace_id = :workspaceId', { replacements: { workspaceId, userId }, transaction: t });
          await audit(t, { workspaceId, subjectType: 'member', subjectId: userId, actorId: userId, action: 'left', from: target.role, to: null });
        });
        return c.json({ left: true as const }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/roles', tags: ['members'], summary: 'Who owns or develops this mini program',
        middleware: [requirePermission('miniProgram.roles.read')], request: { params: MiniProgramParams },
        responses: { 200: json(z.object({ items: z.array(MiniProgramRoleSchema) }), 'Roles'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        return c.json({ items: await miniProgramRoleList(sequelize, workspaceId, miniProgramId) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'put', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/roles/{userId}', tags: ['members'], summary: 'Make a member the owner or a developer of this mini program',
        middleware: [requirePermission('miniProgram.roles.manage')],
        request: { params: MpRoleParams, body: { content: { 'application/json': { schema: z.object({ role: z.enum(miniProgramRoles) }) } }, required: true } },
        responses: { 200: json(z.object({ items: z.array(MiniProgramRoleSchema) }), 'The mini program’s roles now'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, userId } = c.req.valid('param');
        const { role } = c.req.valid('json');
        await sequelize.transaction(async (t) => {
          const [mp] = await sequelize.query('SELECT 1 FROM mini_programs WHERE id = :miniProgramId AND workspace_id = :workspaceId', { replacements: { workspaceId, miniProgramId }, type: QueryTypes.SELECT, transaction: t });
          if (!mp) throw notFound('Mini program');
          const [m] = await sequelize.query<{ status: string }>('SELECT status FROM memberships WHERE workspace_id = :workspaceId AND user_id = :userId', { replacements: { workspaceId, userId }, type: QueryTypes.SELECT, transaction: t });
          if (!m) throw notFound('Member');
          const [[before]] = (await sequelize.query('SELECT role FROM mini_program_roles WHERE mini_program_id = :miniProgramId AND user_id = :userId', { replacements: { miniProgramId, userId }, transaction: t })) as [{ role: string }[], unknown];
          await sequelize.query(
            `INSERT INTO mini_program_roles (workspace_id, mini_program_id, user_id, role, granted_by) VALUES (:workspaceId, :miniProgramId, :userId, :role, :actorId)
             ON CONFLICT (mini_program_id, user_id) DO UPDATE SET role = EXCLUDED.role, granted_by = EXCLUDED.granted_by`,
            { replacements: { workspaceId, miniProgramId, userId, role, actorId: c.get('user')!.id }, transaction: t },
          );
          if (before?.role !== role) await audit(t, { workspaceId, subjectType: 'mini_program', subjectId: miniProgramId, actorId: c.get('user')!.id, action: 'member_role_set', from: before?.role ?? null, to: role, comment: `member ${userId}` });
        });
        return c.json({ items: await miniProgramRoleList(sequelize, workspaceId, miniProgramId) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/roles/{userId}', tags: ['members'], summary: 'Take a member’s role on this mini program away',
        middleware: [requirePermission('miniProgram.roles.manage')], request: { params: MpRoleParams },
        responses: { 200: json(z.object({ items: z.array(MiniProgramRoleSchema) }), 'The mini program’s roles now'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, userId } = c.req.valid('param');
        await sequelize.transaction(async (t) => {
          const [rows] = await sequelize.query('DELETE FROM mini_program_roles WHERE workspace_id = :workspaceId AND mini_program_id = :miniProgramId AND user_id = :userId RETURNING role', {
            replacements: { workspaceId, miniProgramId, userId }, transaction: t,
          });
          const removed = (rows as { role: string }[])[0];
          if (!removed) throw notFound('Mini program role');
          await audit(t, { workspaceId, subjectType: 'mini_program', subjectId: miniProgramId, actorId: c.get('user')!.id, action: 'member_role_removed', from: removed.role, to: null, comment: `member ${userId}` });
        });
        return c.json({ items: await miniProgramRoleList(sequelize, workspaceId, miniProgramId) }, 200);
      },
    );
}

/** The owners and developers of a mini program, with names; shared with the mini program detail. */
export async function miniProgramRoleList(sequelize: ApiDeps['sequelize'], workspaceId: string, miniProgramId: string) {
  const rows = await sequelize.query<{ user_id: string; name: string; email: string; role: 'owner' | 'developer'; workspace_role: WorkspaceRole | null; status: string | null }>(
    `SELECT r.user_id, u.name, u.email, r.role, m.role AS workspace_role, m.status FROM mini_program_roles r JOIN users u ON u.id = r.user_id
     LEFT JOIN memberships m ON m.workspace_id = r.workspace_id AND m.user_id = r.user_id
     WHERE r.workspace_id = :workspaceId AND r.mini_program_id = :miniProgramId ORDER BY r.role DESC, lower(u.name)`,
    { replacements: { workspaceId, miniProgramId }, type: QueryTypes.SELECT },
  );
  return rows.map((r) => ({ userId: r.user_id, name: r.name, email: r.email, role: r.role, workspaceRole: r.workspace_role, blocked: r.status === 'blocked' }));
}
