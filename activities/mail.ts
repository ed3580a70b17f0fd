import { QueryTypes, type Sequelize } from 'sequelize';
import type { Mailer } from '../lib/mailer.js';

/** The notification kinds a member can turn off, per workspace (everything else is always sent). */
export const notificationKinds = ['review_requests', 'decisions', 'rollouts', 'halts', 'authorizations', 'crashes'] as const;
export type NotificationKind = (typeof notificationKinds)[number];

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** The workspace the mail is about: its sender name and reply-to apply. */
  workspaceId?: string | null;
  /** The recipient (opt-outs are looked up by this id, else by the address). */
  userId?: string | null;
  /** A notification: not sent when the recipient turned this kind off in the workspace. Omitted for mail that is not a notification (invitations, password reset, replies). */
  kind?: NotificationKind | null;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

/**
 * One mail layout for every message: a greeting, paragraphs, an optional button, the workspace's
 * name in the header. Returns matching text and HTML parts.
 */
export function renderMail(o: { workspaceName?: string | null; greeting: string; paragraphs: string[]; action?: { label: string; url: string }; footer?: string }): { text: string; html: string } {
  const text = [o.greeting, ...o.paragraphs, ...(o.action ? [`${o.action.label}: ${o.action.url}`] : []), `— mpdp${o.workspaceName ? ` · ${o.workspaceName}` : ''}`, ...(o.footer ? [o.footer] : [])].join('\n\n');
  const button = o.action
    ? `<p style="margin:24px 0"><a href="${escapeHtml(o.action.url)}" style="background:#2f6fed;color:#fff;text-decoration:none;padding:10px 18px;border-radius:6px;font-weight:600">${escapeHtml(o.action.label)}</a></p>
       <p style="color:#667085;font-size:12px">Or open this link: <a href="${escapeHtml(o.action.url)}">${escapeHtml(o.action.url)}</a></p>`
    : '';
  const html = `<!doctype html><html><body style="margin:0;background:#f4f6fa;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1d2939">
<div style="max-width:560px;margin:24px auto;background:#fff;border:1px solid #e4e7ec;border-radius:10px;overflow:hidden">
<div style="padding:16px 24px;border-bottom:1px solid #e4e7ec;font-weight:700">mpdp${o.workspaceName ? ` <span style="color:#667085;font-weight:400">· ${escapeHtml(o.workspaceName)}</span>` : ''}</div>
<div style="padding:8px 24px 24px"><p>${escapeHtml(o.greeting)}</p>${o.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('')}${button}</div>
${o.footer ? `<div style="padding:12px 24px;border-top:1px solid #e4e7ec;color:#667085;font-size:12px">${escapeHtml(o.footer)}</div>` : ''}
</div></body></html>`;
  return { text, html };
}

interface MailPolicy {
  sender_name: string | null;
  reply_to: string | null;
  muted: boolean;
}

/**
 * Sends each logical mail at most once: the key (minted in the workflow, per step and recipient)
 * is recorded before sending and marked sent after, so an activity retried after a successful
 * send does not send again. With a workspace, its sender name and reply-to apply; with a kind,
 * a recipient who turned that kind off gets nothing (mail_log status 'suppressed', answer 'suppressed').
 */
export function createDetailedOutbox(sequelize: Sequelize, mailer: Mailer) {
  return async function sendOnceDetailed(dedupeKey: string, mail: OutgoingMail): Promise<'sent' | 'skipped' | 'suppressed'> {
    const { workspaceId = null, userId = null, kind = null, ...message } = mail;
    let policy: MailPolicy | undefined;
    if (workspaceId) {
      // One query: the workspace's sender settings and whether the recipient muted this kind.
      [policy] = await sequelize.query<MailPolicy>(
        `SELECT s.sender_name, s.reply_to,
           COALESCE((SELECT :kind = ANY(p.muted) FROM notification_preferences p
                     WHERE p.workspace_id = :workspaceId AND :kind IS NOT NULL
                       AND p.user_id = COALESCE(:userId, (SELECT u.id FROM users u WHERE lower(u.email) = lower(:to)))), false) AS muted
         FROM (SELECT 1) one LEFT JOIN workspace_mail_settings s ON s.workspace_id = :workspaceId`,
        { replacements: { workspaceId, userId, kind, to: message.to }, type: QueryTypes.SELECT },
      );
    }
    if (policy?.muted) {
      const [rows] = await sequelize.query(
        `INSERT INTO mail_log (dedupe_key, recipient, subject, status, workspace_id, kind) VALUES (:dedupeKey, :to, :subject, 'suppressed', :workspaceId, :kind)
         ON CONFLICT (dedupe_key) DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key RETURNING status`,
        { replacements: { dedupeKey, to: message.to, subject: message.subject, workspaceId, kind } },
      );
      // A mail sent before the opt-out (and retried now) stays 'sent'.
      return (rows as { status: string }[])[0]?.status === 'sent' ? 'skipped' : 'suppressed';
    }
    const [rows] = await sequelize.query(
      `INSERT INTO mail_log (dedupe_key, recipient, subject, workspace_id, kind) VALUES (:dedupeKey, :to, :subject, :workspaceId, :kind)
       ON CONFLICT (dedupe_key) DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key RETURNING status`,
      { replacements: { dedupeKey, to: message.to, subject: message.subject, workspaceId, kind } },
    );
    const status = (rows as { status: string }[])[0]?.status;
    if (status === 'sent') return 'skipped';
    if (status === 'suppressed') return 'suppressed';
    const { messageId } = await mailer.send({
      ...message, messageId: `<${dedupeKey.replace(/[^a-zA-Z0-9._-]/g, '.')}@mpdp>`,
      ...(policy?.sender_name ? { fromName: policy.sender_name } : {}), ...(policy?.reply_to ? { replyTo: policy.reply_to } : {}),
    });
    await sequelize.query(`UPDATE mail_log SET status = 'sent', sent_at = now(), message_id = :messageId WHERE dedupe_key = :dedupeKey`, { replacements: { dedupeKey, messageId } });
    return 'sent';
  };
}

/** The outbox as every mail activity uses it: 'skipped' covers both "sent before" and "recipient opted out". */
export function createOutbox(sequelize: Sequelize, mailer: Mailer) {
  const sendOnceDetailed = createDetailedOutbox(sequelize, mailer);
  return async function sendOnce(dedupeKey: string, mail: OutgoingMail): Promise<'sent' | 'skipped'> {
    return (await sendOnceDetailed(dedupeKey, mail)) === 'sent' ? 'sent' : 'skipped';
  };
}
