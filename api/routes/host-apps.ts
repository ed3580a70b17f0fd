import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { duration } from '../../lib/pipeline-words.js';
import { bodyLimit } from 'hono/body-limit';
import { QueryTypes, type Transaction } from 'sequelize';
import { appendAudit } from '../../activities/audit.js';
import { AppError, notFound } from '../../lib/errors.js';
import {
  KeyError, checkPublicKey, generateHostAppKeyPair, issuableAlgorithms, maxPemLength, maxSkewMs, sealPrivateKey, verifyHostAppSignature, type CheckedKey,
  type IssuableAlgorithm,
} from '../../lib/host-app-keys.js';
import { ImageError, checkImage } from '../../lib/image-check.js';
import { newId } from '../../lib/ids.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { publicRoute, requirePermission } from '../middleware.js';
import { AuditSchema, WorkspaceParams, errorResponses, json } from '../schemas.js';
import { decodeCursor, encodeCursor } from '../cursor.js';

export const hostAppPlatforms = ['ios', 'android', 'web'] as const;
export const hostAppStatuses = ['active', 'disabled'] as const;
export const hostAppKeyKinds = ['uploaded', 'app_signing', 'platform'] as const;
export const hostAppKeyStatuses = ['active', 'rotated', 'revoked'] as const;
/** Largest icon edge in pixels (raster icons). */
export const maxIconPixels = 1024;

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
const who = (id: string | null, name: string | null) => (id ? { id, name: name ?? 'unknown' } : null);

const HostAppSchema = z
  .object({
    id: z.string(), workspaceId: z.string(), name: z.string(), platform: z.enum(hostAppPlatforms), bundleId: z.string(), description: z.string(),
    status: z.enum(hostAppStatuses), iconUrl: z.string().nullable().describe('the icon (GET, same session), versioned by content; null when none'),
    activeAppKey: z.object({ id: z.string(), fingerprint: z.string(), algorithm: z.string() }).nullable().describe('the key that verifies the app\'s requests'),
    activePlatformKey: z.object({ id: z.string(), fingerprint: z.string(), algorithm: z.string() }).nullable().describe('the key the platform signs with'),
    keyCount: z.number(), createdBy: z.object({ id: z.string(), name: z.string() }).nullable(), createdAt: z.string(), updatedAt: z.string(),
  })
  .openapi('HostApp');

const HostAppKeySchema = z
  .object({
    id: z.string(), hostAppId: z.string(),
    kind: z.enum(hostAppKeyKinds).describe('uploaded: the app\'s own public key; app_signing: issued to the app, private part shown once and never kept; platform: issued, the platform keeps the private part sealed and signs with it'),
    purpose: z.enum(['app', 'platform']).describe('app: verifies requests the app signs; platform: the app verifies the platform\'s signatures with it'),
    label: z.string(), algorithm: z.string(), bits: z.number(), fingerprint: z.string().describe('SHA256:<base64, no padding> of the SPKI DER'),
    publicKeyPem: z.string(), status: z.enum(hostAppKeyStatuses), verifiesNow: z.boolean().describe('app keys: whether a signature made with it is accepted now'),
    createdBy: z.object({ id: z.string(), name: z.string() }).nullable(), createdAt: z.string(),
    rotatedAt: z.string().nullable(), replacedBy: z.string().nullable(), overlapEndsAt: z.string().nullable(),
    revokedAt: z.string().nullable(), revokedBy: z.object({ id: z.string(), name: z.string() }).nullable(), revokeReason: z.string().nullable(),
  })
  .openapi('HostAppKey');

const IssuedKeySchema = z
  .object({
    key: HostAppKeySchema,
    previous: HostAppKeySchema.nullable().describe('after a rotation: the key it replaced, now rotated'),
    privateKeyPem: z.string().nullable().describe('app signing keys only: the private part, in this answer only; it is not kept anywhere'),
  })
  .openapi('HostAppKeyIssued');

const nameField = z.string().trim().min(1, 'give the app a name').max(80);
const bundleField = z.string().trim().min(1, 'give the bundle id (or the web origin)').max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'letters, digits, dots, dashes, underscores (a web app may give its origin)');
const CreateBody = z
  .object({ name: nameField, platform: z.enum(hostAppPlatforms), bundleId: bundleField, description: z.string().trim().max(1000).default('') })
  .openapi('CreateHostApp');
