import { ActivityFailure, ApplicationFailure, allHandlersFinished, condition, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import {
  FeatureFailure, approveActivationUpdate, approveFeatureChangeUpdate, featureActivationStatusQuery, featureChangeStatusQuery, rejectActivationUpdate,
  rejectFeatureChangeUpdate, withdrawActivationUpdate, withdrawFeatureChangeUpdate,
  type DecideInput, type FeatureActivationInput, type FeatureActivationState, type FeatureChangeInput, type FeatureChangeState,
} from './contracts/feature-change.js';
import { FailureType } from './contracts/errors.js';
import { Mutex } from './lib/mutex.js';
import { external, projection } from './profiles.js';

const { projectFeatureChange, applyFeatureChange, projectFeatureActivation } = proxyActivities<Activities>(projection);
const { notifyFeature } = proxyActivities<Activities>(external);

const refuse = (type: string, message: string, details: Record<string, unknown> = {}) => ApplicationFailure.create({ type, message, details: [details], nonRetryable: true });
const iso = (ms: number) => new Date(ms).toISOString();

/** The checks every decision shares: still pending and not expired, never the proposer, a rejection says why. */
function decisionChecks(what: string, status: () => string, expiresAt: () => string, proposedBy: string) {
  const pending = (action: string) => {
    const s = status();
    if (s !== 'pending' && s !== 'requested') throw refuse(FailureType.wrongState, `cannot ${action} ${what} that is ${s}`, { status: s });
    if (Date.now() >= Date.parse(expiresAt())) throw refuse(FailureType.wrongState, `cannot ${action} ${what} that is expired`, { status: 'expired' });
  };
  return {
    approve: (d: DecideInput) => {
      pending('approve');
      if (d.actorId === proposedBy) throw refuse(FeatureFailure.ownChange, `You cannot approve ${what} you proposed yourself: another reviewer must`);
    },
    reject: (d: DecideInput) => {
      pending('reject');
      if (d.actorId === proposedBy) throw refuse(FeatureFailure.ownChange, `You cannot reject ${what} you proposed yourself: withdraw it instead`);
      if (!d.reason?.trim()) throw refuse('validation_failed', 'a rejection needs a reason');
    },
    withdraw: (w: { actorId: string }) => {
      pending('withdraw');
      if (w.actorId !== proposedBy) throw refuse(FeatureFailure.notProposer, `Only whoever proposed ${what} can withdraw it`);
    },
  };
}

/**
 * featureChange: a proposed addition, edit or archive of a feature. pending → approved (the next
 * revision is written before the approval answers) | rejected | withdrawn | expired.
 *
 * Commands are updates (the caller needs the refusal: own change, wrong state) serialized on one
 * mutex; the mails go out after the decision has answered.
 */
export async function featureChange(input: FeatureChangeInput): Promise<FeatureChangeState> {
  if (!(input.ttlMs > 0)) throw ApplicationFailure.nonRetryable('ttlMs must be positive', 'invalid_input');
  const workflowId = workflowInfo().workflowId;
  const state: FeatureChangeState = {
    changeId: input.changeId, workspaceId: input.workspaceId, featureId: input.featureId, kind: input.kind, status: 'pending', proposedBy: input.proposedBy,
    expiresAt: iso(Date.now() + input.ttlMs), decidedBy: null, decidedAt: null, reason: null, revision: null, diff: null, seq: 0,
  };
  const mutex = new Mutex();
  const checks = decisionChecks('a feature change', () => state.status, () => state.expiresAt, input.proposedBy);
  const what = `${input.kind} ${input.proposal.name} (${input.proposal.key})`;

  async function project(action: string, actorId: string | null, comment?: string | null) {
    state.seq += 1;
    const at = new Date().toISOString();
    await projectFeatureChange({
      state: { ...state }, at,
      audit: {
        dedupeKey: `${workflowId}:${state.seq}`, workspaceId: state.workspaceId, subjectType: 'feature_change', subjectId: state.changeId,
        actorId, action, fromState: state.seq === 1 ? null : 'pending', toState: state.status, comment: comment ?? null, at,
      },
    });
  }
  const mail = (step: string, audience: 'reviewers' | 'proposer', subject: string, paragraphs: string[]) =>
    notifyFeature({
      dedupeKey: `${workflowId}:${step}`, workspaceId: state.workspaceId, audience, userId: input.proposedBy, subject, paragraphs,
      link: `/w/${state.workspaceId}/features/${state.featureId}`, kind: audience === 'reviewers' ? 'review_requests' : 'decisions',
    });

  setHandler(
    approveFeatureChangeUpdate,
    (d) =>
      mutex.run(async () => {
        checks.approve(d); // again: another command may have run while this one waited its turn
        state.seq += 1;
        const at = new Date().toISOString();
        // One transaction: the revision (snapshot + diff), the feature row, the change row and the audit line; a retry finds the revision and changes nothing.
        let applied: Awaited<ReturnType<typeof applyFeatureChange>>;
        try {
          applied = await applyFeatureChange({ changeId: state.changeId, actorId: d.actorId, comment: d.reason?.trim() || null, at, seq: state.seq, auditKey: `${workflowId}:${state.seq}` });
        } catch (err) {
          // A change that cannot be applied (its key was taken meanwhile) stays pending: the approver learns why.
          state.seq -= 1;
          if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) throw refuse(err.cause.type ?? FailureType.conflict, err.cause.message);
          throw err;
        }
        Object.assign(state, { status: 'approved', decidedBy: d.actorId, decidedAt: at, reason: d.reason?.trim() || null, revision: applied.revision, diff: applied.diff });
        return { ...state };
      }),
    { validator: checks.approve },
  );
  setHandler(
    rejectFeatureChangeUpdate,
    (d) =>
      mutex.run(async () => {
        checks.reject(d);
        Object.assign(state, { status: 'rejected', decidedBy: d.actorId, decidedAt: new Date().toISOString(), reason: d.reason!.trim() });
        await project('rejected', d.actorId, state.reason);
        return { ...state };
      }),
    { validator: checks.reject },
  );
  setHandler(
    withdrawFeatureChangeUpdate,
    (w) =>
      mutex.run(async () => {
        checks.withdraw(w);
        Object.assign(state, { status: 'withdrawn', decidedBy: w.actorId, decidedAt: new Date().toISOString() });
        await project('withdrawn', w.actorId);
        return { ...state };
      }),
    { validator: checks.withdraw },
  );
  setHandler(featureChangeStatusQuery, () => state);

  await mutex.run(() => project('proposed', input.proposedBy, input.comment || null));
  await mail('proposed', 'reviewers', `Feature change to review: ${what}`, [
    `{proposer} proposes to ${input.kind} the feature ${input.proposal.name} (${input.proposal.key}).`,
    ...(input.comment ? [`Their note: ${input.comment}`] : []),
    `Approve or reject it before ${state.expiresAt}.`,
  ]);

  // Wait for a decision; an undecided change expires.
  while (state.status === 'pending') {
    if (await condition(() => state.status !== 'pending', Math.max(1, Date.parse(state.expiresAt) - Date.now()))) break;
    await mutex.run(async () => {
      if (state.status !== 'pending' || Date.now() < Date.parse(state.expiresAt)) return;
      Object.assign(state, { status: 'expired', decidedAt: new Date().toISOString() });
      await project('expired', null);
    });
  }
  const status = state.status as FeatureChangeState['status'];
  if (status === 'approved') await mail('approved', 'proposer', `Feature change approved: ${what}`, [`Your change was approved: ${input.proposal.name} is now at revision ${state.revision}.`]);
  else if (status === 'rejected') await mail('rejected', 'proposer', `Feature change rejected: ${what}`, [`Your change was rejected.`, `Reason: ${state.reason}`]);
  else if (status === 'expired') await mail('expired', 'proposer', `Feature change expired: ${what}`, ['Nobody decided on your change in time; propose it again if it is still wanted.']);
  await condition(allHandlersFinished);
  return state;
}

