import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findOrBuildTemporal } from '../temporal/binary.js';
import { lowLatencyDynamicConfig, startDevServer } from '../temporal/dev-server.js';
import { echoUpdate } from './dispatch-workflows.js';
import { fmt, freePort, percentile } from './harness.js';

/**
 * Task dispatch latency of the dev server with its default dynamic config and with the settings
 * mpdp starts it with: a bare Update, and an Update that waits for one activity.
 */
Runtime.install({ logger: new DefaultLogger('WARN') });
const n = 50;
for (const [label, dynamicConfig] of [['default server settings', []], ['mpdp settings', lowLatencyDynamicConfig]] as const) {
  const port = await freePort();
  const server = await startDevServer({
    binary: findOrBuildTemporal(), dataDir: mkdtempSync(path.join(os.tmpdir(), 'mpdp-dispatch-')), port, uiPort: 0, namespace: 'default', persistent: false, ui: false, dynamicConfig: [...dynamicConfig],
  });
  const nativeConnection = await NativeConnection.connect({ address: `127.0.0.1:${port}` });
  const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
  const client = new Client({ connection });
  const worker = await Worker.create({
    connection: nativeConnection, taskQueue: 'dispatch', workflowsPath: fileURLToPath(new URL('./dispatch-workflows.ts', import.meta.url)), activities: { async noop() {} },
  });
  const running = worker.run();
  const results: string[] = [];
  for (const wf of ['bareEcho', 'echoAfterActivity']) {
    const h = await client.workflow.start(wf, { taskQueue: 'dispatch', workflowId: `${wf}-${Date.now()}` });
    const ts: number[] = [];
    for (let i = 0; i < n + 10; i++) {
      const t = performance.now();
      await h.executeUpdate(echoUpdate, { args: [i] });
      if (i >= 10) ts.push(performance.now() - t);
    }
    results.push(`${wf} median ${fmt(percentile(ts, 50))} p99 ${fmt(percentile(ts, 99))}`);
    await h.terminate();
  }
  console.log(`${label.padEnd(24)} ${results.join('   ')}`);
  worker.shutdown();
  await running;
  await nativeConnection.close();
  await connection.close();
  server.kill('SIGTERM');
}
