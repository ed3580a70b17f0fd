import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import QRCode from 'qrcode';
import { QueryTypes } from 'sequelize';
import { AppError, notFound } from '../../lib/errors.js';
import { checkPackage, type PackageSummary } from '../../lib/package-check.js';
import { maxPreviewTokenLength, signPreviewToken, verifyPreviewToken, type PreviewClaims } from '../../lib/preview-token.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { publicRoute, requirePermission } from '../middleware.js';
import { sha256 } from '../passwords.js';
import { newId } from '../../lib/ids.js';
import { VersionParams, errorResponses, json } from '../schemas.js';

const Person = z.object({ id: z.string(), name: z.string() });

const PreviewLinkSchema = z
  .object({
    url: z.string().describe('the preview page, on the public URL (what the QR code carries)'),
    path: z.string().describe('the same page, relative to the console'),
    token: z.string(),
    expiresAt: z.string(),
    qrPng: z.string().describe('URL of the QR code as PNG'),
    qrSvg: z.string().describe('URL of the QR code as SVG'),
  })
  .openapi('PreviewLink');

const PreviewSchema = z
  .object({
    access: z.enum(['member', 'tester', 'authorized']).describe('authorized: a member of a developer workspace with an active grant (view) on the mini program'),
    link: PreviewLinkSchema,
    workspace: z.object({ id: z.string(), name: z.string() }),
    miniProgram: z.object({ id: z.string(), name: z.string(), icon: z.string().nullable() }),
    version: z.object({ id: z.string(), version: z.string(), status: z.string(), notes: z.string() }),
    package: z.object({ size: z.number(), sha256: z.string(), uploadedBy: Person, uploadedAt: z.string(), entryCount: z.number().nullable(), uncompressedBytes: z.number().nullable() }),
    manifest: z
      .object({ appName: z.string().nullable(), manifestVersion: z.string().nullable(), pages: z.array(z.string()), subPackages: z.array(z.object({ root: z.string(), pages: z.array(z.string()) })) })
      .nullable(),
    manifestError: z.string().nullable(),
  })
  .openapi('Preview');

const TokenParams = z.object({ token: z.string().min(1).max(maxPreviewTokenLength) });

const tokenErrors = {
  ...errorResponses,
  410: { description: 'The link has expired (preview_expired) or was revoked (preview_link_revoked)', content: { 'application/json': { schema: z.any() } } },
} as const;

/** Manifests read from stored packages, by sha256 (a package never changes under its hash). */
const manifestCache = new Map<string, PackageSummary>();

