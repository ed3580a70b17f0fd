import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { QueryTypes } from 'sequelize';
import { CsvError, planTesterImport, readTesterCsv, type PlannedAdd, type PlannedRefusal } from '../../lib/csv.js';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { MiniProgramParams, WorkspaceParams, errorResponses, json } from '../schemas.js';
import { previewRoutes } from './preview.js';
import { decodeCursor, encodeCursor } from '../cursor.js';

/** Most rows one CSV import takes (the file limit below is the other bound). */
export const maxImportRows = 10_000;
const maxImportBytes = 2 * 1024 * 1024;

const Person = z.object({ id: z.string(), name: z.string() });
const TesterSchema = z
  .object({
    id: z.string(), email: z.string(), miniProgram: z.object({ id: z.string(), name: z.string() }).nullable(),
    user: Person.nullable(), addedBy: Person.nullable(), createdAt: z.string(),
  })
  .openapi('Tester');

const ReportRowSchema = z
  .object({
    row: z.number().describe('row of the file (1-based, header included), or position in the request'),
    email: z.string(),
    miniProgram: z.object({ id: z.string(), name: z.string() }).nullable(),
    outcome: z.enum(['added', 'exists', 'refused']),
    code: z.string().nullable().describe('why a row was refused: bad_email, unknown_mini_program, duplicate_in_file, unknown_account, too_many_columns'),
    reason: z.string().nullable(),
    testerId: z.string().nullable(),
  })
  .openapi('TesterReportRow');
const ReportSchema = z
  .object({
    rows: z.array(ReportRowSchema),
    summary: z.object({ total: z.number(), added: z.number(), exists: z.number(), refused: z.number(), header: z.boolean(), ms: z.number() }),
  })
  .openapi('TesterReport');

