import { simpleParser } from 'mailparser';
import http from 'node:http';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app.js';
import { loadConfig } from '../../lib/config.js';
import { ensureOperator, seedUsers } from '../../db/seed.js';
import type { ReceivedMail } from '../../lib/smtp-peer.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

const resetTtlMs = 6_000;
let stack: Stack;
let operator: Agent;
let operatorEmail: string;

beforeAll(async () => {
  stack = await startStack({ devMailbox: true, env: { APPLICATION_REMINDER_MS: '0', APPLICATION_TTL_MS: String(10 * 60_000), PASSWORD_RESET_TTL_MS: String(resetTtlMs) } });
  operatorEmail = `operator-${uid()}@example.test`;
  await ensureOperator(stack.sequelize, { email: operatorEmail, password: testPassword, name: 'Olga Operator' });
  operator = new Agent(stack.baseUrl);
  await operator.login(operatorEmail);
});
afterAll(async () => stack?.stop());

const textOf = async (m: ReceivedMail) => (await simpleParser(m.raw)).text ?? '';
const linkIn = async (m: ReceivedMail, pattern: RegExp) => {
  const found = pattern.exec(await textOf(m));
  if (!found) throw new Error(`no link matching ${pattern} in ${m.subject}`);
  return found;
};

/** A user of their own, so the tests here do not step on each other's sessions and limits. */
async function newUser(prefix: string) {
  const tag = uid();
  const user = { id: `usr_${prefix}_${tag}`, email: `${prefix}-${tag}@example.test`, name: `${prefix} ${tag}`, role: 'developer' as const };
  await seedUsers(stack.sequelize, { workspaceId: stack.workspaceId, workspaceName: 'x', code: 'x', users: [user], password: testPassword });
  return user;
}

async function apply(company: string) {
  const email = `applicant-${uid()}@example.test`;
  const res = await new Agent(stack.baseUrl).post('/api/v1/applications', { company, contactName: 'Priya Applicant', email, intendedUse: 'Loyalty cards and a shop inside our super app' });
  expect(res.status).toBe(201);
  return { email, id: res.body.id as string, statusUrl: res.body.statusUrl as string };
}

const statusOf = (statusUrl: string) => {
  const url = new URL(statusUrl, 'http://x');
  const id = url.pathname.split('/').pop()!;
  return new Agent(stack.baseUrl).get(`/api/v1/applications/${id}/status?token=${url.searchParams.get('token')}`);
};

