import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { workspaceCodeBase } from '../activities/accounts.js';
import { onError } from './errors.js';
import type { AppEnv } from './deps.js';
import { contentSecurityPolicy, inlineScriptHashes, jsonOnlyWhenAnonymous, securityHeaders } from './security.js';

const b64sha = (s: string) => createHash('sha256').update(s).digest('base64');

describe('content security policy', () => {
  it('hashes inline scripts only, byte for byte', () => {
    const boot = '\n\t\t\t\t{ __sveltekit_x = { base: "" }; import("/app.js"); }\n\t\t\t';
    const html = `<head><script type="module" src="/a.js"></script></head><body><script>${boot}</script><script>console.log(1)</script></body>`;
    expect(inlineScriptHashes(html)).toEqual([`'sha256-${b64sha(boot)}'`, `'sha256-${b64sha('console.log(1)')}'`]);
  });

  it('never allows inline or eval scripts, framing or plugins', () => {
    const csp = contentSecurityPolicy(["'sha256-abc'"]);
    expect(csp).toContain("script-src 'self' 'sha256-abc'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
  });
});

describe('security middleware', () => {
  const app = new Hono<AppEnv>();
  app.use('*', securityHeaders({}));
  app.use('*', async (c, next) => {
    c.set('user', c.req.header('x-test-user') ? { id: 'u', email: 'u@x', name: 'U', isOperator: false } : null);
    await next();
  });
  app.use('*', jsonOnlyWhenAnonymous);
  app.onError(onError);
  app.post('/thing', (c) => c.json({ ok: true }));

  it('refuses anonymous form and text posts with 415 and still sends the headers', async () => {
    const res = await app.request('/thing', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '3' }, body: 'a=b' });
    expect(res.status).toBe(415);
    expect((await res.json()).error.code).toBe('unsupported_media_type');
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=31536000/);
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  });

  it('lets JSON through, and signed-in uploads of other types', async () => {
    expect((await app.request('/thing', { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': '2' }, body: '{}' })).status).toBe(200);
    expect((await app.request('/thing', { method: 'POST', headers: { 'content-type': 'text/csv', 'content-length': '3', 'x-test-user': '1' }, body: 'a,b' })).status).toBe(200);
    expect((await app.request('/thing', { method: 'POST' })).status).toBe(200);
  });
});

describe('workspace codes', () => {
  it('come from the company name: letters and digits, upper case, 3 to 10 long', () => {
    expect(workspaceCodeBase('Harbour Foods Ltd')).toBe('HARBOURFOO');
    expect(workspaceCodeBase('Café Noël')).toBe('CAFENOEL');
    expect(workspaceCodeBase('Q')).toBe('QWS');
    expect(workspaceCodeBase('茶')).toBe('WSX');
  });
});
