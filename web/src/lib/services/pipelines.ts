import type { BulkPipelinesResult, MiniProgram, PipelineAction, PipelineAnswer, PipelineSummary, RolloutStage, StuckPipeline } from '$lib/api/types';
import { api, apiBase, newKey, seg, unwrap } from './http';

/**
 * Pipelines (release, rollback, offline): rollout commands, the timeline export, a mini
 * program's rollback / take offline / remove, and the operators' stuck list.
 */

const pipelineRoute = () => api.workspaces[':workspaceId'].pipelines[':pipelineId'];
const miniProgramRoute = () => api.workspaces[':workspaceId']['mini-programs'][':miniProgramId'];

/** The id of a version's release pipeline (the workflow id). */
export const releasePipelineId = (versionId: string) => `release:${versionId}`;

export function getPipeline(workspaceId: string, pipelineId: string): Promise<PipelineAnswer> {
  return unwrap<PipelineAnswer>(pipelineRoute().$get({ param: { workspaceId: seg(workspaceId), pipelineId: seg(pipelineId) } }));
}

export interface CommandInput {
  comment?: string;
  /** `release` only: the rollout plan (omitted: the server's default ladder). */
  plan?: RolloutStage[];
  /** `reject` only. */
  reasonCode?: string;
}

/** Runs a command on a pipeline; the answer is its new state, shown as is. */
export function runPipelineAction(workspaceId: string, pipelineId: string, action: PipelineAction, input: CommandInput = {}): Promise<PipelineAnswer> {
  const param = { workspaceId: seg(workspaceId), pipelineId: seg(pipelineId) };
  const options = { headers: { 'Idempotency-Key': newKey() } };
  const comment = input.comment?.trim() || undefined;
  const r = pipelineRoute();
  switch (action) {
    case 'release':
      return unwrap<PipelineAnswer>(r.release.$post({ param, json: { plan: input.plan, comment } }, options));
    case 'advance':
      return unwrap<PipelineAnswer>(r.advance.$post({ param, json: { comment } }, options));
    case 'pause':
      return unwrap<PipelineAnswer>(r.pause.$post({ param, json: { comment } }, options));
    case 'resume':
      return unwrap<PipelineAnswer>(r.resume.$post({ param, json: { comment } }, options));
    case 'abort':
      return unwrap<PipelineAnswer>(r.abort.$post({ param, json: { comment } }, options));
    case 'approve':
      return unwrap<PipelineAnswer>(r.approve.$post({ param, json: { comment } }, options));
    case 'reject':
      return unwrap<PipelineAnswer>(r.reject.$post({ param, json: { reasonCode: input.reasonCode ?? '', comment: comment ?? '' } }, options));
    case 'withdraw':
      return unwrap<PipelineAnswer>(r.withdraw.$post({ param, json: { comment } }, options));
  }
}

/** Where the browser downloads a pipeline's timeline. */
export function timelineUrl(workspaceId: string, pipelineId: string, format: 'json' | 'csv'): string {
  return `${apiBase}/workspaces/${seg(workspaceId)}/pipelines/${seg(pipelineId)}/timeline?format=${format}`;
}

export function listPipelines(workspaceId: string, miniProgramId: string, cursor?: string | null): Promise<{ items: PipelineSummary[]; nextCursor: string | null }> {
  return unwrap(miniProgramRoute().pipelines.$get({ param: { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId) }, query: { cursor: cursor || undefined, limit: '20' } }));
}

/** `idempotencyKey`: one per dialog, so a double submit starts one pipeline. */
export function rollback(workspaceId: string, miniProgramId: string, targetVersionId: string, reason: string, idempotencyKey = newKey()): Promise<PipelineAnswer> {
  return unwrap<PipelineAnswer>(
    miniProgramRoute().rollback.$post(
      { param: { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId) }, json: { targetVersionId, reason: reason.trim() } },
      { headers: { 'Idempotency-Key': idempotencyKey } },
    ),
  );
}

export function takeOffline(workspaceId: string, miniProgramId: string, reason: string, idempotencyKey = newKey()): Promise<PipelineAnswer> {
  return unwrap<PipelineAnswer>(
    miniProgramRoute().offline.$post(
      { param: { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId) }, json: { reason: reason.trim() } },
      { headers: { 'Idempotency-Key': idempotencyKey } },
    ),
  );
}

export function removeMiniProgram(workspaceId: string, miniProgramId: string, reason?: string): Promise<{ miniProgram: MiniProgram }> {
  return unwrap(
    miniProgramRoute().remove.$post(
      { param: { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId) }, json: { reason: reason?.trim() || undefined } },
      { headers: { 'Idempotency-Key': newKey() } },
    ),
  );
}

export function listStuckPipelines(): Promise<{ items: StuckPipeline[] }> {
  return unwrap(api.platform.pipelines.stuck.$get());
}

/** Operators: retry the failed step, or abort, of up to 100 pipelines at once. */
export function bulkPipelines(action: 'retry' | 'abort', ids: string[], comment?: string): Promise<BulkPipelinesResult> {
  const json = { ids, comment: comment?.trim() || undefined };
  const options = { headers: { 'Idempotency-Key': newKey() } };
  return unwrap<BulkPipelinesResult>(action === 'retry' ? api.platform.pipelines.retry.$post({ json }, options) : api.platform.pipelines.abort.$post({ json }, options));
}
