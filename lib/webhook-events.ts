/**
 * The events a workspace's webhooks can subscribe to: one per review and release state change.
 * Pure (no imports), so the workflows, the API and the console can all name them.
 */
export const webhookEventTypes = [
  'review.requested',
  'review.approved',
  'review.rejected',
  'review.withdrawn',
  'release.rolling_out',
  'release.stage_advanced',
  'release.paused',
  'release.resumed',
  'release.halted',
  'release.aborted',
  'release.released',
  'release.superseded',
  'release.stuck',
  'release.rolled_back',
  'mini_program.offline',
] as const;

export type WebhookEventType = (typeof webhookEventTypes)[number];

/** The test event a "ping" sends; no subscription is needed to receive it. */
export const webhookPingEvent = 'ping';

/** What each event means, for the console and the API docs. */
export const webhookEventDescriptions: Record<WebhookEventType, string> = {
  'review.requested': 'A version was submitted and waits for review',
  'review.approved': 'A version got the approvals it needs',
  'review.rejected': 'A reviewer rejected a version (with the reason)',
  'review.withdrawn': 'The submitter withdrew a version from review',
  'release.rolling_out': 'An approved version started its staged rollout',
  'release.stage_advanced': 'A rollout moved to its next stage',
  'release.paused': 'A rollout was paused',
  'release.resumed': 'A paused rollout was resumed',
  'release.halted': 'The health check halted a rollout and rolled the cohort back',
  'release.aborted': 'A rollout was aborted by hand',
  'release.released': 'A version reached everyone and is live',
  'release.superseded': 'A hotfix or rollback took over a release in progress',
  'release.stuck': 'A pipeline step failed after its retries and waits for an operator',
  'release.rolled_back': 'A mini program was rolled back to an earlier version',
  'mini_program.offline': 'A mini program was taken offline',
};

export const isWebhookEventType = (s: string): s is WebhookEventType => (webhookEventTypes as readonly string[]).includes(s);
