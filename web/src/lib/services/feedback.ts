import type { InferResponseType } from 'hono/client';
import type { ApiClient } from '$lib/api/types';
import { api, apiBase, csrfHeaders, seg, unwrap } from './http';

/** Feedback to the console: members send it (with an optional screenshot); operators triage and reply by mail. */

type Inbox = ApiClient['platform']['feedback'];

export type Feedback = InferResponseType<ApiClient['me']['feedback']['$get'], 200>['items'][number];
export type FeedbackCategory = Feedback['category'];
export type FeedbackStatus = Feedback['status'];
export type FeedbackReply = Feedback['replies'][number];
export type InboxPage = InferResponseType<Inbox['$get'], 200>;
export type InboxItem = InboxPage['items'][number];
export type InboxCounts = InboxPage['counts'];

export const feedbackCategories: { value: FeedbackCategory; label: string; hint: string }[] = [
  { value: 'bug', label: 'Bug', hint: 'Something is broken or wrong' },
  { value: 'idea', label: 'Idea', hint: 'Something we could do better' },
  { value: 'question', label: 'Question', hint: 'Something you could not find out' },
  { value: 'other', label: 'Other', hint: 'Anything else' },
];
export const categoryLabel = (c: string) => feedbackCategories.find((x) => x.value === c)?.label ?? c;
export const feedbackStatusLabels: Record<FeedbackStatus, string> = { new: 'New', in_progress: 'In progress', done: 'Done' };

/** Screenshots the console accepts (the server checks the content, whatever the name says). */
export const screenshotTypes = 'image/png,image/jpeg,image/webp';

/** Sends feedback (multipart: the typed client does not carry files, so this one fetch is by hand). */
export async function sendFeedback(workspaceId: string, input: { category: FeedbackCategory; text: string; page: string; screenshot: File | null }): Promise<Feedback> {
  const form = new FormData();
  form.set('category', input.category);
  form.set('text', input.text);
  form.set('page', input.page);
  if (input.screenshot) form.set('screenshot', input.screenshot, input.screenshot.name);
  return unwrap<Feedback>(fetch(`${apiBase}/workspaces/${seg(workspaceId)}/feedback`, { method: 'POST', body: form, credentials: 'same-origin', headers: { Accept: 'application/json', ...csrfHeaders() } }));
}

export async function listMyFeedback(cursor?: string | null): Promise<{ items: Feedback[]; nextCursor: string | null }> {
  return unwrap(api.me.feedback.$get({ query: { limit: 50, cursor: cursor || undefined } }));
}

export const myScreenshotUrl = (feedbackId: string) => `${apiBase}/me/feedback/${seg(feedbackId)}/screenshot`;
export const inboxScreenshotUrl = (feedbackId: string) => `${apiBase}/platform/feedback/${seg(feedbackId)}/screenshot`;

export function listInbox(p: { status?: FeedbackStatus | ''; category?: FeedbackCategory | ''; q?: string; cursor?: string | null } = {}): Promise<InboxPage> {
  return unwrap<InboxPage>(api.platform.feedback.$get({ query: { status: p.status || undefined, category: p.category || undefined, q: p.q || undefined, cursor: p.cursor || undefined, limit: 25 } }));
}

export function getInboxItem(feedbackId: string): Promise<InboxItem> {
  return unwrap<InboxItem>(api.platform.feedback[':feedbackId'].$get({ param: { feedbackId: seg(feedbackId) } }));
}

export function setFeedbackStatus(feedbackId: string, status: FeedbackStatus): Promise<InboxItem> {
  return unwrap<InboxItem>(api.platform.feedback[':feedbackId'].$patch({ param: { feedbackId: seg(feedbackId) }, json: { status } }));
}

export function replyToFeedback(feedbackId: string, text: string, idempotencyKey: string): Promise<InboxItem> {
  return unwrap<InboxItem>(api.platform.feedback[':feedbackId'].replies.$post({ param: { feedbackId: seg(feedbackId) }, json: { text } }, { headers: { 'Idempotency-Key': idempotencyKey } }));
}
