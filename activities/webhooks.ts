import { assertPublicHost, PrivateAddressError } from '../lib/address-guard.js';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { QueryTypes, type Sequelize } from 'sequelize';
import { newId } from '../lib/ids.js';
import { openWebhookSecret, signWebhookPayload, WebhookSecretError, webhookHeaders, webhookUserAgent } from '../lib/webhook-signature.js';
import type { ActivityDeps } from './index.js';

export interface WebhookEventInput {
  /** Unique per event (pipeline id + seq): a retried delivery is sent once per endpoint. */
  eventId: string;
  workspaceId: string;
  /** e.g. review.requested, review.approved, review.rejected, release.rolling_out, release.halted, release.released */
  type: string;
  at: string;
  payload: Record<string, unknown>;
}

/** How long one POST may take, answer included. */
export const webhookTimeoutMs = 10_000;
/** Longest part of an endpoint's answer kept in the log. */
export const responseExcerptChars = 500;

export const WebhookFailure = {
  /** Some endpoint did not answer 2xx: retrying the activity sends to those endpoints only. */
  deliveryFailed: 'webhook_delivery_failed',
  configuration: 'configuration',
} as const;

/** A delivery row as the database has it (after an attempt, with its endpoint's id). */
export interface WebhookDeliveryRow {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  payload: Record<string, unknown>;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  response_status: number | null;
  response_excerpt: string | null;
  error: string | null;
  duration_ms: number | null;
  created_at: Date;
  last_attempt_at: Date | null;
  delivered_at: Date | null;
  /** created_at as the database wrote it (microseconds kept), for keyset cursors. */
  cursor_at: string;
}

/** The JSON body every endpoint receives for an event; its `id` is the event's (stable across retries). */
export const webhookBody = (e: Pick<WebhookEventInput, 'eventId' | 'type' | 'workspaceId' | 'at' | 'payload'>) => ({
  id: e.eventId, type: e.type, workspaceId: e.workspaceId, createdAt: e.at, data: e.payload,
});

/** The body's fields in their documented order (jsonb keeps its own), anything else after them. */
export function orderedBody(p: Record<string, unknown>): Record<string, unknown> {
  const { id, type, workspaceId, createdAt, data, ...rest } = p;
  return { id, type, workspaceId, createdAt, data, ...rest };
}

/** Heartbeats inside an activity; a no-op when called directly (API ping, tests). */
function heartbeat(details: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    /* not in an activity context */
  }
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
// PostgreSQL text cannot hold NUL characters.
const clean = (s: string) => s.replace(/\u0000/g, '');

/** Reads at most a few KiB of an answer and keeps the first 500 characters. */
async function readExcerpt(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    while (bytes < 4 * responseExcerptChars) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      bytes += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return clean(new TextDecoder().decode(Buffer.concat(chunks))).slice(0, responseExcerptChars);
}

function describeError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `No answer within ${timeoutMs / 1000} s`;
  const cause = e?.cause;
  if (cause?.code) return `${cause.code}: ${cause.message ?? e.message ?? 'request failed'}`;
  return e?.message ?? String(err);
}

/**
 * Sends deliveries: used by the `deliverWebhooks` activity and, for a ping or a redelivery, by
 * the API, so both go through the same code and leave the same log.
 */
