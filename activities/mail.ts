import type { Sequelize } from 'sequelize';
import type { Mailer } from '../lib/mailer.js';

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html?: string;
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

/**
 * Sends each logical mail at most once: the key (minted in the workflow, per step and recipient)
 * is recorded before sending and marked sent after, so an activity retried after a successful
 * send does not send again.
 */
export function createOutbox(sequelize: Sequelize, mailer: Mailer) {
  return async function sendOnce(dedupeKey: string, mail: OutgoingMail): Promise<'sent' | 'skipped'> {
    const [rows] = await sequelize.query(
      `INSERT INTO mail_log (dedupe_key, recipient, subject) VALUES (:dedupeKey, :to, :subject)
       ON CONFLICT (dedupe_key) DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key RETURNING status`,
      { replacements: { dedupeKey, to: mail.to, subject: mail.subject } },
    );
    if ((rows as { status: string }[])[0]?.status === 'sent') return 'skipped';
    const { messageId } = await mailer.send({ ...mail, messageId: `<${dedupeKey.replace(/[^a-zA-Z0-9._-]/g, '.')}@mpdp>` });
    await sequelize.query(`UPDATE mail_log SET status = 'sent', sent_at = now(), message_id = :messageId WHERE dedupe_key = :dedupeKey`, { replacements: { dedupeKey, messageId } });
    return 'sent';
  };
}
