import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { QueryTypes, type Transaction } from 'sequelize';
import { appendAudit } from '../../activities/audit.js';
import { featureDiff, type FeatureSnapshot } from '../../activities/features.js';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import {
  accessModes, activationStatuses, approveActivationUpdate, approveFeatureChangeUpdate, featureActivationWorkflowId, featureActivationWorkflowType, featureChangeKinds,
  featureChangeStatuses, featureChangeWorkflowId, featureChangeWorkflowType, featureStatuses, rejectActivationUpdate, rejectFeatureChangeUpdate, withdrawActivationUpdate,
  withdrawFeatureChangeUpdate, type AccessMode, type ActivationStatus, type FeatureActivationInput, type FeatureChangeInput, type FeatureChangeKind,
  type FeatureChangeStatus, type FeatureDiff, type FeatureFields, type FeatureStatus,
} from '../../workflows/contracts/feature-change.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { MiniProgramParams, WorkspaceParams, errorResponses, json } from '../schemas.js';

/** Most JSAPIs one feature bundles. */
export const maxJsapisPerFeature = 200;

const iso = (d: Date | string | null | undefined) => (d === null || d === undefined ? null : new Date(d).toISOString());
const Person = z.object({ id: z.string(), name: z.string() });
const Diff = z
  .object({
    fields: z.record(z.string(), z.object({ from: z.string().nullable(), to: z.string() })).describe('changed fields: key, name, description, accessMode, status'),
    jsapis: z.object({ added: z.array(z.string()), removed: z.array(z.string()) }),
  })
  .openapi('FeatureDiff');
const Fields = z.object({ key: z.string(), name: z.string(), description: z.string(), accessMode: z.enum(accessModes), jsapis: z.array(z.string()) });
const JsapiRef = z.object({
  name: z.string(), category: z.string().nullable(), permissionLevel: z.string().nullable().describe('open, needs_feature, restricted; null: no longer in the catalog'),
  status: z.string().nullable(),
});

const FeatureSchema = z
  .object({
    id: z.string(), key: z.string(), name: z.string(), description: z.string(), accessMode: z.enum(accessModes), jsapis: z.array(z.string()),
    status: z.enum(featureStatuses), revision: z.number(), createdBy: Person, createdAt: z.string(), updatedAt: z.string(),
    holders: z.number().describe('mini programs holding it (active)'),
    pendingChange: z.object({ id: z.string(), kind: z.enum(featureChangeKinds), proposedBy: Person }).nullable(),
  })
  .openapi('Feature');
const ChangeSchema = z
  .object({
    id: z.string(), featureId: z.string(), kind: z.enum(featureChangeKinds), status: z.enum(featureChangeStatuses), proposal: Fields, baseRevision: z.number(),
    proposedBy: Person, comment: z.string(), decidedBy: Person.nullable(), decidedAt: z.string().nullable(), reason: z.string().nullable(),
    expiresAt: z.string(), createdAt: z.string(), revision: z.number().nullable().describe('the revision an approval produced'),
    diff: Diff.describe('approved: the revision\'s diff; otherwise what the change would do to the current feature'),
  })
  .openapi('FeatureChange');
const RevisionSchema = z
  .object({
    revision: z.number(), kind: z.enum(featureChangeKinds), snapshot: Fields.extend({ status: z.enum(featureStatuses) }), diff: Diff, changeId: z.string(),
    proposedBy: Person, proposedAt: z.string(), approvedBy: Person, approvedAt: z.string(), comment: z.string().nullable(),
  })
  .openapi('FeatureRevision');
const FeatureDetailSchema = z
  .object({
    feature: FeatureSchema.nullable().describe('null while the feature\'s addition waits for approval'),
    jsapis: z.array(JsapiRef).describe('the JSAPIs of the feature (or of the pending addition), as the catalog describes them'),
    pendingChange: ChangeSchema.nullable(), revisions: z.array(RevisionSchema).describe('newest first'), changes: z.array(ChangeSchema).describe('every change, newest first'),
  })
  .openapi('FeatureDetail');
const HoldingSchema = z
  .object({
    feature: z.object({ id: z.string(), key: z.string(), name: z.string(), description: z.string(), accessMode: z.enum(accessModes), jsapis: z.array(z.string()), status: z.enum(featureStatuses) }),
    status: z.enum(activationStatuses).nullable().describe('null: never applied for'),
    attempt: z.number(), message: z.string(), requestedBy: Person.nullable(), requestedAt: z.string().nullable(), decidedBy: Person.nullable(), decidedAt: z.string().nullable(),
    reason: z.string().nullable(),
  })
  .openapi('MiniProgramFeature');

const key = z.string().trim().min(2).max(64).regex(/^[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)*$/, 'a slug: lower-case letters, digits and - _ . between them, starting with a letter');
const jsapiList = z
  .array(z.string().trim().min(1).max(100).regex(/^[A-Za-z][A-Za-z0-9_.]*$/, 'a JSAPI name such as getLocation'))
  .min(1, 'list at least one JSAPI')
  .max(maxJsapisPerFeature, `at most ${maxJsapisPerFeature} JSAPIs`)
  .transform((a) => [...new Set(a)].sort());
