import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { simpleParser } from 'mailparser';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { QueryTypes } from 'sequelize';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import {
  applicationStatusQuery, applicationStatuses, applicationWorkflowId, approveApplicationUpdate, denyApplicationUpdate,
  type AccountApplicationInput, type ApplicationState,
} from '../../workflows/contracts/account-application.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { publicRoute, requirePlatformPermission } from '../middleware.js';
import { newSecret, sha256 } from '../passwords.js';
import { errorResponses, json } from '../schemas.js';

const ApplyBody = z
  .object({
    company: z.string().trim().min(2, 'at least 2 characters').max(120),
    contactName: z.string().trim().min(2, 'at least 2 characters').max(120),
    email: z.email('a valid email address').max(254),
    intendedUse: z.string().trim().min(10, 'tell us in a sentence or two (at least 10 characters)').max(2000),
  })
  .openapi('ApplyRequest');

const ApplicationSchema = z
  .object({
    id: z.string(), company: z.string(), contactName: z.string(), email: z.string(), intendedUse: z.string(), status: z.enum(applicationStatuses),
    decidedBy: z.object({ id: z.string(), name: z.string() }).nullable(), reason: z.string().nullable(),
    workspace: z.object({ id: z.string(), name: z.string(), code: z.string() }).nullable(), invitationId: z.string().nullable(),
    createdAt: z.string(), expiresAt: z.string(), remindedAt: z.string().nullable(), decidedAt: z.string().nullable(),
  })
  .openapi('AccountApplication');

const ApplicationStatusSchema = z
  .object({
    id: z.string(), company: z.string(), contactName: z.string(), status: z.enum(applicationStatuses), reason: z.string().nullable(),
    workspaceName: z.string().nullable(), createdAt: z.string(), expiresAt: z.string(), decidedAt: z.string().nullable(),
  })
  .openapi('AccountApplicationStatus');

const MailSummary = z.object({ id: z.string(), subject: z.string(), from: z.string(), to: z.array(z.string()), date: z.string() }).openapi('DevMailSummary');
const MailDetail = MailSummary.extend({ text: z.string(), html: z.string().nullable() }).openapi('DevMail');

