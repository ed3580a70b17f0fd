import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { ApplicationFailure, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Context } from 'hono';
import { QueryTypes } from 'sequelize';
import { createHash } from 'node:crypto';
import type { Config } from '../../lib/config.js';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { allowedVersionActions } from '../../lib/actions.js';
import type { MiniProgramRole, Permission, WorkspaceRole } from '../../lib/permissions.js';
import { FailureType } from '../../workflows/contracts/errors.js';
import { miniProgramWorkflowId, removeUpdate, rollbackUpdate, takeOfflineUpdate } from '../../workflows/contracts/mini-program.js';
import {
  abortUpdate, advanceUpdate, approveUpdate, defaultPlan, pauseUpdate, pipelineKinds, rejectUpdate, releaseStatusQuery, releaseStatuses, releaseUpdate, releaseWaitingText, resumeUpdate,
  retryStepUpdate, withdrawUpdate, type PipelineKind, type ReleaseConfig, type ReleaseState, type ReleaseStatus, type RolloutStage, type TimelineEntry,
} from '../../workflows/contracts/release.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { fromTemporal } from '../errors.js';
import { requirePermission, requirePlatformPermission } from '../middleware.js';
import { pipelineView, temporalUrlOf } from '../pipeline-view.js';
import { findMiniProgram, miniProgramOut, userNames } from '../queries.js';
import { MiniProgramParams, MiniProgramSchema, PipelineViewSchema, RolloutStageSchema, WorkspaceParams, errorResponses, json } from '../schemas.js';

/** Commands on a pipeline, each behind its own permission. */
export const pipelineActions = ['release', 'advance', 'pause', 'resume', 'abort', 'approve', 'reject', 'withdraw'] as const;
export type PipelineAction = (typeof pipelineActions)[number];

const actionPermission: Record<PipelineAction, Permission> = {
  release: 'version.release', advance: 'version.rollout', pause: 'version.rollout', resume: 'version.rollout', abort: 'version.rollout',
  approve: 'version.approve', reject: 'version.reject', withdraw: 'version.withdraw',
};

/** A pipeline id is a workflow id of one of the pipeline kinds; anything else is not a pipeline. */
const pipelineIdPattern = new RegExp(`^(${pipelineKinds.join('|')}):[A-Za-z0-9_.-]{1,120}$`);
export const isPipelineId = (id: string) => pipelineIdPattern.test(id);

const maxSoakMs = 30 * 24 * 3600_000;

/**
 * Why a rollout plan cannot run, or null when it can: 1–10 stages; percent stages strictly rising
 * within (0, 100] and ending at 100; at most one whitelist stage, and only first; soaks of 0–30 days.
 */
export function planProblem(plan: RolloutStage[]): string | null {
  if (plan.length < 1 || plan.length > 10) return `a plan has 1 to 10 stages (this one has ${plan.length})`;
  let last = 0;
  for (const [i, s] of plan.entries()) {
    const n = i + 1;
    if (!Number.isInteger(s.soakMs) || s.soakMs < 0 || s.soakMs > maxSoakMs) return `stage ${n}: the soak must be 0 to 30 days in whole milliseconds`;
    if (s.kind === 'whitelist') {
      if (i !== 0) return `stage ${n}: the tester whitelist can only be the first stage`;
      continue;
    }
    if (!(s.percent > 0 && s.percent <= 100)) return `stage ${n}: a percentage must be above 0 and at most 100`;
    if (s.percent <= last) return `stage ${n}: percentages must rise from stage to stage (${s.percent}% follows ${last}%)`;
    last = s.percent;
  }
  const end = plan[plan.length - 1]!;
  if (end.kind !== 'percent' || end.percent !== 100) return 'the last stage must release to 100% of users';
  return null;
}

/**
 * The commands the caller may run on a pipeline now: the same rules as a version's buttons
 * (lib/actions.ts), limited to the commands a pipeline takes.
 */
export function allowedPipelineActions(
  state: Pick<ReleaseState, 'kind' | 'status' | 'submitterId' | 'approvals'>,
  o: { role: WorkspaceRole | null; miniProgramRole: MiniProgramRole | null; userId: string },
): PipelineAction[] {
  const all = allowedVersionActions({ ...o, status: state.status, submittedBy: state.submitterId, laneBusy: false, approvals: state.approvals, kind: state.kind });
  return all.filter((a): a is PipelineAction => (pipelineActions as readonly string[]).includes(a));
}

/** The settings a pipeline runs with, as the workflow takes them. */
export const releaseConfigOf = (config: Config): ReleaseConfig => ({
  reviewReminderMs: config.release.reviewReminderMs,
  reviewEscalationMs: config.release.reviewEscalationMs,
  reviewSlaMs: config.release.reviewSlaMs,
  stepAttempts: config.release.stepAttempts,
  healthCheckIntervalMs: config.release.healthCheckIntervalMs,
  defaultSoakMs: config.release.defaultSoakMs,
  health: { ...config.release.health },
});

