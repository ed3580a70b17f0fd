import pg from 'pg';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { seedUsers } from '../../db/seed.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * Terms of service: versions published by Admins, acceptances by members, the console's pending
 * list, and the API's write gate (403 terms_not_accepted until the current version is accepted).
 */

let stack: Stack;
let admin: Agent;
let rev: Agent;
let dev: Agent;
let outsider: Agent;
let ws: string;
const stranger = { id: uid('usr_x_'), email: `${uid('outsider-')}@example.test`, name: 'Olga Outsider', role: 'admin' as const };

const termsUrl = () => `/api/v1/workspaces/${ws}/terms`;
const ua = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
/** A cheap write a Developer may make: create a mini program. */
const devWrite = (agent = dev) => agent.post(`/api/v1/workspaces/${ws}/mini-programs`, { name: `Gate ${uid()}`.slice(0, 40), description: 'Gate check', category: 'tools', icon: '🔒' });
const versionCount = async () => Number((await stack.sequelize.query<{ n: string }>('SELECT count(*) AS n FROM terms_versions WHERE workspace_id = :ws', { replacements: { ws }, type: QueryTypes.SELECT }))[0]!.n);

beforeAll(async () => {
  stack = await startStack();
  ws = stack.workspaceId;
  const otherWs = uid('ws_other_');
  await seedUsers(stack.sequelize, { workspaceId: otherWs, workspaceName: 'Elsewhere', code: otherWs.toUpperCase(), users: [stranger], password: testPassword });
  [admin, rev, dev] = await Promise.all([stack.agent('admin'), stack.agent('reviewer'), stack.agent('developer')]);
  outsider = new Agent(stack.baseUrl);
  await outsider.login(stranger.email);
}, 180_000);
afterAll(async () => stack?.stop());

