import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/** (placeholder: filled in by the issue-6 work) */
export const up: MigrationFn<Sequelize> = async () => {};

export const down: MigrationFn<Sequelize> = async () => {};
