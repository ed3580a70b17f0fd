import { defineQuery, defineUpdate } from '@temporalio/workflow';

/**
 * The contracts of the feature workflows.
 *
 * `featureChange`, id feature-change:<changeId>: one proposed addition, edit or archive of a
 * feature. It waits for a reviewer's approval (never the proposer's), a rejection with a reason,
 * the proposer's withdrawal, or expiry; an approval applies the change as the feature's next
 * revision (snapshot + diff) before the update answers.
 *
 * `featureActivation`, id feature-activation:<miniProgramId>:<featureId>:<attempt>: one application
 * of a mini program for an activation-needed feature, reviewed the same way.
 */
export const featureChangeWorkflowId = (changeId: string) => `feature-change:${changeId}`;
export const featureChangeWorkflowType = 'featureChange';
export const featureActivationWorkflowId = (miniProgramId: string, featureId: string, attempt: number) => `feature-activation:${miniProgramId}:${featureId}:${attempt}`;
export const featureActivationWorkflowType = 'featureActivation';

export const accessModes = ['direct', 'activation'] as const;
export type AccessMode = (typeof accessModes)[number];
export const featureStatuses = ['active', 'archived'] as const;
export type FeatureStatus = (typeof featureStatuses)[number];
export const featureChangeKinds = ['add', 'edit', 'archive'] as const;
export type FeatureChangeKind = (typeof featureChangeKinds)[number];
export const featureChangeStatuses = ['pending', 'approved', 'rejected', 'withdrawn', 'expired'] as const;
export type FeatureChangeStatus = (typeof featureChangeStatuses)[number];
export const activationStatuses = ['requested', 'active', 'rejected', 'withdrawn', 'revoked', 'expired'] as const;
export type ActivationStatus = (typeof activationStatuses)[number];

/** Refusal types of these workflows (besides wrong_state): the API maps them to 403. */
export const FeatureFailure = {
  /** A reviewer may not decide their own proposal or application. */
  ownChange: 'own_change',
  /** Only the proposer (applicant) withdraws. */
  notProposer: 'not_proposer',
} as const;

/** What a feature is made of, as proposed and as stored in a revision's snapshot. */
export interface FeatureFields {
  key: string;
  name: string;
  description: string;
  accessMode: AccessMode;
  jsapis: string[];
}

/** A revision's diff: changed fields (old and new value), JSAPIs added and removed. */
export interface FeatureDiff {
  fields: Partial<Record<'key' | 'name' | 'description' | 'accessMode' | 'status', { from: string | null; to: string }>>;
  jsapis: { added: string[]; removed: string[] };
}

export interface FeatureChangeInput {
  changeId: string;
  workspaceId: string;
  featureId: string;
  kind: FeatureChangeKind;
  proposal: FeatureFields;
  baseRevision: number;
  proposedBy: string;
  comment: string;
  /** An undecided change expires after this long. */
  ttlMs: number;
}

export interface FeatureChangeState {
  changeId: string;
  workspaceId: string;
  featureId: string;
  kind: FeatureChangeKind;
  status: FeatureChangeStatus;
  proposedBy: string;
  expiresAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  reason: string | null;
  /** The revision the approval produced. */
  revision: number | null;
  diff: FeatureDiff | null;
  seq: number;
}

export interface FeatureActivationInput {
  miniProgramId: string;
  featureId: string;
  workspaceId: string;
  attempt: number;
  requestedBy: string;
  message: string;
  ttlMs: number;
}

export interface FeatureActivationState {
  miniProgramId: string;
  featureId: string;
  workspaceId: string;
  attempt: number;
  status: ActivationStatus;
  requestedBy: string;
  expiresAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  reason: string | null;
  seq: number;
}

export interface DecideInput {
  actorId: string;
  /** Required to reject; optional on approval. */
  reason?: string;
}

export const approveFeatureChangeUpdate = defineUpdate<FeatureChangeState, [DecideInput]>('approveFeatureChange');
export const rejectFeatureChangeUpdate = defineUpdate<FeatureChangeState, [DecideInput]>('rejectFeatureChange');
export const withdrawFeatureChangeUpdate = defineUpdate<FeatureChangeState, [{ actorId: string }]>('withdrawFeatureChange');
export const featureChangeStatusQuery = defineQuery<FeatureChangeState>('status');

export const approveActivationUpdate = defineUpdate<FeatureActivationState, [DecideInput]>('approveActivation');
export const rejectActivationUpdate = defineUpdate<FeatureActivationState, [DecideInput]>('rejectActivation');
export const withdrawActivationUpdate = defineUpdate<FeatureActivationState, [{ actorId: string }]>('withdrawActivation');
export const featureActivationStatusQuery = defineQuery<FeatureActivationState>('status');
