import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Handler } from 'hono';
import type { AppEnv } from '../deps.js';

const source = fileURLToPath(new URL('../../tracker/mpdp-tracker.js', import.meta.url));
const types = fileURLToPath(new URL('../../tracker/mpdp-tracker.d.ts', import.meta.url));

/**
 * The tracker as a classic script (for `<script src>` and CommonJS runtimes): the module without
 * its `export` lines; it sets globalThis.mpdpTracker (and module.exports) either way.
 */
export function classicScript(moduleSource: string): string {
  return moduleSource.split('\n').filter((line) => !line.startsWith('export ')).join('\n');
}

interface Asset { body: string; type: string; etag: string }

/** Cached for 5 minutes by browsers and CDNs, then revalidated by ETag (a new build changes it). */
const cacheControl = 'public, max-age=300, stale-while-revalidate=86400';

/**
 * GET /sdk/:file — the JavaScript tracker, public: `mpdp-tracker.js` (ES module),
 * `mpdp-tracker.global.js` (classic script) and `mpdp-tracker.d.ts` (its types). Mounted by app.ts
 * ahead of the console's middleware and static files, so it answers with or without the console.
 * Files are read once per process (they ship with the server).
 */
export function sdkHandler(): Handler<AppEnv> {
  let assets: Map<string, Asset> | null = null;
  const load = () => {
    const js = readFileSync(source, 'utf8');
    const entries: [string, string, string][] = [
      ['mpdp-tracker.js', js, 'text/javascript; charset=utf-8'],
      ['mpdp-tracker.global.js', classicScript(js), 'text/javascript; charset=utf-8'],
      ['mpdp-tracker.d.ts', readFileSync(types, 'utf8'), 'text/plain; charset=utf-8'],
    ];
    return new Map(entries.map(([name, body, type]) => [name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` }]));
  };
  return (c) => {
    assets ??= load();
    const asset = assets.get(c.req.param('file') ?? '');
    if (!asset) {
      return c.json({ error: { code: 'not_found', message: `No SDK file ${c.req.path}; there are ${[...assets.keys()].join(', ')}`, details: {}, requestId: null } }, 404);
    }
    const headers = {
      'Content-Type': asset.type,
      'Cache-Control': cacheControl,
      ETag: asset.etag,
      // Pages of any origin load it (an ES module crosses origins only with CORS).
      'Access-Control-Allow-Origin': '*',
      'Cross-Origin-Resource-Policy': 'cross-origin',
      'X-Content-Type-Options': 'nosniff',
    };
    const match = (c.req.header('if-none-match') ?? '').split(',').some((t) => t.trim() === asset.etag || t.trim() === '*');
    if (match) return c.body(null, 304, headers);
    return c.body(asset.body, 200, headers);
  };
}
