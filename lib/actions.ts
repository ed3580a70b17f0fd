import { can, type IsvScope, type MiniProgramRole, type Permission, type Principal, type WorkspaceRole, principalsOf } from './permissions.js';
import type { VersionStatus } from '../workflows/contracts/mini-program.js';
import { rolloutStatuses, type Approval, type ReleaseStatus } from '../workflows/contracts/release.js';

/** Every command the console can offer on a version, in the order its buttons show. */
export const versionActions = ['submit', 'approve', 'reject', 'withdraw', 'release', 'advance', 'pause', 'resume', 'abort', 'rollback'] as const;
export type VersionAction = (typeof versionActions)[number];

/** The permission behind each command (the route's gate names the same one). */
export const versionActionPermission: Record<VersionAction, Permission> = {
  submit: 'version.submit', approve: 'version.approve', reject: 'version.reject', withdraw: 'version.withdraw', release: 'version.release',
  advance: 'version.rollout', pause: 'version.rollout', resume: 'version.rollout', abort: 'version.rollout', rollback: 'miniProgram.rollback',
};

/**
 * The commands a user may issue on a version right now: the permission table crossed with the
 * states in which the workflow accepts each command. The console shows exactly these buttons.
 */
export function allowedVersionActions(o: {
  role: WorkspaceRole | null;
  /** The caller's role on this mini program (owner/developer), counted on top of the workspace role. */
  miniProgramRole?: MiniProgramRole | null;
  /** Scopes an authorized developer (ISV) holds on this mini program through an active grant. */
  grants?: readonly IsvScope[] | null;
  userId: string;
  status: VersionStatus;
  submittedBy: string | null;
  /** Another pipeline holds the mini program's lane (in review or rolling out). */
  laneBusy: boolean;
  /** The status of the pipeline in the lane: a rollout in progress can be taken over by a hotfix. */
  laneStatus?: ReleaseStatus | null;
  /** Who already approved the version's pipeline (one approval per reviewer). */
  approvals?: readonly Pick<Approval, 'actorId'>[];
  /** The version's pipeline kind ('release' unless it is a rollback's target). */
  kind?: 'release' | 'rollback' | 'offline';
  /** The version was live once and is not now: a rollback may return to it. */
  rollbackTarget?: boolean;
}): VersionAction[] {
  const who: Principal[] = principalsOf({ role: o.role, miniProgramRole: o.miniProgramRole ?? null, grants: o.grants ?? null });
  const may = (a: VersionAction) => can(who, versionActionPermission[a]);
  const out: VersionAction[] = [];
  const s = o.status;
  // A hotfix may take the lane from a rollout in progress (the console asks for the hotfix flag then).
  const laneOpen = !o.laneBusy || (!!o.laneStatus && rolloutStatuses.includes(o.laneStatus));
  if (s === 'uploaded' && laneOpen && may('submit')) out.push('submit');
  const approvedByMe = (o.approvals ?? []).some((a) => a.actorId === o.userId);
  if (s === 'in_review' && o.submittedBy !== o.userId && !approvedByMe) {
    if (may('approve')) out.push('approve');
    if (may('reject')) out.push('reject');
  }
  if (s === 'approved' && (o.kind ?? 'release') === 'release' && may('release')) out.push('release');
  if (['validating', 'in_review', 'approved'].includes(s) && may('withdraw')) out.push('withdraw');
  if ((s === 'rolling_out' || s === 'paused') && may('advance')) out.push('advance');
  if (s === 'rolling_out' && may('pause')) out.push('pause');
  if (s === 'paused' && may('resume')) out.push('resume');
  if ((s === 'rolling_out' || s === 'paused') && may('abort')) out.push('abort');
  if (o.rollbackTarget && !o.laneBusy && may('rollback')) out.push('rollback');
  return out;
}