export function previewRoutes({ sequelize, store, config }: ApiDeps) {
  const linkOf = (token: string, expiresAt: number) => ({
    url: `${config.publicUrl}/preview/${token}`,
    path: `/preview/${token}`,
    token,
    expiresAt: new Date(expiresAt).toISOString(),
    qrPng: `/api/v1/preview/${token}/qr.png`,
    qrSvg: `/api/v1/preview/${token}/qr.svg`,
  });

  /** Signature before expiry: an edited token is "not ours", never merely "expired". */
  function checkToken(token: string): PreviewClaims {
    const check = verifyPreviewToken(token, config.secretKey);
    if (check.ok) return check.claims;
    if (check.reason === 'expired') {
      throw new AppError(410, 'preview_expired', 'This preview link has expired. Ask for a new one from the version page.', { expiredAt: new Date(check.claims!.expiresAt).toISOString() });
    }
    if (check.reason === 'bad_signature') throw new AppError(400, 'preview_token_invalid', 'This preview link was not issued by this platform, or it was altered.');
    throw new AppError(400, 'preview_token_malformed', 'This is not a preview link.');
  }

  /** A valid token whose recorded link was revoked (e.g. by a developer authorization's revocation) is gone. */
  async function checkLive(token: string): Promise<PreviewClaims> {
    const claims = checkToken(token);
    const [link] = await sequelize.query<{ revoked_at: Date | null }>('SELECT revoked_at FROM preview_links WHERE token_hash = :hash', { replacements: { hash: sha256(token) }, type: QueryTypes.SELECT });
    if (link?.revoked_at) throw new AppError(410, 'preview_link_revoked', 'This preview link was revoked. Ask for a new one from the version page.', { revokedAt: new Date(link.revoked_at).toISOString() });
    return claims;
  }

  async function manifestOf(sha256: string, version: string): Promise<PackageSummary> {
    const cached = manifestCache.get(sha256);
    if (cached) return cached;
    const summary = await checkPackage(await store.get(sha256), { version });
    if (manifestCache.size >= 64) manifestCache.delete(manifestCache.keys().next().value!);
    manifestCache.set(sha256, summary);
    return summary;
  }

  const qrRoute = (ext: 'png' | 'svg') =>
    createRoute({
      method: 'get', path: `/preview/{token}/qr.${ext}`, tags: ['preview'], middleware: [publicRoute], summary: `The preview link as a QR code (${ext.toUpperCase()})`, request: { params: TokenParams },
      responses: { 200: { description: 'The QR code', content: { [ext === 'png' ? 'image/png' : 'image/svg+xml']: { schema: z.any() } } }, ...tokenErrors },
    });

  const qrHeaders = (claims: PreviewClaims, type: string) => ({
    'Content-Type': type,
    // The image never changes for a token; keep it no longer than the token lives.
    'Cache-Control': `private, max-age=${Math.max(0, Math.floor((claims.expiresAt - Date.now()) / 1000))}`,
  });

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}/preview', tags: ['preview'],
        summary: 'Issue a preview link and QR code for a version (signed, expires after PREVIEW_TTL_MS)', middleware: [requirePermission('version.preview')],
        request: { params: VersionParams }, responses: { 201: json(PreviewLinkSchema, 'The link'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, miniProgramId, versionId } = c.req.valid('param');
        const [row] = await sequelize.query<{ id: string }>(
          'SELECT v.id FROM versions v JOIN mini_programs m ON m.id = v.mini_program_id WHERE v.id = :versionId AND m.id = :miniProgramId AND m.workspace_id = :workspaceId',
          { replacements: { workspaceId, miniProgramId, versionId }, type: QueryTypes.SELECT },
        );
        if (!row) throw notFound('Version');
        const expiresAt = Date.now() + config.previewTtlMs;
        const token = signPreviewToken({ versionId, workspaceId, expiresAt }, config.secretKey);
        // Recorded with its creator, so a revocation can cut the links an ISV created.
        await sequelize.query(
          `INSERT INTO preview_links (id, token_hash, workspace_id, mini_program_id, version_id, created_by, expires_at) VALUES (:id, :hash, :workspaceId, :miniProgramId, :versionId, :createdBy, :expiresAt)
           ON CONFLICT (token_hash) DO NOTHING`,
          { replacements: { id: newId('pvl'), hash: sha256(token), workspaceId, miniProgramId, versionId, createdBy: c.get('user')!.id, expiresAt: new Date(expiresAt) } },
        );
        return c.json(linkOf(token, expiresAt), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/preview/{token}', tags: ['preview'], middleware: [publicRoute],
        summary: 'Open a preview: for a signed-in member of the workspace or a whitelisted tester (401 sign in, 403 not a tester, 410 expired, 400 not a valid link)',
        request: { params: TokenParams }, responses: { 200: json(PreviewSchema, 'The version to preview'), ...tokenErrors },
      }),
      async (c) => {
        const { token } = c.req.valid('param');
        const claims = await checkLive(token);
        const user = c.get('user');
        if (!user) throw new AppError(401, 'unauthenticated', 'Sign in to open this preview: it is for members of the workspace and its testers.');
        const [v] = await sequelize.query<{
          id: string; version: string; status: string; notes: string; package_sha256: string; package_size: number; created_by: string; created_by_name: string | null; created_at: Date;
          mini_program_id: string; mini_program_name: string; icon: string | null; workspace_name: string; role: string | null; tester: boolean; authorized: boolean;
        }>(
          `SELECT v.id, v.version, v.status, v.notes, v.package_sha256, v.package_size, v.created_by, cu.name AS created_by_name, v.created_at,
             m.id AS mini_program_id, m.name AS mini_program_name, m.icon, w.name AS workspace_name,
             (SELECT ms.role FROM memberships ms WHERE ms.workspace_id = m.workspace_id AND ms.user_id = :userId) AS role,
             EXISTS (SELECT 1 FROM testers t WHERE t.workspace_id = m.workspace_id AND (t.mini_program_id IS NULL OR t.mini_program_id = m.id)
                     AND (t.user_id = :userId OR t.email = lower(:email))) AS tester,
             EXISTS (SELECT 1 FROM authorizations a JOIN memberships dm ON dm.workspace_id = a.developer_workspace_id AND dm.user_id = :userId AND dm.status = 'active'
                     WHERE a.merchant_workspace_id = m.workspace_id AND a.status = 'active' AND m.id = ANY(a.mini_program_ids) AND 'view' = ANY(a.scope)
                       AND (a.ends_at IS NULL OR a.ends_at > now())) AS authorized
           FROM versions v JOIN mini_programs m ON m.id = v.mini_program_id JOIN workspaces w ON w.id = m.workspace_id
           LEFT JOIN users cu ON cu.id = v.created_by
           WHERE v.id = :versionId AND m.workspace_id = :workspaceId`,
          { replacements: { versionId: claims.versionId, workspaceId: claims.workspaceId, userId: user.id, email: user.email }, type: QueryTypes.SELECT },
        );
        // Same answer whether the version is gone or the caller may not see it: nothing leaks.
        if (!v || (!v.role && !v.tester && !v.authorized)) {
          throw new AppError(403, 'not_a_tester', `${user.email} is neither a member of this workspace nor one of its testers. Ask a workspace admin to add you as a tester.`);
        }
        let manifest: PackageSummary | null = null;
        let manifestError: string | null = null;
        try {
          manifest = await manifestOf(v.package_sha256, v.version);
        } catch (err) {
          console.error(`[api] preview of ${v.id}: cannot read package ${v.package_sha256}`, (err as Error).message);
          manifestError = 'The package could not be read from storage';
        }
        return c.json({
          access: v.role ? ('member' as const) : v.tester ? ('tester' as const) : ('authorized' as const),
          link: linkOf(token, claims.expiresAt),
          workspace: { id: claims.workspaceId, name: v.workspace_name },
          miniProgram: { id: v.mini_program_id, name: v.mini_program_name, icon: v.icon },
          version: { id: v.id, version: v.version, status: v.status, notes: v.notes },
          package: {
            size: v.package_size, sha256: v.package_sha256, uploadedBy: { id: v.created_by, name: v.created_by_name ?? 'unknown' }, uploadedAt: new Date(v.created_at).toISOString(),
            entryCount: manifest?.entryCount ?? null, uncompressedBytes: manifest?.uncompressedBytes ?? null,
          },
          manifest: manifest && { appName: manifest.appName, manifestVersion: manifest.manifestVersion, pages: manifest.pages, subPackages: manifest.subPackages },
          manifestError,
        }, 200);
      },
    )
    .openapi(qrRoute('png'), async (c) => {
      const { token } = c.req.valid('param');
      const claims = await checkLive(token);
      const png = await QRCode.toBuffer(linkOf(token, claims.expiresAt).url, { type: 'png', width: 360, margin: 2, errorCorrectionLevel: 'M' });
      return c.body(new Uint8Array(png), 200, qrHeaders(claims, 'image/png'));
    })
    .openapi(qrRoute('svg'), async (c) => {
      const { token } = c.req.valid('param');
      const claims = await checkLive(token);
      const svg = await QRCode.toString(linkOf(token, claims.expiresAt).url, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
      return c.body(svg, 200, qrHeaders(claims, 'image/svg+xml'));
    });
}
