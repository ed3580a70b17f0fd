import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';
import { realisticPackage } from '../fixtures/packages.js';

let stack: Stack;
let admin: Agent;
let reviewer: Agent;
let developer: Agent;
let outsider: Agent;
let operator: Agent;
let ws: string;
let otherWs: string;
let miniProgramId: string;
let otherMiniProgramId: string;

/** A request with a bearer key (no cookie, no CSRF). */
async function withKey(key: string, method: string, url: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(stack.baseUrl + url, { method, headers, body: payload });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch { /* not JSON */ }
  return { status: res.status, body: parsed };
}

function uploadForm(version: string) {
  const form = new FormData();
  form.set('package', new Blob([new Uint8Array(realisticPackage({ version }))], { type: 'application/zip' }), 'package.zip');
  form.set('version', version);
  return form;
}

async function extraUser(name: string, isOperator: boolean) {
  const id = uid('usr_ws_');
  const email = `${name}-${id}@example.test`;
  await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash, is_operator) VALUES (:id, :email, :name, :hash, :isOperator)', {
    replacements: { id, email, name, hash: await hashPassword(testPassword), isOperator },
  });
  const agent = new Agent(stack.baseUrl);
  await agent.login(email);
  return { id, email, agent };
}

const keyRow = async (id: string) =>
  (await stack.sequelize.query<{ secret_hash: string; last_used_at: Date | null; revoked_at: Date | null }>('SELECT secret_hash, last_used_at, revoked_at FROM workspace_api_keys WHERE id = :id', {
    replacements: { id }, type: QueryTypes.SELECT,
  }))[0]!;

async function createKey(body: Record<string, unknown>, agent = admin, workspaceId = ws) {
  return agent.post(`/api/v1/workspaces/${workspaceId}/api-keys`, body);
}

beforeAll(async () => {
  stack = await startStack();
  ws = stack.workspaceId;
  [admin, reviewer, developer] = await Promise.all([stack.agent('admin'), stack.agent('reviewer'), stack.agent('developer')]);
  outsider = (await extraUser('outsider', false)).agent;
  operator = (await extraUser('operator', true)).agent;
  miniProgramId = (await developer.post(`/api/v1/workspaces/${ws}/mini-programs`, { name: 'Key Shop' })).body.id;
  // Another workspace where the stack's Admin is Admin too, with a mini program of its own.
  otherWs = uid('ws_keys_');
  await stack.sequelize.query(`INSERT INTO workspaces (id, name, code) VALUES (:id, 'Other Keys', :code)`, { replacements: { id: otherWs, code: otherWs.toUpperCase() } });
  await stack.sequelize.query(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:id, :user, 'admin')`, { replacements: { id: otherWs, user: stack.users.admin.id } });
  otherMiniProgramId = (await admin.post(`/api/v1/workspaces/${otherWs}/mini-programs`, { name: 'Other Shop' })).body.id;
}, 120_000);
afterAll(async () => stack?.stop());

describe('general info', () => {
  it('every member reads it; only Admins change it; the code is read-only; bad input changes nothing', async () => {
    for (const agent of [admin, reviewer, developer]) {
      const res = await agent.get(`/api/v1/workspaces/${ws}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: ws, code: expect.any(String), company: '', region: '', contacts: [], memberCount: 3, miniProgramCount: 1 });
      expect(res.body.regions.length).toBeGreaterThan(5);
    }
    expect((await outsider.get(`/api/v1/workspaces/${ws}`)).status).toBe(404);
    expect((await new Agent(stack.baseUrl).get(`/api/v1/workspaces/${ws}`)).status).toBe(401);

    const change = {
      name: 'Harbour Retail', company: 'Harbour Retail Pte. Ltd.', region: 'sg', description: 'Retail mini programs for the Harbour super app',
      contacts: [{ name: 'Mei Tan', email: 'mei@harbour.example', phone: '+65 6123 4567', role: 'Technical contact' }, { name: 'Raj Kumar', email: 'raj@harbour.example' }],
    };
    for (const agent of [reviewer, developer]) expect((await agent.request('PATCH', `/api/v1/workspaces/${ws}`, change)).status).toBe(403);
    expect((await outsider.request('PATCH', `/api/v1/workspaces/${ws}`, change)).status).toBe(404);
    const before = (await admin.get(`/api/v1/workspaces/${ws}`)).body;

    const bad: [Record<string, unknown>, number, string][] = [
      [{ code: 'NEWCODE' }, 400, 'code_read_only'],
      [{ name: 'x' }, 400, 'validation_failed'],
      [{ region: 'atlantis' }, 400, 'validation_failed'],
      [{ contacts: [{ name: 'No mail', email: 'not-an-email' }] }, 400, 'validation_failed'],
      [{ contacts: [{ name: 'Bad phone', email: 'a@b.example', phone: 'call me' }] }, 400, 'validation_failed'],
      [{ contacts: Array.from({ length: 11 }, (_, i) => ({ name: `C${i}`, email: `c${i}@x.example` })) }, 400, 'validation_failed'],
      [{ contacts: [{ name: 'A', email: 'same@x.example' }, { name: 'B', email: 'SAME@x.example' }] }, 400, 'duplicate_contact'],
    ];
    for (const [body, status, code] of bad) {
      const res = await admin.request('PATCH', `/api/v1/workspaces/${ws}`, { ...body, company: 'Should not be stored' });
      expect([res.status, res.body.error.code], JSON.stringify(body)).toEqual([status, code]);
    }
    expect((await admin.get(`/api/v1/workspaces/${ws}`)).body).toEqual(before);

    const res = await admin.request('PATCH', `/api/v1/workspaces/${ws}`, change);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ...change, code: before.code, regionLabel: 'Singapore', updatedBy: { id: stack.users.admin.id, name: 'Alice Admin' } });
    expect((await developer.get(`/api/v1/workspaces/${ws}`)).body).toMatchObject(change);
    // The console's workspace list shows the new name; the audit log has the change.
    expect((await developer.get('/api/v1/me')).body.workspaces.find((w: { id: string }) => w.id === ws).name).toBe('Harbour Retail');
    const [line] = await stack.sequelize.query<{ comment: string }>(`SELECT comment FROM audit_log WHERE workspace_id = :ws AND action = 'workspace_updated' ORDER BY id DESC LIMIT 1`, { replacements: { ws }, type: QueryTypes.SELECT });
    expect(line!.comment).toContain('company');
  });
});

