import { Context } from '@temporalio/activity';
import { QueryTypes } from 'sequelize';
import { createHash, randomBytes } from 'node:crypto';
import type { ApplicationProjection } from '../workflows/contracts/account-application.js';
import { platformAuditScope } from '../workflows/contracts/account-application.js';
import type { ActivityDeps } from './index.js';
import { createOutbox, renderMail } from './mail.js';

function heartbeat(details: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    /* not in an activity context */
  }
}

/** A workspace code from a company name: its letters and digits, upper case, 3 to 10 long. */
export function workspaceCodeBase(company: string): string {
  const base = company.normalize('NFKD').replace(/[^A-Za-z0-9]/g, '').toUpperCase().slice(0, 10);
  return base.length >= 3 ? base : `${base}WS`.padEnd(3, 'X');
}

/** Reset requests per address within this window before further ones are ignored. */
const resetWindowMs = 15 * 60_000;
const resetsPerWindow = 5;

/** Activities of the onboarding workflows: application projections, workspace creation, mails. */
export function createAccountActivities({ sequelize, mailer, publicUrl }: ActivityDeps) {
  const sendOnce = createOutbox(sequelize, mailer);

  async function application(applicationId: string) {
    const [row] = await sequelize.query<{ id: string; company: string; contact_name: string; email: string; intended_use: string; created_at: Date; status: string }>(
      'SELECT id, company, contact_name, email, intended_use, created_at, status FROM account_applications WHERE id = :applicationId',
      { replacements: { applicationId }, type: QueryTypes.SELECT },
    );
    return row ?? null;
  }

  return {
    /** Moves the application row forward and appends the step's audit line; a lower seq changes nothing. */
    async projectApplication(p: ApplicationProjection): Promise<void> {
      await sequelize.transaction(async (transaction) => {
        await sequelize.query(
          `UPDATE account_applications SET status = :status, decided_by = COALESCE(:decidedBy, decided_by), reason = COALESCE(:reason, reason),
             workspace_id = COALESCE(:workspaceId, workspace_id), invitation_id = COALESCE(:invitationId, invitation_id),
             reminded_at = COALESCE(:remindedAt, reminded_at), decided_at = COALESCE(:decidedAt, decided_at), updated_at = :at, seq = :seq
           WHERE id = :applicationId AND seq < :seq`,
          { replacements: { ...p }, transaction },
        );
        await sequelize.query(
          `INSERT INTO audit_log (dedupe_key, workspace_id, subject_type, subject_id, actor_id, action, from_state, to_state, comment, at)
           VALUES (:dedupeKey, :scope, 'application', :applicationId, :actorId, :action, :fromState, :toState, :comment, :at)
           ON CONFLICT (dedupe_key) DO NOTHING`,
          { replacements: { ...p.audit, scope: p.workspaceId ?? platformAuditScope, applicationId: p.applicationId, at: p.at }, transaction },
        );
      });
    },

    /**
     * Creates the approved applicant's workspace, named after the company, with a unique code.
     * Idempotent on the workspace id the workflow minted: a retry returns what the first made.
     */
    async createApplicationWorkspace(input: { workspaceId: string; applicationId: string; company: string }): Promise<{ workspaceId: string; name: string; code: string }> {
      const existing = async () => {
        const [w] = await sequelize.query<{ id: string; name: string; code: string }>('SELECT id, name, code FROM workspaces WHERE id = :workspaceId', { replacements: input, type: QueryTypes.SELECT });
        return w ? { workspaceId: w.id, name: w.name, code: w.code } : null;
      };
      const found = await existing();
      if (found) return found;
      const name = input.company.trim();
      const base = workspaceCodeBase(name);
      for (let n = 1; n < 1000; n++) {
        const code = n === 1 ? base : `${base}${n}`;
        const [rows] = await sequelize.query(
          `INSERT INTO workspaces (id, name, code, type) VALUES (:workspaceId, :name, :code, 'merchant') ON CONFLICT DO NOTHING RETURNING id`,
          { replacements: { workspaceId: input.workspaceId, name, code } },
        );
        if ((rows as unknown[]).length) return { workspaceId: input.workspaceId, name, code };
        // Either the code is taken, or a concurrent attempt of this very activity won the id.
        const raced = await existing();
        if (raced) return raced;
      }
      throw new Error(`no free workspace code for ${base}`);
    },

    /** Mails every platform operator about a new (or still undecided) application, once each. */
    async notifyOperators(input: { dedupeKey: string; applicationId: string; reminder: boolean }): Promise<{ sent: number }> {
      const app = await application(input.applicationId);
      if (!app) return { sent: 0 };
      const operators = await sequelize.query<{ id: string; email: string; name: string }>('SELECT id, email, name FROM users WHERE is_operator ORDER BY id', { type: QueryTypes.SELECT });
      let sent = 0;
      for (const op of operators) {
        heartbeat(op.id);
        const outcome = await sendOnce(`${input.dedupeKey}:${op.id}`, {
          to: op.email,
          subject: `${input.reminder ? '[Reminder] ' : ''}Account application: ${app.company}`,
          ...renderMail({
            greeting: `Hello ${op.name},`,
            paragraphs: [
              input.reminder
                ? `The account application from ${app.company} has waited since ${app.created_at.toISOString().slice(0, 10)} without a decision.`
                : `${app.contact_name} (${app.email}) applied for an account for ${app.company}.`,
              `Intended use: ${app.intended_use}`,
            ],
            action: { label: 'Open the operator inbox', url: `${publicUrl}/operator/applications?id=${encodeURIComponent(app.id)}` },
          }),
        });
        if (outcome === 'sent') sent++;
      }
      return { sent };
    },

    /** Tells the applicant that their application was denied (with the reason) or expired. */
    async notifyApplicant(input: { dedupeKey: string; applicationId: string; outcome: 'denied' | 'expired'; reason: string | null }): Promise<void> {
      const app = await application(input.applicationId);
      if (!app) return;
      await sendOnce(input.dedupeKey, {
        to: app.email,
        subject: input.outcome === 'denied' ? `Your mpdp account application for ${app.company} was not approved` : `Your mpdp account application for ${app.company} expired`,
        ...renderMail({
          greeting: `Hello ${app.contact_name},`,
          paragraphs:
            input.outcome === 'denied'
              ? [`We are sorry: your application for an account for ${app.company} was not approved.`, `Reason: ${input.reason ?? 'none given'}`]
              : [`Your application for an account for ${app.company} expired before anyone could decide on it. You are welcome to apply again.`],
          action: { label: 'Apply again', url: `${publicUrl}/apply` },
        }),
      });
    },

    /**
     * Makes a single-use reset token, stores only its hash and mails the link — or does nothing
     * when no account has the address (the API answered 202 either way). A retry after the mail
     * went out sends nothing more; a retry before it replaces the token.
     */
    async sendPasswordReset(input: { dedupeKey: string; resetId: string; email: string; ttlMs: number }): Promise<{ sent: boolean }> {
      const [user] = await sequelize.query<{ id: string; name: string; email: string }>('SELECT id, name, email FROM users WHERE lower(email) = lower(:email)', { replacements: input, type: QueryTypes.SELECT });
      if (!user) return { sent: false };
      const [mail] = await sequelize.query<{ status: string }>('SELECT status FROM mail_log WHERE dedupe_key = :dedupeKey', { replacements: input, type: QueryTypes.SELECT });
      if (mail?.status === 'sent') return { sent: false };
      const [{ n }] = (await sequelize.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM password_resets WHERE user_id = :userId AND id <> :resetId AND created_at > now() - (:window || ' milliseconds')::interval`,
        { replacements: { userId: user.id, resetId: input.resetId, window: String(resetWindowMs) }, type: QueryTypes.SELECT },
      )) as [{ n: number }];
      // A flood of requests for one address must not become a flood of mail.
      if (n >= resetsPerWindow) return { sent: false };
      const token = randomBytes(32).toString('base64url');
      const tokenHash = createHash('sha256').update(token).digest('hex');
      await sequelize.query(
        `INSERT INTO password_resets (id, token_hash, user_id, email, expires_at) VALUES (:resetId, :tokenHash, :userId, :email, now() + (:ttl || ' milliseconds')::interval)
         ON CONFLICT (id) DO UPDATE SET token_hash = EXCLUDED.token_hash, expires_at = EXCLUDED.expires_at WHERE password_resets.used_at IS NULL`,
        { replacements: { resetId: input.resetId, tokenHash, userId: user.id, email: user.email, ttl: String(input.ttlMs) } },
      );
      const minutes = Math.max(1, Math.round(input.ttlMs / 60_000));
      const outcome = await sendOnce(input.dedupeKey, {
        to: user.email,
        subject: 'Reset your mpdp password',
        ...renderMail({
          greeting: `Hello ${user.name},`,
          paragraphs: [`Someone (hopefully you) asked to reset the password of your mpdp account. The link works once, for ${minutes} minute${minutes === 1 ? '' : 's'}.`],
          action: { label: 'Set a new password', url: `${publicUrl}/reset-password?token=${token}` },
          footer: 'If you did not ask for this, ignore this mail: your password stays as it is.',
        }),
      });
      return { sent: outcome === 'sent' };
    },
  };
}
