import { generateKeyPairSync, sign } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import { canonicalString, fingerprintOf, openPrivateKey, signAsPlatform, signCanonical, verifyHostAppSignature } from '../../lib/host-app-keys.js';
import { loadConfig } from '../../lib/config.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

let stack: Stack;
let ws: string;
let admin: Agent;
let reviewer: Agent;
let developer: Agent;
let stranger: Agent;
/** The key-encryption key the stack runs with (test mode default), to open sealed keys like the API would. */
const kek = loadConfig({ MPDP_MODE: 'test' }).keyEncryptionKey;

const base = () => `/api/v1/workspaces/${ws}/host-apps`;
const pemOf = (k: { export: (o: { type: 'spki'; format: 'pem' }) => string | Buffer }) => k.export({ type: 'spki', format: 'pem' }).toString();

/** A real PNG of w×h pixels. */
function png(w: number, h: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const rows = Buffer.alloc((w * 3 + 1) * h, 0x5a);
  for (let y = 0; y < h; y++) rows[y * (w * 3 + 1)] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

function iconForm(bytes: Buffer, name: string, type: string) {
  const form = new FormData();
  form.set('file', new Blob([new Uint8Array(bytes)], { type }), name);
  return form;
}

/** Sends a signed request to the public signature check, as a host app would. */
async function signedCheck(appId: string, privateKey: string, o: { body?: string; ts?: number; key?: string; tamper?: boolean; path?: string } = {}) {
  const path = o.path ?? `/api/v1/host-apps/${appId}/signature-check`;
  const body = o.body ?? JSON.stringify({ hello: 'from the host app', at: Date.now() });
  const ts = String(o.ts ?? Date.now());
  const signature = signCanonical(privateKey, canonicalString('POST', path, ts, body));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-mpdp-timestamp': ts, 'x-mpdp-signature': signature };
  if (o.key) headers['x-mpdp-key'] = o.key;
  const res = await fetch(`${stack.baseUrl}/api/v1/host-apps/${appId}/signature-check`, { method: 'POST', headers, body: o.tamper ? `${body} ` : body });
  return { status: res.status, body: (await res.json()) as any };
}

const count = async (sql: string, replacements: Record<string, unknown> = {}) =>
  (await stack.sequelize.query<{ n: number }>(sql, { replacements: { ws, ...replacements }, type: QueryTypes.SELECT }))[0]!.n;

async function newApp(name = `Super App ${uid()}`, platform = 'android') {
  const res = await admin.post(base(), { name, platform, bundleId: `com.example.${uid('app')}`, description: 'The flagship super app' });
  expect(res.status).toBe(201);
  return res.body as { id: string; name: string };
}

beforeAll(async () => {
  stack = await startStack();
  ws = stack.workspaceId;
  [admin, reviewer, developer] = await Promise.all([stack.agent('admin'), stack.agent('reviewer'), stack.agent('developer')]);
  const id = `usr_o_${uid()}`;
  const email = `stranger-${uid()}@outside.example.test`;
  await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)', { replacements: { id, email, name: 'Stranger', hash: await hashPassword(testPassword) } });
  stranger = new Agent(stack.baseUrl);
  await stranger.login(email);
});
afterAll(async () => {
  await stack?.stop();
});

