import { QueryTypes, type Sequelize } from 'sequelize';
import type { Config } from '../lib/config.js';
import { pipelineWords } from '../lib/pipeline-words.js';
import { releaseWorkflowId, type ReleaseState } from '../workflows/contracts/release.js';
import { userNames } from './queries.js';

/** A review's clock: how long it waited (until now, or until it was decided) and when it is due. */
export interface SlaClock {
  waitedMs: number;
  dueAt: string | null;
  overdue: boolean;
}

/** What the console shows of a pipeline: its whole state, the people's names, and words on what it waits for. */
export type PipelineView = ReleaseState & {
  names: Record<string, string>;
  waitingWords: string;
  temporalUrl: string;
  sla: SlaClock | null;
  /** Submitted by a member of a developer (ISV) workspace under an authorization: "by <ISV> on behalf of <merchant>". */
  onBehalf?: OnBehalf | null;
};

export interface OnBehalf {
  developerWorkspace: { id: string; name: string };
  merchantWorkspace: { id: string; name: string };
  label: string;
}

/**
 * The developer workspace a submitter acted for: they are no member of the merchant, and belong to
 * a developer workspace that holds (or held) an authorization on the mini program.
 */
export async function onBehalfOf(sequelize: Sequelize, o: { workspaceId: string; miniProgramId: string; userId: string }): Promise<OnBehalf | null> {
  const [row] = await sequelize.query<{ dev_id: string; dev_name: string; merchant_name: string }>(
    `SELECT d.id AS dev_id, d.name AS dev_name, w.name AS merchant_name
     FROM authorizations a
     JOIN memberships m ON m.workspace_id = a.developer_workspace_id AND m.user_id = :userId
     JOIN workspaces d ON d.id = a.developer_workspace_id JOIN workspaces w ON w.id = a.merchant_workspace_id
     WHERE a.merchant_workspace_id = :workspaceId AND :miniProgramId = ANY(a.mini_program_ids)
       AND NOT EXISTS (SELECT 1 FROM memberships mm WHERE mm.workspace_id = :workspaceId AND mm.user_id = :userId)
     ORDER BY a.requested_at DESC LIMIT 1`,
    { replacements: o, type: QueryTypes.SELECT },
  );
  if (!row) return null;
  return {
    developerWorkspace: { id: row.dev_id, name: row.dev_name }, merchantWorkspace: { id: o.workspaceId, name: row.merchant_name },
    label: `by ${row.dev_name} on behalf of ${row.merchant_name}`,
  };
}

/** Timeline actions that end the review (the clock stops at the first of them). */
const reviewEnds = new Set(['approved', 'rejected', 'withdrawn', 'aborted', 'superseded', 'stuck_aborted']);

/** The SLA clock of a pipeline at `now`; null when it never asked for a review. */
export function slaClock(state: ReleaseState, now: Date): SlaClock | null {
  if (!state.reviewRequestedAt) return null;
  const from = Date.parse(state.reviewRequestedAt);
  let until = now.getTime();
  if (state.status !== 'in_review') {
    const end = state.timeline.find((t) => reviewEnds.has(t.action) && Date.parse(t.at) >= from);
    const decided = end?.at ?? state.rejection?.at ?? state.approvals.at(-1)?.at;
    if (decided) until = Date.parse(decided);
  }
  const due = state.slaDueAt ? Date.parse(state.slaDueAt) : null;
  return { waitedMs: Math.max(0, until - from), dueAt: state.slaDueAt, overdue: due !== null && until > due };
}

/** Every user a pipeline names: submitter, approvers, the rejecter, the decider, timeline actors. */
export function peopleOf(state: ReleaseState): string[] {
  const ids = [state.submitterId, state.decidedBy, state.rejection?.actorId, ...state.approvals.map((a) => a.actorId), ...state.timeline.map((t) => t.actorId)];
  return [...new Set(ids.filter((x): x is string => !!x))];
}

export const temporalUrlOf = (config: Pick<Config, 'temporalUiUrl' | 'temporal'>, pipelineId: string) =>
  `${config.temporalUiUrl}/namespaces/${config.temporal.namespace}/workflows/${encodeURIComponent(pipelineId)}`;