// ───────────── Schemas ─────────────

const PipelineParams = WorkspaceParams.extend({ pipelineId: z.string().min(1).max(140).openapi({ example: 'release:ver_0mabc123' }) });
const CommentBody = z.object({ comment: z.string().trim().max(2000).optional() });
const ReleaseBody = z
  .object({
    plan: z.array(RolloutStageSchema).max(50).optional().describe('the rollout ladder; omitted: 1 → 5 → 20 → 50 → 100% with the configured soak. [{kind:"percent",percent:100,soakMs:0}] releases to everyone now'),
    comment: z.string().trim().max(2000).optional(),
  })
  .openapi('StartRollout');
const RejectBody = z.object({
  reasonCode: z.string().trim().min(1, 'choose a reason').max(40),
  comment: z.string().trim().min(1, 'say why it is rejected').max(2000),
});
const AllowedActionsSchema = z.array(z.enum(pipelineActions));
const PipelineAnswer = z
  .object({
    pipeline: PipelineViewSchema,
    allowedActions: AllowedActionsSchema,
    rolloutDefaults: z
      .object({ plan: z.array(RolloutStageSchema), health: z.object({ maxCrashRate: z.number(), maxRatioToLive: z.number(), minLaunches: z.number() }) })
      .describe('the ladder a rollout gets when no plan is given, and the health limits in force'),
  })
  .openapi('PipelineAnswer');
const RollbackBody = z
  .object({
    targetVersionId: z.string().trim().min(1).max(100).describe('an earlier version that was live before'),
    reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(500),
  })
  .openapi('Rollback');
const OfflineBody = z.object({ reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(500) }).openapi('TakeOffline');
const RemoveBody = z.object({ reason: z.string().trim().max(500).optional() });
const person = z.object({ id: z.string(), name: z.string() });
const PipelineSummarySchema = z
  .object({
    id: z.string(), kind: z.enum(pipelineKinds), status: z.enum(releaseStatuses), versionId: z.string(), version: z.string(), hotfix: z.boolean(),
    submittedBy: person, submittedAt: z.string(), reason: z.string().nullable(), baselineVersionId: z.string().nullable(), baselineVersion: z.string().nullable(),
    requiredApprovals: z.number(), approvals: z.number(), decidedAt: z.string().nullable(), releasedAt: z.string().nullable(),
    rollout: z.object({ stage: z.number(), stages: z.number(), percent: z.number(), whitelist: z.boolean() }).nullable(),
    stuck: z.object({ step: z.string(), error: z.string(), since: z.string() }).nullable(),
    waitingFor: z.string(), updatedAt: z.string(),
  })
  .openapi('PipelineSummary');
const HistoryQuery = z.object({
  kind: z.enum(pipelineKinds).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
});
const TimelineQuery = z.object({ format: z.enum(['json', 'csv']).default('json') });
const StuckSchema = z
  .object({
    id: z.string(), kind: z.enum(pipelineKinds), status: z.enum(releaseStatuses), workspace: person, miniProgram: person,
    version: z.object({ id: z.string(), version: z.string() }), submittedBy: person.nullable(),
    step: z.string(), error: z.string(), since: z.string(), retries: z.number(), resumeStatus: z.enum(releaseStatuses).nullable(),
    temporalUrl: z.string(), consoleUrl: z.string(),
  })
  .openapi('StuckPipeline');
const BulkBody = z
  .object({
    ids: z.array(z.string().min(1).max(140)).min(1, 'pick at least one pipeline').max(100, 'at most 100 pipelines at once'),
    comment: z.string().trim().max(2000).optional(),
  })
  .openapi('BulkPipelines');
const BulkResult = z.object({ id: z.string(), ok: z.boolean(), status: z.enum(releaseStatuses).optional(), error: z.string().optional(), code: z.string().optional() });
const BulkAnswer = z.object({ results: z.array(BulkResult), succeeded: z.number(), failed: z.number() }).openapi('BulkPipelinesResult');

// ───────────── Timeline export ─────────────

/** A CSV cell: quoted when needed, and never read as a formula by a spreadsheet. */
function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export interface TimelineRow extends TimelineEntry {
  actorName: string | null;
}

export function timelineCsv(rows: TimelineRow[]): string {
  const head = ['at', 'action', 'status', 'actor_id', 'actor_name', 'comment', 'data'];
  const lines = rows.map((r) => [r.at, r.action, r.status, r.actorId, r.actorName, r.comment ?? '', r.data ? JSON.stringify(r.data) : ''].map(csvCell).join(','));
  return `${[head.join(','), ...lines].join('\r\n')}\r\n`;
}

const fileSafe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'pipeline';

// ───────────── Routes ─────────────

