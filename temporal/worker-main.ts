import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { migrate, createSequelize } from '../db/index.js';
import { loadConfig } from '../lib/config.js';
import { createMailer } from '../lib/mailer.js';
import { PackageStore } from '../lib/storage.js';
import { connectClient } from './client.js';
import { createWorker } from './worker.js';

/** Entry point of the worker process: all activities, all workflows, one task queue. */
const config = loadConfig();
Runtime.install({ logger: new DefaultLogger(config.logLevel === 'debug' ? 'DEBUG' : config.logLevel === 'info' ? 'INFO' : 'WARN') });
const address = config.temporal.address ?? `127.0.0.1:${config.temporal.port}`;
await migrate(config.databaseUrl);
const sequelize = createSequelize(config.databaseUrl);
const mailer = createMailer(config.smtpUrl, config.mailFrom);
const connection = await NativeConnection.connect({ address });
// The activities' own client: a revocation tells pipelines to withdraw through it.
const temporal = await connectClient(address, config.temporal.namespace);
const worker = await createWorker({
  connection,
  namespace: config.temporal.namespace,
  taskQueue: config.temporal.taskQueue,
  deps: { sequelize, mailer, store: new PackageStore(config.dataDir), publicUrl: config.publicUrl, secretKey: config.secretKey, webhookAllowPrivate: config.webhookAllowPrivate, temporal },
});
console.error(`[worker] polling task queue ${config.temporal.taskQueue} on ${address}`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => worker.shutdown());
await worker.run();
await connection.close();
await temporal.connection.close();
await sequelize.close();
mailer.close();
console.error('[worker] stopped');
