import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ReleaseConfig, ReleaseStatus, ReviewPolicy } from './release.js';

export const miniProgramWorkflowId = (miniProgramId: string) => `mini-program:${miniProgramId}`;

export const miniProgramStatuses = ['draft', 'developing', 'in_review', 'released', 'offline', 'removed'] as const;
export type MiniProgramStatus = (typeof miniProgramStatuses)[number];

/** A version as the MiniProgram entity sees it: uploaded, then owned by its Release. */
export type VersionStatus = 'uploaded' | ReleaseStatus | 'superseded';

export interface VersionEntry {
  versionId: string;
  version: string;
  status: VersionStatus;
  uploadedBy: string;
  packageSha256: string;
  /** Last seq written for this version's row (carried across continue-as-new). */
  seq: number;
  /** Was live at some time: a rollback may return to it (absent = never). */
  wasLive?: boolean;
}

export interface MiniProgramInput {
  miniProgramId: string;
  workspaceId: string;
  name: string;
  description: string;
  category: string;
  icon: string | null;
  createdBy: string;
  createdAt: string;
  releaseConfig: ReleaseConfig;
  /** Carried across continue-as-new. */
  state?: MiniProgramState;
}

export interface MiniProgramState {
  miniProgramId: string;
  workspaceId: string;
  name: string;
  description: string;
  category: string;
  icon: string | null;
  createdBy: string;
  createdAt: string;
  status: MiniProgramStatus;
  liveVersionId: string | null;
  liveVersion: string | null;
  /** The version in review or being released: one lane per mini program. */
  activeVersionId: string | null;
  versions: VersionEntry[];
  seq: number;
  projected: boolean;
  /** The pipeline in the lane (release, rollback or offline); absent in state recorded before kinds. */
  activePipelineId?: string | null;
  /** Counts pipelines started: their rollout rows carry it so an older one never overwrites a newer one. */
  epoch?: number;
  /** Taken offline / removed. */
  offline?: boolean;
  removed?: boolean;
}

export interface UploadVersionInput {
  versionId: string;
  version: string;
  packageSha256: string;
  packageSize: number;
  pageCount: number;
  notes: string;
  actorId: string;
}

export interface SubmitInput {
  versionId: string;
  actorId: string;
  /** A hotfix may take the lane from a rollout in progress (which is superseded). */
  hotfix?: boolean;
  policy?: ReviewPolicy;
  /** Current settings; falls back to the entity's input.releaseConfig. */
  config?: ReleaseConfig;
}

export interface LifecycleRequest {
  /** Domain id of the request (the pipeline id is derived from it). */
  requestId: string;
  actorId: string;
  reason: string;
  /** requiredApprovals 0 = no review. */
  policy: ReviewPolicy;
  config: ReleaseConfig;
}
export interface RollbackInput extends LifecycleRequest {
  targetVersionId: string;
}
export interface PipelineStarted {
  pipelineId: string;
  kind: 'rollback' | 'offline';
}

/** Waits until the read model shows the entity, so a create answers with a listable row. */
export const syncUpdate = defineUpdate<MiniProgramState, []>('sync');
export const uploadVersionUpdate = defineUpdate<VersionEntry, [UploadVersionInput]>('uploadVersion');
export const submitUpdate = defineUpdate<VersionEntry, [SubmitInput]>('submit');
/** Back to an earlier version that was live: a pipeline of its own (reviewed when the policy says so). */
export const rollbackUpdate = defineUpdate<PipelineStarted, [RollbackInput]>('rollback');
export const takeOfflineUpdate = defineUpdate<PipelineStarted, [LifecycleRequest]>('takeOffline');
/** Only when offline; the mini program stops being listed and resolve answers 404. */
export const removeUpdate = defineUpdate<MiniProgramState, [{ actorId: string; reason?: string }]>('remove');
export const miniProgramStatusQuery = defineQuery<MiniProgramState>('status');
