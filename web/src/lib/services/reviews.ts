import type { RejectReason, ReleaseSettings, ReviewPage, ReviewRow } from '$lib/api/types';
import { api, seg, unwrap } from './http';

/** The approvals inbox, my requests, a workspace's review policy and its reject reasons. */

export type ReviewView = 'waiting' | 'decided' | 'requests';
export type PipelineStatus = ReviewRow['status'];

export interface ReviewFilters {
  workspaceId?: string;
  miniProgramId?: string;
  status?: PipelineStatus | '';
  /** Only what has waited at least this many hours. */
  minAgeHours?: number | null;
  cursor?: string | null;
  limit?: number;
}

function query(f: ReviewFilters) {
  return {
    workspaceId: f.workspaceId || undefined,
    miniProgramId: f.miniProgramId || undefined,
    status: f.status || undefined,
    minAgeHours: f.minAgeHours ? String(f.minAgeHours) : undefined,
    cursor: f.cursor || undefined,
    limit: f.limit ? String(f.limit) : undefined,
  };
}

/** "Waiting on me" (oldest first), "Decided by me", or "My requests" (newest first). */
export function listReviews(view: ReviewView, f: ReviewFilters = {}): Promise<ReviewPage> {
  if (view === 'requests') return unwrap<ReviewPage>(api.me.requests.$get({ query: query(f) }));
  return unwrap<ReviewPage>(api.me.reviews.$get({ query: { ...query(f), view } }));
}

/** What waits on the caller (the nav badge): one row fetched, the counts read. */
export async function reviewCounts() {
  return (await listReviews('waiting', { limit: 1 })).counts;
}

const ws = () => api.workspaces[':workspaceId'];

export function getReleaseSettings(workspaceId: string): Promise<ReleaseSettings> {
  return unwrap<ReleaseSettings>(ws()['release-settings'].$get({ param: { workspaceId: seg(workspaceId) } }));
}

export function saveReleaseSettings(workspaceId: string, change: { requiredApprovals?: number; rollbackNeedsReview?: boolean; offlineNeedsReview?: boolean }): Promise<ReleaseSettings> {
  return unwrap<ReleaseSettings>(ws()['release-settings'].$put({ param: { workspaceId: seg(workspaceId) }, json: change }));
}

export async function listRejectReasons(workspaceId: string, includeArchived = false): Promise<RejectReason[]> {
  const res = await unwrap<{ items: RejectReason[] }>(ws()['reject-reasons'].$get({ param: { workspaceId: seg(workspaceId) }, query: { includeArchived: includeArchived ? 'true' : undefined } }));
  return res.items;
}

export function addRejectReason(workspaceId: string, reason: { code: string; label: string; description?: string }): Promise<RejectReason> {
  return unwrap<RejectReason>(ws()['reject-reasons'].$post({ param: { workspaceId: seg(workspaceId) }, json: { ...reason, description: reason.description ?? '' } }));
}

export function updateRejectReason(workspaceId: string, reasonId: string, change: { label?: string; description?: string; archived?: boolean }): Promise<RejectReason> {
  return unwrap<RejectReason>(ws()['reject-reasons'][':reasonId'].$patch({ param: { workspaceId: seg(workspaceId), reasonId: seg(reasonId) }, json: change }));
}
