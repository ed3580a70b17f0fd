import { hc } from 'hono/client';
import type { AppType } from '../../../../api/app';
import { session } from '$lib/stores/session.svelte';
import { ApiError } from '$lib/utils/errors';

/** Where the API lives: the same origin that served the console. */
export const apiBase = '/api/v1';

/** The CSRF header every cookie-authenticated write must carry. */
export function csrfHeaders(): Record<string, string> {
  const token = session.csrfToken;
  return token ? { 'X-CSRF-Token': token } : {};
}

/**
 * The typed API client (route types come from the server's AppType). Only the service modules
 * use it; it is the one place the console calls fetch.
 */
export const api = hc<AppType>(apiBase, {
  headers: () => ({ Accept: 'application/json', ...csrfHeaders() }),
  init: { credentials: 'same-origin', cache: 'no-store' },
});

/** A path segment, encoded (ids from the URL bar are not trusted to be clean). */
export const seg = (s: string) => encodeURIComponent(s);

/** The body of a successful answer, or an ApiError carrying the server's message. */
export async function unwrap<T>(res: Response | Promise<Response>): Promise<T> {
  const r = await res;
  if (r.status === 204) return undefined as T;
  const text = await r.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!r.ok) throw ApiError.fromBody(r.status, body, r.statusText);
  return body as T;
}

/** A random key for Idempotency-Key headers (works on plain-http origins too, unlike randomUUID). */
export function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
