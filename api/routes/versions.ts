import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { ApplicationFailure, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { QueryTypes } from 'sequelize';
import { createHash } from 'node:crypto';
import { allowedVersionActions } from '../../lib/actions.js';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { checkPackage, PackageError } from '../../lib/package-check.js';
import { jsapiScanTargets, missingForSubmit, storeVersionJsapis, versionJsapiReport } from '../../lib/jsapi-check.js';
import { missingMessage, scanPackageFiles } from '../../lib/jsapi-scan.js';
import type { Permission } from '../../lib/permissions.js';
import { miniProgramWorkflowId, submitUpdate, uploadVersionUpdate } from '../../workflows/contracts/mini-program.js';
import {
  approveUpdate, rejectUpdate, releaseStatusQuery, releaseStatuses, releaseUpdate, releaseWaitingText, releaseWorkflowId, terminalReleaseStatuses, withdrawUpdate,
  type Approval, type PipelineKind, type Rejection, type RejectInput, type ReleaseState, type ReleaseStatus, type ReviewPolicy, type RolloutStage,
} from '../../workflows/contracts/release.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { normalizeState, pipelineView, prefetchView, type ViewPrefetch } from '../pipeline-view.js';
import { findMiniProgram, listVersions } from '../queries.js';
import { planProblem, releaseConfigOf } from './pipelines.js';
import { snapshotVersionDomains } from './branding.js';
import { AuditSchema, ErrorSchema, MiniProgramParams, RolloutStageSchema, VersionDetailViewSchema, VersionParams, VersionSchema, errorResponses, json } from '../schemas.js';

const semver = z.string().trim().regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/, 'must be a semantic version such as 1.2.0');

const UploadForm = z
  .object({
    package: z.any().openapi({ type: 'string', format: 'binary', description: 'the mini program package (zip)' }),
    version: semver.max(64),
    notes: z.string().max(2000).optional().default(''),
  })
  .openapi('UploadVersion');

const CommentBody = z.object({ comment: z.string().trim().max(2000).optional() });
const SubmitBody = z
  .object({ hotfix: z.boolean().optional().describe('a hotfix may take the lane from a rollout in progress (that rollout is superseded)') })
  .openapi('SubmitVersion');
const maxAttachmentBytes = 2 * 1024 * 1024;
const AttachmentBody = z.object({
  name: z.string().trim().min(1).max(200),
  contentType: z.string().trim().toLowerCase().regex(/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/, 'must be a MIME type such as image/png').max(100),
  dataBase64: z.string().min(1).max(Math.ceil(maxAttachmentBytes / 3) * 4 + 8).regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64'),
});
const RejectBody = z
  .object({
    reasonCode: z.string().trim().min(1, 'choose a reason').max(40),
    comment: z.string().trim().min(1, 'say why it is rejected').max(2000),
    attachment: AttachmentBody.optional().describe('a screenshot or log, at most 2 MB'),
  })
  .openapi('RejectVersion');
const ReleaseBody = z
  .object({
    plan: z.array(RolloutStageSchema).max(50).optional().describe('the rollout ladder; omitted: 1 → 5 → 20 → 50 → 100% with the configured soak. [{kind:"percent",percent:100,soakMs:0}] releases to everyone now'),
    comment: z.string().trim().max(2000).optional(),
  })
  .openapi('ReleaseVersion');

