import type { MiniProgram, MiniProgramDetail, MiniProgramPage, MiniProgramStatus } from '$lib/api/types';
import type { Category } from '$lib/utils/format';
import { api, newKey, seg, unwrap } from './http';

/** Mini programs of a workspace: list, create, detail. */

export interface ListParams {
  q?: string;
  status?: MiniProgramStatus | '';
  cursor?: string | null;
  limit?: number;
}

export function listMiniPrograms(workspaceId: string, p: ListParams = {}): Promise<MiniProgramPage> {
  return unwrap<MiniProgramPage>(
    api.workspaces[':workspaceId']['mini-programs'].$get({
      param: { workspaceId: seg(workspaceId) },
      query: {
        q: p.q?.trim() || undefined,
        status: p.status || undefined,
        cursor: p.cursor || undefined,
        limit: p.limit ?? 20,
      },
    }),
  );
}

export interface CreateMiniProgram {
  name: string;
  description: string;
  category: Category;
  icon: string | null;
}

/** `idempotencyKey` (one per form) makes a retried submit land on the same mini program. */
export function createMiniProgram(workspaceId: string, body: CreateMiniProgram, idempotencyKey = newKey()): Promise<MiniProgram> {
  return unwrap<MiniProgram>(
    api.workspaces[':workspaceId']['mini-programs'].$post(
      { param: { workspaceId: seg(workspaceId) }, json: body },
      { headers: { 'Idempotency-Key': idempotencyKey } },
    ),
  );
}

export function getMiniProgram(workspaceId: string, miniProgramId: string): Promise<MiniProgramDetail> {
  return unwrap<MiniProgramDetail>(
    api.workspaces[':workspaceId']['mini-programs'][':miniProgramId'].$get({ param: { workspaceId: seg(workspaceId), miniProgramId: seg(miniProgramId) } }),
  );
}

/** The sample package the server offers to try an upload. */
export const samplePackageUrl = '/api/v1/sample-package';
