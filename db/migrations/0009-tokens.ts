import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * Personal access tokens get an optional expiry (refused after it) and a display prefix
 * (`mpdp_pat_ab12cd`), so the console can tell tokens apart without ever showing one again.
 * Tokens made before this migration have no prefix: the console shows their name only.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz, ADD COLUMN token_prefix text;
    CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, created_at DESC);
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    DROP INDEX IF EXISTS api_tokens_user_idx;
    ALTER TABLE api_tokens DROP COLUMN expires_at, DROP COLUMN token_prefix;
  `);
};
