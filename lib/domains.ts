import { domainToASCII } from 'node:url';

/**
 * Domain preference: the origins a workspace's mini programs may call. Server domains are
 * https:// origins (wss:// for sockets); web-view domains are https:// origins. The host must be a
 * public DNS name: no IP literals, no localhost or reserved names, no user info, paths, queries or
 * fragments. A port is kept only when it is not the scheme's default (443). A leading `*.` wildcard
 * is accepted (`https://*.example.com` = any subdomain of example.com, not example.com itself);
 * no other `*`. Entries are normalised (lowercase, punycode, no trailing slash or dot, default port
 * dropped) and de-duplicated in order.
 */

export const domainKinds = ['server', 'webview'] as const;
export type DomainKind = (typeof domainKinds)[number];

/** Most entries in each list. */
export const maxDomainsPerList = 50;
/** Longest entry accepted (before normalisation). */
export const maxDomainLength = 300;

export const domainSchemes: Record<DomainKind, readonly string[]> = { server: ['https', 'wss'], webview: ['https'] };

export interface DomainProblem {
  value: string;
  reason: string;
}

export type DomainCheck = { ok: true; value: string } | { ok: false; reason: string };

/** Top-level names that never resolve publicly (RFC 2606, 6761, 6762, 8375 and common private ones). */
const reservedTlds = new Set(['localhost', 'local', 'test', 'example', 'invalid', 'internal', 'lan', 'home', 'corp', 'intranet', 'private', 'onion', 'alt']);
const label = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Checks and normalises one entry of a list of the given kind. */
export function normalizeDomain(raw: string, kind: DomainKind): DomainCheck {
  const input = raw.trim();
  if (input === '') return { ok: false, reason: 'empty entry' };
  if (input.length > maxDomainLength) return { ok: false, reason: `longer than ${maxDomainLength} characters` };
  const allowed = domainSchemes[kind];
  const schemes = allowed.map((s) => `${s}://`).join(' or ');
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(input);
  if (!m) return { ok: false, reason: `must start with ${schemes}` };
  const scheme = m[1].toLowerCase();
  if (!allowed.includes(scheme)) return { ok: false, reason: `${scheme}:// is not allowed here; use ${schemes}` };
  let rest = m[2];
  // One trailing slash is the bare origin; anything more is a path.
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (/[/?#\\]/.test(rest)) return { ok: false, reason: 'only an origin: no path, query or fragment' };
  if (rest.includes('@')) return { ok: false, reason: 'no user name or password in the address' };
  if (/\s/.test(rest)) return { ok: false, reason: 'contains spaces' };
  if (rest.startsWith('[')) return { ok: false, reason: 'IP addresses are not allowed; use a domain name' };

  let host = rest;
  let port: string | null = null;
  const pm = /^(.*):([^:]*)$/.exec(rest);
  if (pm) {
    host = pm[1];
    if (!/^[0-9]{1,5}$/.test(pm[2]) || Number(pm[2]) < 1 || Number(pm[2]) > 65535) return { ok: false, reason: `bad port "${pm[2]}"` };
    port = Number(pm[2]) === 443 ? null : String(Number(pm[2]));
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  let wildcard = false;
  if (host.startsWith('*.')) {
    wildcard = true;
    host = host.slice(2);
  }
  if (host.includes('*')) return { ok: false, reason: 'a wildcard may only be a leading "*." (e.g. https://*.example.com)' };
  if (host === '') return { ok: false, reason: 'no host name' };

  const ascii = domainToASCII(host.toLowerCase());
  if (!ascii) return { ok: false, reason: `"${host}" is not a valid domain name` };
  if (/^[0-9.]+$/.test(ascii) || /^0x[0-9a-f]+$/i.test(ascii) || ascii.includes(':')) return { ok: false, reason: 'IP addresses are not allowed; use a domain name' };
  if (ascii.length > 253) return { ok: false, reason: 'the domain name is longer than 253 characters' };
  const labels = ascii.split('.');
  if (labels.length < 2) {
    if (wildcard) return { ok: false, reason: 'a wildcard needs a registrable domain after "*." (e.g. https://*.example.com)' };
    return { ok: false, reason: ascii === 'localhost' ? 'localhost is not a public domain' : `"${ascii}" is not a public domain name (it needs a dot)` };
  }
  if (!labels.every((l) => label.test(l))) return { ok: false, reason: `"${host}" is not a valid domain name` };
  const tld = labels[labels.length - 1];
  if (reservedTlds.has(tld) || ascii.endsWith('.home.arpa') || tld === 'arpa') return { ok: false, reason: `.${tld} names are not public` };
  if (!/^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/.test(tld)) return { ok: false, reason: `".${tld}" is not a top-level domain` };
  return { ok: true, value: `${scheme}://${wildcard ? '*.' : ''}${ascii}${port ? `:${port}` : ''}` };
}

/** Normalises a whole list: the valid entries de-duplicated in order, and every bad one with its reason. */
export function checkDomainList(values: readonly string[], kind: DomainKind): { domains: string[]; invalid: DomainProblem[] } {
  const seen = new Set<string>();
  const domains: string[] = [];
  const invalid: DomainProblem[] = [];
  for (const value of values) {
    const check = normalizeDomain(value, kind);
    if (!check.ok) invalid.push({ value, reason: check.reason });
    else if (!seen.has(check.value)) {
      seen.add(check.value);
      domains.push(check.value);
    }
  }
  return { domains, invalid };
}

/** Whether a URL's origin is covered by a list entry (for runtimes and tests; wildcards match subdomains only). */
export function domainAllows(entries: readonly string[], url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  const scheme = u.protocol.replace(/:$/, '');
  const host = u.hostname.toLowerCase();
  const port = u.port && u.port !== '443' ? `:${u.port}` : '';
  return entries.some((e) => {
    const m = /^([a-z]+):\/\/(\*\.)?([^:]+)(:\d+)?$/.exec(e);
    if (!m || m[1] !== scheme || (m[4] ?? '') !== port) return false;
    return m[2] ? host.endsWith(`.${m[3]}`) : host === m[3];
  });
}
