import { api, seg, unwrap } from './http';

/** The JSAPIs a version's package uses (found by the package scan), each judged against the mini program's features now. */

export interface JsapiCallSite {
  file: string;
  line: number;
  column: number;
  via: 'call' | 'manifest';
}

export interface JsapiFeatureRef {
  featureId: string;
  key?: string;
  name: string;
  accessMode?: 'direct' | 'activation';
}

export interface JsapiVerdict {
  api: string;
  permissionLevel: 'open' | 'needs_feature' | 'restricted' | null;
  status: 'active' | 'deprecated' | 'disabled' | null;
  allowed: boolean;
  reason: 'not_granted' | 'unknown' | 'disabled' | null;
  grantedVia: JsapiFeatureRef[];
  calls: JsapiCallSite[];
  callCount: number;
}

export interface VersionJsapis {
  items: JsapiVerdict[];
  missingCount: number;
  callCount: number;
}

export function getVersionJsapis(workspaceId: string, miniProgramId: string, versionId: string): Promise<VersionJsapis> {
  return unwrap<VersionJsapis>(
    api.workspaces[':workspaceId']['mini-programs'][':miniProgramId'].versions[':versionId'].jsapis.$get({
      param: { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId), versionId: seg(versionId) },
    }),
  );
}
