import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findOrBuildTemporal } from '../temporal/binary.js';
import { startDevServer } from '../temporal/dev-server.js';
import { freePort, percentile } from './harness.js';
Runtime.install({ logger: new DefaultLogger('WARN') });
const port = await freePort();
const srv = await startDevServer({ binary: findOrBuildTemporal(), dataDir: mkdtempSync(path.join(os.tmpdir(), 'p-')), port, uiPort: 0, namespace: 'default', persistent: process.env.PERSIST === '1', ui: false });
const nc = await NativeConnection.connect({ address: `127.0.0.1:${port}` });
const client = new Client({ connection: await Connection.connect({ address: `127.0.0.1:${port}` }) });
const worker = await Worker.create({ connection: nc, taskQueue: 'p', workflowsPath: fileURLToPath(new URL('./probe-wf.ts', import.meta.url)), activities: { async noop() {} } });
const run = worker.run();
for (const wf of ['wfA', 'wfB', 'wfC']) {
  const h = await client.workflow.start(wf, { taskQueue: 'p', workflowId: `${wf}-${Date.now()}` });
  const ts: number[] = [];
  for (let i = 0; i < 60; i++) {
    const t = performance.now();
    await h.executeUpdate('u', { args: [i] });
    ts.push(performance.now() - t);
  }
  console.log(wf, 'median', percentile(ts.slice(10), 50).toFixed(2), 'p90', percentile(ts.slice(10), 90).toFixed(2));
  await h.terminate();
}
worker.shutdown(); await run; srv.kill();
