import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Members and roles: the invitations read model (projected by the memberInvitation workflow),
 * blockable memberships, and per-mini-program roles.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE invitations (
      id text PRIMARY KEY,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      email text NOT NULL,
      role text NOT NULL CHECK (role IN ('admin', 'reviewer', 'developer')),
      status text NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'withdrawn', 'expired')),
      -- sha256 of the only valid token; NULL until the workflow minted it.
      token_hash text,
      invited_by text,
      batch_id text,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      reminded_at timestamptz,
      decided_at timestamptz,
      accepted_user_id text,
      updated_at timestamptz NOT NULL DEFAULT now(),
      -- Rises with every projection; a late write never moves a row backwards.
      seq integer NOT NULL DEFAULT 0
    );
    CREATE INDEX invitations_ws_idx ON invitations(workspace_id, status, created_at DESC, id DESC);
    CREATE INDEX invitations_batch_idx ON invitations(batch_id) WHERE batch_id IS NOT NULL;
    -- At most one pending invitation per address and workspace, even under concurrent requests.
    CREATE UNIQUE INDEX invitations_pending_email_idx ON invitations(workspace_id, lower(email)) WHERE status = 'pending';

    ALTER TABLE memberships ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked'));
    ALTER TABLE memberships ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
    CREATE INDEX memberships_ws_role_idx ON memberships(workspace_id, role, status);

    CREATE TABLE mini_program_roles (
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      mini_program_id text NOT NULL,
      user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      role text NOT NULL CHECK (role IN ('owner', 'developer')),
      granted_by text,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (mini_program_id, user_id)
    );
    CREATE INDEX mini_program_roles_user_idx ON mini_program_roles(workspace_id, user_id);
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    DROP TABLE IF EXISTS mini_program_roles, invitations;
    DROP INDEX IF EXISTS memberships_ws_role_idx;
    ALTER TABLE memberships DROP COLUMN IF EXISTS status, DROP COLUMN IF EXISTS updated_at;
  `);
};
