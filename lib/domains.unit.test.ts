import { describe, expect, it } from 'vitest';
import { checkDomainList, domainAllows, maxDomainsPerList, normalizeDomain } from './domains.js';

const ok = (raw: string, kind: 'server' | 'webview' = 'server') => {
  const r = normalizeDomain(raw, kind);
  if (!r.ok) throw new Error(`${raw}: ${r.reason}`);
  return r.value;
};
const reason = (raw: string, kind: 'server' | 'webview' = 'server') => {
  const r = normalizeDomain(raw, kind);
  return r.ok ? `accepted as ${r.value}` : r.reason;
};

describe('normalizeDomain', () => {
  it('normalises case, trailing slash and dot, the default port, and punycode', () => {
    expect(ok('  HTTPS://API.Example.COM/ ')).toBe('https://api.example.com');
    expect(ok('https://api.example.com.')).toBe('https://api.example.com');
    expect(ok('https://api.example.com:443')).toBe('https://api.example.com');
    expect(ok('https://api.example.com:8443')).toBe('https://api.example.com:8443');
    expect(ok('wss://push.example.com')).toBe('wss://push.example.com');
  });

  it('accepts IDN hosts as punycode and a leading *. wildcard', () => {
    expect(ok('https://bücher.de')).toBe('https://xn--bcher-kva.de');
    expect(ok('https://*.Example.com')).toBe('https://*.example.com');
  });

  it('refuses other schemes, per list', () => {
    expect(reason('http://api.example.com')).toMatch(/http:\/\/ is not allowed/);
    expect(reason('api.example.com')).toMatch(/must start with https:\/\/ or wss:\/\//);
    expect(reason('wss://push.example.com', 'webview')).toMatch(/wss:\/\/ is not allowed here; use https:\/\//);
    expect(reason('ftp://files.example.com')).toMatch(/not allowed/);
  });

  it('refuses IP literals, localhost and reserved names', () => {
    expect(reason('https://10.0.0.1')).toMatch(/IP addresses/);
    expect(reason('https://[::1]')).toMatch(/IP addresses/);
    expect(reason('https://0x7f000001')).toMatch(/not public|IP|top-level|valid/);
    expect(reason('https://localhost')).toMatch(/localhost/);
    expect(reason('https://api.localhost')).toMatch(/not public/);
    expect(reason('https://printer.local')).toMatch(/not public/);
    expect(reason('https://svc.internal')).toMatch(/not public/);
    expect(reason('https://intranet')).toMatch(/needs a dot/);
  });

  it('refuses paths, queries, user info, bad ports, bad labels and stray wildcards', () => {
    expect(reason('https://api.example.com/v1')).toMatch(/no path/);
    expect(reason('https://api.example.com?x=1')).toMatch(/no path/);
    expect(reason('https://user:pw@api.example.com')).toMatch(/user name/);
    expect(reason('https://api.example.com:0')).toMatch(/bad port/);
    expect(reason('https://api.example.com:99999')).toMatch(/bad port/);
    expect(reason('https://api.example.com:abc')).toMatch(/bad port/);
    expect(reason('https://-api.example.com')).toMatch(/not a valid domain/);
    expect(reason('https://api_x.example.com')).toMatch(/not a valid domain/);
    expect(reason('https://api.*.example.com')).toMatch(/wildcard/);
    expect(reason('https://*.com')).toMatch(/wildcard needs/);
    expect(reason('https://*')).toMatch(/wildcard|host/);
    expect(reason('https://a b.example.com')).toMatch(/spaces/);
    expect(reason('https://example.123')).toMatch(/not a valid domain|top-level/);
    expect(reason('https://example.c0m')).toMatch(/top-level/);
    expect(reason('')).toBe('empty entry');
    expect(reason(`https://${'a'.repeat(300)}.com`)).toMatch(/longer than/);
  });
});

describe('checkDomainList', () => {
  it('dedupes after normalising and names every bad entry', () => {
    const r = checkDomainList(['https://a.example.com', 'HTTPS://A.example.com/', 'http://b.example.com', 'https://10.1.1.1', 'wss://c.example.com'], 'server');
    expect(r.domains).toEqual(['https://a.example.com', 'wss://c.example.com']);
    expect(r.invalid.map((i) => i.value)).toEqual(['http://b.example.com', 'https://10.1.1.1']);
  });

  it('the limit is 50 per list', () => {
    expect(maxDomainsPerList).toBe(50);
  });
});

describe('domainAllows', () => {
  const list = ['https://api.example.com', 'https://*.cdn.example.com', 'wss://push.example.com:8443'];
  it('matches exact origins, subdomains for a wildcard, scheme and port', () => {
    expect(domainAllows(list, 'https://api.example.com/v1/x?y=1')).toBe(true);
    expect(domainAllows(list, 'http://api.example.com/')).toBe(false);
    expect(domainAllows(list, 'https://evil.com/?https://api.example.com')).toBe(false);
    expect(domainAllows(list, 'https://img.cdn.example.com/a.png')).toBe(true);
    expect(domainAllows(list, 'https://cdn.example.com/a.png')).toBe(false);
    expect(domainAllows(list, 'https://evilcdn.example.com/a.png')).toBe(false);
    expect(domainAllows(list, 'wss://push.example.com:8443/socket')).toBe(true);
    expect(domainAllows(list, 'wss://push.example.com/socket')).toBe(false);
  });
});
