import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * The tester whitelist: an address allowed to open preview builds of a workspace's versions,
 * for the whole workspace (mini_program_id NULL) or one mini program. The account is linked by
 * email when it exists, and by a trigger when it signs up (or changes its address) later.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE testers (
      id text PRIMARY KEY,
      workspace_id text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      mini_program_id text REFERENCES mini_programs(id) ON DELETE CASCADE,
      email text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
      user_id text REFERENCES users(id) ON DELETE SET NULL,
      added_by text,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    -- One entry per (workspace, mini program or the whole workspace, address).
    CREATE UNIQUE INDEX testers_scope_email_uq ON testers (workspace_id, (coalesce(mini_program_id, '')), email);
    -- The list: newest first with a keyset cursor, per workspace and per mini program.
    CREATE INDEX testers_ws_list_idx ON testers (workspace_id, created_at DESC, id DESC);
    CREATE INDEX testers_mp_list_idx ON testers (mini_program_id, created_at DESC, id DESC) WHERE mini_program_id IS NOT NULL;
    -- Search by address prefix; the preview check by account.
    CREATE INDEX testers_ws_email_idx ON testers (workspace_id, email text_pattern_ops);
    CREATE INDEX testers_user_idx ON testers (user_id) WHERE user_id IS NOT NULL;
    -- Linking testers to accounts by address, case-insensitively.
    CREATE INDEX IF NOT EXISTS users_lower_email_idx ON users (lower(email));

    CREATE FUNCTION testers_link_account() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE testers SET user_id = NEW.id WHERE email = lower(NEW.email) AND user_id IS DISTINCT FROM NEW.id;
        RETURN NULL;
      END $$;
    CREATE TRIGGER users_link_testers AFTER INSERT OR UPDATE OF email ON users FOR EACH ROW EXECUTE FUNCTION testers_link_account();
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    DROP TRIGGER IF EXISTS users_link_testers ON users;
    DROP FUNCTION IF EXISTS testers_link_account();
    DROP TABLE IF EXISTS testers;
  `);
};
