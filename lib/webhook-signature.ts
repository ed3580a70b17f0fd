/**
 * Webhook signatures, signing secrets and endpoint URL rules. Pure (no I/O).
 *
 * Every delivery carries `X-Mpdp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` where the
 * HMAC key is the endpoint's signing secret (the whole `whsec_…` string, as shown once at
 * creation) and the message is `${t}.${rawBody}`. Receivers check it with
 * `verifyWebhookSignature` (or the same few lines in their language) against the raw bytes of
 * the body, before parsing it.
 *
 * Secrets must be recoverable to sign, so they are stored sealed with AES-256-GCM under a key
 * derived from the platform's SECRET_KEY (HKDF-SHA256), bound to the webhook's id.
 */
import { isLocalHostName, isPrivateAddress } from './address-guard.js';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export { isWebhookEventType, webhookEventDescriptions, webhookEventTypes, webhookPingEvent, type WebhookEventType } from './webhook-events.js';

export const webhookHeaders = {
  signature: 'X-Mpdp-Signature',
  event: 'X-Mpdp-Event',
  delivery: 'X-Mpdp-Delivery',
} as const;
export const webhookUserAgent = 'mpdp-webhooks/1';
/** How far a signature's timestamp may be from the receiver's clock by default (5 minutes). */
export const defaultToleranceSec = 300;
export const maxWebhookUrlLength = 2048;

const secretPrefix = 'whsec_';

/** A fresh signing secret: `whsec_` and 32 random bytes (base64url). */
export function generateWebhookSecret(): string {
  return secretPrefix + randomBytes(32).toString('base64url');
}

function mac(secret: string, timestamp: number, rawBody: string | Uint8Array): Buffer {
  const h = createHmac('sha256', secret).update(`${timestamp}.`);
  h.update(typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody);
  return h.digest();
}

/**
 * The X-Mpdp-Signature value for a body sent at `timestamp` (unix seconds): one v1 per secret, the
 * current one first, then a previous one still in its overlap after a rotation.
 */
export function signWebhookPayload(secret: string, rawBody: string | Uint8Array, timestamp: number = Math.floor(Date.now() / 1000), alsoWith: readonly string[] = []): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new Error('webhook signature timestamp must be unix seconds');
  return [`t=${timestamp}`, ...[secret, ...alsoWith].map((s) => `v1=${mac(s, timestamp, rawBody).toString('hex')}`)].join(',');
}

export type WebhookSignatureCheck =
  | { ok: true; timestamp: number }
  | { ok: false; reason: 'missing' | 'malformed' | 'bad_signature' | 'expired'; timestamp?: number };

/**
 * Checks an X-Mpdp-Signature header against the raw body (the exact bytes received): shape, then
 * the HMAC (constant time; any of several v1 values may match), then the timestamp within
 * `toleranceSec` of `nowMs` (pass Infinity to skip), so a replayed old delivery is refused.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | null | undefined,
  rawBody: string | Uint8Array,
  toleranceSec: number = defaultToleranceSec,
  nowMs: number = Date.now(),
): WebhookSignatureCheck {
  if (!header) return { ok: false, reason: 'missing' };
  if (header.length > 1024) return { ok: false, reason: 'malformed' };
  let timestamp: number | undefined;
  const given: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 1) return { ok: false, reason: 'malformed' };
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,12}$/.test(value)) return { ok: false, reason: 'malformed' };
      timestamp = Number(value);
    } else if (key === 'v1') {
      if (!/^[0-9a-f]{64}$/.test(value)) return { ok: false, reason: 'malformed' };
      given.push(Buffer.from(value, 'hex'));
    }
    // Other schemes (a future v2) are ignored, so receivers keep working when one is added.
  }
  if (timestamp === undefined || !given.length) return { ok: false, reason: 'malformed' };
  const expected = mac(secret, timestamp, rawBody);
  if (!given.some((g) => timingSafeEqual(g, expected))) return { ok: false, reason: 'bad_signature', timestamp };
  if (Math.abs(nowMs / 1000 - timestamp) > toleranceSec) return { ok: false, reason: 'expired', timestamp };
  return { ok: true, timestamp };
}

// ───────────── Secrets at rest ─────────────

/** Thrown when a sealed secret cannot be opened (another SECRET_KEY, another row, or altered). */
export class WebhookSecretError extends Error {}

const sealVersion = 'v1';
const keys = new Map<string, Buffer>();

function sealingKey(secretKey: string): Buffer {
  let key = keys.get(secretKey);
  if (!key) {
    key = Buffer.from(hkdfSync('sha256', secretKey, 'mpdp', 'mpdp webhook signing secret v1', 32));
    keys.set(secretKey, key);
  }
  return key;
}

/** Seals a signing secret for storage: `v1.<iv>.<ciphertext>.<tag>` (base64url), bound to the webhook id. */
export function sealWebhookSecret(secret: string, secretKey: string, webhookId: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(secretKey), iv);
  cipher.setAAD(Buffer.from(`webhook:${webhookId}`));
  const ct = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return [sealVersion, iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

export function openWebhookSecret(sealed: string, secretKey: string, webhookId: string): string {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== sealVersion) throw new WebhookSecretError('the stored signing secret has an unknown format');
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(secretKey), Buffer.from(parts[1]!, 'base64url'));
    decipher.setAAD(Buffer.from(`webhook:${webhookId}`));
    decipher.setAuthTag(Buffer.from(parts[3]!, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(parts[2]!, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new WebhookSecretError('the stored signing secret cannot be opened (was SECRET_KEY changed?); rotate the secret');
  }
}

// ───────────── Endpoint URLs ─────────────

export type WebhookUrlCheck =
  | { ok: true; url: string }
  | { ok: false; code: 'webhook_url_invalid' | 'webhook_url_insecure' | 'webhook_url_credentials' | 'webhook_url_too_long' | 'webhook_url_private'; message: string };

/** An endpoint URL: absolute, https (http only when allowed), no credentials, no fragment, at most 2048 characters. */
export function checkWebhookUrl(raw: string, o: { allowHttp: boolean; allowPrivate?: boolean }): WebhookUrlCheck {
  const text = raw.trim();
  if (text.length > maxWebhookUrlLength) return { ok: false, code: 'webhook_url_too_long', message: `A webhook URL has at most ${maxWebhookUrlLength} characters` };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, code: 'webhook_url_invalid', message: 'Not an absolute URL, e.g. https://example.com/hooks/mpdp' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, code: 'webhook_url_invalid', message: `A webhook URL is https://…, not ${url.protocol}` };
  if (url.protocol === 'http:' && !o.allowHttp) return { ok: false, code: 'webhook_url_insecure', message: 'Webhook endpoints must use https:// on this server' };
  if (url.username || url.password) return { ok: false, code: 'webhook_url_credentials', message: 'Put no user name or password in the URL: check the X-Mpdp-Signature header instead' };
  if (!url.hostname) return { ok: false, code: 'webhook_url_invalid', message: 'The URL has no host' };
  if (o.allowPrivate === false && (isLocalHostName(url.hostname) || isPrivateAddress(url.hostname))) {
    return { ok: false, code: 'webhook_url_private', message: `${url.hostname} is a local or private address: webhooks go to public endpoints on this server` };
  }
  if (url.hash || text.includes('#')) return { ok: false, code: 'webhook_url_invalid', message: 'A webhook URL has no #fragment' };
  if (url.href.length > maxWebhookUrlLength) return { ok: false, code: 'webhook_url_too_long', message: `A webhook URL has at most ${maxWebhookUrlLength} characters` };
  return { ok: true, url: url.href };
}