describe('before any terms', () => {
  it('every member reads an empty history; nothing is pending; writes pass', async () => {
    for (const a of [admin, rev, dev]) {
      const res = await a.get(termsUrl());
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ current: null, versions: [], myAcceptance: null, memberCount: 3 });
      expect((await a.get('/api/v1/me/pending-terms')).body).toEqual({ items: [] });
    }
    expect((await outsider.get(termsUrl())).status).toBe(404);
    expect((await new Agent(stack.baseUrl).get(termsUrl())).status).toBe(401);
    expect((await devWrite()).status).toBe(201);
  });

  it('only Admins publish: Reviewer and Developer 403, non-member 404, nothing changes', async () => {
    const body = { title: 'Terms', body: 'Be nice.' };
    for (const a of [rev, dev]) {
      const res = await a.post(termsUrl(), body);
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
    expect((await outsider.post(termsUrl(), body)).status).toBe(404);
    expect((await new Agent(stack.baseUrl).post(termsUrl(), body)).status).toBe(401);
    expect(await versionCount()).toBe(0);
  });

  it('refuses bad input with 400 and publishes nothing', async () => {
    const bad: unknown[] = [
      { title: '', body: 'text' }, { title: '   ', body: 'text' }, { title: 'x'.repeat(201), body: 'text' }, { title: 'Terms', body: '' }, { title: 'Terms', body: ' \n\n ' },
      { title: 'Terms', body: 'x'.repeat(50_001) }, { title: 'Terms' }, { body: 'text' }, { title: 7, body: 'text' },
    ];
    for (const body of bad) {
      const res = await admin.post(termsUrl(), body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect(await versionCount()).toBe(0);
    // Accepting when there are no terms: nothing to accept.
    expect((await dev.post(`${termsUrl()}/1/accept`)).status).toBe(404);
  });
});

describe('version 1', () => {
  const text = '# 1. Scope\nThese terms apply to every mini program.\n\n- Keep user data safe\n- Follow the review rules\n\n' + 'Long text. '.repeat(4000);

  it('an Admin publishes it (audited; the publisher has accepted it by publishing); the full 50,000 characters fit', async () => {
    const full = await admin.request('POST', termsUrl(), { title: 'Platform terms', body: 'y'.repeat(50_000) }, { 'user-agent': ua });
    expect(full.status).toBe(201);
    expect(full.body).toMatchObject({ version: 1, title: 'Platform terms', publishedBy: { id: stack.users.admin.id, name: 'Alice Admin' } });
    expect(full.body.body).toHaveLength(50_000);
    // Published twice in a row: 1 then 2 (the second is the one members read).
    const res = await admin.request('POST', termsUrl(), { title: 'Platform terms', body: text }, { 'user-agent': ua });
    expect(res.status).toBe(201);
    expect(res.body.version).toBe(2);
    const audit = await stack.sequelize.query<{ action: string; actor_id: string; subject_id: string }>(
      `SELECT action, actor_id, subject_id FROM audit_log WHERE workspace_id = :ws AND subject_type = 'terms' ORDER BY at, subject_id`, { replacements: { ws }, type: QueryTypes.SELECT },
    );
    expect(audit).toEqual([
      { action: 'terms_published', actor_id: stack.users.admin.id, subject_id: `${ws}:v1` },
      { action: 'terms_published', actor_id: stack.users.admin.id, subject_id: `${ws}:v2` },
    ]);
    const overview = await admin.get(termsUrl());
    expect(overview.body.current).toMatchObject({ version: 2, title: 'Platform terms', body: text });
    expect(overview.body.versions.map((v: any) => [v.version, v.acceptedCount])).toEqual([[2, 1], [1, 1]]);
    expect(overview.body.myAcceptance).toMatchObject({ version: 2 });
    // Every member reads any version in full.
    const v1 = await dev.get(`${termsUrl()}/1`);
    expect(v1.status).toBe(200);
    expect(v1.body.body).toHaveLength(50_000);
    expect((await dev.get(`${termsUrl()}/9`)).status).toBe(404);
  });

  it('holds the writes of members who have not accepted it (reads still pass); a missing permission still answers forbidden', async () => {
    const blocked = await devWrite();
    expect(blocked.status).toBe(403);
    expect(blocked.body.error).toMatchObject({ code: 'terms_not_accepted', details: { version: 2 } });
    // A Reviewer may not create mini programs at all: that refusal comes first.
    const rw = await devWrite(rev);
    expect(rw.status).toBe(403);
    expect(rw.body.error.code).toBe('forbidden');
    expect((await dev.get(`/api/v1/workspaces/${ws}/mini-programs`)).status).toBe(200);
    // The Admin accepted by publishing: their writes pass.
    expect((await devWrite(admin)).status).toBe(201);
    // A personal access token is a person too.
    const token = await dev.post('/api/v1/me/tokens', { name: 'ci' });
    expect(token.status).toBe(201);
    const res = await fetch(`${stack.baseUrl}/api/v1/workspaces/${ws}/mini-programs`, {
      method: 'POST', headers: { authorization: `Bearer ${token.body.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Via token', description: 'x', category: 'tools', icon: '🔒' }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as any).error.code).toBe('terms_not_accepted');
  });

  it('lists the workspace in the pending terms of those who have not accepted', async () => {
    const pending = await dev.get('/api/v1/me/pending-terms');
    expect(pending.body.items).toEqual([expect.objectContaining({ workspaceId: ws, terms: expect.objectContaining({ version: 2, title: 'Platform terms' }) })]);
    expect((await admin.get('/api/v1/me/pending-terms')).body.items).toEqual([]);
    expect((await outsider.get('/api/v1/me/pending-terms')).body.items).toEqual([]);
  });

  it('accepting: only the current version, only members, bad versions refused; idempotent', async () => {
    expect((await dev.post(`${termsUrl()}/1/accept`)).body.error.code).toBe('terms_not_current');
    expect((await dev.post(`${termsUrl()}/9/accept`)).status).toBe(404);
    const bad = await dev.post(`${termsUrl()}/abc/accept`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_failed');
    expect((await outsider.post(`${termsUrl()}/2/accept`)).status).toBe(404);
    expect((await stack.sequelize.query('SELECT 1 FROM terms_acceptances WHERE workspace_id = :ws AND user_id = :u', { replacements: { ws, u: stack.users.developer.id }, type: QueryTypes.SELECT })).length).toBe(0);

    const first = await dev.request('POST', `${termsUrl()}/2/accept`, undefined, { 'user-agent': ua });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ version: 2, alreadyAccepted: false });
    const again = await dev.request('POST', `${termsUrl()}/2/accept`, undefined, { 'user-agent': 'curl/8' });
    expect(again.body).toMatchObject({ version: 2, alreadyAccepted: true, acceptedAt: first.body.acceptedAt });
    const [row] = await stack.sequelize.query<{ user_agent: string }>('SELECT user_agent FROM terms_acceptances WHERE workspace_id = :ws AND user_id = :u AND version = 2', { replacements: { ws, u: stack.users.developer.id }, type: QueryTypes.SELECT });
    expect(row!.user_agent).toBe(ua);
    // Now the writes pass, and nothing is pending.
    expect((await devWrite()).status).toBe(201);
    expect((await dev.get('/api/v1/me/pending-terms')).body.items).toEqual([]);
    expect((await dev.get(termsUrl())).body.myAcceptance).toMatchObject({ version: 2, acceptedAt: first.body.acceptedAt });
  });

  it('Admins see who accepted what and who has not; others may not', async () => {
    const res = await admin.get(`${termsUrl()}/acceptances`);
    expect(res.status).toBe(200);
    expect(res.body.currentVersion).toBe(2);
    expect(res.body.pending).toBe(1);
    const byName = Object.fromEntries(res.body.members.map((m: any) => [m.user.name, m]));
    expect(byName['Alice Admin']).toMatchObject({ role: 'admin', acceptedCurrent: true, lastAccepted: { version: 2, userAgent: ua } });
    expect(byName['Dan Developer']).toMatchObject({ role: 'developer', acceptedCurrent: true, lastAccepted: { version: 2, userAgent: ua } });
    expect(byName['Rita Reviewer']).toMatchObject({ role: 'reviewer', acceptedCurrent: false, lastAccepted: null });
    expect(res.body.history.map((h: any) => [h.user.name, h.version])).toEqual(expect.arrayContaining([['Alice Admin', 1], ['Alice Admin', 2], ['Dan Developer', 2]]));
    for (const a of [rev, dev]) expect((await a.get(`${termsUrl()}/acceptances`)).status).toBe(403);
    expect((await outsider.get(`${termsUrl()}/acceptances`)).status).toBe(404);
  });
});

describe('a newer version', () => {
  it('blocks again until accepted', async () => {
    const v3 = await admin.post(termsUrl(), { title: 'Platform terms (2027)', body: 'Updated: data retention is 90 days.' });
    expect(v3.body.version).toBe(3);
    const blocked = await devWrite();
    expect(blocked.status).toBe(403);
    expect(blocked.body.error).toMatchObject({ code: 'terms_not_accepted', details: { version: 3 } });
    expect((await dev.post(`${termsUrl()}/2/accept`)).status).toBe(409);
    expect((await dev.post(`${termsUrl()}/3/accept`)).status).toBe(200);
    expect((await devWrite()).status).toBe(201);
    const acc = await admin.get(`${termsUrl()}/acceptances`);
    expect(acc.body).toMatchObject({ currentVersion: 3, pending: 1 });
  });

  it('the gate costs one indexed lookup on writes (measured)', async () => {
    // The gate's own query, as the API prepares it, on a plain pool.
    const pool = new pg.Pool({ connectionString: inject('databaseUrl'), max: 1 });
    const query = {
      name: 'mpdp_terms_pending',
      text: `SELECT t.version, t.title FROM (SELECT version, title FROM terms_versions WHERE workspace_id = $1 ORDER BY version DESC LIMIT 1) t
             WHERE NOT EXISTS (SELECT 1 FROM terms_acceptances a WHERE a.workspace_id = $1 AND a.user_id = $2 AND a.version = t.version)`,
      values: [ws, stack.users.developer.id],
    };
    const times: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const t0 = performance.now();
      await pool.query(query);
      times.push(performance.now() - t0);
    }
    const plan = await pool.query(`EXPLAIN ${query.text.replace('$1', `'${ws}'`).replace('$1', `'${ws}'`).replace('$2', `'${stack.users.developer.id}'`)}`);
    await pool.end();
    times.sort((a, b) => a - b);
    const p = (q: number) => times[Math.floor(q * (times.length - 1))]!.toFixed(3);
    console.log(`[terms gate] query p50 ${p(0.5)} ms, p99 ${p(0.99)} ms over ${times.length}`);
    console.log(`[terms gate] plan: ${plan.rows.map((r: any) => r['QUERY PLAN']).join(' | ')}`);
    expect(plan.rows.map((r: any) => r['QUERY PLAN']).join('\n')).toMatch(/Index/);
  });
});
