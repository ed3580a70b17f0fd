import {
  ActivityFailure, ApplicationFailure, allHandlersFinished, condition, proxyActivities, setHandler, uuid4, workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { FailureType } from './contracts/errors.js';
import {
  InvitationFailure, acceptUpdate, changeRoleUpdate, declineUpdate, invitationStatusQuery, resendUpdate, withdrawInvitationUpdate,
  type AcceptInput, type AdminCommand, type InvitationInput, type InvitationState, type InvitationStatus, type TokenProof,
} from './contracts/invitation.js';
import { Mutex } from './lib/mutex.js';
import { external, projection } from './profiles.js';

const { projectInvitation, invitationTokenHash, acceptInvitation } = proxyActivities<Activities>(projection);
const { sendInvitationMail } = proxyActivities<Activities>(external);

/** The workspace roles an invitation can carry (kept here: workflow code imports no server module). */
const invitableRoles: readonly string[] = ['admin', 'reviewer', 'developer'];

const refuse = (type: string, message: string, details?: Record<string, unknown>) =>
  ApplicationFailure.create({ type, message, nonRetryable: true, ...(details ? { details: [details] } : {}) });

const wrongState = (status: InvitationStatus, action: string) => refuse(FailureType.wrongState, `cannot ${action} an invitation that is ${status}`, { status });

/**
 * memberInvitation: one invitation's life. Mail the link → wait for accept / decline / withdraw,
 * with a reminder before the deadline → expire. Id: invitation:<invitationId>.
 *
 * Every command is an update that waits its turn on one mutex and answers only once the read
 * model (and its audit line) has the new state, so the public link is refused the moment a
 * withdraw or a resend has answered.
 */
export async function memberInvitation(input: InvitationInput): Promise<InvitationState> {
  if (!(input.ttlMs > 0)) throw ApplicationFailure.nonRetryable('ttlMs must be positive', 'invalid_input');
  const workflowId = workflowInfo().workflowId;
  let base = Date.now();
  const state: InvitationState = {
    invitationId: input.invitationId, workspaceId: input.workspaceId, email: input.email, role: input.role, status: 'pending',
    invitedBy: input.invitedBy, batchId: input.batchId ?? null, createdAt: new Date(base).toISOString(), expiresAt: new Date(base + input.ttlMs).toISOString(),
    remindedAt: null, decidedAt: null, acceptedUserId: null, tokenHash: null, tokenVersion: 1, seq: 0,
  };
  // The token's nonce: with the worker's secret key it derives the token; alone it is worthless.
  let tokenNonce = uuid4();
  const mutex = new Mutex();
  const remindAfter = input.reminderMs > 0 && input.reminderMs < input.ttlMs ? input.reminderMs : null;

  /** Records a change: the next seq, then the row and its audit line (awaited, so answers follow the read model). */
  async function project(action: string, actorId: string | null, from: InvitationStatus | null, comment?: string) {
    state.seq += 1;
    const at = new Date().toISOString();
    await projectInvitation({
      state: { ...state }, at,
      audit: {
        dedupeKey: `${workflowId}:${state.seq}`, workspaceId: state.workspaceId, subjectType: 'invitation', subjectId: state.invitationId,
        actorId, action, fromState: from, toState: state.status, comment: comment ?? null, at,
      },
    });
  }

  async function mail(kind: 'invite' | 'reminder') {
    await sendInvitationMail({
      dedupeKey: `${workflowId}:${kind}:${state.tokenVersion}`, kind, invitationId: state.invitationId, workspaceId: state.workspaceId,
      email: state.email, role: state.role, invitedBy: state.invitedBy, expiresAt: state.expiresAt, tokenNonce,
    });
  }

  const checkScope = (c: AdminCommand) => {
    if (c.workspaceId && c.workspaceId !== state.workspaceId) throw refuse(FailureType.notFound, 'invitation not found');
  };
  const checkPending = (action: string) => {
    if (state.status !== 'pending') throw wrongState(state.status, action);
    if (Date.now() >= Date.parse(state.expiresAt)) throw wrongState('expired', action);
  };
  const checkToken = (p: TokenProof) => {
    if (!state.tokenHash || p.tokenHash !== state.tokenHash) throw refuse(InvitationFailure.invalidToken, 'this invitation link is not valid (a newer one may have been sent)');
  };
  const acceptingUser = (a: AcceptInput) => a.existingUserId ?? a.newAccount?.userId;
  /** A repeated accept of the same link by the same account answers like the first one. */
  const isRepeat = (a: AcceptInput) => state.status === 'accepted' && !!state.acceptedUserId && acceptingUser(a) === state.acceptedUserId;

  const acceptValidator = (a: AcceptInput) => {
    checkToken(a);
    if (isRepeat(a)) return;
    checkPending('accept');
    if (!acceptingUser(a)) throw refuse('validation_failed', 'accepting needs an account: sign in, or choose a name and a password');
  };
  setHandler(
    acceptUpdate,
    (a) =>
      mutex.run(async () => {
        acceptValidator(a); // again: another command may have run while this one waited its turn
        if (isRepeat(a)) return { state, userId: state.acceptedUserId!, accountCreated: false };
        let outcome: { userId: string; accountCreated: boolean };
        try {
          outcome = await acceptInvitation({ invitationId: state.invitationId, workspaceId: state.workspaceId, email: state.email, role: state.role, existingUserId: a.existingUserId, newAccount: a.newAccount });
        } catch (err) {
          // The account question is the invitee's to fix; the invitation stays pending.
          if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === InvitationFailure.accountExists) throw refuse(InvitationFailure.accountExists, err.cause.message);
          throw err;
        }
        state.status = 'accepted';
        state.decidedAt = new Date().toISOString();
        state.acceptedUserId = outcome.userId;
        await project('accepted', outcome.userId, 'pending', outcome.accountCreated ? 'account created' : undefined);
        return { state, ...outcome };
      }),
    { validator: acceptValidator },
  );

  const declineValidator = (p: TokenProof) => {
    checkToken(p);
    checkPending('decline');
  };
  setHandler(
    declineUpdate,
    (p) =>
      mutex.run(async () => {
        declineValidator(p);
        state.status = 'declined';
        state.decidedAt = new Date().toISOString();
        await project('declined', null, 'pending');
        return state;
      }),
    { validator: declineValidator },
  );

  const adminValidator = (action: string) => (c: AdminCommand) => {
    checkScope(c);
    checkPending(action);
  };
  setHandler(
    resendUpdate,
    (c) =>
      mutex.run(async () => {
        adminValidator('resend')(c);
        // A new token replaces the old one (whose hash no longer matches) and the clock restarts.
        tokenNonce = uuid4();
        state.tokenVersion += 1;
        base = Date.now();
        state.expiresAt = new Date(base + input.ttlMs).toISOString();
        state.remindedAt = null;
        state.tokenHash = await invitationTokenHash({ invitationId: state.invitationId, tokenNonce });
        await project('resent', c.actorId, 'pending');
        await mail('invite');
        return state;
      }),
    { validator: adminValidator('resend') },
  );
  setHandler(
    withdrawInvitationUpdate,
    (c) =>
      mutex.run(async () => {
        adminValidator('withdraw')(c);
        state.status = 'withdrawn';
        state.decidedAt = new Date().toISOString();
        await project('withdrawn', c.actorId, 'pending');
        return state;
      }),
    { validator: adminValidator('withdraw') },
  );
  const changeRoleValidator = (c: AdminCommand & { role: string }) => {
    adminValidator('change the role of')(c);
    if (!invitableRoles.includes(c.role)) throw refuse('validation_failed', `unknown role ${c.role}`);
  };
  setHandler(
    changeRoleUpdate,
    (c) =>
      mutex.run(async () => {
        changeRoleValidator(c);
        if (c.role === state.role) return state;
        const from = state.role;
        state.role = c.role;
        await project('role_changed', c.actorId, 'pending', `${from} → ${c.role}`);
        return state;
      }),
    { validator: changeRoleValidator },
  );
  setHandler(invitationStatusQuery, () => state);

  // The first token, the row, the mail — under the mutex, so a command waits until the link exists.
  await mutex.run(async () => {
    state.tokenHash = await invitationTokenHash({ invitationId: state.invitationId, tokenNonce });
    await project('invited', input.invitedBy, null, `as ${state.role}`);
    if (state.status === 'pending') await mail('invite');
  });

  // Wait for a decision; a resend restarts both the reminder and the expiry clocks.
  while (state.status === 'pending') {
    const version = state.tokenVersion;
    const expiresAt = base + input.ttlMs;
    const remindAt = remindAfter !== null && !state.remindedAt ? base + remindAfter : Infinity;
    const next = Math.min(expiresAt, remindAt);
    const interrupted = await condition(() => state.status !== 'pending' || state.tokenVersion !== version, Math.max(1, next - Date.now()));
    if (interrupted) continue;
    await mutex.run(async () => {
      // Deadlines again from the current clock base: a resend may have moved them meanwhile.
      if (state.status !== 'pending' || state.tokenVersion !== version) return;
      if (Date.now() >= base + input.ttlMs) {
        state.status = 'expired';
        state.decidedAt = new Date().toISOString();
        await project('expired', null, 'pending');
      } else if (remindAfter !== null && !state.remindedAt && Date.now() >= base + remindAfter) {
        await mail('reminder');
        state.remindedAt = new Date().toISOString();
        await project('reminded', null, 'pending');
      }
    });
  }

  await condition(allHandlersFinished);
  return state;
}
