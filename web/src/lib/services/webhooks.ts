import type { InferResponseType } from 'hono/client';
import type { ApiClient } from '$lib/api/types';
import { api, seg, unwrap } from './http';

/** A workspace's webhook endpoints, their signing secrets (shown once) and delivery logs. */

type Hooks = ApiClient['workspaces'][':workspaceId']['webhooks'];
type Hook = Hooks[':webhookId'];

export type WebhookPage = InferResponseType<Hooks['$get'], 200>;
export type Webhook = WebhookPage['items'][number];
export type WebhookEventType = Webhook['events'][number];
export type WebhookEventInfo = WebhookPage['eventTypes'][number];
export type WebhookWithSecret = InferResponseType<Hooks['$post'], 201>;
export type DeliveryPage = InferResponseType<Hook['deliveries']['$get'], 200>;
export type WebhookDelivery = DeliveryPage['items'][number];
export type DeliveryStatus = WebhookDelivery['status'];

export interface WebhookInput {
  url: string;
  description: string;
  /** Empty = every event. */
  events: WebhookEventType[];
}

const hooks = () => api.workspaces[':workspaceId'].webhooks;
const hook = () => hooks()[':webhookId'];
const params = (workspaceId: string, webhookId: string) => ({ workspaceId: seg(workspaceId), webhookId: seg(webhookId) });

export function listWebhooks(workspaceId: string): Promise<WebhookPage> {
  return unwrap<WebhookPage>(hooks().$get({ param: { workspaceId: seg(workspaceId) }, query: { limit: 100 } }));
}

export function createWebhook(workspaceId: string, input: WebhookInput): Promise<WebhookWithSecret> {
  return unwrap<WebhookWithSecret>(hooks().$post({ param: { workspaceId: seg(workspaceId) }, json: { ...input, active: true } }));
}

export function updateWebhook(workspaceId: string, webhookId: string, change: Partial<WebhookInput> & { active?: boolean }): Promise<Webhook> {
  return unwrap<Webhook>(hook().$patch({ param: params(workspaceId, webhookId), json: change }));
}

export function rotateWebhookSecret(workspaceId: string, webhookId: string, overlapHours = 24): Promise<WebhookWithSecret> {
  return unwrap<WebhookWithSecret>(hook()['rotate-secret'].$post({ param: params(workspaceId, webhookId), json: { overlapHours } }));
}

export function deleteWebhook(workspaceId: string, webhookId: string): Promise<{ removed: { id: string; url: string } }> {
  return unwrap(hook().$delete({ param: params(workspaceId, webhookId) }));
}

/** Sends a signed ping now; answers the delivery (delivered or failed). */
export function pingWebhook(workspaceId: string, webhookId: string): Promise<{ delivery: WebhookDelivery }> {
  return unwrap(hook().ping.$post({ param: params(workspaceId, webhookId) }));
}

export function listDeliveries(workspaceId: string, webhookId: string, p: { status?: DeliveryStatus | ''; cursor?: string | null; limit?: number } = {}): Promise<DeliveryPage> {
  return unwrap<DeliveryPage>(
    hook().deliveries.$get({ param: params(workspaceId, webhookId), query: { status: p.status || undefined, cursor: p.cursor || undefined, limit: p.limit ?? 25 } }),
  );
}

export function redeliver(workspaceId: string, webhookId: string, deliveryId: string): Promise<{ delivery: WebhookDelivery }> {
  return unwrap(hook().deliveries[':deliveryId'].redeliver.$post({ param: { ...params(workspaceId, webhookId), deliveryId: seg(deliveryId) } }));
}
