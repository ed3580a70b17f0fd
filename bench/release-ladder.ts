import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Activities } from '../activities/index.js';
import { findOrBuildTemporal } from '../temporal/binary.js';
import { startDevServer } from '../temporal/dev-server.js';
import { workflowBundle } from '../temporal/worker.js';
import { miniProgramWorkflowId, submitUpdate, syncUpdate, uploadVersionUpdate, type MiniProgramInput } from '../workflows/contracts/mini-program.js';
import {
  approveUpdate, releaseStatusQuery, releaseUpdate, releaseWorkflowId, type HealthReport, type ReleaseConfig, type ReleaseState, type RolloutStage,
} from '../workflows/contracts/release.js';
import type { ladderBaseline } from './release-ladder-workflows.js';
import { freePort, percentile, rssMiB } from './harness.js';

/**
 * 200 release pipelines rolling out at once through a 3-stage ladder with 1 s soaks, on a real dev
 * server with the real workflow bundle and activities that do no I/O; then, on the same server,
 * 200 minimal workflows with the same timers and activities as one pipeline's rollout. The worker
 * runs in a child process (this file again, with LADDER_WORKER_ADDRESS set) so its RSS is its own.
 */
const pipelineQueue = 'ladder';
const baselineQueue = 'ladder-baseline';
const count = Number(process.env.BENCH_PIPELINES ?? 200);
const plan: RolloutStage[] = [10, 50, 100].map((percent) => ({ kind: 'percent', percent, soakMs: 1000 }));
const config: ReleaseConfig = { reviewReminderMs: 0, healthCheckIntervalMs: 1000, stepAttempts: 3 };
const deadlineMs = 10 * 60_000;

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];
const eventMs = (e: HistoryEvent) => tsToMs(e.eventTime);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runWorker(address: string) {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address });
  const green = (): HealthReport => ({
    at: new Date().toISOString(), launches: 1000, crashes: 1, crashRate: 0.001, liveLaunches: 1000, liveCrashes: 1, liveCrashRate: 0.001, verdict: 'green', reason: 'within limits',
  });
  const none = async () => undefined;
  const activities: Partial<Activities> = {
    projectPipeline: none, projectMiniProgram: none, projectNewVersion: none, projectVersionStatus: none,
    notifyPipeline: async () => ({ sent: 1, skipped: 0 }), deliverWebhooks: async () => ({ delivered: 0, failed: 0 }),
    validateStoredPackage: async () => ({ pageCount: 1 }), checkRolloutHealth: async () => green(),
  };
  const pipelines = await Worker.create({ connection, taskQueue: pipelineQueue, workflowBundle: await workflowBundle(), activities });
  const baseline = await Worker.create({
    connection, taskQueue: baselineQueue, workflowsPath: fileURLToPath(new URL('./release-ladder-workflows.ts', import.meta.url)), activities: { async noop() {} },
  });
  process.stdout.write('ready\n');
  // The runtime shuts both workers down on SIGTERM.
  await Promise.all([pipelines.run(), baseline.run()]);
  await connection.close();
}

async function startWorkerProcess(address: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, LADDER_WORKER_ADDRESS: address }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'ready' && resolve());
    child.once('exit', (code) => reject(new Error(`the worker exited with ${code} before it was ready`)));
  });
  return child;
}

/** Runs fn(0..n-1), at most `width` at a time. */
async function pool<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  }));
  return out;
}

async function until(f: () => Promise<boolean>, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Resolves with the value, or undefined once the deadline passes. */
const byDeadline = <T>(p: Promise<T>, at: number) =>
  Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(0, at - Date.now())).unref())]);

async function historyOf(h: WorkflowHandle): Promise<HistoryEvent[]> {
  return (await h.fetchHistory()).events ?? [];
}

/** From the release update's acceptance to the pipeline's completion: time and what it scheduled. */
function rolloutWindow(events: HistoryEvent[]) {
  const start = events.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === releaseUpdate.name);
  const end = events.findIndex((e) => e.workflowExecutionCompletedEventAttributes);
  if (start < 0 || end < 0) return undefined;
  const inWindow = events.slice(start, end + 1);
  const activityTypes: Record<string, number> = {};
  for (const e of inWindow) {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) activityTypes[name] = (activityTypes[name] ?? 0) + 1;
  }
  return {
    ms: eventMs(events[end]!) - eventMs(events[start]!),
    events: inWindow.length,
    timers: inWindow.filter((e) => e.timerStartedEventAttributes).length,
    activities: Object.values(activityTypes).reduce((a, b) => a + b, 0),
    activityTypes,
    // Beyond the baseline: progress signals to the mini program's entity (each a task and a projection there) and search-attribute upserts.
    signals: inWindow.filter((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes).length,
    upserts: inWindow.filter((e) => e.upsertWorkflowSearchAttributesEventAttributes).length,
  };
}

