import type { InferResponseType } from 'hono/client';
import type { ApiClient } from '$lib/api/types';
import { api, seg, unwrap } from './http';

/** Service email preference (sender name, reply-to, your notification kinds) and terms of service. */

type Ws = ApiClient['workspaces'][':workspaceId'];
type Me = ApiClient['me'];

export type MailSettings = InferResponseType<Ws['mail-settings']['$get'], 200>;
export type NotificationPreferencesPage = InferResponseType<Me['notification-preferences']['$get'], 200>;
export type NotificationKindInfo = NotificationPreferencesPage['kinds'][number];
export type NotificationKind = NotificationKindInfo['kind'];
export type WorkspaceNotificationPreferences = NotificationPreferencesPage['items'][number];
export type TermsOverview = InferResponseType<Ws['terms']['$get'], 200>;
export type TermsVersion = NonNullable<TermsOverview['current']>;
export type TermsVersionSummary = TermsOverview['versions'][number];
export type TermsAcceptances = InferResponseType<Ws['terms']['acceptances']['$get'], 200>;
export type PendingTerms = InferResponseType<Me['pending-terms']['$get'], 200>['items'][number];

const ws = (workspaceId: string) => ({ workspaceId: seg(workspaceId) });

export function getMailSettings(workspaceId: string): Promise<MailSettings> {
  return unwrap<MailSettings>(api.workspaces[':workspaceId']['mail-settings'].$get({ param: ws(workspaceId) }));
}

export function saveMailSettings(workspaceId: string, input: { senderName: string | null; replyTo: string | null }): Promise<MailSettings> {
  return unwrap<MailSettings>(api.workspaces[':workspaceId']['mail-settings'].$put({ param: ws(workspaceId), json: input }));
}

export function getNotificationPreferences(workspaceId: string): Promise<NotificationPreferencesPage> {
  return unwrap<NotificationPreferencesPage>(api.me['notification-preferences'].$get({ query: { workspaceId } }));
}

export function setNotificationPreference(workspaceId: string, kind: NotificationKind, on: boolean): Promise<WorkspaceNotificationPreferences> {
  return unwrap<WorkspaceNotificationPreferences>(api.me['notification-preferences'].$put({ json: { workspaceId, preferences: { [kind]: on } } }));
}

export function getTerms(workspaceId: string): Promise<TermsOverview> {
  return unwrap<TermsOverview>(api.workspaces[':workspaceId'].terms.$get({ param: ws(workspaceId) }));
}

export function getTermsVersion(workspaceId: string, version: number): Promise<TermsVersion> {
  return unwrap<TermsVersion>(api.workspaces[':workspaceId'].terms[':version'].$get({ param: { ...ws(workspaceId), version: String(version) } }));
}

export function publishTerms(workspaceId: string, input: { title: string; body: string }): Promise<TermsVersion> {
  return unwrap<TermsVersion>(api.workspaces[':workspaceId'].terms.$post({ param: ws(workspaceId), json: input }));
}

export function getTermsAcceptances(workspaceId: string): Promise<TermsAcceptances> {
  return unwrap<TermsAcceptances>(api.workspaces[':workspaceId'].terms.acceptances.$get({ param: ws(workspaceId) }));
}

export function acceptTerms(workspaceId: string, version: number): Promise<{ version: number; acceptedAt: string; alreadyAccepted: boolean }> {
  return unwrap(api.workspaces[':workspaceId'].terms[':version'].accept.$post({ param: { ...ws(workspaceId), version: String(version) } }));
}

/** The workspaces whose current terms wait for the signed-in user (the terms gate). */
export async function listPendingTerms(): Promise<PendingTerms[]> {
  return (await unwrap<{ items: PendingTerms[] }>(api.me['pending-terms'].$get())).items;
}
