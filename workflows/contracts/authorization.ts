import { defineQuery, defineUpdate } from '@temporalio/workflow';

/**
 * The contract of `developerAuthorization`: one workflow per authorization a developer (ISV)
 * workspace requests from a merchant workspace, id authorization:<authorizationId>. It lives from
 * the request through approval, the active grant, a reminder before its end date, and the
 * revocation (by the merchant, relinquished by the ISV, or by lapse) with its report.
 */
export const authorizationWorkflowId = (authorizationId: string) => `authorization:${authorizationId}`;
export const authorizationWorkflowType = 'developerAuthorization';

/** What an ISV may be granted: never approve, members, keys or settings. */
export const isvScopes = ['view', 'upload', 'submit', 'testers'] as const;
export type IsvScope = (typeof isvScopes)[number];

export const authorizationStatuses = ['requested', 'active', 'denied', 'expired', 'withdrawn', 'revoking', 'revoked', 'lapsed'] as const;
export type AuthorizationStatus = (typeof authorizationStatuses)[number];
export const terminalAuthorizationStatuses: readonly AuthorizationStatus[] = ['denied', 'expired', 'withdrawn', 'revoked', 'lapsed'];

export interface AuthorizationInput {
  authorizationId: string;
  developerWorkspaceId: string;
  merchantWorkspaceId: string;
  miniProgramIds: string[];
  scope: IsvScope[];
  /** ISO date the grant ends by itself (through the revocation path), or null. */
  endsAt: string | null;
  message: string;
  requestedBy: string;
  /** An undecided request expires after this long. */
  requestTtlMs: number;
  /** Both sides are reminded this long before endsAt (0 = no reminder). */
  lapseReminderMs: number;
}

export type RevokeTrigger = 'merchant' | 'developer' | 'lapse';

/** One step of a revocation, with when it ran. */
export interface RevocationStep {
  name: 'cut_access' | 'withdraw_submissions' | 'remove_testers' | 'revoke_preview_links' | 'mail';
  startedAt: string;
  finishedAt: string | null;
  count: number;
}

export interface RevocationReport {
  authorizationId: string;
  developerWorkspaceId: string;
  merchantWorkspaceId: string;
  trigger: RevokeTrigger;
  requestedBy: string | null;
  reason: string;
  requestedAt: string;
  /** What the ISV lost: the mini programs and scope of the grant. */
  cutOff: { miniProgramIds: string[]; scope: IsvScope[]; at: string } | null;
  withdrawn: { pipelineId: string; versionId: string; version: string; miniProgramId: string; at: string }[];
  /** Releases the merchant's reviewers had approved: left as they are. */
  leftRunning: { pipelineId: string; versionId: string; version: string; miniProgramId: string; status: string }[];
  testersRemoved: { id: string; email: string; miniProgramId: string | null; at: string }[];
  previewLinksRevoked: { id: string; versionId: string; at: string }[];
  mailed: { to: string; at: string }[];
  steps: RevocationStep[];
  completedAt: string | null;
}

export interface HistoryEntry {
  at: string;
  action: string;
  actorId: string | null;
  comment?: string;
}

export interface AuthorizationState {
  authorizationId: string;
  developerWorkspaceId: string;
  merchantWorkspaceId: string;
  status: AuthorizationStatus;
  requestedMiniProgramIds: string[];
  requestedScope: IsvScope[];
  /** Granted (a narrowing of the request); empty until approved. */
  miniProgramIds: string[];
  scope: IsvScope[];
  endsAt: string | null;
  message: string;
  requestedBy: string;
  requestedAt: string;
  requestExpiresAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  decisionReason: string | null;
  /** A revocation scheduled for later (cancellable until it starts). */
  revokeScheduledAt: string | null;
  revokeTrigger: RevokeTrigger | null;
  revokedBy: string | null;
  revokeReason: string | null;
  revokedAt: string | null;
  report: RevocationReport | null;
  history: HistoryEntry[];
  seq: number;
}

export interface ApproveAuthorizationInput {
  actorId: string;
  /** Narrow the request (each a subset of what was requested); omitted = as requested. */
  miniProgramIds?: string[];
  scope?: IsvScope[];
  endsAt?: string | null;
  comment?: string;
}
export interface DenyAuthorizationInput {
  actorId: string;
  reason: string;
}
export interface RevokeAuthorizationInput {
  actorId: string;
  /** merchant = an Admin of the merchant revokes; developer = the ISV relinquishes. */
  by: 'merchant' | 'developer';
  reason: string;
  /** ISO date: schedule the revocation for then (cancellable until it starts); omitted = now. */
  at?: string;
}

export const approveAuthorizationUpdate = defineUpdate<AuthorizationState, [ApproveAuthorizationInput]>('approveAuthorization');
export const denyAuthorizationUpdate = defineUpdate<AuthorizationState, [DenyAuthorizationInput]>('denyAuthorization');
/** The ISV withdraws its own request before a decision. */
export const withdrawAuthorizationUpdate = defineUpdate<AuthorizationState, [{ actorId: string }]>('withdrawAuthorization');
export const revokeAuthorizationUpdate = defineUpdate<AuthorizationState, [RevokeAuthorizationInput]>('revokeAuthorization');
export const cancelRevocationUpdate = defineUpdate<AuthorizationState, [{ actorId: string }]>('cancelRevocation');
export const authorizationStatusQuery = defineQuery<AuthorizationState>('status');
