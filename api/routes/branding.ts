import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { createHash } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { appendAudit } from '../../activities/audit.js';
import { checkDomainList, domainKinds, maxDomainLength, maxDomainsPerList, type DomainKind, type DomainProblem } from '../../lib/domains.js';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { checkImage, ImageError, type ImageKind } from '../../lib/image-check.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { WorkspaceParams, errorResponses, json } from '../schemas.js';

/** The two images a workspace may brand its console with, and what each accepts. */
export const brandSlots = ['logo', 'favicon'] as const;
export type BrandSlot = (typeof brandSlots)[number];
export const brandLimits: Record<BrandSlot, { kinds: readonly ImageKind[]; maxWidth: number; maxHeight: number }> = {
  logo: { kinds: ['png', 'svg', 'ico'], maxWidth: 1024, maxHeight: 1024 },
  favicon: { kinds: ['png', 'ico', 'svg'], maxWidth: 256, maxHeight: 256 },
};
const maxAboutUrlLength = 2048;
/** Served images never change under their URL (the sha256 is in it). */
const immutableCache = 'private, max-age=31536000, immutable';
/** An SVG opened on its own runs nothing and loads nothing. */
const svgPolicy = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

const iso = (d: Date | string) => new Date(d).toISOString();

const ImageSchema = z
  .object({
    url: z.string().describe('same-origin URL with the sha256 in it (cached for a year)'),
    kind: z.enum(['png', 'jpeg', 'webp', 'svg', 'ico']), contentType: z.string(), width: z.number().nullable(), height: z.number().nullable(),
    size: z.number(), sha256: z.string(), uploadedAt: z.string(), uploadedBy: z.object({ id: z.string(), name: z.string() }).nullable(),
  })
  .openapi('BrandImage');
const SlotLimitSchema = z.object({ kinds: z.array(z.string()), maxWidth: z.number(), maxHeight: z.number() });
const BrandingSchema = z
  .object({
    logo: ImageSchema.nullable(), favicon: ImageSchema.nullable(), aboutUrl: z.string().nullable(),
    limits: z.object({ maxBytes: z.number(), logo: SlotLimitSchema, favicon: SlotLimitSchema, aboutUrlSchemes: z.array(z.string()) }),
  })
  .openapi('Branding');
const DomainsSchema = z
  .object({
    server: z.array(z.string()).describe('https:// or wss:// origins a mini program may call'),
    webview: z.array(z.string()).describe('https:// origins a mini program may open in a web view'),
    limit: z.number().describe('most entries per list'),
    updatedAt: z.string().nullable(),
  })
  .openapi('DomainPreference');

