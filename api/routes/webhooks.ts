import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { QueryTypes } from 'sequelize';
import { createHash } from 'node:crypto';
import { createWebhookSender, orderedBody, type WebhookDeliveryRow } from '../../activities/webhooks.js';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import {
  checkWebhookUrl, generateWebhookSecret, maxWebhookUrlLength, openWebhookSecret, sealWebhookSecret, webhookEventDescriptions, webhookEventTypes, webhookPingEvent,
} from '../../lib/webhook-signature.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { WorkspaceParams, errorResponses, json } from '../schemas.js';
import { decodeCursor, encodeCursor } from '../cursor.js';

/** Most endpoints one workspace may register. */
export const maxWebhooksPerWorkspace = 20;

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
const deliveryStatuses = ['pending', 'delivered', 'failed'] as const;

const WebhookSchema = z
  .object({
    id: z.string(), url: z.string(), description: z.string(),
    events: z.array(z.enum(webhookEventTypes)).describe('subscribed event types; empty = every event'),
    active: z.boolean(), createdBy: z.object({ id: z.string(), name: z.string() }).nullable(), createdAt: z.string(), updatedAt: z.string(),
    secretRotatedAt: z.string().nullable(),
    previousSecretExpiresAt: z.string().nullable().describe('after a rotation, the previous secret signs beside the new one until then'),
    lastDeliveryAt: z.string().nullable(), lastStatus: z.enum(['delivered', 'failed']).nullable(),
  })
  .openapi('Webhook');
const WithSecretSchema = z
  .object({ webhook: WebhookSchema, secret: z.string().describe('the signing secret: shown this once, store it with the receiver') })
  .openapi('WebhookWithSecret');
const DeliverySchema = z
  .object({
    id: z.string().describe('also sent as X-Mpdp-Delivery; the same on every retry'), webhookId: z.string(), eventId: z.string(), eventType: z.string(),
    status: z.enum(deliveryStatuses), attempts: z.number(), responseStatus: z.number().nullable(), responseExcerpt: z.string().nullable().describe('first 500 characters of the answer'),
    error: z.string().nullable(), durationMs: z.number().nullable(), createdAt: z.string(), lastAttemptAt: z.string().nullable(), deliveredAt: z.string().nullable(),
    payload: z.record(z.string(), z.unknown()).describe('the JSON body sent'),
  })
  .openapi('WebhookDelivery');
const EventTypeSchema = z.object({ type: z.enum(webhookEventTypes), description: z.string() });

const urlField = z.string().trim().min(1, 'give the endpoint URL').max(maxWebhookUrlLength, `at most ${maxWebhookUrlLength} characters`);
const eventsField = z.array(z.enum(webhookEventTypes)).max(webhookEventTypes.length).describe('event types to receive; empty or omitted = every event');
const CreateBody = z
  .object({ url: urlField, description: z.string().trim().max(500).default(''), events: eventsField.default([]), active: z.boolean().default(true) })
  .openapi('CreateWebhook');
const UpdateBody = z
  .object({ url: urlField.optional(), description: z.string().trim().max(500).optional(), events: eventsField.optional(), active: z.boolean().optional() })
  .refine((b) => Object.values(b).some((v) => v !== undefined), { message: 'change at least one of url, description, events, active', path: ['url'] })
  .openapi('UpdateWebhook');
const RotateBody = z
  .object({ overlapHours: z.number().int().min(0, 'at least 0').max(168, 'at most 168 (7 days)').optional().describe('how long the previous secret keeps signing beside the new one (default 24; 0 = it stops at once)') })
  .openapi('RotateWebhookSecret');
const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(50), cursor: z.string().max(200).optional() });
const DeliveryQuery = z.object({
  status: z.enum(deliveryStatuses).optional(), limit: z.coerce.number().int().min(1).max(100).default(25), cursor: z.string().max(200).optional(),
});
const WebhookParams = WorkspaceParams.extend({ webhookId: z.string().min(1).max(100) });
const DeliveryParams = WebhookParams.extend({ deliveryId: z.string().min(1).max(100) });

