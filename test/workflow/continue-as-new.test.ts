import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { findOrBuildTemporal } from '../../temporal/binary.js';
import { dynamicConfigArgs, lowLatencyDynamicConfig } from '../../temporal/dev-server.js';
import { workflowBundle } from '../../temporal/worker.js';
import {
  miniProgramStatusQuery, miniProgramWorkflowId, submitUpdate, syncUpdate, uploadVersionUpdate, type MiniProgramInput,
} from '../../workflows/contracts/mini-program.js';
import { approveUpdate, releaseStatusQuery, releaseUpdate, releaseWorkflowId } from '../../workflows/contracts/release.js';
import { customSearchAttributes } from '../../workflows/contracts/search-attributes.js';
import { eventually } from '../helpers/eventually.js';
import { uid } from '../helpers/workflow-env.js';

// A server of its own that suggests continue-as-new after 40 events, so a mini program's entity
// starts a fresh run every release or two instead of every hundred.
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let client: Client;
const taskQueue = uid('can-');
const projected: { versionId?: string; status?: string; state?: { liveVersion: string | null } }[] = [];

beforeAll(async () => {
  env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: findOrBuildTemporal({ cli: process.env.TEMPORAL_CLI }) }, searchAttributes: customSearchAttributes,
      ip: '127.0.0.1', ui: false, log: { format: 'pretty', level: 'warn' },
      extraArgs: dynamicConfigArgs([...lowLatencyDynamicConfig, 'limit.historyCount.suggestContinueAsNew=40']),
    },
  });
  const rec = async (input: any) => void projected.push(input);
  const activities: Partial<Activities> = {
    projectMiniProgram: rec, projectNewVersion: rec, projectVersionStatus: rec, notifySubmitter: async () => undefined,
    notifyReviewers: async () => ({ sent: 1, skipped: 0 }), validateStoredPackage: async () => ({ pageCount: 1 }),
    // A release's own projection carries its version row's status.
    projectPipeline: async (p) => void projected.push({ versionId: p.pipeline.versionId, status: p.versionStatus?.status }),
    notifyPipeline: async () => ({ sent: 1, skipped: 0 }), deliverWebhooks: async () => ({ delivered: 0, failed: 0 }),
  };
  worker = await Worker.create({ connection: await NativeConnection.connect({ address: env.address }), taskQueue, workflowBundle: await workflowBundle(), activities });
  running = worker.run();
  client = new Client({ connection: await Connection.connect({ address: env.address }) });
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

describe('mini program entity across continue-as-new', () => {
  it('keeps its versions, live version and lane through many fresh runs, with commands arriving throughout', async () => {
    const miniProgramId = uid('mp_');
    const input: MiniProgramInput = {
      miniProgramId, workspaceId: 'ws_can', name: 'Long Lived', description: '', category: 'tools', icon: null,
      createdBy: 'usr_dev', createdAt: new Date().toISOString(), releaseConfig: { reviewReminderMs: 0 },
    };
    const mp = await client.workflow.start('miniProgramEntity', { workflowId: miniProgramWorkflowId(miniProgramId), taskQueue, args: [input] });
    await mp.executeUpdate(syncUpdate, { args: [] });
    const runs = new Set<string>();
    const releases = 8;
    for (let i = 0; i < releases; i++) {
      const versionId = uid('ver_');
      await mp.executeUpdate(uploadVersionUpdate, { args: [{ versionId, version: `1.${i}.0`, packageSha256: 'a'.repeat(64), packageSize: 1, pageCount: 1, notes: '', actorId: 'usr_dev' }] });
      // Answers only once the pipeline wrote its first state: this used to wait forever when the
      // entity was about to continue as new (it waited for handlers while the handler waited for progress).
      const entry = await mp.executeUpdate(submitUpdate, { args: [{ versionId, actorId: 'usr_dev', policy: { requiredApprovals: 1 }, config: { reviewReminderMs: 0 } }] });
      expect(entry.seq).toBeGreaterThanOrEqual(2);
      const release = client.workflow.getHandle(releaseWorkflowId(versionId));
      await eventually(async () => (await release.query(releaseStatusQuery)).status === 'in_review', { what: `1.${i}.0 in review` });
      await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_reviewer' }] });
      await release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev', plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] }] });
      await eventually(async () => {
        const s = await mp.query(miniProgramStatusQuery);
        return s.liveVersionId === versionId && s.activeVersionId === null;
      }, { what: `1.${i}.0 live` });
      runs.add((await mp.describe()).runId);
    }
    const state = await mp.query(miniProgramStatusQuery);
    expect(runs.size).toBeGreaterThan(2); // it really did continue as new, several times
    expect(state.versions.map((v) => v.version)).toEqual(Array.from({ length: releases }, (_, i) => `1.${i}.0`));
    expect(state.versions.map((v) => v.status)).toEqual([...Array(releases - 1).fill('superseded'), 'released']);
    expect(state.liveVersion).toBe(`1.${releases - 1}.0`);
    // The read model heard of every version's release, in order.
    const released = projected.filter((p) => p.status === 'released').map((p) => p.versionId);
    expect(released).toEqual(state.versions.map((v) => v.versionId));
  }, 120_000);
});