/**
 * featureActivation: a mini program's application for an activation-needed feature. requested →
 * active | rejected | withdrawn | expired. The same rules as a feature change: a reviewer other
 * than the applicant decides, a rejection says why.
 */
export async function featureActivation(input: FeatureActivationInput): Promise<FeatureActivationState> {
  if (!(input.ttlMs > 0)) throw ApplicationFailure.nonRetryable('ttlMs must be positive', 'invalid_input');
  const workflowId = workflowInfo().workflowId;
  const state: FeatureActivationState = {
    miniProgramId: input.miniProgramId, featureId: input.featureId, workspaceId: input.workspaceId, attempt: input.attempt, status: 'requested',
    requestedBy: input.requestedBy, expiresAt: iso(Date.now() + input.ttlMs), decidedBy: null, decidedAt: null, reason: null, seq: 0,
  };
  const mutex = new Mutex();
  const checks = decisionChecks('an application', () => state.status, () => state.expiresAt, input.requestedBy);

  async function project(action: string, actorId: string | null, comment?: string | null) {
    state.seq += 1;
    const at = new Date().toISOString();
    await projectFeatureActivation({
      state: { ...state }, at,
      audit: {
        dedupeKey: `${workflowId}:${state.seq}`, workspaceId: state.workspaceId, subjectType: 'feature', subjectId: state.featureId,
        actorId, action: `activation_${action}`, fromState: state.seq === 1 ? null : 'requested', toState: state.status, comment: `${state.miniProgramId}${comment ? `: ${comment}` : ''}`, at,
      },
    });
  }
  const mail = (step: string, audience: 'reviewers' | 'proposer', subject: string, paragraphs: string[]) =>
    notifyFeature({
      dedupeKey: `${workflowId}:${step}`, workspaceId: state.workspaceId, audience, userId: input.requestedBy, subject, paragraphs,
      link: `/w/${state.workspaceId}/mini-programs/${state.miniProgramId}`, kind: audience === 'reviewers' ? 'review_requests' : 'decisions',
      miniProgramId: state.miniProgramId, featureId: state.featureId,
    });

  const decide = (status: 'active' | 'rejected', action: string) => (d: DecideInput) =>
    mutex.run(async () => {
      (status === 'active' ? checks.approve : checks.reject)(d);
      Object.assign(state, { status, decidedBy: d.actorId, decidedAt: new Date().toISOString(), reason: d.reason?.trim() || null });
      await project(action, d.actorId, state.reason);
      return { ...state };
    });
  setHandler(approveActivationUpdate, decide('active', 'approved'), { validator: checks.approve });
  setHandler(rejectActivationUpdate, decide('rejected', 'rejected'), { validator: checks.reject });
  setHandler(
    withdrawActivationUpdate,
    (w) =>
      mutex.run(async () => {
        checks.withdraw(w);
        Object.assign(state, { status: 'withdrawn', decidedBy: w.actorId, decidedAt: new Date().toISOString() });
        await project('withdrawn', w.actorId);
        return { ...state };
      }),
    { validator: checks.withdraw },
  );
  setHandler(featureActivationStatusQuery, () => state);

  await mutex.run(() => project('requested', input.requestedBy, input.message || null));
  await mail('requested', 'reviewers', 'Feature activation to review: {feature} for {miniProgram}', [
    '{requester} applies for the feature {feature} for the mini program {miniProgram}.',
    ...(input.message ? [`Their note: ${input.message}`] : []),
    `Approve or reject it before ${state.expiresAt}.`,
  ]);
  while (state.status === 'requested') {
    if (await condition(() => state.status !== 'requested', Math.max(1, Date.parse(state.expiresAt) - Date.now()))) break;
    await mutex.run(async () => {
      if (state.status !== 'requested' || Date.now() < Date.parse(state.expiresAt)) return;
      Object.assign(state, { status: 'expired', decidedAt: new Date().toISOString() });
      await project('expired', null);
    });
  }
  const status = state.status as FeatureActivationState['status'];
  if (status === 'active') await mail('approved', 'proposer', 'Feature activated: {feature} for {miniProgram}', ['{miniProgram} now holds the feature {feature}.']);
  else if (status === 'rejected') await mail('rejected', 'proposer', 'Feature activation rejected: {feature} for {miniProgram}', ['The application was rejected.', `Reason: ${state.reason}`]);
  else if (status === 'expired') await mail('expired', 'proposer', 'Feature activation expired: {feature} for {miniProgram}', ['Nobody decided on the application in time; apply again if it is still wanted.']);
  await condition(allHandlersFinished);
  return state;
}
