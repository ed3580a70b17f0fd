/**
 * The JSAPI check of a version, over the database: what the package uses (stored at upload in
 * `version_jsapis`, or scanned from the stored package), the workspace's catalog (`jsapis`) and
 * the features the mini program holds (lib/feature-grants.ts). Used by the submit route, the
 * version page and the release pipeline's package validation.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { grantedJsapis } from './feature-grants.js';
import { checkPackage, type PackageSummary } from './package-check.js';
import type { PackageStore } from './storage.js';
import {
  decideJsapis, isScriptPath, scanPackageFiles,
  type CatalogRule, type FeatureRef, type JsapiUse, type JsapiVerdict, type MissingJsapi,
} from './jsapi-scan.js';

/** The entries {@link checkPackage} keeps for the scan: scripts and app.json. */
export const jsapiScanTargets = (path: string) => path === 'app.json' || isScriptPath(path);

/** {@link checkPackage} and the JSAPI scan in one read of the zip. */
export async function checkAndScanPackage(zip: Buffer, opts: { version: string }): Promise<{ summary: PackageSummary; uses: JsapiUse[] }> {
  const summary = await checkPackage(zip, { version: opts.version, collect: jsapiScanTargets });
  const uses = scanPackageFiles(summary.collected ?? new Map());
  delete summary.collected; // (the contents are not needed any longer)
  return { summary, uses };
}

/** Records a version's usage (idempotent: a retried upload writes the same rows once). */
export async function storeVersionJsapis(sequelize: Sequelize, versionId: string, uses: readonly JsapiUse[], transaction?: Transaction): Promise<void> {
  const run = async (t: Transaction) => {
    if (uses.length > 0) {
      await sequelize.query(
        `INSERT INTO version_jsapis (version_id, api, file, line, col, via)
         SELECT :versionId, r.api, r.file, r.line, r.col, r.via FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(api text, file text, line int, col int, via text)
         ON CONFLICT DO NOTHING`,
        { replacements: { versionId, rows: JSON.stringify(uses.map((u) => ({ api: u.api, file: u.file, line: u.line, col: u.column, via: u.via }))) }, transaction: t },
      );
    }
    await sequelize.query('UPDATE versions SET jsapis_scanned_at = COALESCE(jsapis_scanned_at, now()) WHERE id = :versionId', { replacements: { versionId }, transaction: t });
  };
  if (transaction) await run(transaction);
  else await sequelize.transaction(run);
}

interface VersionRow {
  id: string;
  mini_program_id: string;
  workspace_id: string;
  version: string;
  status: string;
  package_sha256: string;
  jsapis_scanned_at: Date | null;
}

/**
 * What a version uses: its stored rows, or (a version uploaded before the scan existed) a scan of
 * its stored package, recorded for next time.
 */
export async function versionUses(sequelize: Sequelize, store: PackageStore, v: Pick<VersionRow, 'id' | 'version' | 'package_sha256' | 'jsapis_scanned_at'>): Promise<JsapiUse[]> {
  if (v.jsapis_scanned_at === null) {
    const { uses } = await checkAndScanPackage(await store.get(v.package_sha256), { version: v.version });
    await storeVersionJsapis(sequelize, v.id, uses);
    return uses;
  }
  const rows = await sequelize.query<{ api: string; file: string; line: number; col: number; via: 'call' | 'manifest' }>(
    'SELECT api, file, line, col, via FROM version_jsapis WHERE version_id = :versionId ORDER BY api, file, line, col',
    { replacements: { versionId: v.id }, type: QueryTypes.SELECT },
  );
  return rows.map((r) => ({ api: r.api, file: r.file, line: r.line, column: r.col, via: r.via }));
}

/**
 * Each used API against the workspace's catalog and the features the mini program holds; for an
 * API not granted, the workspace's active features that list it.
 */
export async function decideForMiniProgram(
  sequelize: Sequelize,
  target: { workspaceId: string; miniProgramId: string },
  uses: readonly JsapiUse[],
): Promise<{ verdicts: JsapiVerdict[]; missing: MissingJsapi[] }> {
  const apis = [...new Set(uses.flatMap((u) => (u.api.endsWith('Sync') ? [u.api, u.api.slice(0, -4)] : [u.api])))];
  if (apis.length === 0) return { verdicts: [], missing: [] };
  const [rules, grants] = await Promise.all([
    sequelize.query<{ name: string; permission_level: CatalogRule['permissionLevel']; status: CatalogRule['status'] }>(
      'SELECT name, permission_level, status FROM jsapis WHERE workspace_id = :workspaceId AND name IN (:apis)',
      { replacements: { workspaceId: target.workspaceId, apis }, type: QueryTypes.SELECT },
    ),
    grantedJsapis(sequelize, target.miniProgramId),
  ]);
  const catalog = new Map(rules.map((r) => [r.name, { permissionLevel: r.permission_level, status: r.status }]));
  const granted = new Map<string, FeatureRef[]>();
  for (const [api, list] of grants) granted.set(api, list.map((g) => ({ featureId: g.featureId, name: g.featureName })));
  const first = decideJsapis(uses, catalog, granted);
  const notGranted = first.missing.filter((m) => m.reason === 'not_granted').flatMap((m) => (m.api.endsWith('Sync') ? [m.api, m.api.slice(0, -4)] : [m.api]));
  if (notGranted.length === 0) return first;
  // Which features would grant them: the answer tells the developer what to apply for.
  const offers = await sequelize.query<{ api: string; id: string; key: string; name: string; access_mode: 'direct' | 'activation' }>(
    `SELECT a.api, f.id, f.key, f.name, f.access_mode FROM features f CROSS JOIN LATERAL unnest(f.jsapis) AS a(api)
     WHERE f.workspace_id = :workspaceId AND f.status = 'active' AND a.api IN (:apis) ORDER BY a.api, f.name, f.id`,
    { replacements: { workspaceId: target.workspaceId, apis: notGranted }, type: QueryTypes.SELECT },
  );
  const offeredBy = new Map<string, FeatureRef[]>();
  for (const o of offers) offeredBy.set(o.api, [...(offeredBy.get(o.api) ?? []), { featureId: o.id, key: o.key, name: o.name, accessMode: o.access_mode }]);
  return decideJsapis(uses, catalog, granted, offeredBy);
}

