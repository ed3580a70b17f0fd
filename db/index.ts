import { Sequelize, QueryTypes } from 'sequelize';
import pg from 'pg';
import { Umzug, SequelizeStorage } from 'umzug';
import { fileURLToPath } from 'node:url';
import * as m0001 from './migrations/0001-foundation.js';
import * as m0002 from './migrations/0002-user-last-workspace.js';
import * as m0003 from './migrations/0003-accounts.js';
import * as m0004 from './migrations/0004-members.js';
import * as m0005 from './migrations/0005-testers.js';
import * as m0006 from './migrations/0006-release-pipeline.js';
import * as m0007 from './migrations/0007-runtime.js';
import * as m0008 from './migrations/0008-webhooks.js';
import * as m0009 from './migrations/0009-tokens.js';
import * as m0010 from './migrations/0010-authorizations.js';
import * as m0011 from './migrations/0011-jsapis.js';
import * as m0012 from './migrations/0012-features.js';
import * as m0013 from './migrations/0013-package-jsapis.js';
import * as m0014 from './migrations/0014-host-apps.js';
import * as m0015 from './migrations/0015-workspace-keys.js';
import * as m0016 from './migrations/0016-feedback.js';
import * as m0017 from './migrations/0017-branding-domains.js';
import * as m0018 from './migrations/0018-mail-terms.js';
import * as m0019 from './migrations/0019-webhook-secret-overlap.js';
import * as m0020 from './migrations/0020-analytics.js';

export { QueryTypes };

/** Migrations in order. Listed by hand so a bundled or compiled build finds them too. */
const migrations = [
  { name: '0001-foundation', ...m0001 },
  { name: '0002-user-last-workspace', ...m0002 },
  { name: '0003-accounts', ...m0003 },
  { name: '0004-members', ...m0004 },
  { name: '0005-testers', ...m0005 },
  { name: '0006-release-pipeline', ...m0006 },
  { name: '0007-runtime', ...m0007 },
  { name: '0008-webhooks', ...m0008 },
  { name: '0009-tokens', ...m0009 },
  { name: '0010-authorizations', ...m0010 },
  { name: '0011-jsapis', ...m0011 },
  { name: '0012-features', ...m0012 },
  { name: '0013-package-jsapis', ...m0013 },
  { name: '0014-host-apps', ...m0014 },
  { name: '0015-workspace-keys', ...m0015 },
  { name: '0016-feedback', ...m0016 },
  { name: '0017-branding-domains', ...m0017 },
  { name: '0018-mail-terms', ...m0018 },
  { name: '0019-webhook-secret-overlap', ...m0019 },
  { name: '0020-analytics', ...m0020 },
];

export const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));

export function createSequelize(databaseUrl: string, opts: { pool?: number } = {}): Sequelize {
  return new Sequelize(databaseUrl, {
    dialect: 'postgres',
    dialectModule: pg,
    logging: false,
    pool: { max: opts.pool ?? 10, min: 0, idle: 10_000 },
  });
}

/** Creates the database named in the URL when it is missing (local use and tests). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const dbName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[a-zA-Z0-9_]+$/.test(dbName)) throw new Error(`DATABASE_URL: unsupported database name ${JSON.stringify(dbName)}`);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]);
    if (!rowCount) await client.query(`CREATE DATABASE "${dbName}"`);
  } catch (err) {
    // Two processes creating the same database at once: the loser sees 42P04 (duplicate_database).
    if ((err as { code?: string }).code !== '42P04') throw err;
  } finally {
    await client.end();
  }
}

export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const dbName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

export function createMigrator(sequelize: Sequelize) {
  return new Umzug({
    migrations,
    context: sequelize,
    storage: new SequelizeStorage({ sequelize, tableName: 'schema_migrations' }),
    logger: undefined,
  });
}

/** Creates the database when missing and applies pending migrations; returns their names. */
export async function migrate(databaseUrl: string): Promise<string[]> {
  await ensureDatabase(databaseUrl);
  // A pool of one, so the advisory lock and the migrations share a connection: one migrator at a
  // time across processes (api and worker may start at once).
  const sequelize = createSequelize(databaseUrl, { pool: 1 });
  try {
    await sequelize.query('SELECT pg_advisory_lock(727001)');
    try {
      const done = await createMigrator(sequelize).up();
      return done.map((m) => m.name);
    } finally {
      await sequelize.query('SELECT pg_advisory_unlock(727001)');
    }
  } finally {
    await sequelize.close();
  }
}
