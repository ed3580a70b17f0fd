import { ApplicationFailure, allHandlersFinished, condition, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { AuthorizationMailInput } from '../activities/authorizations.js';
import {
  approveAuthorizationUpdate, authorizationStatusQuery, cancelRevocationUpdate, denyAuthorizationUpdate, isvScopes, revokeAuthorizationUpdate,
  withdrawAuthorizationUpdate, type ApproveAuthorizationInput, type AuthorizationInput, type AuthorizationState, type AuthorizationStatus,
  type DenyAuthorizationInput, type RevocationReport, type RevocationStep, type RevokeAuthorizationInput, type RevokeTrigger,
} from './contracts/authorization.js';
import { FailureType } from './contracts/errors.js';
import { Mutex } from './lib/mutex.js';
import { external, projection } from './profiles.js';

const { projectAuthorization } = proxyActivities<Activities>(projection);
// Each cascade step is idempotent (its items are written with the cut, keyed by item), so a retry
// after a dead worker redoes only what is left and reports every item once.
const { notifyAuthorization, revokeWithdrawSubmissions, revokeRemoveTesters, revokePreviewLinks } = proxyActivities<Activities>(external);

const refuse = (type: string, message: string, details: Record<string, unknown> = {}) => ApplicationFailure.create({ type, message, details: [details], nonRetryable: true });
const wrongState = (status: AuthorizationStatus, action: string) => refuse(FailureType.wrongState, `cannot ${action} an authorization that is ${status}`, { status });
const invalid = (message: string) => refuse('validation_failed', message);
const iso = (ms: number) => new Date(ms).toISOString();
/** A future date given as ISO text, in ms; refused when it is not a date. */
const parseDate = (text: string, what: string) => {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw invalid(`${what} is not a date`);
  return ms;
};

interface PendingRevocation {
  trigger: RevokeTrigger;
  actorId: string | null;
  reason: string;
  requestedAt: string;
}

/**
 * developerAuthorization: one developer (ISV) workspace's authorization on some of a merchant's
 * mini programs. requested → approved (active) | denied | withdrawn | expired; active → (reminder
 * before endsAt) → revocation (now, scheduled, or at endsAt as a lapse) → revoked | lapsed.
 *
 * Every command is an update serialized on one mutex that answers once the read model has the new
 * state; a revoke answers once access is cut, so the ISV's very next request is refused.
 */
export async function developerAuthorization(input: AuthorizationInput): Promise<AuthorizationState> {
  if (!(input.requestTtlMs > 0)) throw ApplicationFailure.nonRetryable('requestTtlMs must be positive', 'invalid_input');
  if (!input.miniProgramIds.length || !input.scope.length) throw ApplicationFailure.nonRetryable('an authorization needs mini programs and a scope', 'invalid_input');
  const workflowId = workflowInfo().workflowId;
  const startedAt = Date.now();
  const state: AuthorizationState = {
    authorizationId: input.authorizationId, developerWorkspaceId: input.developerWorkspaceId, merchantWorkspaceId: input.merchantWorkspaceId, status: 'requested',
    requestedMiniProgramIds: [...input.miniProgramIds], requestedScope: [...input.scope], miniProgramIds: [], scope: [], endsAt: input.endsAt,
    message: input.message, requestedBy: input.requestedBy, requestedAt: iso(startedAt), requestExpiresAt: iso(startedAt + input.requestTtlMs),
    decidedBy: null, decidedAt: null, decisionReason: null, revokeScheduledAt: null, revokeTrigger: null, revokedBy: null, revokeReason: null, revokedAt: null,
    report: null, history: [], seq: 0,
  };
  const mutex = new Mutex();
  let pending: PendingRevocation | null = null;
  let accessCut = false;
  /** Rises whenever a scheduled revocation is set, moved or cancelled: the active loop recomputes its deadline. */
  let scheduleVersion = 0;

  /** Records a change: the next seq, a history line, then the row (and report) and its audit line. */
  async function project(action: string, actorId: string | null, from: AuthorizationStatus | null, comment?: string) {
    state.seq += 1;
    const at = new Date().toISOString();
    state.history.push({ at, action, actorId, ...(comment ? { comment } : {}) });
    await projectAuthorization({
      state: { ...state }, at,
      audit: {
        dedupeKey: `${workflowId}:${state.seq}`, workspaceId: state.merchantWorkspaceId, subjectType: 'authorization', subjectId: state.authorizationId,
        actorId, action, fromState: from, toState: state.status, comment: comment ?? null, at,
      },
    });
  }

  async function mail(step: string, audience: AuthorizationMailInput['audience'], subject: string, paragraphs: string[], recordFor?: string) {
    return notifyAuthorization({
      dedupeKey: `${workflowId}:${step}`, audience, authorizationId: state.authorizationId, developerWorkspaceId: state.developerWorkspaceId,
      merchantWorkspaceId: state.merchantWorkspaceId, subject, paragraphs, ...(recordFor ? { recordFor } : {}),
      miniProgramIds: state.miniProgramIds.length ? state.miniProgramIds : state.requestedMiniProgramIds, scope: state.scope.length ? state.scope : state.requestedScope,
    });
  }

  const checkRequested = (action: string) => {
    if (state.status !== 'requested') throw wrongState(state.status, action);
    if (Date.now() >= Date.parse(state.requestExpiresAt)) throw wrongState('expired', action);
  };

  /** The grant an approval makes: each part a non-empty subset of the request (not_a_narrowing otherwise). */
  function grantOf(a: ApproveAuthorizationInput) {
    const miniProgramIds = a.miniProgramIds ? [...new Set(a.miniProgramIds)] : state.requestedMiniProgramIds;
    const scope = a.scope ? [...new Set(a.scope)] : state.requestedScope;
    if (!miniProgramIds.length) throw invalid('grant at least one mini program');
    if (!scope.length) throw invalid('grant at least one scope');
    const unknownScope = scope.filter((s) => !isvScopes.includes(s));
    if (unknownScope.length) throw invalid(`unknown scope ${unknownScope.join(', ')}`);
    const extraPrograms = miniProgramIds.filter((id) => !state.requestedMiniProgramIds.includes(id));
    const extraScope = scope.filter((s) => !state.requestedScope.includes(s));
    if (extraPrograms.length || extraScope.length) {
      throw refuse('not_a_narrowing', 'an approval may only narrow what was requested', { miniProgramIds: extraPrograms, scope: extraScope });
    }
    let endsAt = a.endsAt === undefined ? state.endsAt : a.endsAt;
    if (endsAt !== null) {
      const ends = parseDate(endsAt, 'endsAt');
      if (ends <= Date.now()) throw invalid('endsAt must be in the future');
      if (state.endsAt !== null && ends > Date.parse(state.endsAt)) throw refuse('not_a_narrowing', 'the end date may only come before the requested one', { endsAt: state.endsAt });
      endsAt = iso(ends);
    } else if (state.endsAt !== null) {
      throw refuse('not_a_narrowing', 'the request ends on a date; an approval cannot make it open-ended', { endsAt: state.endsAt });
    }
    return { miniProgramIds, scope, endsAt };
  }

  const approveValidator = (a: ApproveAuthorizationInput) => {
    checkRequested('approve');
    grantOf(a);
  };
  setHandler(
    approveAuthorizationUpdate,
    (a) =>
      mutex.run(async () => {
        approveValidator(a); // again: another command may have run while this one waited its turn
        const grant = grantOf(a);
        Object.assign(state, grant, { status: 'active', decidedBy: a.actorId, decidedAt: new Date().toISOString(), decisionReason: a.comment ?? null });
        const narrowed = grant.miniProgramIds.length < state.requestedMiniProgramIds.length || grant.scope.length < state.requestedScope.length;
        await project('approved', a.actorId, 'requested', a.comment ?? (narrowed ? 'narrowed' : undefined));
        return state;
      }),
    { validator: approveValidator },
  );

  const denyValidator = (d: DenyAuthorizationInput) => {
    checkRequested('deny');
    if (!d.reason?.trim()) throw invalid('a denial needs a reason');
  };
  setHandler(
    denyAuthorizationUpdate,
    (d) =>
      mutex.run(async () => {
        denyValidator(d);
        Object.assign(state, { status: 'denied', decidedBy: d.actorId, decidedAt: new Date().toISOString(), decisionReason: d.reason.trim() });
        await project('denied', d.actorId, 'requested', d.reason.trim());
        return state;
      }),
    { validator: denyValidator },
  );

  const withdrawValidator = (_c: { actorId: string }) => checkRequested('withdraw');
  setHandler(
    withdrawAuthorizationUpdate,
    (c) =>
      mutex.run(async () => {
        withdrawValidator(c);
        Object.assign(state, { status: 'withdrawn', decidedBy: c.actorId, decidedAt: new Date().toISOString() });
        await project('withdrawn', c.actorId, 'requested');
        return state;
      }),
    { validator: withdrawValidator },
  );

  const checkActive = (action: string) => {
    if (state.status !== 'active') throw wrongState(state.status, action);
    if (pending) throw wrongState('revoking', action);
  };
  const revokeValidator = (r: RevokeAuthorizationInput) => {
    checkActive('revoke');
    if (r.by !== 'merchant' && r.by !== 'developer') throw invalid('by must be merchant or developer');
    if (typeof r.reason !== 'string') throw invalid('a revocation needs a reason');
    if (r.at !== undefined) parseDate(r.at, 'at');
  };
  setHandler(
    revokeAuthorizationUpdate,
    async (r) => {
      const scheduled = await mutex.run(async () => {
        revokeValidator(r);
        const at = r.at !== undefined ? parseDate(r.at, 'at') : null;
        Object.assign(state, { revokeTrigger: r.by, revokedBy: r.actorId, revokeReason: r.reason.trim() });
        if (at !== null && at > Date.now()) {
          // Scheduled: the active loop wakes at that time; a later revoke replaces the schedule.
          state.revokeScheduledAt = iso(at);
          scheduleVersion += 1;
          await project('revocation_scheduled', r.actorId, 'active', `for ${state.revokeScheduledAt}${r.reason.trim() ? `: ${r.reason.trim()}` : ''}`);
          return true;
        }
        state.revokeScheduledAt = null;
        pending = { trigger: r.by, actorId: r.actorId, reason: r.reason.trim(), requestedAt: new Date().toISOString() };
        return false;
      });
      // Revoke now answers once access is cut (the projection says revoking): the caller's next
      // request as the ISV is refused. The rest of the cascade runs on in the workflow.
      if (!scheduled) await condition(() => accessCut);
      return state;
    },
    { validator: revokeValidator },
  );

  const cancelValidator = (_c: { actorId: string }) => {
    checkActive('cancel the revocation of');
    if (!state.revokeScheduledAt) throw wrongState(state.status, 'cancel a revocation (none is scheduled) of');
  };
  setHandler(
    cancelRevocationUpdate,
    (c) =>
      mutex.run(async () => {
        cancelValidator(c);
        Object.assign(state, { revokeScheduledAt: null, revokeTrigger: null, revokedBy: null, revokeReason: null });
        scheduleVersion += 1;
        await project('revocation_cancelled', c.actorId, 'active');
        return state;
      }),
    { validator: cancelValidator },
  );
  setHandler(authorizationStatusQuery, () => state);

  // The request: the row, then the merchant's Admins are told.
  await mutex.run(() => project('requested', input.requestedBy, null, input.message || undefined));
  await mail('requested', 'merchant_admins', 'Authorization requested by {developer}', [
    '{developer} asks to work on {programs} of {merchant} with these rights: {scope}.',
    ...(input.message ? [`Their message: ${input.message}`] : []),
    `Approve (possibly narrowing it) or deny it before ${state.requestExpiresAt}.`,
  ]);

  // Wait for a decision; an undecided request expires.
  while (state.status === 'requested') {
    const decided = await condition(() => state.status !== 'requested', Math.max(1, Date.parse(state.requestExpiresAt) - Date.now()));
    if (decided) break;
    await mutex.run(async () => {
      if (state.status !== 'requested' || Date.now() < Date.parse(state.requestExpiresAt)) return;
      Object.assign(state, { status: 'expired', decidedAt: new Date().toISOString() });
      await project('expired', null, 'requested');
    });
  }
  // The decision's mail goes out after the command has answered, so no answer waits for SMTP.
  const status = state.status as AuthorizationStatus;
  if (status === 'active') {
    await mail('approved', 'developer_admins', 'Authorization granted by {merchant}', [
      '{merchant} granted {developer} access to {programs} with these rights: {scope}.',
      state.endsAt ? `It ends on ${state.endsAt}.` : 'It has no end date; either side can end it at any time.',
    ]);
  } else if (status === 'denied') {
    await mail('denied', 'developer_admins', 'Authorization denied by {merchant}', ['{merchant} denied the authorization {developer} requested.', `Reason: ${state.decisionReason}`]);
  } else if (status === 'expired') {
    await mail('expired', 'both', 'Authorization request expired', ['The authorization {developer} requested from {merchant} expired without a decision.']);
  } else if (status === 'withdrawn') {
    await mail('withdrawn', 'merchant_admins', 'Authorization request withdrawn by {developer}', ['{developer} withdrew its authorization request; nothing is left to decide.']);
  }
  if (state.status !== 'active') {
    await condition(allHandlersFinished);
    return state;
  }

  // Active: wait for a revocation (now, at its scheduled time, or the end date), reminding both
  // sides once before the end date.
  let remindedAt: number | null = null;
  const endsAt = state.endsAt ? Date.parse(state.endsAt) : null;
  const remindAt = endsAt !== null && input.lapseReminderMs > 0 ? endsAt - input.lapseReminderMs : null;
  while (!pending) {
    const version = scheduleVersion;
    const scheduledAt = state.revokeScheduledAt ? Date.parse(state.revokeScheduledAt) : Infinity;
    const next = Math.min(endsAt ?? Infinity, scheduledAt, remindAt !== null && remindedAt === null ? remindAt : Infinity);
    const wake = () => pending !== null || scheduleVersion !== version;
    if (next === Infinity) {
      await condition(wake);
      continue;
    }
    if (await condition(wake, Math.max(1, next - Date.now()))) continue;
    await mutex.run(async () => {
      if (pending || scheduleVersion !== version) return;
      const now = Date.now();
      if (endsAt !== null && now >= endsAt) {
        pending = { trigger: 'lapse', actorId: null, reason: 'the authorization reached its end date', requestedAt: new Date().toISOString() };
      } else if (state.revokeScheduledAt && now >= Date.parse(state.revokeScheduledAt)) {
        pending = { trigger: state.revokeTrigger ?? 'merchant', actorId: state.revokedBy, reason: state.revokeReason ?? '', requestedAt: new Date().toISOString() };
      } else if (remindAt !== null && remindedAt === null && now >= remindAt) {
        await mail('lapse-reminder', 'both', 'Authorization ends soon', [`The authorization of {developer} on {programs} of {merchant} ends on ${state.endsAt}.`]);
        remindedAt = now;
        await project('reminded', null, 'active', `ends ${state.endsAt}`);
      }
    });
  }

  // The revocation: durable step by step; each step's items come from its activity, so a step
  // redone after a crash reports what it cut exactly once.
  const revocation: PendingRevocation = pending;
  const report: RevocationReport = {
    authorizationId: state.authorizationId, developerWorkspaceId: state.developerWorkspaceId, merchantWorkspaceId: state.merchantWorkspaceId,
    trigger: revocation.trigger, requestedBy: revocation.actorId, reason: revocation.reason, requestedAt: revocation.requestedAt,
    cutOff: null, withdrawn: [], leftRunning: [], testersRemoved: [], previewLinksRevoked: [], mailed: [], steps: [], completedAt: null,
  };
  const grant = { authorizationId: state.authorizationId, developerWorkspaceId: state.developerWorkspaceId, merchantWorkspaceId: state.merchantWorkspaceId, miniProgramIds: state.miniProgramIds };

  async function step(name: RevocationStep['name'], action: string, run: () => Promise<number>) {
    const entry: RevocationStep = { name, startedAt: new Date().toISOString(), finishedAt: null, count: 0 };
    report.steps.push(entry);
    entry.count = await run();
    entry.finishedAt = new Date().toISOString();
    await project(action, revocation.actorId, 'revoking', `${entry.count}`);
  }

  await mutex.run(async () => {
    const cut: RevocationStep = { name: 'cut_access', startedAt: new Date().toISOString(), finishedAt: null, count: state.miniProgramIds.length };
    report.steps.push(cut);
    Object.assign(state, { status: 'revoking', revokeTrigger: revocation.trigger, revokedBy: revocation.actorId, revokeReason: revocation.reason, revokeScheduledAt: null, report });
    report.cutOff = { miniProgramIds: [...state.miniProgramIds], scope: [...state.scope], at: cut.startedAt };
    cut.finishedAt = new Date().toISOString();
    // The access check honours only 'active': once this row says revoking, every ISV request on these mini programs is refused.
    await project('access_cut', revocation.actorId, 'active', revocation.reason || undefined);
  });
  accessCut = true;

  await step('withdraw_submissions', 'submissions_withdrawn', async () => {
    const r = await revokeWithdrawSubmissions({ ...grant, actorId: revocation.actorId ?? 'system:revocation' });
    report.withdrawn = r.withdrawn;
    report.leftRunning = r.leftRunning;
    return r.withdrawn.length;
  });
  await step('remove_testers', 'testers_removed', async () => {
    report.testersRemoved = await revokeRemoveTesters(grant);
    return report.testersRemoved.length;
  });
  await step('revoke_preview_links', 'preview_links_revoked', async () => {
    report.previewLinksRevoked = await revokePreviewLinks(grant);
    return report.previewLinksRevoked.length;
  });
  const lapsed = revocation.trigger === 'lapse';
  await step('mail', 'revocation_mailed', async () => {
    const who = revocation.trigger === 'developer' ? '{developer} gave up its authorization' : lapsed ? 'The authorization reached its end date' : '{merchant} revoked the authorization';
    report.mailed = await mail('revoked', 'both', lapsed ? 'Authorization lapsed' : 'Authorization revoked', [
      `${who}: {developer} no longer has access to {programs} of {merchant}.`,
      ...(revocation.reason && !lapsed ? [`Reason: ${revocation.reason}`] : []),
      `Submissions withdrawn: ${report.withdrawn.length}. Releases left running: ${report.leftRunning.length}. Testers removed: ${report.testersRemoved.length}. Preview links revoked: ${report.previewLinksRevoked.length}.`,
      'The full revocation report is on the authorization page.',
    ], state.authorizationId);
    return report.mailed.length;
  });

  await mutex.run(async () => {
    const at = new Date().toISOString();
    Object.assign(state, { status: lapsed ? 'lapsed' : 'revoked', revokedAt: at });
    report.completedAt = at;
    await project(lapsed ? 'lapsed' : 'revoked', revocation.actorId, 'revoking', revocation.reason || undefined);
  });
  await condition(allHandlersFinished);
  return state;
}