interface PipelineRowDb {
  id: string; kind: PipelineKind; workspace_id: string; mini_program_id: string; version_id: string; version: string; status: ReleaseStatus; hotfix: boolean;
  submitted_by: string; submitted_at: Date; reason: string | null; baseline_version_id: string | null; review_requested_at: Date | null; sla_due_at: Date | null;
  reminded_at: Date | null; escalated_at: Date | null; required_approvals: number; approvals: ReleaseState['approvals']; rejection: ReleaseState['rejection'];
  decided_by: string | null; decided_at: Date | null; released_at: Date | null; rollout: ReleaseState['rollout']; stuck: ReleaseState['stuck']; waiting_for: string;
  updated_at: Date; seq: number;
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

/** A state recorded before pipelines had kinds, reviews and rollouts, filled in with what it implies. */
function withDefaults(state: ReleaseState, pipelineId: string): ReleaseState {
  if (state.kind && Array.isArray(state.approvals)) return state;
  const old = state as Partial<ReleaseState> & Pick<ReleaseState, 'status' | 'versionId' | 'workspaceId' | 'miniProgramId' | 'version' | 'timeline'>;
  return {
    kind: 'release', pipelineId, hotfix: false, reason: null, baselineVersionId: null, reviewRequestedAt: null, slaDueAt: null, remindedAt: null, escalatedAt: null,
    requiredApprovals: 1, approvals: [], rejection: null, rollout: null, stuck: null, submitterId: '', submittedAt: new Date(0).toISOString(),
    decidedBy: null, decisionComment: null, releasedAt: null, waitingFor: releaseWaitingText[old.status] ?? '', seq: 0,
    ...old,
  } as ReleaseState;
}

/** Rollout controls, rollback, offline and remove, timelines, and operators' stuck pipelines. */
export function pipelineRoutes(deps: ApiDeps) {
  const { sequelize, temporal, config } = deps;

  /** Idempotency-Key becomes the update id, so a retried command returns the first answer. */
  const updateId = (c: Context<AppEnv>, action: string) => {
    const key = c.req.header('idempotency-key');
    return key ? `${c.get('user')!.id}:${action}:${key.slice(0, 200)}` : undefined;
  };

  async function pipelineRow(pipelineId: string) {
    const [row] = await sequelize.query<PipelineRowDb>('SELECT * FROM pipelines WHERE id = :pipelineId', { replacements: { pipelineId }, type: QueryTypes.SELECT });
    return row ?? null;
  }

  /** The read model's word on a pipeline, shaped like the workflow's state (its timeline from the audit log). */
  async function stateFromRow(row: PipelineRowDb): Promise<ReleaseState> {
    const audit = await sequelize.query<{ actor_id: string | null; action: string; to_state: string | null; comment: string | null; at: Date }>(
      `SELECT actor_id, action, to_state, comment, at FROM audit_log WHERE subject_type = 'pipeline' AND subject_id = :id ORDER BY at, id`,
      { replacements: { id: row.id }, type: QueryTypes.SELECT },
    );
    const known = (s: string | null): s is ReleaseStatus => !!s && (releaseStatuses as readonly string[]).includes(s);
    return {
      kind: row.kind, pipelineId: row.id, versionId: row.version_id, miniProgramId: row.mini_program_id, workspaceId: row.workspace_id, version: row.version,
      status: row.status, hotfix: row.hotfix, submitterId: row.submitted_by, submittedAt: iso(row.submitted_at)!, reason: row.reason,
      baselineVersionId: row.baseline_version_id, reviewRequestedAt: iso(row.review_requested_at), slaDueAt: iso(row.sla_due_at), remindedAt: iso(row.reminded_at),
      escalatedAt: iso(row.escalated_at), requiredApprovals: row.required_approvals, approvals: row.approvals ?? [], rejection: row.rejection,
      decidedBy: row.decided_by, decisionComment: null, releasedAt: iso(row.released_at), rollout: row.rollout, stuck: row.stuck,
      waitingFor: row.waiting_for || releaseWaitingText[row.status], seq: row.seq,
      timeline: audit.map((a) => ({ at: iso(a.at)!, status: known(a.to_state) ? a.to_state : row.status, actorId: a.actor_id, action: a.action, ...(a.comment ? { comment: a.comment } : {}) })),
    };
  }

  /**
   * The pipeline's live state, checked to belong to the workspace (a pipeline of another
   * workspace does not exist for the caller). The workflow answers; should it not (history past
   * retention), the read model does.
   */
  async function scopedState(workspaceId: string, pipelineId: string): Promise<ReleaseState> {
    if (!isPipelineId(pipelineId)) throw notFound('Pipeline');
    const row = await pipelineRow(pipelineId);
    if (row && row.workspace_id !== workspaceId) throw notFound('Pipeline');
    let state: ReleaseState;
    try {
      state = await temporal.workflow.getHandle(pipelineId).query(releaseStatusQuery);
    } catch (err) {
      if (!row) {
        if (err instanceof WorkflowNotFoundError) throw notFound('Pipeline');
        throw err;
      }
      console.error(`[api] pipeline ${pipelineId} did not answer its query; answering from the read model`, (err as Error).message);
      return stateFromRow(row);
    }
    if (state.workspaceId !== workspaceId) throw notFound('Pipeline');
    return withDefaults(state, pipelineId);
  }

  async function answer(c: Context<AppEnv>, state: ReleaseState) {
    return {
      pipeline: await pipelineView(deps, state),
      allowedActions: allowedPipelineActions(state, { role: c.get('role'), miniProgramRole: c.get('miniProgramRole'), userId: c.get('user')!.id }),
      rolloutDefaults: { plan: defaultPlan(config.release.defaultSoakMs), health: { ...config.release.health } },
    };
  }

  /** Refusals of the MiniProgram entity, said for this request; anything else goes to the funnel. */
  function lifecycleRefusal(err: unknown, what: string): never {
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
      const f = err.cause;
      const details = (f.details?.[0] ?? {}) as Record<string, unknown>;
      if (f.type === FailureType.notFound) throw new AppError(404, 'not_found', `${what}: ${f.message}`, details);
      if (f.type === FailureType.wrongState || f.type === FailureType.conflict) throw new AppError(409, f.type, `${what}: ${f.message}`, details);
    }
    if (err instanceof WorkflowNotFoundError) throw notFound('Mini program');
    throw err;
  }

