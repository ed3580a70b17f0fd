import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { QueryTypes, type Transaction } from 'sequelize';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { can, workspaceRoles, type Permission, type WorkspaceRole } from '../../lib/permissions.js';
import { pipelineWords } from '../../lib/pipeline-words.js';
import {
  pipelineKinds, releaseStatuses, type Approval, type PipelineKind, type Rejection, type ReleaseState, type ReleaseStatus,
} from '../../workflows/contracts/release.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission, requireUser } from '../middleware.js';
import { userNames } from '../queries.js';
import { WorkspaceParams, errorResponses, json } from '../schemas.js';
import { stateFromRow } from './versions.js';

/** Workspace roles holding a permission, read from the one table (never listed by hand). */
const rolesWith = (permission: Permission): WorkspaceRole[] => workspaceRoles.filter((r) => can(r, permission));

// ───────────── Schemas ─────────────

const person = z.object({ id: z.string(), name: z.string() });
const ListQuery = z.object({
  workspaceId: z.string().max(100).optional(),
  miniProgramId: z.string().max(100).optional(),
  status: z.enum(releaseStatuses).optional(),
  kind: z.enum(pipelineKinds).optional(),
  minAgeHours: z.coerce.number().min(0).max(24 * 365).optional().describe('only submissions that have waited (since review was requested) at least this long'),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(300).optional(),
});
const InboxQuery = ListQuery.extend({ view: z.enum(['waiting', 'decided']).default('waiting') });

const ReviewRowSchema = z
  .object({
    pipelineId: z.string(), kind: z.enum(pipelineKinds), status: z.enum(releaseStatuses),
    workspace: person, miniProgram: z.object({ id: z.string(), name: z.string(), icon: z.string().nullable() }),
    versionId: z.string(), version: z.string(), hotfix: z.boolean(), reason: z.string().nullable(),
    submitter: person, submittedAt: z.string(), reviewRequestedAt: z.string().nullable(),
    waitedMs: z.number().nullable().describe('how long the review has waited (until now, or until it was decided)'),
    slaDueAt: z.string().nullable(), overdue: z.boolean(), remindedAt: z.string().nullable(), escalatedAt: z.string().nullable(),
    approvals: z.object({ count: z.number(), required: z.number(), by: z.array(person) }),
    myDecision: z.enum(['approved', 'rejected']).nullable(), myDecisionAt: z.string().nullable(),
    rejection: z.object({ by: person, reasonCode: z.string(), reasonLabel: z.string(), comment: z.string() }).nullable(),
    waitingWords: z.string(), consoleUrl: z.string(),
  })
  .openapi('ReviewRow');
const Counts = z.object({ waiting: z.number(), overdue: z.number() }).describe('what waits on the caller, across their workspaces (not filtered)');
const ReviewPage = z.object({ items: z.array(ReviewRowSchema), nextCursor: z.string().nullable(), counts: Counts }).openapi('ReviewPage');

const SettingsSchema = z
  .object({
    requiredApprovals: z.number(), rollbackNeedsReview: z.boolean(), offlineNeedsReview: z.boolean(),
    updatedBy: person.nullable(), updatedAt: z.string().nullable(),
    approvers: z.array(z.object({ id: z.string(), name: z.string(), role: z.enum(workspaceRoles) })).describe('members whose role may approve'),
    warnings: z.array(z.string()),
  })
  .openapi('ReleaseSettings');
const SettingsBody = z
  .object({
    requiredApprovals: z.number().int('a whole number').min(1, 'at least 1').max(10, 'at most 10').optional().describe('distinct reviewers who must approve (the submitter never counts)'),
    rollbackNeedsReview: z.boolean().optional(),
    offlineNeedsReview: z.boolean().optional(),
  })
  .strict()
  .openapi('ReleaseSettingsChange');

const ReasonSchema = z
  .object({ id: z.string(), code: z.string(), label: z.string(), description: z.string(), builtin: z.boolean(), archived: z.boolean(), createdAt: z.string() })
  .openapi('RejectReason');
const ReasonQuery = z.object({ includeArchived: z.enum(['true', 'false']).optional() });
const NewReason = z
  .object({
    code: z.string().trim().regex(/^[a-z][a-z0-9_]{1,39}$/, '2–40 characters: lower-case letters, digits and _ , starting with a letter'),
    label: z.string().trim().min(1, 'give it a label').max(120),
    description: z.string().trim().max(500).optional().default(''),
  })
  .strict()
  .openapi('NewRejectReason');
