import {
  ApplicationFailure, ParentClosePolicy, allHandlersFinished, condition, proxyActivities, setHandler, startChild, uuid4, workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import {
  applicationStatusQuery, approveApplicationUpdate, denyApplicationUpdate,
  type AccountApplicationInput, type ApplicationProjection, type ApplicationState, type ApplicationStatus, type PasswordResetInput,
} from './contracts/account-application.js';
import { FailureType } from './contracts/errors.js';
import { invitationWorkflowId, invitationWorkflowType, type InvitationInput } from './contracts/invitation.js';
import { external, projection } from './profiles.js';

const { projectApplication, createApplicationWorkspace } = proxyActivities<Activities>(projection);
const { notifyOperators, notifyApplicant, sendPasswordReset } = proxyActivities<Activities>(external);

const compactId = (prefix: string) => `${prefix}_${uuid4().replace(/-/g, '')}`;

/**
 * AccountApplication: someone asks for an account; platform operators are mailed and decide.
 * Approve creates the workspace and invites the applicant as its Admin (a `memberInvitation`
 * child that outlives this workflow); deny mails the reason; nobody deciding brings a reminder to
 * the operators, then expiry. Id: application:<applicationId>.
 */
export async function accountApplication(input: AccountApplicationInput): Promise<ApplicationState> {
  const state: ApplicationState = {
    applicationId: input.applicationId,
    status: 'pending',
    decidedBy: null,
    reason: null,
    workspaceId: null,
    workspaceName: null,
    workspaceCode: null,
    invitationId: null,
    reminded: false,
    // The API wrote seq 1 when it stored the application; the workflow's writes start above it.
    seq: 1,
  };
  const workflowId = workflowInfo().workflowId;
  const startedAt = Date.now();
  const pending: ApplicationProjection[] = [];

  /** Records a step in the projection queue (synchronously, so steps keep their order). */
  function record(action: string, actorId: string | null, from: ApplicationStatus | null, comment: string | null, extra: { remindedAt?: string; decidedAt?: string } = {}) {
    state.seq += 1;
    pending.push({
      applicationId: state.applicationId, status: state.status, decidedBy: state.decidedBy, reason: state.reason,
      workspaceId: state.workspaceId, invitationId: state.invitationId, remindedAt: extra.remindedAt ?? null, decidedAt: extra.decidedAt ?? null,
      at: new Date().toISOString(), seq: state.seq,
      audit: { dedupeKey: `${workflowId}:${state.seq}`, actorId, action, fromState: from, toState: state.status, comment },
    });
  }

  // The projector: one write at a time, in seq order, until the story is over and the queue empty.
  let finished = false;
  const projector = (async () => {
    for (;;) {
      await condition(() => pending.length > 0 || finished);
      if (!pending.length) return;
      await projectApplication(pending[0]!);
      pending.shift();
    }
  })();

  const mustBePending = (action: string) => {
    if (state.status !== 'pending') {
      throw ApplicationFailure.create({ type: FailureType.wrongState, message: `cannot ${action} an application that is ${state.status}`, details: [{ status: state.status }], nonRetryable: true });
    }
  };
  const approveValidator = (_d: { actorId: string }) => mustBePending('approve');
  const denyValidator = (d: { reason?: string }) => {
    mustBePending('deny');
    if (!d.reason?.trim()) throw ApplicationFailure.create({ type: 'reason_required', message: 'a denial needs a reason for the applicant', nonRetryable: true });
  };

  setHandler(applicationStatusQuery, () => state);
  setHandler(
    approveApplicationUpdate,
    async (d) => {
      approveValidator(d);
      // Decided at once, so a racing deny or a second approve is refused while the workspace is made.
      state.status = 'approved';
      state.decidedBy = d.actorId;
      const decidedAt = new Date().toISOString();
      // Ids minted here (recorded in history): a retried activity lands on the same workspace, and
      // the invitation id is the child's workflow id, so it can be started once only.
      const ws = await createApplicationWorkspace({ workspaceId: compactId('ws'), applicationId: input.applicationId, company: input.company });
      state.workspaceId = ws.workspaceId;
      state.workspaceName = ws.name;
      state.workspaceCode = ws.code;
      const invitationId = compactId('inv');
      const invitation: InvitationInput = {
        invitationId, workspaceId: ws.workspaceId, email: input.email, role: 'admin', invitedBy: null,
        ttlMs: input.invitation.ttlMs, reminderMs: input.invitation.reminderMs,
      };
      // ABANDON: the invitation lives on (reminders, expiry, accept) after this workflow completes.
      await startChild(invitationWorkflowType, { workflowId: invitationWorkflowId(invitationId), args: [invitation], parentClosePolicy: ParentClosePolicy.ABANDON });
      state.invitationId = invitationId;
      record('approved', d.actorId, 'pending', `workspace ${ws.name} (${ws.code})`, { decidedAt });
      return state;
    },
    { validator: approveValidator },
  );
  setHandler(
    denyApplicationUpdate,
    (d) => {
      denyValidator(d);
      state.status = 'denied';
      state.decidedBy = d.actorId;
      state.reason = d.reason.trim();
      record('denied', d.actorId, 'pending', state.reason, { decidedAt: new Date().toISOString() });
      return state;
    },
    { validator: denyValidator },
  );

  record('submitted', null, null, null);
  await notifyOperators({ dedupeKey: `${workflowId}:submitted`, applicationId: input.applicationId, reminder: false });

  // Wait for a decision: first until the reminder, then until expiry (both measured from the start).
  if (input.reminderMs > 0 && input.reminderMs < input.ttlMs && state.status === 'pending') {
    const decided = await condition(() => state.status !== 'pending', Math.max(1, startedAt + input.reminderMs - Date.now()));
    if (!decided) {
      state.reminded = true;
      record('reminded', null, 'pending', null, { remindedAt: new Date().toISOString() });
      await notifyOperators({ dedupeKey: `${workflowId}:reminder`, applicationId: input.applicationId, reminder: true });
    }
  }
  if (state.status === 'pending') {
    const decided = await condition(() => state.status !== 'pending', Math.max(1, startedAt + input.ttlMs - Date.now()));
    if (!decided) {
      state.status = 'expired';
      record('expired', null, 'pending', null, { decidedAt: new Date().toISOString() });
    }
  }

  const outcome = state.status as ApplicationStatus; // changed by a handler or the expiry meanwhile
  if (outcome === 'denied' || outcome === 'expired') {
    await notifyApplicant({ dedupeKey: `${workflowId}:${outcome}`, applicationId: input.applicationId, outcome, reason: state.reason });
  }

  await condition(allHandlersFinished);
  finished = true;
  await projector;
  return state;
}

/**
 * PasswordResetMail: mails one single-use reset link, id password-reset:<resetId>. The activity
 * makes the token and stores only its hash, so the token never enters this workflow's history.
 * A workflow (not a direct send from the API) so the mail is retried while SMTP is down.
 */
export async function passwordResetMail(input: PasswordResetInput): Promise<void> {
  await sendPasswordReset({ dedupeKey: `${workflowInfo().workflowId}:mail`, resetId: input.resetId, email: input.email, ttlMs: input.ttlMs });
}
