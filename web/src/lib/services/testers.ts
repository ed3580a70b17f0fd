import type { Tester, TesterPage, TesterReport } from '$lib/api/types';
import { api, seg, unwrap } from './http';

/** The tester whitelist of a workspace: list, add, remove, CSV import. */

export type TesterScope = 'all' | 'workspace' | 'miniProgram';

export interface TesterListParams {
  q?: string;
  scope?: TesterScope;
  miniProgramId?: string | null;
  cursor?: string | null;
  limit?: number;
}

const testers = () => api.workspaces[':workspaceId'].testers;

export function listTesters(workspaceId: string, p: TesterListParams = {}): Promise<TesterPage> {
  return unwrap<TesterPage>(
    testers().$get({
      param: { workspaceId: seg(workspaceId) },
      query: {
        q: p.q?.trim() || undefined,
        scope: p.scope ?? 'all',
        miniProgramId: p.miniProgramId || undefined,
        cursor: p.cursor || undefined,
        limit: p.limit ?? 50,
      },
    }),
  );
}

/** Adds addresses (and/or account ids) for the whole workspace, or one mini program. */
export function addTesters(workspaceId: string, emails: string[], miniProgramId: string | null): Promise<TesterReport> {
  return unwrap<TesterReport>(testers().$post({ param: { workspaceId: seg(workspaceId) }, json: { emails, userIds: [], miniProgramId } }));
}

export function removeTester(workspaceId: string, tester: Pick<Tester, 'id'>): Promise<{ removed: { id: string; email: string } }> {
  return unwrap(testers()[':testerId'].$delete({ param: { workspaceId: seg(workspaceId), testerId: seg(tester.id) } }));
}

/** Imports a CSV file (email[, mini program id or name]); rows naming none take `miniProgramId`. */
export function importTesters(workspaceId: string, file: File, miniProgramId: string | null): Promise<TesterReport> {
  return unwrap<TesterReport>(
    testers().import.$post({ param: { workspaceId: seg(workspaceId) }, query: {}, form: { file, ...(miniProgramId ? { miniProgramId } : {}) } }),
  );
}