const ReasonChange = z
  .object({ label: z.string().trim().min(1, 'give it a label').max(120).optional(), description: z.string().trim().max(500).optional(), archived: z.boolean().optional() })
  .strict()
  .openapi('RejectReasonChange');
const ReasonParams = WorkspaceParams.extend({ reasonId: z.string().min(1).max(100) });

// ───────────── Rows ─────────────

interface PipelineDbRow {
  id: string; kind: PipelineKind; workspace_id: string; workspace_name: string; mini_program_id: string; mp_name: string; mp_icon: string | null;
  version_id: string; version: string; status: ReleaseStatus; hotfix: boolean; submitted_by: string; submitter_name: string | null; submitted_at: Date;
  reason: string | null; baseline_version_id: string | null; review_requested_at: Date | null; sla_due_at: Date | null; reminded_at: Date | null;
  escalated_at: Date | null; required_approvals: number; approvals: Approval[] | null; rejection: Rejection | null; decided_by: string | null;
  decided_at: Date | null; released_at: Date | null; rollout: ReleaseState['rollout']; stuck: ReleaseState['stuck']; waiting_for: string; seq: number;
  updated_at: Date; sort_at: string; my_at: Date | null;
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
/** A timestamp as text with microseconds, for cursors (compared back as timestamptz). */
const isoText = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** The approvals inbox, my requests, the workspace's review policy and reject reasons. */
export function reviewRoutes(deps: ApiDeps) {
  const { sequelize, config } = deps;
  const inboxRoles = rolesWith('review.inbox');
  const approverRoles = rolesWith('version.approve');

  async function audit(t: Transaction, a: { workspaceId: string; actorId: string; action: string; from?: string | null; to?: string | null; comment: string }) {
    await sequelize.query(
      `INSERT INTO audit_log (dedupe_key, workspace_id, subject_type, subject_id, actor_id, action, from_state, to_state, comment, at)
       VALUES (:key, :workspaceId, 'workspace', :workspaceId, :actorId, :action, :from, :to, :comment, now())`,
      { replacements: { key: newId('aud'), from: null, to: null, ...a }, transaction: t },
    );
  }

  /** Rows shaped for the lists, with names and words; `me` marks the caller's own decision. */
  async function rowsOut(rows: PipelineDbRow[], me: string) {
    const ids = new Set<string>();
    for (const r of rows) {
      for (const a of r.approvals ?? []) ids.add(a.actorId);
      if (r.rejection) ids.add(r.rejection.actorId);
      if (r.decided_by) ids.add(r.decided_by);
      ids.add(r.submitted_by);
    }
    const names = Object.fromEntries(await userNames(sequelize, [...ids]));
    const now = new Date();
    return rows.map((r) => {
      const approvals = r.approvals ?? [];
      const requested = r.review_requested_at ? new Date(r.review_requested_at).getTime() : null;
      const stoppedAt = r.status === 'in_review' ? now.getTime() : (r.decided_at ?? r.updated_at) ? new Date((r.decided_at ?? r.updated_at)!).getTime() : now.getTime();
      const due = r.sla_due_at ? new Date(r.sla_due_at).getTime() : null;
      const state = stateFromRow(r, []);
      const mine = r.rejection?.actorId === me ? 'rejected' : approvals.some((a) => a.actorId === me) ? 'approved' : null;
      const base = `/w/${encodeURIComponent(r.workspace_id)}/mini-programs/${encodeURIComponent(r.mini_program_id)}`;
      return {
        pipelineId: r.id, kind: r.kind, status: r.status,
        workspace: { id: r.workspace_id, name: r.workspace_name }, miniProgram: { id: r.mini_program_id, name: r.mp_name, icon: r.mp_icon },
        versionId: r.version_id, version: r.version, hotfix: r.hotfix, reason: r.reason,
        submitter: { id: r.submitted_by, name: r.submitter_name ?? 'unknown' }, submittedAt: iso(r.submitted_at)!, reviewRequestedAt: iso(r.review_requested_at),
        waitedMs: requested === null ? null : Math.max(0, stoppedAt - requested),
        slaDueAt: iso(r.sla_due_at), overdue: due !== null && stoppedAt > due && requested !== null,
        remindedAt: iso(r.reminded_at), escalatedAt: iso(r.escalated_at),
        approvals: { count: approvals.length, required: r.required_approvals, by: approvals.map((a) => ({ id: a.actorId, name: names[a.actorId] ?? 'unknown' })) },
        myDecision: mine as 'approved' | 'rejected' | null, myDecisionAt: iso(r.my_at),
        rejection: r.rejection ? { by: { id: r.rejection.actorId, name: names[r.rejection.actorId] ?? 'unknown' }, reasonCode: r.rejection.reasonCode, reasonLabel: r.rejection.reasonLabel, comment: r.rejection.comment } : null,
        waitingWords: pipelineWords(state, { names, now, health: config.release.health }),
        consoleUrl: r.kind === 'offline' ? base : `${base}/versions/${encodeURIComponent(r.version_id)}`,
      };
    });
  }

  /**
   * One list query over pipelines with the filters every list shares. `scope` is the list's own
   * WHERE (who it is for); `sortCol` its order key, ascending or descending, paged by (key, id).
   */
  async function listPipelines(o: {
    scope: string; sortCol: string; dir: 'ASC' | 'DESC'; roles: readonly string[]; q: z.infer<typeof ListQuery>; me: string;
  }) {
    const { q } = o;
    const where = [o.scope];
    const replacements: Record<string, unknown> = { me: o.me, mine: JSON.stringify([{ actorId: o.me }]), roles: o.roles, limit: q.limit + 1 };
    if (q.workspaceId) { where.push('p.workspace_id = :workspaceId'); replacements.workspaceId = q.workspaceId; }
    if (q.miniProgramId) { where.push('p.mini_program_id = :miniProgramId'); replacements.miniProgramId = q.miniProgramId; }
    if (q.status) { where.push('p.status = :status'); replacements.status = q.status; }
    if (q.kind) { where.push('p.kind = :kind'); replacements.kind = q.kind; }
    if (q.minAgeHours !== undefined) {
      where.push(`COALESCE(p.review_requested_at, p.submitted_at) <= now() - (CAST(:minAgeHours AS double precision) * interval '1 hour')`);
      replacements.minAgeHours = q.minAgeHours;
    }
    if (q.cursor) {
      const [at, id] = decodeCursor(q.cursor);
      where.push(`(b.sort_key, b.id) ${o.dir === 'ASC' ? '>' : '<'} (CAST(:cursorAt AS timestamptz), :cursorId)`);
      replacements.cursorAt = at;
      replacements.cursorId = id;
    }
    const myAt = `CASE WHEN p.rejection->>'actorId' = :me THEN CAST(p.rejection->>'at' AS timestamptz)
      ELSE (SELECT max(CAST(a->>'at' AS timestamptz)) FROM jsonb_array_elements(p.approvals) a WHERE a->>'actorId' = :me) END`;
    // The pipeline's columns plus its order key, so the keyset condition can name it.
    const rows = await sequelize.query<PipelineDbRow>(
      `SELECT b.*, ${isoText('b.sort_key')} AS sort_at FROM (
         SELECT p.*, w.name AS workspace_name, m.name AS mp_name, m.icon AS mp_icon, su.name AS submitter_name, ${myAt} AS my_at, ${o.sortCol.replace(/MY_AT/g, myAt)} AS sort_key
         FROM pipelines p
         JOIN memberships ms ON ms.workspace_id = p.workspace_id AND ms.user_id = :me AND ms.status = 'active' AND ms.role IN (:roles)
         JOIN workspaces w ON w.id = p.workspace_id
         JOIN mini_programs m ON m.id = p.mini_program_id
         LEFT JOIN users su ON su.id = p.submitted_by
       ) b
       WHERE ${where.join(' AND ').replace(/\bp\./g, 'b.')}
       ORDER BY b.sort_key ${o.dir}, b.id ${o.dir}
       LIMIT :limit`,
      { replacements, type: QueryTypes.SELECT },
    );
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return { items: await rowsOut(page, o.me), nextCursor: more && last ? encodeCursor(last.sort_at, last.id) : null };
  }

  /** What waits on the caller as a reviewer, unfiltered: the nav badge's numbers. */
  async function counts(me: string) {
    const [row] = await sequelize.query<{ waiting: string; overdue: string }>(
      `SELECT count(*) AS waiting, count(*) FILTER (WHERE p.sla_due_at < now()) AS overdue
       FROM pipelines p JOIN memberships ms ON ms.workspace_id = p.workspace_id AND ms.user_id = :me AND ms.status = 'active' AND ms.role IN (:roles)
       WHERE p.status = 'in_review' AND p.submitted_by <> :me AND NOT p.approvals @> CAST(:mine AS jsonb)`,
      { replacements: { me, roles: inboxRoles, mine: JSON.stringify([{ actorId: me }]) }, type: QueryTypes.SELECT },
    );
    return { waiting: Number(row?.waiting ?? 0), overdue: Number(row?.overdue ?? 0) };
  }

  /** Members whose role may approve (active memberships only). */
  async function approvers(workspaceId: string) {
    return sequelize.query<{ id: string; name: string; role: WorkspaceRole }>(
      `SELECT u.id, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id
       WHERE m.workspace_id = :workspaceId AND m.status = 'active' AND m.role IN (:roles) ORDER BY u.name, u.id`,
      { replacements: { workspaceId, roles: approverRoles }, type: QueryTypes.SELECT },
    );
  }

  async function settings(workspaceId: string) {
    const [[row], people] = await Promise.all([
      sequelize.query<{ required_approvals: number; rollback_needs_review: boolean; offline_needs_review: boolean; updated_by: string | null; updated_by_name: string | null; updated_at: Date }>(
        `SELECT s.required_approvals, s.rollback_needs_review, s.offline_needs_review, s.updated_by, u.name AS updated_by_name, s.updated_at
         FROM workspace_release_settings s LEFT JOIN users u ON u.id = s.updated_by WHERE s.workspace_id = :workspaceId`,
        { replacements: { workspaceId }, type: QueryTypes.SELECT },
      ),
      approvers(workspaceId),
    ]);
    const requiredApprovals = row?.required_approvals ?? 1;
    const warnings: string[] = [];
    const names = people.map((p) => p.name).join(', ');
    if (people.length < requiredApprovals) {
      warnings.push(`only ${people.length} member${people.length === 1 ? '' : 's'} can approve${people.length ? `: ${names}` : ''}; no submission can get ${requiredApprovals} approvals until more Reviewers or Admins join`);
    } else if (people.length === requiredApprovals) {
      warnings.push(`exactly ${people.length} member${people.length === 1 ? '' : 's'} can approve (${names}): a submission by one of them cannot get ${requiredApprovals} approval${requiredApprovals === 1 ? '' : 's'}, since the submitter never counts`);
    }
    return {
      requiredApprovals, rollbackNeedsReview: row?.rollback_needs_review ?? false, offlineNeedsReview: row?.offline_needs_review ?? true,
      updatedBy: row?.updated_by ? { id: row.updated_by, name: row.updated_by_name ?? 'unknown' } : null, updatedAt: iso(row?.updated_at ?? null),
      approvers: people, warnings,
    };
  }

  const reasonOut = (r: { id: string; workspace_id: string | null; code: string; label: string; description: string; archived: boolean; created_at: Date }) => ({
    id: r.id, code: r.code, label: r.label, description: r.description, builtin: r.workspace_id === null, archived: r.archived, createdAt: iso(r.created_at)!,
  });

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/me/reviews', tags: ['reviews'],
        summary: 'The approvals inbox: submissions waiting on the caller as a reviewer (oldest first), or decided by them (newest first)',
        middleware: [requireUser] as const, request: { query: InboxQuery },
        responses: { 200: json(ReviewPage, 'A page of reviews'), ...errorResponses },
      }),
      async (c) => {
        const q = c.req.valid('query');
        const me = c.get('user')!.id;
        const list = q.view === 'waiting'
          ? listPipelines({
            q, me, roles: inboxRoles, dir: 'ASC', sortCol: 'COALESCE(p.review_requested_at, p.submitted_at)',
            scope: `p.status = 'in_review' AND p.submitted_by <> :me AND NOT p.approvals @> CAST(:mine AS jsonb)`,
          })
          : listPipelines({
            q, me, roles: inboxRoles, dir: 'DESC', sortCol: 'COALESCE(MY_AT, p.updated_at)',
            scope: `(p.approvals @> CAST(:mine AS jsonb) OR p.rejection->>'actorId' = :me)`,
          });
        const [page, n] = await Promise.all([list, counts(me)]);
        return c.json({ ...page, counts: n }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/me/requests', tags: ['reviews'],
        summary: 'My requests: everything the caller submitted (releases, rollbacks, take-offline requests), newest first, with what each waits for',
        middleware: [requireUser] as const, request: { query: ListQuery },
        responses: { 200: json(ReviewPage, 'A page of requests'), ...errorResponses },
      }),
      async (c) => {
        const q = c.req.valid('query');
        const me = c.get('user')!.id;
        const [page, n] = await Promise.all([
          listPipelines({ q, me, roles: workspaceRoles, dir: 'DESC', sortCol: 'p.submitted_at', scope: 'p.submitted_by = :me' }),
          counts(me),
        ]);
        return c.json({ ...page, counts: n }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/release-settings', tags: ['reviews'],
        summary: 'The workspace\'s review policy: approvals needed, whether rollbacks and taking offline are reviewed', middleware: [requirePermission('release.settings.read')] as const,
        request: { params: WorkspaceParams }, responses: { 200: json(SettingsSchema, 'The policy'), ...errorResponses },
      }),
      async (c) => c.json(await settings(c.req.valid('param').workspaceId), 200),
    )
    .openapi(
      createRoute({
        method: 'put', path: '/workspaces/{workspaceId}/release-settings', tags: ['reviews'],
        summary: 'Change the review policy (applies to submissions from now on); warns when too few members can approve', middleware: [requirePermission('release.settings.manage')] as const,
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: SettingsBody } }, required: true } },
        responses: { 200: json(SettingsSchema, 'The new policy'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        await sequelize.transaction(async (t) => {
          const [before] = await sequelize.query<{ required_approvals: number; rollback_needs_review: boolean; offline_needs_review: boolean }>(
            'SELECT required_approvals, rollback_needs_review, offline_needs_review FROM workspace_release_settings WHERE workspace_id = :workspaceId FOR UPDATE',
            { replacements: { workspaceId }, type: QueryTypes.SELECT, transaction: t },
          );
          const old = { requiredApprovals: before?.required_approvals ?? 1, rollbackNeedsReview: before?.rollback_needs_review ?? false, offlineNeedsReview: before?.offline_needs_review ?? true };
          const next = { ...old, ...Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)) };
          const yesNo = (v: unknown) => (typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v));
          const labels: Record<keyof typeof old, string> = { requiredApprovals: 'required approvals', rollbackNeedsReview: 'rollbacks need review', offlineNeedsReview: 'taking offline needs review' };
          const changes = (Object.keys(old) as (keyof typeof old)[]).filter((k) => old[k] !== next[k]).map((k) => `${labels[k]}: ${yesNo(old[k])} → ${yesNo(next[k])}`);
          if (!changes.length) return;
          await sequelize.query(
            `INSERT INTO workspace_release_settings (workspace_id, required_approvals, rollback_needs_review, offline_needs_review, updated_by, updated_at)
             VALUES (:workspaceId, :requiredApprovals, :rollbackNeedsReview, :offlineNeedsReview, :userId, now())
             ON CONFLICT (workspace_id) DO UPDATE SET required_approvals = EXCLUDED.required_approvals, rollback_needs_review = EXCLUDED.rollback_needs_review,
               offline_needs_review = EXCLUDED.offline_needs_review, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at`,
            { replacements: { workspaceId, ...next, userId: user.id }, transaction: t },
          );
          await audit(t, {
            workspaceId, actorId: user.id, action: 'release_settings_changed', from: String(old.requiredApprovals), to: String(next.requiredApprovals), comment: changes.join('; '),
          });
        });
        return c.json(await settings(workspaceId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/reject-reasons', tags: ['reviews'],
        summary: 'Reject reasons: the built-in list and the workspace\'s own (archived ones only when asked)', middleware: [requirePermission('release.settings.read')] as const,
        request: { params: WorkspaceParams, query: ReasonQuery }, responses: { 200: json(z.object({ items: z.array(ReasonSchema) }), 'The reasons'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const all = c.req.valid('query').includeArchived === 'true';
        const rows = await sequelize.query<Parameters<typeof reasonOut>[0]>(
          `SELECT id, workspace_id, code, label, description, archived, created_at FROM reject_reasons
           WHERE (workspace_id IS NULL OR workspace_id = :workspaceId) ${all ? '' : 'AND NOT archived'}
           ORDER BY (workspace_id IS NULL) DESC, (code = 'other'), created_at, code`,
          { replacements: { workspaceId }, type: QueryTypes.SELECT },
        );
        return c.json({ items: rows.map(reasonOut) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/reject-reasons', tags: ['reviews'],
        summary: 'Add a reject reason of the workspace (its code is unique among the built-in and the workspace\'s reasons)', middleware: [requirePermission('release.settings.manage')] as const,
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: NewReason } }, required: true } },
        responses: { 201: json(ReasonSchema, 'Added'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        const id = newId('rr');
        const row = await sequelize.transaction(async (t) => {
          // One writer per workspace at a time, so the duplicate check cannot race.
          await sequelize.query('SELECT pg_advisory_xact_lock(hashtext(:key))', { replacements: { key: `reject_reasons:${workspaceId}` }, transaction: t });
          const [dup] = await sequelize.query<{ id: string; workspace_id: string | null }>(
            'SELECT id, workspace_id FROM reject_reasons WHERE (workspace_id IS NULL OR workspace_id = :workspaceId) AND code = :code',
            { replacements: { workspaceId, code: body.code }, type: QueryTypes.SELECT, transaction: t },
          );
          if (dup) throw new AppError(409, 'reason_exists', `A ${dup.workspace_id ? '' : 'built-in '}reason with the code "${body.code}" exists already`, { reasonId: dup.id });
          const [created] = await sequelize.query<Parameters<typeof reasonOut>[0]>(
            `INSERT INTO reject_reasons (id, workspace_id, code, label, description, created_by) VALUES (:id, :workspaceId, :code, :label, :description, :userId)
             RETURNING id, workspace_id, code, label, description, archived, created_at`,
            { replacements: { id, workspaceId, ...body, userId: user.id }, type: QueryTypes.SELECT, transaction: t },
          );
          await audit(t, { workspaceId, actorId: user.id, action: 'reject_reason_added', to: body.code, comment: `${body.code}: ${body.label}` });
          return created!;
        });
        return c.json(reasonOut(row), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'patch', path: '/workspaces/{workspaceId}/reject-reasons/{reasonId}', tags: ['reviews'],
        summary: 'Change or archive one of the workspace\'s reject reasons (built-in reasons cannot be changed)', middleware: [requirePermission('release.settings.manage')] as const,
        request: { params: ReasonParams, body: { content: { 'application/json': { schema: ReasonChange } }, required: true } },
        responses: { 200: json(ReasonSchema, 'Changed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, reasonId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        const row = await sequelize.transaction(async (t) => {
          const [found] = await sequelize.query<Parameters<typeof reasonOut>[0]>(
            'SELECT id, workspace_id, code, label, description, archived, created_at FROM reject_reasons WHERE id = :reasonId AND (workspace_id IS NULL OR workspace_id = :workspaceId) FOR UPDATE',
            { replacements: { reasonId, workspaceId }, type: QueryTypes.SELECT, transaction: t },
          );
          if (!found) throw notFound('Reject reason');
          if (found.workspace_id === null) throw new AppError(403, 'builtin_reason', `"${found.code}" is a built-in reason: it cannot be changed (add a reason of your own instead)`, { reasonId });
          const next = { label: body.label ?? found.label, description: body.description ?? found.description, archived: body.archived ?? found.archived };
          const changes = [
            next.label !== found.label && `label "${found.label}" → "${next.label}"`,
            next.description !== found.description && 'description changed',
            next.archived !== found.archived && (next.archived ? 'archived' : 'restored'),
          ].filter(Boolean) as string[];
          if (!changes.length) return found;
          const [updated] = await sequelize.query<Parameters<typeof reasonOut>[0]>(
            `UPDATE reject_reasons SET label = :label, description = :description, archived = :archived WHERE id = :reasonId
             RETURNING id, workspace_id, code, label, description, archived, created_at`,
            { replacements: { ...next, reasonId }, type: QueryTypes.SELECT, transaction: t },
          );
          await audit(t, { workspaceId, actorId: user.id, action: next.archived !== found.archived && changes.length === 1 ? (next.archived ? 'reject_reason_archived' : 'reject_reason_restored') : 'reject_reason_changed', to: found.code, comment: `${found.code}: ${changes.join('; ')}` });
          return updated!;
        });
        return c.json(reasonOut(row), 200);
      },
    );
}
