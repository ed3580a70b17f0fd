import { redirect } from '@sveltejs/kit';
import type { PageLoad } from './$types';

/** Webhooks moved under Settings; old links still work. */
export const load: PageLoad = ({ params }) => redirect(307, `/w/${encodeURIComponent(params.ws)}/settings/webhooks`);
