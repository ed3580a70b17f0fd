import type { Preview, PreviewLink } from '$lib/api/types';
import { api, seg, unwrap } from './http';

/** Preview links: issue one for a version; open one (as a member or a whitelisted tester). */

export function issuePreview(workspaceId: string, miniProgramId: string, versionId: string): Promise<PreviewLink> {
  return unwrap<PreviewLink>(
    api.workspaces[':workspaceId']['mini-programs'][':miniProgramId'].versions[':versionId'].preview.$post({
      param: { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId), versionId: seg(versionId) },
    }),
  );
}

export function openPreview(token: string): Promise<Preview> {
  return unwrap<Preview>(api.preview[':token'].$get({ param: { token: seg(token) } }));
}
