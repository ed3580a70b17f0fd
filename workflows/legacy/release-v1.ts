import {
  ActivityFailure, ApplicationFailure, allHandlersFinished, condition, getExternalWorkflowHandle, proxyActivities,
  setHandler, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { Activities, VersionStatusProjection } from '../../activities/index.js';
import { FailureType } from '../contracts/errors.js';
import {
  approveUpdate, rejectUpdate, releaseProgressSignal, releaseStatusQuery, releaseUpdate, withdrawUpdate,
  releaseWaitingText as waitingText, type ActorInput, type ReleaseInput, type ReleaseState, type ReleaseStatus,
} from '../contracts/release-v1.js';
import { ReleaseStateKey } from '../contracts/search-attributes.js';
import { external, projection } from '../profiles.js';

const { projectVersionStatus } = proxyActivities<Activities>(projection);
const { validateStoredPackage, notifyReviewers, notifySubmitter } = proxyActivities<Activities>(external);


const terminal: readonly ReleaseStatus[] = ['released', 'rejected', 'withdrawn', 'invalid'];
const withdrawable: readonly ReleaseStatus[] = ['validating', 'in_review', 'approved'];

function wrongState(state: ReleaseState, action: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: FailureType.wrongState,
    message: `cannot ${action} a version that is ${state.status.replace('_', ' ')}`,
    details: [{ status: state.status }],
    nonRetryable: true,
  });
}

/**
 * Release: one submitted version's pipeline — validate the package, ask for review, wait for a
 * decision, then release on command. Id: release:<versionId>.
 *
 * Commands change the state at once and answer with it; the read model follows through an
 * ordered projection queue drained by one loop, so an answer never waits for a database write
 * and writes land in seq order.
 */