/** Attachments are served for download only; these types keep their own, anything else is octet-stream. */
const safeTypes = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain', 'text/csv', 'application/json', 'application/zip', 'video/mp4', 'video/webm']);
const safeFileName = (name: string) => name.replace(/[\\/]/g, '_').replace(/[\u0000-\u001f\u007f"]/g, '').trim().slice(0, 200) || 'attachment';

/** Package errors that are about size answer 413; every other shape problem 400. */
const sizeCodes = new Set(['package_entry_too_large', 'package_too_large_uncompressed', 'package_too_many_entries']);

type Command = 'approve' | 'reject' | 'withdraw' | 'release';

const FeatureRefSchema = z.object({ featureId: z.string(), key: z.string().optional(), name: z.string(), accessMode: z.enum(['direct', 'activation']).optional() });
const JsapiUsageSchema = z
  .object({
    items: z.array(z.object({
      api: z.string(),
      permissionLevel: z.enum(['open', 'needs_feature', 'restricted']).nullable(),
      status: z.enum(['active', 'deprecated', 'disabled']).nullable(),
      allowed: z.boolean(),
      reason: z.enum(['not_granted', 'unknown', 'disabled']).nullable().describe('why it may not be called (null when allowed)'),
      grantedVia: z.array(FeatureRefSchema).describe('held features that grant it'),
      calls: z.array(z.object({ file: z.string(), line: z.number().int(), column: z.number().int(), via: z.enum(['call', 'manifest']) })).describe('where it is used (the first 20)'),
      callCount: z.number().int(),
    })),
    missingCount: z.number().int(),
    callCount: z.number().int(),
  })
  .openapi('VersionJsapis');

/** A refusal the shared error funnel does not know (yet): one approval per reviewer. */
function alreadyApproved(err: unknown): AppError | null {
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === 'already_approved') {
    return new AppError(409, 'already_approved', err.cause.message, (err.cause.details?.[0] ?? undefined) as Record<string, unknown> | undefined);
  }
  return null;
}

/**
 * A pipeline that just ended hands the release lane back to its mini program a moment after its
 * own row says so (the mini program applies the news in order). A submit refused in that moment
 * is tried again for up to two seconds, and only while the pipeline holding the lane has ended.
 */
async function submitting<T>(sequelize: ApiDeps['sequelize'], submit: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await submit();
    } catch (err) {
      const holder = laneHolder(err);
      if (!holder || attempt >= 20) throw err;
      const [row] = await sequelize.query<{ status: string }>('SELECT status FROM pipelines WHERE id = :id', { replacements: { id: holder }, type: QueryTypes.SELECT });
      if (!row || !(terminalReleaseStatuses as readonly string[]).includes(row.status)) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
function laneHolder(err: unknown): string | null {
  if (!(err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === 'wrong_state')) return null;
  const id = (err.cause.details?.[0] as { activePipelineId?: unknown } | undefined)?.activePipelineId;
  return typeof id === 'string' ? id : null;
}

interface LaneRow {
  live_version_id: string | null;
  active_version_id: string | null;
  lane_id: string | null;
  lane_status: ReleaseStatus | null;
  lane_version_id: string | null;
}

export function versionRoutes(deps: ApiDeps) {
  const { sequelize, temporal, store, config } = deps;

  /**
   * The read-model half of a version's detail, queried side by side: its row, its audit trail
   * (the version's own rows and its release pipeline's), and the mini program's lane.
   */
  function detailRows(c: Context<AppEnv>, workspaceId: string, miniProgramId: string, versionId: string) {
    return Promise.all([
      listVersions(sequelize, { workspaceId, miniProgramId, versionId, role: c.get('role'), miniProgramRole: c.get('miniProgramRole'), grants: c.get('grants'), userId: c.get('user')!.id }),
      sequelize.query<{ id: string; actor_id: string | null; actor_name: string | null; action: string; from_state: string | null; to_state: string | null; comment: string | null; at: Date }>(
        `SELECT a.id::text AS id, a.actor_id, u.name AS actor_name, a.action, a.from_state, a.to_state, a.comment, a.at
         FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
         WHERE a.workspace_id = :workspaceId AND ((a.subject_type = 'version' AND a.subject_id = :versionId) OR (a.subject_type = 'pipeline' AND a.subject_id = :pipelineId))
         ORDER BY a.at, a.id`,
        { replacements: { versionId, workspaceId, pipelineId: releaseWorkflowId(versionId) }, type: QueryTypes.SELECT },
      ),
      sequelize.query<LaneRow>(
        `SELECT m.live_version_id, m.active_version_id, p.id AS lane_id, p.status AS lane_status, p.version_id AS lane_version_id
         FROM mini_programs m
         LEFT JOIN LATERAL (SELECT id, status, version_id FROM pipelines WHERE mini_program_id = m.id AND status NOT IN (:terminal) ORDER BY submitted_at DESC LIMIT 1) p ON true
         WHERE m.id = :miniProgramId AND m.workspace_id = :workspaceId`,
        { replacements: { miniProgramId, workspaceId, terminal: terminalReleaseStatuses }, type: QueryTypes.SELECT },
      ).then((r) => r[0] ?? null),
    ]);
  }

  /**
   * A version's detail: the read model, overlaid with the pipeline's live state (given by a
   * command's answer, or queried). `rows` may have been started alongside the command.
   */
  async function detail(c: Context<AppEnv>, workspaceId: string, miniProgramId: string, versionId: string, known?: ReleaseState, rows = detailRows(c, workspaceId, miniProgramId, versionId), prefetched?: Promise<ViewPrefetch>) {
    const user = c.get('user')!;
    const [versions, audit, lane] = await rows;
    const version = versions[0];
    if (!version) throw notFound('Version');
    let state: ReleaseState | null = known ? normalizeState(known) : null;
    if (!state && version.status !== 'uploaded') state = await queryPipeline(versionId);
    const view = state ? await pipelineView(deps, state, undefined, await prefetched?.catch(() => undefined)) : null;
    if (state) {
      // The pipeline's word is the freshest, except once a newer release made this one history.
      if (version.status !== 'superseded') version.status = state.status;
      if (state.decidedBy) version.decidedBy = { id: state.decidedBy, name: view!.names[state.decidedBy] ?? 'unknown' };
      version.decisionComment = state.rejection?.comment ?? state.decisionComment ?? version.decisionComment;
      version.releasedAt = state.releasedAt ?? version.releasedAt;
    }
    // The lane is another pipeline's when one that is not this version's is still running.
    const laneTaken = !!lane && ((!!lane.lane_id && lane.lane_version_id !== versionId) || (!lane.lane_id && !!lane.active_version_id && lane.active_version_id !== versionId));
    version.allowedActions = allowedVersionActions({
      role: c.get('role'), miniProgramRole: c.get('miniProgramRole'), grants: c.get('grants'), userId: user.id, status: version.status, submittedBy: state?.submitterId ?? version.submittedBy?.id ?? null,
      laneBusy: laneTaken, laneStatus: laneTaken ? lane!.lane_status : null, approvals: state?.approvals ?? [], kind: state?.kind ?? 'release',
      // A version that was live and was replaced since (released ones that are live are not targets).
      rollbackTarget: version.status === 'superseded' && !!version.releasedAt && !!lane && lane.live_version_id !== versionId,
    });
    return {
      version,
      pipeline: view,
      lane: laneTaken ? { pipelineId: lane!.lane_id, status: lane!.lane_status, versionId: lane!.lane_version_id ?? lane!.active_version_id } : null,
      audit: audit.map((a) => ({
        id: a.id, actor: a.actor_id ? { id: a.actor_id, name: a.actor_name ?? 'unknown' } : null, action: a.action, fromState: a.from_state,
        toState: a.to_state, comment: a.comment, at: new Date(a.at).toISOString(),
      })),
    };
  }

  /**
   * The live pipeline from its workflow. Should the workflow not answer (history gone past
   * retention, a worker that cannot replay it), the version page still renders from the read
   * model: the pipeline's row, with the timeline taken from the audit trail.
   */
  async function queryPipeline(versionId: string): Promise<ReleaseState> {
    const pipelineId = releaseWorkflowId(versionId);
    try {
      return normalizeState(await temporal.workflow.getHandle(pipelineId).query(releaseStatusQuery));
    } catch (err) {
      console.error(`[api] release ${versionId} did not answer its query; falling back to the read model`, (err as Error).message);
      const [row] = await sequelize.query<PipelineRow>('SELECT * FROM pipelines WHERE id = :pipelineId', { replacements: { pipelineId }, type: QueryTypes.SELECT });
      const rows = await sequelize.query<{ actor_id: string | null; action: string; to_state: string | null; comment: string | null; at: Date }>(
        `SELECT actor_id, action, to_state, comment, at FROM audit_log
         WHERE ((subject_type = 'pipeline' AND subject_id = :pipelineId) OR (subject_type = 'version' AND subject_id = :versionId)) AND action <> 'uploaded' ORDER BY at, id`,
        { replacements: { versionId, pipelineId }, type: QueryTypes.SELECT },
      );
      if (row) return stateFromRow(row, rows);
      // Pipelines older than the read model of pipelines: the version row is all there is.
      const [v] = await sequelize.query<{ status: string; mini_program_id: string; workspace_id: string; version: string; submitted_by: string | null; submitted_at: Date | null; decided_by: string | null; decision_comment: string | null; released_at: Date | null }>(
        'SELECT v.status, v.mini_program_id, m.workspace_id, v.version, v.submitted_by, v.submitted_at, v.decided_by, v.decision_comment, v.released_at FROM versions v JOIN mini_programs m ON m.id = v.mini_program_id WHERE v.id = :versionId',
        { replacements: { versionId }, type: QueryTypes.SELECT },
      );
      if (!v) throw notFound('Version');
      const status = known(v.status) ? v.status : 'released';
      return normalizeState({
        versionId, miniProgramId: v.mini_program_id, workspaceId: v.workspace_id, version: v.version, status,
        submitterId: v.submitted_by ?? '', submittedAt: (v.submitted_at ?? new Date(0)).toISOString(), decidedBy: v.decided_by,
        decisionComment: v.decision_comment, releasedAt: v.released_at?.toISOString() ?? null,
        waitingFor: v.status === 'superseded' ? 'Superseded by a newer release' : releaseWaitingText[status], seq: 0,
        timeline: timelineOf(rows, status),
      } as ReleaseState);
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

  /** The workspace's review policy for a release (1 approval unless the workspace says otherwise). */
  async function releasePolicy(workspaceId: string): Promise<ReviewPolicy> {
    const [row] = await sequelize.query<{ required_approvals: number }>('SELECT required_approvals FROM workspace_release_settings WHERE workspace_id = :workspaceId', {
      replacements: { workspaceId }, type: QueryTypes.SELECT,
    });
    return { requiredApprovals: row?.required_approvals ?? 1 };
  }

  /** A reject reason the workspace may use now: a built-in or its own, not archived. */
  async function activeReason(workspaceId: string, code: string) {
    const [reason] = await sequelize.query<{ code: string; label: string }>(
      `SELECT code, label FROM reject_reasons WHERE (workspace_id IS NULL OR workspace_id = :workspaceId) AND code = :code AND NOT archived
       ORDER BY (workspace_id IS NULL) LIMIT 1`,
      { replacements: { workspaceId, code }, type: QueryTypes.SELECT },
    );
    return reason ?? null;
  }

  const commandRoute = (action: Command, permission: Permission, summary: string, body: z.ZodType, middleware: MiddlewareHandler<AppEnv>[] = []) =>
    createRoute({
      method: 'post', path: `/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}/${action}`, tags: ['versions'], summary,
      middleware: [requirePermission(permission), ...middleware],
      request: { params: VersionParams, body: { content: { 'application/json': { schema: body } }, required: false } },
      responses: { 200: json(VersionDetailViewSchema, 'The new state'), ...errorResponses },
    });

  const bodies: Record<Command, z.ZodType> = { approve: CommentBody, reject: RejectBody, withdraw: CommentBody, release: ReleaseBody };

  const releaseCommand = (action: Command) => async (c: Context<AppEnv>) => {
    const { workspaceId, miniProgramId, versionId } = c.req.param() as { workspaceId: string; miniProgramId: string; versionId: string };
    const raw = (await c.req.json().catch(() => ({}))) as unknown;
    const parsed = bodies[action].safeParse(raw ?? {});
    if (!parsed.success) {
      const fields = z.flattenError(parsed.error).fieldErrors as Record<string, string[]>;
      const first = Object.entries(fields)[0];
      throw new AppError(400, 'validation_failed', first ? `${first[0]}: ${first[1]?.[0]}` : (parsed.error.issues[0]?.message ?? 'invalid body'), { fields });
    }
    const body = parsed.data as { comment?: string; reasonCode?: string; attachment?: z.infer<typeof AttachmentBody>; plan?: RolloutStage[] };
    const handle = temporal.workflow.getHandle(releaseWorkflowId(versionId));
    // The workflow checks the version belongs to this workspace and mini program (else not_found),
    // so the command needs no read-model lookup first.
    const base = { actorId: c.get('user')!.id, workspaceId, miniProgramId };
    const comment = body.comment || undefined;
    let reject: RejectInput | null = null;
    let plan: RolloutStage[] | undefined;
    // Everything is checked before anything is stored or sent: a refused command changes nothing.
    if (action === 'reject') {
      const reason = await activeReason(workspaceId, body.reasonCode!);
      if (!reason) throw new AppError(400, 'unknown_reason', `"${body.reasonCode}" is not one of this workspace's reject reasons`, { fields: { reasonCode: ['not one of this workspace\'s reject reasons'] }, reasonCode: body.reasonCode });
      reject = { ...base, reasonCode: reason.code, reasonLabel: reason.label, comment: comment!, attachment: null };
      if (body.attachment) {
        const bytes = Buffer.from(body.attachment.dataBase64, 'base64');
        if (bytes.length === 0) throw new AppError(400, 'validation_failed', 'attachment: the file is empty', { fields: { attachment: ['the file is empty'] } });
        if (bytes.length > maxAttachmentBytes) throw new AppError(413, 'attachment_too_large', `The attachment is larger than ${maxAttachmentBytes / 1024 / 1024} MB`, { limit: maxAttachmentBytes, size: bytes.length });
        const [row] = await sequelize.query<{ status: ReleaseStatus }>('SELECT status FROM pipelines WHERE id = :id', { replacements: { id: releaseWorkflowId(versionId) }, type: QueryTypes.SELECT });
        if (row && !['validating', 'in_review'].includes(row.status)) throw new AppError(409, 'wrong_state', `cannot reject a version that is ${row.status.replace('_', ' ')}`, { status: row.status });
        const stored = await store.put(bytes);
        reject.attachment = { name: safeFileName(body.attachment.name), sha256: stored.sha256, size: stored.size, contentType: body.attachment.contentType };
      }
    }
    if (action === 'release' && body.plan) {
      const problem = planProblem(body.plan);
      if (problem) throw new AppError(400, 'invalid_plan', `The rollout plan cannot run: ${problem}`, { plan: body.plan });
      plan = body.plan.map((s) => ({ kind: s.kind, percent: s.kind === 'whitelist' ? 0 : s.percent, soakMs: s.soakMs }));
    }
    // The read model is read while the command runs: the answer waits for the slower of the two only.
    const started = performance.now();
    const rows = detailRows(c, workspaceId, miniProgramId, versionId);
    rows.catch(() => undefined); // (awaited below; a refused command must not leave it unhandled)
    // And the names the answer will show (the caller, the submitter, everyone in the trail), so
    // building the answer after the command needs no further query.
    const prefetched = rows.then(([versions, audit]) => prefetchView(sequelize, {
      workspaceId, miniProgramId, submitterId: versions[0]?.submittedBy?.id ?? null,
      userIds: [base.actorId, ...(versions[0]?.submittedBy ? [versions[0].submittedBy.id] : []), ...audit.flatMap((a) => (a.actor_id ? [a.actor_id] : []))],
    }));
    prefetched.catch(() => undefined);
    const id = updateId(c, action);
    let state: ReleaseState;
    try {
      if (action === 'approve') state = await handle.executeUpdate(approveUpdate, { args: [{ ...base, comment }], updateId: id });
      else if (action === 'reject') state = await handle.executeUpdate(rejectUpdate, { args: [reject!], updateId: id });
      else if (action === 'withdraw') state = await handle.executeUpdate(withdrawUpdate, { args: [{ ...base, comment }], updateId: id });
      else state = await handle.executeUpdate(releaseUpdate, { args: [{ ...base, plan }], updateId: id });
    } catch (err) {
      // No pipeline (never submitted) or a finished one: answer with the state the read model has.
      if (err instanceof WorkflowNotFoundError) {
        const now = await ensureVersion(workspaceId, miniProgramId, versionId);
        throw new AppError(409, 'wrong_state', `cannot ${action} a version that is ${now.status.replace('_', ' ')}`, { status: now.status });
      }
      throw alreadyApproved(err) ?? err;
    }
    const answered = performance.now();
    const answer = await detail(c, workspaceId, miniProgramId, versionId, state, rows, prefetched);
    // Where the time went, for the browser's devtools and the benchmarks.
    c.header('Server-Timing', `gate;dur=${(started - c.get('startedAt')).toFixed(1)}, update;dur=${(answered - started).toFixed(1)}, detail;dur=${(performance.now() - answered).toFixed(1)}`);
    return c.json(answer, 200);
  };

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
          summary = await checkPackage(bytes, { version: form.version, collect: jsapiScanTargets });
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
        // The JSAPIs it uses (the submit checks them against the features the mini program holds).
        await storeVersionJsapis(sequelize, versionId, scanPackageFiles(summary.collected ?? new Map()));
        const [version] = await listVersions(sequelize, { workspaceId, miniProgramId, versionId, role: c.get('role'), miniProgramRole: c.get('miniProgramRole'), grants: c.get('grants'), userId: user.id });
        return c.json(version!, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}', tags: ['versions'],
        summary: 'A version with its live pipeline and audit trail', middleware: [requirePermission('version.read')], request: { params: VersionParams },
        responses: { 200: json(VersionDetailViewSchema, 'Detail'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, versionId } = c.req.valid('param');
        return c.json(await detail(c, workspaceId, miniProgramId, versionId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}/jsapis', tags: ['versions'],
        summary: 'The JSAPIs the version\'s package uses (calls found by the package scan, app.json declarations), each with where it is used and whether the mini program may call it now',
        middleware: [requirePermission('version.read')], request: { params: VersionParams },
        responses: { 200: json(JsapiUsageSchema, 'Usage'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, versionId } = c.req.valid('param');
        const report = await versionJsapiReport(sequelize, store, { workspaceId, miniProgramId, versionId });
        if (!report) throw notFound('Version');
        return c.json({ items: report.verdicts, missingCount: report.missing.length, callCount: report.callCount }, 200);
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
        summary: 'Submit an uploaded version for review (starts its release pipeline under the workspace\'s review policy)', middleware: [requirePermission('version.submit')],
        request: { params: VersionParams, body: { content: { 'application/json': { schema: SubmitBody } }, required: false } },
        responses: { 200: json(VersionDetailViewSchema, 'Submitted'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, versionId } = c.req.valid('param');
        const parsed = SubmitBody.safeParse((await c.req.json().catch(() => ({}))) ?? {});
        if (!parsed.success) throw new AppError(400, 'validation_failed', 'hotfix: must be true or false', { fields: z.flattenError(parsed.error).fieldErrors });
        const [, policy] = await Promise.all([ensureVersion(workspaceId, miniProgramId, versionId), releasePolicy(workspaceId)]);
        // Every JSAPI the package uses must be open or granted by a feature the mini program holds.
        const missingJsapis = await missingForSubmit(sequelize, store, { workspaceId, miniProgramId, versionId });
        if (missingJsapis.length > 0) throw new AppError(422, 'jsapi_not_granted', missingMessage(missingJsapis), { missing: missingJsapis });
        const submit = () => temporal.workflow.getHandle(miniProgramWorkflowId(miniProgramId)).executeUpdate(submitUpdate, {
          args: [{ versionId, actorId: c.get('user')!.id, hotfix: parsed.data.hotfix ?? false, policy, config: releaseConfigOf(config) }], updateId: updateId(c, 'submit'),
        });
        await submitting(sequelize, submit);
        // The domain preference ships with the release: the runtime enforces the lists as they were at submission.
        await snapshotVersionDomains(sequelize, workspaceId, versionId);
        return c.json(await detail(c, workspaceId, miniProgramId, versionId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}/rejection/attachment', tags: ['versions'],
        summary: 'Download the file a reviewer attached to the rejection', middleware: [requirePermission('version.read')], request: { params: VersionParams },
        responses: { 200: { description: 'The file, as an attachment', content: { 'application/octet-stream': { schema: z.any() } } }, ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, versionId } = c.req.valid('param');
        await ensureVersion(workspaceId, miniProgramId, versionId);
        const [row] = await sequelize.query<{ rejection: Rejection | null }>('SELECT rejection FROM pipelines WHERE id = :id AND workspace_id = :workspaceId', {
          replacements: { id: releaseWorkflowId(versionId), workspaceId }, type: QueryTypes.SELECT,
        });
        // The read model may not have caught up with a rejection just made: ask the workflow then.
        const rejection = row?.rejection ?? (await queryPipeline(versionId).catch(() => null))?.rejection ?? null;
        const file = rejection?.attachment;
        if (!file || !/^[0-9a-f]{64}$/.test(file.sha256)) throw notFound('Attachment');
        const bytes = await store.get(file.sha256).catch(() => null);
        if (!bytes) throw notFound('Attachment');
        const type = safeTypes.has(file.contentType) ? file.contentType : 'application/octet-stream';
        const name = safeFileName(file.name);
        return c.body(new Uint8Array(bytes), 200, {
          'Content-Type': type,
          'Content-Disposition': `attachment; filename="${name.replace(/[^\x20-\x7e]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
          'Cache-Control': 'private, max-age=0',
        });
      },
    )
    .openapi(commandRoute('approve', 'version.approve', 'Approve a version in review (not your own submission; once per reviewer). It is approved when the policy\'s number of distinct reviewers approved', CommentBody), releaseCommand('approve') as never)
    .openapi(
      commandRoute('reject', 'version.reject', 'Reject a version in review with a reason code of the workspace, a comment and an optional attachment (≤ 2 MB)', RejectBody, [
        bodyLimit({ maxSize: Math.ceil(maxAttachmentBytes / 3) * 4 + 64 * 1024, onError: () => { throw new AppError(413, 'attachment_too_large', `The attachment is larger than ${maxAttachmentBytes / 1024 / 1024} MB`, { limit: maxAttachmentBytes }); } }),
      ]),
      releaseCommand('reject') as never,
    )
    .openapi(commandRoute('withdraw', 'version.withdraw', 'Withdraw a submission that is not released yet', CommentBody), releaseCommand('withdraw') as never)
    .openapi(commandRoute('release', 'version.release', 'Start the rollout of an approved version (default ladder, or the plan given)', ReleaseBody), releaseCommand('release') as never);
}

// ───────────── Read-model fallback ─────────────

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
const known = (s: string | null): s is ReleaseStatus => !!s && (releaseStatuses as readonly string[]).includes(s);

interface PipelineRow {
  id: string; kind: PipelineKind; workspace_id: string; mini_program_id: string; version_id: string; version: string; status: ReleaseStatus; hotfix: boolean;
  submitted_by: string; submitted_at: Date; reason: string | null; baseline_version_id: string | null; review_requested_at: Date | null; sla_due_at: Date | null;
  reminded_at: Date | null; escalated_at: Date | null; required_approvals: number; approvals: Approval[] | null; rejection: Rejection | null;
  decided_by: string | null; decided_at: Date | null; released_at: Date | null; rollout: ReleaseState['rollout']; stuck: ReleaseState['stuck']; waiting_for: string; seq: number;
}
type AuditRow = { actor_id: string | null; action: string; to_state: string | null; comment: string | null; at: Date };

const timelineOf = (rows: AuditRow[], fallback: ReleaseStatus) =>
  rows.map((r) => ({ at: iso(r.at)!, status: known(r.to_state) ? r.to_state : fallback, actorId: r.actor_id, action: r.action, ...(r.comment ? { comment: r.comment } : {}) }));

/** The pipeline's row shaped like the workflow's state; the timeline comes from the audit log. */
export function stateFromRow(row: PipelineRow, audit: AuditRow[]): ReleaseState {
  return {
    kind: row.kind, pipelineId: row.id, versionId: row.version_id, miniProgramId: row.mini_program_id, workspaceId: row.workspace_id, version: row.version,
    status: row.status, hotfix: row.hotfix, submitterId: row.submitted_by, submittedAt: iso(row.submitted_at)!, reason: row.reason,
    baselineVersionId: row.baseline_version_id, reviewRequestedAt: iso(row.review_requested_at), slaDueAt: iso(row.sla_due_at), remindedAt: iso(row.reminded_at),
    escalatedAt: iso(row.escalated_at), requiredApprovals: row.required_approvals, approvals: row.approvals ?? [], rejection: row.rejection,
    decidedBy: row.decided_by, decisionComment: row.rejection?.comment ?? null, releasedAt: iso(row.released_at), rollout: row.rollout, stuck: row.stuck,
    waitingFor: row.waiting_for || releaseWaitingText[row.status], seq: row.seq, timeline: timelineOf(audit, row.status),
  };
}
