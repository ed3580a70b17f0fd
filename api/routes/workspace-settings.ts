import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { QueryTypes } from 'sequelize';
import { appendAudit } from '../../activities/audit.js';
import { mintApiKey, newApiKeyId } from '../../lib/api-keys.js';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { apiKeyScopes, type ApiKeyScope } from '../../lib/permissions.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { WorkspaceParams, errorResponses, json } from '../schemas.js';

/** Regions a workspace can say it operates in (where its users and its data are). */
export const workspaceRegions = [
  { code: 'cn', label: 'Mainland China' }, { code: 'hk', label: 'Hong Kong SAR' }, { code: 'tw', label: 'Taiwan' }, { code: 'jp', label: 'Japan' },
  { code: 'kr', label: 'South Korea' }, { code: 'sg', label: 'Singapore' }, { code: 'my', label: 'Malaysia' }, { code: 'th', label: 'Thailand' },
  { code: 'id', label: 'Indonesia' }, { code: 'ph', label: 'Philippines' }, { code: 'vn', label: 'Vietnam' }, { code: 'in', label: 'India' },
  { code: 'ae', label: 'United Arab Emirates' }, { code: 'eu', label: 'European Union' }, { code: 'uk', label: 'United Kingdom' },
  { code: 'us', label: 'United States' }, { code: 'br', label: 'Brazil' }, { code: 'global', label: 'Global' },
] as const;
const regionCodes = workspaceRegions.map((r) => r.code) as [string, ...string[]];

/** What each key scope lets a server do (the permission table decides; this is its plain words). */
export const apiKeyScopeDescriptions: Record<ApiKeyScope, string> = {
  read: 'read the workspace, its mini programs and versions',
  upload: 'upload new versions of any mini program of the workspace',
  submit: 'submit uploaded versions for review',
  release: 'start the rollout of approved versions',
};

export const maxContacts = 10;
/** Active keys one workspace may hold at once. */
export const maxActiveApiKeys = 50;

const ContactSchema = z
  .object({
    name: z.string().trim().min(1, 'give the contact a name').max(100),
    email: z.email('must be an email address').max(254),
    phone: z.string().trim().regex(/^\+?[0-9][0-9 ()./-]{3,28}[0-9]$/, 'must be a phone number such as +65 6123 4567').optional(),
    role: z.string().trim().max(60).optional().describe('e.g. Technical contact, Billing'),
  })
  .openapi('WorkspaceContact');

const WorkspaceInfoSchema = z
  .object({
    id: z.string(), name: z.string(), code: z.string().describe('read-only: the workspace code others use to find it'), type: z.enum(['merchant', 'developer']),
    company: z.string(), region: z.string().describe('a region code, or empty when not set'), regionLabel: z.string().nullable(), description: z.string(),
    contacts: z.array(ContactSchema), createdAt: z.string(), updatedAt: z.string().nullable(), updatedBy: z.object({ id: z.string(), name: z.string() }).nullable(),
    memberCount: z.number(), miniProgramCount: z.number(),
    regions: z.array(z.object({ code: z.string(), label: z.string() })).describe('the regions to choose from'),
  })
  .openapi('WorkspaceInfo');

const PatchInfoBody = z
  .object({
    name: z.string().trim().min(2, 'at least 2 characters').max(80).optional(),
    company: z.string().trim().max(200).optional(),
    region: z.union([z.enum(regionCodes), z.literal('')]).optional(),
    description: z.string().trim().max(1000).optional(),
    contacts: z.array(ContactSchema).max(maxContacts, `at most ${maxContacts} contacts`).optional(),
    code: z.unknown().optional().describe('read-only: sending it answers 400 code_read_only'),
  })
  .openapi('UpdateWorkspaceInfo');