export async function releasePipelineV1(input: ReleaseInput): Promise<ReleaseState> {
  const state: ReleaseState = {
    versionId: input.versionId,
    miniProgramId: input.miniProgramId,
    workspaceId: input.workspaceId,
    version: input.version,
    status: 'validating',
    submitterId: input.submitterId,
    submittedAt: new Date().toISOString(),
    decidedBy: null,
    decisionComment: null,
    releasedAt: null,
    waitingFor: waitingText.validating,
    timeline: [],
    // The upload wrote seq 1 for this version's row; the pipeline's writes start above it.
    seq: 2,
  };
  const parent = getExternalWorkflowHandle(input.parentWorkflowId);
  const link = `/w/${input.workspaceId}/mini-programs/${input.miniProgramId}/versions/${input.versionId}`;
  const pending: VersionStatusProjection[] = [];

  /** Records a transition in the state, the timeline and the projection queue (synchronously). */
  function transition(status: ReleaseStatus, action: string, actorId: string | null, comment?: string, extra: Partial<ReleaseState> = {}) {
    const from = state.timeline.length ? state.status : 'uploaded';
    const at = new Date().toISOString();
    Object.assign(state, extra);
    if (state.timeline.length) state.seq += 1;
    state.status = status;
    state.waitingFor = waitingText[status];
    state.timeline.push({ at, status, actorId, action, ...(comment ? { comment } : {}) });
    pending.push({
      versionId: state.versionId, miniProgramId: state.miniProgramId, workspaceId: state.workspaceId, status, at, seq: state.seq,
      submittedBy: state.submitterId, submittedAt: state.submittedAt, decidedBy: state.decidedBy, decisionComment: state.decisionComment, releasedAt: state.releasedAt,
      audit: {
        dedupeKey: `${workflowInfo().workflowId}:${state.seq}`, workspaceId: state.workspaceId, subjectType: 'version', subjectId: state.versionId,
        actorId, action, fromState: from, toState: status, comment: comment ?? null, at,
      },
    });
  }

  // The projector: one write at a time, in order; then the search attribute and the entity follow.
  // They follow the projection (not the command) so a command's workflow task carries only its
  // answer and one activity: the reviewer waits for nothing else. The entity hears by signal (not
  // update), because it only needs to know and must never hold this pipeline up.
  let projecting = false;
  let projectedSeq = 0;
  async function drain() {
    if (projecting) return;
    projecting = true;
    try {
      while (pending.length) {
        const p = pending[0]!;
        await projectVersionStatus(p);
        pending.shift();
        projectedSeq = p.seq;
        upsertSearchAttributes([{ key: ReleaseStateKey, value: p.status }]);
        await parent.signal(releaseProgressSignal, { versionId: p.versionId, status: p.status as ReleaseStatus, at: p.at, seq: p.seq });
      }
    } finally {
      projecting = false;
    }
  }
  const projector = (async () => {
    for (;;) {
      await condition(() => pending.length > 0 || (terminal.includes(state.status) && !projecting));
      if (!pending.length) return;
      await drain();
    }
  })();

  /** A command naming another workspace or mini program is told the version does not exist. */
  const checkScope = (d: ActorInput) => {
    if ((d.workspaceId && d.workspaceId !== state.workspaceId) || (d.miniProgramId && d.miniProgramId !== state.miniProgramId)) {
      throw ApplicationFailure.create({ type: FailureType.notFound, message: 'version not found', nonRetryable: true });
    }
  };
  const decisionValidator = (action: string) => (d: ActorInput) => {
    checkScope(d);
    if (state.status !== 'in_review') throw wrongState(state, action);
    if (d.actorId === state.submitterId) {
      throw ApplicationFailure.create({ type: FailureType.forbiddenActor, message: `you submitted this version, so another reviewer must ${action} it`, nonRetryable: true });
    }
  };

  setHandler(releaseStatusQuery, () => state);
  // Update handlers are synchronous: validated, applied, answered in one workflow task.
  setHandler(
    approveUpdate,
    (d) => {
      decisionValidator('approve')(d);
      transition('approved', 'approved', d.actorId, d.comment, { decidedBy: d.actorId, decisionComment: d.comment ?? null });
      return state;
    },
    { validator: decisionValidator('approve') },
  );
  const rejectValidator = (d: { actorId: string; comment?: string }) => {
    decisionValidator('reject')(d);
    if (!d.comment?.trim()) throw ApplicationFailure.create({ type: 'comment_required', message: 'a rejection needs a comment', nonRetryable: true });
  };
  setHandler(
    rejectUpdate,
    (d) => {
      rejectValidator(d);
      transition('rejected', 'rejected', d.actorId, d.comment, { decidedBy: d.actorId, decisionComment: d.comment ?? null });
      return state;
    },
    { validator: rejectValidator },
  );
  const withdrawValidator = (d: ActorInput) => {
    checkScope(d);
    if (!withdrawable.includes(state.status)) throw wrongState(state, 'withdraw');
  };
  setHandler(
    withdrawUpdate,
    (d) => {
      withdrawValidator(d);
      transition('withdrawn', 'withdrawn', d.actorId);
      return state;
    },
    { validator: withdrawValidator },
  );
  const releaseValidator = (d: ActorInput) => {
    checkScope(d);
    if (state.status !== 'approved') throw wrongState(state, 'release');
  };
  setHandler(
    releaseUpdate,
    (d) => {
      releaseValidator(d);
      transition('released', 'released', d.actorId, undefined, { releasedAt: new Date().toISOString() });
      return state;
    },
    { validator: releaseValidator },
  );

  transition('validating', 'submitted', input.submitterId);

  let invalidReason: string | null = null;
  try {
    await validateStoredPackage({ packageSha256: input.packageSha256, version: input.version });
  } catch (err) {
    // Only a package that is really bad ends the pipeline; anything else keeps retrying in the activity.
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === FailureType.packageInvalid) invalidReason = err.cause.message;
    else throw err;
  }

  if (state.status === 'validating') {
    // (Not withdrawn while the package was being checked.)
    if (invalidReason) transition('invalid', 'validation_failed', null, invalidReason);
    else transition('in_review', 'review_requested', null);
  }

  if (state.status === 'in_review') {
    await notifyReviewers({
      dedupeKey: `${workflowInfo().workflowId}:review-requested`, workspaceId: input.workspaceId, miniProgramId: input.miniProgramId,
      miniProgramName: input.miniProgramName, versionId: input.versionId, version: input.version, submitterId: input.submitterId,
    });
    // A reviewer reminder after the configured wait; the decision itself has no deadline.
    if (input.config.reviewReminderMs > 0 && !(await condition(() => state.status !== 'in_review', input.config.reviewReminderMs))) {
      await notifyReviewers({
        dedupeKey: `${workflowInfo().workflowId}:review-reminder`, workspaceId: input.workspaceId, miniProgramId: input.miniProgramId,
        miniProgramName: `[Reminder] ${input.miniProgramName}`, versionId: input.versionId, version: input.version, submitterId: input.submitterId,
      });
    }
    await condition(() => state.status !== 'in_review');
    const decided = state.status as ReleaseStatus; // changed by an update handler meanwhile
    if (decided === 'approved' || decided === 'rejected') {
      // Mail once the read model shows the decision (the link opens on it), and not inside the
      // decision's own workflow task.
      const decidedSeq = state.seq;
      await condition(() => projectedSeq >= decidedSeq);
      await notifySubmitter({
        dedupeKey: `${workflowInfo().workflowId}:decision`, submitterId: input.submitterId, miniProgramName: input.miniProgramName,
        version: input.version, outcome: decided, comment: state.decisionComment, link,
      });
    }
  }

  await condition(() => terminal.includes(state.status));
  await condition(allHandlersFinished);
  await projector;
  return state;
}
