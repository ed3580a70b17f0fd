import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import { seedUsers } from '../../db/seed.js';
import { canonicalString, signCanonical } from '../../lib/host-app-keys.js';
import { realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * POST /api/v1/collect against the real API and PostgreSQL (events written by the real ingest
 * buffer): both ways to authenticate, batch-level refusals that store nothing, per-event
 * rejections next to stored good events, wait=true, duplicates, CORS, and the ingest key routes.
 *
 * The stack runs with a 60 s flush interval and the smallest buffer (500 events), so events posted
 * without wait=true stay buffered until the test flushes them, and a full buffer can be reached.
 */

let stack: Stack;
let ws: string;
let admin: Agent;
let reviewer: Agent;
let developer: Agent;
let stranger: Agent;
let mp: string;
const versions: Record<string, string> = {};
let ingestKey: string;
let hostApp: { id: string; privatePem: string; fingerprint: string };
let otherWs: { id: string; admin: Agent; mp: string; hostApp: string };

const flushIntervalMs = 60_000;

interface Answer { status: number; body: any; headers: Headers }

async function post(body: unknown, o: { key?: string | null; query?: string; headers?: Record<string, string>; raw?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...o.headers };
  const key = o.key === undefined ? ingestKey : o.key;
  if (key) headers['x-mpdp-ingest-key'] = key;
  const res = await fetch(`${stack.baseUrl}/api/v1/collect${o.query ?? ''}`, { method: 'POST', headers, body: o.raw ?? JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** A host app's signed post: the signature covers method, path with query, timestamp and the exact body. */
async function signedPost(body: string, o: { query?: string; appId?: string; privatePem?: string; ts?: number; tamper?: boolean; key?: string; signedPath?: string } = {}): Promise<Answer> {
  const path = `/api/v1/collect${o.query ?? ''}`;
  const ts = String(o.ts ?? Date.now());
  const signature = signCanonical(o.privatePem ?? hostApp.privatePem, canonicalString('POST', o.signedPath ?? path, ts, body));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-mpdp-app': o.appId ?? hostApp.id, 'x-mpdp-timestamp': ts, 'x-mpdp-signature': signature };
  if (o.key) headers['x-mpdp-key'] = o.key;
  const res = await fetch(stack.baseUrl + path, { method: 'POST', headers, body: o.tamper ? `${body} ` : body });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

const minutesAgo = (m: number) => Date.now() - m * 60_000;
/** Events of every type for the main mini program, with fresh ids. */
function goodEvents(o: { user?: string; session?: string } = {}) {
  const user = o.user ?? `user-${uid()}`;
  const session = o.session ?? `sess-${uid()}`;
  const base = () => ({ id: randomUUID(), userId: user, sessionId: session, versionId: versions['1.0.0'] });
  return [
    { ...base(), type: 'launch', at: minutesAgo(5) },
    { ...base(), type: 'page_view', page: 'pages/index/index', value: 3200, at: new Date(minutesAgo(4)).toISOString() },
    { ...base(), type: 'custom', name: 'add_to_cart', properties: { sku: 'SKU-1', qty: 1 }, at: minutesAgo(3) },
    { ...base(), type: 'perf', name: 'first_paint_ms', value: 412.5, at: minutesAgo(3) },
    { ...base(), type: 'error', message: 'TypeError: Cannot read properties of undefined (reading \'price\')', stack: 'TypeError: Cannot read properties of undefined\n    at onTap (pages/cart/cart.js:42:17)', page: 'pages/cart/cart', at: minutesAgo(2) },
    { ...base(), type: 'crash', message: 'RangeError: Maximum call stack size exceeded', stack: 'RangeError: Maximum call stack size exceeded\n    at render (app.js:10:3)', at: minutesAgo(1) },
  ];
}

const rowsOf = async (ids: string[]) =>
  stack.sequelize.query<{ id: string; type: string; mini_program_id: string; version_id: string; host_app_id: string | null; workspace_id: string; user_id: string; fingerprint: string | null; props: unknown }>(
    'SELECT id::text, type, mini_program_id, version_id, host_app_id, workspace_id, user_id, fingerprint, props FROM analytics_events WHERE id IN (:ids)',
    { replacements: { ids: ids.length ? ids : ['00000000-0000-0000-0000-000000000000'] }, type: QueryTypes.SELECT },
  );
const countAll = async () =>
  Number((await stack.sequelize.query<{ n: string }>('SELECT count(*) AS n FROM analytics_events WHERE workspace_id IN (:ws)', { replacements: { ws: [ws, otherWs.id] }, type: QueryTypes.SELECT }))[0]!.n);

async function upload(agent: Agent, workspaceId: string, miniProgramId: string, version: string) {
  const up = await agent.upload(`/api/v1/workspaces/${workspaceId}/mini-programs/${miniProgramId}/versions`, realisticPackage({ version }), version);
  expect(up.status).toBe(201);
  return up.body.id as string;
}

async function createProgram(agent: Agent, workspaceId: string, name: string) {
  const res = await agent.post(`/api/v1/workspaces/${workspaceId}/mini-programs`, { name });
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  await eventually(async () => (await stack.sequelize.query('SELECT 1 FROM mini_programs WHERE id = :id', { replacements: { id }, type: QueryTypes.SELECT })).length > 0, { what: `${name} projected` });
  return id;
}

async function newHostApp(agent: Agent, workspaceId: string) {
  const res = await agent.post(`/api/v1/workspaces/${workspaceId}/host-apps`, { name: `Super App ${uid()}`, platform: 'android', bundleId: `com.example.${uid('app')}` });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

beforeAll(async () => {
  stack = await startStack({ env: { ANALYTICS_FLUSH_INTERVAL_MS: String(flushIntervalMs), ANALYTICS_BUFFER_MAX_EVENTS: '500' } });
  ws = stack.workspaceId;
  [admin, reviewer, developer] = await Promise.all([stack.agent('admin'), stack.agent('reviewer'), stack.agent('developer')]);
  const email = `stranger-${uid()}@outside.example.test`;
  await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)', { replacements: { id: `usr_o_${uid()}`, email, name: 'Stranger', hash: await hashPassword(testPassword) } });
  stranger = new Agent(stack.baseUrl);
  await stranger.login(email);

  mp = await createProgram(developer, ws, `Collect Mall ${uid()}`);
  versions['1.0.0'] = await upload(developer, ws, mp, '1.0.0');
  versions['1.1.0'] = await upload(developer, ws, mp, '1.1.0');
  await eventually(async () => (await stack.sequelize.query('SELECT 1 FROM versions WHERE mini_program_id = :mp', { replacements: { mp }, type: QueryTypes.SELECT })).length === 2, { what: 'versions projected' });
  ingestKey = (await admin.get(`/api/v1/workspaces/${ws}/mini-programs/${mp}/ingest-key`)).body.ingestKey;

  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const appId = await newHostApp(admin, ws);
  const key = await admin.post(`/api/v1/workspaces/${ws}/host-apps/${appId}/keys`, { mode: 'upload', publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() });
  expect(key.status).toBe(201);
  hostApp = { id: appId, privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), fingerprint: key.body.key.fingerprint };

  // Another workspace, with its own mini program and host app.
  const other = { id: uid('ws_'), adminId: `usr_x_${uid()}`, email: `other-${uid()}@example.test` };
  await seedUsers(stack.sequelize, { workspaceId: other.id, workspaceName: 'Other', code: uid().toUpperCase(), users: [{ id: other.adminId, email: other.email, name: 'Olga Other', role: 'admin' }], password: testPassword });
  const otherAdmin = new Agent(stack.baseUrl);
  await otherAdmin.login(other.email);
  otherWs = { id: other.id, admin: otherAdmin, mp: await createProgram(otherAdmin, other.id, `Elsewhere ${uid()}`), hostApp: await newHostApp(otherAdmin, other.id) };
});
afterAll(async () => stack?.stop());

describe('collect with the ingest key', () => {
  it('stores good events once committed (wait=true), lists bad ones by index, and stores none of them', async () => {
    const good = goodEvents();
    const bad = [
      null,
      { ...good[0], id: 'not-a-uuid' },
      { ...good[0], id: randomUUID(), versionId: 'ver_nope' },
      { ...good[0], id: randomUUID(), type: 'page_view', page: undefined },
      { ...good[0], id: randomUUID(), miniProgramId: otherWs.mp },
      { ...good[0], id: randomUUID(), hostAppId: otherWs.hostApp },
      { ...good[0], id: randomUUID(), at: Date.now() - 8 * 24 * 3600_000 },
    ];
    // Interleaved: bad events at odd indexes 1, 3, 5, …
    const events: unknown[] = [];
    for (let i = 0; i < Math.max(good.length, bad.length); i++) {
      if (good[i]) events.push(good[i]);
      if (i < bad.length) events.push(bad[i]);
    }
    const res = await post({ events }, { query: '?wait=true' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: good.length, written: good.length, duplicates: 0, durable: true });
    expect(res.body.flushBy).toBeUndefined();
    const codeAt = Object.fromEntries(res.body.rejected.map((r: { index: number; code: string }) => [r.index, r.code]));
    const indexOf = (e: unknown) => events.indexOf(e);
    expect(codeAt).toEqual({
      [indexOf(bad[0])]: 'invalid_event', [indexOf(bad[1])]: 'invalid_id', [indexOf(bad[2])]: 'unknown_version', [indexOf(bad[3])]: 'missing_page',
      [indexOf(bad[4])]: 'wrong_mini_program', [indexOf(bad[5])]: 'unknown_host_app', [indexOf(bad[6])]: 'time_out_of_range',
    });
    expect(res.body.rejected.find((r: { code: string }) => r.code === 'unknown_version')).toMatchObject({ field: 'versionId', message: expect.stringContaining('ver_nope') });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');

    // Committed before the answer: no flush needed to read them.
    const rows = await rowsOf(good.map((e) => e.id));
    expect(rows).toHaveLength(good.length);
    for (const r of rows) expect(r).toMatchObject({ mini_program_id: mp, version_id: versions['1.0.0'], workspace_id: ws, host_app_id: null });
    expect(rows.filter((r) => r.fingerprint).map((r) => r.type).sort()).toEqual(['crash', 'error']);
    const badIds = bad.flatMap((e) => (e && typeof e.id === 'string' && e.id.length === 36 ? [e.id] : []));
    expect(await rowsOf(badIds)).toEqual([]);
  });

  it('counts a retried batch once: the second answer reports duplicates, the table holds one row per event', async () => {
    const events = goodEvents();
    const first = await post({ events }, { query: '?wait=true' });
    expect(first.body).toMatchObject({ accepted: 6, written: 6, duplicates: 0 });
    const again = await post({ events }, { query: '?wait=true' });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ accepted: 6, written: 0, duplicates: 6, rejected: [] });
    // The same event twice in one batch, and once more with the id in capitals.
    const one = { ...events[0]!, id: randomUUID() };
    const twice = await post({ events: [one, one, { ...one, id: one.id.toUpperCase() }] }, { query: '?wait=true' });
    expect(twice.body).toMatchObject({ accepted: 3, written: 1, duplicates: 2 });
    expect(await rowsOf([...events.map((e) => e.id), one.id])).toHaveLength(7);
  });

  it('without wait: 202 with durable false and flushBy; the events are written by the flush', async () => {
    const events = goodEvents();
    const before = Date.now();
    const res = await post({ events });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: 6, rejected: [], durable: false });
    const flushBy = Date.parse(res.body.flushBy);
    expect(flushBy).toBeGreaterThan(before);
    expect(flushBy).toBeLessThanOrEqual(Date.now() + flushIntervalMs + 1000);
    expect(await rowsOf(events.map((e) => e.id))).toHaveLength(0);
    await stack.ingest.flush();
    expect(await rowsOf(events.map((e) => e.id))).toHaveLength(6);
  });

  it('takes the key from ?key= with a text/plain body (navigator.sendBeacon), and resolves version strings', async () => {
    const events = goodEvents().map((e) => ({ ...e, versionId: undefined, version: '1.1.0', miniProgramId: mp, hostAppId: hostApp.id }));
    const res = await post({ events }, { key: null, query: `?key=${ingestKey}&wait=true`, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: 6, written: 6 });
    const rows = await rowsOf(events.map((e) => e.id));
    expect(new Set(rows.map((r) => `${r.version_id} ${r.host_app_id}`))).toEqual(new Set([`${versions['1.1.0']} ${hostApp.id}`]));
  });

  it('knows a version uploaded a moment ago', async () => {
    // Warm the cache with the mini program's current versions first.
    expect((await post({ events: goodEvents().slice(0, 1) }, { query: '?wait=true' })).body.written).toBe(1);
    const id = await upload(developer, ws, mp, '1.2.0');
    const event = { ...goodEvents()[0]!, versionId: undefined, version: '1.2.0' };
    await eventually(async () => (await post({ events: [{ ...event, id: randomUUID() }] }, { query: '?wait=true' })).body.written === 1, { what: 'version 1.2.0 accepted', timeoutMs: 15_000 });
    versions['1.2.0'] = id;
    expect((await post({ events: [{ ...event, version: '7.0.0' }] })).body.rejected[0]).toMatchObject({ index: 0, code: 'unknown_version', field: 'version' });
  });
});

