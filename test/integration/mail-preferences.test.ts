import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDetailedOutbox } from '../../activities/mail.js';
import { seedUsers } from '../../db/seed.js';
import { createMailer, type Mailer } from '../../lib/mailer.js';
import { startSmtpPeer, type ReceivedMail, type SmtpPeer } from '../../lib/smtp-peer.js';
import { realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * Service email preference: the workspace's sender name and reply-to (Admins), each member's
 * notification kinds (their own), and the outbox honouring both over a real SMTP exchange.
 */

let stack: Stack;
let admin: Agent;
let rev: Agent;
let rev2: Agent;
let dev: Agent;
let outsider: Agent;
let ws: string;
const second = { id: uid('usr_r2_'), email: `${uid('reviewer2-')}@example.test`, name: 'Ravi Second', role: 'reviewer' as const };
const stranger = { id: uid('usr_x_'), email: `${uid('outsider-')}@example.test`, name: 'Olga Outsider', role: 'admin' as const };

const settingsUrl = () => `/api/v1/workspaces/${ws}/mail-settings`;
const prefsUrl = '/api/v1/me/notification-preferences';

/** The value of a header in a raw message (folded lines joined). */
function header(m: ReceivedMail, name: string): string | null {
  const head = m.raw.split(/\r?\n\r?\n/)[0] ?? '';
  const match = new RegExp(`^${name}: (.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head);
  return match ? match[1]!.replace(/\r?\n[ \t]/g, ' ').trim() : null;
}

async function storedSettings() {
  return stack.sequelize.query<{ sender_name: string | null; reply_to: string | null }>('SELECT sender_name, reply_to FROM workspace_mail_settings WHERE workspace_id = :ws', { replacements: { ws }, type: QueryTypes.SELECT });
}

beforeAll(async () => {
  stack = await startStack();
  ws = stack.workspaceId;
  await seedUsers(stack.sequelize, { workspaceId: ws, workspaceName: 'ignored', code: 'ignored', users: [second], password: testPassword });
  const otherWs = uid('ws_other_');
  await seedUsers(stack.sequelize, { workspaceId: otherWs, workspaceName: 'Elsewhere', code: otherWs.toUpperCase(), users: [stranger], password: testPassword });
  [admin, rev, dev] = await Promise.all([stack.agent('admin'), stack.agent('reviewer'), stack.agent('developer')]);
  rev2 = new Agent(stack.baseUrl);
  await rev2.login(second.email);
  outsider = new Agent(stack.baseUrl);
  await outsider.login(stranger.email);
}, 180_000);
afterAll(async () => stack?.stop());

describe('mail settings (sender name and reply-to)', () => {
  it('every member reads the defaults; a non-member sees no workspace; anonymous is refused', async () => {
    for (const a of [admin, rev, dev]) {
      const res = await a.get(settingsUrl());
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ senderName: null, replyTo: null, fromAddress: 'no-reply@mpdp.local', fromPreview: 'mpdp <no-reply@mpdp.local>', defaultSenderName: 'mpdp', updatedBy: null });
    }
    const other = await outsider.get(settingsUrl());
    expect(other.status).toBe(404);
    const anon = await new Agent(stack.baseUrl).get(settingsUrl());
    expect(anon.status).toBe(401);
  });

  it('Reviewers, Developers and non-members cannot change it, and nothing changes', async () => {
    for (const a of [rev, dev]) {
      const res = await a.request('PUT', settingsUrl(), { senderName: 'Hijack', replyTo: null });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
    expect((await outsider.request('PUT', settingsUrl(), { senderName: 'Hijack', replyTo: null })).status).toBe(404);
    expect(await storedSettings()).toEqual([]);
  });

  it('refuses bad input with 400 and changes nothing', async () => {
    const bad: unknown[] = [
      { senderName: '', replyTo: null },
      { senderName: '   ', replyTo: null },
      { senderName: 'x'.repeat(81), replyTo: null },
      { senderName: 'Acme\r\nBcc: victim@example.test', replyTo: null },
      { senderName: 'Acme <evil@example.test>', replyTo: null },
      { senderName: 'Acme', replyTo: 'not-an-address' },
      { senderName: 'Acme', replyTo: 'a@b.test\r\nBcc: x@y.test' },
      { senderName: 'Acme' },
      {},
    ];
    for (const body of bad) {
      const res = await admin.request('PUT', settingsUrl(), body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect(await storedSettings()).toEqual([]);
  });

  it('an Admin sets them (audited); every member reads them back', async () => {
    const res = await admin.request('PUT', settingsUrl(), { senderName: ' Acme Mini Programs ', replyTo: 'support@acme.test' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ senderName: 'Acme Mini Programs', replyTo: 'support@acme.test', fromPreview: 'Acme Mini Programs <no-reply@mpdp.local>', updatedBy: { id: stack.users.admin.id, name: 'Alice Admin' } });
    expect((await dev.get(settingsUrl())).body.senderName).toBe('Acme Mini Programs');
    const [audit] = await stack.sequelize.query<{ actor_id: string; comment: string }>(
      `SELECT actor_id, comment FROM audit_log WHERE workspace_id = :ws AND subject_type = 'settings' AND action = 'mail_settings_changed'`, { replacements: { ws }, type: QueryTypes.SELECT },
    );
    expect(audit).toMatchObject({ actor_id: stack.users.admin.id, comment: 'sender (default), reply-to (none) → sender Acme Mini Programs, reply-to support@acme.test' });
  });
});

describe('notification preferences (a user route: your own)', () => {
  it('defaults to every kind on, for each of your workspaces only', async () => {
    for (const a of [admin, rev, dev]) {
      const res = await a.get(prefsUrl);
      expect(res.status).toBe(200);
      expect(res.body.kinds.map((k: any) => k.kind)).toEqual(['review_requests', 'decisions', 'rollouts', 'halts', 'authorizations', 'crashes']);
      expect(res.body.items).toEqual([expect.objectContaining({ workspaceId: ws, preferences: { review_requests: true, decisions: true, rollouts: true, halts: true, authorizations: true, crashes: true } })]);
    }
    const other = await outsider.get(prefsUrl);
    expect(other.body.items.map((i: any) => i.workspaceId)).not.toContain(ws);
    expect((await outsider.get(`${prefsUrl}?workspaceId=${ws}`)).status).toBe(404);
    expect((await new Agent(stack.baseUrl).get(prefsUrl)).status).toBe(401);
  });

  it('refuses bad input and a workspace the caller is not in; nothing changes', async () => {
    for (const body of [{ workspaceId: ws, preferences: {} }, { workspaceId: ws, preferences: { spam: false } }, { workspaceId: ws, preferences: { halts: 'no' } }, { preferences: { halts: false } }]) {
      const res = await rev.request('PUT', prefsUrl, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    const foreign = await outsider.request('PUT', prefsUrl, { workspaceId: ws, preferences: { review_requests: false } });
    expect(foreign.status).toBe(404);
    const rows = await stack.sequelize.query('SELECT * FROM notification_preferences WHERE workspace_id = :ws', { replacements: { ws }, type: QueryTypes.SELECT });
    expect(rows).toEqual([]);
  });

  it('each member changes only their own (Admin, Reviewer, Developer alike)', async () => {
    const r = await rev.request('PUT', prefsUrl, { workspaceId: ws, preferences: { review_requests: false } });
    expect(r.status).toBe(200);
    expect(r.body.preferences).toEqual({ review_requests: false, decisions: true, rollouts: true, halts: true, authorizations: true, crashes: true });
    const d = await dev.request('PUT', prefsUrl, { workspaceId: ws, preferences: { rollouts: false, halts: false } });
    expect(d.body.preferences).toMatchObject({ rollouts: false, halts: false, review_requests: true });
    const a = await admin.request('PUT', prefsUrl, { workspaceId: ws, preferences: { authorizations: false } });
    expect(a.body.preferences).toMatchObject({ authorizations: false, review_requests: true });
    // Turning one back on leaves the others as they were.
    const back = await admin.request('PUT', prefsUrl, { workspaceId: ws, preferences: { authorizations: true } });
    expect(back.body.preferences).toEqual({ review_requests: true, decisions: true, rollouts: true, halts: true, authorizations: true, crashes: true });
    // Nobody else's preferences moved.
    expect((await rev.get(prefsUrl)).body.items[0].preferences.review_requests).toBe(false);
    expect((await rev2.get(prefsUrl)).body.items[0].preferences.review_requests).toBe(true);
  });
});

describe('the mail activities honour them over real SMTP', () => {
  it('a review request: the opted-out reviewer gets none, the others get it with the sender name and Reply-To', async () => {
    // Reviewer 1 turned review requests off above; the Admin and reviewer 2 keep them.
    const created = await dev.post(`/api/v1/workspaces/${ws}/mini-programs`, { name: 'Harbour Ferries', description: 'Timetables', category: 'travel', icon: '⛴️' });
    expect(created.status).toBe(201);
    const mpUrl = `/api/v1/workspaces/${ws}/mini-programs/${created.body.id}`;
    const up = await dev.upload(`${mpUrl}/versions`, realisticPackage({ version: '1.0.0' }), '1.0.0', 'First');
    expect(up.status).toBe(201);
    const submitted = await dev.post(`${mpUrl}/versions/${up.body.id}/submit`, {});
    expect(submitted.status).toBe(200);

    const [toAdmin] = await stack.waitForMail({ to: stack.users.admin.email, subject: 'Review requested: Harbour Ferries' });
    const [toSecond] = await stack.waitForMail({ to: second.email, subject: 'Review requested: Harbour Ferries' });
    for (const m of [toAdmin!, toSecond!]) {
      expect(header(m, 'From')).toBe('Acme Mini Programs <no-reply@mpdp.local>');
      expect(header(m, 'Reply-To')).toBe('support@acme.test');
      expect(m.from).toBe('no-reply@mpdp.local');
    }
    // The opted-out reviewer's mail is recorded as suppressed, and never arrives.
    const suppressed = await eventually(async () => {
      const rows = await stack.sequelize.query<{ status: string; kind: string; workspace_id: string }>(
        `SELECT status, kind, workspace_id FROM mail_log WHERE recipient = :to AND subject LIKE 'Review requested: Harbour Ferries%'`,
        { replacements: { to: stack.users.reviewer.email }, type: QueryTypes.SELECT },
      );
      return rows.length ? rows : null;
    }, { what: 'the suppressed mail_log row', timeoutMs: 20_000 });
    expect(suppressed).toEqual([{ status: 'suppressed', kind: 'review_requests', workspace_id: ws }]);
    await new Promise((r) => setTimeout(r, 500));
    expect(stack.mails.filter((m) => m.to.includes(stack.users.reviewer.email) && m.subject.includes('Harbour Ferries'))).toEqual([]);
  });

  it('an invitation (not a notification) uses the sender name and ignores opt-outs', async () => {
    const email = `${uid('newbie-')}@example.test`;
    const res = await admin.post(`/api/v1/workspaces/${ws}/invitations`, { emails: [email], role: 'developer' });
    expect(res.status).toBe(200);
    const [invite] = await stack.waitForMail({ to: email });
    expect(header(invite!, 'From')).toBe('Acme Mini Programs <no-reply@mpdp.local>');
    expect(header(invite!, 'Reply-To')).toBe('support@acme.test');
  });
});

describe('the outbox itself (its own SMTP peer)', () => {
  let peer: SmtpPeer;
  let mailer: Mailer;
  beforeAll(async () => {
    peer = await startSmtpPeer();
    mailer = createMailer(`smtp://127.0.0.1:${peer.port}`, 'Platform Mail <mail@platform.test>');
  });
  afterAll(async () => {
    mailer.close();
    await peer.close();
  });

  it('suppresses a muted kind once and for good, sends what is not a notification, and never sends twice', async () => {
    const send = createDetailedOutbox(stack.sequelize, mailer);
    const to = stack.users.reviewer.email;
    const key = uid('test-outbox-');
    // Muted kind: nothing sent, recorded, and a retry stays suppressed.
    expect(await send(`${key}:muted`, { to, subject: 'Muted', text: 'x', workspaceId: ws, userId: stack.users.reviewer.id, kind: 'review_requests' })).toBe('suppressed');
    expect(await send(`${key}:muted`, { to, subject: 'Muted', text: 'x', workspaceId: ws, userId: stack.users.reviewer.id, kind: 'review_requests' })).toBe('suppressed');
    // Found by address when no user id is given.
    expect(await send(`${key}:by-address`, { to, subject: 'Muted by address', text: 'x', workspaceId: ws, kind: 'review_requests' })).toBe('suppressed');
    // Another kind, and no kind at all, are sent with the workspace's sender name.
    expect(await send(`${key}:decision`, { to, subject: 'Decision', text: 'x', workspaceId: ws, userId: stack.users.reviewer.id, kind: 'decisions' })).toBe('sent');
    expect(await send(`${key}:plain`, { to, subject: 'Plain', text: 'x', workspaceId: ws, userId: stack.users.reviewer.id })).toBe('sent');
    expect(await send(`${key}:plain`, { to, subject: 'Plain', text: 'x', workspaceId: ws, userId: stack.users.reviewer.id })).toBe('skipped');
    // No workspace: the platform's own From, no Reply-To.
    expect(await send(`${key}:platform`, { to, subject: 'Platform', text: 'x' })).toBe('sent');
    await eventually(() => (peer.messages.length >= 3 ? true : null), { what: 'three mails', timeoutMs: 10_000 });
    expect(peer.messages.map((m) => m.subject).sort()).toEqual(['Decision', 'Plain', 'Platform']);
    const bySubject = (s: string) => peer.messages.find((m) => m.subject === s)!;
    expect(header(bySubject('Decision'), 'From')).toBe('Acme Mini Programs <mail@platform.test>');
    expect(header(bySubject('Plain'), 'Reply-To')).toBe('support@acme.test');
    expect(header(bySubject('Platform'), 'From')).toBe('Platform Mail <mail@platform.test>');
    expect(header(bySubject('Platform'), 'Reply-To')).toBeNull();
    const statuses = await stack.sequelize.query<{ dedupe_key: string; status: string }>(`SELECT dedupe_key, status FROM mail_log WHERE dedupe_key LIKE :p ORDER BY dedupe_key`, { replacements: { p: `${key}:%` }, type: QueryTypes.SELECT });
    expect(Object.fromEntries(statuses.map((s) => [s.dedupe_key.slice(key.length + 1), s.status]))).toEqual({ 'by-address': 'suppressed', decision: 'sent', muted: 'suppressed', plain: 'sent', platform: 'sent' });
  });
});
