import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type pg from 'pg';
import { QueryTypes } from 'sequelize';
import { appendAudit } from '../../activities/audit.js';
import { notificationKinds, type NotificationKind } from '../../activities/mail.js';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { workspaceRoles } from '../../lib/permissions.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission, requireUser } from '../middleware.js';
import { WorkspaceParams, errorResponses, json } from '../schemas.js';

/** Longest terms text accepted (characters). */
export const maxTermsBodyChars = 50_000;

/** What each notification kind covers, in words (the console lists them as toggles). */
export const notificationKindInfo: Record<NotificationKind, { label: string; description: string }> = {
  review_requests: { label: 'Review requests', description: 'A submission waits for your review, with reminders and escalations' },
  decisions: { label: 'Decisions', description: 'Your submission was approved or rejected' },
  rollouts: { label: 'Rollouts', description: 'Rollout stages and releases of your mini programs' },
  halts: { label: 'Halts', description: 'A rollout was halted automatically (crash rate over the threshold)' },
  authorizations: { label: 'Authorizations', description: 'Developer workspace authorizations: requests, decisions, revocations' },
  crashes: { label: 'Crash alerts', description: 'A new error or crash group (or a resolved one back) in a version that is rolling out' },
};

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
const Person = z.object({ id: z.string(), name: z.string() });

// ——— Service email preference ———

const noHeaderBreak = (s: string) => !/[\r\n<>]/.test(s);
const MailSettingsSchema = z
  .object({
    senderName: z.string().nullable().describe('display name of the From header; null = the platform default'),
    replyTo: z.string().nullable().describe('Reply-To address; null = none'),
    fromAddress: z.string().describe('the address mail comes from (MAIL_FROM; not changeable per workspace)'),
    fromPreview: z.string().describe('the From header as recipients see it'),
    defaultSenderName: z.string().nullable().describe('the display name used when the workspace sets none'),
    updatedAt: z.string().nullable(), updatedBy: Person.nullable(),
  })
  .openapi('MailSettings');
const MailSettingsBody = z
  .object({
    senderName: z
      .string()
      .max(80, 'at most 80 characters')
      .refine(noHeaderBreak, 'no line breaks or < >')
      .transform((s) => s.trim())
      .refine((s) => s.length >= 1, 'give a sender name, or null for the default')
      .nullable(),
    replyTo: z.email('a valid email address').max(254).nullable(),
  })
  .openapi('MailSettingsInput');

const KindSchema = z.enum(notificationKinds);
const PreferencesRecord = z.object(Object.fromEntries(notificationKinds.map((k) => [k, z.boolean()])) as Record<NotificationKind, z.ZodBoolean>);
const KindInfoSchema = z.object({ kind: KindSchema, label: z.string(), description: z.string() });
const WorkspacePreferencesSchema = z
  .object({ workspaceId: z.string(), workspaceName: z.string(), preferences: PreferencesRecord.describe('true = receive mails of this kind'), updatedAt: z.string().nullable() })
  .openapi('NotificationPreferences');
const PreferencesBody = z
  .object({ workspaceId: z.string().min(1).max(100), preferences: PreferencesRecord.partial() })
  .refine((b) => Object.keys(b.preferences).length > 0, { message: 'change at least one kind', path: ['preferences'] })
  .openapi('NotificationPreferencesInput');

// ——— Terms of service ———

const TermsVersionSchema = z
  .object({ version: z.number().int(), title: z.string(), body: z.string(), publishedAt: z.string(), publishedBy: Person.nullable() })
  .openapi('TermsVersion');
const TermsSummarySchema = z
  .object({ version: z.number().int(), title: z.string(), publishedAt: z.string(), publishedBy: Person.nullable(), acceptedCount: z.number().int() })
  .openapi('TermsVersionSummary');
const TermsOverviewSchema = z
  .object({
    current: TermsVersionSchema.nullable(), versions: z.array(TermsSummarySchema).describe('newest first'),
    myAcceptance: z.object({ version: z.number().int(), acceptedAt: z.string() }).nullable().describe('your acceptance of the current version'),
    memberCount: z.number().int(),
  })
  .openapi('TermsOverview');
const TermsBody = z
  .object({
    title: z.string().trim().min(1, 'give a title').max(200),
    body: z.string().max(maxTermsBodyChars, `at most ${maxTermsBodyChars} characters`).refine((s) => s.trim().length > 0, 'give the text of the terms'),
  })
  .openapi('PublishTerms');
