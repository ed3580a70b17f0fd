import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  applicationStatusQuery, applicationWorkflowId, approveApplicationUpdate, denyApplicationUpdate, passwordResetWorkflowId,
  type AccountApplicationInput, type ApplicationProjection,
} from '../../workflows/contracts/account-application.js';
import { invitationStatusQuery, invitationWorkflowId } from '../../workflows/contracts/invitation.js';
import { eventually } from '../helpers/eventually.js';
import { maybeRecordHistory, refusal, startTestWorker, uid } from '../helpers/workflow-env.js';

/** Plain-function activities that record what the workflows asked for. */
const calls: { name: string; input: any }[] = [];
const rec = (name: string) => async (input: any) => void calls.push({ name, input });
const activities: Partial<Activities> = {
  projectApplication: rec('projectApplication'),
  notifyApplicant: rec('notifyApplicant'),
  async notifyOperators(input) {
    calls.push({ name: 'notifyOperators', input });
    return { sent: 1 };
  },
  async createApplicationWorkspace(input) {
    calls.push({ name: 'createApplicationWorkspace', input });
    return { workspaceId: input.workspaceId, name: input.company, code: 'HARBOUR' };
  },
  async sendPasswordReset(input) {
    calls.push({ name: 'sendPasswordReset', input });
    return { sent: true };
  },
  // The Admin invitation an approval starts runs for real; its side effects are recorded here.
  projectInvitation: rec('projectInvitation'),
  async invitationTokenHash() {
    return 'f'.repeat(64);
  },
  async sendInvitationMail(input) {
    calls.push({ name: 'sendInvitationMail', input });
    return 'sent';
  },
};

let env: Awaited<ReturnType<typeof startTestWorker>>;
let client: Client;

beforeAll(async () => {
  env = await startTestWorker(activities);
  client = env.client;
});
afterAll(async () => env?.stop());

const callsFor = (applicationId: string, name: string) => calls.filter((c) => c.name === name && c.input.applicationId === applicationId).map((c) => c.input);

async function apply(o: { reminderMs?: number; ttlMs?: number } = {}) {
  const applicationId = uid('app_');
  const input: AccountApplicationInput = {
    applicationId, company: 'Harbour Foods', contactName: 'Hana Harbour', email: `hana-${applicationId}@example.test`, intendedUse: 'A loyalty mini program',
    reminderMs: o.reminderMs ?? 0, ttlMs: o.ttlMs ?? 60_000, invitation: { ttlMs: 60_000, reminderMs: 0 },
  };
  const handle = await client.workflow.start('accountApplication', { workflowId: applicationWorkflowId(applicationId), taskQueue: env.taskQueue, args: [input] });
  return { applicationId, input, handle };
}

