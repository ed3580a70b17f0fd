import type { InferResponseType } from 'hono/client';
import type { ApiClient } from '$lib/api/types';
import type { AuthorizationStatus, IsvScope, RevocationReport } from '../../../../workflows/contracts/authorization';
import { api, apiBase, seg, unwrap } from './http';

/**
 * Developer (ISV) workspaces and the authorizations between them and merchants: request, decide,
 * revoke (now or scheduled), relinquish, and the revocation report.
 */

export type { AuthorizationStatus, IsvScope, RevocationReport };

type Auths = ApiClient['workspaces'][':workspaceId']['authorizations'];
export type Authorization = InferResponseType<Auths['$post'], 201>;
export type AuthorizationList = InferResponseType<Auths['$get'], 200>;
type DetailAnswer = InferResponseType<Auths[':authorizationId']['$get'], 200>;
/** The detail, with the report typed by the workflow's contract (the API passes it through as stored). */
export type AuthorizationDetail = Omit<DetailAnswer, 'report'> & { report: RevocationReport | null };
export type HistoryEntry = DetailAnswer['history'][number];
export type ActivityEntry = DetailAnswer['activity'][number];
export type AuthorizedMiniProgram = InferResponseType<ApiClient['me']['authorized-mini-programs']['$get'], 200>['items'][number];
export type DeveloperWorkspace = InferResponseType<ApiClient['developer-workspaces']['$post'], 201>;
export { isvScopes, terminalAuthorizationStatuses } from '../../../../workflows/contracts/authorization';

/** What each scope lets the ISV do, in the merchant's words. */
export const scopeLabels: Record<IsvScope, { label: string; help: string }> = {
  view: { label: 'View', help: 'See the mini programs, their versions and pipelines; open previews' },
  upload: { label: 'Upload', help: 'Upload new versions' },
  submit: { label: 'Submit for review', help: "Send versions to the merchant's reviewers, and withdraw them" },
  testers: { label: 'Manage testers', help: 'Add and remove testers of these mini programs' },
};

const wsAuth = () => api.workspaces[':workspaceId'].authorizations;
const one = () => wsAuth()[':authorizationId'];
const params = (workspaceId: string, authorizationId: string) => ({ workspaceId: seg(workspaceId), authorizationId: seg(authorizationId) });

export function createDeveloperWorkspace(name: string) {
  return unwrap<DeveloperWorkspace>(api['developer-workspaces'].$post({ json: { name } }));
}

export function listAuthorizations(workspaceId: string) {
  return unwrap<AuthorizationList>(wsAuth().$get({ param: { workspaceId: seg(workspaceId) }, query: {} }));
}

export function getAuthorization(workspaceId: string, authorizationId: string) {
  return unwrap<AuthorizationDetail>(one().$get({ param: params(workspaceId, authorizationId) }));
}

export interface RequestInput {
  merchantCode: string;
  miniProgramIds: string[];
  scope: IsvScope[];
  endsAt?: string | null;
  message: string;
}
export function requestAuthorization(developerWorkspaceId: string, body: RequestInput) {
  return unwrap<Authorization>(wsAuth().$post({ param: { workspaceId: seg(developerWorkspaceId) }, json: body }));
}

export interface ApproveInput {
  miniProgramIds?: string[];
  scope?: IsvScope[];
  endsAt?: string | null;
  comment?: string;
}
export function approveAuthorization(workspaceId: string, authorizationId: string, body: ApproveInput) {
  return unwrap<Authorization>(one().approve.$post({ param: params(workspaceId, authorizationId), json: body }));
}
export function denyAuthorization(workspaceId: string, authorizationId: string, reason: string) {
  return unwrap<Authorization>(one().deny.$post({ param: params(workspaceId, authorizationId), json: { reason } }));
}
/** The ISV takes back its own request before a decision. */
export function withdrawAuthorization(workspaceId: string, authorizationId: string) {
  return unwrap<Authorization>(one().withdraw.$post({ param: params(workspaceId, authorizationId) }));
}
/** Revoke (merchant) or relinquish (ISV): now, or scheduled for `at` (ISO). */
export function revokeAuthorization(workspaceId: string, authorizationId: string, body: { reason: string; at?: string }) {
  return unwrap<Authorization>(one().revoke.$post({ param: params(workspaceId, authorizationId), json: body }));
}
export function cancelRevocation(workspaceId: string, authorizationId: string) {
  return unwrap<Authorization>(one()['cancel-revocation'].$post({ param: params(workspaceId, authorizationId) }));
}

/** The revocation report as a JSON download (a plain link: the browser saves it). */
export const reportJsonUrl = (workspaceId: string, authorizationId: string) =>
  `${apiBase}/workspaces/${seg(workspaceId)}/authorizations/${seg(authorizationId)}/report`;

/** Mini programs the caller may act on through grants, with the merchant they belong to. */
export function authorizedMiniPrograms() {
  return unwrap<{ items: AuthorizedMiniProgram[] }>(api.me['authorized-mini-programs'].$get());
}

/** Whether the authorization can still change (decided, running or scheduled). */
export const isOpen = (s: AuthorizationStatus) => s === 'requested' || s === 'active' || s === 'revoking';

/** An end-of-day ISO instant for a `YYYY-MM-DD` date picked in the browser's zone. */
export function endOfDay(date: string): string | null {
  if (!date) return null;
  const d = new Date(`${date}T23:59:59`);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}
/** The `YYYY-MM-DD` of an ISO instant in the browser's zone (for date inputs). */
export function dateInput(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}