  async function releasePolicy(workspaceId: string) {
    const [row] = await sequelize.query<{ required_approvals: number; rollback_needs_review: boolean; offline_needs_review: boolean }>(
      'SELECT required_approvals, rollback_needs_review, offline_needs_review FROM workspace_release_settings WHERE workspace_id = :workspaceId',
      { replacements: { workspaceId }, type: QueryTypes.SELECT },
    );
    return row ?? { required_approvals: 1, rollback_needs_review: false, offline_needs_review: true };
  }

  /** A request id from the Idempotency-Key (so a retried request starts no second pipeline), or a new one. */
  function requestIdOf(c: Context<AppEnv>, prefix: string, miniProgramId: string) {
    const key = c.req.header('idempotency-key');
    return key ? `${prefix}_${createHash('sha256').update(`${miniProgramId}:${c.get('user')!.id}:${key}`).digest('hex').slice(0, 24)}` : newId(prefix);
  }

  const commandRoute = <A extends PipelineAction, B extends z.ZodType>(action: A, summary: string, body: B) =>
    createRoute({
      method: 'post', path: `/workspaces/{workspaceId}/pipelines/{pipelineId}/${action}` as `/workspaces/{workspaceId}/pipelines/{pipelineId}/${A}`, tags: ['pipelines'], summary,
      middleware: [requirePermission(actionPermission[action])] as const,
      request: { params: PipelineParams, body: { content: { 'application/json': { schema: body } }, required: false } },
      responses: { 200: json(PipelineAnswer, 'The pipeline after the command'), ...errorResponses },
    });