const AddBody = z
  .object({
    key, name: z.string().trim().min(1).max(100), description: z.string().trim().max(2000).optional().default(''), accessMode: z.enum(accessModes), jsapis: jsapiList,
    comment: z.string().trim().max(2000).optional().default('').describe('a note for the reviewers'),
  })
  .openapi('ProposeFeature');
const ChangeBody = z
  .object({
    kind: z.enum(['edit', 'archive']),
    name: z.string().trim().min(1).max(100).optional(), description: z.string().trim().max(2000).optional(), accessMode: z.enum(accessModes).optional(), jsapis: jsapiList.optional(),
    comment: z.string().trim().max(2000).optional().default(''),
  })
  .openapi('ProposeFeatureChange');
const ApproveBody = z.object({ comment: z.string().trim().max(2000).optional() }).openapi('ApproveFeatureChange');
const RejectBody = z.object({ reason: z.string().trim().min(1, 'say why').max(2000) }).openapi('RejectFeatureChange');
const ApplyBody = z.object({ message: z.string().trim().max(2000).optional().default('') }).openapi('ApplyForFeature');
const FeatureParams = WorkspaceParams.extend({ featureId: z.string().min(1).max(100) });
const ChangeParams = WorkspaceParams.extend({ changeId: z.string().min(1).max(100) });
const HoldingParams = MiniProgramParams.extend({ featureId: z.string().min(1).max(100) });
const optionalBody = <T extends z.ZodType>(schema: T) => ({ body: { content: { 'application/json': { schema } }, required: false } });

interface FeatureRow {
  id: string; workspace_id: string; key: string; name: string; description: string; access_mode: AccessMode; jsapis: string[]; status: FeatureStatus; revision: number;
  created_by: string; created_at: Date; updated_at: Date; holders?: number; pending_id?: string | null; pending_kind?: FeatureChangeKind | null; pending_by?: string | null;
}
interface ChangeRow {
  id: string; workspace_id: string; feature_id: string; kind: FeatureChangeKind; proposal: FeatureFields; base_revision: number; status: FeatureChangeStatus; proposed_by: string;
  comment: string; decided_by: string | null; decided_at: Date | null; reason: string | null; expires_at: Date; created_at: Date; revision: number | null; diff: FeatureDiff | null;
}
interface RevisionRow {
  feature_id: string; revision: number; snapshot: FeatureSnapshot; diff: FeatureDiff; kind: FeatureChangeKind; change_id: string; proposed_by: string; proposed_at: Date;
  approved_by: string; approved_at: Date; comment: string | null;
}
interface HoldingRow {
  id: string; key: string; name: string; description: string; access_mode: AccessMode; jsapis: string[]; feature_status: FeatureStatus;
  status: ActivationStatus | null; attempt: number | null; message: string | null; requested_by: string | null; requested_at: Date | null; decided_by: string | null; decided_at: Date | null; reason: string | null;
}

const selectFeature = `SELECT f.*,
    (SELECT count(*)::int FROM mini_program_features h WHERE h.feature_id = f.id AND h.status = 'active') AS holders,
    c.id AS pending_id, c.kind AS pending_kind, c.proposed_by AS pending_by
  FROM features f LEFT JOIN feature_changes c ON c.feature_id = f.id AND c.status = 'pending'`;
const selectChange = `SELECT c.*, r.revision, r.diff FROM feature_changes c LEFT JOIN feature_revisions r ON r.change_id = c.id`;

const snapshotOf = (f: FeatureRow): FeatureSnapshot => ({ key: f.key, name: f.name, description: f.description, accessMode: f.access_mode, jsapis: [...f.jsapis], status: f.status });
const uniqueViolation = (err: unknown) => /unique|duplicate/i.test(String((err as { parent?: Error }).parent?.message ?? (err as Error).message));

/**
 * Features (bundles of the workspace's JSAPIs), their changes (each a featureChange workflow a
 * reviewer approves) and revision history, and mini programs holding and applying for them.
 */