const UpdateBody = z
  .object({ name: nameField.optional(), platform: z.enum(hostAppPlatforms).optional(), bundleId: bundleField.optional(), description: z.string().trim().max(1000).optional(), status: z.enum(hostAppStatuses).optional() })
  .refine((b) => Object.values(b).some((v) => v !== undefined), { message: 'change at least one of name, platform, bundleId, description, status', path: ['name'] })
  .openapi('UpdateHostApp');
const ListQuery = z.object({
  q: z.string().trim().max(100).optional(), platform: z.enum(hostAppPlatforms).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50), cursor: z.string().max(200).optional(),
});
const pemField = z.string().max(maxPemLength, `a public key in PEM is at most ${maxPemLength} characters`);
const KeyBody = z
  .object({
    mode: z.enum(['upload', 'app_signing', 'platform']).describe('upload: your app\'s public key; app_signing: the platform makes a pair for your app and answers the private part once; platform: the platform makes a pair and keeps the private part'),
    publicKeyPem: pemField.optional().describe('upload only: PEM, RSA ≥ 2048 bits or EC P-256'),
    algorithm: z.enum(issuableAlgorithms).default('ec-p256').describe('app_signing and platform only'),
    label: z.string().trim().max(100).default(''),
  })
  .openapi('AddHostAppKey');
const RotateBody = z
  .object({
    publicKeyPem: pemField.optional().describe('app keys: the new public key to upload; omit to have the platform issue a pair (the private part answered once)'),
    algorithm: z.enum(issuableAlgorithms).default('ec-p256'),
    label: z.string().trim().max(100).optional(),
    overlapMs: z.number().int().min(0).optional().describe('how long the previous key keeps verifying (default and most: HOST_APP_KEY_OVERLAP_MS)'),
  })
  .openapi('RotateHostAppKey');
const RevokeBody = z.object({ reason: z.string().trim().min(1, 'say why the key is revoked').max(500) }).openapi('RevokeHostAppKey');
const AppParams = WorkspaceParams.extend({ appId: z.string().min(1).max(100) });
const KeyParams = AppParams.extend({ keyId: z.string().min(1).max(100) });
const IconForm = z.object({ file: z.any().openapi({ type: 'string', format: 'binary' }) });
const CheckResult = z.object({ verified: z.literal(true), keyFingerprint: z.string(), keyStatus: z.enum(['active', 'rotated']) }).openapi('HostAppSignatureCheck');

interface AppRow {
  id: string; workspace_id: string; name: string; platform: (typeof hostAppPlatforms)[number]; bundle_id: string; description: string; status: (typeof hostAppStatuses)[number];
  icon_sha256: string | null; created_by: string | null; created_by_name: string | null; created_at: Date; updated_at: Date; cursor_at: string;
  app_key: { id: string; fingerprint: string; algorithm: string } | null; platform_key: { id: string; fingerprint: string; algorithm: string } | null; key_count: number;
}
interface KeyRow {
  id: string; host_app_id: string; workspace_id: string; kind: (typeof hostAppKeyKinds)[number]; purpose: 'app' | 'platform'; label: string; algorithm: string; key_bits: number;
  public_pem: string; fingerprint: string; status: (typeof hostAppKeyStatuses)[number]; created_by: string | null; created_by_name: string | null; created_at: Date;
  rotated_at: Date | null; replaced_by: string | null; overlap_ends_at: Date | null; revoked_at: Date | null; revoked_by: string | null; revoked_by_name: string | null;
  revoke_reason: string | null;
}

const selectApp = `
  SELECT a.id, a.workspace_id, a.name, a.platform, a.bundle_id, a.description, a.status, a.icon_sha256, a.created_by, u.name AS created_by_name,
         a.created_at, a.updated_at, a.created_at::text AS cursor_at,
         (SELECT json_build_object('id', k.id, 'fingerprint', k.fingerprint, 'algorithm', k.algorithm) FROM host_app_keys k WHERE k.host_app_id = a.id AND k.purpose = 'app' AND k.status = 'active') AS app_key,
         (SELECT json_build_object('id', k.id, 'fingerprint', k.fingerprint, 'algorithm', k.algorithm) FROM host_app_keys k WHERE k.host_app_id = a.id AND k.purpose = 'platform' AND k.status = 'active') AS platform_key,
         (SELECT count(*)::int FROM host_app_keys k WHERE k.host_app_id = a.id) AS key_count
  FROM host_apps a LEFT JOIN users u ON u.id = a.created_by`;