describe('host apps', () => {
  it('every route with Admin, Reviewer, Developer and a non-member', async () => {
    const app = await newApp();
    const up = await admin.post(`${base()}/${app.id}/keys`, { mode: 'upload', publicKeyPem: pemOf(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey) });
    expect(up.status).toBe(201);
    const keyId = up.body.key.id as string;
    const reads = [base(), `${base()}/${app.id}`, `${base()}/${app.id}/keys`, `${base()}/${app.id}/keys/${keyId}`];
    for (const url of reads) {
      for (const agent of [admin, reviewer, developer]) expect([url, (await agent.get(url)).status]).toEqual([url, 200]);
      expect([url, (await stranger.get(url)).status]).toEqual([url, 404]);
      expect([url, (await new Agent(stack.baseUrl).get(url)).status]).toEqual([url, 401]);
    }
    expect((await developer.get(`${base()}/${app.id}/icon`)).status).toBe(404); // no icon yet, but allowed
    const writes: [string, string, unknown][] = [
      ['POST', base(), { name: 'X', platform: 'ios', bundleId: 'com.x.y' }],
      ['PATCH', `${base()}/${app.id}`, { name: 'Renamed' }],
      ['PUT', `${base()}/${app.id}/icon`, iconForm(png(8, 8), 'i.png', 'image/png')],
      ['DELETE', `${base()}/${app.id}/icon`, undefined],
      ['POST', `${base()}/${app.id}/keys`, { mode: 'platform' }],
      ['POST', `${base()}/${app.id}/keys/${keyId}/rotate`, {}],
      ['POST', `${base()}/${app.id}/keys/${keyId}/revoke`, { reason: 'test' }],
      ['DELETE', `${base()}/${app.id}`, undefined],
    ];
    const before = await count(`SELECT count(*)::int AS n FROM audit_log WHERE workspace_id = :ws AND subject_type = 'host_app'`);
    for (const [method, url, body] of writes) {
      for (const agent of [reviewer, developer]) {
        const res = await agent.request(method, url, body);
        expect([method, url, res.status, res.body?.error?.code]).toEqual([method, url, 403, 'forbidden']);
      }
      expect([method, url, (await stranger.request(method, url, body)).status]).toEqual([method, url, 404]);
    }
    expect(await count(`SELECT count(*)::int AS n FROM audit_log WHERE workspace_id = :ws AND subject_type = 'host_app'`)).toBe(before);
    expect((await admin.get(`${base()}/${app.id}`)).body.app.name).toBe(app.name);
  });

  it('adds, lists, searches, edits and deletes apps; icons are checked by content; every change audited', async () => {
    const name = `Wallet ${uid()}`;
    const created = await admin.post(base(), { name, platform: 'ios', bundleId: 'com.example.wallet', description: 'Pay and shop' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name, platform: 'ios', bundleId: 'com.example.wallet', status: 'active', iconUrl: null, activeAppKey: null, keyCount: 0, createdBy: { name: 'Alice Admin' } });
    const id = created.body.id as string;
    // The same bundle id on the same platform (any case) is a duplicate; on another platform it is another app.
    expect((await admin.post(base(), { name: 'Again', platform: 'ios', bundleId: 'COM.example.wallet' })).body.error.code).toBe('host_app_exists');
    expect((await admin.post(base(), { name: 'Wallet Android', platform: 'android', bundleId: 'com.example.wallet' })).status).toBe(201);

    const list = await developer.get(`${base()}?q=${encodeURIComponent(name)}`);
    expect(list.body.items.map((a: { id: string }) => a.id)).toEqual([id]);
    expect((await developer.get(`${base()}?platform=web`)).body.items.find((a: { id: string }) => a.id === id)).toBeUndefined();

    const edited = await admin.request('PATCH', `${base()}/${id}`, { name: `${name} Pro`, description: 'Pay, shop and more' });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ name: `${name} Pro`, description: 'Pay, shop and more', bundleId: 'com.example.wallet' });

    // Icons: a PNG is stored and served with its checked type; a PNG named .svg is still a PNG; junk, scripts and oversize are refused.
    const icon = await admin.request('PUT', `${base()}/${id}/icon`, iconForm(png(64, 64), 'icon.svg', 'image/svg+xml'));
    expect(icon.status).toBe(200);
    expect(icon.body.iconUrl).toMatch(new RegExp(`/host-apps/${id}/icon\\?v=`));
    const served = await fetch(stack.baseUrl + icon.body.iconUrl, { headers: { cookie: developer.cookie } });
    expect([served.status, served.headers.get('content-type')]).toEqual([200, 'image/png']);
    expect(Buffer.from(await served.arrayBuffer()).equals(png(64, 64))).toBe(true);
    const badIcons: [FormData, number, string][] = [
      [iconForm(Buffer.from('not an image at all'), 'icon.png', 'image/png'), 400, 'unsupported_image'],
      [iconForm(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), 'icon.svg', 'image/svg+xml'), 400, 'svg_script'],
      [iconForm(png(2048, 16), 'wide.png', 'image/png'), 400, 'image_dimensions_too_large'],
      [iconForm(Buffer.alloc(600 * 1024, 1), 'big.png', 'image/png'), 413, 'image_too_large'],
      [new FormData(), 400, 'validation_failed'],
    ];
    for (const [form, status, code] of badIcons) {
      const res = await admin.request('PUT', `${base()}/${id}/icon`, form);
      expect([res.status, res.body?.error?.code]).toEqual([status, code]);
    }
    expect((await admin.get(`${base()}/${id}`)).body.app.iconUrl).toBe(icon.body.iconUrl);

    const bad: [Record<string, unknown>, string][] = [
      [{}, 'validation_failed'],
      [{ name: '', platform: 'ios', bundleId: 'a.b' }, 'validation_failed'],
      [{ name: 'X', platform: 'symbian', bundleId: 'a.b' }, 'validation_failed'],
      [{ name: 'X', platform: 'ios', bundleId: 'has spaces in it' }, 'validation_failed'],
      [{ name: 'X'.repeat(81), platform: 'ios', bundleId: 'a.b' }, 'validation_failed'],
    ];
    const apps = await count('SELECT count(*)::int AS n FROM host_apps WHERE workspace_id = :ws');
    for (const [body, code] of bad) {
      const res = await admin.post(base(), body);
      expect([JSON.stringify(body).slice(0, 60), res.status, res.body.error.code]).toEqual([JSON.stringify(body).slice(0, 60), 400, code]);
    }
    expect((await admin.request('PATCH', `${base()}/${id}`, {})).body.error.code).toBe('validation_failed');
    expect(await count('SELECT count(*)::int AS n FROM host_apps WHERE workspace_id = :ws')).toBe(apps);

    const audit = (await admin.get(`${base()}/${id}`)).body.audit.map((a: { action: string }) => a.action);
    expect(audit).toEqual(['host_app_icon_set', 'host_app_updated', 'host_app_created']);

    const removed = await admin.request('DELETE', `${base()}/${id}`);
    expect(removed.body.removed).toEqual({ id, name: `${name} Pro` });
    expect((await admin.get(`${base()}/${id}`)).status).toBe(404);
  });

  it('uploads public keys: fingerprint everywhere; weak, unsupported, private, junk refused and nothing stored', async () => {
    const app = await newApp();
    const keysUrl = `${base()}/${app.id}/keys`;
    const ecPair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const privatePem = ecPair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const bad: [Record<string, unknown>, string][] = [
      [{ mode: 'upload', publicKeyPem: pemOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey) }, 'weak_key'],
      [{ mode: 'upload', publicKeyPem: pemOf(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey) }, 'unsupported_key'],
      [{ mode: 'upload', publicKeyPem: pemOf(generateKeyPairSync('ed25519').publicKey) }, 'unsupported_key'],
      [{ mode: 'upload', publicKeyPem: privatePem }, 'private_key_not_accepted'],
      [{ mode: 'upload', publicKeyPem: 'hello, I am not a key' }, 'invalid_key'],
      [{ mode: 'upload', publicKeyPem: '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----' }, 'invalid_key'],
      [{ mode: 'upload' }, 'validation_failed'],
      [{ mode: 'upload', publicKeyPem: 'x'.repeat(20_000) }, 'validation_failed'],
      [{ mode: 'burn' }, 'validation_failed'],
      [{ mode: 'platform', algorithm: 'rsa-1024' }, 'validation_failed'],
    ];
    for (const [body, code] of bad) {
      const res = await admin.post(keysUrl, body);
      expect([code, res.status, res.body.error.code]).toEqual([code, 400, code]);
      // A private key pasted by mistake is never echoed back.
      expect(JSON.stringify(res.body)).not.toContain(privatePem.split('\n')[2]);
    }
    expect(await count('SELECT count(*)::int AS n FROM host_app_keys WHERE host_app_id = :id', { id: app.id })).toBe(0);
    expect(await count(`SELECT count(*)::int AS n FROM audit_log WHERE subject_type = 'host_app' AND subject_id = :id AND action LIKE 'host_app_key%'`, { id: app.id })).toBe(0);

    const expected = fingerprintOf(ecPair.publicKey);
    const up = await admin.post(keysUrl, { mode: 'upload', publicKeyPem: pemOf(ecPair.publicKey), label: 'release key' });
    expect(up.status).toBe(201);
    expect(up.body.key).toMatchObject({ kind: 'uploaded', purpose: 'app', algorithm: 'EC P-256', bits: 256, fingerprint: expected, status: 'active', verifiesNow: true, label: 'release key' });
    expect(up.body.privateKeyPem).toBeNull();
    // Shown in the list, the detail, the key, and the audit trail.
    expect((await developer.get(base())).body.items.find((a: { id: string }) => a.id === app.id).activeAppKey.fingerprint).toBe(expected);
    const detail = (await developer.get(`${base()}/${app.id}`)).body;
    expect(detail.keys[0].fingerprint).toBe(expected);
    expect(detail.audit[0]).toMatchObject({ action: 'host_app_key_uploaded', comment: expect.stringContaining(expected) });
    expect((await developer.get(`${keysUrl}/${up.body.key.id}`)).body.fingerprint).toBe(expected);
    // A second active app key: rotate instead; the same key again: refused.
    expect((await admin.post(keysUrl, { mode: 'upload', publicKeyPem: pemOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey) })).body.error.code).toBe('active_key_exists');
    expect((await admin.post(keysUrl, { mode: 'app_signing' })).body.error.code).toBe('active_key_exists');
    // RSA 2048 is fine as an upload (for another app).
    const other = await newApp();
    const rsa = await admin.post(`${base()}/${other.id}/keys`, { mode: 'upload', publicKeyPem: pemOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey) });
    expect(rsa.body.key).toMatchObject({ algorithm: 'RSA-2048', bits: 2048 });
    // The uploaded key verifies the app's signed requests.
    expect(await signedCheck(app.id, privatePem)).toEqual({ status: 200, body: { verified: true, keyFingerprint: expected, keyStatus: 'active' } });
  });

  it('issues key pairs: an app signing key\'s private part once and never stored; a platform key sealed', async () => {
    const app = await newApp();
    const keysUrl = `${base()}/${app.id}/keys`;
    const issued = await admin.post(keysUrl, { mode: 'app_signing', algorithm: 'rsa-2048' });
    expect(issued.status).toBe(201);
    expect(issued.headers.get('cache-control')).toBe('no-store');
    const privatePem = issued.body.privateKeyPem as string;
    expect(privatePem).toContain('-----BEGIN PRIVATE KEY-----');
    expect(issued.body.key).toMatchObject({ kind: 'app_signing', algorithm: 'RSA-2048' });
    const keyId = issued.body.key.id as string;
    // Never again: not in the key, the list, or the detail.
    for (const url of [`${keysUrl}/${keyId}`, keysUrl, `${base()}/${app.id}`]) expect(JSON.stringify((await admin.get(url)).body)).not.toContain('PRIVATE KEY');
    const [row] = await stack.sequelize.query<Record<string, unknown>>('SELECT * FROM host_app_keys WHERE id = :keyId', { replacements: { keyId }, type: QueryTypes.SELECT });
    expect(row!.private_sealed).toBeNull();
    const body = privatePem.split('\n').slice(1, -2).join('');
    expect(JSON.stringify(row)).not.toContain(body.slice(0, 40));
    // The private part we were given signs requests that verify.
    expect((await signedCheck(app.id, privatePem)).body).toMatchObject({ verified: true, keyFingerprint: issued.body.key.fingerprint });

    const platform = await admin.post(keysUrl, { mode: 'platform' });
    expect(platform.status).toBe(201);
    expect(platform.body.privateKeyPem).toBeNull();
    expect(platform.body.key).toMatchObject({ kind: 'platform', purpose: 'platform', algorithm: 'EC P-256', verifiesNow: false });
    const [prow] = await stack.sequelize.query<{ private_sealed: string; public_pem: string }>('SELECT private_sealed, public_pem FROM host_app_keys WHERE id = :id', { replacements: { id: platform.body.key.id }, type: QueryTypes.SELECT });
    expect(prow!.private_sealed).toMatch(/^v1\./);
    expect(prow!.private_sealed).not.toContain('PRIVATE KEY');
    expect(prow!.private_sealed).not.toContain('MIG');
    // Only ciphertext: opening it with the KEK gives the private half of the public key shown.
    const opened = openPrivateKey(prow!.private_sealed, kek, platform.body.key.id);
    expect(opened).toContain('BEGIN PRIVATE KEY');
    const signed = await signAsPlatform(stack.sequelize, kek, app.id, 'a platform message');
    expect(signed!.keyFingerprint).toBe(platform.body.key.fingerprint);
    const { verify } = await import('node:crypto');
    expect(verify('sha256', Buffer.from('a platform message'), platform.body.key.publicKeyPem, Buffer.from(signed!.signature, 'base64'))).toBe(true);
    // A platform key never verifies the app's own requests.
    expect((await signedCheck(app.id, opened, { key: platform.body.key.fingerprint })).body.error.code).toBe('unknown_key');
    expect((await admin.get(`${base()}/${app.id}`)).body.audit.map((a: { action: string }) => a.action)).toEqual(['host_app_key_issued', 'host_app_key_issued', 'host_app_created']);
  });

  it('rotation: the old key verifies during the overlap and not after; revoke answers key_revoked at once', async () => {
    const app = await newApp();
    const keysUrl = `${base()}/${app.id}/keys`;
    const first = await admin.post(keysUrl, { mode: 'app_signing' });
    const oldPem = first.body.privateKeyPem as string;
    const oldId = first.body.key.id as string;
    const newPair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const newPem = newPair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

    // Bad rotations change nothing.
    expect((await admin.post(`${keysUrl}/${oldId}/rotate`, { overlapMs: 30 * 24 * 3600_000 })).body.error.code).toBe('overlap_too_long');
    expect((await admin.post(`${keysUrl}/${oldId}/rotate`, { publicKeyPem: pemOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey) })).body.error.code).toBe('weak_key');
    expect((await admin.post(`${keysUrl}/${oldId}/rotate`, { overlapMs: -1 })).body.error.code).toBe('validation_failed');
    expect((await admin.get(`${keysUrl}/${oldId}`)).body.status).toBe('active');

    const rotated = await admin.post(`${keysUrl}/${oldId}/rotate`, { publicKeyPem: pemOf(newPair.publicKey), overlapMs: 3000 });
    expect(rotated.status).toBe(200);
    expect(rotated.body.key).toMatchObject({ kind: 'uploaded', status: 'active', fingerprint: fingerprintOf(newPair.publicKey) });
    expect(rotated.body.previous).toMatchObject({ id: oldId, status: 'rotated', replacedBy: rotated.body.key.id, verifiesNow: true });
    expect(Date.parse(rotated.body.previous.overlapEndsAt) - Date.now()).toBeLessThanOrEqual(3000);
    expect(rotated.body.privateKeyPem).toBeNull();
    // Both verify during the overlap.
    expect((await signedCheck(app.id, newPem)).body).toMatchObject({ verified: true, keyStatus: 'active' });
    expect((await signedCheck(app.id, oldPem)).body).toMatchObject({ verified: true, keyStatus: 'rotated', keyFingerprint: first.body.key.fingerprint });
    expect((await admin.post(`${keysUrl}/${oldId}/rotate`, {})).body.error.code).toBe('key_not_active');
    // After it: the old one no longer.
    await new Promise((r) => setTimeout(r, Date.parse(rotated.body.previous.overlapEndsAt) - Date.now() + 200));
    const late = await signedCheck(app.id, oldPem);
    expect([late.status, late.body.error.code]).toEqual([401, 'key_expired']);
    expect((await admin.get(`${keysUrl}/${oldId}`)).body.verifiesNow).toBe(false);
    expect((await signedCheck(app.id, newPem)).status).toBe(200);

    // Revoke: at once, with a reason.
    const newId = rotated.body.key.id as string;
    expect((await admin.post(`${keysUrl}/${newId}/revoke`, { reason: '' })).body.error.code).toBe('validation_failed');
    const revoked = await admin.post(`${keysUrl}/${newId}/revoke`, { reason: 'laptop stolen' });
    expect(revoked.body).toMatchObject({ status: 'revoked', revokeReason: 'laptop stolen', revokedBy: { name: 'Alice Admin' }, verifiesNow: false });
    const refused = await signedCheck(app.id, newPem);
    expect([refused.status, refused.body.error.code]).toEqual([401, 'key_revoked']);
    expect((await admin.post(`${keysUrl}/${newId}/revoke`, { reason: 'again' })).body.error.code).toBe('key_revoked');
    // A revoked key cannot come back.
    expect((await admin.post(keysUrl, { mode: 'upload', publicKeyPem: pemOf(newPair.publicKey) })).body.error.code).toBe('key_exists');
    const audit = (await admin.get(`${base()}/${app.id}`)).body.audit as { action: string; comment: string }[];
    expect(audit.map((a) => a.action)).toEqual(['host_app_key_revoked', 'host_app_key_rotated', 'host_app_key_issued', 'host_app_created']);
    expect(audit[0]!.comment).toContain(fingerprintOf(newPair.publicKey));
  });

  it('the signature check refuses what does not verify, with its code', async () => {
    const app = await newApp();
    const issued = await admin.post(`${base()}/${app.id}/keys`, { mode: 'app_signing' });
    const pem = issued.body.privateKeyPem as string;
    const fp = issued.body.key.fingerprint as string;
    expect((await signedCheck(app.id, pem, { key: fp })).body).toEqual({ verified: true, keyFingerprint: fp, keyStatus: 'active' });
    const cases: [Awaited<ReturnType<typeof signedCheck>>, string][] = [
      [await signedCheck(app.id, pem, { tamper: true }), 'signature_invalid'],
      [await signedCheck(app.id, pem, { path: `/api/v1/host-apps/${app.id}/other` }), 'signature_invalid'],
      [await signedCheck(app.id, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()), 'signature_invalid'],
      [await signedCheck(app.id, pem, { ts: Date.now() - 6 * 60_000 }), 'timestamp_skew'],
      [await signedCheck(app.id, pem, { key: 'SHA256:nope' }), 'unknown_key'],
      [await signedCheck('ha_does_not_exist', pem), 'unknown_app'],
    ];
    for (const [res, code] of cases) expect([res.status, res.body.error.code]).toEqual([401, code]);
    const bare = await fetch(`${stack.baseUrl}/api/v1/host-apps/${app.id}/signature-check`, { method: 'POST' });
    expect([bare.status, ((await bare.json()) as any).error.code]).toEqual([401, 'timestamp_skew']);
    // A disabled app's signatures are refused; enabled again, they verify.
    await admin.request('PATCH', `${base()}/${app.id}`, { status: 'disabled' });
    expect((await signedCheck(app.id, pem)).body.error.code).toBe('app_disabled');
    await admin.request('PATCH', `${base()}/${app.id}`, { status: 'active' });
    expect((await signedCheck(app.id, pem)).status).toBe(200);
    // WebCrypto's raw r‖s signatures verify too.
    const ts = String(Date.now());
    const path = `/api/v1/host-apps/${app.id}/signature-check`;
    const raw = sign('sha256', Buffer.from(canonicalString('POST', path, ts, '{}')), { key: pem, dsaEncoding: 'ieee-p1363' }).toString('base64');
    const res = await fetch(stack.baseUrl + path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-mpdp-timestamp': ts, 'x-mpdp-signature': raw }, body: '{}' });
    expect(res.status).toBe(200);
  });

  it('verifies fast: 300 signed checks over HTTP', async () => {
    const app = await newApp();
    const pem = (await admin.post(`${base()}/${app.id}/keys`, { mode: 'app_signing' })).body.privateKeyPem as string;
    const n = 300;
    const t0 = performance.now();
    for (let i = 0; i < n; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => signedCheck(app.id, pem)));
      for (const r of batch) expect(r.status).toBe(200);
    }
    const ms = performance.now() - t0;
    console.log(`signature-check: ${n} requests in ${ms.toFixed(0)} ms (${((n / ms) * 1000).toFixed(0)} req/s, 10 concurrent, signing included)`);
    // The function issue 7's ingest calls, in process against PostgreSQL: one query and one cached-key verify per call.
    const path = `/api/v1/host-apps/${app.id}/signature-check`;
    const ts = String(Date.now());
    const signature = signCanonical(pem, canonicalString('POST', path, ts, '{}'));
    const times: number[] = [];
    for (let i = 0; i < 300; i++) {
      const s = performance.now();
      const r = await verifyHostAppSignature(stack.sequelize, { appId: app.id, method: 'POST', path, timestamp: ts, body: '{}', signature });
      times.push(performance.now() - s);
      expect(r.verified).toBe(true);
    }
    times.sort((a, b) => a - b);
    console.log(`verifyHostAppSignature: p50 ${times[150]!.toFixed(2)} ms, p99 ${times[296]!.toFixed(2)} ms (300 sequential calls, DB included)`);
  });
});