describe('collect with a host app signature', () => {
  it('stores events signed by the host app, attributed to it, with the signed query (wait=true)', async () => {
    const events = goodEvents().map((e) => ({ ...e, miniProgramId: mp }));
    const bad = [
      { ...events[0], id: randomUUID(), miniProgramId: undefined },
      { ...events[0], id: randomUUID(), miniProgramId: otherWs.mp, versionId: 'whatever' },
      { ...events[0], id: randomUUID(), hostAppId: otherWs.hostApp },
      { ...events[0], id: randomUUID(), miniProgramId: 'mp_does_not_exist' },
    ];
    const res = await signedPost(JSON.stringify({ events: [...events, ...bad] }), { query: '?wait=true', key: hostApp.fingerprint });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: 6, written: 6, durable: true });
    expect(res.body.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([[6, 'unknown_mini_program'], [7, 'unknown_mini_program'], [8, 'wrong_host_app'], [9, 'unknown_mini_program']]);
    const rows = await rowsOf(events.map((e) => e.id));
    expect(rows).toHaveLength(6);
    for (const r of rows) expect(r).toMatchObject({ host_app_id: hostApp.id, workspace_id: ws, mini_program_id: mp });
    expect(await rowsOf(bad.map((e) => e.id as string))).toEqual([]);
  });

  it('refuses bad signatures with their code (401) and stores nothing of those batches', async () => {
    const body = JSON.stringify({ events: goodEvents().map((e) => ({ ...e, miniProgramId: mp })) });
    const before = await countAll();
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const cases: [string, Promise<Answer>, string][] = [
      ['tampered body', signedPost(body, { tamper: true }), 'signature_invalid'],
      ['another private key', signedPost(body, { privatePem: other }), 'signature_invalid'],
      ['query not signed', signedPost(body, { query: '?wait=true', signedPath: '/api/v1/collect' }), 'signature_invalid'],
      ['old timestamp', signedPost(body, { ts: Date.now() - 10 * 60_000 }), 'timestamp_skew'],
      ['unknown app', signedPost(body, { appId: 'ha_nope' }), 'unknown_app'],
      ['unknown key fingerprint', signedPost(body, { key: 'SHA256:nope' }), 'unknown_key'],
      ['an app of another workspace, signed with our key', signedPost(body, { appId: otherWs.hostApp }), 'signature_invalid'],
    ];
    for (const [what, pending, code] of cases) {
      const res = await pending;
      expect([what, res.status, res.body.error?.code]).toEqual([what, 401, code]);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
    }
    // A disabled host app signs in vain.
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const disabled = await newHostApp(admin, ws);
    expect((await admin.post(`/api/v1/workspaces/${ws}/host-apps/${disabled}/keys`, { mode: 'upload', publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() })).status).toBe(201);
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect((await signedPost(body, { appId: disabled, privatePem: pem, query: '?wait=true' })).body.written).toBe(6);
    expect((await admin.request('PATCH', `/api/v1/workspaces/${ws}/host-apps/${disabled}`, { status: 'disabled' })).status).toBe(200);
    const refused = await signedPost(JSON.stringify({ events: goodEvents().map((e) => ({ ...e, miniProgramId: mp })) }), { appId: disabled, privatePem: pem });
    expect([refused.status, refused.body.error.code]).toEqual([401, 'app_disabled']);
    await stack.ingest.flush();
    expect(await countAll()).toBe(before + 6);
  });
});