const ApiKeySchema = z
  .object({
    id: z.string(), name: z.string(), prefix: z.string().describe('the first characters of the key, to tell keys apart'), scopes: z.array(z.enum(apiKeyScopes)),
    expiresAt: z.string().nullable(), lastUsedAt: z.string().nullable(), createdAt: z.string(), createdBy: z.object({ id: z.string(), name: z.string() }).nullable(),
    revokedAt: z.string().nullable(), revokedBy: z.object({ id: z.string(), name: z.string() }).nullable(), status: z.enum(['active', 'expired', 'revoked']),
  })
  .openapi('WorkspaceApiKey');

const NewKeyBody = z
  .object({
    name: z.string().trim().min(1, 'give the key a name, e.g. the server that uses it').max(100),
    scopes: z.array(z.enum(apiKeyScopes)).min(1, 'choose at least one scope').max(apiKeyScopes.length),
    expiresInDays: z.number().int().min(1).max(730).nullable().optional().describe('refused after this many days; null or omitted = never expires'),
  })
  .openapi('NewWorkspaceApiKey');

const KeyParams = WorkspaceParams.extend({ keyId: z.string().min(1).max(100) });

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

interface InfoRow {
  id: string; name: string; code: string; type: 'merchant' | 'developer'; company: string; region: string; description: string;
  contacts: z.infer<typeof ContactSchema>[]; created_at: Date; updated_at: Date | null; updated_by: string | null; updated_by_name: string | null;
  member_count: number; mini_program_count: number;
}

interface KeyRow {
  id: string; name: string; prefix: string; scopes: ApiKeyScope[]; expires_at: Date | null; last_used_at: Date | null; created_at: Date; created_by: string | null;
  created_by_name: string | null; revoked_at: Date | null; revoked_by: string | null; revoked_by_name: string | null; expired: boolean;
}

const person = (id: string | null, name: string | null) => (id ? { id, name: name ?? 'unknown' } : null);

const keyOut = (r: KeyRow) => ({
  id: r.id, name: r.name, prefix: r.prefix, scopes: r.scopes, expiresAt: iso(r.expires_at), lastUsedAt: iso(r.last_used_at), createdAt: iso(r.created_at)!,
  createdBy: person(r.created_by, r.created_by_name), revokedAt: iso(r.revoked_at), revokedBy: person(r.revoked_by, r.revoked_by_name),
  status: r.revoked_at ? ('revoked' as const) : r.expired ? ('expired' as const) : ('active' as const),
});

const selectKey = `SELECT k.id, k.name, k.prefix, k.scopes, k.expires_at, k.last_used_at, k.created_at, k.created_by, cu.name AS created_by_name,
    k.revoked_at, k.revoked_by, ru.name AS revoked_by_name, (k.expires_at IS NOT NULL AND k.expires_at <= now()) AS expired
  FROM workspace_api_keys k LEFT JOIN users cu ON cu.id = k.created_by LEFT JOIN users ru ON ru.id = k.revoked_by`;

