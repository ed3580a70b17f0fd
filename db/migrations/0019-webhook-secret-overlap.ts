import type { MigrationFn } from 'umzug';
import type { Sequelize } from 'sequelize';

/**
 * After a secret rotation the previous secret keeps signing (a second v1 in X-Mpdp-Signature)
 * until it expires, so receivers can switch without losing deliveries.
 */
export const up: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query(`
    ALTER TABLE webhooks ADD COLUMN previous_secret_sealed text, ADD COLUMN previous_secret_expires_at timestamptz;
  `);
};

export const down: MigrationFn<Sequelize> = async ({ context: sequelize }) => {
  await sequelize.query('ALTER TABLE webhooks DROP COLUMN IF EXISTS previous_secret_sealed, DROP COLUMN IF EXISTS previous_secret_expires_at');
};