const ListQuery = z.object({
  q: z.string().trim().max(100).optional().describe('part of the address or of the account name'),
  scope: z.enum(['all', 'workspace', 'miniProgram']).default('all').describe('workspace: whole-workspace testers only; miniProgram: testers of miniProgramId (or of any mini program)'),
  miniProgramId: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

const AddBody = z
  .object({
    emails: z.array(z.string().max(320)).max(1000).default([]),
    userIds: z.array(z.string().max(100)).max(1000).default([]),
    miniProgramId: z.string().max(100).nullable().optional().describe('narrow to this mini program of the workspace; omit for the whole workspace'),
  })
  .refine((b) => b.emails.length + b.userIds.length > 0, { message: 'give at least one email or account id', path: ['emails'] })
  .openapi('AddTesters');

const ImportForm = z
  .object({
    file: z.any().openapi({ type: 'string', format: 'binary', description: 'CSV: email[, mini program id or name], header optional' }),
    miniProgramId: z.string().max(100).optional().describe('mini program for rows that name none (default: the whole workspace)'),
  })
  .openapi('ImportTesters');

const TesterParams = WorkspaceParams.extend({ testerId: z.string().min(1).max(100) });


interface TesterRow {
  id: string; email: string; mini_program_id: string | null; mini_program_name: string | null; user_id: string | null; user_name: string | null;
  added_by: string | null; added_by_name: string | null; created_at: Date; cursor_at: string;
}

const testerOut = (r: TesterRow) => ({
  id: r.id, email: r.email, miniProgram: r.mini_program_id ? { id: r.mini_program_id, name: r.mini_program_name ?? 'unknown' } : null,
  user: r.user_id ? { id: r.user_id, name: r.user_name ?? 'unknown' } : null,
  addedBy: r.added_by ? { id: r.added_by, name: r.added_by_name ?? 'unknown' } : null, createdAt: new Date(r.created_at).toISOString(),
});

type ReportRow = z.infer<typeof ReportRowSchema>;

/** Routes of the tester whitelist (and, mounted alongside, preview links). */
export function testerRoutes(deps: ApiDeps) {
  const { sequelize, pool } = deps;

  const miniProgramsOf = (workspaceId: string) =>
    sequelize.query<{ id: string; name: string }>('SELECT id, name FROM mini_programs WHERE workspace_id = :workspaceId', { replacements: { workspaceId }, type: QueryTypes.SELECT });

  async function checkMiniProgram(workspaceId: string, miniProgramId: string | null | undefined) {
    if (!miniProgramId) return null;
    const [mp] = await sequelize.query<{ id: string; name: string }>('SELECT id, name FROM mini_programs WHERE id = :miniProgramId AND workspace_id = :workspaceId', {
      replacements: { workspaceId, miniProgramId }, type: QueryTypes.SELECT,
    });
    if (!mp) throw new AppError(400, 'unknown_mini_program', `No mini program ${miniProgramId} in this workspace`, { miniProgramId });
    return mp;
  }

  /**
   * Adds the planned testers in one statement: a multi-row insert that skips those already on the
   * list, links accounts by address, and writes one audit line per added tester. Returns the ids
   * of the rows it added, by their position in `add`.
   */
  async function insertTesters(workspaceId: string, actorId: string, add: PlannedAdd[], names: Map<string, string>): Promise<Map<number, string>> {
    if (!add.length) return new Map();
    // One random id for the batch, suffixed so that the list (newest first, then by id
    // descending) shows a file's rows in the file's order.
    const base = newId('tst');
    const ids = add.map((_, i) => `${base}${String(maxImportRows - i).padStart(5, '0')}`);
    const { rows } = await pool.query<{ id: string; n: number }>(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS i(id, email, mini_program_id, comment, n)
       ), ins AS (
         INSERT INTO testers (id, workspace_id, mini_program_id, email, user_id, added_by)
         SELECT i.id, $5, i.mini_program_id, i.email, (SELECT u.id FROM users u WHERE lower(u.email) = i.email ORDER BY u.created_at LIMIT 1), $6
         FROM input i ORDER BY i.n
         ON CONFLICT (workspace_id, (coalesce(mini_program_id, '')), email) DO NOTHING
         RETURNING id
       ), audit AS (
         INSERT INTO audit_log (dedupe_key, workspace_id, subject_type, subject_id, actor_id, action, to_state, comment, at)
         SELECT 'tester:added:' || ins.id, $5, 'tester', ins.id, $6, 'added', 'tester', i.comment, now() FROM ins JOIN input i ON i.id = ins.id
       )
       SELECT ins.id, i.n::int AS n FROM ins JOIN input i ON i.id = ins.id`,
      [ids, add.map((a) => a.email), add.map((a) => a.miniProgramId), add.map((a) => (a.miniProgramId ? `${a.email} (mini program ${names.get(a.miniProgramId) ?? a.miniProgramId})` : `${a.email} (whole workspace)`)), workspaceId, actorId],
    );
    return new Map(rows.map((r) => [r.n - 1, r.id]));
  }

  /** The per-row report: planned adds that went in, those already on the list, and the refusals. */
  async function addAndReport(workspaceId: string, actorId: string, add: PlannedAdd[], refused: PlannedRefusal[], mps: { id: string; name: string }[]) {
    const names = new Map(mps.map((m) => [m.id, m.name]));
    const added = await insertTesters(workspaceId, actorId, add, names);
    const mpOf = (id: string | null) => (id ? { id, name: names.get(id) ?? 'unknown' } : null);
    const rows: ReportRow[] = [
      ...add.map((a, i) => {
        const testerId = added.get(i) ?? null;
        return {
          row: a.row, email: a.email, miniProgram: mpOf(a.miniProgramId), outcome: testerId ? ('added' as const) : ('exists' as const), code: null,
          reason: testerId ? null : a.miniProgramId ? 'Already a tester of this mini program' : 'Already a tester of the workspace', testerId,
        };
      }),
      ...refused.map((r) => ({ row: r.row, email: r.email, miniProgram: null, outcome: 'refused' as const, code: r.code, reason: r.reason, testerId: null })),
    ].sort((a, b) => a.row - b.row);
    const count = (o: ReportRow['outcome']) => rows.filter((r) => r.outcome === o).length;
    return { rows, summary: { total: rows.length, added: count('added'), exists: count('exists'), refused: count('refused') } };
  }

  /** A page of testers (the workspace's list, or one mini program's). */
  async function listTesters(workspaceId: string, query: { q?: string; scope: 'all' | 'workspace' | 'miniProgram'; miniProgramId?: string; limit: number; cursor?: string }) {
    const { q, scope, miniProgramId, limit, cursor } = query;
    const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
    const where = [
      't.workspace_id = :workspaceId',
      scope === 'workspace' ? 't.mini_program_id IS NULL' : '',
      scope === 'miniProgram' ? (miniProgramId ? 't.mini_program_id = :miniProgramId' : 't.mini_program_id IS NOT NULL') : '',
      scope === 'all' && miniProgramId ? '(t.mini_program_id = :miniProgramId OR t.mini_program_id IS NULL)' : '',
      q ? '(t.email LIKE :q OR u.name ILIKE :q)' : '',
    ].filter(Boolean).join(' AND ');
    const from = `FROM testers t LEFT JOIN users u ON u.id = t.user_id WHERE ${where}`;
    const replacements = { workspaceId, miniProgramId: miniProgramId ?? null, q: q ? `%${q.toLowerCase().replace(/[\\%_]/g, (m) => `\\${m}`)}%` : null, cAt, cId, limit: limit + 1 };
    const [rows, [total]] = await Promise.all([
      sequelize.query<TesterRow>(
        `SELECT t.id, t.email, t.mini_program_id, m.name AS mini_program_name, t.user_id, u.name AS user_name, t.added_by, a.name AS added_by_name,
           t.created_at, t.created_at::text AS cursor_at
         FROM testers t LEFT JOIN users u ON u.id = t.user_id LEFT JOIN users a ON a.id = t.added_by LEFT JOIN mini_programs m ON m.id = t.mini_program_id
         WHERE ${where} ${cursor ? 'AND (t.created_at, t.id) < (:cAt::timestamptz, :cId)' : ''}
         ORDER BY t.created_at DESC, t.id DESC LIMIT :limit`,
        { replacements, type: QueryTypes.SELECT },
      ),
      sequelize.query<{ n: number }>(`SELECT count(*)::int AS n ${from}`, { replacements, type: QueryTypes.SELECT }),
    ]);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page.map(testerOut), nextCursor: rows.length > limit && last ? encodeCursor(last.cursor_at, last.id) : null, total: total?.n ?? 0 };
  }

  /** Adds testers by email or account id, for the workspace or one mini program; a per-entry report. */
  async function addTesters(workspaceId: string, actorId: string, body: z.infer<typeof AddBody>) {
    const started = performance.now();
    const mp = await checkMiniProgram(workspaceId, body.miniProgramId);
    const accounts = body.userIds.length
      ? await sequelize.query<{ id: string; email: string }>('SELECT id, email FROM users WHERE id IN (:ids)', { replacements: { ids: body.userIds }, type: QueryTypes.SELECT })
      : [];
    const emailOf = new Map(accounts.map((a) => [a.id, a.email]));
    const entries = [
      ...body.emails.map((email, i) => ({ row: i + 1, email, miniProgramRef: null, userId: null as string | null })),
      ...body.userIds.map((id, i) => ({ row: body.emails.length + i + 1, email: emailOf.get(id) ?? '', miniProgramRef: null, userId: id as string | null })),
    ];
    const known = entries.filter((e) => e.userId === null || emailOf.has(e.userId));
    const plan = planTesterImport(known, mp ? [mp] : [], { defaultMiniProgramId: mp?.id ?? null });
    for (const p of plan.refused) if (p.code === 'duplicate_in_file') p.reason = p.reason.replace('row', 'entry');
    const refused: PlannedRefusal[] = [
      ...plan.refused,
      ...entries.filter((e) => e.userId !== null && !emailOf.has(e.userId)).map((e) => ({ row: e.row, email: e.userId!, miniProgramRef: null, code: 'unknown_account' as const, reason: 'No account with this id' })),
    ];
    const report = await addAndReport(workspaceId, actorId, plan.add, refused, mp ? [mp] : []);
    return { rows: report.rows, summary: { ...report.summary, header: false, ms: Math.round(performance.now() - started) } };
  }

  /** Removes a tester (only one of the given mini program's when one is given). */
  async function removeTester(workspaceId: string, testerId: string, actorId: string, miniProgramId: string | null) {
    const [row] = await sequelize.query<{ id: string; email: string }>(
      `WITH del AS (DELETE FROM testers WHERE id = :testerId AND workspace_id = :workspaceId AND (CAST(:miniProgramId AS text) IS NULL OR mini_program_id = :miniProgramId) RETURNING id, email, mini_program_id),
            audit AS (
              INSERT INTO audit_log (dedupe_key, workspace_id, subject_type, subject_id, actor_id, action, from_state, comment, at)
              SELECT 'tester:removed:' || del.id, :workspaceId, 'tester', del.id, :actorId, 'removed', 'tester',
                     del.email || CASE WHEN del.mini_program_id IS NULL THEN ' (whole workspace)' ELSE ' (mini program ' || coalesce(m.name, del.mini_program_id) || ')' END, now()
              FROM del LEFT JOIN mini_programs m ON m.id = del.mini_program_id
            )
       SELECT id, email FROM del`,
      { replacements: { workspaceId, testerId, actorId, miniProgramId }, type: QueryTypes.SELECT },
    );
    if (!row) throw notFound('Tester');
    return { removed: { id: row.id, email: row.email } };
  }

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/testers', tags: ['testers'], summary: 'List testers (search, whole workspace or per mini program, cursor paging)',
        middleware: [requirePermission('tester.read')], request: { params: WorkspaceParams, query: ListQuery },
        responses: { 200: json(z.object({ items: z.array(TesterSchema), nextCursor: z.string().nullable(), total: z.number() }), 'A page'), ...errorResponses },
      }),
      async (c) => c.json(await listTesters(c.req.valid('param').workspaceId, c.req.valid('query')), 200),
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/testers', tags: ['testers'],
        summary: 'Add testers by email or account id, for the whole workspace or one mini program; answers a per-entry report',
        middleware: [requirePermission('tester.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: AddBody } }, required: true } },
        responses: { 200: json(ReportSchema, 'What happened to each entry'), ...errorResponses },
      }),
      async (c) => c.json(await addTesters(c.req.valid('param').workspaceId, c.get('user')!.id, c.req.valid('json')), 200),
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/testers/import', tags: ['testers'],
        summary: `Import testers from CSV (a multipart "file" field or a text/csv body): email[, mini program id or name], header optional, up to ${maxImportRows} rows; answers a per-row report`,
        middleware: [
          requirePermission('tester.manage'),
          bodyLimit({ maxSize: maxImportBytes + 64 * 1024, onError: () => { throw new AppError(413, 'csv_too_large', `The file is larger than the limit of ${maxImportBytes} bytes`, { limit: maxImportBytes }); } }),
        ],
        request: {
          params: WorkspaceParams, query: z.object({ miniProgramId: z.string().max(100).optional() }),
          body: { content: { 'multipart/form-data': { schema: ImportForm }, 'text/csv': { schema: z.string() } }, required: false },
        },
        responses: { 200: json(ReportSchema, 'What happened to each row'), ...errorResponses, 413: json(z.any(), 'The file has too many rows or bytes') },
      }),
      async (c) => {
        const started = performance.now();
        const { workspaceId } = c.req.valid('param');
        const type = (c.req.header('content-type') ?? '').toLowerCase();
        let text: string;
        let defaultMp = c.req.valid('query').miniProgramId;
        if (type.startsWith('multipart/form-data')) {
          const form = c.req.valid('form') as unknown as { file?: unknown; miniProgramId?: string };
          const file = form.file as unknown;
          if (!(file instanceof File)) throw new AppError(400, 'file_required', 'Attach the CSV file in the "file" field');
          text = await file.text();
          defaultMp = form.miniProgramId || defaultMp;
        } else if (type.startsWith('text/csv') || type.startsWith('text/plain')) {
          text = await c.req.text();
        } else {
          throw new AppError(400, 'unsupported_content_type', 'Send the CSV as multipart/form-data (field "file") or as a text/csv body');
        }
        if (text.length > maxImportBytes) throw new AppError(413, 'csv_too_large', `The file is larger than the limit of ${maxImportBytes} bytes`, { limit: maxImportBytes });
        const mp = await checkMiniProgram(workspaceId, defaultMp);
        let read;
        try {
          read = readTesterCsv(text);
        } catch (err) {
          if (err instanceof CsvError) throw new AppError(400, 'csv_invalid', err.message, { line: err.line });
          throw err;
        }
        if (!read.rows.length) throw new AppError(400, 'csv_empty', 'The file has no rows: one email per line, optionally followed by a mini program id or name');
        if (read.rows.length > maxImportRows) throw new AppError(413, 'csv_too_many_rows', `The file has ${read.rows.length} rows; at most ${maxImportRows} at a time`, { rows: read.rows.length, limit: maxImportRows });
        const mps = await miniProgramsOf(workspaceId);
        const plan = planTesterImport(read.rows, mps, { defaultMiniProgramId: mp?.id ?? null, extraColumns: read.extraColumns });
        const report = await addAndReport(workspaceId, c.get('user')!.id, plan.add, plan.refused, mps);
        // Refused rows name the mini program they wrote, when it resolved.
        return c.json({ rows: report.rows, summary: { ...report.summary, header: read.header, ms: Math.round(performance.now() - started) } }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/workspaces/{workspaceId}/testers/{testerId}', tags: ['testers'], summary: 'Remove a tester',
        middleware: [requirePermission('tester.manage')], request: { params: TesterParams },
        responses: { 200: json(z.object({ removed: TesterSchema.pick({ id: true, email: true }) }), 'Removed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, testerId } = c.req.valid('param');
        return c.json(await removeTester(workspaceId, testerId, c.get('user')!.id, null), 200);
      },
    )
    // The same list for one mini program: its owners and developers, and authorized outside developers
    // holding the testers scope, manage its testers here (never the workspace's).
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/testers', tags: ['testers'], summary: 'List the testers of one mini program',
        middleware: [requirePermission('miniProgram.testers.read')], request: { params: MiniProgramParams, query: ListQuery.omit({ scope: true, miniProgramId: true }) },
        responses: { 200: json(z.object({ items: z.array(TesterSchema), nextCursor: z.string().nullable(), total: z.number() }), 'A page'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        await checkMiniProgram(workspaceId, miniProgramId);
        return c.json(await listTesters(workspaceId, { ...c.req.valid('query'), scope: 'miniProgram', miniProgramId }), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/testers', tags: ['testers'], summary: 'Add testers of one mini program; answers a per-entry report',
        middleware: [requirePermission('miniProgram.testers.manage')],
        request: { params: MiniProgramParams, body: { content: { 'application/json': { schema: AddBody } }, required: true } },
        responses: { 200: json(ReportSchema, 'What happened to each entry'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId } = c.req.valid('param');
        return c.json(await addTesters(workspaceId, c.get('user')!.id, { ...c.req.valid('json'), miniProgramId }), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/testers/{testerId}', tags: ['testers'], summary: 'Remove a tester of one mini program',
        middleware: [requirePermission('miniProgram.testers.manage')], request: { params: MiniProgramParams.extend({ testerId: z.string().min(1).max(100) }) },
        responses: { 200: json(z.object({ removed: TesterSchema.pick({ id: true, email: true }) }), 'Removed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, testerId } = c.req.valid('param');
        return c.json(await removeTester(workspaceId, testerId, c.get('user')!.id, miniProgramId), 200);
      },
    )
    .route('/', previewRoutes(deps));
}

