import type { Client } from '@temporalio/client';
import { ApplicationFailure as ActivityAppFailure } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { invitationToken } from '../../activities/members.js';
import { FailureType } from '../../workflows/contracts/errors.js';
import {
  InvitationFailure, acceptUpdate, changeRoleUpdate, declineUpdate, invitationStatusQuery, invitationWorkflowId, invitationWorkflowType, resendUpdate,
  withdrawInvitationUpdate, type InvitationInput, type InvitationStatus,
} from '../../workflows/contracts/invitation.js';
import { eventually } from '../helpers/eventually.js';
import { maybeRecordHistory, refusal, startTestWorker, uid } from '../helpers/workflow-env.js';

const secret = 'workflow-test-secret-key';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Plain-function activities: the real token derivation, recorded projections and mails, an in-memory account table. */
function fakeActivities() {
  const calls: { name: string; input: any }[] = [];
  const accounts = new Map<string, string>(); // email → user id
  const memberships = new Set<string>();
  const activities: Partial<Activities> = {
    async invitationTokenHash(input) {
      return sha256(invitationToken(secret, input.invitationId, input.tokenNonce));
    },
    async projectInvitation(input) {
      calls.push({ name: 'projectInvitation', input });
    },
    async sendInvitationMail(input) {
      calls.push({ name: 'sendInvitationMail', input: { ...input, token: invitationToken(secret, input.invitationId, input.tokenNonce) } });
      return 'sent';
    },
    async acceptInvitation(input) {
      calls.push({ name: 'acceptInvitation', input });
      const existing = accounts.get(input.email);
      if (existing && existing !== input.existingUserId && existing !== input.newAccount?.userId) throw ActivityAppFailure.nonRetryable('an account already exists', InvitationFailure.accountExists);
      const userId = existing ?? input.newAccount!.userId;
      accounts.set(input.email, userId);
      memberships.add(`${input.workspaceId}:${userId}`);
      return { userId, accountCreated: !existing };
    },
  };
  return { calls, accounts, memberships, activities };
}

const fake = fakeActivities();
let env: Awaited<ReturnType<typeof startTestWorker>>;
let client: Client;

beforeAll(async () => {
  env = await startTestWorker(fake.activities);
  client = env.client;
});
afterAll(async () => env?.stop());

async function invite(o: Partial<InvitationInput> = {}) {
  const input: InvitationInput = {
    invitationId: uid('inv_'), workspaceId: uid('ws_'), email: `${uid('p')}@example.test`, role: 'developer', invitedBy: 'usr_admin',
    ttlMs: 60_000, reminderMs: 0, ...o,
  };
  const handle = await client.workflow.start(invitationWorkflowType, { workflowId: invitationWorkflowId(input.invitationId), taskQueue: env.taskQueue, args: [input] });
  // The first mail carries the link; the test reads the token from it like an invitee would.
  const [first] = await mailsOf(input.invitationId, 1);
  return { input, handle, token: first!.input.token as string };
}

const mailsOf = (invitationId: string, count: number) =>
  eventually(() => {
    const m = fake.calls.filter((c) => c.name === 'sendInvitationMail' && c.input.invitationId === invitationId);
    return m.length >= count ? m : null;
  }, { what: `${count} mail(s) for ${invitationId}` });
const projectedStatuses = (invitationId: string) => fake.calls.filter((c) => c.name === 'projectInvitation' && c.input.state.invitationId === invitationId).map((c) => c.input.state.status as InvitationStatus);
const auditActions = (invitationId: string) => fake.calls.filter((c) => c.name === 'projectInvitation' && c.input.state.invitationId === invitationId).map((c) => c.input.audit.action as string);

/** Every string in a history, payloads decoded, so a search for a token sees what a reader of the history would. */
function historyText(history: unknown): string {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (v instanceof Uint8Array) out.push(Buffer.from(v).toString('utf8'));
    else if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(history);
  return out.join('\n');
}

/** A finished invitation workflow takes no more commands; the API answers from the read model then. */
async function closed(p: Promise<unknown>) {
  const err = await p.then(() => null, (e: unknown) => e);
  expect((err as Error)?.name).toBe('WorkflowNotFoundError');
}

