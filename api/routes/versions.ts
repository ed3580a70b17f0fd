import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { QueryTypes } from 'sequelize';
import { createHash } from 'node:crypto';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { checkPackage, PackageError } from '../../lib/package-check.js';
import type { Permission } from '../../lib/permissions.js';
import { miniProgramWorkflowId, submitUpdate, uploadVersionUpdate } from '../../workflows/contracts/mini-program.js';
import {
  approveUpdate, rejectUpdate, releaseStatusQuery, releaseStatuses, releaseUpdate, releaseWaitingText, releaseWorkflowId, terminalReleaseStatuses, withdrawUpdate,
  type DecisionInput, type ReleaseState, type ReleaseStatus,
} from '../../workflows/contracts/release.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { findMiniProgram, listVersions, userNames } from '../queries.js';
import { allowedVersionActions } from '../../lib/actions.js';
import { AuditSchema, ErrorSchema, MiniProgramParams, VersionDetailSchema, VersionParams, VersionSchema, errorResponses, json } from '../schemas.js';

const semver = z.string().trim().regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/, 'must be a semantic version such as 1.2.0');

const UploadForm = z
  .object({
    package: z.any().openapi({ type: 'string', format: 'binary', description: 'the mini program package (zip)' }),
    version: semver.max(64),
    notes: z.string().max(2000).optional().default(''),
  })
  .openapi('UploadVersion');

const CommentBody = z.object({ comment: z.string().trim().max(2000).optional() });
const RejectBody = z.object({ comment: z.string().trim().min(1, 'say why it is rejected').max(2000) });

/** Package errors that are about size answer 413; every other shape problem 400. */
const sizeCodes = new Set(['package_entry_too_large', 'package_too_large_uncompressed', 'package_too_many_entries']);