describe('API keys', () => {
  it('only Admins list, create and revoke them; the secret is answered once and stored hashed', async () => {
    for (const agent of [reviewer, developer]) {
      expect((await agent.get(`/api/v1/workspaces/${ws}/api-keys`)).status).toBe(403);
      expect((await createKey({ name: 'nope', scopes: ['read'] }, agent)).status).toBe(403);
    }
    expect((await createKey({ name: 'nope', scopes: ['read'] }, outsider)).status).toBe(404);
    expect((await operator.get(`/api/v1/workspaces/${ws}/api-keys`)).status).toBe(404);

    for (const [body, code] of [
      [{ name: '', scopes: ['read'] }, 'validation_failed'], [{ name: 'CI', scopes: [] }, 'validation_failed'], [{ name: 'CI', scopes: ['approve'] }, 'validation_failed'],
      [{ name: 'CI', scopes: ['read'], expiresInDays: 0 }, 'validation_failed'], [{ name: 'CI', scopes: ['read'], expiresInDays: 1000 }, 'validation_failed'],
    ] as const) {
      const res = await createKey(body);
      expect([res.status, res.body.error.code]).toEqual([400, code]);
    }
    expect((await admin.get(`/api/v1/workspaces/${ws}/api-keys`)).body.items).toEqual([]);

    const res = await createKey({ name: 'Build server', scopes: ['upload', 'read'], expiresInDays: 30 });
    expect(res.status).toBe(201);
    const { key, secret } = res.body;
    expect(secret).toMatch(/^mpdp_wk_[0-9a-z]+_[A-Za-z0-9_-]{43}$/);
    expect(key).toMatchObject({ name: 'Build server', scopes: ['read', 'upload'], status: 'active', lastUsedAt: null, createdBy: { id: stack.users.admin.id } });
    expect(secret.startsWith(key.prefix)).toBe(true);
    expect(Date.parse(key.expiresAt) - Date.now()).toBeGreaterThan(29 * 86400_000);
    const row = await keyRow(key.id);
    expect(row.secret_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(await stack.sequelize.query('SELECT * FROM workspace_api_keys', { type: QueryTypes.SELECT }))).not.toContain(secret.slice(-30));
    const listed = await admin.get(`/api/v1/workspaces/${ws}/api-keys`);
    expect(listed.body.items).toHaveLength(1);
    expect(JSON.stringify(listed.body)).not.toContain(secret.slice(-30));
    expect(listed.body.scopes.map((s: { scope: string }) => s.scope)).toEqual(['read', 'upload', 'submit', 'release']);
    expect((await createKey({ name: 'build SERVER', scopes: ['read'] })).body.error.code).toBe('api_key_name_taken');

    // Revoke: developers may not; a second revoke is a conflict; the key stops working at once.
    expect((await withKey(secret, 'GET', `/api/v1/workspaces/${ws}/mini-programs`)).status).toBe(200);
    expect((await developer.request('DELETE', `/api/v1/workspaces/${ws}/api-keys/${key.id}`)).status).toBe(403);
    expect((await admin.request('DELETE', `/api/v1/workspaces/${otherWs}/api-keys/${key.id}`)).status).toBe(404);
    const revoked = await admin.request('DELETE', `/api/v1/workspaces/${ws}/api-keys/${key.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ status: 'revoked', revokedBy: { id: stack.users.admin.id } });
    expect((await admin.request('DELETE', `/api/v1/workspaces/${ws}/api-keys/${key.id}`)).body.error.code).toBe('already_revoked');
    const refused = await withKey(secret, 'GET', `/api/v1/workspaces/${ws}/mini-programs`);
    expect([refused.status, refused.body.error.code]).toEqual([401, 'invalid_api_key']);
    // The name is free again once the key is revoked.
    expect((await createKey({ name: 'Build server', scopes: ['read'] })).status).toBe(201);
  });

  it('a read key lists its workspace\'s mini programs and nothing else; never another workspace; never a person\'s routes', async () => {
    const { secret, key } = (await createKey({ name: 'Reporting', scopes: ['read'] })).body;
    const list = await withKey(secret, 'GET', `/api/v1/workspaces/${ws}/mini-programs`);
    expect(list.status).toBe(200);
    expect(list.body.items.map((m: { id: string }) => m.id)).toContain(miniProgramId);
    expect((await withKey(secret, 'GET', `/api/v1/workspaces/${ws}/mini-programs/${miniProgramId}`)).status).toBe(200);
    expect((await withKey(secret, 'GET', `/api/v1/workspaces/${ws}`)).status).toBe(200);

    // Not in its scope: 403 with the key's scopes named.
    const upload = await withKey(secret, 'POST', `/api/v1/workspaces/${ws}/mini-programs/${miniProgramId}/versions`, uploadForm('9.9.9'));
    expect([upload.status, upload.body.error.code]).toEqual([403, 'forbidden']);
    expect(upload.body.error.message).toContain('read');
    for (const [method, url] of [
      ['POST', `/api/v1/workspaces/${ws}/mini-programs`], ['GET', `/api/v1/workspaces/${ws}/members`], ['GET', `/api/v1/workspaces/${ws}/api-keys`],
      ['POST', `/api/v1/workspaces/${ws}/api-keys`], ['PATCH', `/api/v1/workspaces/${ws}`], ['GET', `/api/v1/workspaces/${ws}/webhooks`],
    ] as const) {
      const res = await withKey(secret, method, url, method === 'GET' ? undefined : { name: 'x', scopes: ['read'] });
      expect(res.status, `${method} ${url}`).toBe(403);
    }
    // Another workspace: nothing there (404), even where the key's creator is Admin.
    expect((await withKey(secret, 'GET', `/api/v1/workspaces/${otherWs}/mini-programs`)).status).toBe(404);
    expect((await withKey(secret, 'GET', `/api/v1/workspaces/${otherWs}/mini-programs/${otherMiniProgramId}`)).status).toBe(404);
    expect((await withKey(secret, 'GET', `/api/v1/workspaces/${otherWs}`)).status).toBe(404);
    // A key is not a person.
    for (const url of ['/api/v1/me', '/api/v1/me/tokens', '/api/v1/me/reviews', '/api/v1/platform/pipelines/stuck']) {
      const res = await withKey(secret, 'GET', url);
      expect([res.status, res.body.error.code], url).toEqual([403, 'api_key_not_allowed']);
    }
    // Unknown, malformed and tampered keys: 401 invalid_api_key, and public routes still answer.
    for (const bad of [`${secret.slice(0, -4)}AAAA`, 'mpdp_wk_nonsense', `mpdp_${key.id}_${'A'.repeat(43)}`]) {
      const res = await withKey(bad, 'GET', `/api/v1/workspaces/${ws}/mini-programs`);
      expect([res.status, res.body.error.code]).toEqual([401, 'invalid_api_key']);
    }
    expect((await withKey('mpdp_wk_nonsense', 'GET', '/api/v1/health')).status).toBe(200);
  });

  it('an upload key uploads a version but cannot submit it; last used moves (at most once a minute)', async () => {
    const { secret, key } = (await createKey({ name: 'CI uploader', scopes: ['upload'] })).body;
    expect((await keyRow(key.id)).last_used_at).toBeNull();
    const up = await withKey(secret, 'POST', `/api/v1/workspaces/${ws}/mini-programs/${miniProgramId}/versions`, uploadForm('1.0.0'));
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    expect(up.body).toMatchObject({ version: '1.0.0', status: 'uploaded' });
    const used = (await keyRow(key.id)).last_used_at;
    expect(used).not.toBeNull();
    const listed = (await admin.get(`/api/v1/workspaces/${ws}/api-keys`)).body.items.find((k: { id: string }) => k.id === key.id);
    expect(Date.parse(listed.lastUsedAt)).toBe(new Date(used!).getTime());

    const submit = await withKey(secret, 'POST', `/api/v1/workspaces/${ws}/mini-programs/${miniProgramId}/versions/${up.body.id}/submit`, {});
    expect([submit.status, submit.body.error.code]).toEqual([403, 'forbidden']);
    // Reading needs the read scope.
    expect((await withKey(secret, 'GET', `/api/v1/workspaces/${ws}/mini-programs`)).status).toBe(403);
    // Throttled: a second request within the minute leaves last_used_at as it was; an older one moves it.
    await withKey(secret, 'POST', `/api/v1/workspaces/${ws}/mini-programs/${miniProgramId}/versions`, uploadForm('1.0.1'));
    expect((await keyRow(key.id)).last_used_at).toEqual(used);
    await stack.sequelize.query(`UPDATE workspace_api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = :id`, { replacements: { id: key.id } });
    const stale = (await keyRow(key.id)).last_used_at!;
    await withKey(secret, 'GET', `/api/v1/workspaces/${ws}`);
    expect((await keyRow(key.id)).last_used_at!.getTime()).toBeGreaterThan(stale.getTime());
    // The developer sees the version the key uploaded.
    const versions = (await developer.get(`/api/v1/workspaces/${ws}/mini-programs/${miniProgramId}`)).body.versions;
    expect(versions.map((v: { version: string }) => v.version)).toEqual(expect.arrayContaining(['1.0.0', '1.0.1']));
  });

  it('an expired key is refused like a revoked one', async () => {
    const { secret, key } = (await createKey({ name: 'Short lived', scopes: ['read'], expiresInDays: 1 })).body;
    expect((await withKey(secret, 'GET', `/api/v1/workspaces/${ws}/mini-programs`)).status).toBe(200);
    await stack.sequelize.query(`UPDATE workspace_api_keys SET expires_at = now() - interval '1 second' WHERE id = :id`, { replacements: { id: key.id } });
    const res = await withKey(secret, 'GET', `/api/v1/workspaces/${ws}/mini-programs`);
    expect([res.status, res.body.error.code]).toEqual([401, 'invalid_api_key']);
    const listed = (await admin.get(`/api/v1/workspaces/${ws}/api-keys`)).body.items.find((k: { id: string }) => k.id === key.id);
    expect(listed.status).toBe('expired');
  });
});