/** The workspace's general info and its API keys for server-to-server calls. */
export function workspaceSettingsRoutes({ sequelize }: ApiDeps) {
  async function info(workspaceId: string) {
    const [row] = await sequelize.query<InfoRow>(
      `SELECT w.id, w.name, w.code, w.type,
         -- A workspace made from an account application starts with the applicant's company.
         COALESCE(NULLIF(w.company, ''), (SELECT a.company FROM account_applications a WHERE a.workspace_id = w.id ORDER BY a.created_at LIMIT 1), '') AS company,
         w.region, w.description, w.contacts, w.created_at, w.updated_at, w.updated_by, u.name AS updated_by_name,
         (SELECT count(*)::int FROM memberships m WHERE m.workspace_id = w.id AND m.status = 'active') AS member_count,
         (SELECT count(*)::int FROM mini_programs p WHERE p.workspace_id = w.id AND p.status <> 'removed') AS mini_program_count
       FROM workspaces w LEFT JOIN users u ON u.id = w.updated_by WHERE w.id = :workspaceId`,
      { replacements: { workspaceId }, type: QueryTypes.SELECT },
    );
    if (!row) throw notFound('Workspace');
    return {
      id: row.id, name: row.name, code: row.code, type: row.type, company: row.company, region: row.region,
      regionLabel: workspaceRegions.find((r) => r.code === row.region)?.label ?? null, description: row.description, contacts: row.contacts ?? [],
      createdAt: iso(row.created_at)!, updatedAt: iso(row.updated_at), updatedBy: person(row.updated_by, row.updated_by_name),
      memberCount: row.member_count, miniProgramCount: row.mini_program_count, regions: workspaceRegions.map((r) => ({ code: r.code, label: r.label })),
    };
  }

  async function findKey(workspaceId: string, keyId: string): Promise<KeyRow> {
    const [row] = await sequelize.query<KeyRow>(`${selectKey} WHERE k.id = :keyId AND k.workspace_id = :workspaceId`, { replacements: { workspaceId, keyId }, type: QueryTypes.SELECT });
    if (!row) throw notFound('API key');
    return row;
  }

  const audit = (workspaceId: string, subjectType: 'workspace' | 'api_key', subjectId: string, actorId: string, action: string, comment: string) =>
    appendAudit(sequelize, { dedupeKey: `${action}:${subjectId}:${newId('a')}`, workspaceId, subjectType, subjectId, actorId, action, fromState: null, toState: null, comment, at: new Date().toISOString() });

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}', tags: ['workspace'], summary: 'The workspace\'s general info: name, code, company, region, contacts, created date',
        middleware: [requirePermission('workspace.read')], request: { params: WorkspaceParams },
        responses: { 200: json(WorkspaceInfoSchema, 'General info'), ...errorResponses },
      }),
      async (c) => c.json(await info(c.req.valid('param').workspaceId), 200),
    )
    .openapi(
      createRoute({
        method: 'patch', path: '/workspaces/{workspaceId}', tags: ['workspace'], summary: 'Change the general info (the workspace code is read-only); recorded in the audit log',
        middleware: [requirePermission('workspace.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: PatchInfoBody } }, required: true } },
        responses: { 200: json(WorkspaceInfoSchema, 'Changed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        if (body.code !== undefined) throw new AppError(400, 'code_read_only', 'The workspace code cannot be changed: others use it to find this workspace', { field: 'code' });
        const emails = (body.contacts ?? []).map((x) => x.email.toLowerCase());
        const dup = emails.find((e, i) => emails.indexOf(e) !== i);
        if (dup) throw new AppError(400, 'duplicate_contact', `${dup} is listed twice among the contacts`, { field: 'contacts', email: dup });
        const before = await info(workspaceId);
        const changed = (['name', 'company', 'region', 'description', 'contacts'] as const).filter((k) => body[k] !== undefined && JSON.stringify(body[k]) !== JSON.stringify(before[k]));
        if (changed.length) {
          const user = c.get('user')!;
          await sequelize.query(
            `UPDATE workspaces SET name = COALESCE(:name, name), company = COALESCE(:company, company), region = COALESCE(:region, region),
               description = COALESCE(:description, description), contacts = COALESCE(:contacts::jsonb, contacts), updated_at = now(), updated_by = :userId
             WHERE id = :workspaceId`,
            {
              replacements: {
                workspaceId, userId: user.id, name: body.name ?? null, company: body.company ?? null, region: body.region ?? null, description: body.description ?? null,
                contacts: body.contacts ? JSON.stringify(body.contacts.map((x) => ({ name: x.name, email: x.email, ...(x.phone ? { phone: x.phone } : {}), ...(x.role ? { role: x.role } : {}) }))) : null,
              },
            },
          );
          await audit(workspaceId, 'workspace', workspaceId, user.id, 'workspace_updated', `changed ${changed.join(', ')}${changed.includes('name') ? `: name ${before.name} → ${body.name}` : ''}`);
        }
        return c.json(await info(workspaceId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/api-keys', tags: ['workspace'], summary: 'The workspace\'s API keys (never their secrets), newest first',
        middleware: [requirePermission('apiKey.read')], request: { params: WorkspaceParams },
        responses: { 200: json(z.object({ items: z.array(ApiKeySchema), scopes: z.array(z.object({ scope: z.enum(apiKeyScopes), description: z.string() })) }), 'Keys'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const rows = await sequelize.query<KeyRow>(`${selectKey} WHERE k.workspace_id = :workspaceId ORDER BY k.created_at DESC, k.id DESC LIMIT 500`, { replacements: { workspaceId }, type: QueryTypes.SELECT });
        return c.json({ items: rows.map(keyOut), scopes: apiKeyScopes.map((scope) => ({ scope, description: apiKeyScopeDescriptions[scope] })) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/api-keys', tags: ['workspace'],
        summary: 'Create an API key for a server (answered once: only its hash is kept). Use it as `Authorization: Bearer mpdp_wk_…`',
        middleware: [requirePermission('apiKey.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: NewKeyBody } }, required: true } },
        responses: { 201: json(z.object({ key: ApiKeySchema, secret: z.string().describe('the key itself: shown this once') }), 'Created'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        const scopes = apiKeyScopes.filter((s) => body.scopes.includes(s));
        const [taken] = await sequelize.query<{ id: string }>(
          'SELECT id FROM workspace_api_keys WHERE workspace_id = :workspaceId AND lower(name) = lower(:name) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())',
          { replacements: { workspaceId, name: body.name }, type: QueryTypes.SELECT },
        );
        if (taken) throw new AppError(409, 'api_key_name_taken', `An active key is already named "${body.name}"`, { keyId: taken.id });
        const id = newApiKeyId();
        const minted = mintApiKey(id);
        const [inserted] = await sequelize.query<{ id: string }>(
          `INSERT INTO workspace_api_keys (id, workspace_id, name, prefix, secret_hash, scopes, expires_at, created_by)
           SELECT :id, :workspaceId, :name, :prefix, :hash, ARRAY(SELECT jsonb_array_elements_text(:scopes::jsonb))::text[],
             CASE WHEN :days::int IS NULL THEN NULL ELSE now() + make_interval(days => :days::int) END, :userId
           WHERE (SELECT count(*) FROM workspace_api_keys WHERE workspace_id = :workspaceId AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) < :max
           RETURNING id`,
          {
            replacements: { id, workspaceId, name: body.name, prefix: minted.prefix, hash: minted.hash, scopes: JSON.stringify(scopes), days: body.expiresInDays ?? null, userId: user.id, max: maxActiveApiKeys },
            type: QueryTypes.SELECT,
          },
        );
        if (!inserted) throw new AppError(409, 'api_key_limit', `A workspace has at most ${maxActiveApiKeys} active keys; revoke one first`, { limit: maxActiveApiKeys });
        await audit(workspaceId, 'api_key', id, user.id, 'api_key_created', `${body.name} (${scopes.join(', ')})`);
        return c.json({ key: keyOut(await findKey(workspaceId, id)), secret: minted.token }, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/workspaces/{workspaceId}/api-keys/{keyId}', tags: ['workspace'], summary: 'Revoke an API key: its next request is refused (401 invalid_api_key)',
        middleware: [requirePermission('apiKey.manage')], request: { params: KeyParams },
        responses: { 200: json(ApiKeySchema, 'Revoked'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, keyId } = c.req.valid('param');
        const user = c.get('user')!;
        const before = await findKey(workspaceId, keyId);
        if (before.revoked_at) throw new AppError(409, 'already_revoked', `The key "${before.name}" was revoked already`, { revokedAt: iso(before.revoked_at) });
        await sequelize.query('UPDATE workspace_api_keys SET revoked_at = now(), revoked_by = :userId WHERE id = :keyId AND workspace_id = :workspaceId AND revoked_at IS NULL', {
          replacements: { workspaceId, keyId, userId: user.id },
        });
        await audit(workspaceId, 'api_key', keyId, user.id, 'api_key_revoked', before.name);
        return c.json(keyOut(await findKey(workspaceId, keyId)), 200);
      },
    );
}
