import type { WorkspaceRole } from '../../lib/permissions.js';

/**
 * The contract of `memberInvitation`: one workflow per invitation, id invitation:<invitationId>.
 * (Issue 3's members work completes this file with the updates, the query and the state; the
 * start input below is what other workflows, such as an approved account application, use.)
 */
export const invitationWorkflowId = (invitationId: string) => `invitation:${invitationId}`;

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
}
