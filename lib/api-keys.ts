import { createHash, randomBytes } from 'node:crypto';

/**
 * Workspace API keys (server-to-server calls): `mpdp_wk_<id>_<secret>`. The id part finds the row,
 * the whole key's sha256 must match the stored hash; the prefix tells keys apart from personal
 * access tokens (`mpdp_pat_…`) at a glance and in secret scanners.
 */
export const apiKeyTokenPrefix = 'mpdp_wk_';

const pattern = /^mpdp_(wk_[0-9a-z]{8,60})_([A-Za-z0-9_-]{32,100})$/;

/** A fresh key id (lowercase base36 time + hex, no underscore inside, so the token splits cleanly). */
export function newApiKeyId(): string {
  return `wk_${Date.now().toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;
}

/** A new key for the id: the token (shown once), its hash (stored) and its list prefix. */
export function mintApiKey(id: string): { token: string; hash: string; prefix: string } {
  const token = `mpdp_${id}_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashApiKey(token), prefix: token.slice(0, `mpdp_${id}_`.length + 4) };
}

export const hashApiKey = (token: string) => createHash('sha256').update(token).digest('hex');

/** The key id a bearer token names, or null when it is not shaped like a workspace key. */
export function parseApiKey(token: string): { id: string } | null {
  const m = pattern.exec(token);
  return m ? { id: m[1]! } : null;
}

/** Whether a bearer token claims to be a workspace key (and so is refused as one when it fails). */
export const looksLikeApiKey = (token: string) => token.startsWith(apiKeyTokenPrefix);
