import { describe, expect, it } from 'vitest';
import {
  checkWebhookUrl, generateWebhookSecret, isWebhookEventType, openWebhookSecret, sealWebhookSecret, signWebhookPayload, verifyWebhookSignature,
  webhookEventDescriptions, webhookEventTypes, WebhookSecretError,
} from './webhook-signature.js';

const secret = 'whsec_unit-test-secret';
const body = '{"type":"ping"}';
const t = 1_700_000_000;
const now = t * 1000 + 10_000;

describe('webhook signatures', () => {
  it('matches a vector computed with openssl: HMAC-SHA256(secret, `${t}.${body}`) in hex', () => {
    // printf '%s' '1700000000.{"type":"ping"}' | openssl dgst -sha256 -hmac 'whsec_unit-test-secret'
    expect(signWebhookPayload(secret, body, t)).toBe('t=1700000000,v1=fda870037be08cfe8dadd1825ac0e70288fb74e94e0c0282ea32d64edd255154');
  });

  it('verifies its own signature over a string or the raw bytes', () => {
    const header = signWebhookPayload(secret, body, t);
    expect(verifyWebhookSignature(secret, header, body, 300, now)).toEqual({ ok: true, timestamp: t });
    expect(verifyWebhookSignature(secret, header, Buffer.from(body), 300, now)).toEqual({ ok: true, timestamp: t });
    const unicode = '{"name":"商城 ✓"}';
    expect(verifyWebhookSignature(secret, signWebhookPayload(secret, unicode, t), new TextEncoder().encode(unicode), 300, now).ok).toBe(true);
  });

  it('refuses another secret, an altered body, and an edited timestamp as bad signatures', () => {
    const header = signWebhookPayload(secret, body, t);
    expect(verifyWebhookSignature('whsec_other', header, body, 300, now)).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(verifyWebhookSignature(secret, header, '{"type":"pong"}', 300, now)).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(verifyWebhookSignature(secret, header, `${body} `, 300, now)).toMatchObject({ ok: false, reason: 'bad_signature' });
    const edited = header.replace(`t=${t}`, `t=${t + 5}`);
    expect(verifyWebhookSignature(secret, edited, body, 300, now)).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it('refuses a replay outside the tolerance, either way, and skips the check with Infinity', () => {
    const header = signWebhookPayload(secret, body, t);
    expect(verifyWebhookSignature(secret, header, body, 300, (t + 301) * 1000)).toEqual({ ok: false, reason: 'expired', timestamp: t });
    expect(verifyWebhookSignature(secret, header, body, 300, (t - 301) * 1000)).toMatchObject({ ok: false, reason: 'expired' });
    expect(verifyWebhookSignature(secret, header, body, 300, (t + 300) * 1000).ok).toBe(true);
    expect(verifyWebhookSignature(secret, header, body, Infinity, (t + 86_400 * 365) * 1000).ok).toBe(true);
  });

  it('accepts any one of several v1 values and ignores unknown schemes', () => {
    const good = signWebhookPayload(secret, body, t).split('v1=')[1];
    const header = `t=${t},v1=${'0'.repeat(64)},v2=abc,v1=${good}`;
    expect(verifyWebhookSignature(secret, header, body, 300, now).ok).toBe(true);
  });

  it('tells a missing header from a malformed one', () => {
    for (const h of [null, undefined, '']) expect(verifyWebhookSignature(secret, h, body, 300, now)).toEqual({ ok: false, reason: 'missing' });
    for (const h of ['garbage', `t=${t}`, 'v1=' + 'a'.repeat(64), `t=abc,v1=${'a'.repeat(64)}`, `t=${t},v1=xyz`, `t=${t},t=${t},v1=${'a'.repeat(64)}`, `t=${t},v1=${'a'.repeat(63)}`, 'x'.repeat(2000)]) {
      expect(verifyWebhookSignature(secret, h, body, 300, now)).toEqual({ ok: false, reason: 'malformed' });
    }
  });
});

describe('signing secrets at rest', () => {
  const key = 'unit-test-platform-secret-key';

  it('makes unguessable secrets with a recognisable prefix', () => {
    const a = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(generateWebhookSecret()).not.toBe(a);
  });

  it('seals a secret so it reads back only with the same platform key and webhook id', () => {
    const s = generateWebhookSecret();
    const sealed = sealWebhookSecret(s, key, 'wh_1');
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(sealed).not.toContain(s.slice(6, 20));
    expect(sealWebhookSecret(s, key, 'wh_1')).not.toBe(sealed); // a fresh IV each time
    expect(openWebhookSecret(sealed, key, 'wh_1')).toBe(s);
    expect(() => openWebhookSecret(sealed, 'another-platform-secret-key', 'wh_1')).toThrow(WebhookSecretError);
    expect(() => openWebhookSecret(sealed, key, 'wh_2')).toThrow(/SECRET_KEY/);
    const [v, iv, ct, tag] = sealed.split('.');
    const flipped = Buffer.from(ct!, 'base64url');
    flipped[0] ^= 1;
    expect(() => openWebhookSecret([v, iv, flipped.toString('base64url'), tag].join('.'), key, 'wh_1')).toThrow(WebhookSecretError);
    expect(() => openWebhookSecret('plain-secret', key, 'wh_1')).toThrow(/unknown format/);
  });
});

describe('endpoint URLs', () => {
  it('takes https, and http only where allowed', () => {
    expect(checkWebhookUrl(' https://hooks.example.com/mpdp?x=1 ', { allowHttp: false })).toEqual({ ok: true, url: 'https://hooks.example.com/mpdp?x=1' });
    expect(checkWebhookUrl('http://127.0.0.1:8080/in', { allowHttp: true })).toEqual({ ok: true, url: 'http://127.0.0.1:8080/in' });
    expect(checkWebhookUrl('http://hooks.example.com/in', { allowHttp: false })).toMatchObject({ ok: false, code: 'webhook_url_insecure' });
  });

  it('refuses credentials, other schemes, fragments, junk and very long URLs', () => {
    const refuse = (u: string) => (checkWebhookUrl(u, { allowHttp: true }) as { code?: string }).code;
    expect(refuse('https://user:pw@hooks.example.com/')).toBe('webhook_url_credentials');
    expect(refuse('https://token@hooks.example.com/')).toBe('webhook_url_credentials');
    expect(refuse('ftp://hooks.example.com/')).toBe('webhook_url_invalid');
    expect(refuse('javascript:alert(1)')).toBe('webhook_url_invalid');
    expect(refuse('file:///etc/passwd')).toBe('webhook_url_invalid');
    expect(refuse('https://hooks.example.com/#x')).toBe('webhook_url_invalid');
    expect(refuse('/relative/path')).toBe('webhook_url_invalid');
    expect(refuse(`https://hooks.example.com/${'a'.repeat(2030)}`)).toBe('webhook_url_too_long');
    expect(checkWebhookUrl(`https://hooks.example.com/${'a'.repeat(2000)}`, { allowHttp: false }).ok).toBe(true);
  });
});

describe('event types', () => {
  it('lists each review and release state change once, each described', () => {
    expect(new Set(webhookEventTypes).size).toBe(webhookEventTypes.length);
    expect(webhookEventTypes).toHaveLength(15);
    for (const type of webhookEventTypes) expect(webhookEventDescriptions[type]).toBeTruthy();
    expect(isWebhookEventType('release.halted')).toBe(true);
    expect(isWebhookEventType('ping')).toBe(false);
  });
});
