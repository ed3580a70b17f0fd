/**
 * Signed preview tokens: `<payload>.<signature>`, both base64url. The payload is the version id,
 * the workspace id and the expiry (ms since the epoch); the signature an HMAC-SHA256 of the
 * payload text under the platform's secret key. Nothing is stored: a token proves by itself
 * which version it opens and until when. Pure (no I/O).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface PreviewClaims {
  versionId: string;
  workspaceId: string;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
}

export type PreviewTokenCheck =
  | { ok: true; claims: PreviewClaims }
  | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired'; claims?: PreviewClaims };

/** Longest token accepted; anything longer is refused before any work. */
export const maxPreviewTokenLength = 512;

const idPattern = /^[A-Za-z0-9_-]{1,100}$/;
const version = 'p1';

function mac(payload: string, key: string): Buffer {
  return createHmac('sha256', key).update(payload).digest();
}

export function signPreviewToken(claims: PreviewClaims, key: string): string {
  if (!idPattern.test(claims.versionId) || !idPattern.test(claims.workspaceId)) throw new Error('preview token ids must be opaque ids');
  if (!Number.isSafeInteger(claims.expiresAt)) throw new Error('preview token expiry must be an integer');
  const payload = Buffer.from(`${version}.${claims.versionId}.${claims.workspaceId}.${claims.expiresAt}`).toString('base64url');
  return `${payload}.${mac(payload, key).toString('base64url')}`;
}

/**
 * Checks shape, then signature, then expiry: a token whose expiry was edited fails the signature
 * rather than passing for merely expired.
 */
export function verifyPreviewToken(token: string, key: string, now: number = Date.now()): PreviewTokenCheck {
  if (typeof token !== 'string' || token.length > maxPreviewTokenLength) return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 2 || !/^[A-Za-z0-9_-]+$/.test(parts[0]!) || !/^[A-Za-z0-9_-]{43}$/.test(parts[1]!)) return { ok: false, reason: 'malformed' };
  const [payload, signature] = parts as [string, string];
  const fields = Buffer.from(payload, 'base64url').toString('utf8').split('.');
  if (fields.length !== 4 || fields[0] !== version || !idPattern.test(fields[1]!) || !idPattern.test(fields[2]!) || !/^\d{1,16}$/.test(fields[3]!)) {
    return { ok: false, reason: 'malformed' };
  }
  const given = Buffer.from(signature, 'base64url');
  const expected = mac(payload, key);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
  const claims: PreviewClaims = { versionId: fields[1]!, workspaceId: fields[2]!, expiresAt: Number(fields[3]) };
  if (claims.expiresAt <= now) return { ok: false, reason: 'expired', claims };
  return { ok: true, claims };
}
