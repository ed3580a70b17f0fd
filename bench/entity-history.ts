import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Activities } from '../activities/index.js';
import { findOrBuildTemporal } from '../temporal/binary.js';
import { startDevServer } from '../temporal/dev-server.js';
import { workflowBundle } from '../temporal/worker.js';
import {
  miniProgramStatusQuery, miniProgramWorkflowId, submitUpdate, syncUpdate, uploadVersionUpdate, type MiniProgramInput, type MiniProgramState,
} from '../workflows/contracts/mini-program.js';
import {
  approveUpdate, releaseStatusQuery, releaseUpdate, releaseWorkflowId, type HealthReport, type ReleaseConfig, type RolloutStage,
} from '../workflows/contracts/release.js';
import { freePort } from './harness.js';

/**
 * One MiniProgram entity through 2,000 uploaded versions, every 10th submitted, approved and
 * released to everyone at once; then every run of its workflow id, and how long each history got.
 * The server's continue-as-new suggestion is left at its default: that is the point.
 */
Runtime.install({ logger: new DefaultLogger('WARN') });
const versions = Number(process.env.BENCH_VERSIONS ?? 2000);
const releaseEvery = 10;
const eventLimit = 10_000;
const taskQueue = 'entity-history';
const config: ReleaseConfig = { reviewReminderMs: 0, stepAttempts: 3 };
const now100: RolloutStage[] = [{ kind: 'percent', percent: 100, soakMs: 0 }];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(f: () => Promise<boolean>, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mpdp-entity-history-'));
const port = await freePort();
const address = `127.0.0.1:${port}`;
const server = await startDevServer({ binary: findOrBuildTemporal(), dataDir, port, uiPort: 0, namespace: 'default', persistent: false, ui: false });
const nativeConnection = await NativeConnection.connect({ address });
const connection = await Connection.connect({ address });
const client = new Client({ connection });
/** A run's first or last event only: a whole page of a long run may pass gRPC's 4 MiB message limit. */
async function edgeEvent(workflowId: string, runId: string, which: 'first' | 'last') {
  const request = { namespace: client.options.namespace, execution: { workflowId, runId }, maximumPageSize: 1 };
  const { history } = which === 'first'
    ? await client.workflowService.getWorkflowExecutionHistory(request)
    : await client.workflowService.getWorkflowExecutionHistoryReverse(request);
  return history?.events?.[0];
}
const none = async () => undefined;
const green = (): HealthReport => ({
  at: new Date().toISOString(), launches: 1000, crashes: 1, crashRate: 0.001, liveLaunches: 1000, liveCrashes: 1, liveCrashRate: 0.001, verdict: 'green', reason: 'within limits',
});
const activities: Partial<Activities> = {
  projectPipeline: none, projectMiniProgram: none, projectNewVersion: none, projectVersionStatus: none,
  notifyPipeline: async () => ({ sent: 1, skipped: 0 }), deliverWebhooks: async () => ({ delivered: 0, failed: 0 }),
  validateStoredPackage: async () => ({ pageCount: 1 }), checkRolloutHealth: async () => green(),
};
const worker = await Worker.create({ connection: nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
const running = worker.run();

try {
  const miniProgramId = 'mp_history';
  const workflowId = miniProgramWorkflowId(miniProgramId);
  const input: MiniProgramInput = {
    miniProgramId, workspaceId: 'ws_bench', name: 'Long History', description: '', category: 'tools', icon: null, createdBy: 'usr_dev',
    createdAt: new Date().toISOString(), releaseConfig: config,
  };
  const t0 = performance.now();
  const mp = await client.workflow.start('miniProgramEntity', { workflowId, taskQueue, args: [input] });
  const firstRunId = mp.firstExecutionRunId;
  await mp.executeUpdate(syncUpdate, { args: [] });
  const laneFree = async () => !(await mp.query(miniProgramStatusQuery)).activePipelineId;
  let lastReleased: string | null = null;
  for (let i = 0; i < versions; i++) {
    const versionId = `ver_h_${i}`;
    await mp.executeUpdate(uploadVersionUpdate, { args: [{ versionId, version: `1.0.${i}`, packageSha256: 'a'.repeat(64), packageSize: 1000, pageCount: 1, notes: '', actorId: 'usr_dev' }] });
    if (i % releaseEvery !== releaseEvery - 1) continue;
    // The previous release finishes while the next uploads go in; a submit needs the lane free.
    await until(laneFree, `the lane to free before ${versionId}`);
    await mp.executeUpdate(submitUpdate, { args: [{ versionId, actorId: 'usr_dev', policy: { requiredApprovals: 1 }, config }] });
    const release = client.workflow.getHandle(releaseWorkflowId(versionId));
    await until(async () => (await release.query(releaseStatusQuery)).status === 'in_review', `${versionId} in review`);
    await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    await release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev', plan: now100 }] });
    lastReleased = versionId;
  }
  await until(async () => {
    const s = await mp.query(miniProgramStatusQuery);
    return s.liveVersionId === lastReleased && !s.activePipelineId;
  }, 'the last release to go live');
  const wall = performance.now() - t0;
  console.log(`(driving done in ${(wall / 1000).toFixed(1)} s; walking the runs)`);
  const state: MiniProgramState = await mp.query(miniProgramStatusQuery);

  // ---- every run of the workflow id, from the first along the continue-as-new chain -------------
  const runs: { runId: string; events: number; bytes: number }[] = [];
  for (let runId: string | undefined = firstRunId; runId;) {
    const d = await client.workflow.getHandle(workflowId, runId).describe();
    runs.push({ runId, events: d.historyLength, bytes: d.historySize ?? NaN });
    runId = (await edgeEvent(workflowId, runId, 'last'))?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  const lastStarted = (await edgeEvent(workflowId, runs.at(-1)!.runId, 'first'))?.workflowExecutionStartedEventAttributes;
  const carriedBytes = lastStarted?.input?.payloads?.reduce((a, p) => a + (p.data?.length ?? 0), 0) ?? NaN;
  const largest = runs.reduce((a, r) => (r.events > a.events ? r : a));
  const heaviest = runs.reduce((a, r) => (r.bytes > a.bytes ? r : a));
  const closed = runs.length > 1 ? runs.slice(0, -1) : runs;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const released = state.versions.filter((v) => v.wasLive).length;
  console.log(`${versions} versions uploaded, ${released} released (every ${releaseEvery}th, to everyone at once) in ${(wall / 1000).toFixed(1)} s (${(versions / (wall / 1000)).toFixed(0)} uploads/s counting the releases)`);
  console.log(`runs of ${workflowId}: ${runs.length}; events per closed run: min ${Math.min(...closed.map((r) => r.events))}, median ${median(closed.map((r) => r.events))}, max ${Math.max(...closed.map((r) => r.events))}; the running one ${runs.at(-1)!.events}`);
  console.log(`history bytes per closed run (as the server counts them): min ${kib(Math.min(...closed.map((r) => r.bytes)))}, median ${kib(median(closed.map((r) => r.bytes)))}, max ${kib(heaviest.bytes)}`);
  console.log(`longest run: ${largest.events} events, ${kib(largest.bytes)}; every run under ${eventLimit.toLocaleString('en')} events: ${runs.every((r) => r.events < eventLimit) ? 'yes' : 'NO'}`);
  console.log(`state carried across continue-as-new (the last run's input): ${kib(carriedBytes)}; state as queried: ${kib(JSON.stringify(state).length)} for ${state.versions.length} versions`);
  const inOrder = state.versions.every((v, i) => v.versionId === `ver_h_${i}`);
  console.log(`final state: ${state.versions.length} versions ${inOrder ? 'in order' : 'OUT OF ORDER'}, live ${state.liveVersion} (${state.liveVersionId === lastReleased ? 'the last released' : 'NOT the last released'})`);
} finally {
  worker.shutdown();
  await running;
  await nativeConnection.close();
  await connection.close();
  server.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}
