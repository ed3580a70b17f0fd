import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, type Stack } from '../helpers/stack.js';
import type { ReceivedMail } from '../../lib/smtp-peer.js';

const publicUrl = 'https://console.mpdp.example.test';
const ttlMs = 12_000;
let stack: Stack;
let admin: Agent;
let ws: string;
let workspaceName: string;

beforeAll(async () => {
  stack = await startStack({ env: { PUBLIC_URL: publicUrl, INVITATION_TTL_MS: String(ttlMs), INVITATION_REMINDER_MS: '0' } });
  admin = await stack.agent('admin');
  ws = `/api/v1/workspaces/${stack.workspaceId}`;
  const [row] = await stack.sequelize.query<{ name: string }>('SELECT name FROM workspaces WHERE id = :id', { replacements: { id: stack.workspaceId }, type: QueryTypes.SELECT });
  workspaceName = row!.name;
});
afterAll(async () => stack?.stop());

const address = (tag: string) => `${tag}-${Math.random().toString(36).slice(2, 10)}@invitee.example.test`;

/** The MIME body with quoted-printable soft breaks and escapes undone. */
const decoded = (m: ReceivedMail) => m.raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

/** The accept link of the latest invitation mail to an address, as the invitee would click it. */
async function linkFor(email: string, count = 1) {
  const mails = await stack.waitForMail({ to: email, subject: 'invited', count });
  const body = decoded(mails[count - 1]!);
  const m = new RegExp(`${publicUrl.replace(/[.]/g, '\\.')}/invitations/(inv_[a-z0-9]+)\\?token=([A-Za-z0-9_-]+)`).exec(body);
  expect(m, 'the mail carries the accept link on the public URL').not.toBeNull();
  return { mail: mails[count - 1]!, body, invitationId: m![1]!, token: m![2]! };
}

async function invite(emails: string[], role = 'developer') {
  const res = await admin.post(`${ws}/invitations`, { emails, role });
  expect(res.status).toBe(200);
  return res.body as { batchId: string; invited: { email: string; invitationId: string }[]; refused: { email: string; code: string }[] };
}

