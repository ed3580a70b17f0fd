import type { Me } from '$lib/api/types';
import { session } from '$lib/stores/session.svelte';
import { ApiError } from '$lib/utils/errors';
import { api, unwrap } from './http';

/** Sign in, sign out, who am I, remembered workspace. Keeps the session store in step. */

export async function login(email: string, password: string): Promise<Me> {
  const me = await unwrap<Me>(api.auth.login.$post({ json: { email, password } }));
  session.set(me);
  return me;
}

export async function logout(): Promise<void> {
  try {
    await unwrap<void>(api.auth.logout.$post());
  } finally {
    session.clear();
  }
}

/** The signed-in user, or null when signed out (401). Other errors propagate. */
export async function fetchMe(): Promise<Me | null> {
  try {
    const me = await unwrap<Me>(api.me.$get());
    session.set(me);
    return me;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      session.clear();
      return null;
    }
    throw err;
  }
}

/** /me once per page load; later calls answer from the store. */
let pending: Promise<Me | null> | null = null;
export function ensureMe(): Promise<Me | null> {
  if (session.checked) return Promise.resolve(session.me);
  pending ??= fetchMe().finally(() => {
    pending = null;
  });
  return pending;
}

export async function setLastWorkspace(workspaceId: string): Promise<void> {
  await unwrap<void>(api.me['last-workspace'].$put({ json: { workspaceId } }));
  session.rememberWorkspace(workspaceId);
}
