import { api, seg, unwrap } from './http';

/** Members, invitations and per-mini-program roles of a workspace; the public invitation link. */

export type WorkspaceRole = 'admin' | 'reviewer' | 'developer';
export type MiniProgramRole = 'owner' | 'developer';
export type InvitationStatus = 'pending' | 'accepted' | 'declined' | 'withdrawn' | 'expired';

export interface Member {
  userId: string; name: string; email: string; role: WorkspaceRole; status: 'active' | 'blocked'; joinedAt: string; updatedAt: string;
  miniProgramRoles: { miniProgramId: string; miniProgramName: string; role: MiniProgramRole }[];
}
export interface Invitation {
  id: string; email: string; role: WorkspaceRole; status: InvitationStatus; invitedBy: { id: string; name: string } | null; batchId: string | null;
  createdAt: string; expiresAt: string; remindedAt: string | null; decidedAt: string | null;
}
export interface InviteReport {
  batchId: string;
  invited: { email: string; invitationId: string }[];
  refused: { email: string; code: string; reason: string }[];
}
export interface CutOff {
  sessionsEnded: number; apiTokensRevoked: number; miniProgramRolesRemoved: number;
  reviews: { versionsInReview: number; otherReviewers: number };
}
export interface MiniProgramRoleEntry { userId: string; name: string; email: string; role: MiniProgramRole; workspaceRole: WorkspaceRole | null; blocked: boolean }
export interface PublicInvitation {
  id: string; email: string; role: WorkspaceRole; status: InvitationStatus; expiresAt: string; workspace: { id: string; name: string };
  invitedBy: string | null; accountExists: boolean; signedInAs: string | null;
}

const ws = (workspaceId: string) => api.workspaces[':workspaceId'];
const wsParam = (workspaceId: string) => ({ workspaceId: seg(workspaceId) });

/** Splits pasted addresses: one per line, or separated by commas, semicolons or spaces. */
export const parseAddresses = (text: string) => text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);

export function listMembers(workspaceId: string, f: { role?: WorkspaceRole | ''; status?: 'active' | 'blocked' | ''; q?: string } = {}) {
  return unwrap<{ items: Member[]; counts: Record<string, number> }>(
    ws(workspaceId).members.$get({ param: wsParam(workspaceId), query: { role: f.role || undefined, status: f.status || undefined, q: f.q?.trim() || undefined } }),
  );
}
export function changeMemberRole(workspaceId: string, userId: string, role: WorkspaceRole) {
  return unwrap<{ userId: string; role: WorkspaceRole }>(ws(workspaceId).members[':userId'].$patch({ param: { ...wsParam(workspaceId), userId: seg(userId) }, json: { role } }));
}
export function blockMember(workspaceId: string, userId: string) {
  return unwrap<{ userId: string; status: string; cutOff: CutOff }>(ws(workspaceId).members[':userId'].block.$post({ param: { ...wsParam(workspaceId), userId: seg(userId) } }));
}
export function unblockMember(workspaceId: string, userId: string) {
  return unwrap<{ userId: string; status: string }>(ws(workspaceId).members[':userId'].unblock.$post({ param: { ...wsParam(workspaceId), userId: seg(userId) } }));
}
export function removeMember(workspaceId: string, userId: string) {
  return unwrap<{ userId: string; cutOff: CutOff }>(ws(workspaceId).members[':userId'].$delete({ param: { ...wsParam(workspaceId), userId: seg(userId) } }));
}
export function leaveWorkspace(workspaceId: string) {
  return unwrap<{ left: true }>(ws(workspaceId).leave.$post({ param: wsParam(workspaceId) }));
}

export function invite(workspaceId: string, emails: string[], role: WorkspaceRole) {
  return unwrap<InviteReport>(ws(workspaceId).invitations.$post({ param: wsParam(workspaceId), json: { emails, role } }));
}
export function listInvitations(workspaceId: string, status: InvitationStatus | '' = 'pending') {
  return unwrap<{ items: Invitation[]; counts: Record<string, number> }>(ws(workspaceId).invitations.$get({ param: wsParam(workspaceId), query: { status: status || undefined } as never }));
}
export function resendInvitation(workspaceId: string, invitationId: string) {
  return unwrap<Invitation>(ws(workspaceId).invitations[':invitationId'].resend.$post({ param: { ...wsParam(workspaceId), invitationId: seg(invitationId) } }));
}
export function withdrawInvitation(workspaceId: string, invitationId: string) {
  return unwrap<Invitation>(ws(workspaceId).invitations[':invitationId'].withdraw.$post({ param: { ...wsParam(workspaceId), invitationId: seg(invitationId) } }));
}
export function changeInvitationRole(workspaceId: string, invitationId: string, role: WorkspaceRole) {
  return unwrap<Invitation>(ws(workspaceId).invitations[':invitationId'].$patch({ param: { ...wsParam(workspaceId), invitationId: seg(invitationId) }, json: { role } }));
}

export function setMiniProgramRole(workspaceId: string, miniProgramId: string, userId: string, role: MiniProgramRole) {
  return unwrap<{ items: MiniProgramRoleEntry[] }>(
    ws(workspaceId)['mini-programs'][':miniProgramId'].roles[':userId'].$put({ param: { ...wsParam(workspaceId), miniProgramId: seg(miniProgramId), userId: seg(userId) }, json: { role } }),
  );
}
export function removeMiniProgramRole(workspaceId: string, miniProgramId: string, userId: string) {
  return unwrap<{ items: MiniProgramRoleEntry[] }>(
    ws(workspaceId)['mini-programs'][':miniProgramId'].roles[':userId'].$delete({ param: { ...wsParam(workspaceId), miniProgramId: seg(miniProgramId), userId: seg(userId) } }),
  );
}

export function getInvitation(invitationId: string, token: string) {
  return unwrap<PublicInvitation>(api.invitations[':invitationId'].$get({ param: { invitationId: seg(invitationId) }, query: { token } }));
}
export function acceptInvitation(invitationId: string, body: { token: string; name?: string; password?: string }) {
  return unwrap<{ workspaceId: string; userId: string; accountCreated: boolean; csrfToken: string | null }>(api.invitations[':invitationId'].accept.$post({ param: { invitationId: seg(invitationId) }, json: body }));
}
export function declineInvitation(invitationId: string, token: string) {
  return unwrap<{ status: InvitationStatus }>(api.invitations[':invitationId'].decline.$post({ param: { invitationId: seg(invitationId) }, json: { token } }));
}
