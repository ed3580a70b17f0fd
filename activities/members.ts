import { ApplicationFailure, Context } from '@temporalio/activity';
import { createHash, createHmac } from 'node:crypto';
import { QueryTypes } from 'sequelize';
import type { ActivityDeps, AuditInput } from './index.js';
import { createOutbox, renderMail } from './mail.js';
import { InvitationFailure, type InvitationState } from '../workflows/contracts/invitation.js';
import type { WorkspaceRole } from '../lib/permissions.js';
import { appendAudit } from './audit.js';

export interface InvitationProjection {
  state: InvitationState;
  at: string;
  audit: AuditInput;
}

export interface InvitationMailInput {
  /** Minted in the workflow per step (invite, resend n, reminder n), so a retry sends once. */
  dedupeKey: string;
  kind: 'invite' | 'reminder';
  invitationId: string;
  workspaceId: string;
  email: string;
  role: WorkspaceRole;
  invitedBy: string | null;
  expiresAt: string;
  /** The workflow's nonce of the current token (not the token: that needs the secret key). */
  tokenNonce: string;
}

export interface AcceptInvitationInput {
  invitationId: string;
  workspaceId: string;
  email: string;
  role: WorkspaceRole;
  existingUserId?: string;
  newAccount?: { userId: string; name: string; passwordHash: string };
}

const roleWords: Record<WorkspaceRole, string> = { admin: 'Admin', reviewer: 'Reviewer', developer: 'Developer' };

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The invitation token: an HMAC of the invitation id and the workflow's nonce under the secret
 * key. The workflow history holds only the nonce and the token's sha256; the database only the
 * sha256; the token exists in clear only in the mail.
 */
export function invitationToken(secretKey: string, invitationId: string, nonce: string): string {
  return createHmac('sha256', secretKey).update(`invitation:${invitationId}:${nonce}`).digest('base64url');
}

/** The link an invitee follows: the console's accept page. */
export const invitationLink = (publicUrl: string, invitationId: string, token: string) => `${publicUrl}/invitations/${invitationId}?token=${token}`;

