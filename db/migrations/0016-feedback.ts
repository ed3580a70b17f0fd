import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Feedback to the console: what a member sent (category, text, the page, an optional screenshot
 * kept in the package store by its sha256), its status in the operators' inbox, and the replies
 * operators mail back (each sent by a `feedbackReply` workflow, whose progress the row shows).
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE feedback (
      id text PRIMARY KEY,
      workspace_id text REFERENCES workspaces(id) ON DELETE SET NULL,
      user_id text REFERENCES users(id) ON DELETE SET NULL,
      -- Kept with the feedback: the reply goes to the address the submitter had when sending.
      email text NOT NULL,
      name text NOT NULL,
      category text NOT NULL CHECK (category IN ('bug', 'idea', 'question', 'other')),
      text text NOT NULL,
      page text NOT NULL DEFAULT '',
      user_agent text,
      screenshot_sha256 text,
      screenshot_type text,
      screenshot_size integer,
      screenshot_width integer,
      screenshot_height integer,
      status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'in_progress', 'done')),
      status_changed_by text,
      status_changed_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX feedback_inbox_idx ON feedback (created_at DESC, id DESC);
    CREATE INDEX feedback_status_idx ON feedback (status, created_at DESC, id DESC);
    CREATE INDEX feedback_user_idx ON feedback (user_id, created_at DESC, id DESC);

    CREATE TABLE feedback_replies (
      id text PRIMARY KEY,
      feedback_id text NOT NULL REFERENCES feedback(id) ON DELETE CASCADE,
      author_id text,
      author_name text NOT NULL,
      text text NOT NULL,
      -- queued: the workflow is sending it (retrying while the mail server fails); sent; failed: gave up.
      mail_status text NOT NULL DEFAULT 'queued' CHECK (mail_status IN ('queued', 'sent', 'failed')),
      attempts integer NOT NULL DEFAULT 0,
      last_error text,
      sent_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX feedback_replies_feedback_idx ON feedback_replies (feedback_id, created_at, id);
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query('DROP TABLE IF EXISTS feedback_replies, feedback');
};
