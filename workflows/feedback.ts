import { ActivityFailure, ApplicationFailure, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { feedbackReplyStatusQuery, type FeedbackReplyInput, type FeedbackReplyState } from './contracts/feedback.js';
import { projection } from './profiles.js';

const { recordFeedbackReplyOutcome } = proxyActivities<Activities>(projection);

/**
 * feedbackReply: an operator's reply to a piece of feedback, mailed to its sender. The mail is one
 * activity retried by Temporal with backoff (a mail server that is down is tried again, durably,
 * across worker restarts) until `giveUpAfterMs`; then the reply is marked failed. Id:
 * feedback-reply:<replyId>.
 */
export async function feedbackReply(input: FeedbackReplyInput): Promise<FeedbackReplyState> {
  const state: FeedbackReplyState = { replyId: input.replyId, feedbackId: input.feedbackId, status: 'queued', sentAt: null, error: null };
  setHandler(feedbackReplyStatusQuery, () => state);

  // The retry schedule comes from the input, so tests run it in seconds against a real server.
  const { sendFeedbackReplyMail } = proxyActivities<Activities>({
    startToCloseTimeout: '1 minute',
    heartbeatTimeout: '10 seconds',
    scheduleToCloseTimeout: input.giveUpAfterMs,
    retry: { initialInterval: input.retryIntervalMs, backoffCoefficient: 2, maximumInterval: input.maxRetryIntervalMs, nonRetryableErrorTypes: ['feedback_reply_gone'] },
  });
  try {
    // The dedupe key comes from the workflow id: a send retried after it went through mails once.
    await sendFeedbackReplyMail({ dedupeKey: `${workflowInfo().workflowId}:mail`, replyId: input.replyId });
    state.status = 'sent';
    state.sentAt = new Date().toISOString();
  } catch (err) {
    // Out of time (or the reply is gone): the failure is recorded, not thrown, so the story ends cleanly.
    if (!(err instanceof ActivityFailure)) throw err;
    state.status = 'failed';
    const cause = err.cause;
    state.error = cause instanceof ApplicationFailure && cause.type === 'feedback_reply_gone' ? 'The feedback or reply no longer exists' : `Gave up after ${Math.round(input.giveUpAfterMs / 1000)} s: ${cause?.message ?? err.message}`;
  }
  await recordFeedbackReplyOutcome({ replyId: input.replyId, status: state.status, at: state.sentAt ?? new Date().toISOString(), error: state.error });
  return state;
}
