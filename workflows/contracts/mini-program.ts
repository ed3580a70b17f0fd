import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ReleaseConfig, ReleaseStatus } from './release.js';

export const miniProgramWorkflowId = (miniProgramId: string) => `mini-program:${miniProgramId}`;

export const miniProgramStatuses = ['draft', 'developing', 'in_review', 'released'] as const;
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
}

/** Waits until the read model shows the entity, so a create answers with a listable row. */
export const syncUpdate = defineUpdate<MiniProgramState, []>('sync');
export const uploadVersionUpdate = defineUpdate<VersionEntry, [UploadVersionInput]>('uploadVersion');
export const submitUpdate = defineUpdate<VersionEntry, [SubmitInput]>('submit');
export const miniProgramStatusQuery = defineQuery<MiniProgramState>('status');
