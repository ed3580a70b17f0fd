import type { InferResponseType } from 'hono/client';
import type { ApiClient } from '$lib/api/types';
import { api, seg, unwrap } from './http';

/** Features (bundles of JSAPIs), their changes under review and revision history, and mini programs holding them. */

type Ws = ApiClient['workspaces'][':workspaceId'];
type Features = Ws['features'];
type One = Features[':featureId'];
type Holdings = Ws['mini-programs'][':miniProgramId']['features'];

export type FeatureList = InferResponseType<Features['$get'], 200>;
export type Feature = FeatureList['items'][number];
export type FeatureDetail = InferResponseType<One['$get'], 200>;
export type FeatureChange = FeatureDetail['changes'][number];
export type FeatureRevision = FeatureDetail['revisions'][number];
export type FeatureDiff = FeatureRevision['diff'];
export type FeatureJsapi = FeatureDetail['jsapis'][number];
export type AccessMode = Feature['accessMode'];
export type MiniProgramFeature = InferResponseType<Holdings['$get'], 200>['items'][number];

export interface FeatureInput {
  key: string;
  name: string;
  description: string;
  accessMode: AccessMode;
  jsapis: string[];
  comment: string;
}

export const accessModeLabels: Record<AccessMode, string> = { direct: 'Direct', activation: 'Activation needed' };
export const accessModeHelp: Record<AccessMode, string> = {
  direct: 'Granted as soon as a mini program applies for it.',
  activation: 'A reviewer approves each mini program that applies. Required for restricted JSAPIs.',
};
export const changeKindLabels: Record<FeatureChange['kind'], string> = { add: 'Addition', edit: 'Edit', archive: 'Archive' };
export const fieldLabels: Record<string, string> = { key: 'Key', name: 'Name', description: 'Description', accessMode: 'Access mode', status: 'Status' };

const ws = (workspaceId: string) => ({ workspaceId: seg(workspaceId) });
const feat = (workspaceId: string, featureId: string) => ({ workspaceId: seg(workspaceId), featureId: seg(featureId) });
const chg = (workspaceId: string, changeId: string) => ({ workspaceId: seg(workspaceId), changeId: seg(changeId) });
const hold = (workspaceId: string, miniProgramId: string, featureId: string) => ({ workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId), featureId: seg(featureId) });

export function listFeatures(workspaceId: string, filter: { q?: string; status?: 'active' | 'archived' | 'all'; accessMode?: AccessMode | ''; jsapi?: string } = {}): Promise<FeatureList> {
  const query: Record<string, string> = {};
  if (filter.q?.trim()) query.q = filter.q.trim();
  if (filter.status) query.status = filter.status;
  if (filter.accessMode) query.accessMode = filter.accessMode;
  if (filter.jsapi) query.jsapi = filter.jsapi;
  return unwrap<FeatureList>(api.workspaces[':workspaceId'].features.$get({ param: ws(workspaceId), query }));
}

export function getFeature(workspaceId: string, featureId: string): Promise<FeatureDetail> {
  return unwrap<FeatureDetail>(api.workspaces[':workspaceId'].features[':featureId'].$get({ param: feat(workspaceId, featureId) }));
}

/** Proposes a new feature: a change a reviewer approves. */
export function proposeFeature(workspaceId: string, input: FeatureInput): Promise<FeatureChange> {
  return unwrap<FeatureChange>(api.workspaces[':workspaceId'].features.$post({ param: ws(workspaceId), json: input }));
}

/** Proposes an edit (the key stays) or the archiving of a feature. */
export function proposeFeatureChange(workspaceId: string, featureId: string, change: { kind: 'edit' | 'archive'; name?: string; description?: string; accessMode?: AccessMode; jsapis?: string[]; comment?: string }): Promise<FeatureChange> {
  return unwrap<FeatureChange>(api.workspaces[':workspaceId'].features[':featureId'].changes.$post({ param: feat(workspaceId, featureId), json: { comment: '', ...change } }));
}

export function listFeatureChanges(workspaceId: string, status: FeatureChange['status'] | 'all' = 'pending'): Promise<{ items: FeatureChange[] }> {
  return unwrap(api.workspaces[':workspaceId']['feature-changes'].$get({ param: ws(workspaceId), query: { status } }));
}

export function approveFeatureChange(workspaceId: string, changeId: string, comment?: string): Promise<FeatureChange> {
  return unwrap<FeatureChange>(api.workspaces[':workspaceId']['feature-changes'][':changeId'].approve.$post({ param: chg(workspaceId, changeId), json: comment ? { comment } : {} }));
}

export function rejectFeatureChange(workspaceId: string, changeId: string, reason: string): Promise<FeatureChange> {
  return unwrap<FeatureChange>(api.workspaces[':workspaceId']['feature-changes'][':changeId'].reject.$post({ param: chg(workspaceId, changeId), json: { reason } }));
}

export function withdrawFeatureChange(workspaceId: string, changeId: string): Promise<FeatureChange> {
  return unwrap<FeatureChange>(api.workspaces[':workspaceId']['feature-changes'][':changeId'].withdraw.$post({ param: chg(workspaceId, changeId) }));
}

/** The workspace's features as the mini program holds them (status null: never applied for). */
export function listMiniProgramFeatures(workspaceId: string, miniProgramId: string): Promise<{ items: MiniProgramFeature[] }> {
  return unwrap(api.workspaces[':workspaceId']['mini-programs'][':miniProgramId'].features.$get({ param: { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId) } }));
}

type Holding = Holdings[':featureId'];
const holding = () => api.workspaces[':workspaceId']['mini-programs'][':miniProgramId'].features[':featureId'] as Holding;

export function applyForFeature(workspaceId: string, miniProgramId: string, featureId: string, message = ''): Promise<MiniProgramFeature> {
  return unwrap<MiniProgramFeature>(holding().apply.$post({ param: hold(workspaceId, miniProgramId, featureId), json: { message } }));
}
export function withdrawApplication(workspaceId: string, miniProgramId: string, featureId: string): Promise<MiniProgramFeature> {
  return unwrap<MiniProgramFeature>(holding().withdraw.$post({ param: hold(workspaceId, miniProgramId, featureId) }));
}
export function approveApplication(workspaceId: string, miniProgramId: string, featureId: string): Promise<MiniProgramFeature> {
  return unwrap<MiniProgramFeature>(holding().approve.$post({ param: hold(workspaceId, miniProgramId, featureId), json: {} }));
}
export function rejectApplication(workspaceId: string, miniProgramId: string, featureId: string, reason: string): Promise<MiniProgramFeature> {
  return unwrap<MiniProgramFeature>(holding().reject.$post({ param: hold(workspaceId, miniProgramId, featureId), json: { reason } }));
}
export function revokeFeature(workspaceId: string, miniProgramId: string, featureId: string, reason: string): Promise<MiniProgramFeature> {
  return unwrap<MiniProgramFeature>(holding().revoke.$post({ param: hold(workspaceId, miniProgramId, featureId), json: { reason } }));
}