// Never selects private_sealed: the API has no use for it.
const selectKey = `
  SELECT k.id, k.host_app_id, k.workspace_id, k.kind, k.purpose, k.label, k.algorithm, k.key_bits, k.public_pem, k.fingerprint, k.status, k.created_by,
         cu.name AS created_by_name, k.created_at, k.rotated_at, k.replaced_by, k.overlap_ends_at, k.revoked_at, k.revoked_by, ru.name AS revoked_by_name, k.revoke_reason
  FROM host_app_keys k LEFT JOIN users cu ON cu.id = k.created_by LEFT JOIN users ru ON ru.id = k.revoked_by`;

const appOut = (r: AppRow) => ({
  id: r.id, workspaceId: r.workspace_id, name: r.name, platform: r.platform, bundleId: r.bundle_id, description: r.description, status: r.status,
  iconUrl: r.icon_sha256 ? `/api/v1/workspaces/${encodeURIComponent(r.workspace_id)}/host-apps/${encodeURIComponent(r.id)}/icon?v=${r.icon_sha256.slice(0, 12)}` : null,
  activeAppKey: r.app_key, activePlatformKey: r.platform_key, keyCount: r.key_count,
  createdBy: who(r.created_by, r.created_by_name), createdAt: iso(r.created_at)!, updatedAt: iso(r.updated_at)!,
});

const keyOut = (k: KeyRow, now = new Date()) => ({
  id: k.id, hostAppId: k.host_app_id, kind: k.kind, purpose: k.purpose, label: k.label, algorithm: k.algorithm, bits: k.key_bits, fingerprint: k.fingerprint,
  publicKeyPem: k.public_pem, status: k.status,
  verifiesNow: k.purpose === 'app' && (k.status === 'active' || (k.status === 'rotated' && !!k.overlap_ends_at && k.overlap_ends_at.getTime() > now.getTime())),
  createdBy: who(k.created_by, k.created_by_name), createdAt: iso(k.created_at)!, rotatedAt: iso(k.rotated_at), replacedBy: k.replaced_by, overlapEndsAt: iso(k.overlap_ends_at),
  revokedAt: iso(k.revoked_at), revokedBy: who(k.revoked_by, k.revoked_by_name), revokeReason: k.revoke_reason,
});

const pgCode = (err: unknown) => (err as { parent?: { code?: string; constraint?: string } })?.parent;