interface ApplicationRow {
  id: string;
  company: string;
  contact_name: string;
  email: string;
  intended_use: string;
  status: (typeof applicationStatuses)[number];
  status_token_hash: string;
  decided_by: string | null;
  decided_by_name: string | null;
  reason: string | null;
  workspace_id: string | null;
  workspace_name: string | null;
  workspace_code: string | null;
  invitation_id: string | null;
  created_at: Date;
  expires_at: Date;
  reminded_at: Date | null;
  decided_at: Date | null;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
const sameHash = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/** Account applications (public apply and status, the operators' inbox) and the dev mailbox. */
export function accountRoutes({ sequelize, temporal, config }: ApiDeps) {
  const selectApplications = `SELECT a.*, u.name AS decided_by_name, w.name AS workspace_name, w.code AS workspace_code
    FROM account_applications a LEFT JOIN users u ON u.id = a.decided_by LEFT JOIN workspaces w ON w.id = a.workspace_id`;

  async function loadApplication(applicationId: string): Promise<ApplicationRow | null> {
    const [row] = await sequelize.query<ApplicationRow>(`${selectApplications} WHERE a.id = :applicationId`, { replacements: { applicationId }, type: QueryTypes.SELECT });
    return row ?? null;
  }

  /** The read model, overlaid with the workflow's answer when a command just changed it (the row follows shortly). */
  async function present(row: ApplicationRow, state?: ApplicationState): Promise<z.infer<typeof ApplicationSchema>> {
    let decidedBy = row.decided_by ? { id: row.decided_by, name: row.decided_by_name ?? row.decided_by } : null;
    if (state?.decidedBy && !decidedBy) {
      const [u] = await sequelize.query<{ name: string }>('SELECT name FROM users WHERE id = :id', { replacements: { id: state.decidedBy }, type: QueryTypes.SELECT });
      decidedBy = { id: state.decidedBy, name: u?.name ?? state.decidedBy };
    }
    const workspace = state?.workspaceId
      ? { id: state.workspaceId, name: state.workspaceName ?? '', code: state.workspaceCode ?? '' }
      : row.workspace_id ? { id: row.workspace_id, name: row.workspace_name ?? '', code: row.workspace_code ?? '' } : null;
    return {
      id: row.id, company: row.company, contactName: row.contact_name, email: row.email, intendedUse: row.intended_use,
      status: state?.status ?? row.status, decidedBy, reason: state?.reason ?? row.reason, workspace, invitationId: state?.invitationId ?? row.invitation_id,
      createdAt: iso(row.created_at)!, expiresAt: iso(row.expires_at)!, remindedAt: iso(row.reminded_at),
      decidedAt: iso(row.decided_at) ?? (state && state.status !== 'pending' ? new Date().toISOString() : null),
    };
  }

  /** A command that reached a finished workflow (decided, its row not yet updated): 409 with the final state. */
  async function alreadyDecided(err: unknown, applicationId: string, action: string): Promise<unknown> {
    if (!(err instanceof WorkflowNotFoundError) && !(err instanceof Error && /already completed/i.test(err.message))) return err;
    const final = await temporal.workflow.getHandle(applicationWorkflowId(applicationId)).result().catch(() => null) as ApplicationState | null;
    const status = final?.status ?? 'decided';
    return new AppError(409, 'wrong_state', `cannot ${action} an application that is ${status}`, { status });
  }

  /** Local mode only: the catcher's directory. Production answers 404, as if the routes did not exist. */
  const mailDir = () => {
    if (config.mode === 'production') throw new AppError(404, 'not_found', 'No dev mailbox in production mode');
    return path.join(config.dataDir, 'mail');
  };
  const mailIdPattern = /^[A-Za-z0-9._-]+\.eml$/;

  const ApplicationParams = z.object({ applicationId: z.string().min(1).max(100) });

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'post', path: '/applications', tags: ['onboarding'], summary: 'Apply for an account (public); answers with the status link', middleware: [publicRoute],
        request: { body: { content: { 'application/json': { schema: ApplyBody } }, required: true } },
        responses: { 201: json(z.object({ id: z.string(), status: z.literal('pending'), statusUrl: z.string() }), 'Received'), 400: errorResponses[400] },
      }),
      async (c) => {
        const body = c.req.valid('json');
        const id = newId('app');
        const token = newSecret();
        const ttl = config.accounts.applicationTtlMs;
        await sequelize.query(
          `INSERT INTO account_applications (id, company, contact_name, email, intended_use, status, status_token_hash, expires_at)
           VALUES (:id, :company, :contactName, :email, :intendedUse, 'pending', :hash, now() + (:ttl || ' milliseconds')::interval)`,
          { replacements: { id, ...body, hash: sha256(token), ttl: String(ttl) } },
        );
        const input: AccountApplicationInput = {
          applicationId: id, company: body.company, contactName: body.contactName, email: body.email, intendedUse: body.intendedUse,
          reminderMs: config.accounts.applicationReminderMs, ttlMs: ttl,
          invitation: { ttlMs: config.accounts.invitationTtlMs, reminderMs: config.accounts.invitationReminderMs },
        };
        try {
          await temporal.workflow.start('accountApplication', { workflowId: applicationWorkflowId(id), taskQueue: config.temporal.taskQueue, args: [input] });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
            // No process behind it: the row would sit pending forever.
            await sequelize.query('DELETE FROM account_applications WHERE id = :id', { replacements: { id } });
            throw err;
          }
        }
        return c.json({ id, status: 'pending' as const, statusUrl: `/applications/${id}?token=${token}` }, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/applications/{applicationId}/status', tags: ['onboarding'], summary: 'The status of an application, for the applicant (token from the status link)', middleware: [publicRoute],
        request: { params: ApplicationParams, query: z.object({ token: z.string().min(1).max(200) }) },
        responses: { 200: json(ApplicationStatusSchema, 'Status'), 404: errorResponses[404] },
      }),
      async (c) => {
        const { applicationId } = c.req.valid('param');
        const { token } = c.req.valid('query');
        const row = await loadApplication(applicationId);
        // A wrong token and an unknown id look the same.
        if (!row || !sameHash(row.status_token_hash, sha256(token))) throw notFound('Application');
        return c.json({
          id: row.id, company: row.company, contactName: row.contact_name, status: row.status, reason: row.reason, workspaceName: row.workspace_name,
          createdAt: iso(row.created_at)!, expiresAt: iso(row.expires_at)!, decidedAt: iso(row.decided_at),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/platform/applications', tags: ['onboarding'], summary: 'Account applications, newest first (operators)', middleware: [requirePlatformPermission('platform.applications')],
        request: { query: z.object({ status: z.enum(applicationStatuses).optional(), limit: z.coerce.number().int().min(1).max(100).default(50), cursor: z.string().max(200).optional() }) },
        responses: { 200: json(z.object({ items: z.array(ApplicationSchema), nextCursor: z.string().nullable(), counts: z.record(z.string(), z.number()) }), 'Applications'), 403: errorResponses[403] },
      }),
      async (c) => {
        const { status, limit, cursor } = c.req.valid('query');
        let after: { at: string; id: string } | null = null;
        if (cursor) {
          try {
            after = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { at: string; id: string };
            if (typeof after.at !== 'string' || typeof after.id !== 'string' || Number.isNaN(Date.parse(after.at))) throw new Error('bad cursor');
          } catch {
            throw new AppError(400, 'validation_failed', 'cursor: not a cursor from this list', { fields: { cursor: ['not a cursor from this list'] } });
          }
        }
        const rows = await sequelize.query<ApplicationRow>(
          `${selectApplications} WHERE (:status::text IS NULL OR a.status = :status) AND (:afterAt::timestamptz IS NULL OR (a.created_at, a.id) < (:afterAt::timestamptz, :afterId))
           ORDER BY a.created_at DESC, a.id DESC LIMIT :limit`,
          { replacements: { status: status ?? null, afterAt: after?.at ?? null, afterId: after?.id ?? '', limit: limit + 1 }, type: QueryTypes.SELECT },
        );
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        const nextCursor = rows.length > limit && last ? Buffer.from(JSON.stringify({ at: iso(last.created_at), id: last.id })).toString('base64url') : null;
        const countRows = await sequelize.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM account_applications GROUP BY status', { type: QueryTypes.SELECT });
        const counts = Object.fromEntries(applicationStatuses.map((s) => [s, countRows.find((r) => r.status === s)?.n ?? 0]));
        return c.json({ items: await Promise.all(page.map((r) => present(r))), nextCursor, counts }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/platform/applications/{applicationId}/approve', tags: ['onboarding'],
        summary: 'Approve: creates the workspace and invites the applicant as its Admin (operators)', middleware: [requirePlatformPermission('platform.applications')],
        request: { params: ApplicationParams },
        responses: { 200: json(ApplicationSchema, 'Approved'), 403: errorResponses[403], 404: errorResponses[404], 409: errorResponses[409] },
      }),
      async (c) => {
        const { applicationId } = c.req.valid('param');
        const row = await loadApplication(applicationId);
        if (!row) throw notFound('Application');
        if (row.status !== 'pending') throw new AppError(409, 'wrong_state', `cannot approve an application that is ${row.status}`, { status: row.status });
        const key = c.req.header('idempotency-key');
        const state = await temporal.workflow.getHandle(applicationWorkflowId(applicationId)).executeUpdate(approveApplicationUpdate, {
          args: [{ actorId: c.get('user')!.id }], updateId: key ? `${c.get('user')!.id}:approve:${key.slice(0, 200)}` : undefined,
        }).catch(async (err: unknown) => {
          // A finished workflow (decided or expired) takes no more commands: say which state it is in.
          throw await alreadyDecided(err, applicationId, 'approve');
        });
        return c.json(await present(row, state), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/platform/applications/{applicationId}/deny', tags: ['onboarding'],
        summary: 'Deny with a reason, which is mailed to the applicant (operators)', middleware: [requirePlatformPermission('platform.applications')],
        request: { params: ApplicationParams, body: { content: { 'application/json': { schema: z.object({ reason: z.string().trim().min(3, 'tell the applicant why (at least 3 characters)').max(2000) }) } }, required: true } },
        responses: { 200: json(ApplicationSchema, 'Denied'), 400: errorResponses[400], 403: errorResponses[403], 404: errorResponses[404], 409: errorResponses[409] },
      }),
      async (c) => {
        const { applicationId } = c.req.valid('param');
        const { reason } = c.req.valid('json');
        const row = await loadApplication(applicationId);
        if (!row) throw notFound('Application');
        if (row.status !== 'pending') throw new AppError(409, 'wrong_state', `cannot deny an application that is ${row.status}`, { status: row.status });
        const key = c.req.header('idempotency-key');
        const state = await temporal.workflow.getHandle(applicationWorkflowId(applicationId)).executeUpdate(denyApplicationUpdate, {
          args: [{ actorId: c.get('user')!.id, reason }], updateId: key ? `${c.get('user')!.id}:deny:${key.slice(0, 200)}` : undefined,
        }).catch(async (err: unknown) => {
          throw await alreadyDecided(err, applicationId, 'deny');
        });
        return c.json(await present(row, state), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/platform/applications/{applicationId}', tags: ['onboarding'], summary: 'One application with its live state (operators)',
        middleware: [requirePlatformPermission('platform.applications')], request: { params: ApplicationParams },
        responses: { 200: json(ApplicationSchema, 'Application'), 404: errorResponses[404] },
      }),
      async (c) => {
        const { applicationId } = c.req.valid('param');
        const row = await loadApplication(applicationId);
        if (!row) throw notFound('Application');
        const state = row.status === 'pending' ? await temporal.workflow.getHandle(applicationWorkflowId(applicationId)).query(applicationStatusQuery).catch(() => undefined) : undefined;
        return c.json(await present(row, state), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/dev/mail', tags: ['dev'], summary: 'Mails caught by the local mail catcher, newest first (development and test modes only)', middleware: [publicRoute],
        responses: { 200: json(z.object({ items: z.array(MailSummary) }), 'Mails'), 404: errorResponses[404] },
      }),
      async (c) => {
        const dir = mailDir();
        const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => mailIdPattern.test(n));
        const files = await Promise.all(names.map(async (n) => ({ n, mtime: (await stat(path.join(dir, n))).mtimeMs })));
        files.sort((a, b) => b.mtime - a.mtime || b.n.localeCompare(a.n));
        const items = await Promise.all(
          files.slice(0, 200).map(async ({ n, mtime }) => {
            const m = await simpleParser(await readFile(path.join(dir, n)), { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
            return { id: n, subject: m.subject ?? '(no subject)', from: m.from?.text ?? '', to: addresses(m.to), date: (m.date ?? new Date(mtime)).toISOString() };
          }),
        );
        return c.json({ items }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/dev/mail/{mailId}', tags: ['dev'], summary: 'One caught mail with its text and HTML parts (development and test modes only)', middleware: [publicRoute],
        request: { params: z.object({ mailId: z.string().regex(mailIdPattern, 'a mail id from the list') }) },
        responses: { 200: json(MailDetail, 'Mail'), 404: errorResponses[404] },
      }),
      async (c) => {
        const dir = mailDir();
        const { mailId } = c.req.valid('param');
        const raw = await readFile(path.join(dir, path.basename(mailId))).catch(() => null);
        if (!raw) throw notFound('Mail');
        const m = await simpleParser(raw, { skipImageLinks: true });
        return c.json({
          id: mailId, subject: m.subject ?? '(no subject)', from: m.from?.text ?? '', to: addresses(m.to), date: (m.date ?? new Date()).toISOString(),
          text: m.text ?? '', html: typeof m.html === 'string' ? m.html : null,
        }, 200);
      },
    );
}

function addresses(to: import('mailparser').AddressObject | import('mailparser').AddressObject[] | undefined): string[] {
  if (!to) return [];
  return (Array.isArray(to) ? to : [to]).flatMap((a) => a.value.map((v) => v.address ?? v.name));
}