describe('memberInvitation', () => {
  it('mails the invitation, reminds before the deadline, then expires (durations in seconds); the token is never in the history', async () => {
    const started = Date.now();
    const { input, handle, token } = await invite({ ttlMs: 3000, reminderMs: 1200 });
    const mails = await mailsOf(input.invitationId, 2);
    expect(mails.map((m) => m.input.kind)).toEqual(['invite', 'reminder']);
    expect(mails[1]!.input.token).toBe(token); // the reminder carries the same (still only) link
    const final = await handle.result();
    expect(final.status).toBe('expired');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
    expect(final.remindedAt).not.toBeNull();
    expect(auditActions(input.invitationId)).toEqual(['invited', 'reminded', 'expired']);
    const seqs = fake.calls.filter((c) => c.name === 'projectInvitation' && c.input.state.invitationId === input.invitationId).map((c) => c.input.state.seq);
    expect(seqs).toEqual([1, 2, 3]);
    // The token is never in the history in clear: only its hash and the nonce are.
    const history = historyText(await handle.fetchHistory());
    expect(history).toContain(sha256(token));
    expect(history).not.toContain(token);
    await maybeRecordHistory(client, invitationWorkflowId(input.invitationId), 'invitation-reminded-expired');
  });

  it('accepts once: concurrent accepts (distinct update ids) make one membership, a repeat answers the same', async () => {
    const { input, handle, token } = await invite();
    const proof = { tokenHash: sha256(token), newAccount: { userId: `usr_${input.invitationId}`, name: 'New Person', passwordHash: 'scrypt$16384$8$1$x$y' } };
    const results = await Promise.all([1, 2, 3].map((n) => handle.executeUpdate(acceptUpdate, { args: [proof], updateId: `accept-${n}` })));
    expect(results.every((r) => r.userId === proof.newAccount.userId)).toBe(true);
    expect(results.every((r) => r.state.status === 'accepted')).toBe(true);
    expect(fake.calls.filter((c) => c.name === 'acceptInvitation' && c.input.invitationId === input.invitationId)).toHaveLength(1);
    expect(results.filter((r) => r.accountCreated)).toHaveLength(1);
    expect(fake.memberships.has(`${input.workspaceId}:${proof.newAccount.userId}`)).toBe(true);
    expect((await handle.result()).status).toBe('accepted');
    expect(auditActions(input.invitationId)).toEqual(['invited', 'accepted']);
    // Nobody can decline it afterwards: the workflow has finished.
    await closed(handle.executeUpdate(declineUpdate, { args: [{ tokenHash: sha256(token) }] }));
    await maybeRecordHistory(client, invitationWorkflowId(input.invitationId), 'invitation-accepted-concurrently');
  });

  it('withdraw ends it: the workflow finishes withdrawn and takes no more commands', async () => {
    const { input, handle, token } = await invite();
    const state = await handle.executeUpdate(withdrawInvitationUpdate, { args: [{ actorId: 'usr_admin', workspaceId: input.workspaceId }] });
    expect(state.status).toBe('withdrawn');
    expect((await handle.result()).status).toBe('withdrawn');
    await closed(handle.executeUpdate(acceptUpdate, { args: [{ tokenHash: sha256(token), existingUserId: 'usr_x' }] }));
    expect(projectedStatuses(input.invitationId)).toEqual(['pending', 'withdrawn']);
  });

  it('refuses a command naming another workspace (not_found) and an accept without an account', async () => {
    const { handle, token } = await invite();
    const foreign = await refusal(handle.executeUpdate(withdrawInvitationUpdate, { args: [{ actorId: 'usr_admin', workspaceId: 'ws_other' }] }));
    expect(foreign.type).toBe(FailureType.notFound);
    const noAccount = await refusal(handle.executeUpdate(acceptUpdate, { args: [{ tokenHash: sha256(token) }] }));
    expect(noAccount.type).toBe('validation_failed');
    expect((await handle.query(invitationStatusQuery)).status).toBe('pending');
  });

  it('resend mails a new token and the old one is refused (invalid_token); the new one works', async () => {
    const { input, handle, token } = await invite();
    const resent = await handle.executeUpdate(resendUpdate, { args: [{ actorId: 'usr_admin' }] });
    expect(resent.tokenVersion).toBe(2);
    const mails = await mailsOf(input.invitationId, 2);
    const newToken = mails[1]!.input.token as string;
    expect(newToken).not.toBe(token);
    expect(resent.tokenHash).toBe(sha256(newToken));
    expect(mails[1]!.input.dedupeKey).not.toBe(mails[0]!.input.dedupeKey);
    const old = await refusal(handle.executeUpdate(declineUpdate, { args: [{ tokenHash: sha256(token) }] }));
    expect(old.type).toBe(InvitationFailure.invalidToken);
    const declined = await handle.executeUpdate(declineUpdate, { args: [{ tokenHash: sha256(newToken) }] });
    expect(declined.status).toBe('declined');
    expect(auditActions(input.invitationId)).toEqual(['invited', 'resent', 'declined']);
    await maybeRecordHistory(client, invitationWorkflowId(input.invitationId), 'invitation-resent-declined');
  });

  it('resend restarts the expiry clock', async () => {
    const { handle } = await invite({ ttlMs: 2500, reminderMs: 0 });
    await new Promise((r) => setTimeout(r, 1500));
    const resent = await handle.executeUpdate(resendUpdate, { args: [{ actorId: 'usr_admin' }] });
    await new Promise((r) => setTimeout(r, 1500)); // past the first deadline, before the new one
    expect((await handle.query(invitationStatusQuery)).status).toBe('pending');
    const final = await handle.result();
    expect(final.status).toBe('expired');
    expect(Date.parse(final.expiresAt)).toBe(Date.parse(resent.expiresAt));
  });

  it('changes the role of a pending invitation; the membership gets the new role', async () => {
    const { input, handle, token } = await invite({ role: 'developer' });
    const changed = await handle.executeUpdate(changeRoleUpdate, { args: [{ actorId: 'usr_admin', role: 'reviewer' }] });
    expect(changed.role).toBe('reviewer');
    const bad = await refusal(handle.executeUpdate(changeRoleUpdate, { args: [{ actorId: 'usr_admin', role: 'owner' as never }] }));
    expect(bad.type).toBe('validation_failed');
    await handle.executeUpdate(acceptUpdate, { args: [{ tokenHash: sha256(token), newAccount: { userId: `usr_${input.invitationId}`, name: 'R', passwordHash: 'h' } }] });
    const accepted = fake.calls.find((c) => c.name === 'acceptInvitation' && c.input.invitationId === input.invitationId);
    expect(accepted!.input.role).toBe('reviewer');
    await handle.result();
    await closed(handle.executeUpdate(changeRoleUpdate, { args: [{ actorId: 'usr_admin', role: 'admin' }] }));
    expect(auditActions(input.invitationId)).toEqual(['invited', 'role_changed', 'accepted']);
    await maybeRecordHistory(client, invitationWorkflowId(input.invitationId), 'invitation-role-changed-accepted');
  });

  it('an existing account that is not proven keeps the invitation pending (account_exists)', async () => {
    const email = `${uid('taken')}@example.test`;
    fake.accounts.set(email, 'usr_owner_of_address');
    const { handle, token } = await invite({ email });
    const refused = await refusal(handle.executeUpdate(acceptUpdate, { args: [{ tokenHash: sha256(token), newAccount: { userId: 'usr_squatter', name: 'x', passwordHash: 'h' } }] }));
    expect(refused.type).toBe(InvitationFailure.accountExists);
    expect((await handle.query(invitationStatusQuery)).status).toBe('pending');
    const ok = await handle.executeUpdate(acceptUpdate, { args: [{ tokenHash: sha256(token), existingUserId: 'usr_owner_of_address' }] });
    expect(ok).toMatchObject({ userId: 'usr_owner_of_address', accountCreated: false });
  });
});