const AcceptanceSchema = z.object({ user: Person.extend({ email: z.string() }), version: z.number().int(), acceptedAt: z.string(), userAgent: z.string().nullable() });
const AcceptancesSchema = z
  .object({
    currentVersion: z.number().int().nullable(),
    members: z.array(z.object({
      user: Person.extend({ email: z.string() }), role: z.enum(workspaceRoles), acceptedCurrent: z.boolean(),
      lastAccepted: z.object({ version: z.number().int(), acceptedAt: z.string(), userAgent: z.string().nullable() }).nullable(),
    })).describe('every active member: who accepted the current version and who has not'),
    pending: z.number().int().describe('members who have not accepted the current version'),
    history: z.array(AcceptanceSchema).describe('every acceptance, newest first (at most 500)'),
  })
  .openapi('TermsAcceptances');
const VersionParams = WorkspaceParams.extend({ version: z.coerce.number().int().min(1).max(1_000_000) });
const PendingTermsSchema = z
  .object({ items: z.array(z.object({ workspaceId: z.string(), workspaceName: z.string(), terms: TermsVersionSchema })) })
  .openapi('PendingTerms');

interface TermsRow { version: number; title: string; body: string; published_at: Date; published_by: string | null; published_by_name: string | null }
const termsOut = (r: TermsRow) => ({
  version: r.version, title: r.title, body: r.body, publishedAt: iso(r.published_at)!,
  publishedBy: r.published_by ? { id: r.published_by, name: r.published_by_name ?? 'unknown' } : null,
});
const selectTerms = `SELECT t.version, t.title, t.body, t.published_at, t.published_by, u.name AS published_by_name FROM terms_versions t LEFT JOIN users u ON u.id = t.published_by`;

