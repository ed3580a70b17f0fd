import { serve } from '@hono/node-server';
import pg from 'pg';
import { fileURLToPath } from 'node:url';
import { createSequelize, migrate } from '../db/index.js';
import { ensureOperator } from '../db/seed.js';
import { loadConfig } from '../lib/config.js';
import { PackageStore } from '../lib/storage.js';
import { connectClient } from '../temporal/client.js';
import { createApp } from './app.js';
import { ChangeHub } from './events.js';

/** Entry point of the api process: the HTTP API, the console's static files and SSE. */
const config = loadConfig();
await migrate(config.databaseUrl);
const sequelize = createSequelize(config.databaseUrl, { pool: 20 });
// The platform operator from the settings, created or updated at every start (no default password).
if (config.operator.email && config.operator.password) {
  const op = await ensureOperator(sequelize, { email: config.operator.email, password: config.operator.password });
  console.error(`[api] platform operator ${config.operator.email} ${op.created ? 'created' : 'updated'}`);
}
const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 10 });
const temporal = await connectClient(config.temporal.address ?? `127.0.0.1:${config.temporal.port}`, config.temporal.namespace);
const hub = new ChangeHub(config.databaseUrl);
await hub.start();
const { app, ingest } = createApp({ config, sequelize, pool, temporal, store: new PackageStore(config.dataDir), hub, webRoot: fileURLToPath(new URL('../web/build', import.meta.url)) });
const server = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, (info) => console.error(`[api] listening on http://${config.host}:${info.port}`));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close();
    // Events accepted but not yet written are flushed before the pool closes.
    void ingest.close().catch((err) => console.error('[api] final analytics flush failed', err)).finally(() => Promise.allSettled([hub.close(), sequelize.close(), pool.end(), temporal.connection.close()]).then(() => process.exit(0)));
  });
}