/** Activities of the memberInvitation workflow. */
export function createMemberActivities({ sequelize, mailer, publicUrl, secretKey }: ActivityDeps) {
  const sendOnce = createOutbox(sequelize, mailer);
  const key = () => {
    if (!secretKey) throw ApplicationFailure.nonRetryable('the worker has no secret key to derive invitation tokens', 'configuration');
    return secretKey;
  };

  return {
    /** The sha256 of the token for this nonce (pure: any retry answers the same). */
    async invitationTokenHash(input: { invitationId: string; tokenNonce: string }): Promise<string> {
      return sha256(invitationToken(key(), input.invitationId, input.tokenNonce));
    },

    /** Upserts the invitations row and appends the audit line, in one transaction; never moves a row backwards. */
    async projectInvitation({ state: s, at, audit }: InvitationProjection): Promise<void> {
      await sequelize.transaction(async (transaction) => {
        await sequelize.query(
          `INSERT INTO invitations (id, workspace_id, email, role, status, token_hash, invited_by, batch_id, created_at, expires_at, reminded_at, decided_at, accepted_user_id, updated_at, seq)
           VALUES (:invitationId, :workspaceId, :email, :role, :status, :tokenHash, :invitedBy, :batchId, :createdAt, :expiresAt, :remindedAt, :decidedAt, :acceptedUserId, :at, :seq)
           ON CONFLICT (id) DO UPDATE SET role = EXCLUDED.role, status = EXCLUDED.status, token_hash = EXCLUDED.token_hash, expires_at = EXCLUDED.expires_at,
             reminded_at = EXCLUDED.reminded_at, decided_at = EXCLUDED.decided_at, accepted_user_id = EXCLUDED.accepted_user_id, updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq
           WHERE invitations.seq < EXCLUDED.seq`,
          { replacements: { ...s, at }, transaction },
        );
        await appendAudit(sequelize, audit, transaction);
      });
    },

    /** Mails the invitation (or its reminder) with the accept link, at most once per dedupe key. */
    async sendInvitationMail(input: InvitationMailInput): Promise<'sent' | 'skipped'> {
      const [ws] = await sequelize.query<{ name: string }>('SELECT name FROM workspaces WHERE id = :workspaceId', { replacements: { workspaceId: input.workspaceId, invitedBy: input.invitedBy }, type: QueryTypes.SELECT });
      const [inviter] = input.invitedBy
        ? await sequelize.query<{ name: string }>('SELECT name FROM users WHERE id = :invitedBy', { replacements: { workspaceId: input.workspaceId, invitedBy: input.invitedBy }, type: QueryTypes.SELECT })
        : [];
      const workspaceName = ws?.name ?? 'a workspace';
      const link = invitationLink(publicUrl, input.invitationId, invitationToken(key(), input.invitationId, input.tokenNonce));
      const expires = new Date(input.expiresAt).toUTCString();
      const who = inviter ? `${inviter.name} invited you` : 'You are invited';
      try {
        Context.current().heartbeat(input.dedupeKey);
      } catch { /* called outside an activity (tests) */ }
      return sendOnce(input.dedupeKey, {
        to: input.email,
        workspaceId: input.workspaceId,
        subject: input.kind === 'reminder' ? `Reminder: your invitation to ${workspaceName} expires soon` : `You are invited to join ${workspaceName} on mpdp`,
        ...renderMail({
          workspaceName,
          greeting: 'Hello,',
          paragraphs: [
            `${who} to join ${workspaceName} on mpdp, the mini program development platform, as ${roleWords[input.role]}.`,
            input.kind === 'reminder' ? `This invitation is still waiting for you and expires on ${expires}.` : `The invitation expires on ${expires}.`,
          ],
          action: { label: 'Accept the invitation', url: link },
          footer: 'If you did not expect this invitation, ignore this mail or decline it from the link.',
        }),
      });
    },

    /**
     * Creates the account when needed and the membership, in one transaction; idempotent: a
     * repeat finds the account (by address) and the membership in place and answers the same.
     */
    async acceptInvitation(input: AcceptInvitationInput): Promise<{ userId: string; accountCreated: boolean }> {
      return sequelize.transaction(async (transaction) => {
        const [existing] = await sequelize.query<{ id: string }>('SELECT id FROM users WHERE lower(email) = lower(:email) FOR UPDATE', { replacements: { email: input.email }, type: QueryTypes.SELECT, transaction });
        let userId: string;
        let accountCreated = false;
        if (existing) {
          // A retry of our own creation finds the account we made; anyone else's must be proven.
          const ours = input.newAccount?.userId === existing.id;
          if (!ours && input.existingUserId !== existing.id) {
            throw ApplicationFailure.nonRetryable('an account already exists for this address: sign in to accept', InvitationFailure.accountExists);
          }
          userId = existing.id;
          accountCreated = ours;
        } else {
          if (!input.newAccount) throw ApplicationFailure.nonRetryable('no account exists for this address: choose a name and a password', InvitationFailure.accountExists);
          await sequelize.query('INSERT INTO users (id, email, name, password_hash, last_workspace_id) VALUES (:userId, :email, :name, :passwordHash, :workspaceId)', {
            replacements: { ...input.newAccount, email: input.email, workspaceId: input.workspaceId }, transaction,
          });
          userId = input.newAccount.userId;
          accountCreated = true;
        }
        await sequelize.query(
          `INSERT INTO memberships (workspace_id, user_id, role, status) VALUES (:workspaceId, :userId, :role, 'active') ON CONFLICT (workspace_id, user_id) DO NOTHING`,
          { replacements: { workspaceId: input.workspaceId, userId, role: input.role }, transaction },
        );
        await sequelize.query('UPDATE users SET last_workspace_id = :workspaceId WHERE id = :userId', { replacements: { workspaceId: input.workspaceId, userId }, transaction });
        return { userId, accountCreated };
      });
    },
  };
}
