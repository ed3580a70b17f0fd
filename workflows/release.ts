import {
  ActivityFailure, ApplicationFailure, allHandlersFinished, condition, getExternalWorkflowHandle, patched, proxyActivities,
  setHandler, upsertSearchAttributes, workflowInfo, type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { PipelineMail, PipelineProjection, RolloutRow } from '../activities/pipeline.js';
import type { WebhookEventInput } from '../activities/webhooks.js';
import { FailureType } from './contracts/errors.js';
import {
  abortUpdate, advanceUpdate, approveUpdate, defaultHealth, defaultPlan, pauseUpdate, rejectUpdate, releaseProgressSignal, releaseStatusQuery,
  releaseUpdate, releaseWaitingText as waitingText, resumeUpdate, retryStepUpdate, rolloutStatuses, supersedeSignal, terminalReleaseStatuses, withdrawUpdate,
  type ActorInput, type DecisionInput, type HealthReport, type PipelineKind, type RejectInput, type ReleaseInput, type ReleaseState, type ReleaseStatus, type RolloutStage, type TimelineEntry,
} from './contracts/release.js';
import { ReleaseStateKey } from './contracts/search-attributes.js';
import { releasePipelineV1 } from './legacy/release-v1.js';
import { external, projection } from './profiles.js';

/** The patch that introduced review policies, rollouts, stuck steps and pipeline kinds. */
export const releaseV2Patch = 'release-v2';

/**
 * Release: one pipeline of a mini program — a new version (`release:<versionId>`), a rollback
 * (`rollback:<requestId>`) or taking it offline (`offline:<requestId>`). Histories recorded before
 * v2 replay through the frozen v1 code.
 */
export async function releasePipeline(input: ReleaseInput): Promise<ReleaseState | unknown> {
  if (!patched(releaseV2Patch)) return releasePipelineV1(input);
  return pipelineV2(input);
}

/** Thrown inside the pipeline when a command ended it while it waited (abort, withdraw, supersede). */
class Ended extends Error {}

const withdrawable: readonly ReleaseStatus[] = ['validating', 'in_review', 'approved'];
const webhookTypes: Record<string, string> = {
  review_requested: 'review.requested', approved: 'review.approved', rejected: 'review.rejected', withdrawn: 'review.withdrawn',
  rollout_started: 'release.rolling_out', stage_advanced: 'release.stage_advanced', paused: 'release.paused', resumed: 'release.resumed',
  halted: 'release.halted', aborted: 'release.aborted', released: 'release.released', superseded: 'release.superseded', stuck: 'release.stuck',
  rolled_back: 'release.rolled_back', taken_offline: 'mini_program.offline',
};

const refuse = (type: string, message: string, details: Record<string, unknown> = {}) => ApplicationFailure.create({ type, message, details: [details], nonRetryable: true });
const wrongState = (s: ReleaseState, action: string) => refuse(FailureType.wrongState, `cannot ${action} a pipeline that is ${s.status.replace('_', ' ')}`, { status: s.status });
const addMs = (iso: string, ms: number) => new Date(new Date(iso).getTime() + ms).toISOString();
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

async function pipelineV2(input: ReleaseInput): Promise<ReleaseState> {
  const kind: PipelineKind = input.kind ?? 'release';
  const cfg = input.config;
  const health = cfg.health ?? defaultHealth;
  const stepOptions: ActivityOptions = { ...external, retry: { ...external.retry, maximumAttempts: cfg.stepAttempts ?? 5 } };
  const { projectPipeline } = proxyActivities<Activities>(projection);
  const { validateStoredPackage, notifyPipeline, checkRolloutHealth } = proxyActivities<Activities>(stepOptions);
  // One POST may take 10 s: a longer heartbeat timeout; a receiver that keeps failing gives up after 8 tries.
  const { deliverWebhooks } = proxyActivities<Activities>({ ...external, heartbeatTimeout: '30 seconds', retry: { ...external.retry, maximumAttempts: 8 } });
  const info = workflowInfo();
  const pipelineId = info.workflowId;
  const now = () => new Date().toISOString();

  const state: ReleaseState = {
    kind, pipelineId, versionId: input.versionId, miniProgramId: input.miniProgramId, workspaceId: input.workspaceId, version: input.version,
    status: kind === 'release' ? 'validating' : 'in_review', hotfix: !!input.hotfix, submitterId: input.submitterId, submittedAt: now(),
    reason: input.reason ?? null, baselineVersionId: input.baselineVersionId ?? null, reviewRequestedAt: null, slaDueAt: null, remindedAt: null,
    escalatedAt: null, requiredApprovals: input.policy?.requiredApprovals ?? 1, approvals: [], rejection: null, decidedBy: null, decisionComment: null,
    releasedAt: null, rollout: null, stuck: null, waitingFor: waitingText.validating, timeline: [],
    seq: (input.baseSeq ?? 2) - 1,
  };
  const epoch = input.epoch ?? 0;
  const parent = getExternalWorkflowHandle(input.parentWorkflowId);
  const link = kind === 'release'
    ? `/w/${input.workspaceId}/mini-programs/${input.miniProgramId}/versions/${input.versionId}`
    : `/w/${input.workspaceId}/pipelines/${encodeURIComponent(pipelineId)}`;
  const what = kind === 'release' ? `${input.miniProgramName} ${input.version}`
    : kind === 'rollback' ? `rollback of ${input.miniProgramName} to ${input.version}` : `taking ${input.miniProgramName} offline`;

  // ---- recording: state, timeline and an ordered projection queue --------------------------------
  const pending: PipelineProjection[] = [];
  const webhooks: Promise<unknown>[] = [];
  const outbox = new Map<number, WebhookEventInput>();
  let decidedAt: string | null = null;
  let lastSentStatus: ReleaseStatus | null = null;

  function rolloutRow(): RolloutRow | undefined {
    const r = state.rollout;
    if (kind === 'rollback' && state.status === 'released') {
      return { versionId: state.versionId, baselineVersionId: state.baselineVersionId, percent: 100, whitelist: false, status: 'completed', epoch };
    }
    if (kind !== 'release' || !r) return undefined;
    const status = state.status === 'released' ? 'completed' : state.status === 'stuck' ? (state.stuck?.resumeStatus ?? 'paused') : state.status;
    return { versionId: state.versionId, baselineVersionId: state.baselineVersionId, percent: r.percent, whitelist: r.whitelist, status, epoch };
  }

  /** Records a step: a timeline entry, an audit row and a projection, in that order, synchronously. */
  function record(action: string, actorId: string | null, o: { status?: ReleaseStatus; comment?: string; data?: Record<string, unknown> } = {}) {
    const from = state.timeline.length ? state.status : kind === 'release' ? 'uploaded' : null;
    const at = now();
    if (o.status) state.status = o.status;
    state.waitingFor = waitingText[state.status];
    state.seq += 1;
    const entry: TimelineEntry = { at, status: state.status, actorId, action, ...(o.comment ? { comment: o.comment } : {}), ...(o.data ? { data: o.data } : {}) };
    state.timeline.push(entry);
    project({
      dedupeKey: `${pipelineId}:${state.seq}`, workspaceId: state.workspaceId, subjectType: kind === 'release' ? 'version' : 'pipeline',
      subjectId: kind === 'release' ? state.versionId : pipelineId, actorId, action, fromState: from, toState: state.status,
      comment: o.comment ?? (o.data ? JSON.stringify(o.data) : null), at,
    }, at);
    const type = webhookTypes[action];
    // Delivered once the projection is written, so a receiver that calls back sees the same state.
    if (type) {
      outbox.set(state.seq, {
        eventId: `${pipelineId}:${state.seq}`, workspaceId: state.workspaceId, type, at,
        payload: { pipelineId, kind, miniProgramId: state.miniProgramId, versionId: state.versionId, version: state.version, status: state.status, actorId, comment: o.comment ?? null, data: o.data ?? null },
      });
    }
  }

  /** Queues the current state's projection (with an audit row when given). */
  function project(audit?: PipelineProjection['audit'], at = now()) {
    if (!audit) {
      state.seq += 1;
      state.waitingFor = waitingText[state.status];
    }
    const versionStatus = kind === 'release'
      ? { status: state.status, seq: state.seq, releasedAt: state.releasedAt, decidedBy: state.decidedBy, decisionComment: state.decisionComment }
      : kind === 'rollback' && state.status === 'released' ? { status: 'released', seq: state.seq, releasedAt: state.releasedAt } : undefined;
    const { timeline: _t, ...row } = state;
    pending.push({ pipeline: { ...(JSON.parse(JSON.stringify(row)) as typeof row), at, decidedAt }, versionStatus, rollout: rolloutRow(), audit });
  }

  let projecting = false;
  let projectedSeq = 0;
  const projector = (async () => {
    for (;;) {
      await condition(() => pending.length > 0 || (terminalReleaseStatuses.includes(state.status) && !projecting));
      if (!pending.length) return;
      projecting = true;
      try {
        while (pending.length) {
          const p = pending[0]!;
          await projectPipeline(p);
          pending.shift();
          projectedSeq = p.pipeline.seq;
          const event = outbox.get(p.pipeline.seq);
          if (event) {
            outbox.delete(p.pipeline.seq);
            // A webhook that keeps failing is in its delivery log; the pipeline goes on.
            webhooks.push(deliverWebhooks(event).catch(() => undefined));
          }
          if (p.pipeline.status !== lastSentStatus) {
            lastSentStatus = p.pipeline.status;
            upsertSearchAttributes([{ key: ReleaseStateKey, value: p.pipeline.status }]);
            await parent.signal(releaseProgressSignal, { versionId: p.pipeline.versionId, status: p.pipeline.status, at: p.pipeline.at, seq: p.pipeline.seq, kind, pipelineId });
          }
        }
      } finally {
        projecting = false;
      }
    }
  })();
  const projected = () => {
    const seq = state.seq;
    return condition(() => projectedSeq >= seq);
  };

  /**
   * Mails through a step (a mail server refusing parks the pipeline as stuck); once the pipeline
   * has ended there is nothing left to park, so a failing mail after the end is only dropped.
   */
  const mail = async (m: Omit<PipelineMail, 'workspaceId' | 'link' | 'linkLabel'> & { linkLabel?: string }) => {
    const send = () => notifyPipeline({ workspaceId: state.workspaceId, link, linkLabel: m.linkLabel ?? 'Open it', ...m });
    if (terminalReleaseStatuses.includes(state.status)) await send().catch(() => undefined);
    else await step(`mail ${m.audience === 'user' ? 'the requester' : m.audience}`, send);
  };

  // ---- steps that may get stuck ----------------------------------------------------------------
  let retryRequested = false;
  let retries = 0;
  /** Runs an external step; when its retries run out the pipeline parks as stuck until retried or aborted. */
  async function step<T>(name: string, run: () => Promise<T>): Promise<T> {
    for (;;) {
      if (terminalReleaseStatuses.includes(state.status)) throw new Ended();
      try {
        return await run();
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        if (err.cause instanceof ApplicationFailure && err.cause.type === FailureType.packageInvalid) throw err;
        const error = (err.cause?.message ?? err.message).slice(0, 500);
        const resumeStatus = state.status;
        state.stuck = { step: name, error, since: now(), resumeStatus, retries };
        record('stuck', null, { status: 'stuck', comment: `${name}: ${error}`, data: { step: name, error } });
        await condition(() => retryRequested || state.status !== 'stuck');
        if (!retryRequested) throw new Ended(); // aborted or withdrawn while stuck
        retryRequested = false;
      }
    }
  }

  // ---- commands --------------------------------------------------------------------------------
  const checkScope = (d: ActorInput) => {
    if ((d.workspaceId && d.workspaceId !== state.workspaceId) || (d.miniProgramId && d.miniProgramId !== state.miniProgramId)) {
      throw refuse(FailureType.notFound, 'pipeline not found');
    }
  };
  const guard = <T extends ActorInput>(action: string, allowed: readonly ReleaseStatus[], extra?: (d: T) => void) => (d: T) => {
    checkScope(d);
    if (!allowed.includes(state.status)) throw wrongState(state, action);
    extra?.(d);
  };
  function command<T extends ActorInput>(def: Parameters<typeof setHandler>[0], validate: (d: T) => void, apply: (d: T) => void) {
    setHandler(def as never, ((d: T) => {
      validate(d);
      apply(d);
      return state;
    }) as never, { validator: validate } as never);
  }

  setHandler(releaseStatusQuery, () => state);

  const notSubmitter = (action: string) => (d: ActorInput) => {
    if (d.actorId === state.submitterId) throw refuse(FailureType.forbiddenActor, `you requested this ${kind === 'release' ? 'version' : kind}, so another reviewer must ${action} it`);
  };
  const approveValidator = guard<ActorInput & { comment?: string }>('approve', ['in_review'], (d) => {
    notSubmitter('approve')(d);
    if (state.approvals.some((a) => a.actorId === d.actorId)) throw refuse('already_approved', 'you approved this already; another reviewer must approve it too', { approvals: state.approvals.length, required: state.requiredApprovals });
  });
  command(approveUpdate, approveValidator, (d) => {
    state.approvals.push({ actorId: d.actorId, at: now(), comment: d.comment ?? null });
    if (state.approvals.length >= state.requiredApprovals) {
      decidedAt = now();
      Object.assign(state, { decidedBy: d.actorId, decisionComment: d.comment ?? null });
      record('approved', d.actorId, { status: 'approved', comment: d.comment, data: { approvals: state.approvals.length, required: state.requiredApprovals } });
    } else {
      record('approval_recorded', d.actorId, { comment: d.comment, data: { approvals: state.approvals.length, required: state.requiredApprovals } });
    }
  });
  command(rejectUpdate, guard<RejectInput>('reject', ['in_review'], (d) => {
    notSubmitter('reject')(d);
    if (!d.reasonCode || !d.comment?.trim()) throw refuse('reason_required', 'a rejection needs a reason code and a comment');
  }), (d) => {
    decidedAt = now();
    const label = d.reasonLabel || d.reasonCode;
    state.rejection = { actorId: d.actorId, at: decidedAt, reasonCode: d.reasonCode, reasonLabel: label, comment: d.comment, attachment: d.attachment ?? null };
    Object.assign(state, { decidedBy: d.actorId, decisionComment: `${label}: ${d.comment}` });
    record('rejected', d.actorId, { status: 'rejected', comment: d.comment, data: { reasonCode: d.reasonCode, reasonLabel: label, attachment: d.attachment?.name ?? null } });
  });
  const canWithdraw = () => withdrawable.includes(state.status) || (state.status === 'stuck' && withdrawable.includes(state.stuck!.resumeStatus));
  command(withdrawUpdate, (d: ActorInput & { comment?: string }) => {
    checkScope(d);
    if (!canWithdraw()) throw wrongState(state, 'withdraw');
  }, (d) => record('withdrawn', d.actorId, { status: 'withdrawn', comment: d.comment }));

  // Rollout commands (release pipelines only).
  let stageToken = 0;
  function enterStage(index: number, actorId: string | null, action: string, data?: Record<string, unknown>) {
    const r = state.rollout!;
    if (index >= r.plan.length) {
      state.releasedAt = now();
      r.percent = 100;
      r.soakEndsAt = null;
      record('released', actorId, { status: 'released', comment: `${input.version} is live for everyone`, data });
      stageToken++;
      return;
    }
    const stage = r.plan[index]!;
    const at = now();
    Object.assign(r, {
      stageIndex: index, stageStartedAt: at, soakEndsAt: addMs(at, stage.soakMs), remainingSoakMs: null, lastHealth: null,
      percent: stage.kind === 'percent' ? stage.percent : r.percent, whitelist: r.whitelist || stage.kind === 'whitelist',
    });
    stageToken++;
    const label = stage.kind === 'whitelist' ? 'tester whitelist' : `${stage.percent}%`;
    record(action, actorId, { status: 'rolling_out', comment: `stage ${index + 1} of ${r.plan.length}: ${label}`, data: { stage: index + 1, ...(data ?? {}) } });
  }

  command(releaseUpdate, guard('start the rollout of', ['approved'], (d: ActorInput & { plan?: RolloutStage[] }) => {
    if (kind !== 'release') throw refuse(FailureType.wrongState, 'only a release has a rollout');
    const plan = d.plan;
    if (plan && (!plan.length || plan.at(-1)!.kind !== 'percent' || plan.at(-1)!.percent !== 100)) throw refuse('invalid_plan', 'a rollout plan ends with a 100% stage');
  }), (d) => {
    const plan = d.plan ?? defaultPlan(cfg.defaultSoakMs ?? 3600_000);
    state.rollout = { plan, stageIndex: -1, stageStartedAt: null, soakEndsAt: null, remainingSoakMs: null, percent: 0, whitelist: false, lastHealth: null };
    enterStage(0, d.actorId, 'rollout_started', { plan: plan.map((s) => (s.kind === 'whitelist' ? 'whitelist' : `${s.percent}%`)).join(' → ') });
  });
  command(advanceUpdate, guard<DecisionInput>('advance', rolloutStatuses), (d) => enterStage(state.rollout!.stageIndex + 1, d.actorId, 'stage_advanced', { byHand: true }));
  command(pauseUpdate, guard<DecisionInput>('pause', ['rolling_out']), (d) => {
    const r = state.rollout!;
    r.remainingSoakMs = Math.max(0, new Date(r.soakEndsAt!).getTime() - Date.now());
    r.soakEndsAt = null;
    stageToken++;
    record('paused', d.actorId, { status: 'paused', comment: d.comment });
  });
  command(resumeUpdate, guard<DecisionInput>('resume', ['paused']), (d) => {
    const r = state.rollout!;
    r.soakEndsAt = addMs(now(), r.remainingSoakMs ?? 0);
    r.remainingSoakMs = null;
    stageToken++;
    record('resumed', d.actorId, { status: 'rolling_out', comment: d.comment });
  });
  command(abortUpdate, guard<DecisionInput>('abort', [...rolloutStatuses, 'stuck']), (d) => {
    if (state.rollout) state.rollout.percent = 0;
    state.stuck = null;
    record('aborted', d.actorId, { status: 'aborted', comment: d.comment ?? 'aborted' });
  });
  command(retryStepUpdate, guard<DecisionInput>('retry', ['stuck']), (d) => {
    const s = state.stuck!;
    retries += 1;
    retryRequested = true;
    state.stuck = null;
    record('step_retried', d.actorId, { status: s.resumeStatus, comment: d.comment ?? `retrying ${s.step}`, data: { step: s.step, retries } });
  });
  setHandler(supersedeSignal, (s) => {
    if (terminalReleaseStatuses.includes(state.status)) return;
    if (state.rollout) state.rollout.percent = 0;
    state.stuck = null;
    record('superseded', s.actorId, { status: 'superseded', comment: `superseded by ${s.byVersion}`, data: { byPipelineId: s.byPipelineId } });
  });

  // ---- the pipeline ----------------------------------------------------------------------------
  try {
    if (kind === 'release') record('submitted', input.submitterId, { status: 'validating', ...(state.hotfix ? { comment: 'hotfix' } : {}) });
    else record('requested', input.submitterId, { status: 'validating', comment: input.reason });

    if (kind !== 'offline') {
      try {
        await step('check the package', () => validateStoredPackage({ packageSha256: input.packageSha256, version: input.version }));
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        record('validation_failed', null, { status: 'invalid', comment: err.cause?.message ?? err.message });
      }
    }
    if (state.status === 'validating') await review();
    // (A rollout may have started while the decision mail went out.)
    if (state.status === 'approved' || rolloutStatuses.includes(state.status)) await act();
  } catch (err) {
    if (!(err instanceof Ended)) throw err;
  }

  await condition(() => terminalReleaseStatuses.includes(state.status));
  await condition(allHandlersFinished);
  await projector;
  await Promise.allSettled(webhooks);
  return state;

  async function review() {
    if (state.requiredApprovals <= 0) {
      decidedAt = now();
      record('approved', null, { status: 'approved', comment: 'no review needed by the workspace policy' });
      return;
    }
    state.reviewRequestedAt = now();
    if (cfg.reviewSlaMs) state.slaDueAt = addMs(state.reviewRequestedAt, cfg.reviewSlaMs);
    record('review_requested', null, { status: 'in_review', data: { requiredApprovals: state.requiredApprovals, slaDueAt: state.slaDueAt } });
    const inReview = () => state.status === 'in_review';
    await mail({
      dedupeKey: `${pipelineId}:review-requested`, audience: 'reviewers', userId: input.submitterId, linkLabel: 'Review it',
      subject: `Review requested: ${what}${state.hotfix ? ' (hotfix)' : ''}`,
      paragraphs: [`A ${kind === 'release' ? (state.hotfix ? 'hotfix' : 'version') : kind} waits for your review: ${what}.`, ...(input.reason ? [`Reason: ${input.reason}`] : []),
        ...(state.slaDueAt ? [`Review due by ${state.slaDueAt.replace('T', ' ').slice(0, 16)} UTC.`] : [])],
    });
    if (cfg.reviewReminderMs > 0 && inReview() && !(await condition(() => !inReview(), cfg.reviewReminderMs))) {
      state.remindedAt = now();
      record('sla_reminder_sent', null, { comment: 'reviewers reminded' });
      await mail({
        dedupeKey: `${pipelineId}:review-reminder`, audience: 'reviewers', userId: input.submitterId, linkLabel: 'Review it',
        subject: `[Reminder] Review waiting: ${what}`, paragraphs: [`${what} still waits for a review (${state.approvals.length} of ${state.requiredApprovals} approvals).`],
      });
      if ((cfg.reviewEscalationMs ?? 0) > 0 && inReview() && !(await condition(() => !inReview(), cfg.reviewEscalationMs!))) {
        state.escalatedAt = now();
        record('sla_escalated', null, { comment: 'escalated to Admins' });
        await mail({
          dedupeKey: `${pipelineId}:review-escalation`, audience: 'admins', userId: null, linkLabel: 'See who can review',
          subject: `[Escalation] Review overdue: ${what}`,
          paragraphs: [`${what} has waited for review since ${state.reviewRequestedAt!.replace('T', ' ').slice(0, 16)} UTC and reviewers were reminded. Please review it or assign a reviewer.`],
        });
      }
    }
    await condition(() => !inReview() && state.status !== 'stuck');
    if (state.status === 'approved' || state.status === 'rejected') {
      await projected();
      const r = state.rejection;
      await mail({
        dedupeKey: `${pipelineId}:decision`, audience: 'user', userId: input.submitterId, linkLabel: 'Open it',
        subject: `${what} was ${state.status}`,
        paragraphs: [`${what} was ${state.status}.`, ...(r ? [`Reason: ${r.reasonLabel}.`, `Comment: ${r.comment}`] : state.decisionComment ? [`Comment: ${state.decisionComment}`] : [])],
      });
    }
  }

  async function act() {
    if (kind === 'rollback') {
      state.releasedAt = now();
      record('rolled_back', state.decidedBy, { status: 'released', comment: `back to ${input.version}${input.reason ? `: ${input.reason}` : ''}` });
      return;
    }
    if (kind === 'offline') {
      record('taken_offline', state.decidedBy, { status: 'offline', comment: input.reason });
      return;
    }
    await condition(() => state.status !== 'approved');
    await rollout();
  }

  /** Soaks each stage, checking health; advances when the soak is over and the check is not red. */
  async function rollout() {
    const interval = Math.max(1, cfg.healthCheckIntervalMs ?? 60_000);
    while (rolloutStatuses.includes(state.status) || state.status === 'stuck') {
      const r = state.rollout!;
      const token = stageToken;
      if (state.status !== 'rolling_out') {
        await condition(() => stageToken !== token || state.status === 'rolling_out' && !!r.soakEndsAt || terminalReleaseStatuses.includes(state.status));
        continue;
      }
      const left = new Date(r.soakEndsAt!).getTime() - Date.now();
      if (left > 0 && (await condition(() => stageToken !== token || state.status !== 'rolling_out', Math.min(left, interval)))) continue;
      // A health check over the stage so far (the last stage's soak too: a bad 100% is halted before it is declared released).
      const soaked = new Date(r.soakEndsAt!).getTime() <= Date.now();
      if (r.plan[r.stageIndex]!.soakMs > 0) {
        const report = await step('health check', () => checkRolloutHealth({
          miniProgramId: state.miniProgramId, versionId: state.versionId, baselineVersionId: state.baselineVersionId, since: r.stageStartedAt!, thresholds: health,
        }));
        if (stageToken !== token || state.status !== 'rolling_out') continue;
        const changed = r.lastHealth?.verdict !== report.verdict;
        r.lastHealth = report;
        if (report.verdict === 'red') return halt(report);
        if (changed && !soaked) project();
      }
      if (soaked) enterStage(r.stageIndex + 1, null, 'stage_advanced', r.lastHealth ? { health: r.lastHealth } : undefined);
    }
  }

  async function halt(report: HealthReport) {
    const r = state.rollout!;
    const stage = r.plan[r.stageIndex]!;
    r.percent = 0;
    const numbers = `crash rate ${pct(report.crashRate)} (${report.crashes} crashes / ${report.launches} launches) vs live ${pct(report.liveCrashRate)} (${report.liveCrashes} / ${report.liveLaunches})`;
    record('halted', null, { status: 'halted', comment: `${report.reason}; the cohort went back to the previous version`, data: { health: report, stage: r.stageIndex + 1, percent: stage.percent } });
    await projected();
    const paragraphs = [`The rollout of ${what} was halted at stage ${r.stageIndex + 1} by its health check: ${numbers}.`, report.reason, 'Users in the cohort are served the previous version again.'];
    await mail({ dedupeKey: `${pipelineId}:halted:submitter`, audience: 'user', userId: input.submitterId, subject: `Rollout halted: ${what}`, paragraphs, linkLabel: 'See the numbers' });
    await mail({ dedupeKey: `${pipelineId}:halted:admins`, audience: 'admins', userId: input.submitterId, subject: `Rollout halted: ${what}`, paragraphs, linkLabel: 'See the numbers' });
  }
}
