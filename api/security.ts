import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../lib/errors.js';
import type { AppEnv } from './deps.js';

/** 'sha256-…' sources for every inline <script> of a page, for its Content-Security-Policy. */
export function inlineScriptHashes(html: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/gi)) {
    if (m[1]) out.push(`'sha256-${createHash('sha256').update(m[1], 'utf8').digest('base64')}'`);
  }
  return out;
}

/**
 * The policy the console runs under: its own scripts plus the hashes of the inline boot script of
 * the SvelteKit shell (nothing else inline), styles from itself (Svelte sets style attributes),
 * images from itself and data: URLs (QR codes), fetches to itself only, never framed.
 */
export function contentSecurityPolicy(scriptHashes: string[] = []): string {
  return [
    "default-src 'self'",
    `script-src 'self' ${scriptHashes.join(' ')}`.trim(),
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The console shell's inline-script hashes, re-read when the file changes (a rebuilt console). */
function shellHashes(indexFile: string | undefined): () => string[] {
  let cached: { mtimeMs: number; hashes: string[] } | null = null;
  return () => {
    if (!indexFile) return [];
    try {
      const { mtimeMs } = statSync(indexFile);
      if (cached?.mtimeMs !== mtimeMs) cached = { mtimeMs, hashes: inlineScriptHashes(readFileSync(indexFile, 'utf8')) };
      return cached.hashes;
    } catch {
      return [];
    }
  };
}

/**
 * Security headers on every response; a route may set its own Content-Security-Policy. Set before
 * the handler runs: a header set after it has answered makes Hono rebuild the finished Response
 * (a full undici Response with a stream body, once per header), which costs ~90 µs per request.
 * A handler that returns a Response it built itself gets them after, on that slower path.
 */
export function securityHeaders(o: { indexFile?: string }): MiddlewareHandler<AppEnv> {
  const hashes = shellHashes(o.indexFile);
  const fixed: [string, string][] = [
    ['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'], ['X-Content-Type-Options', 'nosniff'], ['Referrer-Policy', 'no-referrer'],
    ['X-Frame-Options', 'DENY'], ['Cross-Origin-Opener-Policy', 'same-origin'], ['Permissions-Policy', 'camera=(), microphone=(), geolocation=()'],
  ];
  // The policy (and the stat of the console shell behind it) at most once a second.
  let csp = { at: 0, value: '' };
  return async (c, next) => {
    const now = Date.now();
    if (now - csp.at > 1000) csp = { at: now, value: contentSecurityPolicy(hashes()) };
    for (const [k, v] of fixed) c.header(k, v);
    c.header('Content-Security-Policy', csp.value);
    await next();
    if (!c.res.headers.has('X-Content-Type-Options')) {
      for (const [k, v] of fixed) c.header(k, v);
      if (!c.res.headers.get('Content-Security-Policy')) c.header('Content-Security-Policy', csp.value);
    }
  };
}

const unsafeMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const isJson = (type: string) => type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);

/**
 * Writes from anonymous callers (apply, sign in, password reset) take JSON only: a JSON body needs
 * a CORS preflight, so another site cannot post one with the user's browser. Signed-in writes are
 * covered by the CSRF token (cookie) or carry a bearer token, and may upload multipart or CSV.
 */
export const jsonOnlyWhenAnonymous: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (unsafeMethods.has(c.req.method) && !c.get('user')) {
    const hasBody = (c.req.header('content-length') ?? '0') !== '0' || !!c.req.header('transfer-encoding');
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (hasBody && !isJson(type)) throw new AppError(415, 'unsupported_media_type', 'Send the request body as application/json');
  }
  await next();
};
