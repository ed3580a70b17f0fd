import {
  ActivityFailure, ApplicationFailure, allHandlersFinished, condition, getExternalWorkflowHandle, proxyActivities, proxyLocalActivities,
  setHandler, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { FailureType } from './contracts/errors.js';
import {
  approveUpdate, rejectUpdate, releaseProgressSignal, releaseStatusQuery, releaseUpdate, withdrawUpdate,
  type ReleaseInput, type ReleaseProgress, type ReleaseState, type ReleaseStatus,
} from './contracts/release.js';
import { ReleaseStateKey } from './contracts/search-attributes.js';
import { Mutex } from './lib/mutex.js';
import { external, projection } from './profiles.js';

const { projectVersionStatus } = proxyLocalActivities<Activities>(projection);
const { validateStoredPackage, notifyReviewers, notifySubmitter } = proxyActivities<Activities>(external);

const waitingText: Record<ReleaseStatus, string> = {
  validating: 'Checking the package',
  in_review: 'Waiting for a reviewer to approve or reject (any Reviewer or Admin other than the submitter)',
  approved: 'Approved: waiting for a Developer or Admin to release it',
  rejected: 'Rejected: fix it, upload a new version and submit that',
  withdrawn: 'Withdrawn: nothing more will happen',
  released: 'Released: this version is live',
  invalid: 'The package failed validation: upload a corrected package',
};

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
 */
export async function releasePipeline(input: ReleaseInput): Promise<ReleaseState> {
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
  // Every transition and its projection runs under this lock, so read-model writes keep seq order.
  const mutex = new Mutex();
  const parent = getExternalWorkflowHandle(input.parentWorkflowId);
  const link = `/w/${input.workspaceId}/mini-programs/${input.miniProgramId}/versions/${input.versionId}`;

  // Signal (not update): the entity only needs to hear about it. Not awaited, so a command's answer
  // does not wait for the delivery; every delivery is awaited before the pipeline ends.
  const deliveries: Promise<void>[] = [];
  function tellParent(p: ReleaseProgress) {
    deliveries.push(parent.signal(releaseProgressSignal, p));
  }

  async function transition(status: ReleaseStatus, action: string, actorId: string | null, comment?: string, extra: Partial<ReleaseState> = {}) {
    const from = state.status;
    const at = new Date().toISOString();
    Object.assign(state, extra);
    state.status = status;
    state.seq += 1;
    state.waitingFor = waitingText[status];
    state.timeline.push({ at, status, actorId, action, ...(comment ? { comment } : {}) });
    upsertSearchAttributes([{ key: ReleaseStateKey, value: status }]);
    await projectVersionStatus({
      versionId: state.versionId, miniProgramId: state.miniProgramId, workspaceId: state.workspaceId, status, at, seq: state.seq,
      submittedBy: state.submitterId, submittedAt: state.submittedAt, decidedBy: state.decidedBy, decisionComment: state.decisionComment, releasedAt: state.releasedAt,
      audit: {
        dedupeKey: `${workflowInfo().workflowId}:${state.seq}`, workspaceId: state.workspaceId, subjectType: 'version', subjectId: state.versionId,
        actorId, action, fromState: from, toState: status, comment: comment ?? null, at,
      },
    });
    tellParent({ versionId: state.versionId, status, at, seq: state.seq });
  }

  const decisionValidator = (action: string) => (d: { actorId: string }) => {
    if (state.status !== 'in_review') throw wrongState(state, action);
    if (d.actorId === state.submitterId) {
      throw ApplicationFailure.create({ type: FailureType.forbiddenActor, message: `you submitted this version, so another reviewer must ${action} it`, nonRetryable: true });
    }
  };

  setHandler(releaseStatusQuery, () => state);
  setHandler(
    approveUpdate,
    (d) => mutex.run(async () => {
      if (state.status !== 'in_review') throw wrongState(state, 'approve');
      await transition('approved', 'approved', d.actorId, d.comment, { decidedBy: d.actorId, decisionComment: d.comment ?? null });
      return state;
    }),
    { validator: decisionValidator('approve') },
  );
  setHandler(
    rejectUpdate,
    (d) => mutex.run(async () => {
      if (state.status !== 'in_review') throw wrongState(state, 'reject');
      await transition('rejected', 'rejected', d.actorId, d.comment, { decidedBy: d.actorId, decisionComment: d.comment ?? null });
      return state;
    }),
    {
      validator: (d) => {
        decisionValidator('reject')(d);
        if (!d.comment?.trim()) throw ApplicationFailure.create({ type: 'comment_required', message: 'a rejection needs a comment', nonRetryable: true });
      },
    },
  );
  const withdrawable: ReleaseStatus[] = ['validating', 'in_review', 'approved'];
  setHandler(
    withdrawUpdate,
    (d) => mutex.run(async () => {
      if (!withdrawable.includes(state.status)) throw wrongState(state, 'withdraw');
      await transition('withdrawn', 'withdrawn', d.actorId);
      return state;
    }),
    { validator: (_d) => { if (!withdrawable.includes(state.status)) throw wrongState(state, 'withdraw'); } },
  );
  setHandler(
    releaseUpdate,
    (d) => mutex.run(async () => {
      if (state.status !== 'approved') throw wrongState(state, 'release');
      await transition('released', 'released', d.actorId, undefined, { releasedAt: new Date().toISOString() });
      return state;
    }),
    { validator: (_d) => { if (state.status !== 'approved') throw wrongState(state, 'release'); } },
  );

  upsertSearchAttributes([{ key: ReleaseStateKey, value: state.status }]);
  await mutex.run(async () => {
    state.timeline.push({ at: state.submittedAt, status: 'validating', actorId: input.submitterId, action: 'submitted' });
    await projectVersionStatus({
      versionId: state.versionId, miniProgramId: state.miniProgramId, workspaceId: state.workspaceId, status: 'validating', at: state.submittedAt, seq: state.seq,
      submittedBy: state.submitterId, submittedAt: state.submittedAt,
      audit: {
        dedupeKey: `${workflowInfo().workflowId}:${state.seq}`, workspaceId: state.workspaceId, subjectType: 'version', subjectId: state.versionId,
        actorId: input.submitterId, action: 'submitted', fromState: 'uploaded', toState: 'validating', at: state.submittedAt,
      },
    });
    tellParent({ versionId: state.versionId, status: state.status, at: state.submittedAt, seq: state.seq });
  });

  let invalidReason: string | null = null;
  try {
    await validateStoredPackage({ packageSha256: input.packageSha256, version: input.version });
  } catch (err) {
    // Only a package that is really bad ends the pipeline; anything else keeps retrying in the activity.
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === FailureType.packageInvalid) invalidReason = err.cause.message;
    else throw err;
  }

  await mutex.run(async () => {
    if (state.status !== 'validating') return; // withdrawn while validating
    if (invalidReason) await transition('invalid', 'validation_failed', null, invalidReason);
    else await transition('in_review', 'review_requested', null);
  });

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
      await notifySubmitter({
        dedupeKey: `${workflowInfo().workflowId}:decision`, submitterId: input.submitterId, miniProgramName: input.miniProgramName,
        version: input.version, outcome: state.status, comment: state.decisionComment, link,
      });
    }
  }

  await condition(() => ['released', 'rejected', 'withdrawn', 'invalid'].includes(state.status));
  await condition(allHandlersFinished);
  await Promise.all(deliveries);
  return state;
}
