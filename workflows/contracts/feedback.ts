import { defineQuery } from '@temporalio/workflow';

/**
 * The contract of `feedbackReply`: mails one operator reply to the person who sent the feedback,
 * id feedback-reply:<replyId>. A failing mail server is retried (with backoff) until `giveUpAfterMs`;
 * the reply row shows the attempts and the last error meanwhile, then `sent` or `failed`.
 */
export const feedbackReplyWorkflowId = (replyId: string) => `feedback-reply:${replyId}`;
export const feedbackReplyWorkflowType = 'feedbackReply';

export const feedbackReplyStatuses = ['queued', 'sent', 'failed'] as const;
export type FeedbackReplyStatus = (typeof feedbackReplyStatuses)[number];

export interface FeedbackReplyInput {
  replyId: string;
  feedbackId: string;
  /** How long to keep retrying the mail before the reply is marked failed (from configuration). */
  giveUpAfterMs: number;
  /** First retry delay; doubles up to `maxRetryIntervalMs`. */
  retryIntervalMs: number;
  maxRetryIntervalMs: number;
}

export interface FeedbackReplyState {
  replyId: string;
  feedbackId: string;
  status: FeedbackReplyStatus;
  sentAt: string | null;
  error: string | null;
}

/** The mail activity's input: `dedupeKey` is minted in the workflow, so a retried send mails once. */
export interface FeedbackReplyMailInput {
  dedupeKey: string;
  replyId: string;
}

/** The projection of the outcome (the activity records each failed attempt itself). */
export interface FeedbackReplyOutcome {
  replyId: string;
  status: Exclude<FeedbackReplyStatus, 'queued'>;
  at: string;
  error: string | null;
}

export const feedbackReplyStatusQuery = defineQuery<FeedbackReplyState>('feedbackReplyStatus');