interface WebhookRow {
  id: string; workspace_id: string; url: string; description: string; events: string[]; secret_sealed: string; secret_rotated_at: Date | null; previous_secret_expires_at: Date | null; active: boolean;
  created_by: string | null; created_by_name: string | null; created_at: Date; updated_at: Date; last_delivery_at: Date | null; last_status: 'delivered' | 'failed' | null;
  cursor_at: string;
}

const webhookOut = (r: WebhookRow) => ({
  id: r.id, url: r.url, description: r.description, events: r.events as (typeof webhookEventTypes)[number][], active: r.active,
  createdBy: r.created_by ? { id: r.created_by, name: r.created_by_name ?? 'unknown' } : null, createdAt: iso(r.created_at)!, updatedAt: iso(r.updated_at)!,
  secretRotatedAt: iso(r.secret_rotated_at),
  previousSecretExpiresAt: r.previous_secret_expires_at && new Date(r.previous_secret_expires_at).getTime() > Date.now() ? iso(r.previous_secret_expires_at) : null,
  lastDeliveryAt: iso(r.last_delivery_at), lastStatus: r.last_status,
});

const deliveryOut = (d: WebhookDeliveryRow) => ({
  id: d.id, webhookId: d.webhook_id, eventId: d.event_id, eventType: d.event_type, status: d.status, attempts: d.attempts, responseStatus: d.response_status,
  responseExcerpt: d.response_excerpt, error: d.error, durationMs: d.duration_ms, createdAt: iso(d.created_at)!, lastAttemptAt: iso(d.last_attempt_at),
  deliveredAt: iso(d.delivered_at), payload: orderedBody(d.payload),
});

const selectWebhook = `SELECT w.*, u.name AS created_by_name, w.created_at::text AS cursor_at FROM webhooks w LEFT JOIN users u ON u.id = w.created_by`;
// Arrays go in as JSON text: a replacement list cannot be empty.
const eventsSql = 'ARRAY(SELECT DISTINCT jsonb_array_elements_text(:events::jsonb) ORDER BY 1)::text[]';

const isUniqueViolation = (err: unknown) => (err as { parent?: { code?: string }; original?: { code?: string } })?.parent?.code === '23505';

