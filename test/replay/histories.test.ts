import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../../temporal/worker.js';
import { historiesDir } from '../helpers/workflow-env.js';

const files = readdirSync(historiesDir).filter((f) => f.endsWith('.json')).sort();

describe('recorded histories replay against the current workflow code', () => {
  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  it.each(files)('%s replays without a determinism error', async (file) => {
    const { workflowId, history } = JSON.parse(readFileSync(path.join(historiesDir, file), 'utf8')) as { workflowId: string; history: unknown };
    const results = [];
    for await (const r of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, [{ workflowId, history: historyFromJSON(history) }])) results.push(r);
    expect(results).toHaveLength(1);
    expect(results[0]?.error).toBeUndefined();
  });
});
