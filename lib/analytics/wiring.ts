import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { QueryTypes } from 'sequelize';
import type { ApiDeps } from '../../api/deps.js';
import { crashAlertWorkflowId, crashAlertWorkflowType, type CrashAlertInput } from '../../workflows/contracts/crash-alert.js';
import { applyCrashGroups } from './crash-groups.js';
import { rollupScheduler } from './daily-rollups.js';
import { IngestBuffer } from './ingest.js';
import type { CrashGroupNews, IngestSink } from './types.js';

/** Pipeline statuses in which a version counts as rolling out (a paused rollout still serves it). */
export const rollingOutStatuses = ['rolling_out', 'paused'] as const;

/**
 * Starts a `crashAlert` workflow for each piece of news whose version is rolling out now (its
 * release pipeline is rolling_out or paused). Ids are crash-alert:<group>:<version>, rejected when
 * used before, so a group alerts once per version however many flushes or processes see it.
 * Returns the workflow ids started (the tests read them).
 */
export async function startCrashAlerts(deps: Pick<ApiDeps, 'sequelize' | 'temporal' | 'config'>, news: CrashGroupNews[]): Promise<string[]> {
  if (!news.length) return [];
  const rows = await deps.sequelize.query<{ version_id: string }>(
    `SELECT DISTINCT version_id FROM pipelines WHERE version_id IN (:versionIds) AND kind = 'release' AND status IN (:statuses)`,
    { replacements: { versionIds: [...new Set(news.map((n) => n.versionId))], statuses: [...rollingOutStatuses] }, type: QueryTypes.SELECT },
  );
  const rolling = new Set(rows.map((r) => r.version_id));
  const started: string[] = [];
  for (const n of news) {
    if (!rolling.has(n.versionId)) continue;
    const workflowId = crashAlertWorkflowId(n.groupId, n.versionId);
    const input: CrashAlertInput = { groupId: n.groupId, workspaceId: n.workspaceId, miniProgramId: n.miniProgramId, versionId: n.versionId, change: n.change };
    try {
      await deps.temporal.workflow.start(crashAlertWorkflowType, {
        workflowId, taskQueue: deps.config.temporal.taskQueue, args: [input], workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
      started.push(workflowId);
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }
  return started;
}

/**
 * The API process's ingest buffer over its pg pool, with crash grouping inside each flush and
 * alerts (a `crashAlert` workflow per new group in a rolling-out version) after commit.
 */
export function createIngest(deps: ApiDeps): IngestSink {
  // The dashboards' daily rollups, rebuilt for the recent days after flushes that wrote rows (throttled, off the flush path).
  const rollups = rollupScheduler(deps.pool, deps.config.analytics.rollupIntervalMs);
  const buffer = new IngestBuffer({
    pool: deps.pool, settings: deps.config.analytics, applyCrashGroups,
    onFlushed: (r) => rollups.flushed(r),
    // After commit, off the flush's path: an alert that cannot be started now is logged, never retried
    // into the buffer (the events are written; the group is on the crash list either way).
    onCrashNews: (news) => {
      startCrashAlerts(deps, news).catch((err: unknown) => console.error(`crash alerts: could not start for ${news.length} group(s): ${(err as Error).message}`));
    },
  });
  const close = buffer.close.bind(buffer);
  buffer.close = async () => {
    rollups.stop();
    await close();
  };
  return buffer;
}
