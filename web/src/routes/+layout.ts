import { redirect } from '@sveltejs/kit';
import { ensureMe } from '$lib/services/auth';
import type { LayoutLoad } from './$types';

// A single-page app: the API serves index.html for every console path and the browser renders.
export const ssr = false;
export const prerender = false;
export const trailingSlash = 'never';

/** Onboarding pages anyone may open: apply, an application's status link, password reset, the dev mailbox. */
const publicPages = ['/apply', '/applications', '/forgot-password', '/reset-password', '/dev/mail'];

/** Everything but /login needs a session; /login with a session goes home. */
export const load: LayoutLoad = async ({ url }) => {
  const me = await ensureMe();
  const onLogin = url.pathname === '/login';
  // An invitation link is opened before its invitee has an account.
  const isPublic = url.pathname.startsWith('/invitations/') || publicPages.some((p) => url.pathname === p || url.pathname.startsWith(`${p}/`));
  if (!me && !onLogin && !isPublic) {
    const next = url.pathname === '/' ? '' : `?next=${encodeURIComponent(url.pathname + url.search)}`;
    redirect(307, `/login${next}`);
  }
  if (me && onLogin) redirect(307, '/');
  return {};
};
