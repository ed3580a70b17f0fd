import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { WorkspaceRole } from '../../lib/permissions.js';

/**
 * The contract of `memberInvitation`: one workflow per invitation, id invitation:<invitationId>.
 * The start input below is also what other workflows, such as an approved account application,
 * use to invite someone.
 */
export const invitationWorkflowId = (invitationId: string) => `invitation:${invitationId}`;
export const invitationWorkflowType = 'memberInvitation';

export const invitationStatuses = ['pending', 'accepted', 'declined', 'withdrawn', 'expired'] as const;
export type InvitationStatus = (typeof invitationStatuses)[number];

/** Failure types of the invitation updates (the API maps them to 4xx codes). */
export const InvitationFailure = {
  /** The token is not the invitation's current one (never was, or replaced by a resend). */
  invalidToken: 'invalid_token',
  /** An account exists for the address, but the caller did not prove to be its owner. */
  accountExists: 'account_exists',
} as const;

export interface InvitationInput {
  invitationId: string;
  workspaceId: string;
  email: string;
  role: WorkspaceRole;
  /** The inviting user; null when the platform invites (an approved account application). */
  invitedBy: string | null;
  /** Expiry and reminder, from configuration (tests pass seconds). */
  ttlMs: number;
  reminderMs: number;
  /** The bulk invite this invitation belongs to, if any. */
  batchId?: string | null;
}

export interface InvitationState {
  invitationId: string;
  workspaceId: string;
  email: string;
  role: WorkspaceRole;
  status: InvitationStatus;
  invitedBy: string | null;
  batchId: string | null;
  createdAt: string;
  expiresAt: string;
  remindedAt: string | null;
  decidedAt: string | null;
  acceptedUserId: string | null;
  /**
   * sha256 of the one valid token. The token itself is never in the history: an activity derives
   * it from the secret key and `tokenNonce`, mails it, and hands back only its hash.
   */
  tokenHash: string | null;
  /** Rises with every resend; mail dedupe keys and the token derivation use it. */
  tokenVersion: number;
  /** Rises with every change; projections never move the row to a lower seq. */
  seq: number;
}

/** Proof of the link: the sha256 of the token the invitee presented (never the token). */
export interface TokenProof {
  tokenHash: string;
}

export interface AcceptInput extends TokenProof {
  /** The signed-in (or password-verified) account of the invited address. */
  existingUserId?: string;
  /** A new account: id minted by the API, the name and the scrypt hash of the chosen password. */
  newAccount?: { userId: string; name: string; passwordHash: string };
}

export interface AcceptResult {
  state: InvitationState;
  userId: string;
  accountCreated: boolean;
}

export interface AdminCommand {
  actorId: string;
  /** When given, the command is refused (not_found) unless the invitation is in this workspace. */
  workspaceId?: string;
}

/** Updates (not signals): every caller needs to know at once whether the command took. */
export const acceptUpdate = defineUpdate<AcceptResult, [AcceptInput]>('accept');
export const declineUpdate = defineUpdate<InvitationState, [TokenProof]>('decline');
export const resendUpdate = defineUpdate<InvitationState, [AdminCommand]>('resend');
export const withdrawInvitationUpdate = defineUpdate<InvitationState, [AdminCommand]>('withdraw');
export const changeRoleUpdate = defineUpdate<InvitationState, [AdminCommand & { role: WorkspaceRole }]>('changeRole');
export const invitationStatusQuery = defineQuery<InvitationState>('status');
