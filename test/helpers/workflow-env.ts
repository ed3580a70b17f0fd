import { ApplicationFailure, Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, inject } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { workflowBundle } from '../../temporal/worker.js';

export const historiesDir = fileURLToPath(new URL('../../workflows/__histories__/', import.meta.url));

export const uid = (prefix = '') => `${prefix}${randomBytes(6).toString('hex')}`;

Runtime.install({ logger: new DefaultLogger('WARN') });

/** A worker on its own task queue with the given (plain-function) activities, against the run's dev server. */
export async function startTestWorker(activities: Partial<Activities>) {
  const address = inject('temporalAddress');
  const nativeConnection = await NativeConnection.connect({ address });
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const taskQueue = uid('wf-test-');
  const worker = await Worker.create({ connection: nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
  const running = worker.run();
  return {
    client,
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** With RECORD_HISTORIES=1, writes a workflow's history for the replay test to check from then on. */
export async function maybeRecordHistory(client: Client, workflowId: string, name: string) {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  mkdirSync(historiesDir, { recursive: true });
  writeFileSync(path.join(historiesDir, `${name}.json`), JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) }));
}

/** The refusal of an Update (its validator or handler threw an ApplicationFailure). */
export async function refusal(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (err as WorkflowUpdateFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}
