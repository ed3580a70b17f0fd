import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Sequelize } from 'sequelize';
import { afterAll, describe, expect, it } from 'vitest';
import {
  KeyError, canonicalString, checkPublicKey, fingerprintOf, generateHostAppKeyPair, openPrivateKey, sealPrivateKey, signCanonical, verifyHostAppSignature, SealError,
} from './host-app-keys.js';

const pub = (k: KeyObject, type: 'spki' | 'pkcs1' = 'spki') => k.export({ type, format: 'pem' }).toString();
const rsa = (bits: number) => generateKeyPairSync('rsa', { modulusLength: bits });
const ec = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve });

function refused(text: string): string {
  try {
    checkPublicKey(text);
  } catch (err) {
    expect(err).toBeInstanceOf(KeyError);
    // A refusal never quotes what was pasted.
    if (text.length > 80) expect((err as Error).message).not.toContain(text.slice(40, 80));
    return (err as KeyError).code;
  }
  throw new Error('accepted');
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hak-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('checkPublicKey', () => {
  it('accepts RSA 2048 and 3072 (SPKI and PKCS#1) and EC P-256, re-encoded as SPKI', () => {
    const r = rsa(2048);
    const a = checkPublicKey(pub(r.publicKey));
    expect([a.algorithm, a.keyType, a.bits]).toEqual(['RSA-2048', 'rsa', 2048]);
    expect(a.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    const pkcs1 = checkPublicKey(`\n  ${pub(r.publicKey, 'pkcs1')}  \n`);
    expect(pkcs1.fingerprint).toBe(a.fingerprint);
    expect(pkcs1.publicPem.startsWith('-----BEGIN PUBLIC KEY-----')).toBe(true);
    expect(checkPublicKey(pub(rsa(3072).publicKey)).algorithm).toBe('RSA-3072');
    const e = checkPublicKey(pub(ec('prime256v1').publicKey));
    expect([e.algorithm, e.keyType, e.bits]).toEqual(['EC P-256', 'ec', 256]);
  });

  it('refuses weak, unsupported, private, certificate and junk input with their codes', () => {
    expect(refused(pub(rsa(1024).publicKey))).toBe('weak_key');
    expect(refused(pub(ec('secp384r1').publicKey))).toBe('unsupported_key');
    expect(refused(pub(ec('secp256k1').publicKey))).toBe('unsupported_key');
    expect(refused(pub(generateKeyPairSync('ed25519').publicKey))).toBe('unsupported_key');
    const priv = rsa(2048).privateKey;
    expect(refused(priv.export({ type: 'pkcs8', format: 'pem' }).toString())).toBe('private_key_not_accepted');
    expect(refused(priv.export({ type: 'pkcs1', format: 'pem' }).toString())).toBe('private_key_not_accepted');
    expect(refused(ec('prime256v1').privateKey.export({ type: 'sec1', format: 'pem' }).toString())).toBe('private_key_not_accepted');
    // A private key pasted together with its public key is still a private key.
    const pair = ec('prime256v1');
    expect(refused(pub(pair.publicKey) + pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())).toBe('private_key_not_accepted');
    expect(refused('')).toBe('invalid_key');
    expect(refused('hello world, this is not a key at all, not even close to one, really')).toBe('invalid_key');
    expect(refused('-----BEGIN PUBLIC KEY-----\nAAAAnotbase64der\n-----END PUBLIC KEY-----')).toBe('invalid_key');
    const good = pub(rsa(2048).publicKey);
    // Truncated: a whole 64-character line of the body is gone, so the DER lengths no longer add up.
    const lines = good.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(4);
    expect(refused([...lines.slice(0, 2), ...lines.slice(3)].join('\n'))).toBe('invalid_key');
    // Truncated at the end: the last 8 characters of the body (whatever they are) are gone.
    const body = lines.slice(1, -1).join('\n');
    expect(refused(`${lines[0]}\n${body.slice(0, -8)}\n${lines.at(-1)}`)).toBe('invalid_key');
    expect(refused(good + good)).toBe('invalid_key');
    expect(refused('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3Jg2 user@host')).toBe('invalid_key');
    // A certificate: made with the openssl CLI.
    const keyFile = path.join(tmp, 'cert-key.pem');
    writeFileSync(keyFile, ec('prime256v1').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const cert = execFileSync('openssl', ['req', '-new', '-x509', '-key', keyFile, '-subj', '/CN=host.example', '-days', '1'], { encoding: 'utf8' });
    expect(cert).toContain('BEGIN CERTIFICATE');
    expect(refused(cert)).toBe('invalid_key');
  });

  it('fingerprints like the openssl/ssh-keygen computation: SHA256 of the SPKI DER, base64 without padding', () => {
    for (const pair of [rsa(2048), ec('prime256v1')]) {
      const file = path.join(tmp, 'k.pem');
      writeFileSync(file, pub(pair.publicKey));
      const der = execFileSync('openssl', ['pkey', '-pubin', '-in', file, '-outform', 'DER']);
      const expected = `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
      const digest = execFileSync('sh', ['-c', `openssl pkey -pubin -in '${file}' -outform DER | openssl dgst -sha256 -binary | base64 | tr -d '=\\n'`], { encoding: 'utf8' });
      expect(checkPublicKey(pub(pair.publicKey)).fingerprint).toBe(expected);
      expect(fingerprintOf(pair.publicKey)).toBe(`SHA256:${digest}`);
    }
  });
});

describe('issued pairs and sealing', () => {
  it('issues EC P-256 by default and RSA on request; the pair signs and verifies', () => {
    const e = generateHostAppKeyPair();
    expect(e.algorithm).toBe('EC P-256');
    expect(e.privatePem).toContain('BEGIN PRIVATE KEY');
    expect(generateHostAppKeyPair('rsa-2048').algorithm).toBe('RSA-2048');
    const r = generateHostAppKeyPair('rsa-3072');
    expect(r.algorithm).toBe('RSA-3072');
    expect(checkPublicKey(r.publicPem).fingerprint).toBe(r.fingerprint);
  });

  it('seals and opens a private key; another KEK, another key id or a flipped byte cannot open it', () => {
    const { privatePem } = generateHostAppKeyPair();
    const sealed = sealPrivateKey(privatePem, 'kek-one', 'hak_1');
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain('PRIVATE');
    expect(sealPrivateKey(privatePem, 'kek-one', 'hak_1')).not.toBe(sealed);
    expect(openPrivateKey(sealed, 'kek-one', 'hak_1')).toBe(privatePem);
    expect(() => openPrivateKey(sealed, 'kek-two', 'hak_1')).toThrow(SealError);
    expect(() => openPrivateKey(sealed, 'kek-one', 'hak_2')).toThrow(SealError);
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[2]!, 'base64url');
    ct[5] = ct[5]! ^ 1;
    expect(() => openPrivateKey([parts[0], parts[1], ct.toString('base64url'), parts[3]].join('.'), 'kek-one', 'hak_1')).toThrow(SealError);
    expect(() => openPrivateKey('garbage', 'kek-one', 'hak_1')).toThrow(SealError);
  });
});

/** A stand-in for the one query verifyHostAppSignature makes: rows of host_apps ⟕ host_app_keys. */
function fakeDb(rows: Record<string, unknown>[]): Sequelize {
  return { query: async () => rows } as unknown as Sequelize;
}

describe('verifyHostAppSignature', () => {
  const now = new Date('2026-11-25T12:00:00Z');
  const ts = String(now.getTime() - 1000);
  const body = '{"hello":"world"}';
  const path = '/api/v1/host-apps/ha_1/signature-check';
  const ecPair = generateHostAppKeyPair('ec-p256');
  const rsaPair = generateHostAppKeyPair('rsa-2048');
  const row = (k: { fingerprint: string; publicPem: string }, status: string, extra: Record<string, unknown> = {}) => ({
    app_status: 'active', id: `hak_${k.fingerprint.slice(7, 15)}`, fingerprint: k.fingerprint, public_pem: k.publicPem, status, overlap_ends_at: null, revoked_at: null, ...extra,
  });
  const signed = (privatePem: string, o: { method?: string; p?: string; t?: string; b?: string } = {}) =>
    signCanonical(privatePem, canonicalString(o.method ?? 'POST', o.p ?? path, o.t ?? ts, o.b ?? body));
  const check = (db: Sequelize, signature: string, o: Partial<Parameters<typeof verifyHostAppSignature>[1]> = {}) =>
    verifyHostAppSignature(db, { appId: 'ha_1', method: 'POST', path, timestamp: ts, body, signature, now, ...o });

  it('verifies good EC (DER and raw r‖s) and RSA signatures, with or without the key fingerprint', async () => {
    const db = fakeDb([row(ecPair, 'active')]);
    expect(await check(db, signed(ecPair.privatePem))).toMatchObject({ verified: true, keyFingerprint: ecPair.fingerprint, keyStatus: 'active' });
    expect(await check(db, signed(ecPair.privatePem), { keyFingerprint: ecPair.fingerprint })).toMatchObject({ verified: true });
    const raw = sign('sha256', Buffer.from(canonicalString('post', path, ts, body)), { key: ecPair.privatePem, dsaEncoding: 'ieee-p1363' });
    expect(raw.length).toBe(64);
    expect(await check(db, raw.toString('base64'))).toMatchObject({ verified: true });
    const rdb = fakeDb([row(rsaPair, 'active')]);
    expect(await check(rdb, signed(rsaPair.privatePem), { body: Buffer.from(body) })).toMatchObject({ verified: true, keyFingerprint: rsaPair.fingerprint });
  });

  it('refuses bad, tampered and stale signatures with their codes', async () => {
    const db = fakeDb([row(ecPair, 'active')]);
    const good = signed(ecPair.privatePem);
    expect(await check(db, signed(rsaPair.privatePem))).toMatchObject({ verified: false, code: 'signature_invalid' });
    expect(await check(db, good, { body: '{"hello":"world!"}' })).toMatchObject({ code: 'signature_invalid' });
    expect(await check(db, good, { path: '/api/v1/host-apps/ha_2/signature-check' })).toMatchObject({ code: 'signature_invalid' });
    expect(await check(db, good, { method: 'PUT' })).toMatchObject({ code: 'signature_invalid' });
    const flipped = Buffer.from(good, 'base64');
    flipped[flipped.length - 3] = flipped[flipped.length - 3]! ^ 0x10;
    expect(await check(db, flipped.toString('base64'))).toMatchObject({ code: 'signature_invalid' });
    expect(await check(db, '')).toMatchObject({ code: 'signature_invalid' });
    expect(await check(db, good, { keyFingerprint: rsaPair.fingerprint })).toMatchObject({ code: 'unknown_key' });
    // Timestamps: 5 minutes either way, in milliseconds.
    const old = String(now.getTime() - 5 * 60_000 - 1);
    expect(await check(db, signed(ecPair.privatePem, { t: old }), { timestamp: old })).toMatchObject({ code: 'timestamp_skew' });
    const future = String(now.getTime() + 6 * 60_000);
    expect(await check(db, signed(ecPair.privatePem, { t: future }), { timestamp: future })).toMatchObject({ code: 'timestamp_skew' });
    expect(await check(db, good, { timestamp: String(Math.floor(now.getTime() / 1000)) })).toMatchObject({ code: 'timestamp_skew' });
    expect(await check(db, good, { timestamp: undefined })).toMatchObject({ code: 'timestamp_skew' });
    expect(await check(fakeDb([]), good)).toMatchObject({ code: 'unknown_app' });
    expect(await check(fakeDb([{ ...row(ecPair, 'active'), app_status: 'disabled' }]), good)).toMatchObject({ code: 'app_disabled' });
    expect(await check(fakeDb([{ app_status: 'active', id: null, fingerprint: null, public_pem: null, status: null, overlap_ends_at: null, revoked_at: null }]), good))
      .toMatchObject({ code: 'signature_invalid' });
  });

  it('a rotated key verifies until its overlap ends (injected now); a revoked key never', async () => {
    const overlapEnds = new Date(now.getTime() + 60_000);
    const db = fakeDb([row(rsaPair, 'active'), row(ecPair, 'rotated', { overlap_ends_at: overlapEnds })]);
    expect(await check(db, signed(rsaPair.privatePem))).toMatchObject({ verified: true, keyStatus: 'active' });
    expect(await check(db, signed(ecPair.privatePem))).toMatchObject({ verified: true, keyStatus: 'rotated', keyFingerprint: ecPair.fingerprint });
    const later = new Date(overlapEnds.getTime() + 1);
    const lateTs = String(later.getTime());
    expect(await check(db, signed(ecPair.privatePem, { t: lateTs }), { timestamp: lateTs, now: later })).toMatchObject({ verified: false, code: 'key_expired' });
    expect(await check(db, signed(rsaPair.privatePem, { t: lateTs }), { timestamp: lateTs, now: later })).toMatchObject({ verified: true, keyStatus: 'active' });
    const revoked = fakeDb([row(ecPair, 'revoked', { revoked_at: now })]);
    expect(await check(revoked, signed(ecPair.privatePem))).toMatchObject({ verified: false, code: 'key_revoked' });
  });

  it('is fast once the key is parsed', async () => {
    const db = fakeDb([row(ecPair, 'active')]);
    const sig = signed(ecPair.privatePem);
    await check(db, sig);
    const n = 500;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) expect((await check(db, sig)).verified).toBe(true);
    const perCall = (performance.now() - t0) / n;
    console.log(`verifyHostAppSignature (EC P-256, cached key, no DB): ${(perCall * 1000).toFixed(0)} µs per call`);
    expect(perCall).toBeLessThan(5);
  });
});