  /** Runs one command on a pipeline of this workspace; the answer is the state the workflow returned. */
  async function command(c: Context<AppEnv>, action: PipelineAction, body: Record<string, unknown>) {
    const { workspaceId, pipelineId } = c.req.param() as { workspaceId: string; pipelineId: string };
    if (!isPipelineId(pipelineId)) throw notFound('Pipeline');
    const row = await pipelineRow(pipelineId);
    if (row && row.workspace_id !== workspaceId) throw notFound('Pipeline');
    const actorId = c.get('user')!.id;
    // The workflow refuses (not_found) a command whose workspace is not the pipeline's.
    const base = { actorId, workspaceId };
    const comment = typeof body.comment === 'string' && body.comment ? body.comment : undefined;
    const handle = temporal.workflow.getHandle(pipelineId);
    const id = updateId(c, action);
    let state: ReleaseState;
    try {
      switch (action) {
        case 'release': {
          const plan = body.plan as RolloutStage[] | undefined;
          if (plan) {
            const problem = planProblem(plan);
            if (problem) throw new AppError(400, 'invalid_plan', `The rollout plan cannot run: ${problem}`, { plan });
          }
          state = await handle.executeUpdate(releaseUpdate, { args: [{ ...base, plan: plan?.map((s) => ({ kind: s.kind, percent: s.kind === 'whitelist' ? 0 : s.percent, soakMs: s.soakMs })) }], updateId: id });
          break;
        }
        case 'reject': {
          const { reasonCode, comment: why } = body as { reasonCode: string; comment: string };
          const [reason] = await sequelize.query<{ code: string; label: string }>(
            `SELECT code, label FROM reject_reasons WHERE (workspace_id IS NULL OR workspace_id = :workspaceId) AND code = :reasonCode AND NOT archived
             ORDER BY (workspace_id IS NULL) LIMIT 1`,
            { replacements: { workspaceId, reasonCode }, type: QueryTypes.SELECT },
          );
          if (!reason) throw new AppError(400, 'validation_failed', `reasonCode: "${reasonCode}" is not one of this workspace's reject reasons`, { fields: { reasonCode: ['not one of this workspace\'s reject reasons'] } });
          state = await handle.executeUpdate(rejectUpdate, { args: [{ ...base, reasonCode: reason.code, reasonLabel: reason.label, comment: why }], updateId: id });
          break;
        }
        case 'approve':
          state = await handle.executeUpdate(approveUpdate, { args: [{ ...base, comment }], updateId: id });
          break;
        case 'withdraw':
          state = await handle.executeUpdate(withdrawUpdate, { args: [{ ...base, comment }], updateId: id });
          break;
        case 'advance':
          state = await handle.executeUpdate(advanceUpdate, { args: [{ ...base, comment }], updateId: id });
          break;
        case 'pause':
          state = await handle.executeUpdate(pauseUpdate, { args: [{ ...base, comment }], updateId: id });
          break;
        case 'resume':
          state = await handle.executeUpdate(resumeUpdate, { args: [{ ...base, comment }], updateId: id });
          break;
        case 'abort':
          state = await handle.executeUpdate(abortUpdate, { args: [{ ...base, comment }], updateId: id });
          break;
      }
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      // A pipeline that has finished takes no more commands: say in which state it ended.
      const ended = row ?? (await pipelineRow(pipelineId));
      if (!ended) throw notFound('Pipeline');
      throw new AppError(409, 'wrong_state', `cannot ${action} a pipeline that is ${ended.status.replace('_', ' ')}`, { status: ended.status });
    }
    return c.json(await answer(c, state), 200);
  }

