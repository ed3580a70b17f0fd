import { redirect } from '@sveltejs/kit';
import { session } from '$lib/stores/session.svelte';
import type { PageLoad } from './$types';

/** Home: straight to the last workspace's mini programs (the layout already made sure of a session). */
export const load: PageLoad = async ({ parent }) => {
  await parent();
  const ws = session.me?.lastWorkspaceId ?? session.workspaces[0]?.id;
  if (ws) redirect(307, `/w/${encodeURIComponent(ws)}/mini-programs`);
  // A platform operator without a workspace of their own works in the applications inbox.
  if (session.user?.isOperator) redirect(307, '/operator/applications');
  return {};
};
