import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  miniProgramStatusQuery, miniProgramWorkflowId, submitUpdate, syncUpdate, uploadVersionUpdate, type MiniProgramInput,
} from '../../workflows/contracts/mini-program.js';
import {
  approveUpdate, releaseStatusQuery, releaseUpdate, releaseWorkflowId, type HealthReport, type ReleaseConfig, type RolloutStage,
} from '../../workflows/contracts/release.js';
import { eventually } from '../helpers/eventually.js';
import { startTestWorker, uid } from '../helpers/workflow-env.js';

// The run's shared server keeps its default continue-as-new suggestion (4,096 events or 4 MiB of
// history), unlike continue-as-new.test.ts which lowers it to see many runs. Today 300 uploads with
// a release every 25th pass the size suggestion (every projection carries the whole version list),
// so the entity starts three or four runs; were that to shrink to one run, the test still holds:
// it is about the bound and the state coming through whole. The 2,000-version figures are
// bench/entity-history.ts.
const none = async () => undefined;
const activities: Partial<Activities> = {
  projectPipeline: none, projectMiniProgram: none, projectNewVersion: none, projectVersionStatus: none,
  notifyPipeline: async () => ({ sent: 1, skipped: 0 }), deliverWebhooks: async () => ({ delivered: 0, failed: 0 }),
  validateStoredPackage: async () => ({ pageCount: 1 }),
  checkRolloutHealth: async (): Promise<HealthReport> => ({
    at: new Date().toISOString(), launches: 1000, crashes: 1, crashRate: 0.001, liveLaunches: 1000, liveCrashes: 1, liveCrashRate: 0.001, verdict: 'green', reason: 'within limits',
  }),
};

let env: Awaited<ReturnType<typeof startTestWorker>>;
let client: Client;
beforeAll(async () => {
  env = await startTestWorker(activities);
  client = env.client;
});
afterAll(async () => env?.stop());

/** The run a run continued as, if it did (read from its last event alone). */
async function nextRunId(workflowId: string, runId: string): Promise<string | undefined> {
  const { history } = await client.workflowService.getWorkflowExecutionHistoryReverse({ namespace: client.options.namespace, execution: { workflowId, runId }, maximumPageSize: 1 });
  return history?.events?.[0]?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
}

const config: ReleaseConfig = { reviewReminderMs: 0, stepAttempts: 2 };
const now100: RolloutStage[] = [{ kind: 'percent', percent: 100, soakMs: 0 }];

describe('mini program entity history', () => {
  it('keeps every run under 10,000 events through 300 versions and 12 releases, with its versions whole and in order', async () => {
    const uploads = 300;
    const releaseEvery = 25;
    const miniProgramId = uid('mp_');
    const workflowId = miniProgramWorkflowId(miniProgramId);
    const input: MiniProgramInput = {
      miniProgramId, workspaceId: uid('ws_'), name: 'Many Versions', description: '', category: 'tools', icon: null,
      createdBy: 'usr_dev', createdAt: new Date().toISOString(), releaseConfig: config,
    };
    const mp = await client.workflow.start('miniProgramEntity', { workflowId, taskQueue: env.taskQueue, args: [input] });
    await mp.executeUpdate(syncUpdate, { args: [] });
    const versionIds: string[] = [];
    const released: string[] = [];
    for (let i = 0; i < uploads; i++) {
      const versionId = uid('ver_');
      versionIds.push(versionId);
      await mp.executeUpdate(uploadVersionUpdate, { args: [{ versionId, version: `1.0.${i}`, packageSha256: 'a'.repeat(64), packageSize: 1000, pageCount: 1, notes: '', actorId: 'usr_dev' }] });
      if (i % releaseEvery !== releaseEvery - 1) continue;
      // The previous release finishes while the next uploads go in; a submit needs the lane free.
      await eventually(async () => !(await mp.query(miniProgramStatusQuery)).activePipelineId, { what: `the lane to free before 1.0.${i}` });
      await mp.executeUpdate(submitUpdate, { args: [{ versionId, actorId: 'usr_dev', policy: { requiredApprovals: 1 }, config }] });
      const release = client.workflow.getHandle(releaseWorkflowId(versionId));
      await eventually(async () => (await release.query(releaseStatusQuery)).status === 'in_review', { what: `1.0.${i} in review` });
      await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
      await release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev', plan: now100 }] });
      released.push(versionId);
    }
    const last = released.at(-1)!;
    const state = await eventually(async () => {
      const s = await mp.query(miniProgramStatusQuery);
      return s.liveVersionId === last && !s.activePipelineId ? s : null;
    }, { what: 'the last release to go live' });

    // Every run of the id, from the first along the continue-as-new chain (lengths from describe: a
    // whole page of a long run's history may pass gRPC's 4 MiB message limit).
    const lengths: number[] = [];
    for (let runId: string | undefined = mp.firstExecutionRunId; runId;) {
      lengths.push((await client.workflow.getHandle(workflowId, runId).describe()).historyLength);
      runId = await nextRunId(workflowId, runId);
    }
    expect(lengths.length).toBeGreaterThanOrEqual(1);
    expect(Math.max(...lengths)).toBeLessThan(10_000);

    expect(state.versions.map((v) => v.versionId)).toEqual(versionIds);
    expect(state.versions.map((v) => v.version)).toEqual(versionIds.map((_, i) => `1.0.${i}`));
    const expected = versionIds.map((id) => (id === last ? 'released' : released.includes(id) ? 'superseded' : 'uploaded'));
    expect(state.versions.map((v) => v.status)).toEqual(expected);
    expect(state.versions.filter((v) => v.wasLive).map((v) => v.versionId)).toEqual(released);
    expect(state.liveVersion).toBe(`1.0.${uploads - 1}`);
    expect(state.status).toBe('released');
  }, 90_000);
});
