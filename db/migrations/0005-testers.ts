import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/** (Filled in by issue 3.) */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  void sequelize;
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  void sequelize;
};
