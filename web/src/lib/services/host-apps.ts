import type { InferRequestType, InferResponseType } from 'hono/client';
import type { ApiClient } from '$lib/api/types';
import { api, apiBase, csrfHeaders, seg, unwrap } from './http';

/** Host apps (the super apps that run the workspace's mini programs), their icons and keys. */

type Apps = ApiClient['workspaces'][':workspaceId']['host-apps'];
type App = Apps[':appId'];
type Keys = App['keys'];

export type HostAppPage = InferResponseType<Apps['$get'], 200>;
export type HostApp = HostAppPage['items'][number];
export type HostAppPlatform = HostApp['platform'];
export type HostAppDetail = InferResponseType<App['$get'], 200>;
export type HostAppKey = HostAppDetail['keys'][number];
export type HostAppAudit = HostAppDetail['audit'][number];
export type IssuedKey = InferResponseType<Keys['$post'], 201>;
export type AddKeyInput = InferRequestType<Keys['$post']>['json'];
export type RotateKeyInput = InferRequestType<Keys[':keyId']['rotate']['$post']>['json'];
export type KeyAlgorithm = NonNullable<AddKeyInput['algorithm']>;

export interface HostAppInput {
  name: string;
  platform: HostAppPlatform;
  bundleId: string;
  description: string;
}

export const platformLabels: Record<HostAppPlatform, string> = { ios: 'iOS', android: 'Android', web: 'Web' };
export const algorithmLabels: Record<KeyAlgorithm, string> = { 'ec-p256': 'EC P-256 (recommended)', 'rsa-2048': 'RSA 2048', 'rsa-3072': 'RSA 3072' };

const apps = () => api.workspaces[':workspaceId']['host-apps'];
const app = () => apps()[':appId'];
const params = (workspaceId: string, appId: string) => ({ workspaceId: seg(workspaceId), appId: seg(appId) });
const keyParams = (workspaceId: string, appId: string, keyId: string) => ({ ...params(workspaceId, appId), keyId: seg(keyId) });

export function listHostApps(workspaceId: string, p: { q?: string; platform?: HostAppPlatform | ''; cursor?: string | null; limit?: number } = {}): Promise<HostAppPage> {
  return unwrap<HostAppPage>(
    apps().$get({ param: { workspaceId: seg(workspaceId) }, query: { q: p.q?.trim() || undefined, platform: p.platform || undefined, cursor: p.cursor || undefined, limit: p.limit ?? 50 } }),
  );
}

export function getHostApp(workspaceId: string, appId: string): Promise<HostAppDetail> {
  return unwrap<HostAppDetail>(app().$get({ param: params(workspaceId, appId) }));
}

export function createHostApp(workspaceId: string, input: HostAppInput): Promise<HostApp> {
  return unwrap<HostApp>(apps().$post({ param: { workspaceId: seg(workspaceId) }, json: input }));
}

export function updateHostApp(workspaceId: string, appId: string, change: Partial<HostAppInput> & { status?: HostApp['status'] }): Promise<HostApp> {
  return unwrap<HostApp>(app().$patch({ param: params(workspaceId, appId), json: change }));
}

export function deleteHostApp(workspaceId: string, appId: string): Promise<{ removed: { id: string; name: string } }> {
  return unwrap(app().$delete({ param: params(workspaceId, appId) }));
}

/** Uploads the icon as multipart/form-data (the server checks the content, not the name). */
export async function setHostAppIcon(workspaceId: string, appId: string, file: File): Promise<HostApp> {
  const form = new FormData();
  form.append('file', file, file.name);
  return unwrap<HostApp>(
    fetch(`${apiBase}/workspaces/${seg(workspaceId)}/host-apps/${seg(appId)}/icon`, {
      method: 'PUT', body: form, credentials: 'same-origin', headers: { Accept: 'application/json', ...csrfHeaders() },
    }),
  );
}

export function removeHostAppIcon(workspaceId: string, appId: string): Promise<HostApp> {
  return unwrap<HostApp>(app().icon.$delete({ param: params(workspaceId, appId) }));
}

/** Uploads a public key, or has the platform issue a pair (an app signing key answers its private part this once). */
export function addHostAppKey(workspaceId: string, appId: string, input: AddKeyInput): Promise<IssuedKey> {
  return unwrap<IssuedKey>(app().keys.$post({ param: params(workspaceId, appId), json: input }));
}

export function rotateHostAppKey(workspaceId: string, appId: string, keyId: string, input: RotateKeyInput): Promise<IssuedKey> {
  return unwrap<IssuedKey>(app().keys[':keyId'].rotate.$post({ param: keyParams(workspaceId, appId, keyId), json: input }));
}

export function revokeHostAppKey(workspaceId: string, appId: string, keyId: string, reason: string): Promise<HostAppKey> {
  return unwrap<HostAppKey>(app().keys[':keyId'].revoke.$post({ param: keyParams(workspaceId, appId, keyId), json: { reason } }));
}
