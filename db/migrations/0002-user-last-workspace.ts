import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/** The chosen workspace belongs to the user, not to one session: a new sign-in lands there too. */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`ALTER TABLE users ADD COLUMN last_workspace_id text`);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`ALTER TABLE users DROP COLUMN last_workspace_id`);
};
