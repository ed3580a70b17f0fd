import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE users (
      id text PRIMARY KEY,
      email text NOT NULL UNIQUE,
      name text NOT NULL,
      password_hash text NOT NULL,
      is_operator boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE sessions (
      id_hash text PRIMARY KEY,
      user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      csrf_token text NOT NULL,
      last_workspace_id text,
      user_agent text,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL
    );
    CREATE INDEX sessions_user_idx ON sessions(user_id);
    CREATE TABLE api_tokens (
      id text PRIMARY KEY,
      user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      name text NOT NULL,
      token_hash text NOT NULL UNIQUE,
      last_used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    );
    CREATE TABLE workspaces (
      id text PRIMARY KEY,
      name text NOT NULL,
      code text NOT NULL UNIQUE,
      type text NOT NULL DEFAULT 'merchant' CHECK (type IN ('merchant', 'developer')),
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE memberships (
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      role text NOT NULL CHECK (role IN ('admin', 'reviewer', 'developer')),
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (workspace_id, user_id)
    );
    CREATE INDEX memberships_user_idx ON memberships(user_id);
    CREATE TABLE mini_programs (
      id text PRIMARY KEY,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      description text NOT NULL DEFAULT '',
      category text NOT NULL DEFAULT 'other',
      icon text,
      status text NOT NULL,
      live_version_id text,
      live_version text,
      active_version_id text,
      version_count integer NOT NULL DEFAULT 0,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      seq integer NOT NULL
    );
    CREATE INDEX mini_programs_ws_idx ON mini_programs(workspace_id, created_at DESC, id DESC);
    CREATE TABLE versions (
      id text PRIMARY KEY,
      mini_program_id text NOT NULL REFERENCES mini_programs(id) ON DELETE CASCADE,
      workspace_id text NOT NULL,
      version text NOT NULL,
      notes text NOT NULL DEFAULT '',
      status text NOT NULL,
      package_sha256 text NOT NULL,
      package_size integer NOT NULL,
      page_count integer NOT NULL,
      created_by text NOT NULL,
      submitted_by text,
      submitted_at timestamptz,
      decided_by text,
      decision_comment text,
      released_at timestamptz,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      seq integer NOT NULL,
      UNIQUE (mini_program_id, version)
    );
    CREATE INDEX versions_mp_idx ON versions(mini_program_id, created_at DESC);
    CREATE TABLE audit_log (
      id bigserial PRIMARY KEY,
      dedupe_key text NOT NULL UNIQUE,
      workspace_id text NOT NULL,
      subject_type text NOT NULL,
      subject_id text NOT NULL,
      actor_id text,
      action text NOT NULL,
      from_state text,
      to_state text,
      comment text,
      at timestamptz NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX audit_subject_idx ON audit_log(subject_type, subject_id, at);
    CREATE INDEX audit_ws_idx ON audit_log(workspace_id, at DESC);
    -- Append-only: rows are never changed or removed.
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
    CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
    CREATE TABLE mail_log (
      dedupe_key text PRIMARY KEY,
      recipient text NOT NULL,
      subject text NOT NULL,
      status text NOT NULL DEFAULT 'sending',
      message_id text,
      created_at timestamptz NOT NULL DEFAULT now(),
      sent_at timestamptz
    );
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`DROP TABLE IF EXISTS mail_log, audit_log, versions, mini_programs, memberships, workspaces, api_tokens, sessions, users CASCADE; DROP FUNCTION IF EXISTS audit_log_append_only`);
};