export function featuresRoutes({ sequelize, temporal, config }: ApiDeps) {
  async function people(ids: Iterable<string | null | undefined>) {
    const list = [...new Set([...ids].filter((x): x is string => !!x))];
    if (!list.length) return (id: string | null | undefined) => (id ? { id, name: 'unknown' } : null);
    const rows = await sequelize.query<{ id: string; name: string }>('SELECT id, name FROM users WHERE id IN (:list)', { replacements: { list }, type: QueryTypes.SELECT });
    const map = new Map(rows.map((r) => [r.id, r.name]));
    return (id: string | null | undefined) => (id ? { id, name: map.get(id) ?? 'unknown' } : null);
  }

  async function featuresOut(rows: FeatureRow[]) {
    const person = await people(rows.flatMap((r) => [r.created_by, r.pending_by]));
    return rows.map((r) => ({
      id: r.id, key: r.key, name: r.name, description: r.description, accessMode: r.access_mode, jsapis: r.jsapis, status: r.status, revision: r.revision,
      createdBy: person(r.created_by)!, createdAt: iso(r.created_at)!, updatedAt: iso(r.updated_at)!, holders: r.holders ?? 0,
      pendingChange: r.pending_id ? { id: r.pending_id, kind: r.pending_kind!, proposedBy: person(r.pending_by)! } : null,
    }));
  }

  /** Changes as the API shows them; a pending one carries the diff it would make to the current feature. */
  async function changesOut(rows: ChangeRow[]) {
    const person = await people(rows.flatMap((r) => [r.proposed_by, r.decided_by]));
    const ids = [...new Set(rows.filter((r) => !r.diff).map((r) => r.feature_id))];
    const current = ids.length
      ? new Map((await sequelize.query<FeatureRow>('SELECT * FROM features WHERE id IN (:ids)', { replacements: { ids }, type: QueryTypes.SELECT })).map((f) => [f.id, f]))
      : new Map<string, FeatureRow>();
    return rows.map((r) => {
      const base = current.get(r.feature_id);
      const before = base ? snapshotOf(base) : null;
      const after: FeatureSnapshot = r.kind === 'archive' && before ? { ...before, status: 'archived' } : { ...r.proposal, key: before?.key ?? r.proposal.key, status: 'active' };
      return {
        id: r.id, featureId: r.feature_id, kind: r.kind, status: r.status, proposal: r.proposal, baseRevision: r.base_revision, proposedBy: person(r.proposed_by)!,
        comment: r.comment, decidedBy: person(r.decided_by), decidedAt: iso(r.decided_at), reason: r.reason, expiresAt: iso(r.expires_at)!, createdAt: iso(r.created_at)!,
        revision: r.revision ?? null, diff: (r.diff ?? featureDiff(before, after)) as z.infer<typeof Diff>,
      };
    });
  }

  async function revisionsOut(rows: RevisionRow[]) {
    const person = await people(rows.flatMap((r) => [r.proposed_by, r.approved_by]));
    return rows.map((r) => ({
      revision: r.revision, kind: r.kind, snapshot: r.snapshot, diff: r.diff as z.infer<typeof Diff>, changeId: r.change_id, proposedBy: person(r.proposed_by)!,
      proposedAt: iso(r.proposed_at)!, approvedBy: person(r.approved_by)!, approvedAt: iso(r.approved_at)!, comment: r.comment,
    }));
  }

  async function findFeature(workspaceId: string, featureId: string) {
    const [row] = await sequelize.query<FeatureRow>(`${selectFeature} WHERE f.workspace_id = :workspaceId AND f.id = :featureId`, { replacements: { workspaceId, featureId }, type: QueryTypes.SELECT });
    return row ?? null;
  }

  async function findChange(workspaceId: string, changeId: string) {
    const [row] = await sequelize.query<ChangeRow>(`${selectChange} WHERE c.workspace_id = :workspaceId AND c.id = :changeId`, { replacements: { workspaceId, changeId }, type: QueryTypes.SELECT });
    if (!row) throw notFound('Feature change');
    return row;
  }

  /** Every JSAPI must be in the workspace's catalog; restricted ones only in activation-needed features. */
  async function checkJsapis(workspaceId: string, names: string[], accessMode: AccessMode) {
    const rows = await sequelize.query<{ name: string; permission_level: string }>('SELECT name, permission_level FROM jsapis WHERE workspace_id = :workspaceId AND name IN (:names)', {
      replacements: { workspaceId, names }, type: QueryTypes.SELECT,
    });
    const known = new Map(rows.map((r) => [r.name, r.permission_level]));
    const unknown = names.filter((n) => !known.has(n));
    if (unknown.length) throw new AppError(400, 'unknown_jsapi', `Not in this workspace's JSAPI catalog: ${unknown.join(', ')}`, { jsapis: unknown });
    const restricted = names.filter((n) => known.get(n) === 'restricted');
    if (restricted.length && accessMode !== 'activation') {
      throw new AppError(400, 'restricted_needs_activation', `Restricted JSAPIs can only be in an activation-needed feature: ${restricted.join(', ')}`, { jsapis: restricted });
    }
  }

  /** Records the change and starts its workflow; a proposal that races another fails on the unique indexes. */
  async function propose(workspaceId: string, featureId: string, kind: FeatureChangeKind, proposal: FeatureFields, baseRevision: number, proposedBy: string, comment: string) {
    const id = newId('fchg');
    const now = new Date();
    const expiresAt = new Date(now.getTime() + config.featureChangeTtlMs);
    try {
      await sequelize.query(
        `INSERT INTO feature_changes (id, workspace_id, feature_id, kind, proposal, base_revision, status, proposed_by, comment, expires_at, created_at, updated_at, seq)
         VALUES (:id, :workspaceId, :featureId, :kind, :proposal, :baseRevision, 'pending', :proposedBy, :comment, :expiresAt, :now, :now, 0)`,
        { replacements: { id, workspaceId, featureId, kind, proposal: JSON.stringify(proposal), baseRevision, proposedBy, comment, expiresAt, now } },
      );
    } catch (err) {
      if (!uniqueViolation(err)) throw err;
      if (kind === 'add') throw new AppError(409, 'feature_exists', `A feature with the key ${proposal.key} is already proposed`, { key: proposal.key });
      throw new AppError(409, 'change_pending', 'This feature has a change waiting for review: decide or withdraw it first');
    }
    const input: FeatureChangeInput = { changeId: id, workspaceId, featureId, kind, proposal, baseRevision, proposedBy, comment, ttlMs: config.featureChangeTtlMs };
    try {
      await temporal.workflow.start(featureChangeWorkflowType, { workflowId: featureChangeWorkflowId(id), taskQueue: config.temporal.taskQueue, args: [input] });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
        await sequelize.query('DELETE FROM feature_changes WHERE id = :id AND seq = 0', { replacements: { id } });
        throw err;
      }
    }
    return (await changesOut([await findChange(workspaceId, id)]))[0]!;
  }

  async function holdingRow(workspaceId: string, miniProgramId: string, featureId: string, transaction?: Transaction) {
    const [row] = await sequelize.query<{ status: ActivationStatus; attempt: number; requested_by: string }>(
      `SELECT status, attempt, requested_by FROM mini_program_features WHERE workspace_id = :workspaceId AND mini_program_id = :miniProgramId AND feature_id = :featureId${transaction ? ' FOR UPDATE' : ''}`,
      { replacements: { workspaceId, miniProgramId, featureId }, type: QueryTypes.SELECT, transaction },
    );
    return row ?? null;
  }

  async function holdings(workspaceId: string, miniProgramId: string, featureId?: string) {
    const rows = await sequelize.query<HoldingRow>(
      `SELECT f.id, f.key, f.name, f.description, f.access_mode, f.jsapis, f.status AS feature_status,
              h.status, h.attempt, h.message, h.requested_by, h.requested_at, h.decided_by, h.decided_at, h.reason
       FROM features f LEFT JOIN mini_program_features h ON h.feature_id = f.id AND h.mini_program_id = :miniProgramId
       WHERE f.workspace_id = :workspaceId AND (f.status = 'active' OR h.status IS NOT NULL) ${featureId ? 'AND f.id = :featureId' : ''}
       ORDER BY (h.status = 'active') DESC NULLS LAST, (h.status = 'requested') DESC NULLS LAST, f.name, f.id`,
      { replacements: { workspaceId, miniProgramId, featureId: featureId ?? null }, type: QueryTypes.SELECT },
    );
    const person = await people(rows.flatMap((r) => [r.requested_by, r.decided_by]));
    return rows.map((r) => ({
      feature: { id: r.id, key: r.key, name: r.name, description: r.description, accessMode: r.access_mode, jsapis: r.jsapis, status: r.feature_status },
      status: r.status, attempt: r.attempt ?? 0, message: r.message ?? '', requestedBy: person(r.requested_by), requestedAt: iso(r.requested_at),
      decidedBy: person(r.decided_by), decidedAt: iso(r.decided_at), reason: r.reason,
    }));
  }
  const oneHolding = async (workspaceId: string, miniProgramId: string, featureId: string) => (await holdings(workspaceId, miniProgramId, featureId))[0]!;

  async function requireMiniProgram(workspaceId: string, miniProgramId: string) {
    const [mp] = await sequelize.query('SELECT 1 FROM mini_programs WHERE workspace_id = :workspaceId AND id = :miniProgramId', { replacements: { workspaceId, miniProgramId }, type: QueryTypes.SELECT });
    if (!mp) throw notFound('Mini program');
  }

  /** An undecided application of the mini program for the feature: its workflow decides. */
  async function requested(workspaceId: string, miniProgramId: string, featureId: string) {
    await requireMiniProgram(workspaceId, miniProgramId);
    const row = await holdingRow(workspaceId, miniProgramId, featureId);
    if (!row) throw notFound('Application');
    if (row.status !== 'requested') throw new AppError(409, 'wrong_state', `The application is ${row.status}`, { status: row.status });
    return temporal.workflow.getHandle(featureActivationWorkflowId(miniProgramId, featureId, row.attempt));
  }

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/features', tags: ['features'], summary: 'The workspace\'s features (search by key, name or JSAPI; filter by status and access mode)',
        middleware: [requirePermission('feature.read')],
        request: {
          params: WorkspaceParams,
          query: z.object({
            q: z.string().trim().max(100).optional(), status: z.enum([...featureStatuses, 'all']).optional().default('active'), accessMode: z.enum(accessModes).optional(),
            jsapi: z.string().trim().max(100).optional().describe('only features that list this JSAPI'),
          }),
        },
        responses: { 200: json(z.object({ items: z.array(FeatureSchema), pendingAdditions: z.array(ChangeSchema).describe('features proposed but not yet approved') }), 'Features'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { q, status, accessMode, jsapi } = c.req.valid('query');
        const like = q ? `%${q.replace(/[\\%_]/g, (ch) => `\\${ch}`).toLowerCase()}%` : null;
        const rows = await sequelize.query<FeatureRow>(
          `${selectFeature} WHERE f.workspace_id = :workspaceId ${status !== 'all' ? 'AND f.status = :status' : ''} ${accessMode ? 'AND f.access_mode = :accessMode' : ''}
             ${jsapi ? 'AND :jsapi = ANY(f.jsapis)' : ''}
             ${like ? `AND (lower(f.key) LIKE :like OR lower(f.name) LIKE :like OR EXISTS (SELECT 1 FROM unnest(f.jsapis) a WHERE lower(a) LIKE :like))` : ''}
           ORDER BY f.name, f.id LIMIT 1000`,
          { replacements: { workspaceId, status, accessMode: accessMode ?? null, jsapi: jsapi ?? null, like }, type: QueryTypes.SELECT },
        );
        const adds = await sequelize.query<ChangeRow>(`${selectChange} WHERE c.workspace_id = :workspaceId AND c.kind = 'add' AND c.status = 'pending' ORDER BY c.created_at DESC LIMIT 200`, {
          replacements: { workspaceId }, type: QueryTypes.SELECT,
        });
        return c.json({ items: await featuresOut(rows), pendingAdditions: await changesOut(adds) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/features', tags: ['features'],
        summary: 'Propose a new feature: a FeatureChange a reviewer approves (the feature exists from its approval, as revision 1)',
        middleware: [requirePermission('feature.propose')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: AddBody } }, required: true } },
        responses: { 202: json(ChangeSchema, 'Proposed: the reviewers are mailed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        const [taken] = await sequelize.query('SELECT 1 FROM features WHERE workspace_id = :workspaceId AND key = :key', { replacements: { workspaceId, key: body.key }, type: QueryTypes.SELECT });
        if (taken) throw new AppError(409, 'feature_exists', `A feature with the key ${body.key} exists already`, { key: body.key });
        await checkJsapis(workspaceId, body.jsapis, body.accessMode);
        const proposal: FeatureFields = { key: body.key, name: body.name, description: body.description, accessMode: body.accessMode, jsapis: body.jsapis };
        return c.json(await propose(workspaceId, newId('feat'), 'add', proposal, 0, c.get('user')!.id, body.comment), 202);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/features/{featureId}', tags: ['features'],
        summary: 'A feature (or its pending addition): its JSAPIs, the change waiting for review, its revisions with their diffs and every change',
        middleware: [requirePermission('feature.read')], request: { params: FeatureParams },
        responses: { 200: json(FeatureDetailSchema, 'The feature'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, featureId } = c.req.valid('param');
        const [feature, changes, revisions] = await Promise.all([
          findFeature(workspaceId, featureId),
          sequelize.query<ChangeRow>(`${selectChange} WHERE c.workspace_id = :workspaceId AND c.feature_id = :featureId ORDER BY c.created_at DESC, c.id DESC LIMIT 200`, { replacements: { workspaceId, featureId }, type: QueryTypes.SELECT }),
          sequelize.query<RevisionRow>(`SELECT r.* FROM feature_revisions r JOIN features f ON f.id = r.feature_id WHERE f.workspace_id = :workspaceId AND r.feature_id = :featureId ORDER BY r.revision DESC`, {
            replacements: { workspaceId, featureId }, type: QueryTypes.SELECT,
          }),
        ]);
        if (!feature && !changes.length) throw notFound('Feature');
        const changeList = await changesOut(changes);
        const pending = changeList.find((ch) => ch.status === 'pending') ?? null;
        const names = feature?.jsapis ?? pending?.proposal.jsapis ?? changes[0]!.proposal.jsapis;
        const catalog = names.length
          ? await sequelize.query<{ name: string; category: string; permission_level: string; status: string }>('SELECT name, category, permission_level, status FROM jsapis WHERE workspace_id = :workspaceId AND name IN (:names)', {
            replacements: { workspaceId, names }, type: QueryTypes.SELECT,
          })
          : [];
        const byName = new Map(catalog.map((j) => [j.name, j]));
        return c.json({
          feature: feature ? (await featuresOut([feature]))[0]! : null,
          jsapis: names.map((n) => ({ name: n, category: byName.get(n)?.category ?? null, permissionLevel: byName.get(n)?.permission_level ?? null, status: byName.get(n)?.status ?? null })),
          pendingChange: pending, revisions: await revisionsOut(revisions), changes: changeList,
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/features/{featureId}/history', tags: ['features'], summary: 'The feature\'s revisions, newest first, each with its diff, proposer and approver',
        middleware: [requirePermission('feature.read')], request: { params: FeatureParams },
        responses: { 200: json(z.object({ items: z.array(RevisionSchema) }), 'Revisions'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, featureId } = c.req.valid('param');
        if (!(await findFeature(workspaceId, featureId))) throw notFound('Feature');
        const rows = await sequelize.query<RevisionRow>('SELECT * FROM feature_revisions WHERE feature_id = :featureId ORDER BY revision DESC', { replacements: { featureId }, type: QueryTypes.SELECT });
        return c.json({ items: await revisionsOut(rows) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/features/{featureId}/changes', tags: ['features'], summary: 'Every change proposed for the feature (any status), newest first',
        middleware: [requirePermission('feature.read')], request: { params: FeatureParams },
        responses: { 200: json(z.object({ items: z.array(ChangeSchema) }), 'Changes'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, featureId } = c.req.valid('param');
        const rows = await sequelize.query<ChangeRow>(`${selectChange} WHERE c.workspace_id = :workspaceId AND c.feature_id = :featureId ORDER BY c.created_at DESC, c.id DESC LIMIT 500`, {
          replacements: { workspaceId, featureId }, type: QueryTypes.SELECT,
        });
        if (!rows.length && !(await findFeature(workspaceId, featureId))) throw notFound('Feature');
        return c.json({ items: await changesOut(rows) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/features/{featureId}/changes', tags: ['features'],
        summary: 'Propose an edit (name, description, access mode, JSAPIs; the key stays) or the archiving of a feature: a FeatureChange a reviewer approves',
        middleware: [requirePermission('feature.propose')],
        request: { params: FeatureParams, body: { content: { 'application/json': { schema: ChangeBody } }, required: true } },
        responses: { 202: json(ChangeSchema, 'Proposed: the reviewers are mailed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, featureId } = c.req.valid('param');
        const body = c.req.valid('json');
        const feature = await findFeature(workspaceId, featureId);
        if (!feature) throw notFound('Feature');
        if (feature.status === 'archived') throw new AppError(409, 'feature_archived', 'The feature is archived');
        if (feature.pending_id) throw new AppError(409, 'change_pending', 'This feature has a change waiting for review: decide or withdraw it first', { changeId: feature.pending_id });
        const current = snapshotOf(feature);
        const proposal: FeatureFields = {
          key: feature.key, name: body.name ?? feature.name, description: body.description ?? feature.description, accessMode: body.accessMode ?? feature.access_mode,
          jsapis: body.jsapis ?? [...feature.jsapis].sort(),
        };
        if (body.kind === 'edit') {
          const diff = featureDiff(current, { ...proposal, status: 'active' });
          if (!Object.keys(diff.fields).length && !diff.jsapis.added.length && !diff.jsapis.removed.length) throw new AppError(400, 'no_change', 'The proposal changes nothing');
          // Only what the edit brings in is checked against today's catalog; a restricted API kept in a feature turned direct is refused too.
          await checkJsapis(workspaceId, proposal.jsapis, proposal.accessMode);
        }
        return c.json(await propose(workspaceId, featureId, body.kind, body.kind === 'archive' ? { ...current } : proposal, feature.revision, c.get('user')!.id, body.comment), 202);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/feature-changes', tags: ['features'], summary: 'Feature changes of the workspace (default: pending), newest first',
        middleware: [requirePermission('feature.read')],
        request: { params: WorkspaceParams, query: z.object({ status: z.enum([...featureChangeStatuses, 'all']).optional().default('pending') }) },
        responses: { 200: json(z.object({ items: z.array(ChangeSchema) }), 'Changes'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { status } = c.req.valid('query');
        const rows = await sequelize.query<ChangeRow>(
          `${selectChange} WHERE c.workspace_id = :workspaceId ${status !== 'all' ? 'AND c.status = :status' : ''} ORDER BY c.created_at DESC, c.id DESC LIMIT 500`,
          { replacements: { workspaceId, status }, type: QueryTypes.SELECT },
        );
        return c.json({ items: await changesOut(rows) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/feature-changes/{changeId}', tags: ['features'], summary: 'One feature change with its diff',
        middleware: [requirePermission('feature.read')], request: { params: ChangeParams },
        responses: { 200: json(ChangeSchema, 'The change'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, changeId } = c.req.valid('param');
        return c.json((await changesOut([await findChange(workspaceId, changeId)]))[0]!, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/feature-changes/{changeId}/approve', tags: ['features'],
        summary: 'Approve a pending change (Reviewers and Admins, never the proposer: 403 own_change); answers once the new revision is written',
        middleware: [requirePermission('feature.review')], request: { params: ChangeParams, ...optionalBody(ApproveBody) },
        responses: { 200: json(ChangeSchema, 'Approved: the feature\'s next revision'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, changeId } = c.req.valid('param');
        const body = ((c.req.valid('json') as z.infer<typeof ApproveBody> | undefined) ?? {});
        const change = await findChange(workspaceId, changeId);
        const actorId = c.get('user')!.id;
        if (change.proposed_by === actorId) throw new AppError(403, 'own_change', 'You cannot approve a change you proposed yourself: another reviewer must');
        if (change.status !== 'pending') throw new AppError(409, 'wrong_state', `The change is ${change.status}`, { status: change.status });
        await temporal.workflow.getHandle(featureChangeWorkflowId(changeId)).executeUpdate(approveFeatureChangeUpdate, { args: [{ actorId, ...(body.comment ? { reason: body.comment } : {}) }] });
        return c.json((await changesOut([await findChange(workspaceId, changeId)]))[0]!, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/feature-changes/{changeId}/reject', tags: ['features'],
        summary: 'Reject a pending change with a reason (Reviewers and Admins, never the proposer)',
        middleware: [requirePermission('feature.review')], request: { params: ChangeParams, body: { content: { 'application/json': { schema: RejectBody } }, required: true } },
        responses: { 200: json(ChangeSchema, 'Rejected'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, changeId } = c.req.valid('param');
        const { reason } = c.req.valid('json');
        const change = await findChange(workspaceId, changeId);
        const actorId = c.get('user')!.id;
        if (change.proposed_by === actorId) throw new AppError(403, 'own_change', 'You cannot reject a change you proposed yourself: withdraw it instead');
        if (change.status !== 'pending') throw new AppError(409, 'wrong_state', `The change is ${change.status}`, { status: change.status });
        await temporal.workflow.getHandle(featureChangeWorkflowId(changeId)).executeUpdate(rejectFeatureChangeUpdate, { args: [{ actorId, reason }] });
        return c.json((await changesOut([await findChange(workspaceId, changeId)]))[0]!, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/feature-changes/{changeId}/withdraw', tags: ['features'], summary: 'Withdraw your own pending change',
        middleware: [requirePermission('feature.propose')], request: { params: ChangeParams },
        responses: { 200: json(ChangeSchema, 'Withdrawn'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, changeId } = c.req.valid('param');
        const change = await findChange(workspaceId, changeId);
        const actorId = c.get('user')!.id;
        if (change.proposed_by !== actorId) throw new AppError(403, 'not_proposer', 'Only whoever proposed the change can withdraw it');
        if (change.status !== 'pending') throw new AppError(409, 'wrong_state', `The change is ${change.status}`, { status: change.status });
        await temporal.workflow.getHandle(featureChangeWorkflowId(changeId)).executeUpdate(withdrawFeatureChangeUpdate, { args: [{ actorId }] });
        return c.json((await changesOut([await findChange(workspaceId, changeId)]))[0]!, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/features', tags: ['features'],
        summary: 'The features of the workspace as this mini program holds them: active, requested, rejected… or never applied for (status null)',
        middleware: [requirePermission('miniProgram.features.read')], request: { params: MiniProgramParams },
        responses: { 200: json(z.object({ items: z.array(HoldingSchema) }), 'Features'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        await requireMiniProgram(workspaceId, miniProgramId);
        return c.json({ items: await holdings(workspaceId, miniProgramId) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/features/{featureId}/apply', tags: ['features'],
        summary: 'Apply for a feature: a direct one is granted at once; an activation-needed one waits for a reviewer',
        middleware: [requirePermission('miniProgram.features.apply')], request: { params: HoldingParams, ...optionalBody(ApplyBody) },
        responses: { 200: json(HoldingSchema, 'Granted (direct)'), 202: json(HoldingSchema, 'Requested: the reviewers are mailed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, featureId } = c.req.valid('param');
        const message = ((c.req.valid('json') as z.infer<typeof ApplyBody> | undefined)?.message ?? '').trim();
        const userId = c.get('user')!.id;
        await requireMiniProgram(workspaceId, miniProgramId);
        const feature = await findFeature(workspaceId, featureId);
        if (!feature) throw notFound('Feature');
        if (feature.status !== 'active') throw new AppError(409, 'feature_archived', 'The feature is archived: nobody can apply for it');
        const attempt = await sequelize.transaction(async (transaction) => {
          const row = await holdingRow(workspaceId, miniProgramId, featureId, transaction);
          if (row?.status === 'active') throw new AppError(409, 'already_active', 'The mini program holds this feature already');
          if (row?.status === 'requested') throw new AppError(409, 'already_requested', 'The mini program applied for this feature already: the application waits for review');
          const next = (row?.attempt ?? 0) + 1;
          const direct = feature.access_mode === 'direct';
          const now = new Date();
          await sequelize.query(
            `INSERT INTO mini_program_features (mini_program_id, feature_id, workspace_id, status, attempt, message, requested_by, requested_at, decided_by, decided_at, reason, updated_at, seq)
             VALUES (:miniProgramId, :featureId, :workspaceId, :status, :attempt, :message, :userId, :now, :decidedBy, :decidedAt, NULL, :now, 0)
             ON CONFLICT (mini_program_id, feature_id) DO UPDATE SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, message = EXCLUDED.message, requested_by = EXCLUDED.requested_by,
               requested_at = EXCLUDED.requested_at, decided_by = EXCLUDED.decided_by, decided_at = EXCLUDED.decided_at, reason = NULL, updated_at = EXCLUDED.updated_at, seq = 0`,
            {
              replacements: { miniProgramId, featureId, workspaceId, status: direct ? 'active' : 'requested', attempt: next, message, userId, now, decidedBy: direct ? userId : null, decidedAt: direct ? now : null },
              transaction,
            },
          );
          if (direct) {
            await appendAudit(sequelize, {
              dedupeKey: `feature-grant:${miniProgramId}:${featureId}:${next}`, workspaceId, subjectType: 'feature', subjectId: featureId, actorId: userId,
              action: 'activation_granted', fromState: row?.status ?? null, toState: 'active', comment: `${miniProgramId} (direct access)`, at: now.toISOString(),
            }, transaction);
          }
          return direct ? null : next;
        });
        if (attempt === null) return c.json(await oneHolding(workspaceId, miniProgramId, featureId), 200);
        const input: FeatureActivationInput = { miniProgramId, featureId, workspaceId, attempt, requestedBy: userId, message, ttlMs: config.featureChangeTtlMs };
        try {
          await temporal.workflow.start(featureActivationWorkflowType, { workflowId: featureActivationWorkflowId(miniProgramId, featureId, attempt), taskQueue: config.temporal.taskQueue, args: [input] });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
            await sequelize.query(`UPDATE mini_program_features SET status = 'withdrawn', reason = 'could not start the review' WHERE mini_program_id = :miniProgramId AND feature_id = :featureId AND attempt = :attempt AND seq = 0`, {
              replacements: { miniProgramId, featureId, attempt },
            });
            throw err;
          }
        }
        return c.json(await oneHolding(workspaceId, miniProgramId, featureId), 202);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/features/{featureId}/withdraw', tags: ['features'], summary: 'Withdraw your own undecided application',
        middleware: [requirePermission('miniProgram.features.apply')], request: { params: HoldingParams },
        responses: { 200: json(HoldingSchema, 'Withdrawn'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, featureId } = c.req.valid('param');
        const handle = await requested(workspaceId, miniProgramId, featureId);
        await handle.executeUpdate(withdrawActivationUpdate, { args: [{ actorId: c.get('user')!.id }] });
        return c.json(await oneHolding(workspaceId, miniProgramId, featureId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/features/{featureId}/approve', tags: ['features'],
        summary: 'Approve an application for an activation-needed feature (Reviewers and Admins, never the applicant)',
        middleware: [requirePermission('feature.review')], request: { params: HoldingParams, ...optionalBody(ApproveBody) },
        responses: { 200: json(HoldingSchema, 'Active'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, featureId } = c.req.valid('param');
        const body = ((c.req.valid('json') as z.infer<typeof ApproveBody> | undefined) ?? {});
        const handle = await requested(workspaceId, miniProgramId, featureId);
        await handle.executeUpdate(approveActivationUpdate, { args: [{ actorId: c.get('user')!.id, ...(body.comment ? { reason: body.comment } : {}) }] });
        return c.json(await oneHolding(workspaceId, miniProgramId, featureId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/features/{featureId}/reject', tags: ['features'],
        summary: 'Reject an application with a reason (Reviewers and Admins, never the applicant)',
        middleware: [requirePermission('feature.review')], request: { params: HoldingParams, body: { content: { 'application/json': { schema: RejectBody } }, required: true } },
        responses: { 200: json(HoldingSchema, 'Rejected'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, featureId } = c.req.valid('param');
        const { reason } = c.req.valid('json');
        const handle = await requested(workspaceId, miniProgramId, featureId);
        await handle.executeUpdate(rejectActivationUpdate, { args: [{ actorId: c.get('user')!.id, reason }] });
        return c.json(await oneHolding(workspaceId, miniProgramId, featureId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/features/{featureId}/revoke', tags: ['features'],
        summary: 'Take a feature back from a mini program (Admins), with a reason; its JSAPIs are no longer granted',
        middleware: [requirePermission('miniProgram.features.revoke')], request: { params: HoldingParams, body: { content: { 'application/json': { schema: RejectBody } }, required: true } },
        responses: { 200: json(HoldingSchema, 'Revoked'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, featureId } = c.req.valid('param');
        const { reason } = c.req.valid('json');
        const userId = c.get('user')!.id;
        await requireMiniProgram(workspaceId, miniProgramId);
        await sequelize.transaction(async (transaction) => {
          const row = await holdingRow(workspaceId, miniProgramId, featureId, transaction);
          if (!row) throw notFound('Feature of this mini program');
          if (row.status !== 'active') throw new AppError(409, 'wrong_state', `The mini program's hold on this feature is ${row.status}`, { status: row.status });
          const now = new Date();
          await sequelize.query(
            `UPDATE mini_program_features SET status = 'revoked', decided_by = :userId, decided_at = :now, reason = :reason, updated_at = :now
             WHERE mini_program_id = :miniProgramId AND feature_id = :featureId`,
            { replacements: { userId, now, reason, miniProgramId, featureId }, transaction },
          );
          await appendAudit(sequelize, {
            dedupeKey: `feature-revoke:${miniProgramId}:${featureId}:${row.attempt}`, workspaceId, subjectType: 'feature', subjectId: featureId, actorId: userId,
            action: 'activation_revoked', fromState: 'active', toState: 'revoked', comment: `${miniProgramId}: ${reason}`, at: now.toISOString(),
          }, transaction);
        });
        return c.json(await oneHolding(workspaceId, miniProgramId, featureId), 200);
      },
    );
}

