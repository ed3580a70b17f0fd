import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Onboarding and sign-in safety: the account applications read model (the AccountApplication
 * workflow is the authority), single-use password reset links, failed sign-ins for rate limiting,
 * and what a user needs to recognise their sessions.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE account_applications (
      id text PRIMARY KEY,
      company text NOT NULL,
      contact_name text NOT NULL,
      email text NOT NULL,
      intended_use text NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
      -- sha256 of the applicant's status link token; the token itself is never stored.
      status_token_hash text NOT NULL,
      decided_by text REFERENCES users(id) ON DELETE SET NULL,
      reason text,
      workspace_id text,
      invitation_id text,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      reminded_at timestamptz,
      decided_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now(),
      seq integer NOT NULL DEFAULT 1
    );
    CREATE INDEX account_applications_status_idx ON account_applications(status, created_at DESC, id DESC);
    CREATE INDEX account_applications_list_idx ON account_applications(created_at DESC, id DESC);

    CREATE TABLE password_resets (
      id text PRIMARY KEY,
      token_hash text UNIQUE,
      user_id text REFERENCES users(id) ON DELETE CASCADE,
      email text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      used_at timestamptz
    );
    CREATE INDEX password_resets_user_idx ON password_resets(user_id, created_at DESC);

    CREATE TABLE login_failures (
      id bigserial PRIMARY KEY,
      email text NOT NULL,
      address text NOT NULL,
      at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX login_failures_email_idx ON login_failures(email, at);
    CREATE INDEX login_failures_address_idx ON login_failures(address, at);

    ALTER TABLE sessions
      ADD COLUMN public_id text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', ''),
      ADD COLUMN ip text,
      ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();
    CREATE UNIQUE INDEX sessions_public_id_idx ON sessions(public_id);
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    ALTER TABLE sessions DROP COLUMN public_id, DROP COLUMN ip, DROP COLUMN last_seen_at;
    DROP TABLE IF EXISTS login_failures, password_resets, account_applications;
  `);
};