describe('refusals of the whole request', () => {
  it('401 without or with a wrong ingest key, with a code and a message', async () => {
    const body = { events: goodEvents() };
    const none = await post(body, { key: null });
    expect([none.status, none.body.error.code]).toEqual([401, 'missing_credentials']);
    expect(none.body.error.message).toMatch(/ingest key/);
    expect(none.body.error.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(none.headers.get('x-request-id')).toBe(none.body.error.requestId);
    for (const key of ['mpik_00000000000000000000000000000000', 'garbage', `${ingestKey}x`]) {
      const res = await post(body, { key });
      expect([key, res.status, res.body.error.code]).toEqual([key, 401, 'unknown_ingest_key']);
    }
    expect((await post(body, { key: null, query: '?key=mpik_%00%00%00%00%00%00%00%00' })).body.error.code).toBe('unknown_ingest_key');
  });

  it('413 over 1 MB (declared or chunked), 400 for what is not a batch: nothing stored', async () => {
    const before = await countAll();
    const big = JSON.stringify({ events: goodEvents(), padding: 'x'.repeat(1024 * 1024) });
    const declared = await post(null, { raw: big });
    expect([declared.status, declared.body.error.code]).toEqual([413, 'batch_too_large']);
    expect(declared.headers.get('access-control-allow-origin')).toBe('*');
    // No Content-Length: a stream the server stops reading past 1 MB.
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 40) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const chunked = await fetch(`${stack.baseUrl}/api/v1/collect`, { method: 'POST', headers: { 'x-mpdp-ingest-key': ingestKey }, body: stream, duplex: 'half' } as RequestInit);
    expect([chunked.status, ((await chunked.json()) as any).error.code]).toEqual([413, 'batch_too_large']);

    const cases: [string, string][] = [
      ['{"events": [', 'invalid_json'],
      ['', 'invalid_json'],
      ['[]', 'invalid_batch'],
      ['{"event": []}', 'invalid_batch'],
      ['{"events": []}', 'no_events'],
      [JSON.stringify({ events: Array.from({ length: 501 }, () => goodEvents()[0]) }), 'too_many_events'],
    ];
    for (const [raw, code] of cases) {
      const res = await post(null, { raw });
      expect([raw.slice(0, 20), res.status, res.body.error.code]).toEqual([raw.slice(0, 20), 400, code]);
    }
    // Exactly 500 events of which none is good: a 202 that stores nothing.
    const allBad = await post({ events: Array.from({ length: 500 }, () => ({ ...goodEvents()[0], userId: '' })) }, { query: '?wait=true' });
    expect(allBad.body).toMatchObject({ accepted: 0, written: 0, duplicates: 0 });
    expect(allBad.body.rejected).toHaveLength(500);
    await stack.ingest.flush();
    expect(await countAll()).toBe(before);
  });

  it('503 ingest_overloaded with Retry-After when the buffer is full; nothing of that batch stored', async () => {
    const fill = Array.from({ length: 84 }, () => goodEvents()).flat().slice(0, 500);
    const full = await post({ events: fill });
    expect([full.status, full.body.accepted]).toEqual([202, 500]);
    const extra = goodEvents();
    const res = await post({ events: extra });
    expect([res.status, res.body.error.code]).toEqual([503, 'ingest_overloaded']);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    await stack.ingest.flush();
    expect(await rowsOf(fill.map((e) => e.id))).toHaveLength(500);
    expect(await rowsOf(extra.map((e) => e.id))).toHaveLength(0);
  });
});

