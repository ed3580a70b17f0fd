import type { AccountApplication, ApplicationPage, ApplicationPublicStatus, ApplicationStatus } from '$lib/api/types';
import { api, newKey, unwrap } from './http';

/** Account applications: the public form and status link, and the operators' inbox. */

export interface ApplyInput {
  company: string;
  contactName: string;
  email: string;
  intendedUse: string;
}

export function apply(input: ApplyInput): Promise<{ id: string; status: 'pending'; statusUrl: string }> {
  return unwrap(api.applications.$post({ json: input }));
}

export function applicationStatus(applicationId: string, token: string): Promise<ApplicationPublicStatus> {
  return unwrap(api.applications[':applicationId'].status.$get({ param: { applicationId }, query: { token } }));
}

export function listApplications(o: { status?: ApplicationStatus | ''; cursor?: string | null; limit?: number } = {}): Promise<ApplicationPage> {
  return unwrap(
    api.platform.applications.$get({
      query: { ...(o.status ? { status: o.status } : {}), ...(o.cursor ? { cursor: o.cursor } : {}), limit: String(o.limit ?? 50) } as never,
    }),
  );
}

export function approveApplication(applicationId: string): Promise<AccountApplication> {
  return unwrap(api.platform.applications[':applicationId'].approve.$post({ param: { applicationId } }, { headers: { 'Idempotency-Key': newKey() } }));
}

export function denyApplication(applicationId: string, reason: string): Promise<AccountApplication> {
  return unwrap(api.platform.applications[':applicationId'].deny.$post({ param: { applicationId }, json: { reason } }, { headers: { 'Idempotency-Key': newKey() } }));
}