/** Host apps of a workspace (the super apps that run its mini programs), their icons and keys; and the public signature check. */
export function hostAppsRoutes(deps: ApiDeps) {
  const { sequelize, config } = deps;

  async function findApp(workspaceId: string, appId: string): Promise<AppRow> {
    const [row] = await sequelize.query<AppRow>(`${selectApp} WHERE a.id = :appId AND a.workspace_id = :workspaceId`, { replacements: { workspaceId, appId }, type: QueryTypes.SELECT });
    if (!row) throw notFound('Host app');
    return row;
  }

  async function findKey(workspaceId: string, appId: string, keyId: string, transaction?: Transaction): Promise<KeyRow> {
    const [row] = await sequelize.query<KeyRow>(`${selectKey} WHERE k.id = :keyId AND k.host_app_id = :appId AND k.workspace_id = :workspaceId`, {
      replacements: { workspaceId, appId, keyId }, type: QueryTypes.SELECT, transaction,
    });
    if (!row) throw notFound('Key');
    return row;
  }

  const listKeys = (appId: string) =>
    sequelize.query<KeyRow>(`${selectKey} WHERE k.host_app_id = :appId ORDER BY (k.status = 'active') DESC, k.created_at DESC, k.id DESC`, { replacements: { appId }, type: QueryTypes.SELECT });

  async function audit(workspaceId: string, appId: string, actorId: string, action: string, comment: string, states: { from?: string | null; to?: string | null } = {}, transaction?: Transaction) {
    await appendAudit(sequelize, {
      dedupeKey: `host_app:${action}:${appId}:${newId('a')}`, workspaceId, subjectType: 'host_app', subjectId: appId, actorId, action,
      fromState: states.from ?? null, toState: states.to ?? null, comment, at: new Date().toISOString(),
    }, transaction);
  }

  const bundleTaken = (platform: string, bundleId: string) =>
    new AppError(409, 'host_app_exists', `This workspace already has a ${platform} host app with the bundle id ${bundleId}`, { platform, bundleId });

  /** The key material a create or rotate asks for: checked upload, or a fresh pair. Throws 400 with the key's code. */
  function material(mode: 'upload' | 'app_signing' | 'platform', publicKeyPem: string | undefined, algorithm: IssuableAlgorithm): CheckedKey & { privatePem: string | null } {
    if (mode === 'upload') {
      if (!publicKeyPem?.trim()) throw new AppError(400, 'validation_failed', 'publicKeyPem: paste the public key to upload', { fields: { publicKeyPem: ['paste the public key to upload'] } });
      try {
        return { ...checkPublicKey(publicKeyPem), privatePem: null };
      } catch (err) {
        if (err instanceof KeyError) throw new AppError(400, err.code, err.message, { field: 'publicKeyPem' });
        throw err;
      }
    }
    if (publicKeyPem?.trim()) throw new AppError(400, 'validation_failed', 'publicKeyPem: only an upload takes a public key; the platform makes this pair', { fields: { publicKeyPem: ['not with this mode'] } });
    return generateHostAppKeyPair(algorithm);
  }

  /** Inserts a key row; for platform keys only the sealed private part is stored. */
  async function insertKey(
    t: Transaction, o: { id: string; appId: string; workspaceId: string; kind: (typeof hostAppKeyKinds)[number]; label: string; key: CheckedKey & { privatePem: string | null }; userId: string },
  ) {
    const purpose = o.kind === 'platform' ? 'platform' : 'app';
    try {
      await sequelize.query(
        `INSERT INTO host_app_keys (id, host_app_id, workspace_id, kind, purpose, label, algorithm, key_bits, public_pem, private_sealed, fingerprint, created_by)
         VALUES (:id, :appId, :workspaceId, :kind, :purpose, :label, :algorithm, :bits, :publicPem, :sealed, :fingerprint, :userId)`,
        {
          replacements: {
            id: o.id, appId: o.appId, workspaceId: o.workspaceId, kind: o.kind, purpose, label: o.label, algorithm: o.key.algorithm, bits: o.key.bits, publicPem: o.key.publicPem,
            sealed: o.kind === 'platform' ? sealPrivateKey(o.key.privatePem!, config.keyEncryptionKey, o.id) : null, fingerprint: o.key.fingerprint, userId: o.userId,
          },
          transaction: t,
        },
      );
    } catch (err) {
      const p = pgCode(err);
      if (p?.code === '23505' && p.constraint === 'host_app_keys_fp_uq') {
        throw new AppError(409, 'key_exists', `This app already has (or had) the key ${o.key.fingerprint}; a key is used once per app`, { fingerprint: o.key.fingerprint });
      }
      if (p?.code === '23505' && p.constraint === 'host_app_keys_active_uq') {
        throw new AppError(409, 'active_key_exists', `This app already has an active ${purpose === 'app' ? 'app' : 'platform'} key: rotate it to replace it`, { purpose });
      }
      throw err;
    }
  }

  const describeKey = (kind: string, k: { algorithm: string; fingerprint: string }) => `${kind === 'uploaded' ? 'uploaded' : kind === 'platform' ? 'platform' : 'app signing'} ${k.algorithm} ${k.fingerprint}`;

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/host-apps', tags: ['host apps'], summary: 'List the host apps (search by name or bundle id, filter by platform)',
        middleware: [requirePermission('hostApp.read')], request: { params: WorkspaceParams, query: ListQuery },
        responses: { 200: json(z.object({ items: z.array(HostAppSchema), nextCursor: z.string().nullable() }), 'A page'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { q, platform, limit, cursor } = c.req.valid('query');
        const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
        const like = q ? `%${q.replace(/[\\%_]/g, (m) => `\\${m}`)}%` : null;
        const rows = await sequelize.query<AppRow>(
          `${selectApp} WHERE a.workspace_id = :workspaceId ${like ? 'AND (a.name ILIKE :like OR a.bundle_id ILIKE :like)' : ''} ${platform ? 'AND a.platform = :platform' : ''}
           ${cursor ? 'AND (a.created_at, a.id) < (:cAt::timestamptz, :cId)' : ''} ORDER BY a.created_at DESC, a.id DESC LIMIT :limit`,
          { replacements: { workspaceId, like, platform: platform ?? null, cAt, cId, limit: limit + 1 }, type: QueryTypes.SELECT },
        );
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        return c.json({ items: page.map(appOut), nextCursor: rows.length > limit && last ? encodeCursor(last.cursor_at, last.id) : null }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/host-apps', tags: ['host apps'], summary: 'Add a host app (name, platform, bundle id, description); the icon is uploaded after',
        middleware: [requirePermission('hostApp.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: CreateBody } }, required: true } },
        responses: { 201: json(HostAppSchema, 'Created'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        const id = newId('ha');
        await sequelize.transaction(async (t) => {
          try {
            await sequelize.query(
              `INSERT INTO host_apps (id, workspace_id, name, platform, bundle_id, description, created_by, updated_by) VALUES (:id, :workspaceId, :name, :platform, :bundleId, :description, :userId, :userId)`,
              { replacements: { id, workspaceId, ...body, userId: user.id }, transaction: t },
            );
          } catch (err) {
            if (pgCode(err)?.code === '23505') throw bundleTaken(body.platform, body.bundleId);
            throw err;
          }
          await audit(workspaceId, id, user.id, 'host_app_created', `${body.name} (${body.platform}, ${body.bundleId})`, { to: 'active' }, t);
        });
        return c.json(appOut(await findApp(workspaceId, id)), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/host-apps/{appId}', tags: ['host apps'], summary: 'One host app with its keys (public parts only) and its audit trail',
        middleware: [requirePermission('hostApp.read')], request: { params: AppParams },
        responses: { 200: json(z.object({ app: HostAppSchema, keys: z.array(HostAppKeySchema), audit: z.array(AuditSchema) }).openapi('HostAppDetail'), 'The app'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, appId } = c.req.valid('param');
        const app = await findApp(workspaceId, appId);
        const [keys, audit] = await Promise.all([
          listKeys(appId),
          sequelize.query<{ id: string; actor_id: string | null; actor_name: string | null; action: string; from_state: string | null; to_state: string | null; comment: string | null; at: Date }>(
            `SELECT a.id::text AS id, a.actor_id, u.name AS actor_name, a.action, a.from_state, a.to_state, a.comment, a.at
             FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
             WHERE a.subject_type = 'host_app' AND a.subject_id = :appId AND a.workspace_id = :workspaceId ORDER BY a.at DESC, a.id DESC LIMIT 100`,
            { replacements: { workspaceId, appId }, type: QueryTypes.SELECT },
          ),
        ]);
        const now = new Date();
        return c.json({
          app: appOut(app), keys: keys.map((k) => keyOut(k, now)),
          audit: audit.map((a) => ({ id: a.id, actor: who(a.actor_id, a.actor_name), action: a.action, fromState: a.from_state, toState: a.to_state, comment: a.comment, at: iso(a.at)! })),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'patch', path: '/workspaces/{workspaceId}/host-apps/{appId}', tags: ['host apps'], summary: 'Edit the app\'s info, or disable / enable it (a disabled app\'s signatures are refused)',
        middleware: [requirePermission('hostApp.manage')],
        request: { params: AppParams, body: { content: { 'application/json': { schema: UpdateBody } }, required: true } },
        responses: { 200: json(HostAppSchema, 'Changed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, appId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        const before = await findApp(workspaceId, appId);
        await sequelize.transaction(async (t) => {
          try {
            await sequelize.query(
              `UPDATE host_apps SET name = COALESCE(:name, name), platform = COALESCE(:platform, platform), bundle_id = COALESCE(:bundleId, bundle_id),
                 description = COALESCE(:description, description), status = COALESCE(:status, status), updated_by = :userId, updated_at = now()
               WHERE id = :appId AND workspace_id = :workspaceId`,
              {
                replacements: {
                  workspaceId, appId, userId: user.id, name: body.name ?? null, platform: body.platform ?? null, bundleId: body.bundleId ?? null,
                  description: body.description ?? null, status: body.status ?? null,
                },
                transaction: t,
              },
            );
          } catch (err) {
            if (pgCode(err)?.code === '23505') throw bundleTaken(body.platform ?? before.platform, body.bundleId ?? before.bundle_id);
            throw err;
          }
          const changes = [
            body.name !== undefined && body.name !== before.name ? `name ${before.name} → ${body.name}` : '',
            body.platform !== undefined && body.platform !== before.platform ? `platform ${before.platform} → ${body.platform}` : '',
            body.bundleId !== undefined && body.bundleId !== before.bundle_id ? `bundle id ${before.bundle_id} → ${body.bundleId}` : '',
            body.description !== undefined && body.description !== before.description ? 'description' : '',
            body.status !== undefined && body.status !== before.status ? (body.status === 'active' ? 'enabled' : 'disabled') : '',
          ].filter(Boolean);
          if (changes.length) {
            await audit(workspaceId, appId, user.id, 'host_app_updated', changes.join('; '), body.status && body.status !== before.status ? { from: before.status, to: body.status } : {}, t);
          }
        });
        return c.json(appOut(await findApp(workspaceId, appId)), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/workspaces/{workspaceId}/host-apps/{appId}', tags: ['host apps'], summary: 'Delete a host app and all its keys (its signatures stop verifying at once)',
        middleware: [requirePermission('hostApp.manage')], request: { params: AppParams },
        responses: { 200: json(z.object({ removed: z.object({ id: z.string(), name: z.string() }) }), 'Deleted'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, appId } = c.req.valid('param');
        const removed = await sequelize.transaction(async (t) => {
          const [row] = await sequelize.query<{ id: string; name: string }>('DELETE FROM host_apps WHERE id = :appId AND workspace_id = :workspaceId RETURNING id, name', {
            replacements: { workspaceId, appId }, type: QueryTypes.SELECT, transaction: t,
          });
          if (!row) throw notFound('Host app');
          await audit(workspaceId, appId, c.get('user')!.id, 'host_app_deleted', row.name, { to: 'deleted' }, t);
          return row;
        });
        return c.json({ removed }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'put', path: '/workspaces/{workspaceId}/host-apps/{appId}/icon', tags: ['host apps'],
        summary: `Set the icon: PNG, JPEG, WebP or SVG (checked by content; at most BRANDING_MAX_BYTES and ${maxIconPixels}×${maxIconPixels} px) in a multipart "file" field`,
        middleware: [
          requirePermission('hostApp.manage'),
          bodyLimit({ maxSize: config.brandingMaxBytes + 64 * 1024, onError: () => { throw new AppError(413, 'image_too_large', `The icon is larger than the limit of ${config.brandingMaxBytes} bytes`, { limit: config.brandingMaxBytes }); } }),
        ],
        request: { params: AppParams, body: { content: { 'multipart/form-data': { schema: IconForm } }, required: true } },
        responses: { 200: json(HostAppSchema, 'The app with its new icon'), ...errorResponses, 413: json(z.any(), 'The icon is too large') },
      }),
      async (c) => {
        const { workspaceId, appId } = c.req.valid('param');
        const app = await findApp(workspaceId, appId);
        const file = (c.req.valid('form') as { file?: unknown }).file;
        if (!(file instanceof File)) throw new AppError(400, 'file_required', 'Attach the icon image in the "file" field');
        const bytes = new Uint8Array(await file.arrayBuffer());
        let info;
        try {
          info = checkImage(bytes, { allowed: ['png', 'jpeg', 'webp', 'svg'], maxBytes: config.brandingMaxBytes, maxWidth: maxIconPixels, maxHeight: maxIconPixels });
        } catch (err) {
          if (err instanceof ImageError) throw new AppError(err.code === 'image_too_large' ? 413 : 400, err.code, err.message, { field: 'file' });
          throw err;
        }
        const user = c.get('user')!;
        await sequelize.transaction(async (t) => {
          await sequelize.query(
            `UPDATE host_apps SET icon = :icon, icon_type = :type, icon_sha256 = encode(sha256(:icon), 'hex'), updated_by = :userId, updated_at = now() WHERE id = :appId`,
            { replacements: { appId, icon: Buffer.from(bytes), type: info.contentType, userId: user.id }, transaction: t },
          );
          await audit(workspaceId, appId, user.id, 'host_app_icon_set', `${app.name}: ${info.kind.toUpperCase()}${info.width ? ` ${info.width}×${info.height}` : ''}, ${bytes.length} bytes`, {}, t);
        });
        return c.json(appOut(await findApp(workspaceId, appId)), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/workspaces/{workspaceId}/host-apps/{appId}/icon', tags: ['host apps'], summary: 'Remove the icon',
        middleware: [requirePermission('hostApp.manage')], request: { params: AppParams },
        responses: { 200: json(HostAppSchema, 'The app without icon'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, appId } = c.req.valid('param');
        const app = await findApp(workspaceId, appId);
        if (app.icon_sha256) {
          const user = c.get('user')!;
          await sequelize.transaction(async (t) => {
            await sequelize.query('UPDATE host_apps SET icon = NULL, icon_type = NULL, icon_sha256 = NULL, updated_by = :userId, updated_at = now() WHERE id = :appId', { replacements: { appId, userId: user.id }, transaction: t });
            await audit(workspaceId, appId, user.id, 'host_app_icon_removed', app.name, {}, t);
          });
        }
        return c.json(appOut(await findApp(workspaceId, appId)), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/host-apps/{appId}/icon', tags: ['host apps'], summary: 'The icon image (its checked content type; SVG served under a no-script policy)',
        middleware: [requirePermission('hostApp.read')], request: { params: AppParams },
        responses: { 200: { description: 'The image', content: { 'image/*': { schema: z.any() } } }, ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, appId } = c.req.valid('param');
        const [row] = await sequelize.query<{ icon: Buffer | null; icon_type: string | null; icon_sha256: string | null }>(
          'SELECT icon, icon_type, icon_sha256 FROM host_apps WHERE id = :appId AND workspace_id = :workspaceId', { replacements: { workspaceId, appId }, type: QueryTypes.SELECT },
        );
        if (!row) throw notFound('Host app');
        if (!row.icon || !row.icon_type) throw notFound('Icon');
        return c.body(new Uint8Array(row.icon), 200, {
          'Content-Type': row.icon_type, 'Cache-Control': 'private, max-age=86400', ETag: `"${row.icon_sha256}"`, 'X-Content-Type-Options': 'nosniff',
          'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        });
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/host-apps/{appId}/keys', tags: ['host apps'], summary: 'The app\'s keys, active first (public parts and fingerprints only)',
        middleware: [requirePermission('hostApp.read')], request: { params: AppParams },
        responses: { 200: json(z.object({ items: z.array(HostAppKeySchema) }), 'The keys'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, appId } = c.req.valid('param');
        await findApp(workspaceId, appId);
        const now = new Date();
        return c.json({ items: (await listKeys(appId)).map((k) => keyOut(k, now)) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/host-apps/{appId}/keys', tags: ['host apps'],
        summary: 'Add a key: upload the app\'s public key, or have the platform issue a pair (app_signing: the private part is answered this once and never kept; platform: kept sealed). One active key per purpose: rotate to replace it',
        middleware: [requirePermission('hostApp.manage')],
        request: { params: AppParams, body: { content: { 'application/json': { schema: KeyBody } }, required: true } },
        responses: { 201: json(IssuedKeySchema, 'Added'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, appId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        await findApp(workspaceId, appId);
        const key = material(body.mode, body.publicKeyPem, body.algorithm);
        const kind = body.mode === 'upload' ? 'uploaded' : body.mode;
        const id = newId('hak');
        await sequelize.transaction(async (t) => {
          await insertKey(t, { id, appId, workspaceId, kind, label: body.label, key, userId: user.id });
          await audit(workspaceId, appId, user.id, kind === 'uploaded' ? 'host_app_key_uploaded' : 'host_app_key_issued', describeKey(kind, key), { to: 'active' }, t);
        });
        c.header('Cache-Control', 'no-store');
        return c.json({ key: keyOut(await findKey(workspaceId, appId, id)), previous: null, privateKeyPem: kind === 'app_signing' ? key.privatePem : null }, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/host-apps/{appId}/keys/{keyId}', tags: ['host apps'], summary: 'One key (never private material)',
        middleware: [requirePermission('hostApp.read')], request: { params: KeyParams },
        responses: { 200: json(HostAppKeySchema, 'The key'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, appId, keyId } = c.req.valid('param');
        return c.json(keyOut(await findKey(workspaceId, appId, keyId)), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/host-apps/{appId}/keys/{keyId}/rotate', tags: ['host apps'],
        summary: 'Replace the active key: the new one (uploaded, or issued like the old one) becomes active; the old one turns rotated and keeps verifying until the overlap ends',
        middleware: [requirePermission('hostApp.manage')],
        request: { params: KeyParams, body: { content: { 'application/json': { schema: RotateBody } }, required: true } },
        responses: { 200: json(IssuedKeySchema, 'The new key and the rotated one'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, appId, keyId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        const old = await findKey(workspaceId, appId, keyId);
        if (old.status !== 'active') throw new AppError(409, 'key_not_active', `Only the active key can be rotated; this one is ${old.status}`, { status: old.status });
        const overlapMs = body.overlapMs ?? config.hostApps.keyOverlapMs;
        if (overlapMs > config.hostApps.keyOverlapMs) {
          throw new AppError(400, 'overlap_too_long', `The overlap is at most ${config.hostApps.keyOverlapMs} ms (HOST_APP_KEY_OVERLAP_MS)`, { field: 'overlapMs', max: config.hostApps.keyOverlapMs });
        }
        // A platform key is replaced by a platform key; an app key by an upload (with a PEM) or an issued app signing key.
        const kind = old.purpose === 'platform' ? 'platform' : body.publicKeyPem?.trim() ? 'uploaded' : 'app_signing';
        if (kind === 'platform' && body.publicKeyPem?.trim()) throw new AppError(400, 'validation_failed', 'publicKeyPem: a platform key is always issued by the platform', { fields: { publicKeyPem: ['not for a platform key'] } });
        const key = material(kind === 'uploaded' ? 'upload' : kind, body.publicKeyPem, body.algorithm);
        const id = newId('hak');
        await sequelize.transaction(async (t) => {
          const [moved] = await sequelize.query<{ id: string }>(
            `UPDATE host_app_keys SET status = 'rotated', rotated_at = now(), rotated_by = :userId, replaced_by = NULL,
               overlap_ends_at = now() + make_interval(secs => :overlapMs / 1000.0)
             WHERE id = :keyId AND host_app_id = :appId AND status = 'active' RETURNING id`,
            { replacements: { keyId, appId, userId: user.id, overlapMs }, type: QueryTypes.SELECT, transaction: t },
          );
          if (!moved) throw new AppError(409, 'key_not_active', 'The key is no longer active (rotated or revoked meanwhile)');
          await insertKey(t, { id, appId, workspaceId, kind, label: body.label ?? old.label, key, userId: user.id });
          await sequelize.query('UPDATE host_app_keys SET replaced_by = :id WHERE id = :keyId', { replacements: { id, keyId }, transaction: t });
          await audit(workspaceId, appId, user.id, 'host_app_key_rotated', `${old.fingerprint} → ${describeKey(kind, key)}; the old key verifies for ${duration(overlapMs)} more`, { from: 'active', to: 'rotated' }, t);
        });
        c.header('Cache-Control', 'no-store');
        return c.json({ key: keyOut(await findKey(workspaceId, appId, id)), previous: keyOut(await findKey(workspaceId, appId, keyId)), privateKeyPem: kind === 'app_signing' ? key.privatePem : null }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/host-apps/{appId}/keys/{keyId}/revoke', tags: ['host apps'], summary: 'Revoke a key now (active or rotated): it never verifies again',
        middleware: [requirePermission('hostApp.manage')],
        request: { params: KeyParams, body: { content: { 'application/json': { schema: RevokeBody } }, required: true } },
        responses: { 200: json(HostAppKeySchema, 'Revoked'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, appId, keyId } = c.req.valid('param');
        const { reason } = c.req.valid('json');
        const user = c.get('user')!;
        const before = await findKey(workspaceId, appId, keyId);
        if (before.status === 'revoked') throw new AppError(409, 'key_revoked', 'This key is already revoked', { status: before.status });
        await sequelize.transaction(async (t) => {
          const [row] = await sequelize.query<{ id: string }>(
            `UPDATE host_app_keys SET status = 'revoked', revoked_at = now(), revoked_by = :userId, revoke_reason = :reason WHERE id = :keyId AND host_app_id = :appId AND status <> 'revoked' RETURNING id`,
            { replacements: { keyId, appId, userId: user.id, reason }, type: QueryTypes.SELECT, transaction: t },
          );
          if (!row) throw new AppError(409, 'key_revoked', 'This key is already revoked');
          await audit(workspaceId, appId, user.id, 'host_app_key_revoked', `${before.fingerprint}: ${reason}`, { from: before.status, to: 'revoked' }, t);
        });
        return c.json(keyOut(await findKey(workspaceId, appId, keyId)), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/host-apps/{appId}/signature-check', tags: ['host apps'],
        summary: 'Proves a request signed with the app\'s key verifies. Public: the signature is the credential. Sign `METHOD\\npath\\ntimestamp\\nsha256hex(body)` '
          + '(ECDSA P-256/SHA-256, DER or raw r‖s; or RSA PKCS#1 v1.5/SHA-256) and send X-Mpdp-Timestamp (ms, within 5 minutes), X-Mpdp-Signature (base64), optionally X-Mpdp-Key (fingerprint)',
        middleware: [publicRoute, bodyLimit({ maxSize: 64 * 1024, onError: () => { throw new AppError(413, 'body_too_large', 'The body is larger than 64 KiB'); } })],
        request: { params: z.object({ appId: z.string().min(1).max(100) }) },
        responses: { 200: json(CheckResult, 'The signature verifies'), ...errorResponses },
      }),
      async (c) => {
        const { appId } = c.req.valid('param');
        const body = new Uint8Array(await c.req.arrayBuffer());
        const url = new URL(c.req.url);
        const result = await verifyHostAppSignature(sequelize, {
          appId, method: c.req.method, path: url.pathname + url.search, body, timestamp: c.req.header('x-mpdp-timestamp'),
          signature: c.req.header('x-mpdp-signature'), keyFingerprint: c.req.header('x-mpdp-key') ?? null,
        });
        if (!result.verified) {
          throw new AppError(401, result.code, result.message, { ...(result.keyFingerprint ? { keyFingerprint: result.keyFingerprint } : {}), ...(result.code === 'timestamp_skew' ? { maxSkewMs, serverTime: Date.now() } : {}) });
        }
        return c.json({ verified: true as const, keyFingerprint: result.keyFingerprint, keyStatus: result.keyStatus }, 200);
      },
    );
}
