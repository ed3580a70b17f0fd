import { goto } from '$app/navigation';
import { page } from '$app/state';
import type { ApiErrorBody } from '$lib/api/types';
import { session } from '$lib/stores/session.svelte';
import { toasts } from '$lib/stores/toasts.svelte';

/** An error answered by the API: its status and the body's code, message and request id. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly requestId: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** Builds the error from a failed response; tolerates bodies that are not the API's shape. */
  static fromBody(status: number, body: unknown, statusText = ''): ApiError {
    const e = (body as Partial<ApiErrorBody> | null)?.error;
    if (e && typeof e.message === 'string') return new ApiError(status, e.code ?? 'error', e.message, e.details ?? {}, e.requestId ?? null);
    return new ApiError(status, 'http_error', `The server answered ${status}${statusText ? ` ${statusText}` : ''}`);
  }
}

/** The message to show for any error, API or not. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof TypeError) return 'Cannot reach the server. Check your connection and try again.';
  if (err instanceof Error && err.message) return err.message;
  return 'Unexpected error';
}

/** Field-level messages from a `validation_failed` answer, keyed by field name. */
export function fieldErrors(err: unknown): Record<string, string> {
  if (!(err instanceof ApiError)) return {};
  const fields = err.details.fields as Record<string, string[] | undefined> | undefined;
  if (!fields || typeof fields !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) if (Array.isArray(v) && v[0]) out[k] = v[0];
  return out;
}

/** True when the error means the session is gone. */
export const isUnauthenticated = (err: unknown) => err instanceof ApiError && err.status === 401;

/**
 * The one error handler: an expired session goes back to sign-in; anything else is shown as a
 * toast with the server's message (and its request id, for support) unless the caller shows it
 * in place. Returns the message.
 */
export function handleError(err: unknown, title?: string, opts: { toast?: boolean } = {}): string {
  const message = errorMessage(err);
  if (isUnauthenticated(err) && session.me) {
    session.clear();
    toasts.info('Your session ended. Sign in again to continue.', 'Signed out');
    const next = page.url.pathname + page.url.search;
    void goto(`/login?next=${encodeURIComponent(next)}`);
    return message;
  }
  const requestId = err instanceof ApiError && err.requestId ? `Request ${err.requestId}` : undefined;
  if (!(err instanceof ApiError)) console.error(err);
  // Pages that show the message in place (e.g. a failed first load) skip the toast.
  if (opts.toast !== false) toasts.error(message, requestId, title);
  return message;
}
