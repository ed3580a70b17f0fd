import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Developer (ISV) authorizations: a developer workspace's grant on some of a merchant's mini
 * programs, within a scope; the revocation report; and preview links, recorded so a revocation
 * can cut the ones an ISV created.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE authorizations (
      id text PRIMARY KEY,                    -- the workflow id is authorization:<id>
      developer_workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      merchant_workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      status text NOT NULL CHECK (status IN ('requested', 'active', 'denied', 'expired', 'withdrawn', 'revoking', 'revoked', 'lapsed')),
      requested_mini_program_ids text[] NOT NULL,
      requested_scope text[] NOT NULL,
      -- What was granted (a narrowing of what was requested); empty until approved.
      mini_program_ids text[] NOT NULL DEFAULT '{}',
      scope text[] NOT NULL DEFAULT '{}',
      ends_at timestamptz,
      message text NOT NULL DEFAULT '',
      requested_by text NOT NULL,
      requested_at timestamptz NOT NULL,
      request_expires_at timestamptz,
      decided_by text,
      decided_at timestamptz,
      decision_reason text,
      revoke_trigger text CHECK (revoke_trigger IN ('merchant', 'developer', 'lapse')),
      revoked_by text,
      revoke_reason text,
      revoke_scheduled_at timestamptz,
      revoked_at timestamptz,
      updated_at timestamptz NOT NULL,
      seq integer NOT NULL
    );
    -- The access check of every request an ISV member makes on a merchant's mini program.
    CREATE INDEX authorizations_access_idx ON authorizations (merchant_workspace_id, developer_workspace_id) WHERE status = 'active';
    CREATE INDEX authorizations_merchant_idx ON authorizations (merchant_workspace_id, requested_at DESC, id DESC);
    CREATE INDEX authorizations_developer_idx ON authorizations (developer_workspace_id, requested_at DESC, id DESC);

    -- What a revocation cut off, item by item, written in the same transaction as the cut: a step
    -- that crashed half-way and ran again reports every item once.
    CREATE TABLE revocation_items (
      authorization_id text NOT NULL REFERENCES authorizations(id) ON DELETE CASCADE,
      kind text NOT NULL CHECK (kind IN ('withdrawn', 'left_running', 'tester_removed', 'preview_link_revoked', 'access_cut', 'mailed')),
      item_id text NOT NULL,
      detail jsonb NOT NULL DEFAULT '{}',
      at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (authorization_id, kind, item_id)
    );
    CREATE TABLE revocation_reports (
      authorization_id text PRIMARY KEY REFERENCES authorizations(id) ON DELETE CASCADE,
      report jsonb NOT NULL,
      started_at timestamptz NOT NULL,
      completed_at timestamptz
    );

    CREATE TABLE preview_links (
      id text PRIMARY KEY,
      token_hash text NOT NULL UNIQUE,
      workspace_id text NOT NULL,
      mini_program_id text NOT NULL,
      version_id text NOT NULL,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      revoked_at timestamptz
    );
    CREATE INDEX preview_links_creator_idx ON preview_links (mini_program_id, created_by) WHERE revoked_at IS NULL;
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query('DROP TABLE IF EXISTS preview_links, revocation_reports, revocation_items, authorizations');
};