function startedToCompletedMs(events: HistoryEvent[]) {
  const end = events.find((e) => e.workflowExecutionCompletedEventAttributes);
  return end ? eventMs(end) - eventMs(events[0]!) : NaN;
}

/** CPU seconds a process has used so far, from /proc (Linux; 100 ticks a second). */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const range = (lo: number[]) => `${Math.min(...lo)}–${Math.max(...lo)}`;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mpdp-ladder-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  // In memory, with the settings mpdp starts its dev server with.
  const server = await startDevServer({ binary: findOrBuildTemporal(), dataDir, port, uiPort: 0, namespace: 'default', persistent: false, ui: false });
  let worker: ChildProcess | undefined;
  let connection: Connection | undefined;
  const peak = { worker: 0, server: 0 };
  const sampleRss = () => {
    if (worker?.pid && worker.exitCode === null) peak.worker = Math.max(peak.worker, rssMiB(worker.pid));
    if (server.pid && server.exitCode === null) peak.server = Math.max(peak.server, rssMiB(server.pid));
  };
  const sampler = setInterval(sampleRss, 250);
  try {
    worker = await startWorkerProcess(address);
    connection = await Connection.connect({ address });
    const client = new Client({ connection });

    // ---- set-up: 200 mini programs, each with one version submitted and approved ----------------
    const setupStart = performance.now();
    const versionIds = await pool(count, 20, async (i) => {
      const miniProgramId = `mp_ladder_${i}`;
      const input: MiniProgramInput = {
        miniProgramId, workspaceId: 'ws_bench', name: `Ladder ${i}`, description: '', category: 'tools', icon: null, createdBy: 'usr_dev',
        createdAt: new Date().toISOString(), releaseConfig: config,
      };
      const mp = await client.workflow.start('miniProgramEntity', { workflowId: miniProgramWorkflowId(miniProgramId), taskQueue: pipelineQueue, args: [input] });
      await mp.executeUpdate(syncUpdate, { args: [] });
      const versionId = `ver_ladder_${i}`;
      await mp.executeUpdate(uploadVersionUpdate, { args: [{ versionId, version: '1.0.0', packageSha256: 'a'.repeat(64), packageSize: 1000, pageCount: 1, notes: '', actorId: 'usr_dev' }] });
      await mp.executeUpdate(submitUpdate, { args: [{ versionId, actorId: 'usr_dev', policy: { requiredApprovals: 1 }, config }] });
      const release = client.workflow.getHandle(releaseWorkflowId(versionId));
      await until(async () => (await release.query(releaseStatusQuery)).status === 'in_review', `${versionId} in review`);
      await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
      return versionId;
    });
    // The decision mail goes out just after the approval: let it finish, so the rollout window holds the rollout only.
    await sleep(2000);
    console.log(`set-up: ${count} mini programs with one approved version each in ${secs(performance.now() - setupStart)}`);

    // ---- 200 rollouts at once -----------------------------------------------------------------
    const handles = versionIds.map((v) => client.workflow.getHandle(releaseWorkflowId(v)));
    const deadline = Date.now() + deadlineMs;
    let lastDone = 0;
    const cpu0 = { worker: cpuSeconds(worker.pid), server: cpuSeconds(server.pid) };
    const t0 = performance.now();
    const perPipeline: number[] = [];
    const statuses = await Promise.all(handles.map(async (h) => {
      const sent = performance.now();
      await h.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev', plan }] });
      const done = (await byDeadline(h.result(), deadline)) as ReleaseState | undefined;
      if (!done) return `${(await h.query(releaseStatusQuery)).status} (still running)`;
      lastDone = performance.now();
      perPipeline.push(lastDone - sent);
      return done.status;
    }));
    const wall = lastDone - t0;
    const cpu = { worker: cpuSeconds(worker.pid) - cpu0.worker, server: cpuSeconds(server.pid) - cpu0.server };
    const byStatus: Record<string, number> = {};
    for (const s of statuses) byStatus[s] = (byStatus[s] ?? 0) + 1;
    const released = byStatus.released ?? 0;

    const windows = await pool(handles.length, 20, async (i) => rolloutWindow(await historyOf(handles[i]!)));
    const measured = windows.filter((w) => !!w);
    const one = measured[0];
    if (!one) throw new Error('no pipeline completed its rollout');
    const inHistory = measured.map((w) => w.ms);

    console.log(`pipelines: ${released}/${count} released; other statuses: ${released === count ? 'none' : JSON.stringify(Object.fromEntries(Object.entries(byStatus).filter(([s]) => s !== 'released')))}`);
    console.log(`ladder: ${plan.map((s) => `${s.percent}%/${s.soakMs} ms`).join(' → ')}, health check every ${config.healthCheckIntervalMs} ms`);
    console.log(`wall time, first rollout start → last released: ${secs(wall)}  (CPU meanwhile: worker ${cpu.worker.toFixed(1)} s, server ${cpu.server.toFixed(1)} s)`);
    console.log(`per-pipeline rollout (release update sent → result): p50 ${secs(percentile(perPipeline, 50))}  p99 ${secs(percentile(perPipeline, 99))}  max ${secs(Math.max(...perPipeline))}; in its history (update accepted → completed): p50 ${secs(percentile(inHistory, 50))}  p99 ${secs(percentile(inHistory, 99))}`);
    console.log(`one rollout's history: ${one.events} events, ${one.timers} timers, ${one.activities} activities ${JSON.stringify(one.activityTypes)}, and beyond the baseline ${one.signals} signals to its entity and ${one.upserts} search-attribute upserts; across all: timers ${range(measured.map((w) => w.timers))}, activities ${range(measured.map((w) => w.activities))}`);
    sampleRss();
    const pipelineRss = { ...peak };

    // ---- baseline: the same timers and activities, nothing else --------------------------------
    const totalSleepMs = plan.reduce((a, s) => a + s.soakMs, 0);
    const bcpu0 = { worker: cpuSeconds(worker.pid), server: cpuSeconds(server.pid) };
    const b0 = performance.now();
    const baseline = new Array<WorkflowHandle>(count);
    let baselineDone = 0;
    const perBaseline: number[] = [];
    await Promise.all(Array.from({ length: count }, async (_, i) => {
      const sent = performance.now();
      const h = await client.workflow.start<typeof ladderBaseline>('ladderBaseline', {
        taskQueue: baselineQueue, workflowId: `ladder-baseline-${i}`, args: [{ timers: one.timers, activities: one.activities, totalSleepMs }],
      });
      await h.result();
      baselineDone = performance.now();
      perBaseline.push(baselineDone - sent);
      baseline[i] = h;
    }));
    const baselineWall = baselineDone - b0;
    const bcpu = { worker: cpuSeconds(worker.pid) - bcpu0.worker, server: cpuSeconds(server.pid) - bcpu0.server };
    const baselineInHistory = await pool(baseline.length, 20, async (i) => startedToCompletedMs(await historyOf(baseline[i]!)));
    console.log(`baseline: ${count} workflows × (${one.timers} timers totalling ${totalSleepMs} ms + ${one.activities} no-op activities), all at once: wall ${secs(baselineWall)}  (CPU meanwhile: worker ${bcpu.worker.toFixed(1)} s, server ${bcpu.server.toFixed(1)} s)`);
    console.log(`per baseline workflow (start sent → result): p50 ${secs(percentile(perBaseline, 50))}  p99 ${secs(percentile(perBaseline, 99))}; in its history (started → completed): p50 ${secs(percentile(baselineInHistory, 50))}  p99 ${secs(percentile(baselineInHistory, 99))}`);
    console.log(`ratio pipeline/baseline wall time: ${(wall / baselineWall).toFixed(2)}  (p50 ${(percentile(perPipeline, 50) / percentile(perBaseline, 50)).toFixed(2)})`);
    sampleRss();
    console.log(`peak RSS during the pipelines (set-up + rollouts): worker ${pipelineRss.worker.toFixed(0)} MiB, server ${pipelineRss.server.toFixed(0)} MiB; over the whole run: worker ${peak.worker.toFixed(0)} MiB, server ${peak.server.toFixed(0)} MiB`);
  } finally {
    clearInterval(sampler);
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once('exit', r));
      worker.kill('SIGTERM');
      await exited;
    }
    await connection?.close();
    server.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// Last, so every constant above is initialised: the child process is the worker, the parent the driver.
const workerAddress = process.env.LADDER_WORKER_ADDRESS;
if (workerAddress) await runWorker(workerAddress);
else await main();