export function createWebhookSender(o: { sequelize: Sequelize; secretKey: string; timeoutMs?: number; allowPrivate?: boolean; resolve?: (host: string) => Promise<{ address: string }[]> }) {
  const { sequelize, secretKey } = o;
  const timeoutMs = o.timeoutMs ?? webhookTimeoutMs;

  /**
   * POSTs one delivery to its endpoint and records the attempt on the delivery and the endpoint.
   * `permanent` says that retrying cannot help (the signing secret cannot be opened).
   */
  async function attempt(deliveryId: string): Promise<{ delivery: WebhookDeliveryRow; permanent: boolean }> {
    const [d] = await sequelize.query<{ id: string; event_type: string; payload: Record<string, unknown>; webhook_id: string; url: string; secret_sealed: string; previous_sealed: string | null }>(
      `SELECT d.id, d.event_type, d.payload, d.webhook_id, w.url, w.secret_sealed,
         CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret_sealed END AS previous_sealed
       FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = :deliveryId`,
      { replacements: { deliveryId }, type: QueryTypes.SELECT },
    );
    if (!d) throw new Error(`webhook delivery ${deliveryId} does not exist`);

    let responseStatus: number | null = null;
    let excerpt: string | null = null;
    let error: string | null = null;
    let permanent = false;
    const started = performance.now();
    try {
      const secret = openWebhookSecret(d.secret_sealed, secretKey, d.webhook_id);
      // A rotated-out secret signs too until its overlap ends, so receivers switch without a gap.
      const previous = d.previous_sealed ? [openWebhookSecret(d.previous_sealed, secretKey, d.webhook_id)] : [];
      // Resolved again at every delivery: a public name that now points inside the network is refused.
      if (o.allowPrivate === false) await assertPublicHost(d.url, o.resolve);
      const body = JSON.stringify(orderedBody(d.payload));
      const res = await fetch(d.url, {
        method: 'POST',
        body,
        // A redirect is an answer like any other non-2xx: following it could POST the event elsewhere.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': webhookUserAgent,
          [webhookHeaders.signature]: signWebhookPayload(secret, body, undefined, previous),
          [webhookHeaders.event]: d.event_type,
          [webhookHeaders.delivery]: d.id,
        },
      });
      responseStatus = res.status;
      excerpt = await readExcerpt(res);
      if (res.status >= 300 && res.status < 400) error = `Redirect not followed${res.headers.get('location') ? ` (to ${res.headers.get('location')})` : ''}: point the webhook at the final URL`;
      else if (res.status >= 400) error = `The endpoint answered ${res.status}`;
    } catch (err) {
      if (err instanceof WebhookSecretError || err instanceof PrivateAddressError) permanent = true;
      error = err instanceof WebhookSecretError || err instanceof PrivateAddressError ? err.message : describeError(err, timeoutMs);
    }
    const durationMs = Math.round(performance.now() - started);
    const ok = responseStatus !== null && responseStatus >= 200 && responseStatus < 300;
    const [delivery] = await sequelize.query<WebhookDeliveryRow>(
      `WITH d AS (
         UPDATE webhook_deliveries SET status = :status, attempts = attempts + 1, response_status = :responseStatus, response_excerpt = :excerpt,
           error = :error, duration_ms = :durationMs, last_attempt_at = now(), delivered_at = CASE WHEN :ok THEN now() ELSE delivered_at END
         WHERE id = :deliveryId
         RETURNING *
       ), w AS (
         UPDATE webhooks SET last_delivery_at = now(), last_status = :status FROM d WHERE webhooks.id = d.webhook_id
       )
       SELECT d.*, d.created_at::text AS cursor_at FROM d`,
      {
        replacements: {
          deliveryId, ok, status: ok ? 'delivered' : 'failed', responseStatus, excerpt: excerpt === null ? null : excerpt,
          error: error === null ? null : clip(clean(error), 500), durationMs,
        },
        type: QueryTypes.SELECT,
      },
    );
    return { delivery: delivery!, permanent };
  }

  /** Records a delivery of an event to one endpoint (once per endpoint and event id); answers its id. */
  async function enqueue(webhookId: string, e: Pick<WebhookEventInput, 'eventId' | 'type' | 'workspaceId' | 'at' | 'payload'>): Promise<string> {
    const [row] = await sequelize.query<{ id: string }>(
      `WITH ins AS (
         INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, payload) VALUES (:id, :webhookId, :eventId, :type, :payload)
         ON CONFLICT (webhook_id, event_id) DO NOTHING RETURNING id
       )
       SELECT id FROM ins UNION ALL SELECT id FROM webhook_deliveries WHERE webhook_id = :webhookId AND event_id = :eventId LIMIT 1`,
      { replacements: { id: newId('whd'), webhookId, eventId: e.eventId, type: e.type, payload: JSON.stringify(webhookBody(e)) }, type: QueryTypes.SELECT },
    );
    return row!.id;
  }

  return { attempt, enqueue };
}

/** Signed webhook deliveries: the pipeline calls `deliverWebhooks` once per state change. */
export function createWebhookActivities({ sequelize, secretKey, webhookAllowPrivate }: ActivityDeps) {
  return {
    /**
     * Sends the event to every active endpoint of the workspace subscribed to its type (that
     * existed when it happened). Endpoints already served are skipped, so when one endpoint fails
     * the retryable failure this throws makes Temporal try again for the failed ones only.
     */
    async deliverWebhooks(input: WebhookEventInput): Promise<{ delivered: number; failed: number }> {
      const endpoints = await sequelize.query<{ id: string }>(
        `SELECT id FROM webhooks
         WHERE workspace_id = :workspaceId AND active AND created_at <= :at::timestamptz AND (cardinality(events) = 0 OR :type = ANY(events))
         ORDER BY created_at, id`,
        { replacements: { workspaceId: input.workspaceId, type: input.type, at: input.at }, type: QueryTypes.SELECT },
      );
      if (!endpoints.length) return { delivered: 0, failed: 0 };
      if (!secretKey) throw ApplicationFailure.nonRetryable('the worker has no secret key to open webhook signing secrets', WebhookFailure.configuration);
      const sender = createWebhookSender({ sequelize, secretKey, allowPrivate: webhookAllowPrivate });
      for (const w of endpoints) await sender.enqueue(w.id, input);

      // Still to send: not yet delivered, on an endpoint still active and subscribed.
      const pending = await sequelize.query<{ id: string; url: string }>(
        `SELECT d.id, w.url FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.event_id = :eventId AND w.workspace_id = :workspaceId AND w.active AND d.status <> 'delivered'
           AND (cardinality(w.events) = 0 OR d.event_type = ANY(w.events))
         ORDER BY w.created_at, w.id`,
        { replacements: { eventId: input.eventId, workspaceId: input.workspaceId }, type: QueryTypes.SELECT },
      );
      let delivered = 0;
      const failures: string[] = [];
      let permanentFailures = 0;
      for (const [i, p] of pending.entries()) {
        heartbeat({ eventId: input.eventId, endpoint: i + 1, of: pending.length });
        const { delivery, permanent } = await sender.attempt(p.id);
        if (delivery.status === 'delivered') delivered++;
        else if (permanent) permanentFailures++;
        else failures.push(`${p.url}: ${delivery.error ?? 'failed'}`);
      }
      if (failures.length) {
        throw ApplicationFailure.retryable(
          `${failures.length} of ${pending.length} webhook endpoint(s) failed for ${input.type}: ${clip(failures.join('; '), 800)}`,
          WebhookFailure.deliveryFailed,
          { delivered, failed: failures.length },
        );
      }
      return { delivered, failed: permanentFailures };
    },
  };
}
