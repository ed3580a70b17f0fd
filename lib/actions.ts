import { can, type WorkspaceRole } from './permissions.js';
import type { VersionStatus } from '../workflows/contracts/mini-program.js';

export type VersionAction = 'submit' | 'approve' | 'reject' | 'withdraw' | 'release';

/**
 * The commands a user may issue on a version right now: the permission table crossed with the
 * states in which the workflow accepts each command. The console shows exactly these buttons.
 */
export function allowedVersionActions(o: {
  role: WorkspaceRole | null;
  userId: string;
  status: VersionStatus;
  submittedBy: string | null;
  laneBusy: boolean;
}): VersionAction[] {
  const out: VersionAction[] = [];
  if (o.status === 'uploaded' && !o.laneBusy && can(o.role, 'version.submit')) out.push('submit');
  if (o.status === 'in_review' && o.submittedBy !== o.userId) {
    if (can(o.role, 'version.approve')) out.push('approve');
    if (can(o.role, 'version.reject')) out.push('reject');
  }
  if (o.status === 'approved' && can(o.role, 'version.release')) out.push('release');
  if (['validating', 'in_review', 'approved'].includes(o.status) && can(o.role, 'version.withdraw')) out.push('withdraw');
  return out;
}
