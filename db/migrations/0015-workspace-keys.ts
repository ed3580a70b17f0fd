import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * The workspace's general info (company, region, contacts, description; name and code exist) and
 * its API keys for server-to-server calls: only the sha256 of a key's secret is kept, with a short
 * prefix to tell keys apart in lists.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    ALTER TABLE workspaces
      ADD COLUMN company text NOT NULL DEFAULT '',
      ADD COLUMN region text NOT NULL DEFAULT '',
      ADD COLUMN description text NOT NULL DEFAULT '',
      -- [{name, email, phone?, role?}], at most 10 (checked by the API and here).
      ADD COLUMN contacts jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(contacts) = 'array' AND jsonb_array_length(contacts) <= 10),
      ADD COLUMN updated_at timestamptz,
      ADD COLUMN updated_by text;

    CREATE TABLE workspace_api_keys (
      id text PRIMARY KEY,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name text NOT NULL,
      -- 'mpdp_wk_<id>_' plus the first 4 characters of the secret: shown in lists.
      prefix text NOT NULL,
      secret_hash text NOT NULL UNIQUE,
      scopes text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'upload', 'submit', 'release']::text[]),
      expires_at timestamptz,
      last_used_at timestamptz,
      created_by text,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz,
      revoked_by text
    );
    CREATE INDEX workspace_api_keys_ws_idx ON workspace_api_keys (workspace_id, created_at DESC, id DESC);
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    DROP TABLE IF EXISTS workspace_api_keys;
    ALTER TABLE workspaces DROP COLUMN IF EXISTS company, DROP COLUMN IF EXISTS region, DROP COLUMN IF EXISTS description,
      DROP COLUMN IF EXISTS contacts, DROP COLUMN IF EXISTS updated_at, DROP COLUMN IF EXISTS updated_by;
  `);
};
