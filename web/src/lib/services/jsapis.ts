import type { InferRequestType, InferResponseType } from 'hono/client';
import type { ApiClient } from '$lib/api/types';
import { api, seg, unwrap } from './http';

/** The workspace's JSAPI catalog: browse and search, one API in detail, Admin edits and their history. */

type Jsapis = ApiClient['workspaces'][':workspaceId']['jsapis'];
type One = Jsapis[':name'];

export type JsapiPage = InferResponseType<Jsapis['$get'], 200>;
export type JsapiSummary = JsapiPage['items'][number];
export type JsapiCategory = JsapiSummary['category'];
export type PermissionLevel = JsapiSummary['permissionLevel'];
export type JsapiStatus = JsapiSummary['status'];
export type JsapiDetail = InferResponseType<One['$get'], 200>;
export type Jsapi = JsapiDetail['jsapi'];
export type GrantingFeature = JsapiDetail['grantedBy'][number];
export type JsapiEdited = InferResponseType<One['$patch'], 200>;
export type JsapiHistory = InferResponseType<One['history']['$get'], 200>;
export type JsapiEdit = JsapiHistory['items'][number];
export type JsapiChange = InferRequestType<One['$patch']>['json'];

export interface JsapiFilters {
  q?: string;
  category?: JsapiCategory | '';
  permissionLevel?: PermissionLevel | '';
  status?: JsapiStatus | '';
}

const params = (workspaceId: string, name: string) => ({ workspaceId: seg(workspaceId), name: seg(name) });

export function listJsapis(workspaceId: string, f: JsapiFilters, page: { cursor?: string | null; limit?: number } = {}): Promise<JsapiPage> {
  return unwrap<JsapiPage>(
    api.workspaces[':workspaceId'].jsapis.$get({
      param: { workspaceId: seg(workspaceId) },
      query: {
        q: f.q?.trim() || undefined, category: f.category || undefined, permissionLevel: f.permissionLevel || undefined, status: f.status || undefined,
        cursor: page.cursor || undefined, limit: page.limit ?? 50,
      },
    }),
  );
}

export function getJsapi(workspaceId: string, name: string): Promise<JsapiDetail> {
  return unwrap<JsapiDetail>(api.workspaces[':workspaceId'].jsapis[':name'].$get({ param: params(workspaceId, name) }));
}

/** Saves an Admin's edit; `expectedRevision` is the revision the form was opened on (a stale one answers 409 edit_conflict). */
export function editJsapi(workspaceId: string, name: string, change: JsapiChange): Promise<JsapiEdited> {
  return unwrap<JsapiEdited>(api.workspaces[':workspaceId'].jsapis[':name'].$patch({ param: params(workspaceId, name), json: change }));
}

export function jsapiHistory(workspaceId: string, name: string, cursor?: string | null): Promise<JsapiHistory> {
  return unwrap<JsapiHistory>(api.workspaces[':workspaceId'].jsapis[':name'].history.$get({ param: params(workspaceId, name), query: { cursor: cursor || undefined, limit: 30 } }));
}

export const categoryLabels: Record<JsapiCategory, string> = {
  network: 'Network', storage: 'Storage', media: 'Media', location: 'Location', device: 'Device', ui: 'UI', navigation: 'Navigation', payment: 'Payment', user_info: 'User info',
};
export const jsapiCategoryOrder = Object.keys(categoryLabels) as JsapiCategory[];

export const permissionLabels: Record<PermissionLevel, string> = { open: 'Open', needs_feature: 'Needs feature', restricted: 'Restricted' };
export const permissionHelp: Record<PermissionLevel, string> = {
  open: 'Any mini program may call it.',
  needs_feature: 'Callable only by mini programs holding a feature that lists it.',
  restricted: 'Like "needs feature", and only features that need a reviewer\'s activation may list it.',
};
export const statusLabels: Record<JsapiStatus, string> = { active: 'Active', deprecated: 'Deprecated', disabled: 'Disabled' };
export const statusHelp: Record<JsapiStatus, string> = {
  active: 'Available to mini programs that may call it.',
  deprecated: 'Still works; new packages should move off it.',
  disabled: 'Nobody may call it; packages using it are refused.',
};
