import { describe, expect, it } from 'vitest';
import { signPreviewToken, verifyPreviewToken } from './preview-token.js';

const key = 'unit-test-secret-key-0123456789';
const claims = { versionId: 'ver_0abc123', workspaceId: 'ws_demo', expiresAt: 1_800_000_000_000 };
const now = claims.expiresAt - 60_000;

describe('preview tokens', () => {
  it('round-trips the claims while unexpired', () => {
    const token = signPreviewToken(claims, key);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(verifyPreviewToken(token, key, now)).toEqual({ ok: true, claims });
  });

  it('refuses an expired token, and at the exact expiry instant', () => {
    const token = signPreviewToken(claims, key);
    expect(verifyPreviewToken(token, key, claims.expiresAt)).toMatchObject({ ok: false, reason: 'expired', claims });
    expect(verifyPreviewToken(token, key, claims.expiresAt + 1)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses a token signed with another key', () => {
    const token = signPreviewToken(claims, 'some-other-platform-secret-key');
    expect(verifyPreviewToken(token, key, now)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses a payload edited to extend the expiry or switch the version', () => {
    const token = signPreviewToken(claims, key);
    const [, sig] = token.split('.');
    const later = Buffer.from(`p1.${claims.versionId}.${claims.workspaceId}.${claims.expiresAt + 3_600_000}`).toString('base64url');
    expect(verifyPreviewToken(`${later}.${sig}`, key, now)).toEqual({ ok: false, reason: 'bad_signature' });
    const other = Buffer.from(`p1.ver_other.${claims.workspaceId}.${claims.expiresAt}`).toString('base64url');
    expect(verifyPreviewToken(`${other}.${sig}`, key, now)).toEqual({ ok: false, reason: 'bad_signature' });
    // One flipped character of the signature.
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(verifyPreviewToken(flipped, key, now)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('calls anything that is not a token malformed', () => {
    for (const bad of ['', 'abc', 'a.b.c', 'x'.repeat(600), `${Buffer.from('p1.a.b').toString('base64url')}.${'A'.repeat(43)}`, `${Buffer.from('p1.v.w.12.x').toString('base64url')}.${'A'.repeat(43)}`, 'not base64!.sig']) {
      expect(verifyPreviewToken(bad, key, now)).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('refuses to sign ids that are not opaque ids', () => {
    expect(() => signPreviewToken({ ...claims, versionId: 'a.b' }, key)).toThrow();
  });
});