const ImageForm = z.object({ file: z.any().openapi({ type: 'string', format: 'binary' }) });
const SlotParams = WorkspaceParams.extend({ slot: z.enum(brandSlots) });
const ImageParams = SlotParams.extend({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256') });
const AboutBody = z
  .object({ url: z.string().trim().max(maxAboutUrlLength, `at most ${maxAboutUrlLength} characters`).nullable().describe('null or "" removes the link') })
  .openapi('AboutUrl');
const domainList = z.array(z.string().max(maxDomainLength * 2)).max(1000, 'at most 1000 entries per request');
const DomainsBody = z
  .object({ server: domainList.optional(), webview: domainList.optional() })
  .refine((b) => b.server !== undefined || b.webview !== undefined, { message: 'give server, webview or both', path: ['server'] })
  .openapi('DomainPreferenceInput');

interface ImageRow {
  slot: BrandSlot; kind: ImageKind; content_type: string; width: number | null; height: number | null; size: number; sha256: string;
  uploaded_at: Date; uploaded_by: string | null; uploaded_by_name: string | null;
}

/**
 * Snapshots the workspace's domain lists onto a version (called when it is submitted), so the
 * runtime enforces the lists that shipped with the release, not today's.
 */
export async function snapshotVersionDomains(sequelize: Sequelize, workspaceId: string, versionId: string, transaction?: Transaction): Promise<void> {
  await sequelize.query(
    `UPDATE versions SET domains = jsonb_build_object(
       'server', COALESCE((SELECT jsonb_agg(domain ORDER BY position) FROM workspace_domains WHERE workspace_id = :workspaceId AND kind = 'server'), '[]'::jsonb),
       'webview', COALESCE((SELECT jsonb_agg(domain ORDER BY position) FROM workspace_domains WHERE workspace_id = :workspaceId AND kind = 'webview'), '[]'::jsonb))
     WHERE id = :versionId`,
    { replacements: { workspaceId, versionId }, transaction },
  );
}

/** Logo, favicon and About Us URL of a workspace's console; its domain preference. */
export function brandingRoutes(deps: ApiDeps) {
  const { sequelize, config } = deps;
  const allowHttp = config.mode !== 'production';
  const aboutSchemes = allowHttp ? ['https', 'http'] : ['https'];

  const imageUrl = (workspaceId: string, slot: BrandSlot, sha: string) =>
    `/api/v1/workspaces/${encodeURIComponent(workspaceId)}/branding/${slot}/${sha}`;

  async function branding(workspaceId: string) {
    const [images, [settings]] = await Promise.all([
      sequelize.query<ImageRow>(
        `SELECT i.slot, i.kind, i.content_type, i.width, i.height, i.size, i.sha256, i.uploaded_at, i.uploaded_by, u.name AS uploaded_by_name
         FROM workspace_brand_images i LEFT JOIN users u ON u.id = i.uploaded_by WHERE i.workspace_id = :workspaceId`,
        { replacements: { workspaceId }, type: QueryTypes.SELECT },
      ),
      sequelize.query<{ about_url: string | null }>('SELECT about_url FROM workspace_branding WHERE workspace_id = :workspaceId', {
        replacements: { workspaceId }, type: QueryTypes.SELECT,
      }),
    ]);
    const out = (slot: BrandSlot) => {
      const r = images.find((i) => i.slot === slot);
      if (!r) return null;
      return {
        url: imageUrl(workspaceId, slot, r.sha256), kind: r.kind, contentType: r.content_type, width: r.width, height: r.height, size: r.size, sha256: r.sha256,
        uploadedAt: iso(r.uploaded_at), uploadedBy: r.uploaded_by ? { id: r.uploaded_by, name: r.uploaded_by_name ?? 'unknown' } : null,
      };
    };
    return {
      logo: out('logo'), favicon: out('favicon'), aboutUrl: settings?.about_url ?? null,
      limits: {
        maxBytes: config.brandingMaxBytes,
        logo: { ...brandLimits.logo, kinds: [...brandLimits.logo.kinds] },
        favicon: { ...brandLimits.favicon, kinds: [...brandLimits.favicon.kinds] },
        aboutUrlSchemes: aboutSchemes,
      },
    };
  }

  async function domains(workspaceId: string) {
    const rows = await sequelize.query<{ kind: DomainKind; domain: string; added_at: Date }>(
      'SELECT kind, domain, added_at FROM workspace_domains WHERE workspace_id = :workspaceId ORDER BY kind, position',
      { replacements: { workspaceId }, type: QueryTypes.SELECT },
    );
    const updated = rows.reduce<Date | null>((a, r) => (a && a > r.added_at ? a : r.added_at), null);
    return {
      server: rows.filter((r) => r.kind === 'server').map((r) => r.domain),
      webview: rows.filter((r) => r.kind === 'webview').map((r) => r.domain),
      limit: maxDomainsPerList,
      updatedAt: updated ? iso(updated) : null,
    };
  }

  const audit = (workspaceId: string, actorId: string, action: string, subjectId: string, comment: string, transaction: Transaction) =>
    appendAudit(sequelize, {
      dedupeKey: `settings:${action}:${workspaceId}:${newId('a')}`, workspaceId, subjectType: 'settings', subjectId, actorId, action,
      fromState: null, toState: null, comment, at: new Date().toISOString(),
    }, transaction);

  function checkAboutUrl(raw: string): string {
    const fail = (why: string) => new AppError(400, 'invalid_about_url', `About Us URL: ${why}`, { field: 'url' });
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw fail(`give a full address starting with ${aboutSchemes.map((s) => `${s}://`).join(' or ')}`);
    }
    const scheme = u.protocol.replace(/:$/, '');
    if (!aboutSchemes.includes(scheme)) throw fail(allowHttp ? 'only http:// and https:// addresses' : 'only https:// addresses');
    if (u.username || u.password) throw fail('no user name or password in the address');
    if (!u.hostname || !u.hostname.includes('.') && u.hostname !== 'localhost') throw fail('the address needs a host name');
    return u.toString();
  }

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/branding', tags: ['settings'], summary: 'The workspace\'s logo, favicon (metadata and versioned URLs) and About Us URL',
        middleware: [requirePermission('settings.read')], request: { params: WorkspaceParams },
        responses: { 200: json(BrandingSchema, 'Branding'), ...errorResponses },
      }),
      async (c) => c.json(await branding(c.req.valid('param').workspaceId), 200),
    )
    .openapi(
      createRoute({
        method: 'put', path: '/workspaces/{workspaceId}/branding/{slot}', tags: ['settings'],
        summary: 'Upload the logo (PNG or SVG, at most 1024×1024 px) or the favicon (PNG, ICO or SVG, at most 256×256 px) in a multipart "file" field; checked by content, at most BRANDING_MAX_BYTES; SVG with scripts or external references refused',
        middleware: [
          requirePermission('settings.manage'),
          bodyLimit({ maxSize: config.brandingMaxBytes + 64 * 1024, onError: () => { throw new AppError(413, 'image_too_large', `The image is larger than the limit of ${config.brandingMaxBytes} bytes`, { limit: config.brandingMaxBytes }); } }),
        ],
        request: { params: SlotParams, body: { content: { 'multipart/form-data': { schema: ImageForm } }, required: true } },
        responses: { 200: json(BrandingSchema, 'Branding with the new image'), ...errorResponses, 413: json(z.any(), 'The image is too large') },
      }),
      async (c) => {
        const { workspaceId, slot } = c.req.valid('param');
        const file = (c.req.valid('form') as { file?: unknown } | undefined)?.file;
        if (!(file instanceof File)) throw new AppError(400, 'file_required', `Attach the ${slot} image in the "file" field`, { field: 'file' });
        const bytes = new Uint8Array(await file.arrayBuffer());
        const limits = brandLimits[slot];
        let info;
        try {
          // The file name and the declared type are ignored: only the bytes say what this is.
          info = checkImage(bytes, { allowed: limits.kinds, maxBytes: config.brandingMaxBytes, maxWidth: limits.maxWidth, maxHeight: limits.maxHeight });
        } catch (err) {
          if (err instanceof ImageError) throw new AppError(err.code === 'image_too_large' ? 413 : 400, err.code, err.message, { field: 'file' });
          throw err;
        }
        const sha = createHash('sha256').update(bytes).digest('hex');
        const user = c.get('user')!;
        await sequelize.transaction(async (t) => {
          await sequelize.query(
            `INSERT INTO workspace_brand_images (workspace_id, slot, kind, content_type, width, height, size, sha256, bytes, uploaded_by, uploaded_at)
             VALUES (:workspaceId, :slot, :kind, :contentType, :width, :height, :size, :sha, :bytes, :userId, now())
             ON CONFLICT (workspace_id, slot) DO UPDATE SET kind = EXCLUDED.kind, content_type = EXCLUDED.content_type, width = EXCLUDED.width,
               height = EXCLUDED.height, size = EXCLUDED.size, sha256 = EXCLUDED.sha256, bytes = EXCLUDED.bytes, uploaded_by = EXCLUDED.uploaded_by, uploaded_at = now()`,
            {
              replacements: { workspaceId, slot, kind: info.kind, contentType: info.contentType, width: info.width, height: info.height, size: bytes.length, sha, bytes: Buffer.from(bytes), userId: user.id },
              transaction: t,
            },
          );
          await audit(workspaceId, user.id, `${slot}_set`, slot, `${info.kind.toUpperCase()}${info.width ? ` ${info.width}×${info.height}` : ''}, ${bytes.length} bytes`, t);
        });
        return c.json(await branding(workspaceId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/workspaces/{workspaceId}/branding/{slot}', tags: ['settings'], summary: 'Remove the logo or the favicon (the console shows mpdp\'s again)',
        middleware: [requirePermission('settings.manage')], request: { params: SlotParams },
        responses: { 200: json(BrandingSchema, 'Branding without it'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, slot } = c.req.valid('param');
        const user = c.get('user')!;
        await sequelize.transaction(async (t) => {
          const [rows] = await sequelize.query('DELETE FROM workspace_brand_images WHERE workspace_id = :workspaceId AND slot = :slot RETURNING slot', { replacements: { workspaceId, slot }, transaction: t });
          if ((rows as unknown[]).length) await audit(workspaceId, user.id, `${slot}_removed`, slot, '', t);
        });
        return c.json(await branding(workspaceId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/branding/{slot}/{sha256}', tags: ['settings'],
        summary: 'The image itself, under its sha256 (immutable: cached a year); served with its detected type, nosniff, and for SVG a policy that runs and loads nothing',
        middleware: [requirePermission('settings.read')], request: { params: ImageParams },
        responses: { 200: { description: 'The image', content: { 'image/*': { schema: z.any() } } }, ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, slot, sha256 } = c.req.valid('param');
        const [row] = await sequelize.query<{ bytes: Buffer; content_type: string; kind: ImageKind }>(
          'SELECT bytes, content_type, kind FROM workspace_brand_images WHERE workspace_id = :workspaceId AND slot = :slot AND sha256 = :sha256',
          { replacements: { workspaceId, slot, sha256 }, type: QueryTypes.SELECT },
        );
        // An old URL (a replaced image) is gone: the console asks for the branding again.
        if (!row) throw notFound(slot === 'logo' ? 'Logo' : 'Favicon');
        const headers: Record<string, string> = {
          'Content-Type': row.content_type, 'Cache-Control': immutableCache, ETag: `"${sha256}"`, 'X-Content-Type-Options': 'nosniff',
          'Content-Disposition': 'inline', 'Cross-Origin-Resource-Policy': 'same-origin',
        };
        if (row.kind === 'svg') headers['Content-Security-Policy'] = svgPolicy;
        if (c.req.header('if-none-match') === `"${sha256}"`) return c.body(null, 304, headers);
        return c.body(new Uint8Array(row.bytes), 200, headers);
      },
    )
    .openapi(
      createRoute({
        method: 'put', path: '/workspaces/{workspaceId}/about-url', tags: ['settings'],
        summary: 'Set the About Us URL shown in the console footer (https:// only in production; null or "" removes it)',
        middleware: [requirePermission('settings.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: AboutBody } }, required: true } },
        responses: { 200: json(BrandingSchema, 'Branding with the new URL'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const raw = c.req.valid('json').url;
        const url = raw ? checkAboutUrl(raw) : null;
        const user = c.get('user')!;
        await sequelize.transaction(async (t) => {
          await sequelize.query(
            `INSERT INTO workspace_branding (workspace_id, about_url, updated_by, updated_at) VALUES (:workspaceId, :url, :userId, now())
             ON CONFLICT (workspace_id) DO UPDATE SET about_url = EXCLUDED.about_url, updated_by = EXCLUDED.updated_by, updated_at = now()`,
            { replacements: { workspaceId, url, userId: user.id }, transaction: t },
          );
          await audit(workspaceId, user.id, url ? 'about_url_set' : 'about_url_removed', 'about_url', url ?? '', t);
        });
        return c.json(await branding(workspaceId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/domains', tags: ['settings'], summary: 'The server and web-view domains the workspace\'s mini programs may call',
        middleware: [requirePermission('settings.read')], request: { params: WorkspaceParams },
        responses: { 200: json(DomainsSchema, 'Domain preference'), ...errorResponses },
      }),
      async (c) => c.json(await domains(c.req.valid('param').workspaceId), 200),
    )
    .openapi(
      createRoute({
        method: 'put', path: '/workspaces/{workspaceId}/domains', tags: ['settings'],
        summary: `Replace the server and/or web-view domain lists (normalised, de-duplicated, at most ${maxDomainsPerList} each). 400 invalid_domains names each bad entry (details.invalid [{list, value, reason}]); 400 too_many_domains. Shipped with each version when it is submitted.`,
        middleware: [requirePermission('settings.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: DomainsBody } }, required: true } },
        responses: { 200: json(DomainsSchema, 'The new lists'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        const lists: Partial<Record<DomainKind, string[]>> = {};
        const invalid: Array<DomainProblem & { list: DomainKind }> = [];
        for (const kind of domainKinds) {
          const given = body[kind];
          if (given === undefined) continue;
          const r = checkDomainList(given, kind);
          invalid.push(...r.invalid.map((p) => ({ list: kind, ...p })));
          lists[kind] = r.domains;
        }
        if (invalid.length) {
          const first = invalid[0]!;
          throw new AppError(400, 'invalid_domains',
            `${invalid.length === 1 ? 'This entry is' : `${invalid.length} entries are`} not valid: ${first.value || '(empty)'}: ${first.reason}${invalid.length > 1 ? '; …' : ''}`,
            { invalid });
        }
        for (const kind of domainKinds) {
          const n = lists[kind]?.length ?? 0;
          if (n > maxDomainsPerList) {
            throw new AppError(400, 'too_many_domains', `At most ${maxDomainsPerList} ${kind === 'server' ? 'server' : 'web-view'} domains (${n} given)`, { list: kind, count: n, limit: maxDomainsPerList });
          }
        }
        const user = c.get('user')!;
        await sequelize.transaction(async (t) => {
          for (const kind of domainKinds) {
            const list = lists[kind];
            if (!list) continue;
            const before = await sequelize.query<{ domain: string }>('SELECT domain FROM workspace_domains WHERE workspace_id = :workspaceId AND kind = :kind ORDER BY position FOR UPDATE', {
              replacements: { workspaceId, kind }, type: QueryTypes.SELECT, transaction: t,
            });
            const old = before.map((r) => r.domain);
            if (old.length === list.length && old.every((d, i) => d === list[i])) continue;
            // Kept entries keep their added_at; the list is rewritten in the given order.
            await sequelize.query('DELETE FROM workspace_domains WHERE workspace_id = :workspaceId AND kind = :kind AND NOT (domain = ANY(ARRAY(SELECT jsonb_array_elements_text(:list::jsonb))))', {
              replacements: { workspaceId, kind, list: JSON.stringify(list) }, transaction: t,
            });
            await sequelize.query(
              `INSERT INTO workspace_domains (workspace_id, kind, domain, position, added_by, added_at)
               SELECT :workspaceId, :kind, d.domain, d.position - 1, :userId, now() FROM jsonb_array_elements_text(:list::jsonb) WITH ORDINALITY AS d(domain, position)
               ON CONFLICT (workspace_id, kind, domain) DO UPDATE SET position = EXCLUDED.position`,
              { replacements: { workspaceId, kind, userId: user.id, list: JSON.stringify(list) }, transaction: t },
            );
            const added = list.filter((d) => !old.includes(d));
            const removed = old.filter((d) => !list.includes(d));
            const what = [added.length ? `added ${added.join(', ')}` : '', removed.length ? `removed ${removed.join(', ')}` : ''].filter(Boolean).join('; ') || 'reordered';
            await audit(workspaceId, user.id, `${kind}_domains_changed`, `domains:${kind}`, what.slice(0, 2000), t);
          }
        });
        return c.json(await domains(workspaceId), 200);
      },
    );
}
