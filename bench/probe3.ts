import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findOrBuildTemporal } from '../temporal/binary.js';
import { startDevServer } from '../temporal/dev-server.js';
import { workflowBundle } from '../temporal/worker.js';
import { miniProgramWorkflowId, submitUpdate, syncUpdate, uploadVersionUpdate } from '../workflows/contracts/mini-program.js';
import { approveUpdate, releaseWorkflowId, releaseStatusQuery } from '../workflows/contracts/release.js';
import { freePort, percentile } from './harness.js';
Runtime.install({ logger: new DefaultLogger('WARN') });
const port = await freePort();
const srv = await startDevServer({ binary: findOrBuildTemporal(), dataDir: mkdtempSync(path.join(os.tmpdir(), 'p-')), port, uiPort: 0, namespace: 'default', persistent: false, ui: false });
const nc = await NativeConnection.connect({ address: `127.0.0.1:${port}` });
const client = new Client({ connection: await Connection.connect({ address: `127.0.0.1:${port}` }) });
const noop = async () => undefined;
const worker = await Worker.create({ connection: nc, taskQueue: 'p', maxEagerActivityReservationsPerWorkflowTask: Number(process.env.EAGER ?? 3), workflowBundle: await workflowBundle(), activities: {
  projectMiniProgram: noop, projectNewVersion: noop, projectVersionStatus: noop, notifySubmitter: noop, notifyReviewers: async () => ({ sent: 0, skipped: 0 }), validateStoredPackage: async () => ({ pageCount: 1 }),
} });
const run = worker.run();
const ids: string[] = [];
for (let i = 0; i < 40; i++) {
  const mp = `mp_${Date.now()}_${i}`;
  const h = await client.workflow.start('miniProgramEntity', { taskQueue: 'p', workflowId: miniProgramWorkflowId(mp), args: [{ miniProgramId: mp, workspaceId: 'ws', name: 'x', description: '', category: 'other', icon: null, createdBy: 'u', createdAt: new Date().toISOString(), releaseConfig: { reviewReminderMs: 0 } }] });
  await h.executeUpdate(syncUpdate, { args: [] });
  const v = `ver_${mp}`;
  await h.executeUpdate(uploadVersionUpdate, { args: [{ versionId: v, version: '1.0.0', packageSha256: 'a'.repeat(64), packageSize: 1, pageCount: 1, notes: '', actorId: 'u' }] });
  await h.executeUpdate(submitUpdate, { args: [{ versionId: v, actorId: 'u' }] });
  ids.push(v);
}
for (const v of ids) while ((await client.workflow.getHandle(releaseWorkflowId(v)).query(releaseStatusQuery)).status !== 'in_review') await new Promise((r) => setTimeout(r, 10));
const ts: number[] = [];
for (const v of ids) {
  const t = performance.now();
  await client.workflow.getHandle(releaseWorkflowId(v)).executeUpdate(approveUpdate, { args: [{ actorId: 'r' }] });
  ts.push(performance.now() - t);
  await new Promise((r) => setTimeout(r, 300));
}
console.log('approve in-process worker median', percentile(ts, 50).toFixed(2), 'p90', percentile(ts, 90).toFixed(2));
worker.shutdown(); await run; srv.kill();