describe('security', () => {
  it('sends the security headers on API, error and console responses', async () => {
    for (const url of ['/api/v1/health', '/api/v1/no-such-route', '/api/docs']) {
      const res = await fetch(stack.baseUrl + url);
      expect(Number(/max-age=(\d+)/.exec(res.headers.get('strict-transport-security') ?? '')?.[1])).toBeGreaterThanOrEqual(31_536_000);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'self'");
      expect(csp).not.toContain('unsafe-eval');
    }
    // The docs page runs its one inline script by hash, nothing else inline.
    const docs = await fetch(`${stack.baseUrl}/api/docs`);
    expect(docs.headers.get('content-security-policy')).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
  });

  it('sets the session cookie httpOnly and SameSite', async () => {
    const res = await fetch(`${stack.baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: stack.users.admin.email, password: testPassword }) });
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
  });

  it('takes only JSON from anonymous writers (no cross-site form posts)', async () => {
    for (const [type, body] of [['application/x-www-form-urlencoded', 'company=Evil&contactName=Eve'], ['text/plain', '{"email":"a@b.c"}'], ['multipart/form-data; boundary=x', '--x--']]) {
      for (const url of ['/api/v1/applications', '/api/v1/auth/password-reset', '/api/v1/auth/login']) {
        const res = await fetch(stack.baseUrl + url, { method: 'POST', headers: { 'content-type': type! }, body });
        expect(res.status, `${type} to ${url}`).toBe(415);
        expect((await res.json()).error.code).toBe('unsupported_media_type');
      }
    }
  });
});

describe('account applications', () => {
  it('validates the form and changes nothing on bad input', async () => {
    const [{ n: before }] = await stack.sequelize.query<{ n: number }>('SELECT count(*)::int AS n FROM account_applications', { type: QueryTypes.SELECT });
    const res = await new Agent(stack.baseUrl).post('/api/v1/applications', { company: 'X', contactName: '', email: 'not-an-email', intendedUse: 'short' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(Object.keys(res.body.error.details.fields)).toEqual(expect.arrayContaining(['company', 'contactName', 'email', 'intendedUse']));
    const [{ n: after }] = await stack.sequelize.query<{ n: number }>('SELECT count(*)::int AS n FROM account_applications', { type: QueryTypes.SELECT });
    expect(after).toBe(before);
  });

  it('apply → operator mailed → approve → the applicant gets the Admin invitation, accepts and signs in to the new workspace', async () => {
    const app = await apply('Harbour Foods Ltd');
    expect(app.statusUrl).toMatch(new RegExp(`^/applications/${app.id}\\?token=[A-Za-z0-9_-]{20,}$`));
    const [stored] = await stack.sequelize.query<{ status_token_hash: string }>('SELECT status_token_hash FROM account_applications WHERE id = :id', { replacements: { id: app.id }, type: QueryTypes.SELECT });
    expect(app.statusUrl).not.toContain(stored!.status_token_hash);

    const [opMail] = await stack.waitForMail({ to: operatorEmail, subject: 'Account application: Harbour Foods Ltd' });
    expect(await textOf(opMail!)).toContain(app.email);
    expect((await statusOf(app.statusUrl)).body).toMatchObject({ id: app.id, status: 'pending', company: 'Harbour Foods Ltd' });

    // Only operators see the inbox.
    const dev = await stack.agent('developer');
    expect((await dev.get('/api/v1/platform/applications')).status).toBe(403);
    expect((await dev.post(`/api/v1/platform/applications/${app.id}/approve`)).status).toBe(403);
    const list = await operator.get('/api/v1/platform/applications?status=pending');
    expect(list.status).toBe(200);
    expect(list.body.items.map((i: any) => i.id)).toContain(app.id);
    expect(list.body.counts.pending).toBeGreaterThanOrEqual(1);

    const approved = await operator.post(`/api/v1/platform/applications/${app.id}/approve`);
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', decidedBy: { name: 'Olga Operator' }, workspace: { name: 'Harbour Foods Ltd', code: 'HARBOURFOO' } });
    const workspaceId = approved.body.workspace.id;

    const [invite] = await stack.waitForMail({ to: app.email });
    const [, invitationPath, invitationId, token] = await linkIn(invite!, /https?:\/\/[^/\s]+(\/invitations\/([^?\s]+)\?token=([A-Za-z0-9_-]+))/);
    expect(invitationPath).toBeTruthy();
    const applicant = new Agent(stack.baseUrl);
    const accepted = await applicant.post(`/api/v1/invitations/${invitationId}/accept`, { token, name: 'Priya Applicant', password: 'a brand new password' });
    expect(accepted.status).toBe(200);
    expect(accepted.body.workspaceId).toBe(workspaceId);
    const me = await new Agent(stack.baseUrl).login(app.email, 'a brand new password');
    expect(me.body.workspaces).toEqual([expect.objectContaining({ id: workspaceId, name: 'Harbour Foods Ltd', role: 'admin' })]);

    await eventually(async () => (await statusOf(app.statusUrl)).body.status === 'approved');
    expect((await statusOf(app.statusUrl)).body.workspaceName).toBe('Harbour Foods Ltd');
    const again = await operator.post(`/api/v1/platform/applications/${app.id}/approve`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('wrong_state');
    const audit = await stack.sequelize.query<{ action: string; actor_id: string | null }>(
      `SELECT action, actor_id FROM audit_log WHERE subject_type = 'application' AND subject_id = :id ORDER BY at, id`, { replacements: { id: app.id }, type: QueryTypes.SELECT },
    );
    expect(audit.map((a) => a.action)).toEqual(['submitted', 'approved']);
  });

  it('deny needs a reason and mails it to the applicant; the status link shows it', async () => {
    const app = await apply('Shady Widgets');
    await stack.waitForMail({ to: operatorEmail, subject: 'Account application: Shady Widgets' });
    const noReason = await operator.post(`/api/v1/platform/applications/${app.id}/deny`, { reason: ' ' });
    expect(noReason.status).toBe(400);
    const denied = await operator.post(`/api/v1/platform/applications/${app.id}/deny`, { reason: 'We could not verify the company registration' });
    expect(denied.status).toBe(200);
    expect(denied.body).toMatchObject({ status: 'denied', reason: 'We could not verify the company registration' });
    const [mail] = await stack.waitForMail({ to: app.email, subject: 'not approved' });
    expect(await textOf(mail!)).toContain('We could not verify the company registration');
    await eventually(async () => (await statusOf(app.statusUrl)).body.status === 'denied');
    expect((await statusOf(app.statusUrl)).body.reason).toBe('We could not verify the company registration');
    const approve = await operator.post(`/api/v1/platform/applications/${app.id}/approve`);
    expect(approve.status).toBe(409);
    const list = await operator.get('/api/v1/platform/applications?status=denied');
    expect(list.body.items.map((i: any) => i.id)).toContain(app.id);
    expect(list.body.items.every((i: any) => i.status === 'denied')).toBe(true);
  });

  it('the status link needs its token', async () => {
    const app = await apply('Token Checkers');
    const wrong = await new Agent(stack.baseUrl).get(`/api/v1/applications/${app.id}/status?token=${'A'.repeat(43)}`);
    expect(wrong.status).toBe(404);
    const unknown = await new Agent(stack.baseUrl).get(`/api/v1/applications/app_nope/status?token=${'A'.repeat(43)}`);
    expect(unknown.status).toBe(404);
    expect((await statusOf(app.statusUrl)).status).toBe(200);
  });
});

describe('password reset', () => {
  it('mail → link → new password; the old one is refused, the link works once, sessions end', async () => {
    const user = await newUser('reset');
    const before = new Agent(stack.baseUrl);
    await before.login(user.email);

    const unknown = await new Agent(stack.baseUrl).post('/api/v1/auth/password-reset', { email: `nobody-${uid()}@example.test` });
    expect(unknown.status).toBe(202);
    const res = await new Agent(stack.baseUrl).post('/api/v1/auth/password-reset', { email: user.email.toUpperCase() });
    expect(res.status).toBe(202);
    expect(res.body).toEqual(unknown.body);

    const [mail] = await stack.waitForMail({ to: user.email, subject: 'Reset your mpdp password' });
    const [, token] = await linkIn(mail!, /\/reset-password\?token=([A-Za-z0-9_-]+)/);
    const rows = await stack.sequelize.query<{ token_hash: string }>('SELECT token_hash FROM password_resets WHERE user_id = :id', { replacements: { id: user.id }, type: QueryTypes.SELECT });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).not.toContain(token!);

    const weak = await new Agent(stack.baseUrl).post('/api/v1/auth/password-reset/confirm', { token, password: 'short' });
    expect(weak.status).toBe(400);
    const done = await new Agent(stack.baseUrl).post('/api/v1/auth/password-reset/confirm', { token, password: 'my new long password' });
    expect(done.status).toBe(204);

    expect((await before.get('/api/v1/me')).status).toBe(401);
    const old = await new Agent(stack.baseUrl).request('POST', '/api/v1/auth/login', { email: user.email, password: testPassword });
    expect(old.status).toBe(401);
    await new Agent(stack.baseUrl).login(user.email, 'my new long password');
    const reuse = await new Agent(stack.baseUrl).post('/api/v1/auth/password-reset/confirm', { token, password: 'another long password' });
    expect(reuse.status).toBe(410);
    expect(reuse.body.error.code).toBe('reset_link_used');
    const bogus = await new Agent(stack.baseUrl).post('/api/v1/auth/password-reset/confirm', { token: 'x'.repeat(43), password: 'another long password' });
    expect(bogus.body.error.code).toBe('reset_link_invalid');
  });

  it('refuses an expired link', async () => {
    const user = await newUser('expire');
    await new Agent(stack.baseUrl).post('/api/v1/auth/password-reset', { email: user.email });
    const [mail] = await stack.waitForMail({ to: user.email, subject: 'Reset your mpdp password' });
    const [, token] = await linkIn(mail!, /\/reset-password\?token=([A-Za-z0-9_-]+)/);
    const [row] = await stack.sequelize.query<{ left_ms: number }>(
      `SELECT EXTRACT(EPOCH FROM (expires_at - now())) * 1000 AS left_ms FROM password_resets WHERE user_id = :id`, { replacements: { id: user.id }, type: QueryTypes.SELECT },
    );
    await new Promise((r) => setTimeout(r, Math.max(0, Number(row!.left_ms)) + 200));
    const late = await new Agent(stack.baseUrl).post('/api/v1/auth/password-reset/confirm', { token, password: 'my new long password' });
    expect(late.status).toBe(410);
    expect(late.body.error.code).toBe('reset_link_expired');
    await new Agent(stack.baseUrl).login(user.email);
  });
});

/** A login from another loopback address, so the per-address limit is tested apart from everything else. */
function loginFrom(localAddress: string, email: string, password: string) {
  const url = new URL(`${stack.baseUrl}/api/v1/auth/login`);
  const body = JSON.stringify({ email, password });
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }>((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text || 'null') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('sign-in', () => {
  it('rate-limits failures per account: the 6th try is refused with 429 and Retry-After, even with the right password', async () => {
    const user = await newUser('limit');
    for (let i = 0; i < 5; i++) {
      const res = await loginFrom('127.0.0.3', user.email, 'wrong password');
      expect(res.status).toBe(401);
    }
    const limited = await loginFrom('127.0.0.3', user.email, testPassword);
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);
    // Another account from the same address is unaffected.
    const other = await newUser('limit-other');
    expect((await loginFrom('127.0.0.3', other.email, testPassword)).status).toBe(200);
  });

  it('rate-limits failures per address: 20 failures on different accounts, then 429', async () => {
    for (let i = 0; i < 20; i++) {
      const res = await loginFrom('127.0.0.4', `spray-${i}-${uid()}@example.test`, 'guess');
      expect(res.status).toBe(401);
    }
    const user = await newUser('sprayed');
    const limited = await loginFrom('127.0.0.4', user.email, testPassword);
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // The same account from another address signs in.
    expect((await loginFrom('127.0.0.5', user.email, testPassword)).status).toBe(200);
  });

  it('rotates the session id on sign-in and ends the session presented', async () => {
    const user = await newUser('rotate');
    const a = new Agent(stack.baseUrl);
    await a.login(user.email);
    const first = a.cookie;
    await a.login(user.email);
    expect(a.cookie).not.toBe(first);
    expect((await a.get('/api/v1/me')).status).toBe(200);
    const stale = await fetch(`${stack.baseUrl}/api/v1/me`, { headers: { cookie: first } });
    expect(stale.status).toBe(401);
  });

  it('lists my sessions and ends one: that session gets 401 at once', async () => {
    const user = await newUser('sessions');
    const laptop = new Agent(stack.baseUrl);
    await laptop.request('POST', '/api/v1/auth/login', { email: user.email, password: testPassword }, { 'user-agent': 'Laptop Browser' });
    const phone = new Agent(stack.baseUrl);
    await phone.request('POST', '/api/v1/auth/login', { email: user.email, password: testPassword }, { 'user-agent': 'Phone Browser' });
    const list = await laptop.get('/api/v1/me/sessions');
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(2);
    const mine = list.body.items.find((s: any) => s.current);
    const other = list.body.items.find((s: any) => !s.current);
    expect(mine).toMatchObject({ userAgent: 'Laptop Browser', address: expect.stringContaining('127.0.0.1') });
    expect(other).toMatchObject({ userAgent: 'Phone Browser' });
    expect(Date.parse(other.lastSeenAt)).toBeGreaterThan(0);

    // Someone else's session id is not found.
    const stranger = await stack.agent('reviewer');
    expect((await stranger.request('DELETE', `/api/v1/me/sessions/${other.id}`)).status).toBe(404);
    expect((await phone.get('/api/v1/me')).status).toBe(200);

    expect((await laptop.request('DELETE', `/api/v1/me/sessions/${other.id}`)).status).toBe(204);
    const ended = await phone.get('/api/v1/me');
    expect(ended.status).toBe(401);
    expect((await laptop.get('/api/v1/me/sessions')).body.items).toHaveLength(1);
  });
});

describe('dev mailbox', () => {
  it('lists caught mails and shows their text and HTML parts', async () => {
    const user = await newUser('mailbox');
    await new Agent(stack.baseUrl).post('/api/v1/auth/password-reset', { email: user.email });
    await stack.waitForMail({ to: user.email, subject: 'Reset your mpdp password' });
    const list = await eventually(async () => {
      const res = await new Agent(stack.baseUrl).get('/api/v1/dev/mail');
      return res.body.items.find((m: any) => m.to.includes(user.email)) as { id: string; subject: string } | undefined;
    });
    expect(list.subject).toBe('Reset your mpdp password');
    const mail = await new Agent(stack.baseUrl).get(`/api/v1/dev/mail/${list.id}`);
    expect(mail.status).toBe(200);
    expect(mail.body.text).toContain('/reset-password?token=');
    expect(mail.body.html).toContain('Set a new password');
    expect((await new Agent(stack.baseUrl).get('/api/v1/dev/mail/..%2F..%2Fetc%2Fpasswd')).status).toBe(400);
  });

  it('answers 404 in production mode', async () => {
    const config = loadConfig({ MPDP_MODE: 'production', SECRET_KEY: 'a-production-secret-key', KEY_ENCRYPTION_KEY: 'a-production-key-encryption-key-32+', DEMO_DATA: 'false', DATA_DIR: stack.dataDir });
    const { app } = createApp({ config, sequelize: stack.sequelize, pool: undefined as never, temporal: undefined as never, store: undefined as never, hub: undefined as never });
    const res = await app.request('/api/v1/dev/mail');
    expect(res.status).toBe(404);
  });
});