describe('accountApplication', () => {
  it('mails the operators, reminds them once, then expires and tells the applicant', async () => {
    const { applicationId, handle } = await apply({ reminderMs: 1_000, ttlMs: 2_500 });
    const started = Date.now();
    const final = await handle.result();
    const elapsed = Date.now() - started;
    expect(final.status).toBe('expired');
    expect(final.reminded).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(2_000);
    expect(callsFor(applicationId, 'notifyOperators').map((c) => c.reminder)).toEqual([false, true]);
    const steps: ApplicationProjection[] = callsFor(applicationId, 'projectApplication');
    expect(steps.map((s) => s.audit.action)).toEqual(['submitted', 'reminded', 'expired']);
    expect(steps.map((s) => s.seq)).toEqual([2, 3, 4]);
    expect(steps[1]!.remindedAt).toBeTruthy();
    expect(new Set(steps.map((s) => s.audit.dedupeKey)).size).toBe(3);
    expect(callsFor(applicationId, 'notifyApplicant')).toEqual([expect.objectContaining({ outcome: 'expired', dedupeKey: `${applicationWorkflowId(applicationId)}:expired` })]);
    await maybeRecordHistory(client, applicationWorkflowId(applicationId), 'application-reminded-expired');
    // Nothing to decide any more.
    await expect(handle.executeUpdate(approveApplicationUpdate, { args: [{ actorId: 'usr_op' }] })).rejects.toThrow();
  });

  it('deny needs a reason, mails it to the applicant and refuses any later decision', async () => {
    const { applicationId, handle } = await apply();
    await eventually(() => callsFor(applicationId, 'notifyOperators').length === 1);
    const noReason = await refusal(handle.executeUpdate(denyApplicationUpdate, { args: [{ actorId: 'usr_op', reason: '  ' }] }));
    expect(noReason.type).toBe('reason_required');
    expect((await handle.query(applicationStatusQuery)).status).toBe('pending');

    const denied = await handle.executeUpdate(denyApplicationUpdate, { args: [{ actorId: 'usr_op', reason: 'We only onboard registered merchants' }] });
    expect(denied).toMatchObject({ status: 'denied', decidedBy: 'usr_op', reason: 'We only onboard registered merchants' });
    const final = await handle.result();
    expect(final.status).toBe('denied');
    expect(callsFor(applicationId, 'notifyApplicant')).toEqual([expect.objectContaining({ outcome: 'denied', reason: 'We only onboard registered merchants' })]);
    const steps: ApplicationProjection[] = callsFor(applicationId, 'projectApplication');
    expect(steps.map((s) => [s.audit.action, s.status, s.audit.actorId])).toEqual([['submitted', 'pending', null], ['denied', 'denied', 'usr_op']]);
    expect(steps[1]!.audit.comment).toBe('We only onboard registered merchants');
    expect(callsFor(applicationId, 'createApplicationWorkspace')).toEqual([]);
    await maybeRecordHistory(client, applicationWorkflowId(applicationId), 'application-denied');
  });

  it('approve creates the workspace and starts the Admin invitation, which outlives the application', async () => {
    const { applicationId, input, handle } = await apply({ reminderMs: 30_000 });
    await eventually(() => callsFor(applicationId, 'notifyOperators').length === 1);
    const approved = await handle.executeUpdate(approveApplicationUpdate, { args: [{ actorId: 'usr_op' }] });
    expect(approved).toMatchObject({ status: 'approved', decidedBy: 'usr_op', workspaceName: 'Harbour Foods', workspaceCode: 'HARBOUR' });
    expect(approved.workspaceId).toMatch(/^ws_[0-9a-f]{32}$/);
    expect(approved.invitationId).toMatch(/^inv_[0-9a-f]{32}$/);

    const final = await handle.result();
    // Decided for good: the completed workflow takes no second decision.
    await expect(handle.executeUpdate(approveApplicationUpdate, { args: [{ actorId: 'usr_op2' }] })).rejects.toThrow();
    await expect(handle.executeUpdate(denyApplicationUpdate, { args: [{ actorId: 'usr_op2', reason: 'changed my mind' }] })).rejects.toThrow();
    expect(final.status).toBe('approved');
    expect(callsFor(applicationId, 'createApplicationWorkspace')).toEqual([{ workspaceId: approved.workspaceId, applicationId, company: 'Harbour Foods' }]);
    expect(callsFor(applicationId, 'notifyApplicant')).toEqual([]);
    const steps: ApplicationProjection[] = callsFor(applicationId, 'projectApplication');
    expect(steps.map((s) => s.audit.action)).toEqual(['submitted', 'approved']);
    expect(steps[1]).toMatchObject({ workspaceId: approved.workspaceId, invitationId: approved.invitationId, status: 'approved' });
    await maybeRecordHistory(client, applicationWorkflowId(applicationId), 'application-approved');

    // The invitation runs on after the application completed (ABANDON) and mails the applicant.
    const invitation = client.workflow.getHandle(invitationWorkflowId(approved.invitationId!));
    const inv = await eventually(async () => {
      const s = await invitation.query(invitationStatusQuery);
      return s.tokenHash ? s : null;
    });
    expect(inv).toMatchObject({ status: 'pending', role: 'admin', email: input.email, workspaceId: approved.workspaceId, invitedBy: null });
    expect((await invitation.describe()).status.name).toBe('RUNNING');
    await eventually(() => calls.some((c) => c.name === 'sendInvitationMail' && c.input.email === input.email));
    await invitation.terminate('test over');
  });

  it('passwordResetMail hands the reset to the activity with a key minted from its id', async () => {
    const resetId = uid('rst_');
    await client.workflow.execute('passwordResetMail', { workflowId: passwordResetWorkflowId(resetId), taskQueue: env.taskQueue, args: [{ resetId, email: 'someone@example.test', ttlMs: 60_000 }] });
    expect(calls.filter((c) => c.name === 'sendPasswordReset' && c.input.resetId === resetId)).toEqual([
      { name: 'sendPasswordReset', input: { dedupeKey: `${passwordResetWorkflowId(resetId)}:mail`, resetId, email: 'someone@example.test', ttlMs: 60_000 } },
    ]);
  });
});