describe('invitations through HTTP with the SMTP peer', () => {
  it('invite → mail (HTML and text, workspace name, public link) → set a password → the member signs in with the role', async () => {
    const email = address('newbie');
    const report = await invite([email], 'reviewer');
    expect(report.invited).toHaveLength(1);
    const { mail, body, invitationId, token } = await linkFor(email);
    expect(mail.raw).toMatch(/Content-Type: text\/plain/i);
    expect(mail.raw).toMatch(/Content-Type: text\/html/i);
    expect(body).toContain(workspaceName);
    expect(body).toContain('Reviewer');
    expect(await stack.sequelize.query('SELECT token_hash FROM invitations WHERE token_hash = :token', { replacements: { token }, type: QueryTypes.SELECT })).toHaveLength(0);

    const visitor = new Agent(stack.baseUrl);
    const shown = await visitor.get(`/api/v1/invitations/${invitationId}?token=${token}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ email, role: 'reviewer', status: 'pending', accountExists: false, workspace: { id: stack.workspaceId, name: workspaceName } });
    const noPassword = await visitor.post(`/api/v1/invitations/${invitationId}/accept`, { token, name: 'New Bie' });
    expect(noPassword.status).toBe(400);
    const accepted = await visitor.post(`/api/v1/invitations/${invitationId}/accept`, { token, name: 'New Bie', password: 'a fine new password' });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ workspaceId: stack.workspaceId, accountCreated: true });
    // The accept signed the browser in, in that workspace.
    const me = await visitor.get('/api/v1/me');
    expect(me.body.workspaces).toEqual([expect.objectContaining({ id: stack.workspaceId, role: 'reviewer' })]);

    const member = new Agent(stack.baseUrl);
    await member.login(email, 'a fine new password');
    expect((await member.get(`${ws}/members`)).status).toBe(200);
    expect((await member.post(`${ws}/invitations`, { emails: [address('x')], role: 'developer' })).status).toBe(403);
    const list = await admin.get(`${ws}/invitations?status=accepted`);
    expect(list.body.items.map((i: { id: string }) => i.id)).toContain(invitationId);
    // The link is used up.
    expect((await new Agent(stack.baseUrl).get(`/api/v1/invitations/${invitationId}?token=${token}`)).body.error.code).toBe('invitation_accepted');
  });

  it('withdraw → the link is refused (invitation_withdrawn); a made-up token is refused (invalid_token)', async () => {
    const email = address('withdrawn');
    await invite([email]);
    const { invitationId, token } = await linkFor(email);
    expect((await new Agent(stack.baseUrl).get(`/api/v1/invitations/${invitationId}?token=${'x'.repeat(43)}`)).body.error.code).toBe('invalid_token');
    const w = await admin.post(`${ws}/invitations/${invitationId}/withdraw`);
    expect(w.status).toBe(200);
    expect(w.body.status).toBe('withdrawn');
    const visitor = new Agent(stack.baseUrl);
    const shown = await visitor.get(`/api/v1/invitations/${invitationId}?token=${token}`);
    expect(shown.status).toBe(409);
    expect(shown.body.error.code).toBe('invitation_withdrawn');
    const accept = await visitor.post(`/api/v1/invitations/${invitationId}/accept`, { token, name: 'Late', password: 'a fine new password' });
    expect(accept.body.error.code).toBe('invitation_withdrawn');
    expect((await admin.post(`${ws}/invitations/${invitationId}/resend`)).body.error.code).toBe('invitation_withdrawn');
    const audit = await stack.sequelize.query<{ action: string }>(`SELECT action FROM audit_log WHERE subject_type = 'invitation' AND subject_id = :invitationId ORDER BY id`, { replacements: { invitationId }, type: QueryTypes.SELECT });
    expect(audit.map((a) => a.action)).toEqual(['invited', 'withdrawn']);
  });

  it('resend mails a new link and the old one is refused; change role of a pending invitation', async () => {
    const email = address('resend');
    await invite([email]);
    const first = await linkFor(email);
    const changed = await admin.request('PATCH', `${ws}/invitations/${first.invitationId}`, { role: 'admin' });
    expect(changed.body.role).toBe('admin');
    expect((await admin.post(`${ws}/invitations/${first.invitationId}/resend`)).status).toBe(200);
    const second = await linkFor(email, 2);
    expect(second.token).not.toBe(first.token);
    expect((await new Agent(stack.baseUrl).get(`/api/v1/invitations/${first.invitationId}?token=${first.token}`)).body.error.code).toBe('invalid_token');
    const shown = await new Agent(stack.baseUrl).get(`/api/v1/invitations/${second.invitationId}?token=${second.token}`);
    expect(shown.body).toMatchObject({ status: 'pending', role: 'admin' });
  });

  it('double accept (two concurrent POSTs) makes one account and one membership', async () => {
    const email = address('double');
    await invite([email]);
    const { invitationId, token } = await linkFor(email);
    const body = { token, name: 'Double Click', password: 'a fine new password' };
    const [a, b] = await Promise.all([new Agent(stack.baseUrl).post(`/api/v1/invitations/${invitationId}/accept`, body), new Agent(stack.baseUrl).post(`/api/v1/invitations/${invitationId}/accept`, body)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.userId).toBe(b.body.userId);
    const users = await stack.sequelize.query('SELECT id FROM users WHERE lower(email) = lower(:email)', { replacements: { email }, type: QueryTypes.SELECT });
    expect(users).toHaveLength(1);
    const memberships = await stack.sequelize.query('SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE lower(u.email) = lower(:email)', { replacements: { email }, type: QueryTypes.SELECT });
    expect(memberships).toHaveLength(1);
    const audit = await stack.sequelize.query(`SELECT 1 FROM audit_log WHERE subject_id = :invitationId AND action = 'accepted'`, { replacements: { invitationId }, type: QueryTypes.SELECT });
    expect(audit).toHaveLength(1);
  });

  it('an existing account accepts with its password (or signed in), not by setting a new one', async () => {
    // The reviewer leaves this workspace's table, so their account exists without a membership here.
    const existing = stack.users.reviewer;
    await stack.sequelize.query('DELETE FROM memberships WHERE workspace_id = :ws AND user_id = :id', { replacements: { ws: stack.workspaceId, id: existing.id } });
    await invite([existing.email], 'developer');
    const { invitationId, token } = await linkFor(existing.email);
    const visitor = new Agent(stack.baseUrl);
    expect((await visitor.get(`/api/v1/invitations/${invitationId}?token=${token}`)).body.accountExists).toBe(true);
    const takeover = await visitor.post(`/api/v1/invitations/${invitationId}/accept`, { token, name: 'Mallory', password: 'mallorys password' });
    expect(takeover.status).toBe(401);
    const ok = await visitor.post(`/api/v1/invitations/${invitationId}/accept`, { token, password: 'correct horse battery' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ userId: existing.id, accountCreated: false });
  });

  it(`expire → the link is refused (invitation_expired) after the configured ${ttlMs / 1000} s`, async () => {
    const email = address('expiring');
    await invite([email]);
    const { invitationId, token } = await linkFor(email);
    await eventually(async () => (await stack.sequelize.query(`SELECT 1 FROM invitations WHERE id = :invitationId AND status = 'expired'`, { replacements: { invitationId }, type: QueryTypes.SELECT })).length > 0, {
      what: 'the invitation to expire', timeoutMs: ttlMs + 20_000, intervalMs: 250,
    });
    const shown = await new Agent(stack.baseUrl).get(`/api/v1/invitations/${invitationId}?token=${token}`);
    expect(shown.status).toBe(409);
    expect(shown.body.error.code).toBe('invitation_expired');
    const accept = await new Agent(stack.baseUrl).post(`/api/v1/invitations/${invitationId}/accept`, { token, name: 'Late', password: 'a fine new password' });
    expect(accept.body.error.code).toBe('invitation_expired');
  }, 60_000);

  it('a batch of 60 gets a per-address report: bad address, duplicate, already a member, already invited', async () => {
    const good = Array.from({ length: 56 }, (_, i) => address(`batch${i}`));
    const pending = address('pending');
    await invite([pending]);
    const report = await invite([...good, 'not-an-email', good[0]!.toUpperCase(), stack.users.admin.email, pending], 'developer');
    expect(report.invited).toHaveLength(56);
    expect(Object.fromEntries(report.refused.map((r) => [r.email, r.code]))).toEqual({
      'not-an-email': 'invalid_email', [good[0]!.toUpperCase()]: 'duplicate', [stack.users.admin.email]: 'already_member', [pending]: 'already_invited',
    });
    await eventually(() => good.every((g) => stack.mails.some((m) => m.to.includes(g))), { what: 'a mail to each of the 56 addresses' });
    const listed = await admin.get(`${ws}/invitations?batchId=${report.batchId}`);
    expect(listed.body.items).toHaveLength(56);
    // Paging through one batch (one shared created_at): every invitation exactly once.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await admin.get(`${ws}/invitations?batchId=${report.batchId}&limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.body.items.map((i: { id: string }) => i.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(56);
    expect(new Set(seen)).toEqual(new Set(listed.body.items.map((i: { id: string }) => i.id)));
    expect((await admin.get(`${ws}/invitations?cursor=garbage`)).body.error.code).toBe('invalid_cursor');
    expect((await admin.post(`${ws}/invitations`, { emails: Array.from({ length: 1001 }, (_, i) => `a${i}@x.test`), role: 'developer' })).status).toBe(400);
  });
});

describe('managing members', () => {
  it('block → the member’s open session gets 401 on its next request and their API token stops working; the answer says what was cut off', async () => {
    const dev = await stack.agent('developer');
    const token = (await dev.post('/api/v1/me/tokens', { name: 'cli' })).body.token as string;
    expect((await dev.get(`${ws}/mini-programs`)).status).toBe(200);
    const blocked = await admin.post(`${ws}/members/${stack.users.developer.id}/block`);
    expect(blocked.status).toBe(200);
    expect(blocked.body.cutOff).toMatchObject({ sessionsEnded: 1, apiTokensRevoked: 1 });
    expect((await dev.get(`${ws}/mini-programs`)).status).toBe(401);
    expect((await fetch(`${stack.baseUrl}${ws}/mini-programs`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    // Signing in again does not help: a blocked membership has no role (the workspace answers 404).
    const again = await stack.agent('developer');
    expect((await again.get(`${ws}/mini-programs`)).status).toBe(404);
    // …and the workspace is not offered in their switcher.
    expect((await again.get('/api/v1/me')).body.workspaces.map((w: { id: string }) => w.id)).not.toContain(stack.workspaceId);
    const list = await admin.get(`${ws}/members?status=blocked`);
    expect(list.body.items.map((m: { userId: string }) => m.userId)).toEqual([stack.users.developer.id]);
    const audit = await stack.sequelize.query<{ comment: string }>(`SELECT comment FROM audit_log WHERE subject_type = 'member' AND subject_id = :id AND action = 'blocked'`, { replacements: { id: stack.users.developer.id }, type: QueryTypes.SELECT });
    expect(audit[0]!.comment).toMatch(/ended 1 session\(s\), revoked 1 API token\(s\)/);
    expect((await admin.post(`${ws}/members/${stack.users.developer.id}/unblock`)).status).toBe(200);
    expect((await again.get(`${ws}/mini-programs`)).status).toBe(200);
    expect((await again.get('/api/v1/me')).body.workspaces.map((w: { id: string }) => w.id)).toContain(stack.workspaceId);
  });

  it('the last active Admin can neither leave nor be demoted (409 last_admin); with a second Admin they can', async () => {
    const demote = await admin.request('PATCH', `${ws}/members/${stack.users.admin.id}`, { role: 'developer' });
    expect(demote.status).toBe(409);
    expect(demote.body.error.code).toBe('last_admin');
    const leave = await admin.post(`${ws}/leave`);
    expect(leave.body.error.code).toBe('last_admin');
    expect((await admin.post(`${ws}/members/${stack.users.admin.id}/block`)).body.error.code).toBe('cannot_block_self');
    // A second admin; then the first may be demoted — and the second is now the last one.
    expect((await admin.request('PATCH', `${ws}/members/${stack.users.developer.id}`, { role: 'admin' })).status).toBe(200);
    const dev = await stack.agent('developer');
    const removeLast = await dev.request('PATCH', `${ws}/members/${stack.users.admin.id}`, { role: 'developer' });
    expect(removeLast.status).toBe(200);
    const lastBlock = await admin.post(`${ws}/members/${stack.users.developer.id}/block`);
    expect(lastBlock.status).toBe(403); // no longer an Admin
    expect((await dev.request('DELETE', `${ws}/members/${stack.users.developer.id}`)).body.error.code).toBe('cannot_remove_self');
    expect((await dev.post(`${ws}/leave`)).body.error.code).toBe('last_admin');
    // Restore the original shape for the next test.
    expect((await dev.request('PATCH', `${ws}/members/${stack.users.admin.id}`, { role: 'admin' })).status).toBe(200);
    expect((await admin.request('PATCH', `${ws}/members/${stack.users.developer.id}`, { role: 'developer' })).status).toBe(200);
  });

  it('a mini program developer can upload to that mini program only; the detail shows the roles', async () => {
    const dev = await stack.agent('developer');
    const a = await dev.post(`${ws}/mini-programs`, { name: 'Role Shop A', category: 'shopping' });
    const b = await dev.post(`${ws}/mini-programs`, { name: 'Role Shop B', category: 'shopping' });
    expect([a.status, b.status]).toEqual([201, 201]);
    // A Reviewer (no upload right by workspace role) becomes a developer of A.
    const reviewerId = stack.users.reviewer.id;
    await stack.sequelize.query(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:ws, :id, 'reviewer') ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = 'reviewer', status = 'active'`, { replacements: { ws: stack.workspaceId, id: reviewerId } });
    const rev = await stack.agent('reviewer');
    expect((await rev.request('PUT', `${ws}/mini-programs/${a.body.id}/roles/${stack.users.developer.id}`, { role: 'owner' })).status).toBe(403);
    const set = await admin.request('PUT', `${ws}/mini-programs/${a.body.id}/roles/${reviewerId}`, { role: 'developer' });
    expect(set.status).toBe(200);
    expect(set.body.items).toEqual([expect.objectContaining({ userId: reviewerId, role: 'developer', workspaceRole: 'reviewer' })]);
    expect((await rev.upload(`${ws}/mini-programs/${a.body.id}/versions`, realisticPackage({ version: '1.0.0' }), '1.0.0')).status).toBe(201);
    const other = await rev.upload(`${ws}/mini-programs/${b.body.id}/versions`, realisticPackage({ version: '1.0.0' }), '1.0.0');
    expect(other.status).toBe(403);
    const detail = await rev.get(`${ws}/mini-programs/${a.body.id}`);
    expect(detail.body.miniProgramRoles).toEqual([expect.objectContaining({ userId: reviewerId, role: 'developer' })]);
    expect(detail.body.permissions).toContain('version.upload');
    expect((await rev.get(`${ws}/mini-programs/${b.body.id}`)).body.permissions).not.toContain('version.upload');
    // A foreign workspace's mini program id gives nothing.
    expect((await admin.request('PUT', `${ws}/mini-programs/mp_nope/roles/${reviewerId}`, { role: 'owner' })).status).toBe(404);
    expect((await admin.request('DELETE', `${ws}/mini-programs/${a.body.id}/roles/${reviewerId}`)).status).toBe(200);
    expect((await rev.upload(`${ws}/mini-programs/${a.body.id}/versions`, realisticPackage({ version: '1.0.1' }), '1.0.1')).status).toBe(403);
  });
});
