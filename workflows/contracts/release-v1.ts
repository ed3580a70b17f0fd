import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/** Where a submitted version is in its pipeline. */
export const releaseStatuses = ['validating', 'in_review', 'approved', 'rejected', 'withdrawn', 'released', 'invalid'] as const;
export type ReleaseStatus = (typeof releaseStatuses)[number];
export const terminalReleaseStatuses: readonly ReleaseStatus[] = ['rejected', 'withdrawn', 'released', 'invalid'];

/** What a pipeline in each status waits for, in words, for the console. */
export const releaseWaitingText: Record<ReleaseStatus, string> = {
  validating: 'Checking the package',
  in_review: 'Waiting for a reviewer to approve or reject (any Reviewer or Admin other than the submitter)',
  approved: 'Approved: waiting for a Developer or Admin to release it',
  rejected: 'Rejected: fix it, upload a new version and submit that',
  withdrawn: 'Withdrawn: nothing more will happen',
  released: 'Released: this version is live',
  invalid: 'The package failed validation: upload a corrected package',
};

export const releaseWorkflowId = (versionId: string) => `release:${versionId}`;

export interface ReleaseConfig {
  /** Reviewers get a reminder after a submission waited this long (0 = never). */
  reviewReminderMs: number;
}

export interface ReleaseInput {
  versionId: string;
  miniProgramId: string;
  miniProgramName: string;
  workspaceId: string;
  version: string;
  packageSha256: string;
  submitterId: string;
  parentWorkflowId: string;
  config: ReleaseConfig;
}

export interface TimelineEntry {
  at: string;
  status: ReleaseStatus;
  actorId: string | null;
  action: string;
  comment?: string;
}

export interface ReleaseState {
  versionId: string;
  miniProgramId: string;
  workspaceId: string;
  version: string;
  status: ReleaseStatus;
  submitterId: string;
  submittedAt: string;
  decidedBy: string | null;
  decisionComment: string | null;
  releasedAt: string | null;
  /** What the pipeline is waiting for, in words, for the console. */
  waitingFor: string;
  timeline: TimelineEntry[];
  /** Rises with every change; projections never move a row to a lower seq. */
  seq: number;
}

export interface ActorInput {
  actorId: string;
  /** When given, the command is refused (not_found) unless the version is in this workspace and mini program. */
  workspaceId?: string;
  miniProgramId?: string;
}
export interface DecisionInput extends ActorInput {
  comment?: string;
}

/** Update (not signal): the reviewer needs to know at once whether the approval took. */
export const approveUpdate = defineUpdate<ReleaseState, [DecisionInput]>('approve');
export const rejectUpdate = defineUpdate<ReleaseState, [DecisionInput]>('reject');
export const withdrawUpdate = defineUpdate<ReleaseState, [ActorInput]>('withdraw');
export const releaseUpdate = defineUpdate<ReleaseState, [ActorInput]>('release');
export const releaseStatusQuery = defineQuery<ReleaseState>('status');

/** Sent by a Release to its MiniProgram whenever its status changes. */
export interface ReleaseProgress {
  versionId: string;
  status: ReleaseStatus;
  at: string;
  seq: number;
}
export const releaseProgressSignal = defineSignal<[ReleaseProgress]>('releaseProgress');