  /** Runs an operator's command on many pipelines, a few at a time; one result per id. */
  async function bulk(c: Context<AppEnv>, action: 'retry' | 'abort', ids: string[], comment: string | undefined) {
    const actorId = c.get('user')!.id;
    const unique = [...new Set(ids)];
    const results: z.infer<typeof BulkResult>[] = new Array(unique.length);
    let next = 0;
    const one = async (id: string) => {
      if (!isPipelineId(id)) return { id, ok: false, code: 'not_found', error: 'Not a pipeline id' };
      try {
        const handle = temporal.workflow.getHandle(id);
        const options = { args: [{ actorId, comment: comment || undefined }] as [{ actorId: string; comment?: string }], updateId: updateId(c, `${action}:${id}`) };
        const state = action === 'retry' ? await handle.executeUpdate(retryStepUpdate, options) : await handle.executeUpdate(abortUpdate, options);
        return { id, ok: true, status: state.status };
      } catch (err) {
        const domain = fromTemporal(err);
        if (domain) return { id, ok: false, code: domain.code, error: domain.message };
        console.error(`[api] operator ${action} of ${id} failed`, err);
        return { id, ok: false, code: 'internal', error: `Internal error (request ${c.get('requestId')})` };
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, unique.length) }, async () => {
      while (next < unique.length) {
        const i = next++;
        results[i] = await one(unique[i]!);
      }
    }));
    const succeeded = results.filter((r) => r.ok).length;
    return c.json({ results, succeeded, failed: results.length - succeeded }, 200);
  }

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/pipelines/{pipelineId}', tags: ['pipelines'],
        summary: 'A pipeline (release, rollback or offline): its live state, names, what it waits for, and what the caller may do',
        middleware: [requirePermission('version.read')] as const, request: { params: PipelineParams },
        responses: { 200: json(PipelineAnswer, 'The pipeline'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, pipelineId } = c.req.valid('param');
        return c.json(await answer(c, await scopedState(workspaceId, pipelineId)), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/pipelines/{pipelineId}/timeline', tags: ['pipelines'],
        summary: 'The complete timeline of a pipeline as a JSON or CSV download (names resolved; step data such as health numbers included)',
        middleware: [requirePermission('audit.read')] as const, request: { params: PipelineParams, query: TimelineQuery },
        responses: {
          200: {
            description: 'The timeline',
            content: {
              'application/json': { schema: z.object({ pipelineId: z.string(), kind: z.enum(pipelineKinds), miniProgram: person, version: z.string(), status: z.enum(releaseStatuses), exportedAt: z.string(), entries: z.array(z.record(z.string(), z.unknown())) }) },
              'text/csv': { schema: z.string() },
            },
          },
          ...errorResponses,
        },
      }),
      async (c) => {
        const { workspaceId, pipelineId } = c.req.valid('param');
        const { format } = c.req.valid('query');
        const state = await scopedState(workspaceId, pipelineId);
        const ids = [...new Set(state.timeline.map((t) => t.actorId).filter((x): x is string => !!x))];
        const [names, mp] = await Promise.all([userNames(sequelize, ids), findMiniProgram(sequelize, workspaceId, state.miniProgramId)]);
        const rows: TimelineRow[] = state.timeline.map((t) => ({ ...t, actorName: t.actorId ? (names.get(t.actorId) ?? null) : null }));
        const base = `timeline-${fileSafe(mp?.name ?? state.miniProgramId)}-${state.kind}-${fileSafe(state.version)}`;
        c.header('Cache-Control', 'no-store');
        if (format === 'csv') {
          c.header('Content-Disposition', `attachment; filename="${base}.csv"`);
          return c.body(timelineCsv(rows), 200, { 'Content-Type': 'text/csv; charset=utf-8' });
        }
        c.header('Content-Disposition', `attachment; filename="${base}.json"`);
        return c.json({
          pipelineId, kind: state.kind, miniProgram: { id: state.miniProgramId, name: mp?.name ?? '' }, version: state.version, status: state.status,
          exportedAt: new Date().toISOString(),
          entries: rows.map((r) => ({ at: r.at, action: r.action, status: r.status, actorId: r.actorId, actorName: r.actorName, comment: r.comment ?? null, data: r.data ?? null })),
        }, 200);
      },
    )
    .openapi(commandRoute('release', 'Start the rollout of an approved version, with an optional plan (1–10 stages)', ReleaseBody), (c) => command(c, 'release', c.req.valid('json')), (result) => {
      // Any problem with the plan's shape is an invalid plan, said the same way as a bad ladder.
      if (!result.success) {
        const issue = result.error.issues[0];
        const where = issue?.path.length ? issue.path.join('.') : 'body';
        const code = issue?.path[0] === 'plan' ? 'invalid_plan' : 'validation_failed';
        throw new AppError(400, code, code === 'invalid_plan' ? `The rollout plan cannot run: ${where}: ${issue?.message}` : `${where}: ${issue?.message}`, { fields: z.flattenError(result.error as z.ZodError).fieldErrors });
      }
      return undefined;
    })
    .openapi(commandRoute('advance', 'Advance a rollout to its next stage now (or complete it on the last)', CommentBody), (c) => command(c, 'advance', c.req.valid('json')))
    .openapi(commandRoute('pause', 'Pause a rollout: the share stays, the soak clock stops', CommentBody), (c) => command(c, 'pause', c.req.valid('json')))
    .openapi(commandRoute('resume', 'Resume a paused rollout', CommentBody), (c) => command(c, 'resume', c.req.valid('json')))
    .openapi(commandRoute('abort', 'Abort a rollout: the cohort goes back to the live version', CommentBody), (c) => command(c, 'abort', c.req.valid('json')))
    .openapi(commandRoute('approve', 'Approve a pipeline in review (not your own)', CommentBody), (c) => command(c, 'approve', c.req.valid('json')))
    .openapi(commandRoute('reject', 'Reject a pipeline in review, with a reason code and a comment', RejectBody), (c) => command(c, 'reject', c.req.valid('json')))
    .openapi(commandRoute('withdraw', 'Withdraw a pipeline that has not started rolling out', CommentBody), (c) => command(c, 'withdraw', c.req.valid('json')))
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/pipelines', tags: ['pipelines'],
        summary: 'Every pipeline of a mini program (releases, rollbacks, offline), newest first', middleware: [requirePermission('miniProgram.read')] as const,
        request: { params: MiniProgramParams, query: HistoryQuery },
        responses: { 200: json(z.object({ items: z.array(PipelineSummarySchema), nextCursor: z.string().nullable() }), 'A page'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        const { kind, limit, cursor } = c.req.valid('query');
        if (!(await findMiniProgram(sequelize, workspaceId, miniProgramId))) throw notFound('Mini program');
        const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
        const rows = await sequelize.query<PipelineRowDb & { submitted_by_name: string | null; baseline_version: string | null; submitted_at_text: string }>(
          `SELECT p.*, p.submitted_at::text AS submitted_at_text, u.name AS submitted_by_name, b.version AS baseline_version
           FROM pipelines p LEFT JOIN users u ON u.id = p.submitted_by LEFT JOIN versions b ON b.id = p.baseline_version_id
           WHERE p.workspace_id = :workspaceId AND p.mini_program_id = :miniProgramId ${kind ? 'AND p.kind = :kind' : ''}
           ${cursor ? 'AND (p.submitted_at, p.id) < (:cAt::timestamptz, :cId)' : ''}
           ORDER BY p.submitted_at DESC, p.id DESC LIMIT :limit`,
          { replacements: { workspaceId, miniProgramId, kind: kind ?? null, cAt, cId, limit: limit + 1 }, type: QueryTypes.SELECT },
        );
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        return c.json({
          items: page.map((r) => ({
            id: r.id, kind: r.kind, status: r.status, versionId: r.version_id, version: r.version, hotfix: r.hotfix,
            submittedBy: { id: r.submitted_by, name: r.submitted_by_name ?? 'unknown' }, submittedAt: iso(r.submitted_at)!, reason: r.reason,
            baselineVersionId: r.baseline_version_id, baselineVersion: r.baseline_version, requiredApprovals: r.required_approvals, approvals: (r.approvals ?? []).length,
            decidedAt: iso(r.decided_at), releasedAt: iso(r.released_at),
            rollout: r.rollout ? { stage: r.rollout.stageIndex + 1, stages: r.rollout.plan.length, percent: Number(r.rollout.percent), whitelist: r.rollout.whitelist } : null,
            stuck: r.stuck ? { step: r.stuck.step, error: r.stuck.error, since: r.stuck.since } : null,
            waitingFor: r.waiting_for, updatedAt: iso(r.updated_at)!,
          })),
          nextCursor: rows.length > limit && last ? encodeCursor(last.submitted_at_text, last.id) : null,
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/rollback', tags: ['pipelines'],
        summary: 'Roll back to an earlier version that was live before: a pipeline of its own (reviewed when the workspace policy says so)',
        middleware: [requirePermission('miniProgram.rollback')] as const,
        request: { params: MiniProgramParams, body: { content: { 'application/json': { schema: RollbackBody } }, required: true } },
        responses: { 201: json(PipelineAnswer, 'The rollback pipeline, started'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        const { targetVersionId, reason } = c.req.valid('json');
        const mp = await findMiniProgram(sequelize, workspaceId, miniProgramId);
        if (!mp) throw notFound('Mini program');
        const [target] = await sequelize.query<{ id: string; version: string }>('SELECT id, version FROM versions WHERE id = :targetVersionId AND mini_program_id = :miniProgramId', {
          replacements: { targetVersionId, miniProgramId }, type: QueryTypes.SELECT,
        });
        if (!target) throw notFound('Version');
        if (mp.live_version_id === target.id) throw new AppError(409, 'wrong_state', `Version ${target.version} is the live version already`, { liveVersionId: mp.live_version_id });
        const policy = await releasePolicy(workspaceId);
        const requestId = requestIdOf(c, 'rb', miniProgramId);
        let started;
        try {
          started = await temporal.workflow.getHandle(miniProgramWorkflowId(miniProgramId)).executeUpdate(rollbackUpdate, {
            args: [{
              requestId, targetVersionId: target.id, actorId: c.get('user')!.id, reason,
              policy: { requiredApprovals: policy.rollback_needs_review ? policy.required_approvals : 0 }, config: releaseConfigOf(config),
            }],
            updateId: updateId(c, 'rollback'),
          });
        } catch (err) {
          lifecycleRefusal(err, `Cannot roll back to version ${target.version}`);
        }
        const state = await temporal.workflow.getHandle(started.pipelineId).query(releaseStatusQuery);
        return c.json(await answer(c, state), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/offline', tags: ['pipelines'],
        summary: 'Take the mini program offline (reason required; reviewed when the policy says so, always in production)',
        middleware: [requirePermission('miniProgram.offline')] as const,
        request: { params: MiniProgramParams, body: { content: { 'application/json': { schema: OfflineBody } }, required: true } },
        responses: { 201: json(PipelineAnswer, 'The offline pipeline, started'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        const { reason } = c.req.valid('json');
        if (!(await findMiniProgram(sequelize, workspaceId, miniProgramId))) throw notFound('Mini program');
        const policy = await releasePolicy(workspaceId);
        // Taking a mini program off the air in production always needs a second pair of eyes.
        const review = policy.offline_needs_review || config.mode === 'production';
        let started;
        try {
          started = await temporal.workflow.getHandle(miniProgramWorkflowId(miniProgramId)).executeUpdate(takeOfflineUpdate, {
            args: [{ requestId: requestIdOf(c, 'off', miniProgramId), actorId: c.get('user')!.id, reason, policy: { requiredApprovals: review ? policy.required_approvals : 0 }, config: releaseConfigOf(config) }],
            updateId: updateId(c, 'offline'),
          });
        } catch (err) {
          lifecycleRefusal(err, 'Cannot take the mini program offline');
        }
        const state = await temporal.workflow.getHandle(started.pipelineId).query(releaseStatusQuery);
        return c.json(await answer(c, state), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/remove', tags: ['pipelines'],
        summary: 'Remove a mini program that is offline: it is no longer listed and resolve answers 404',
        middleware: [requirePermission('miniProgram.remove')] as const,
        request: { params: MiniProgramParams, body: { content: { 'application/json': { schema: RemoveBody } }, required: false } },
        responses: { 200: json(z.object({ miniProgram: MiniProgramSchema }), 'Removed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        const { reason } = c.req.valid('json');
        const mp = await findMiniProgram(sequelize, workspaceId, miniProgramId);
        if (!mp) throw notFound('Mini program');
        let state;
        try {
          state = await temporal.workflow.getHandle(miniProgramWorkflowId(miniProgramId)).executeUpdate(removeUpdate, {
            args: [{ actorId: c.get('user')!.id, reason: reason || undefined }], updateId: updateId(c, 'remove'),
          });
        } catch (err) {
          lifecycleRefusal(err, 'Only an offline mini program can be removed');
        }
        return c.json({ miniProgram: { ...miniProgramOut(mp), status: state.status } }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/platform/pipelines/stuck', tags: ['operators'],
        summary: 'Every stuck pipeline across workspaces (Temporal visibility, joined with the read models)',
        middleware: [requirePlatformPermission('platform.releases')] as const,
        responses: { 200: json(z.object({ items: z.array(StuckSchema) }), 'Stuck pipelines, longest stuck first'), ...errorResponses },
      }),
      async (c) => {
        const ids: string[] = [];
        for await (const wf of temporal.workflow.list({ query: 'ReleaseState = "stuck" AND ExecutionStatus = "Running"', pageSize: 200 })) {
          if (isPipelineId(wf.workflowId)) ids.push(wf.workflowId);
          if (ids.length >= 1000) break;
        }
        if (!ids.length) return c.json({ items: [] }, 200);
        const rows = await sequelize.query<PipelineRowDb & { workspace_name: string; mini_program_name: string; submitted_by_name: string | null }>(
          `SELECT p.*, w.name AS workspace_name, m.name AS mini_program_name, u.name AS submitted_by_name
           FROM pipelines p JOIN workspaces w ON w.id = p.workspace_id JOIN mini_programs m ON m.id = p.mini_program_id LEFT JOIN users u ON u.id = p.submitted_by
           WHERE p.id IN (:ids)`,
          { replacements: { ids }, type: QueryTypes.SELECT },
        );
        const byId = new Map(rows.map((r) => [r.id, r]));
        const items = await Promise.all(ids.map(async (id) => {
          const r = byId.get(id);
          let stuck = r?.stuck ?? null;
          let status = r?.status ?? 'stuck';
          // Visibility saw it stuck before the read model did: the workflow has the step and error.
          if (!stuck) {
            const s = await temporal.workflow.getHandle(id).query(releaseStatusQuery).catch(() => null);
            stuck = s?.stuck ?? null;
            if (s) status = s.status;
          }
          if (!r) return null;
          const versionPath = r.kind === 'release'
            ? `/w/${encodeURIComponent(r.workspace_id)}/mini-programs/${encodeURIComponent(r.mini_program_id)}/versions/${encodeURIComponent(r.version_id)}`
            : `/w/${encodeURIComponent(r.workspace_id)}/pipelines/${encodeURIComponent(r.id)}`;
          return {
            id, kind: r.kind, status, workspace: { id: r.workspace_id, name: r.workspace_name }, miniProgram: { id: r.mini_program_id, name: r.mini_program_name },
            version: { id: r.version_id, version: r.version }, submittedBy: { id: r.submitted_by, name: r.submitted_by_name ?? 'unknown' },
            step: stuck?.step ?? 'unknown', error: stuck?.error ?? '', since: stuck?.since ?? iso(r.updated_at)!, retries: stuck?.retries ?? 0,
            resumeStatus: stuck?.resumeStatus ?? null, temporalUrl: temporalUrlOf(config, id), consoleUrl: versionPath,
          };
        }));
        const found = items.filter((i): i is NonNullable<typeof i> => i !== null).sort((a, b) => a.since.localeCompare(b.since) || a.id.localeCompare(b.id));
        return c.json({ items: found }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/platform/pipelines/retry', tags: ['operators'], summary: 'Run the failed step of stuck pipelines again (1–100 at once)',
        middleware: [requirePlatformPermission('platform.releases')] as const,
        request: { body: { content: { 'application/json': { schema: BulkBody } }, required: true } },
        responses: { 200: json(BulkAnswer, 'One result per pipeline'), ...errorResponses },
      }),
      async (c) => {
        const { ids, comment } = c.req.valid('json');
        return bulk(c, 'retry', ids, comment);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/platform/pipelines/abort', tags: ['operators'], summary: 'Abort pipelines (1–100 at once): the cohort goes back to the live version',
        middleware: [requirePlatformPermission('platform.releases')] as const,
        request: { body: { content: { 'application/json': { schema: BulkBody } }, required: true } },
        responses: { 200: json(BulkAnswer, 'One result per pipeline'), ...errorResponses },
      }),
      async (c) => {
        const { ids, comment } = c.req.valid('json');
        return bulk(c, 'abort', ids, comment);
      },
    );
}
