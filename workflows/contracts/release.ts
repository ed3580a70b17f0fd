import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/**
 * A pipeline carries one change of what a mini program serves: a new version (`release`), a
 * return to an earlier one (`rollback`) or taking the mini program off the air (`offline`).
 * Each is reviewed by the workspace's policy; a release then rolls out in stages.
 */
export const pipelineKinds = ['release', 'rollback', 'offline'] as const;
export type PipelineKind = (typeof pipelineKinds)[number];

/** Where a pipeline is. */
export const releaseStatuses = [
  'validating', 'in_review', 'approved', 'rolling_out', 'paused', 'stuck',
  'released', 'offline', 'rejected', 'withdrawn', 'invalid', 'halted', 'aborted', 'superseded',
] as const;
export type ReleaseStatus = (typeof releaseStatuses)[number];
export const terminalReleaseStatuses: readonly ReleaseStatus[] = ['released', 'offline', 'rejected', 'withdrawn', 'invalid', 'halted', 'aborted', 'superseded'];
/** Statuses in which a rollout is serving the new version to part of the users. */
export const rolloutStatuses: readonly ReleaseStatus[] = ['rolling_out', 'paused'];

/** What a pipeline in each status waits for, in words (the API adds names and numbers). */
export const releaseWaitingText: Record<ReleaseStatus, string> = {
  validating: 'Checking the package',
  in_review: 'Waiting for a reviewer to approve or reject',
  approved: 'Approved: waiting for a Developer or Admin to start the rollout',
  rolling_out: 'Rolling out: the stage soaks, then advances when the health check is green',
  paused: 'Paused: waiting for someone to resume, advance or abort the rollout',
  stuck: 'Stuck: a step failed after its retries; an operator can retry it or abort',
  released: 'Released: this version is live for everyone',
  offline: 'Offline: the mini program is not served',
  rejected: 'Rejected: fix it, upload a new version and submit that',
  withdrawn: 'Withdrawn: nothing more will happen',
  invalid: 'The package failed validation: upload a corrected package',
  halted: 'Halted by its health check: the cohort went back to the previous version',
  aborted: 'Aborted: the cohort went back to the previous version',
  superseded: 'Superseded: another pipeline took over this lane',
};

export const releaseWorkflowId = (versionId: string) => `release:${versionId}`;
export const rollbackWorkflowId = (requestId: string) => `rollback:${requestId}`;
export const offlineWorkflowId = (requestId: string) => `offline:${requestId}`;

/** Crash-rate limits of the rollout health check. */
export interface HealthThresholds {
  /** Halt above this crash rate (crashes per launch), absolute. Default 0.0109 (1.09%). */
  maxCrashRate: number;
  /** Halt above this multiple of the live version's crash rate (when the live one has crashes). Default 2. */
  maxRatioToLive: number;
  /** No verdict below this many launches of the new version in the stage. Default 200. */
  minLaunches: number;
}

export interface ReleaseConfig {
  /** Reviewers get a reminder after a submission waited this long (0 = never). */
  reviewReminderMs: number;
  /** Admins get an escalation this long after the reminder (0 = never). */
  reviewEscalationMs?: number;
  /** The review's SLA: due this long after review was requested (0 = none). */
  reviewSlaMs?: number;
  /** Attempts of a failing external step (storage, mail) before the pipeline parks as stuck. */
  stepAttempts?: number;
  /** How often the health check runs while a stage soaks. */
  healthCheckIntervalMs?: number;
  /** Soak time of each stage of the default ladder. */
  defaultSoakMs?: number;
  health?: HealthThresholds;
}

/** The workspace's review policy, read when the pipeline starts. */
export interface ReviewPolicy {
  /** Distinct reviewers who must approve (the submitter never counts). 0 = no review (rollback/offline only). */
  requiredApprovals: number;
}

/** One rung of a rollout: a share of users, or the tester whitelist; soaks before the next. */
export interface RolloutStage {
  kind: 'percent' | 'whitelist';
  /** 0 < percent ≤ 100 for `percent`; ignored for `whitelist`. */
  percent: number;
  soakMs: number;
}

export interface ReleaseInput {
  /** Defaults to 'release' (inputs recorded before kinds existed). */
  kind?: PipelineKind;
  /** Pipeline id part: the version id for a release, the request id for rollback/offline. */
  versionId: string;
  miniProgramId: string;
  miniProgramName: string;
  workspaceId: string;
  version: string;
  packageSha256: string;
  submitterId: string;
  parentWorkflowId: string;
  config: ReleaseConfig;
  policy?: ReviewPolicy;
  hotfix?: boolean;
  /** The version live when the pipeline started: the rollout's baseline, the cohort's way back. */
  baselineVersionId?: string | null;
  /** Rollback/offline: why. */
  reason?: string;
  /** Rollback: the request id (the pipeline's id part); versionId is then the target version. */
  requestId?: string;
  /** The entity's pipeline counter: rollout rows of an older epoch never overwrite a newer one. */
  epoch?: number;
  /** First seq this pipeline writes on the version row. */
  baseSeq?: number;
}