async function versionRow(sequelize: Sequelize, where: { versionId: string; miniProgramId?: string; workspaceId?: string }): Promise<VersionRow | null> {
  const [row] = await sequelize.query<VersionRow>(
    `SELECT v.id, v.mini_program_id, m.workspace_id, v.version, v.status, v.package_sha256, v.jsapis_scanned_at
     FROM versions v JOIN mini_programs m ON m.id = v.mini_program_id
     WHERE v.id = :versionId ${where.miniProgramId ? 'AND m.id = :miniProgramId' : ''} ${where.workspaceId ? 'AND m.workspace_id = :workspaceId' : ''}`,
    { replacements: where, type: QueryTypes.SELECT },
  );
  return row ?? null;
}

/** A version's usage and verdicts, for the version page (null: no such version). */
export async function versionJsapiReport(
  sequelize: Sequelize,
  store: PackageStore,
  where: { workspaceId: string; miniProgramId: string; versionId: string },
): Promise<{ verdicts: JsapiVerdict[]; missing: MissingJsapi[]; callCount: number } | null> {
  const v = await versionRow(sequelize, where);
  if (!v) return null;
  const uses = await versionUses(sequelize, store, v);
  return { ...(await decideForMiniProgram(sequelize, { workspaceId: v.workspace_id, miniProgramId: v.mini_program_id }, uses)), callCount: uses.length };
}

/**
 * The JSAPIs that stop a submission of the version (empty: it may be submitted). A version that
 * is not `uploaded` any more is not checked here: the pipeline answers for it.
 */
export async function missingForSubmit(sequelize: Sequelize, store: PackageStore, where: { workspaceId: string; miniProgramId: string; versionId: string }): Promise<MissingJsapi[]> {
  const v = await versionRow(sequelize, where);
  if (!v || v.status !== 'uploaded') return [];
  const uses = await versionUses(sequelize, store, v);
  return (await decideForMiniProgram(sequelize, { workspaceId: v.workspace_id, miniProgramId: v.mini_program_id }, uses)).missing;
}

/**
 * The pipeline's re-check (features may have been revoked since the submission): the package
 * just read and scanned by the validation activity, against the mini program the pipeline is
 * for. The pipeline is found by its workflow id (`release:<versionId>`, or a rollback's row); a
 * package no version row knows is not checked (nothing to check it against).
 */
export async function missingForPipeline(
  sequelize: Sequelize,
  input: { workflowId: string | null; packageSha256: string; version: string; uses: readonly JsapiUse[] },
): Promise<MissingJsapi[]> {
  let versionId: string | null = null;
  if (input.workflowId?.startsWith('release:')) versionId = input.workflowId.slice('release:'.length);
  else if (input.workflowId) {
    const [p] = await sequelize.query<{ version_id: string }>('SELECT version_id FROM pipelines WHERE id = :id', { replacements: { id: input.workflowId }, type: QueryTypes.SELECT });
    versionId = p?.version_id ?? null;
  }
  let target: { workspaceId: string; miniProgramId: string } | null = null;
  if (versionId) {
    const v = await versionRow(sequelize, { versionId });
    if (v && v.package_sha256 === input.packageSha256) target = { workspaceId: v.workspace_id, miniProgramId: v.mini_program_id };
  }
  if (!target) {
    const rows = await sequelize.query<{ mini_program_id: string; workspace_id: string }>(
      `SELECT DISTINCT v.mini_program_id, m.workspace_id FROM versions v JOIN mini_programs m ON m.id = v.mini_program_id
       WHERE v.package_sha256 = :packageSha256 AND v.version = :version`,
      { replacements: input, type: QueryTypes.SELECT },
    );
    if (rows.length !== 1) return [];
    target = { workspaceId: rows[0].workspace_id, miniProgramId: rows[0].mini_program_id };
  }
  return (await decideForMiniProgram(sequelize, target, input.uses)).missing;
}
