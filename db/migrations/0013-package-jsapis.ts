import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * The JSAPIs each uploaded version uses, found by the package scan (lib/jsapi-scan.ts): one row
 * per call site (`via = 'call'`) or app.json declaration (`via = 'manifest'`). A version uploaded
 * before this migration has no rows and `jsapis_scanned_at` null: it is scanned from its stored
 * package the first time someone needs its usage (submit, the version page).
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE version_jsapis (
      version_id text NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
      api text NOT NULL,
      file text NOT NULL,
      line integer NOT NULL CHECK (line >= 1),
      col integer NOT NULL CHECK (col >= 1),
      via text NOT NULL CHECK (via IN ('call', 'manifest')),
      PRIMARY KEY (version_id, api, file, line, col)
    );
    -- "Which versions use this JSAPI" (the catalog's detail, impact of disabling an API).
    CREATE INDEX version_jsapis_api_idx ON version_jsapis (api, version_id);
    ALTER TABLE versions ADD COLUMN jsapis_scanned_at timestamptz;
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    ALTER TABLE versions DROP COLUMN IF EXISTS jsapis_scanned_at;
    DROP TABLE IF EXISTS version_jsapis;
  `);
};