export interface TimelineEntry {
  at: string;
  status: ReleaseStatus;
  actorId: string | null;
  action: string;
  comment?: string;
  /** Numbers and facts of the step: health figures, stage, reason code, error. */
  data?: Record<string, unknown>;
}

export interface Approval {
  actorId: string;
  at: string;
  comment: string | null;
}

export interface Attachment {
  name: string;
  sha256: string;
  size: number;
  contentType: string;
}

export interface Rejection {
  actorId: string;
  at: string;
  reasonCode: string;
  reasonLabel: string;
  comment: string;
  attachment: Attachment | null;
}

/** What a health check saw over the current stage. */
export interface HealthReport {
  at: string;
  launches: number;
  crashes: number;
  crashRate: number;
  liveLaunches: number;
  liveCrashes: number;
  liveCrashRate: number;
  verdict: 'green' | 'red' | 'insufficient_data';
  /** In words: why red, or why no verdict. */
  reason: string;
}

export interface RolloutState {
  plan: RolloutStage[];
  /** Index into plan of the current stage (-1 before the first). */
  stageIndex: number;
  stageStartedAt: string | null;
  /** When the current stage's soak ends (null while paused). */
  soakEndsAt: string | null;
  /** Soak left when paused. */
  remainingSoakMs: number | null;
  /** Share of users served the new version now (0–100), and whether testers get it. */
  percent: number;
  whitelist: boolean;
  lastHealth: HealthReport | null;
}

export interface StuckInfo {
  step: string;
  error: string;
  since: string;
  /** The status the pipeline resumes in after a retry. */
  resumeStatus: ReleaseStatus;
  retries: number;
}

export interface ReleaseState {
  kind: PipelineKind;
  pipelineId: string;
  versionId: string;
  miniProgramId: string;
  workspaceId: string;
  version: string;
  status: ReleaseStatus;
  hotfix: boolean;
  submitterId: string;
  submittedAt: string;
  reason: string | null;
  baselineVersionId: string | null;
  reviewRequestedAt: string | null;
  slaDueAt: string | null;
  remindedAt: string | null;
  escalatedAt: string | null;
  requiredApprovals: number;
  approvals: Approval[];
  rejection: Rejection | null;
  decidedBy: string | null;
  decisionComment: string | null;
  releasedAt: string | null;
  rollout: RolloutState | null;
  stuck: StuckInfo | null;
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
export interface RejectInput extends ActorInput {
  reasonCode: string;
  reasonLabel: string;
  comment: string;
  attachment?: Attachment | null;
}
export interface StartRolloutInput extends ActorInput {
  /** Omitted: the default ladder 1 → 5 → 20 → 50 → 100 with the configured soak. */
  plan?: RolloutStage[];
}

/** Update (not signal): the reviewer needs to know at once whether the approval took. */
export const approveUpdate = defineUpdate<ReleaseState, [DecisionInput]>('approve');
export const rejectUpdate = defineUpdate<ReleaseState, [RejectInput]>('reject');
export const withdrawUpdate = defineUpdate<ReleaseState, [DecisionInput]>('withdraw');
/** Starts the rollout of an approved version (the plan may be edited here). */
export const releaseUpdate = defineUpdate<ReleaseState, [StartRolloutInput]>('release');
export const advanceUpdate = defineUpdate<ReleaseState, [DecisionInput]>('advance');
export const pauseUpdate = defineUpdate<ReleaseState, [DecisionInput]>('pause');
export const resumeUpdate = defineUpdate<ReleaseState, [DecisionInput]>('resume');
export const abortUpdate = defineUpdate<ReleaseState, [DecisionInput]>('abort');
/** Operators: run a stuck step again, or end the pipeline (the cohort goes back). */
export const retryStepUpdate = defineUpdate<ReleaseState, [DecisionInput]>('retryStep');
export const releaseStatusQuery = defineQuery<ReleaseState>('status');
/** From the entity: a hotfix or a rollback took this pipeline's lane. */
export const supersedeSignal = defineSignal<[{ byPipelineId: string; byVersion: string; actorId: string }]>('supersede');

/** Sent by a pipeline to its MiniProgram whenever its status changes. */
export interface ReleaseProgress {
  versionId: string;
  status: ReleaseStatus;
  at: string;
  seq: number;
  /** Absent in progress sent by pipelines recorded before kinds existed. */
  kind?: PipelineKind;
  pipelineId?: string;
}
export const releaseProgressSignal = defineSignal<[ReleaseProgress]>('releaseProgress');

export const defaultHealth: HealthThresholds = { maxCrashRate: 0.0109, maxRatioToLive: 2, minLaunches: 200 };
export const defaultLadder = [1, 5, 20, 50, 100];
export const defaultPlan = (soakMs: number): RolloutStage[] => defaultLadder.map((percent) => ({ kind: 'percent', percent, soakMs }));
