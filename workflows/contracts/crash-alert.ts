import { defineQuery } from '@temporalio/workflow';

/**
 * The contract of `crashAlert`: mails the members of a workspace that a crash group is new (or came
 * back) in a version that is rolling out. Started by the API after the ingest flush that found the
 * group committed, id crash-alert:<groupId>:<versionId> — one alert per group and version, however
 * many flushes or API processes see it (an already-started id is ignored).
 */
export const crashAlertWorkflowId = (groupId: string, versionId: string) => `crash-alert:${groupId}:${versionId}`;
export const crashAlertWorkflowType = 'crashAlert';

export const crashAlertStatuses = ['mailing', 'sent', 'failed'] as const;
export type CrashAlertStatus = (typeof crashAlertStatuses)[number];

export interface CrashAlertInput {
  groupId: string;
  workspaceId: string;
  miniProgramId: string;
  versionId: string;
  change: 'new' | 'reopened';
  /** How long to keep retrying the mails (a mail server that is down) before giving up. Default 1 day. */
  giveUpAfterMs?: number;
}

export interface CrashAlertState {
  groupId: string;
  versionId: string;
  status: CrashAlertStatus;
  /** Members mailed, and members skipped (opted out of `crashes`, or mailed before by a retried attempt). */
  sent: number;
  skipped: number;
  error: string | null;
}

/** The mail activity's input: `dedupeKey` comes from the workflow id, so a retried send mails each member once. */
export interface CrashAlertMailInput extends Omit<CrashAlertInput, 'giveUpAfterMs'> {
  dedupeKey: string;
}

export const crashAlertStatusQuery = defineQuery<CrashAlertState>('crashAlertStatus');
