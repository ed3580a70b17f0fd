import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  feedbackReplyStatusQuery, feedbackReplyWorkflowId, feedbackReplyWorkflowType, type FeedbackReplyInput, type FeedbackReplyOutcome, type FeedbackReplyState,
} from '../../workflows/contracts/feedback.js';
import { maybeRecordHistory, startTestWorker, uid } from '../helpers/workflow-env.js';

/**
 * Plain-function activities: a mail server whose behaviour is set per reply (fail the first n
 * attempts, fail always, or the reply is gone); sends are counted per dedupe key like the outbox.
 */
function fakeActivities() {
  const attempts = new Map<string, number>();
  const sent = new Map<string, number>();
  const outcomes: FeedbackReplyOutcome[] = [];
  const failFirst = new Map<string, number>();
  const gone = new Set<string>();
  const activities: Partial<Activities> = {
    async sendFeedbackReplyMail(input) {
      const n = (attempts.get(input.replyId) ?? 0) + 1;
      attempts.set(input.replyId, n);
      if (gone.has(input.replyId)) throw ApplicationFailure.nonRetryable('reply gone', 'feedback_reply_gone');
      if (n <= (failFirst.get(input.replyId) ?? 0)) throw new Error('connect ECONNREFUSED 127.0.0.1:25');
      if (sent.has(input.dedupeKey)) return 'skipped';
      sent.set(input.dedupeKey, 1);
      return 'sent';
    },
    async recordFeedbackReplyOutcome(o) {
      outcomes.push(o);
    },
  };
  return { attempts, sent, outcomes, failFirst, gone, activities };
}

const fake = fakeActivities();
let env: Awaited<ReturnType<typeof startTestWorker>>;
let client: Client;

beforeAll(async () => {
  env = await startTestWorker(fake.activities);
  client = env.client;
});
afterAll(async () => env?.stop());

async function reply(o: Partial<FeedbackReplyInput> = {}) {
  const input: FeedbackReplyInput = { replyId: uid('fbr_'), feedbackId: uid('fb_'), giveUpAfterMs: 60_000, retryIntervalMs: 100, maxRetryIntervalMs: 400, ...o };
  const handle = await client.workflow.start<(i: FeedbackReplyInput) => Promise<FeedbackReplyState>>(feedbackReplyWorkflowType, {
    workflowId: feedbackReplyWorkflowId(input.replyId), taskQueue: env.taskQueue, args: [input],
  });
  return { input, handle };
}

describe('feedbackReply', () => {
  it('mails the reply once and records it sent', async () => {
    const { input, handle } = await reply();
    const state = await handle.result();
    expect(state).toMatchObject({ replyId: input.replyId, status: 'sent', error: null, sentAt: expect.any(String) });
    expect(fake.attempts.get(input.replyId)).toBe(1);
    expect(fake.sent.get(`${feedbackReplyWorkflowId(input.replyId)}:mail`)).toBe(1);
    expect(fake.outcomes.filter((o) => o.replyId === input.replyId)).toEqual([expect.objectContaining({ status: 'sent', error: null })]);
    expect(await handle.query(feedbackReplyStatusQuery)).toMatchObject({ status: 'sent' });
    await maybeRecordHistory(client, handle.workflowId, 'feedback-sent');
  });

  it('retries while the mail server fails, then sends once', async () => {
    const replyId = uid('fbr_');
    fake.failFirst.set(replyId, 3);
    const { handle } = await reply({ replyId });
    const state = await handle.result();
    expect(state.status).toBe('sent');
    expect(fake.attempts.get(replyId)).toBe(4);
    expect(fake.sent.get(`${feedbackReplyWorkflowId(replyId)}:mail`)).toBe(1);
    expect(fake.outcomes.filter((o) => o.replyId === replyId).map((o) => o.status)).toEqual(['sent']);
    await maybeRecordHistory(client, handle.workflowId, 'feedback-retried');
  });

  it('gives up after its budget and records the reply failed', async () => {
    const replyId = uid('fbr_');
    fake.failFirst.set(replyId, 1_000);
    const started = Date.now();
    const { handle } = await reply({ replyId, giveUpAfterMs: 2_000 });
    const state = await handle.result();
    expect(state.status).toBe('failed');
    expect(state.error).toMatch(/Gave up after 2 s/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(fake.attempts.get(replyId)).toBeGreaterThanOrEqual(2);
    expect(fake.sent.has(`${feedbackReplyWorkflowId(replyId)}:mail`)).toBe(false);
    expect(fake.outcomes.filter((o) => o.replyId === replyId)).toEqual([expect.objectContaining({ status: 'failed' })]);
    await maybeRecordHistory(client, handle.workflowId, 'feedback-gave-up');
  });

  it('does not retry a reply that no longer exists', async () => {
    const replyId = uid('fbr_');
    fake.gone.add(replyId);
    const { handle } = await reply({ replyId });
    const state = await handle.result();
    expect(state).toMatchObject({ status: 'failed', error: 'The feedback or reply no longer exists' });
    expect(fake.attempts.get(replyId)).toBe(1);
  });

  it('one workflow per reply: starting it twice is refused', async () => {
    const { input, handle } = await reply();
    await handle.result();
    await expect(
      client.workflow.start(feedbackReplyWorkflowType, { workflowId: feedbackReplyWorkflowId(input.replyId), taskQueue: env.taskQueue, args: [input], workflowIdReusePolicy: 'REJECT_DUPLICATE' }),
    ).rejects.toThrow(/already/i);
    expect(fake.attempts.get(input.replyId)).toBe(1);
  });
});
