import { ActivityFailure, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { crashAlertStatusQuery, type CrashAlertInput, type CrashAlertState } from './contracts/crash-alert.js';
import { external } from './profiles.js';

/**
 * crashAlert: one mail per member of the workspace about a crash group that is new (or reopened) in
 * a version rolling out. The mails are one activity, retried by Temporal with backoff until
 * `giveUpAfterMs` (a mail server that is down is tried again, durably, across worker restarts);
 * the outbox's dedupe keys keep a retry from mailing anyone twice. Id: crash-alert:<groupId>:<versionId>.
 */
export async function crashAlert(input: CrashAlertInput): Promise<CrashAlertState> {
  const state: CrashAlertState = { groupId: input.groupId, versionId: input.versionId, status: 'mailing', sent: 0, skipped: 0, error: null };
  setHandler(crashAlertStatusQuery, () => state);

  const { mailCrashAlert } = proxyActivities<Activities>({ ...external, scheduleToCloseTimeout: input.giveUpAfterMs ?? 24 * 3600_000 });
  try {
    const { sent, skipped } = await mailCrashAlert({
      dedupeKey: workflowInfo().workflowId, groupId: input.groupId, workspaceId: input.workspaceId, miniProgramId: input.miniProgramId,
      versionId: input.versionId, change: input.change,
    });
    Object.assign(state, { status: 'sent', sent, skipped });
  } catch (err) {
    // Out of retry budget: recorded in the result, not thrown — an alert that could not be mailed is not a bug to retry forever.
    if (!(err instanceof ActivityFailure)) throw err;
    state.status = 'failed';
    state.error = err.cause?.message ?? err.message;
  }
  return state;
}