/**
 * A state as the current contract has it. Pipelines started before kinds, approvals and rollouts
 * existed (workflows/legacy/release-v1.ts) answer a smaller state: the missing parts are derived.
 */
export function normalizeState(raw: ReleaseState): ReleaseState {
  const s = raw as Partial<ReleaseState> & Pick<ReleaseState, 'versionId' | 'status' | 'submitterId' | 'submittedAt' | 'timeline'>;
  if (s.kind && s.pipelineId && Array.isArray(s.approvals)) return raw;
  const decided = s.decidedBy ?? null;
  const reviewed = s.timeline.find((t) => t.action === 'review_requested');
  const rejectedAt = s.timeline.find((t) => t.action === 'rejected');
  const approvedAt = s.timeline.find((t) => t.action === 'approved');
  return {
    ...raw,
    kind: s.kind ?? 'release',
    pipelineId: s.pipelineId ?? releaseWorkflowId(s.versionId),
    hotfix: s.hotfix ?? false,
    reason: s.reason ?? null,
    baselineVersionId: s.baselineVersionId ?? null,
    reviewRequestedAt: s.reviewRequestedAt ?? reviewed?.at ?? null,
    slaDueAt: s.slaDueAt ?? null,
    remindedAt: s.remindedAt ?? null,
    escalatedAt: s.escalatedAt ?? null,
    requiredApprovals: s.requiredApprovals ?? 1,
    approvals: s.approvals ?? (approvedAt && decided ? [{ actorId: decided, at: approvedAt.at, comment: approvedAt.comment ?? null }] : []),
    rejection: s.rejection ?? (s.status === 'rejected' && decided
      ? { actorId: decided, at: rejectedAt?.at ?? s.submittedAt, reasonCode: 'other', reasonLabel: 'Other', comment: s.decisionComment ?? '', attachment: null }
      : null),
    decisionComment: s.decisionComment ?? null,
    releasedAt: s.releasedAt ?? null,
    rollout: s.rollout ?? null,
    stuck: s.stuck ?? null,
  };
}

/** What a view needs from the database, looked up ahead (while a command runs) for the people it will likely name. */
export interface ViewPrefetch {
  names: Map<string, string>;
  onBehalf: { userId: string; value: OnBehalf | null } | null;
}

export async function prefetchView(sequelize: Sequelize, o: { workspaceId: string; miniProgramId: string; userIds: string[]; submitterId: string | null }): Promise<ViewPrefetch> {
  const [names, onBehalf] = await Promise.all([
    userNames(sequelize, [...new Set(o.userIds)]),
    o.submitterId ? onBehalfOf(sequelize, { workspaceId: o.workspaceId, miniProgramId: o.miniProgramId, userId: o.submitterId }) : null,
  ]);
  return { names, onBehalf: o.submitterId ? { userId: o.submitterId, value: onBehalf } : null };
}

/**
 * A pipeline's state made for reading: names, on whose behalf, the waiting words, the SLA clock.
 * With a prefetch, only what it did not foresee is looked up (usually nothing).
 */
export async function pipelineView(deps: { sequelize: Sequelize; config: Config }, raw: ReleaseState, now = new Date(), prefetched?: ViewPrefetch): Promise<PipelineView> {
  const state = normalizeState(raw);
  const ids = peopleOf(state);
  const missing = prefetched ? ids.filter((id) => !prefetched.names.has(id)) : ids;
  const [found, onBehalf] = await Promise.all([
    missing.length ? userNames(deps.sequelize, missing) : new Map<string, string>(),
    prefetched?.onBehalf?.userId === state.submitterId
      ? prefetched.onBehalf.value
      : onBehalfOf(deps.sequelize, { workspaceId: state.workspaceId, miniProgramId: state.miniProgramId, userId: state.submitterId }),
  ]);
  const names = Object.fromEntries(ids.flatMap((id) => {
    const name = found.get(id) ?? prefetched?.names.get(id);
    return name === undefined ? [] : [[id, name] as const];
  }));
  return {
    ...state,
    names,
    onBehalf,
    waitingWords: pipelineWords(state, { names, now, health: deps.config.release.health }),
    temporalUrl: temporalUrlOf(deps.config, state.pipelineId),
    sla: slaClock(state, now),
  };
}
