import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  crashAlertStatusQuery, crashAlertWorkflowId, crashAlertWorkflowType, type CrashAlertInput, type CrashAlertMailInput, type CrashAlertState,
} from '../../workflows/contracts/crash-alert.js';
import { maybeRecordHistory, startTestWorker, uid } from '../helpers/workflow-env.js';

/**
 * Plain-function activities: a mail activity whose behaviour is set per group (fail the first n
 * attempts, fail always, or the group is gone), mailing three members once per dedupe key like the outbox.
 */
function fakeActivities() {
  const attempts = new Map<string, number>();
  const mailed = new Map<string, number>();
  const inputs: CrashAlertMailInput[] = [];
  const failFirst = new Map<string, number>();
  const gone = new Set<string>();
  const members = ['usr_1', 'usr_2', 'usr_3'];
  const activities: Partial<Activities> = {
    async mailCrashAlert(input) {
      inputs.push(input);
      const n = (attempts.get(input.groupId) ?? 0) + 1;
      attempts.set(input.groupId, n);
      if (gone.has(input.groupId)) throw ApplicationFailure.nonRetryable('group gone', 'crash_group_gone');
      if (n <= (failFirst.get(input.groupId) ?? 0)) throw new Error('connect ECONNREFUSED 127.0.0.1:25');
      let sent = 0;
      let skipped = 0;
      for (const m of members) {
        const key = `${input.dedupeKey}:${m}`;
        if (mailed.has(key)) skipped++;
        else {
          mailed.set(key, 1);
          sent++;
        }
      }
      return { sent, skipped };
    },
  };
  return { attempts, mailed, inputs, failFirst, gone, activities };
}

const fake = fakeActivities();
let env: Awaited<ReturnType<typeof startTestWorker>>;
let client: Client;

beforeAll(async () => {
  env = await startTestWorker(fake.activities);
  client = env.client;
});
afterAll(async () => env?.stop());

async function alert(o: Partial<CrashAlertInput> = {}) {
  const input: CrashAlertInput = { groupId: uid('cg_'), workspaceId: uid('ws_'), miniProgramId: uid('mp_'), versionId: uid('ver_'), change: 'new', ...o };
  const handle = await client.workflow.start<(i: CrashAlertInput) => Promise<CrashAlertState>>(crashAlertWorkflowType, {
    workflowId: crashAlertWorkflowId(input.groupId, input.versionId), taskQueue: env.taskQueue, args: [input], workflowIdReusePolicy: 'REJECT_DUPLICATE',
  });
  return { input, handle };
}

describe('crashAlert', () => {
  it('mails the members once, with the workflow id as the dedupe key', async () => {
    const { input, handle } = await alert();
    const state = await handle.result();
    expect(state).toEqual({ groupId: input.groupId, versionId: input.versionId, status: 'sent', sent: 3, skipped: 0, error: null });
    expect(fake.inputs.filter((i) => i.groupId === input.groupId)).toEqual([
      { dedupeKey: `crash-alert:${input.groupId}:${input.versionId}`, groupId: input.groupId, workspaceId: input.workspaceId, miniProgramId: input.miniProgramId, versionId: input.versionId, change: 'new' },
    ]);
    expect(await handle.query(crashAlertStatusQuery)).toMatchObject({ status: 'sent', sent: 3 });
    await maybeRecordHistory(client, handle.workflowId, 'crash-alert-sent');
  });

  it('retries while the mail server fails, then mails each member once', async () => {
    const groupId = uid('cg_');
    fake.failFirst.set(groupId, 2);
    const { handle } = await alert({ groupId, change: 'reopened' });
    const state = await handle.result();
    expect(state).toMatchObject({ status: 'sent', sent: 3, skipped: 0 });
    expect(fake.attempts.get(groupId)).toBe(3);
    expect([...fake.mailed.keys()].filter((k) => k.includes(groupId))).toHaveLength(3);
    expect(fake.inputs.filter((i) => i.groupId === groupId).every((i) => i.change === 'reopened')).toBe(true);
    await maybeRecordHistory(client, handle.workflowId, 'crash-alert-retried');
  });

  it('gives up after its budget and says so in its result', async () => {
    const groupId = uid('cg_');
    fake.failFirst.set(groupId, 1_000);
    const { handle } = await alert({ groupId, giveUpAfterMs: 2_500 });
    const state = await handle.result();
    expect(state.status).toBe('failed');
    expect(state.error).toMatch(/ECONNREFUSED|timed out|timeout/i);
    expect(fake.attempts.get(groupId)).toBeGreaterThanOrEqual(2);
    expect([...fake.mailed.keys()].filter((k) => k.includes(groupId))).toHaveLength(0);
  });

  it('does not retry when the group is gone', async () => {
    const groupId = uid('cg_');
    fake.gone.add(groupId);
    const { handle } = await alert({ groupId });
    expect(await handle.result()).toMatchObject({ status: 'failed', error: 'group gone' });
    expect(fake.attempts.get(groupId)).toBe(1);
  });

  it('one alert per group and version: a second start of the same id is refused', async () => {
    const { input, handle } = await alert();
    await handle.result();
    await expect(alert({ ...input })).rejects.toThrow(/already/i);
    expect(fake.attempts.get(input.groupId)).toBe(1);
    // another version of the same group is another alert
    const other = await alert({ ...input, versionId: uid('ver_') });
    expect((await other.handle.result()).status).toBe('sent');
  });
});