export function versionRoutes({ sequelize, temporal, store, config }: ApiDeps) {
  /**
   * The version page's data. `known` is the pipeline state a command just answered with: the
   * workflow's own word, overlaid on the read model (which catches up a moment later). The
   * queries run side by side.
   */
  /** The read-model half of a version's detail: its row and its audit trail. */
  function detailRows(c: Context<AppEnv>, workspaceId: string, miniProgramId: string, versionId: string) {
    return Promise.all([
      listVersions(sequelize, { workspaceId, miniProgramId, versionId, role: c.get('role'), userId: c.get('user')!.id }),
      sequelize.query<{ id: string; actor_id: string | null; actor_name: string | null; action: string; from_state: string | null; to_state: string | null; comment: string | null; at: Date }>(
        `SELECT a.id::text AS id, a.actor_id, u.name AS actor_name, a.action, a.from_state, a.to_state, a.comment, a.at
         FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id WHERE a.subject_type = 'version' AND a.subject_id = :versionId AND a.workspace_id = :workspaceId ORDER BY a.at, a.id`,
        { replacements: { versionId, workspaceId }, type: QueryTypes.SELECT },
      ),
    ]);
  }

  /**
   * A version's detail: the read model, overlaid with the pipeline's live state (given by a
   * command's answer, or queried). `rows` may have been started alongside the command.
   */
  async function detail(c: Context<AppEnv>, workspaceId: string, miniProgramId: string, versionId: string, known?: ReleaseState, rows = detailRows(c, workspaceId, miniProgramId, versionId)) {
    const role = c.get('role');
    const user = c.get('user')!;
    const [versions, audit] = await rows;
    const version = versions[0];
    if (!version) throw notFound('Version');
    let state: ReleaseState | null = known ?? null;
    if (!state && version.status !== 'uploaded') state = await queryPipeline(versionId);
    // Names of the people in the timeline: mostly known already (the caller, the row's people).
    const names = new Map<string, string>([[user.id, user.name]]);
    for (const p of [version.createdBy, version.submittedBy, version.decidedBy]) if (p) names.set(p.id, p.name);
    const unknown = state ? [...new Set([...state.timeline.map((t) => t.actorId), state.decidedBy])].filter((x): x is string => !!x && !names.has(x)) : [];
    if (unknown.length) for (const [id, name] of await userNames(sequelize, unknown)) names.set(id, name);
    if (known) {
      version.status = known.status;
      if (known.decidedBy) version.decidedBy = { id: known.decidedBy, name: names.get(known.decidedBy) ?? 'unknown' };
      version.decisionComment = known.decisionComment ?? version.decisionComment;
      version.releasedAt = known.releasedAt ?? version.releasedAt;
      version.allowedActions = allowedVersionActions({ role, userId: user.id, status: known.status, submittedBy: known.submitterId, laneBusy: !terminalReleaseStatuses.includes(known.status) });
    }
    return {
      version,
      pipeline: state && {
        status: state.status, waitingFor: state.waitingFor, submittedAt: state.submittedAt,
        timeline: state.timeline.map((t) => ({ ...t, actorName: t.actorId ? (names.get(t.actorId) ?? null) : null })),
      },
      audit: audit.map((a) => ({
        id: a.id, actor: a.actor_id ? { id: a.actor_id, name: a.actor_name ?? 'unknown' } : null, action: a.action, fromState: a.from_state,
        toState: a.to_state, comment: a.comment, at: new Date(a.at).toISOString(),
      })),
    };
  }

  /**
   * The live pipeline from its workflow. Should the workflow not answer (history gone past
   * retention, a worker that cannot replay it), the version page still renders from the read
   * model, with the timeline taken from the audit trail.
   */
  async function queryPipeline(versionId: string): Promise<ReleaseState> {
    try {
      return await temporal.workflow.getHandle(releaseWorkflowId(versionId)).query(releaseStatusQuery);
    } catch (err) {
      console.error(`[api] release ${versionId} did not answer its query; falling back to the read model`, (err as Error).message);
      const [row] = await sequelize.query<{ status: string; mini_program_id: string; workspace_id: string; version: string; submitted_by: string | null; submitted_at: Date | null; decided_by: string | null; decision_comment: string | null; released_at: Date | null; seq: number }>(
        'SELECT status, mini_program_id, workspace_id, version, submitted_by, submitted_at, decided_by, decision_comment, released_at, seq FROM versions WHERE id = :versionId',
        { replacements: { versionId }, type: QueryTypes.SELECT },
      );
      const rows = await sequelize.query<{ actor_id: string | null; action: string; to_state: string | null; comment: string | null; at: Date }>(
        `SELECT actor_id, action, to_state, comment, at FROM audit_log WHERE subject_type = 'version' AND subject_id = :versionId AND action <> 'uploaded' ORDER BY at, id`,
        { replacements: { versionId }, type: QueryTypes.SELECT },
      );
      const status = (releaseStatuses as readonly string[]).includes(row!.status) ? (row!.status as ReleaseStatus) : 'released';
      return {
        versionId, miniProgramId: row!.mini_program_id, workspaceId: row!.workspace_id, version: row!.version, status,
        submitterId: row!.submitted_by ?? '', submittedAt: (row!.submitted_at ?? new Date(0)).toISOString(), decidedBy: row!.decided_by,
        decisionComment: row!.decision_comment, releasedAt: row!.released_at?.toISOString() ?? null,
        waitingFor: row!.status === 'superseded' ? 'Superseded by a newer release' : releaseWaitingText[status], seq: 0,
        timeline: rows.map((r) => ({ at: new Date(r.at).toISOString(), status: ((releaseStatuses as readonly string[]).includes(r.to_state ?? '') ? r.to_state : status) as ReleaseStatus, actorId: r.actor_id, action: r.action, ...(r.comment ? { comment: r.comment } : {}) })),
      };
    }
  }

  /** Idempotency-Key becomes the update id, so a retried command returns the first answer. */
  const updateId = (c: Context<AppEnv>, action: string) => {
    const key = c.req.header('idempotency-key');
    return key ? `${c.get('user')!.id}:${action}:${key.slice(0, 200)}` : undefined;
  };

  async function ensureVersion(workspaceId: string, miniProgramId: string, versionId: string) {
    const [row] = await sequelize.query<{ status: string }>(
      'SELECT v.status FROM versions v JOIN mini_programs m ON m.id = v.mini_program_id WHERE v.id = :versionId AND m.id = :miniProgramId AND m.workspace_id = :workspaceId',
      { replacements: { workspaceId, miniProgramId, versionId }, type: QueryTypes.SELECT },
    );
    if (!row) throw notFound('Version');
    return row;
  }

  const commandRoute = (action: 'approve' | 'reject' | 'withdraw' | 'release', permission: Permission, summary: string, body: z.ZodType) =>
    createRoute({
      method: 'post', path: `/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}/${action}`, tags: ['versions'], summary,
      middleware: [requirePermission(permission)],
      request: { params: VersionParams, body: { content: { 'application/json': { schema: body } }, required: false } },
      responses: { 200: json(VersionDetailSchema, 'The new state'), ...errorResponses },
    });

  const releaseCommand = (action: 'approve' | 'reject' | 'withdraw' | 'release') => async (c: Context<AppEnv>) => {
    const { workspaceId, miniProgramId, versionId } = c.req.param() as { workspaceId: string; miniProgramId: string; versionId: string };
    const body = (await c.req.json().catch(() => ({}))) as { comment?: string };
    const parsed = (action === 'reject' ? RejectBody : CommentBody).safeParse(body ?? {});
    if (!parsed.success) throw new AppError(400, 'validation_failed', parsed.error.issues[0]?.message ?? 'invalid body', { fields: z.flattenError(parsed.error).fieldErrors });
    const handle = temporal.workflow.getHandle(releaseWorkflowId(versionId));
    // The workflow checks the version belongs to this workspace and mini program (else not_found),
    // so the command needs no read-model lookup first.
    const input = { actorId: c.get('user')!.id, workspaceId, miniProgramId, comment: parsed.data.comment || undefined };
    // The read model is read while the command runs: the answer waits for the slower of the two only.
    const started = performance.now();
    const rows = detailRows(c, workspaceId, miniProgramId, versionId);
    rows.catch(() => undefined); // (awaited below; a refused command must not leave it unhandled)
    let state: ReleaseState;
    try {
      state = await runCommand(action, handle, input, updateId(c, action));
    } catch (err) {
      // No pipeline (never submitted) or a finished one: answer with the state the read model has.
      if (err instanceof WorkflowNotFoundError) {
        const now = await ensureVersion(workspaceId, miniProgramId, versionId);
        throw new AppError(409, 'wrong_state', `cannot ${action} a version that is ${now.status.replace('_', ' ')}`, { status: now.status });
      }
      throw err;
    }
    const answered = performance.now();
    const answer = await detail(c, workspaceId, miniProgramId, versionId, state, rows);
    // Where the time went, for the browser's devtools and the benchmarks.
    c.header('Server-Timing', `gate;dur=${(started - c.get('startedAt')).toFixed(1)}, update;dur=${(answered - started).toFixed(1)}, detail;dur=${(performance.now() - answered).toFixed(1)}`);
    return c.json(answer, 200);
  };

  function runCommand(action: 'approve' | 'reject' | 'withdraw' | 'release', handle: WorkflowHandle, input: DecisionInput, id: string | undefined): Promise<ReleaseState> {
    if (action === 'approve') return handle.executeUpdate(approveUpdate, { args: [input], updateId: id });
    if (action === 'reject') return handle.executeUpdate(rejectUpdate, { args: [input], updateId: id });
    if (action === 'withdraw') return handle.executeUpdate(withdrawUpdate, { args: [input], updateId: id });
    return handle.executeUpdate(releaseUpdate, { args: [input], updateId: id });
  }

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions', tags: ['versions'],
        summary: 'Upload a version: a zip package, its semver and release notes (multipart/form-data)',
        middleware: [
          requirePermission('version.upload'),
          bodyLimit({ maxSize: config.maxPackageBytes + 64 * 1024, onError: () => { throw new AppError(413, 'package_too_large', `The upload is larger than the limit of ${config.maxPackageBytes} bytes`, { limit: config.maxPackageBytes }); } }),
        ],
        request: { params: MiniProgramParams, body: { content: { 'multipart/form-data': { schema: UploadForm } }, required: true } },
        responses: { 201: json(VersionSchema, 'Uploaded'), ...errorResponses, 413: { description: 'The package or its inflated contents are too large', content: { 'application/json': { schema: ErrorSchema } } } },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        const form = c.req.valid('form');
        const mp = await findMiniProgram(sequelize, workspaceId, miniProgramId);
        if (!mp) throw notFound('Mini program');
        const file = form.package as unknown;
        if (!(file instanceof File)) throw new AppError(400, 'package_required', 'Attach the package zip in the "package" field');
        if (file.size > config.maxPackageBytes) throw new AppError(413, 'package_too_large', `The package is larger than the limit of ${config.maxPackageBytes} bytes`, { limit: config.maxPackageBytes });
        const [dup] = await sequelize.query<{ id: string }>('SELECT id FROM versions WHERE mini_program_id = :miniProgramId AND version = :version', { replacements: { miniProgramId, version: form.version }, type: QueryTypes.SELECT });
        const key = c.req.header('idempotency-key');
        const user = c.get('user')!;
        const versionId = key ? `ver_${createHash('sha256').update(`${miniProgramId}:${user.id}:${key}`).digest('hex').slice(0, 24)}` : newId('ver');
        if (dup && dup.id !== versionId) throw new AppError(409, 'version_exists', `Version ${form.version} already exists for this mini program`, { versionId: dup.id });
        const bytes = Buffer.from(await file.arrayBuffer());
        let summary;
        try {
          summary = await checkPackage(bytes, { version: form.version });
        } catch (err) {
          if (err instanceof PackageError) throw new AppError(sizeCodes.has(err.code) ? 413 : 400, err.code, err.message, err.details);
          throw err;
        }
        // Only a package that passed every check is stored.
        await store.put(bytes);
        const pageCount = summary.pages.length + summary.subPackages.reduce((n, s) => n + s.pages.length, 0);
        await temporal.workflow.getHandle(miniProgramWorkflowId(miniProgramId)).executeUpdate(uploadVersionUpdate, {
          args: [{ versionId, version: form.version, packageSha256: summary.sha256, packageSize: summary.size, pageCount, notes: form.notes, actorId: user.id }],
          updateId: key ? `${user.id}:upload:${key.slice(0, 200)}` : undefined,
        });
        const [version] = await listVersions(sequelize, { workspaceId, miniProgramId, versionId, role: c.get('role'), userId: user.id });
        return c.json(version!, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}', tags: ['versions'],
        summary: 'A version with its live pipeline and audit trail', middleware: [requirePermission('version.read')], request: { params: VersionParams },
        responses: { 200: json(VersionDetailSchema, 'Detail'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, versionId } = c.req.valid('param');
        return c.json(await detail(c, workspaceId, miniProgramId, versionId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}/audit', tags: ['versions'],
        summary: 'The audit trail of a version', middleware: [requirePermission('audit.read')], request: { params: VersionParams },
        responses: { 200: json(z.object({ items: z.array(AuditSchema) }), 'Audit'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, versionId } = c.req.valid('param');
        return c.json({ items: (await detail(c, workspaceId, miniProgramId, versionId)).audit }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}/package', tags: ['versions'],
        summary: 'Download the package zip', middleware: [requirePermission('version.read')], request: { params: VersionParams },
        responses: { 200: { description: 'The zip', content: { 'application/zip': { schema: z.any() } } }, ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, versionId } = c.req.valid('param');
        await ensureVersion(workspaceId, miniProgramId, versionId);
        const [row] = await sequelize.query<{ package_sha256: string; version: string }>('SELECT package_sha256, version FROM versions WHERE id = :versionId', { replacements: { versionId }, type: QueryTypes.SELECT });
        const bytes = await store.get(row!.package_sha256);
        return c.body(new Uint8Array(bytes), 200, { 'Content-Type': 'application/zip', 'Content-Disposition': `attachment; filename="package-${row!.version}.zip"` });
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}/submit', tags: ['versions'],
        summary: 'Submit an uploaded version for review (starts its release pipeline)', middleware: [requirePermission('version.submit')],
        request: { params: VersionParams }, responses: { 200: json(VersionDetailSchema, 'Submitted'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, versionId } = c.req.valid('param');
        await ensureVersion(workspaceId, miniProgramId, versionId);
        await temporal.workflow.getHandle(miniProgramWorkflowId(miniProgramId)).executeUpdate(submitUpdate, {
          args: [{ versionId, actorId: c.get('user')!.id }], updateId: updateId(c, 'submit'),
        });
        return c.json(await detail(c, workspaceId, miniProgramId, versionId), 200);
      },
    )
    .openapi(commandRoute('approve', 'version.approve', 'Approve a version in review (not your own submission)', CommentBody), releaseCommand('approve') as never)
    .openapi(commandRoute('reject', 'version.reject', 'Reject a version in review, with a comment', RejectBody), releaseCommand('reject') as never)
    .openapi(commandRoute('withdraw', 'version.withdraw', 'Withdraw a submission that is not released yet', CommentBody), releaseCommand('withdraw') as never)
    .openapi(commandRoute('release', 'version.release', 'Release an approved version: it becomes the live one', CommentBody), releaseCommand('release') as never);
}
