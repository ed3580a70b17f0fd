import { defineQuery, defineUpdate } from '@temporalio/workflow';

/**
 * The contract of `accountApplication`: one workflow per application to open an account on the
 * platform, id application:<applicationId>. The API starts it after writing the read-model row
 * (which alone holds the hash of the applicant's status token), operators decide through Updates.
 */
export const applicationStatuses = ['pending', 'approved', 'denied', 'expired'] as const;
export type ApplicationStatus = (typeof applicationStatuses)[number];

export const applicationWorkflowId = (applicationId: string) => `application:${applicationId}`;

/** The workspace every application's audit lines are filed under (they belong to no workspace yet). */
export const platformAuditScope = 'platform';

export interface AccountApplicationInput {
  applicationId: string;
  company: string;
  contactName: string;
  email: string;
  intendedUse: string;
  /** Operators are reminded after this long without a decision (0 = never). */
  reminderMs: number;
  /** The application expires after this long without a decision. */
  ttlMs: number;
  /** Expiry and reminder of the Admin invitation an approval sends. */
  invitation: { ttlMs: number; reminderMs: number };
}

export interface ApplicationState {
  applicationId: string;
  status: ApplicationStatus;
  decidedBy: string | null;
  reason: string | null;
  workspaceId: string | null;
  workspaceName: string | null;
  workspaceCode: string | null;
  invitationId: string | null;
  reminded: boolean;
  /** Rises with every change; projections never move the row to a lower seq. */
  seq: number;
}

export interface ApproveApplicationInput {
  actorId: string;
}
export interface DenyApplicationInput {
  actorId: string;
  reason: string;
}

/** Updates (not signals): the operator needs to know at once whether the decision took. */
export const approveApplicationUpdate = defineUpdate<ApplicationState, [ApproveApplicationInput]>('approveApplication');
export const denyApplicationUpdate = defineUpdate<ApplicationState, [DenyApplicationInput]>('denyApplication');
export const applicationStatusQuery = defineQuery<ApplicationState>('applicationStatus');

/** What one step of an application writes to the read model and the audit log. */
export interface ApplicationProjection {
  applicationId: string;
  status: ApplicationStatus;
  decidedBy: string | null;
  reason: string | null;
  workspaceId: string | null;
  invitationId: string | null;
  remindedAt: string | null;
  decidedAt: string | null;
  at: string;
  seq: number;
  audit: { dedupeKey: string; actorId: string | null; action: string; fromState: string | null; toState: string; comment: string | null };
}

/** The contract of `passwordResetMail`: mails one single-use reset link, id password-reset:<resetId>. */
export const passwordResetWorkflowId = (resetId: string) => `password-reset:${resetId}`;
export interface PasswordResetInput {
  resetId: string;
  email: string;
  ttlMs: number;
}
