import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Service email preference and terms of service (issue 6).
 * - workspace_mail_settings: the sender name and reply-to of the workspace's mail (the address
 *   itself stays MAIL_FROM, so SPF/DKIM of the platform's domain keep working).
 * - notification_preferences: per user and workspace, the notification kinds they turned off
 *   (no row = every kind on).
 * - mail_log learns the workspace and kind of a mail; status 'suppressed' = not sent because the
 *   recipient opted out.
 * - terms_versions: versioned terms of service per workspace (the highest version is current).
 * - terms_acceptances: who accepted which version, when, with which user agent. Its primary key
 *   (workspace, user, version) is the one index the API's write gate looks up.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE workspace_mail_settings (
      workspace_id text PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
      sender_name text CHECK (sender_name IS NULL OR (length(sender_name) BETWEEN 1 AND 80 AND sender_name !~ '[\\r\\n<>]')),
      reply_to text CHECK (reply_to IS NULL OR length(reply_to) <= 254),
      updated_by text REFERENCES users(id) ON DELETE SET NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE notification_preferences (
      user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      muted text[] NOT NULL DEFAULT '{}' CHECK (muted <@ ARRAY['review_requests', 'decisions', 'rollouts', 'halts', 'authorizations']::text[]),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (user_id, workspace_id)
    );
    ALTER TABLE mail_log ADD COLUMN workspace_id text, ADD COLUMN kind text;
    CREATE TABLE terms_versions (
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      version integer NOT NULL CHECK (version > 0),
      title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
      body text NOT NULL CHECK (length(body) BETWEEN 1 AND 50000),
      published_by text REFERENCES users(id) ON DELETE SET NULL,
      published_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (workspace_id, version)
    );
    CREATE TABLE terms_acceptances (
      workspace_id text NOT NULL,
      version integer NOT NULL,
      user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      accepted_at timestamptz NOT NULL DEFAULT now(),
      user_agent text,
      PRIMARY KEY (workspace_id, user_id, version),
      FOREIGN KEY (workspace_id, version) REFERENCES terms_versions(workspace_id, version) ON DELETE CASCADE
    );
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    DROP TABLE IF EXISTS terms_acceptances, terms_versions, notification_preferences, workspace_mail_settings;
    ALTER TABLE mail_log DROP COLUMN IF EXISTS workspace_id, DROP COLUMN IF EXISTS kind;
  `);
};
