import { QueryTypes, type Sequelize } from 'sequelize';
import { allowedVersionActions } from '../lib/actions.js';
import type { IsvScope, MiniProgramRole, WorkspaceRole } from '../lib/permissions.js';
import type { VersionStatus } from '../workflows/contracts/mini-program.js';

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
const person = (id: string | null, name: string | null) => (id ? { id, name: name ?? 'unknown' } : null);

export interface MiniProgramRowOut {
  id: string; workspace_id: string; name: string; description: string; category: string; icon: string | null; status: string;
  live_version_id: string | null; live_version: string | null; active_version_id: string | null; version_count: number;
  created_by: string; created_at: Date; updated_at: Date;
}

export const miniProgramColumns = `id, workspace_id, name, description, category, icon, status, live_version_id, live_version, active_version_id, version_count, created_by, created_at, updated_at`;

export function miniProgramOut(r: MiniProgramRowOut) {
  return {
    id: r.id, workspaceId: r.workspace_id, name: r.name, description: r.description, category: r.category, icon: r.icon,
    status: r.status as 'draft', liveVersionId: r.live_version_id, liveVersion: r.live_version, activeVersionId: r.active_version_id,
    versionCount: r.version_count, createdBy: r.created_by, createdAt: iso(r.created_at)!, updatedAt: iso(r.updated_at)!,
  };
}

export async function findMiniProgram(sequelize: Sequelize, workspaceId: string, miniProgramId: string) {
  const [row] = await sequelize.query<MiniProgramRowOut>(`SELECT ${miniProgramColumns} FROM mini_programs WHERE id = :miniProgramId AND workspace_id = :workspaceId`, {
    replacements: { workspaceId, miniProgramId }, type: QueryTypes.SELECT,
  });
  return row;
}

interface VersionRowOut {
  id: string; mini_program_id: string; version: string; notes: string; status: VersionStatus; package_sha256: string; package_size: number; page_count: number;
  created_by: string; created_by_name: string | null; submitted_by: string | null; submitted_by_name: string | null; submitted_at: Date | null;
  decided_by: string | null; decided_by_name: string | null; decision_comment: string | null; released_at: Date | null; created_at: Date; updated_at: Date;
  active_version_id: string | null;
}

/**
 * Versions with people's names and the actions the caller may take on each. Scoped to the
 * workspace in the SQL itself, so a version id from elsewhere finds nothing.
 */
export async function listVersions(sequelize: Sequelize, o: { workspaceId: string; miniProgramId: string; versionId?: string; role: WorkspaceRole | null; miniProgramRole?: MiniProgramRole | null; grants?: readonly IsvScope[] | null; userId: string }) {
  const rows = await sequelize.query<VersionRowOut>(
    `SELECT v.id, v.mini_program_id, v.version, v.notes, v.status, v.package_sha256, v.package_size, v.page_count,
       v.created_by, cu.name AS created_by_name, v.submitted_by, su.name AS submitted_by_name, v.submitted_at,
       v.decided_by, du.name AS decided_by_name, v.decision_comment, v.released_at, v.created_at, v.updated_at, m.active_version_id
     FROM versions v JOIN mini_programs m ON m.id = v.mini_program_id AND m.workspace_id = :workspaceId
     LEFT JOIN users cu ON cu.id = v.created_by LEFT JOIN users su ON su.id = v.submitted_by LEFT JOIN users du ON du.id = v.decided_by
     WHERE v.mini_program_id = :miniProgramId ${o.versionId ? 'AND v.id = :versionId' : ''}
     ORDER BY v.created_at DESC, v.id DESC`,
    { replacements: { workspaceId: o.workspaceId, miniProgramId: o.miniProgramId, versionId: o.versionId ?? null }, type: QueryTypes.SELECT },
  );
  return rows.map((r) => ({
    id: r.id, miniProgramId: r.mini_program_id, version: r.version, notes: r.notes, status: r.status, packageSha256: r.package_sha256,
    packageSize: r.package_size, pageCount: r.page_count, createdBy: person(r.created_by, r.created_by_name)!,
    submittedBy: person(r.submitted_by, r.submitted_by_name), submittedAt: iso(r.submitted_at), decidedBy: person(r.decided_by, r.decided_by_name),
    decisionComment: r.decision_comment, releasedAt: iso(r.released_at), createdAt: iso(r.created_at)!, updatedAt: iso(r.updated_at)!,
    allowedActions: allowedVersionActions({ role: o.role, miniProgramRole: o.miniProgramRole ?? null, grants: o.grants ?? null, userId: o.userId, status: r.status, submittedBy: r.submitted_by, laneBusy: r.active_version_id !== null }),
  }));
}

export async function userNames(sequelize: Sequelize, ids: string[]): Promise<Map<string, string>> {
  if (!ids.length) return new Map();
  // A workspace API key acts as itself (its id is the actor): named "API key <name>".
  const rows = await sequelize.query<{ id: string; name: string }>(
    `SELECT id, name FROM users WHERE id IN (:ids)
     UNION ALL SELECT id, 'API key ' || name FROM workspace_api_keys WHERE id IN (:ids)`,
    { replacements: { ids }, type: QueryTypes.SELECT },
  );
  return new Map(rows.map((r) => [r.id, r.name]));
}
