import { ApplicationFailure, Context } from '@temporalio/activity';
import { QueryTypes } from 'sequelize';
import type { ActivityDeps } from './index.js';
import { createOutbox, renderMail } from './mail.js';
import type { FeedbackReplyMailInput, FeedbackReplyOutcome } from '../workflows/contracts/feedback.js';

const categoryWords: Record<string, string> = { bug: 'bug report', idea: 'idea', question: 'question', other: 'feedback' };

function heartbeat() {
  try {
    Context.current().heartbeat();
  } catch {
    /* not in an activity context (called directly in a test) */
  }
}

/** Activities of the feedbackReply workflow: the reply's mail (once per dedupe key) and its outcome. */
export function createFeedbackActivities({ sequelize, mailer, publicUrl }: ActivityDeps) {
  const sendOnce = createOutbox(sequelize, mailer);

  return {
    /**
     * Mails the reply to the address the feedback came from. Every attempt is counted on the reply
     * row, and a failure's message kept there (the operator sees "retrying"), then thrown so
     * Temporal retries it; the outbox's dedupe key keeps a retry after a successful send from mailing twice.
     */
    async sendFeedbackReplyMail(input: FeedbackReplyMailInput): Promise<'sent' | 'skipped'> {
      heartbeat();
      const [row] = await sequelize.query<{ email: string; name: string; category: string; fb_text: string; fb_at: Date; reply_text: string; author_name: string; workspace_name: string | null }>(
        `UPDATE feedback_replies r SET attempts = attempts + 1 FROM feedback f LEFT JOIN workspaces w ON w.id = f.workspace_id
         WHERE r.id = :replyId AND f.id = r.feedback_id
         RETURNING f.email, f.name, f.category, f.text AS fb_text, f.created_at AS fb_at, r.text AS reply_text, r.author_name, w.name AS workspace_name`,
        { replacements: { replyId: input.replyId }, type: QueryTypes.SELECT },
      );
      if (!row) throw ApplicationFailure.nonRetryable(`Reply ${input.replyId} not found`, 'feedback_reply_gone');
      const excerpt = row.fb_text.length > 300 ? `${row.fb_text.slice(0, 300)}…` : row.fb_text;
      const what = categoryWords[row.category] ?? 'feedback';
      try {
        const result = await sendOnce(input.dedupeKey, {
          to: row.email,
          subject: `Re: your ${what} to mpdp`,
          ...renderMail({
            workspaceName: row.workspace_name,
            greeting: `Hello ${row.name},`,
            paragraphs: [
              `${row.author_name} of the mpdp team replied to the ${what} you sent on ${new Date(row.fb_at).toISOString().slice(0, 10)}:`,
              ...row.reply_text.split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean),
              `You wrote: “${excerpt}”`,
            ],
            action: { label: 'See your feedback', url: `${publicUrl}/account/feedback` },
            footer: 'You get this mail because you sent feedback from the mpdp console.',
          }),
        });
        await sequelize.query(`UPDATE feedback_replies SET mail_status = 'sent', sent_at = COALESCE(sent_at, now()), last_error = NULL WHERE id = :replyId`, { replacements: { replyId: input.replyId } });
        return result;
      } catch (err) {
        await sequelize.query('UPDATE feedback_replies SET last_error = :error WHERE id = :replyId', { replacements: { replyId: input.replyId, error: String((err as Error).message ?? err).slice(0, 500) } });
        throw err;
      }
    },

    /** The workflow's last word: sent, or failed after its retry budget (the last mail error is kept). */
    async recordFeedbackReplyOutcome(o: FeedbackReplyOutcome): Promise<void> {
      await sequelize.query(
        `UPDATE feedback_replies SET mail_status = :status,
           sent_at = CASE WHEN :status = 'sent' THEN COALESCE(sent_at, :at::timestamptz) ELSE sent_at END,
           last_error = CASE WHEN :status = 'sent' THEN NULL ELSE COALESCE(last_error, :error) END
         WHERE id = :replyId`,
        { replacements: { replyId: o.replyId, status: o.status, at: o.at, error: o.error } },
      );
    },
  };
}