/** Service email preference (sender name, reply-to, per-user notification kinds) and terms of service. */
export function preferencesRoutes(deps: ApiDeps) {
  const { sequelize, config } = deps;
  const fromAddress = /<([^>]+)>/.exec(config.mailFrom)?.[1]?.trim() ?? config.mailFrom.trim();
  const defaultName = /^\s*"?([^"<]*?)"?\s*</.exec(config.mailFrom)?.[1] || null;
  const fromPreview = (name: string | null) => ((name ?? defaultName) ? `${name ?? defaultName} <${fromAddress}>` : fromAddress);

  async function mailSettings(workspaceId: string) {
    const [row] = await sequelize.query<{ sender_name: string | null; reply_to: string | null; updated_at: Date | null; updated_by: string | null; updated_by_name: string | null }>(
      `SELECT s.sender_name, s.reply_to, s.updated_at, s.updated_by, u.name AS updated_by_name FROM workspace_mail_settings s LEFT JOIN users u ON u.id = s.updated_by WHERE s.workspace_id = :workspaceId`,
      { replacements: { workspaceId }, type: QueryTypes.SELECT },
    );
    return {
      senderName: row?.sender_name ?? null, replyTo: row?.reply_to ?? null, fromAddress, fromPreview: fromPreview(row?.sender_name ?? null), defaultSenderName: defaultName,
      updatedAt: iso(row?.updated_at ?? null), updatedBy: row?.updated_by ? { id: row.updated_by, name: row.updated_by_name ?? 'unknown' } : null,
    };
  }

  async function preferencesOf(userId: string, workspaceId?: string) {
    const rows = await sequelize.query<{ workspace_id: string; name: string; muted: string[] | null; updated_at: Date | null }>(
      `SELECT m.workspace_id, w.name, p.muted, p.updated_at FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
       LEFT JOIN notification_preferences p ON p.user_id = m.user_id AND p.workspace_id = m.workspace_id
       WHERE m.user_id = :userId AND m.status = 'active' ${workspaceId ? 'AND m.workspace_id = :workspaceId' : ''} ORDER BY w.name, m.workspace_id`,
      { replacements: { userId, workspaceId: workspaceId ?? null }, type: QueryTypes.SELECT },
    );
    return rows.map((r) => ({
      workspaceId: r.workspace_id, workspaceName: r.name, updatedAt: iso(r.updated_at),
      preferences: Object.fromEntries(notificationKinds.map((k) => [k, !(r.muted ?? []).includes(k)])) as Record<NotificationKind, boolean>,
    }));
  }

  async function currentTerms(workspaceId: string): Promise<TermsRow | undefined> {
    const [row] = await sequelize.query<TermsRow>(`${selectTerms} WHERE t.workspace_id = :workspaceId ORDER BY t.version DESC LIMIT 1`, { replacements: { workspaceId }, type: QueryTypes.SELECT });
    return row;
  }

  const audit = (workspaceId: string, subjectType: 'settings' | 'terms', subjectId: string, actorId: string, action: string, comment: string | null) =>
    appendAudit(sequelize, { dedupeKey: `${subjectType}:${action}:${newId('a')}`, workspaceId, subjectType, subjectId, actorId, action, fromState: null, toState: null, comment, at: new Date().toISOString() });

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/mail-settings', tags: ['settings'], summary: "The workspace's mail sender name and reply-to",
        middleware: [requirePermission('settings.read')], request: { params: WorkspaceParams },
        responses: { 200: json(MailSettingsSchema, 'The settings'), ...errorResponses },
      }),
      async (c) => c.json(await mailSettings(c.req.valid('param').workspaceId), 200),
    )
    .openapi(
      createRoute({
        method: 'put', path: '/workspaces/{workspaceId}/mail-settings', tags: ['settings'],
        summary: "Set the sender name and reply-to of the workspace's mail (null = default); audited",
        middleware: [requirePermission('settings.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: MailSettingsBody } }, required: true } },
        responses: { 200: json(MailSettingsSchema, 'Saved'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        const before = await mailSettings(workspaceId);
        await sequelize.query(
          `INSERT INTO workspace_mail_settings (workspace_id, sender_name, reply_to, updated_by, updated_at) VALUES (:workspaceId, :senderName, :replyTo, :userId, now())
           ON CONFLICT (workspace_id) DO UPDATE SET sender_name = EXCLUDED.sender_name, reply_to = EXCLUDED.reply_to, updated_by = EXCLUDED.updated_by, updated_at = now()`,
          { replacements: { workspaceId, senderName: body.senderName, replyTo: body.replyTo, userId: user.id } },
        );
        const describe = (s: { senderName: string | null; replyTo: string | null }) => `sender ${s.senderName ?? '(default)'}, reply-to ${s.replyTo ?? '(none)'}`;
        await audit(workspaceId, 'settings', 'mail', user.id, 'mail_settings_changed', `${describe(before)} → ${describe(body)}`);
        return c.json(await mailSettings(workspaceId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/me/notification-preferences', tags: ['settings'], summary: 'Which notification mails you receive, per workspace (default: all)',
        middleware: [requireUser], request: { query: z.object({ workspaceId: z.string().min(1).max(100).optional() }) },
        responses: { 200: json(z.object({ kinds: z.array(KindInfoSchema), items: z.array(WorkspacePreferencesSchema) }), 'Your preferences'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('query');
        const items = await preferencesOf(c.get('user')!.id, workspaceId);
        if (workspaceId && !items.length) throw notFound('Workspace');
        return c.json({ kinds: notificationKinds.map((kind) => ({ kind, ...notificationKindInfo[kind] })), items }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'put', path: '/me/notification-preferences', tags: ['settings'], summary: 'Turn notification kinds on or off for one of your workspaces',
        middleware: [requireUser], request: { body: { content: { 'application/json': { schema: PreferencesBody } }, required: true } },
        responses: { 200: json(WorkspacePreferencesSchema, 'Saved'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, preferences } = c.req.valid('json');
        const userId = c.get('user')!.id;
        const [current] = await preferencesOf(userId, workspaceId);
        if (!current) throw notFound('Workspace');
        const next = { ...current.preferences, ...preferences };
        const muted = notificationKinds.filter((k) => !next[k]);
        await sequelize.query(
          `INSERT INTO notification_preferences (user_id, workspace_id, muted, updated_at) VALUES (:userId, :workspaceId, :muted::text[], now())
           ON CONFLICT (user_id, workspace_id) DO UPDATE SET muted = EXCLUDED.muted, updated_at = now()`,
          // An array literal: a replacement list cannot be empty. Kinds are enum values, never quoted text.
          { replacements: { userId, workspaceId, muted: `{${muted.join(',')}}` } },
        );
        const [saved] = await preferencesOf(userId, workspaceId);
        return c.json(saved!, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/me/pending-terms', tags: ['settings'], summary: 'Workspaces whose current terms of service wait for your acceptance (the console shows them before anything else)',
        middleware: [requireUser], responses: { 200: json(PendingTermsSchema, 'What waits'), ...errorResponses },
      }),
      async (c) => {
        const rows = await sequelize.query<TermsRow & { workspace_id: string; workspace_name: string }>(
          `SELECT w.id AS workspace_id, w.name AS workspace_name, t.version, t.title, t.body, t.published_at, t.published_by, u.name AS published_by_name
           FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
           JOIN LATERAL (SELECT * FROM terms_versions v WHERE v.workspace_id = m.workspace_id ORDER BY v.version DESC LIMIT 1) t ON true
           LEFT JOIN users u ON u.id = t.published_by
           WHERE m.user_id = :userId AND m.status = 'active'
             AND NOT EXISTS (SELECT 1 FROM terms_acceptances a WHERE a.workspace_id = m.workspace_id AND a.user_id = m.user_id AND a.version = t.version)
           ORDER BY w.name`,
          { replacements: { userId: c.get('user')!.id }, type: QueryTypes.SELECT },
        );
        return c.json({ items: rows.map((r) => ({ workspaceId: r.workspace_id, workspaceName: r.workspace_name, terms: termsOut(r) })) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/terms', tags: ['settings'], summary: 'The current terms of service, the version history and your acceptance',
        middleware: [requirePermission('settings.read')], request: { params: WorkspaceParams },
        responses: { 200: json(TermsOverviewSchema, 'Terms'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const userId = c.get('user')!.id;
        const current = await currentTerms(workspaceId);
        const versions = await sequelize.query<TermsRow & { accepted: string }>(
          `SELECT t.version, t.title, t.published_at, t.published_by, u.name AS published_by_name,
             (SELECT count(*) FROM terms_acceptances a WHERE a.workspace_id = t.workspace_id AND a.version = t.version) AS accepted
           FROM terms_versions t LEFT JOIN users u ON u.id = t.published_by WHERE t.workspace_id = :workspaceId ORDER BY t.version DESC`,
          { replacements: { workspaceId }, type: QueryTypes.SELECT },
        );
        const [mine] = current
          ? await sequelize.query<{ accepted_at: Date }>('SELECT accepted_at FROM terms_acceptances WHERE workspace_id = :workspaceId AND user_id = :userId AND version = :version', {
            replacements: { workspaceId, userId, version: current.version }, type: QueryTypes.SELECT,
          })
          : [];
        const [count] = await sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM memberships WHERE workspace_id = :workspaceId AND status = 'active'`, { replacements: { workspaceId }, type: QueryTypes.SELECT });
        return c.json({
          current: current ? termsOut(current) : null,
          versions: versions.map((v) => ({
            version: v.version, title: v.title, publishedAt: iso(v.published_at)!, publishedBy: v.published_by ? { id: v.published_by, name: v.published_by_name ?? 'unknown' } : null,
            acceptedCount: Number(v.accepted),
          })),
          myAcceptance: current && mine ? { version: current.version, acceptedAt: iso(mine.accepted_at)! } : null,
          memberCount: Number(count?.n ?? 0),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/terms', tags: ['settings'],
        summary: 'Publish a new version of the terms (n + 1): every member accepts it before making changes again; the publisher accepts it by publishing; audited',
        middleware: [requirePermission('settings.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: TermsBody } }, required: true } },
        responses: { 201: json(TermsVersionSchema, 'Published'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { title, body } = c.req.valid('json');
        const user = c.get('user')!;
        const version = await sequelize.transaction(async (transaction) => {
          // Serializes publishers of one workspace, so two publishes get n + 1 and n + 2.
          await sequelize.query('SELECT id FROM workspaces WHERE id = :workspaceId FOR UPDATE', { replacements: { workspaceId }, transaction });
          const [row] = await sequelize.query<{ version: number }>(
            `INSERT INTO terms_versions (workspace_id, version, title, body, published_by)
             SELECT :workspaceId, COALESCE(max(version), 0) + 1, :title, :body, :userId FROM terms_versions WHERE workspace_id = :workspaceId RETURNING version`,
            { replacements: { workspaceId, title, body, userId: user.id }, type: QueryTypes.SELECT, transaction },
          );
          await sequelize.query(
            `INSERT INTO terms_acceptances (workspace_id, version, user_id, user_agent) VALUES (:workspaceId, :version, :userId, :ua)`,
            { replacements: { workspaceId, version: row!.version, userId: user.id, ua: c.req.header('user-agent')?.slice(0, 500) ?? null }, transaction },
          );
          return row!.version;
        });
        await audit(workspaceId, 'terms', `${workspaceId}:v${version}`, user.id, 'terms_published', `Version ${version}: ${title}`);
        const [row] = await sequelize.query<TermsRow>(`${selectTerms} WHERE t.workspace_id = :workspaceId AND t.version = :version`, { replacements: { workspaceId, version }, type: QueryTypes.SELECT });
        return c.json(termsOut(row!), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/terms/acceptances', tags: ['settings'], summary: 'Who accepted which version and when; who has not accepted the current one (Admins)',
        middleware: [requirePermission('settings.manage')], request: { params: WorkspaceParams },
        responses: { 200: json(AcceptancesSchema, 'Acceptances'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const current = await currentTerms(workspaceId);
        const members = await sequelize.query<{ id: string; name: string; email: string; role: (typeof workspaceRoles)[number]; version: number | null; accepted_at: Date | null; user_agent: string | null }>(
          `SELECT u.id, u.name, u.email, m.role, a.version, a.accepted_at, a.user_agent
           FROM memberships m JOIN users u ON u.id = m.user_id
           LEFT JOIN LATERAL (SELECT version, accepted_at, user_agent FROM terms_acceptances x WHERE x.workspace_id = m.workspace_id AND x.user_id = m.user_id ORDER BY version DESC LIMIT 1) a ON true
           WHERE m.workspace_id = :workspaceId AND m.status = 'active' ORDER BY u.name, u.id`,
          { replacements: { workspaceId }, type: QueryTypes.SELECT },
        );
        const history = await sequelize.query<{ id: string; name: string; email: string; version: number; accepted_at: Date; user_agent: string | null }>(
          `SELECT u.id, u.name, u.email, a.version, a.accepted_at, a.user_agent FROM terms_acceptances a JOIN users u ON u.id = a.user_id
           WHERE a.workspace_id = :workspaceId ORDER BY a.accepted_at DESC, a.version DESC LIMIT 500`,
          { replacements: { workspaceId }, type: QueryTypes.SELECT },
        );
        const out = members.map((m) => ({
          user: { id: m.id, name: m.name, email: m.email }, role: m.role,
          acceptedCurrent: !!current && m.version === current.version,
          lastAccepted: m.version !== null ? { version: m.version, acceptedAt: iso(m.accepted_at)!, userAgent: m.user_agent } : null,
        }));
        return c.json({
          currentVersion: current?.version ?? null, members: out, pending: current ? out.filter((m) => !m.acceptedCurrent).length : 0,
          history: history.map((h) => ({ user: { id: h.id, name: h.name, email: h.email }, version: h.version, acceptedAt: iso(h.accepted_at)!, userAgent: h.user_agent })),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/terms/{version}', tags: ['settings'], summary: 'One version of the terms, with its full text',
        middleware: [requirePermission('settings.read')], request: { params: VersionParams },
        responses: { 200: json(TermsVersionSchema, 'The version'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, version } = c.req.valid('param');
        const [row] = await sequelize.query<TermsRow>(`${selectTerms} WHERE t.workspace_id = :workspaceId AND t.version = :version`, { replacements: { workspaceId, version }, type: QueryTypes.SELECT });
        if (!row) throw notFound('Terms version');
        return c.json(termsOut(row), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/terms/{version}/accept', tags: ['settings'],
        summary: 'Accept the current terms (records you, the version, the time and your user agent; repeating answers the first acceptance)',
        middleware: [requirePermission('settings.read')], request: { params: VersionParams },
        responses: { 200: json(z.object({ version: z.number().int(), acceptedAt: z.string(), alreadyAccepted: z.boolean() }), 'Accepted'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, version } = c.req.valid('param');
        const user = c.get('user')!;
        const current = await currentTerms(workspaceId);
        const [exists] = await sequelize.query('SELECT 1 FROM terms_versions WHERE workspace_id = :workspaceId AND version = :version', { replacements: { workspaceId, version }, type: QueryTypes.SELECT });
        if (!exists || !current) throw notFound('Terms version');
        if (current.version !== version) throw new AppError(409, 'terms_not_current', `Version ${version} is not the current terms; accept version ${current.version}`, { currentVersion: current.version });
        const [inserted] = await sequelize.query<{ accepted_at: Date }>(
          `INSERT INTO terms_acceptances (workspace_id, version, user_id, user_agent) VALUES (:workspaceId, :version, :userId, :ua)
           ON CONFLICT (workspace_id, user_id, version) DO NOTHING RETURNING accepted_at`,
          { replacements: { workspaceId, version, userId: user.id, ua: c.req.header('user-agent')?.slice(0, 500) ?? null }, type: QueryTypes.SELECT },
        );
        if (inserted) {
          await audit(workspaceId, 'terms', `${workspaceId}:v${version}`, user.id, 'terms_accepted', `Version ${version}`);
          return c.json({ version, acceptedAt: iso(inserted.accepted_at)!, alreadyAccepted: false }, 200);
        }
        const [first] = await sequelize.query<{ accepted_at: Date }>('SELECT accepted_at FROM terms_acceptances WHERE workspace_id = :workspaceId AND user_id = :userId AND version = :version', {
          replacements: { workspaceId, version, userId: user.id }, type: QueryTypes.SELECT,
        });
        return c.json({ version, acceptedAt: iso(first!.accepted_at)!, alreadyAccepted: true }, 200);
      },
    );
}
