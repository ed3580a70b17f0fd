import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * The runtime side: launches and crashes that host apps report, counted per mini program,
 * version and minute (upserted with increments), which the rollout health check sums over a
 * stage. Until the analytics work replaces it, this is the only store of runtime reports.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    CREATE TABLE runtime_counts (
      mini_program_id text NOT NULL REFERENCES mini_programs(id) ON DELETE CASCADE,
      version_id text NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
      minute timestamptz NOT NULL CHECK (mod(extract(epoch FROM minute), 60) = 0),
      launches bigint NOT NULL DEFAULT 0 CHECK (launches >= 0),
      crashes bigint NOT NULL DEFAULT 0 CHECK (crashes >= 0),
      PRIMARY KEY (mini_program_id, version_id, minute)
    );
    -- The health check sums one version's rows since a stage started: the primary key serves it.
    -- Package downloads check that a sha256 belongs to a version.
    CREATE INDEX IF NOT EXISTS versions_package_sha256_idx ON versions (package_sha256);
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query('DROP TABLE IF EXISTS runtime_counts; DROP INDEX IF EXISTS versions_package_sha256_idx');
};