/** A workspace's webhook endpoints and their delivery log. */
export function webhookRoutes(deps: ApiDeps) {
  const { sequelize, config } = deps;
  const sender = createWebhookSender({ sequelize, secretKey: config.secretKey, allowPrivate: config.webhookAllowPrivate });

  function checkUrl(raw: string): string {
    const check = checkWebhookUrl(raw, { allowHttp: config.webhookAllowHttp, allowPrivate: config.webhookAllowPrivate });
    if (!check.ok) throw new AppError(400, check.code, check.message, { field: 'url' });
    return check.url;
  }

  async function findWebhook(workspaceId: string, webhookId: string): Promise<WebhookRow> {
    const [row] = await sequelize.query<WebhookRow>(`${selectWebhook} WHERE w.id = :webhookId AND w.workspace_id = :workspaceId`, {
      replacements: { workspaceId, webhookId }, type: QueryTypes.SELECT,
    });
    if (!row) throw notFound('Webhook');
    return row;
  }

  async function audit(workspaceId: string, webhookId: string, actorId: string, action: string, comment: string) {
    await sequelize.query(
      `INSERT INTO audit_log (dedupe_key, workspace_id, subject_type, subject_id, actor_id, action, comment, at)
       VALUES (:key, :workspaceId, 'webhook', :webhookId, :actorId, :action, :comment, now())`,
      { replacements: { key: `webhook:${action}:${webhookId}:${newId('a')}`, workspaceId, webhookId, actorId, action, comment } },
    );
  }

  const urlTaken = (url: string) => new AppError(409, 'webhook_exists', 'This workspace already has a webhook for this URL', { url });

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/webhooks', tags: ['webhooks'], summary: 'List the webhook endpoints (and the event types they can subscribe to)',
        middleware: [requirePermission('webhook.read')], request: { params: WorkspaceParams, query: ListQuery },
        responses: { 200: json(z.object({ items: z.array(WebhookSchema), nextCursor: z.string().nullable(), eventTypes: z.array(EventTypeSchema) }), 'A page'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const { limit, cursor } = c.req.valid('query');
        const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
        const rows = await sequelize.query<WebhookRow>(
          `${selectWebhook} WHERE w.workspace_id = :workspaceId ${cursor ? 'AND (w.created_at, w.id) < (:cAt::timestamptz, :cId)' : ''}
           ORDER BY w.created_at DESC, w.id DESC LIMIT :limit`,
          { replacements: { workspaceId, cAt, cId, limit: limit + 1 }, type: QueryTypes.SELECT },
        );
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        return c.json({
          items: page.map(webhookOut), nextCursor: rows.length > limit && last ? encodeCursor(last.cursor_at, last.id) : null,
          eventTypes: webhookEventTypes.map((type) => ({ type, description: webhookEventDescriptions[type] })),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/webhooks', tags: ['webhooks'],
        summary: 'Register an endpoint; answers its signing secret once (a retry with the same Idempotency-Key answers the same webhook)',
        middleware: [requirePermission('webhook.manage')],
        request: { params: WorkspaceParams, body: { content: { 'application/json': { schema: CreateBody } }, required: true } },
        responses: { 201: json(WithSecretSchema, 'Created'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const body = c.req.valid('json');
        const user = c.get('user')!;
        const url = checkUrl(body.url);
        const key = c.req.header('idempotency-key');
        const id = key ? `wh_${createHash('sha256').update(`${workspaceId}:${user.id}:${key}`).digest('hex').slice(0, 24)}` : newId('wh');
        const [replay] = await sequelize.query<WebhookRow>(`${selectWebhook} WHERE w.id = :id AND w.workspace_id = :workspaceId`, { replacements: { id, workspaceId }, type: QueryTypes.SELECT });
        if (replay) return c.json({ webhook: webhookOut(replay), secret: openWebhookSecret(replay.secret_sealed, config.secretKey, replay.id) }, 201);

        const secret = generateWebhookSecret();
        let inserted: { id: string } | undefined;
        try {
          [inserted] = await sequelize.query<{ id: string }>(
            `INSERT INTO webhooks (id, workspace_id, url, description, events, secret_sealed, active, created_by)
             SELECT :id, :workspaceId, :url, :description, ${eventsSql}, :sealed, :active, :userId
             WHERE (SELECT count(*) FROM webhooks WHERE workspace_id = :workspaceId) < :max
             RETURNING id`,
            {
              replacements: {
                id, workspaceId, url, description: body.description, events: JSON.stringify(body.events), sealed: sealWebhookSecret(secret, config.secretKey, id),
                active: body.active, userId: user.id, max: maxWebhooksPerWorkspace,
              },
              type: QueryTypes.SELECT,
            },
          );
        } catch (err) {
          if (isUniqueViolation(err)) throw urlTaken(url);
          throw err;
        }
        if (!inserted) throw new AppError(409, 'webhook_limit', `A workspace has at most ${maxWebhooksPerWorkspace} webhooks; delete one first`, { limit: maxWebhooksPerWorkspace });
        await audit(workspaceId, id, user.id, 'webhook_created', url);
        return c.json({ webhook: webhookOut(await findWebhook(workspaceId, id)), secret }, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/webhooks/{webhookId}', tags: ['webhooks'], summary: 'One webhook endpoint (never its secret)',
        middleware: [requirePermission('webhook.read')], request: { params: WebhookParams },
        responses: { 200: json(WebhookSchema, 'The endpoint'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, webhookId } = c.req.valid('param');
        return c.json(webhookOut(await findWebhook(workspaceId, webhookId)), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'patch', path: '/workspaces/{workspaceId}/webhooks/{webhookId}', tags: ['webhooks'], summary: 'Change the URL, description, subscribed events, or enable / disable',
        middleware: [requirePermission('webhook.manage')],
        request: { params: WebhookParams, body: { content: { 'application/json': { schema: UpdateBody } }, required: true } },
        responses: { 200: json(WebhookSchema, 'Changed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, webhookId } = c.req.valid('param');
        const body = c.req.valid('json');
        const before = await findWebhook(workspaceId, webhookId);
        const url = body.url === undefined ? null : checkUrl(body.url);
        try {
          await sequelize.query(
            `UPDATE webhooks SET url = COALESCE(:url, url), description = COALESCE(:description, description),
               events = CASE WHEN :hasEvents THEN ${eventsSql} ELSE events END, active = COALESCE(:active, active), updated_at = now()
             WHERE id = :webhookId AND workspace_id = :workspaceId`,
            {
              replacements: {
                workspaceId, webhookId, url, description: body.description ?? null, hasEvents: body.events !== undefined, events: JSON.stringify(body.events ?? []),
                active: body.active ?? null,
              },
            },
          );
        } catch (err) {
          if (isUniqueViolation(err)) throw urlTaken(url ?? before.url);
          throw err;
        }
        const after = await findWebhook(workspaceId, webhookId);
        const changes = [
          after.url !== before.url ? `url ${before.url} → ${after.url}` : '',
          after.description !== before.description ? 'description' : '',
          after.events.join(',') !== before.events.join(',') ? `events ${after.events.length ? after.events.join(', ') : 'all'}` : '',
          after.active !== before.active ? (after.active ? 'enabled' : 'disabled') : '',
        ].filter(Boolean);
        if (changes.length) await audit(workspaceId, webhookId, c.get('user')!.id, 'webhook_updated', `${after.url}: ${changes.join('; ')}`);
        return c.json(webhookOut(after), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/webhooks/{webhookId}/rotate-secret', tags: ['webhooks'],
        summary: 'Replace the signing secret; answers the new one once. The old one keeps signing beside it for overlapHours (default 24, 0 = stops at once)',
        middleware: [requirePermission('webhook.manage')], request: { params: WebhookParams, body: { content: { 'application/json': { schema: RotateBody } }, required: false } },
        responses: { 200: json(WithSecretSchema, 'The new secret'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, webhookId } = c.req.valid('param');
        const overlapHours = (c.req.valid('json') as { overlapHours?: number } | undefined)?.overlapHours ?? 24;
        await findWebhook(workspaceId, webhookId);
        const secret = generateWebhookSecret();
        await sequelize.query(
          `UPDATE webhooks SET previous_secret_sealed = CASE WHEN :overlapHours > 0 THEN secret_sealed END,
             previous_secret_expires_at = CASE WHEN :overlapHours > 0 THEN now() + make_interval(hours => :overlapHours) END,
             secret_sealed = :sealed, secret_rotated_at = now(), updated_at = now()
           WHERE id = :webhookId AND workspace_id = :workspaceId`,
          { replacements: { workspaceId, webhookId, overlapHours, sealed: sealWebhookSecret(secret, config.secretKey, webhookId) } },
        );
        const after = await findWebhook(workspaceId, webhookId);
        await audit(workspaceId, webhookId, c.get('user')!.id, 'webhook_secret_rotated', after.url);
        return c.json({ webhook: webhookOut(after), secret }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/workspaces/{workspaceId}/webhooks/{webhookId}', tags: ['webhooks'], summary: 'Delete an endpoint and its delivery log',
        middleware: [requirePermission('webhook.manage')], request: { params: WebhookParams },
        responses: { 200: json(z.object({ removed: z.object({ id: z.string(), url: z.string() }) }), 'Deleted'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, webhookId } = c.req.valid('param');
        const [row] = await sequelize.query<{ id: string; url: string }>('DELETE FROM webhooks WHERE id = :webhookId AND workspace_id = :workspaceId RETURNING id, url', {
          replacements: { workspaceId, webhookId }, type: QueryTypes.SELECT,
        });
        if (!row) throw notFound('Webhook');
        await audit(workspaceId, webhookId, c.get('user')!.id, 'webhook_deleted', row.url);
        return c.json({ removed: { id: row.id, url: row.url } }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/webhooks/{webhookId}/ping', tags: ['webhooks'],
        summary: 'Send a signed "ping" event now (also to a disabled endpoint) and answer how it went',
        middleware: [requirePermission('webhook.manage')], request: { params: WebhookParams },
        responses: { 200: json(z.object({ delivery: DeliverySchema }), 'The delivery, delivered or failed'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, webhookId } = c.req.valid('param');
        const w = await findWebhook(workspaceId, webhookId);
        const user = c.get('user')!;
        const deliveryId = await sender.enqueue(w.id, {
          eventId: `ping:${newId('evt')}`, type: webhookPingEvent, workspaceId, at: new Date().toISOString(),
          payload: { webhook: { id: w.id, url: w.url, events: w.events, active: w.active }, sentBy: { id: user.id, name: user.name }, message: 'mpdp can reach this endpoint.' },
        });
        const { delivery } = await sender.attempt(deliveryId);
        return c.json({ delivery: deliveryOut(delivery) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/webhooks/{webhookId}/deliveries', tags: ['webhooks'], summary: 'The delivery log of an endpoint, newest first (cursor paging)',
        middleware: [requirePermission('webhook.read')], request: { params: WebhookParams, query: DeliveryQuery },
        responses: { 200: json(z.object({ items: z.array(DeliverySchema), nextCursor: z.string().nullable() }), 'A page'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, webhookId } = c.req.valid('param');
        const { status, limit, cursor } = c.req.valid('query');
        await findWebhook(workspaceId, webhookId);
        const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
        const rows = await sequelize.query<WebhookDeliveryRow>(
          `SELECT d.*, d.created_at::text AS cursor_at FROM webhook_deliveries d
           WHERE d.webhook_id = :webhookId ${status ? 'AND d.status = :status' : ''} ${cursor ? 'AND (d.created_at, d.id) < (:cAt::timestamptz, :cId)' : ''}
           ORDER BY d.created_at DESC, d.id DESC LIMIT :limit`,
          { replacements: { webhookId, status: status ?? null, cAt, cId, limit: limit + 1 }, type: QueryTypes.SELECT },
        );
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        return c.json({ items: page.map(deliveryOut), nextCursor: rows.length > limit && last ? encodeCursor(last.cursor_at, last.id) : null }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver', tags: ['webhooks'],
        summary: 'Send one delivery again now (same delivery id and body, fresh signature) and answer how it went',
        middleware: [requirePermission('webhook.manage')], request: { params: DeliveryParams },
        responses: { 200: json(z.object({ delivery: DeliverySchema }), 'The delivery after this attempt'), ...errorResponses },
      }),
      async (c) => {
        const { workspaceId, webhookId, deliveryId } = c.req.valid('param');
        const w = await findWebhook(workspaceId, webhookId);
        const [d] = await sequelize.query<{ id: string }>('SELECT id FROM webhook_deliveries WHERE id = :deliveryId AND webhook_id = :webhookId', {
          replacements: { deliveryId, webhookId }, type: QueryTypes.SELECT,
        });
        if (!d) throw notFound('Delivery');
        if (!w.active) throw new AppError(409, 'webhook_disabled', 'The webhook is disabled: enable it before redelivering', { active: false });
        const { delivery } = await sender.attempt(d.id);
        return c.json({ delivery: deliveryOut(delivery) }, 200);
      },
    );
}