describe('CORS', () => {
  it('answers the preflight of any origin, without credentials', async () => {
    const res = await fetch(`${stack.baseUrl}/api/v1/collect`, {
      method: 'OPTIONS',
      headers: { origin: 'https://mini.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-mpdp-ingest-key' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const h of ['content-type', 'x-mpdp-ingest-key', 'x-mpdp-app', 'x-mpdp-timestamp', 'x-mpdp-signature', 'x-mpdp-key']) expect(allowed).toContain(h);
    const answer = await post({ events: goodEvents().slice(0, 1) }, { headers: { origin: 'https://mini.example.com' } });
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect(answer.headers.get('access-control-expose-headers')).toContain('Retry-After');
    await stack.ingest.flush();
  });

  it('is documented in the OpenAPI document, with the ingest key routes', async () => {
    const doc = (await admin.get('/api/v1/openapi.json')).body;
    expect(doc.paths['/collect'].post.responses['202']).toBeTruthy();
    expect(doc.paths['/workspaces/{workspaceId}/mini-programs/{miniProgramId}/ingest-key'].get).toBeTruthy();
    expect(doc.paths['/workspaces/{workspaceId}/mini-programs/{miniProgramId}/ingest-key/rotate'].post).toBeTruthy();
  });
});

describe('the ingest key', () => {
  const url = () => `/api/v1/workspaces/${ws}/mini-programs/${mp}/ingest-key`;

  it('is read by every member (404 for a non-member, 401 anonymous), rotated by an admin only', async () => {
    for (const agent of [admin, reviewer, developer]) {
      const res = await agent.get(url());
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ingestKey, collectUrl: expect.stringMatching(/\/api\/v1\/collect$/) });
    }
    expect((await stranger.get(url())).status).toBe(404);
    expect((await new Agent(stack.baseUrl).get(url())).status).toBe(401);
    expect((await admin.get(`/api/v1/workspaces/${ws}/mini-programs/mp_nope/ingest-key`)).status).toBe(404);
    expect((await otherWs.admin.get(`/api/v1/workspaces/${otherWs.id}/mini-programs/${mp}/ingest-key`)).status).toBe(404);

    for (const agent of [reviewer, developer]) {
      const res = await agent.post(`${url()}/rotate`);
      expect([res.status, res.body.error.code]).toEqual([403, 'forbidden']);
    }
    expect((await stranger.post(`${url()}/rotate`)).status).toBe(404);
    expect((await new Agent(stack.baseUrl).post(`${url()}/rotate`)).status).toBe(401);
    expect((await admin.get(url())).body.ingestKey).toBe(ingestKey);
  });

  it('rotating stops the old key at once and the new one works', async () => {
    // The old key is in the cache now.
    expect((await post({ events: goodEvents().slice(0, 1) }, { query: '?wait=true' })).body.written).toBe(1);
    const rotated = await admin.post(`${url()}/rotate`);
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.ingestKey as string;
    expect(fresh).toMatch(/^mpik_[0-9a-f]{32}$/);
    expect(fresh).not.toBe(ingestKey);
    const old = await post({ events: goodEvents() }, { query: '?wait=true' });
    expect([old.status, old.body.error.code]).toEqual([401, 'unknown_ingest_key']);
    expect((await admin.get(url())).body.ingestKey).toBe(fresh);
    const audit = await stack.sequelize.query<{ actor_id: string }>(`SELECT actor_id FROM audit_log WHERE subject_id = :mp AND action = 'ingest_key_rotated'`, { replacements: { mp }, type: QueryTypes.SELECT });
    expect(audit.map((a) => a.actor_id)).toEqual([stack.users.admin.id]);
    ingestKey = fresh;
    expect((await post({ events: goodEvents() }, { query: '?wait=true' })).body).toMatchObject({ accepted: 6, written: 6 });
  });
});
