import type { InferRequestType, InferResponseType } from 'hono/client';
import type { ApiClient } from '$lib/api/types';
import { api, seg, unwrap } from './http';

/** A workspace's general info and its API keys (server-to-server; the secret is shown once). */

type Ws = ApiClient['workspaces'][':workspaceId'];
type Keys = Ws['api-keys'];

export type WorkspaceInfo = InferResponseType<Ws['$get'], 200>;
export type WorkspaceContact = WorkspaceInfo['contacts'][number];
export type WorkspaceInfoChange = Omit<InferRequestType<Ws['$patch']>['json'], 'code'>;
export type ApiKeyList = InferResponseType<Keys['$get'], 200>;
export type ApiKey = ApiKeyList['items'][number];
export type ApiKeyScope = ApiKey['scopes'][number];
export type ApiKeyScopeInfo = ApiKeyList['scopes'][number];
/** A key just made: the only answer that carries the secret itself. */
export type NewApiKey = InferResponseType<Keys['$post'], 201>;

/** Expiry choices offered by the console; null = never expires. */
export const keyExpiryChoices = [
  { days: 30, label: '30 days' },
  { days: 90, label: '90 days' },
  { days: 365, label: '1 year' },
  { days: null, label: 'No expiry' },
] as const;

const ws = () => api.workspaces[':workspaceId'];

export function getWorkspaceInfo(workspaceId: string): Promise<WorkspaceInfo> {
  return unwrap<WorkspaceInfo>(ws().$get({ param: { workspaceId: seg(workspaceId) } }));
}

export function updateWorkspaceInfo(workspaceId: string, change: WorkspaceInfoChange): Promise<WorkspaceInfo> {
  return unwrap<WorkspaceInfo>(ws().$patch({ param: { workspaceId: seg(workspaceId) }, json: change }));
}

export function listApiKeys(workspaceId: string): Promise<ApiKeyList> {
  return unwrap<ApiKeyList>(ws()['api-keys'].$get({ param: { workspaceId: seg(workspaceId) } }));
}

export function createApiKey(workspaceId: string, input: { name: string; scopes: ApiKeyScope[]; expiresInDays: number | null }): Promise<NewApiKey> {
  return unwrap<NewApiKey>(ws()['api-keys'].$post({ param: { workspaceId: seg(workspaceId) }, json: input }));
}

export function revokeApiKey(workspaceId: string, keyId: string): Promise<ApiKey> {
  return unwrap<ApiKey>(ws()['api-keys'][':keyId'].$delete({ param: { workspaceId: seg(workspaceId), keyId: seg(keyId) } }));
}
