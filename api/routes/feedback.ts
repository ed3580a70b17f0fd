import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { QueryTypes } from 'sequelize';
import { createHash } from 'node:crypto';
import { appendAudit } from '../../activities/audit.js';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { checkImage, ImageError } from '../../lib/image-check.js';
import { feedbackReplyStatuses, feedbackReplyWorkflowId, feedbackReplyWorkflowType, type FeedbackReplyInput } from '../../workflows/contracts/feedback.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission, requirePlatformPermission, requireUser } from '../middleware.js';
import { WorkspaceParams, errorResponses, json } from '../schemas.js';
import { decodeCursor, encodeCursor } from '../cursor.js';

export const feedbackCategories = ['bug', 'idea', 'question', 'other'] as const;
export const feedbackStatuses = ['new', 'in_progress', 'done'] as const;
type FeedbackStatus = (typeof feedbackStatuses)[number];

/** Where a status may go from each status (the inbox shows a button for each). */
export const feedbackTransitions: Record<FeedbackStatus, FeedbackStatus[]> = {
  new: ['in_progress', 'done'],
  in_progress: ['done', 'new'],
  done: ['in_progress'],
};

/** Feedback one person may send per hour (a stuck button or a script, not a person typing). */
export const feedbackPerHour = 20;
/** How long a reply's mail is retried before it is marked failed, and its backoff. */
export const feedbackReplyRetry = { giveUpAfterMs: 24 * 3600_000, retryIntervalMs: 2_000, maxRetryIntervalMs: 5 * 60_000 };
/** A screenshot's largest sides in pixels (4K monitors at 2x are 7680 wide). */
const maxScreenshotSide = 8192;

const SubmitForm = z
  .object({
    category: z.enum(feedbackCategories),
    text: z.string().trim().min(1, 'say what you would like us to know').max(5000, 'at most 5000 characters'),
    page: z.string().trim().max(500).regex(/^(\/[^\s]*)?$/, 'must be a path of the console such as /w/ws_1/mini-programs').optional().default(''),
    screenshot: z.any().optional().openapi({ type: 'string', format: 'binary', description: 'an optional PNG, JPEG or WebP screenshot (checked by content)' }),
  })
  .openapi('SubmitFeedback');

const ReplySchema = z
  .object({
    id: z.string(), author: z.object({ id: z.string().nullable(), name: z.string() }), text: z.string(), createdAt: z.string(),
    mailStatus: z.enum(feedbackReplyStatuses).describe('queued: being mailed (retried while the mail server fails); sent; failed: gave up'),
    attempts: z.number(), lastError: z.string().nullable(), sentAt: z.string().nullable(),
  })
  .openapi('FeedbackReply');

const ScreenshotSchema = z.object({ contentType: z.string(), size: z.number(), width: z.number().nullable(), height: z.number().nullable() }).nullable();

const FeedbackSchema = z
  .object({
    id: z.string(), category: z.enum(feedbackCategories), text: z.string(), page: z.string(), status: z.enum(feedbackStatuses),
    screenshot: ScreenshotSchema, createdAt: z.string(), updatedAt: z.string(),
    workspace: z.object({ id: z.string(), name: z.string(), code: z.string() }).nullable(),
    replies: z.array(ReplySchema),
  })
  .openapi('Feedback');

const InboxItemSchema = FeedbackSchema.extend({
  from: z.object({ id: z.string().nullable(), name: z.string(), email: z.string() }),
  userAgent: z.string().nullable(),
  statusChangedBy: z.object({ id: z.string(), name: z.string() }).nullable(), statusChangedAt: z.string().nullable(),
  allowedStatuses: z.array(z.enum(feedbackStatuses)),
}).openapi('FeedbackInboxItem');

const InboxQuery = z.object({
  status: z.enum(feedbackStatuses).optional(), category: z.enum(feedbackCategories).optional(), q: z.string().trim().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(25), cursor: z.string().max(200).optional(),
});
const MineQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(25), cursor: z.string().max(200).optional() });
const FeedbackParams = z.object({ feedbackId: z.string().min(1).max(100) });
const StatusBody = z.object({ status: z.enum(feedbackStatuses) }).openapi('SetFeedbackStatus');
const ReplyBody = z.object({ text: z.string().trim().min(1, 'write the reply').max(5000, 'at most 5000 characters') }).openapi('ReplyToFeedback');

interface FeedbackRow {
  id: string; workspace_id: string | null; workspace_name: string | null; workspace_code: string | null; user_id: string | null; email: string; name: string;
  category: (typeof feedbackCategories)[number]; text: string; page: string; user_agent: string | null; screenshot_sha256: string | null; screenshot_type: string | null;
  screenshot_size: number | null; screenshot_width: number | null; screenshot_height: number | null; status: FeedbackStatus; status_changed_by: string | null;
  status_changed_by_name: string | null; status_changed_at: Date | null; created_at: Date; updated_at: Date; cursor_at: string;
}
interface ReplyRow {
  id: string; feedback_id: string; author_id: string | null; author_name: string; text: string; mail_status: (typeof feedbackReplyStatuses)[number]; attempts: number;
  last_error: string | null; sent_at: Date | null; created_at: Date;
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());
const selectFeedback = `SELECT f.*, w.name AS workspace_name, w.code AS workspace_code, su.name AS status_changed_by_name, f.created_at::text AS cursor_at
  FROM feedback f LEFT JOIN workspaces w ON w.id = f.workspace_id LEFT JOIN users su ON su.id = f.status_changed_by`;

const replyOut = (r: ReplyRow) => ({
  id: r.id, author: { id: r.author_id, name: r.author_name }, text: r.text, createdAt: iso(r.created_at)!, mailStatus: r.mail_status, attempts: r.attempts,
  lastError: r.last_error, sentAt: iso(r.sent_at),
});

const feedbackOut = (f: FeedbackRow, replies: ReplyRow[]) => ({
  id: f.id, category: f.category, text: f.text, page: f.page, status: f.status,
  screenshot: f.screenshot_sha256 ? { contentType: f.screenshot_type ?? 'application/octet-stream', size: f.screenshot_size ?? 0, width: f.screenshot_width, height: f.screenshot_height } : null,
  createdAt: iso(f.created_at)!, updatedAt: iso(f.updated_at)!,
  workspace: f.workspace_id ? { id: f.workspace_id, name: f.workspace_name ?? '', code: f.workspace_code ?? '' } : null,
  replies: replies.filter((r) => r.feedback_id === f.id).map(replyOut),
});

const inboxOut = (f: FeedbackRow, replies: ReplyRow[]) => ({
  ...feedbackOut(f, replies),
  from: { id: f.user_id, name: f.name, email: f.email }, userAgent: f.user_agent,
  statusChangedBy: f.status_changed_by ? { id: f.status_changed_by, name: f.status_changed_by_name ?? 'unknown' } : null, statusChangedAt: iso(f.status_changed_at),
  allowedStatuses: feedbackTransitions[f.status],
});

/** Feedback to the console: members send it; platform operators triage it and reply by mail. */
export function feedbackRoutes({ sequelize, temporal, store, config }: ApiDeps) {
  async function repliesOf(ids: string[]): Promise<ReplyRow[]> {
    if (!ids.length) return [];
    return sequelize.query<ReplyRow>('SELECT * FROM feedback_replies WHERE feedback_id IN (:ids) ORDER BY created_at, id', { replacements: { ids }, type: QueryTypes.SELECT });
  }

  async function findFeedback(feedbackId: string, userId?: string): Promise<FeedbackRow> {
    const [row] = await sequelize.query<FeedbackRow>(`${selectFeedback} WHERE f.id = :feedbackId ${userId ? 'AND f.user_id = :userId' : ''}`, {
      replacements: { feedbackId, userId: userId ?? null }, type: QueryTypes.SELECT,
    });
    if (!row) throw notFound('Feedback');
    return row;
  }

  async function inboxItem(feedbackId: string) {
    const row = await findFeedback(feedbackId);
    return inboxOut(row, await repliesOf([row.id]));
  }

  async function screenshot(c: Context<AppEnv>, row: FeedbackRow) {
    if (!row.screenshot_sha256) throw notFound('Screenshot');
    const bytes = await store.get(row.screenshot_sha256).catch(() => null);
    if (!bytes) throw notFound('Screenshot');
    // Checked by content when it came in; served as that type only, never sniffed, never a document.
    return c.body(new Uint8Array(bytes), 200, {
      'Content-Type': row.screenshot_type ?? 'application/octet-stream', 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'private, max-age=300',
      'Content-Security-Policy': "default-src 'none'; sandbox", 'Content-Disposition': `inline; filename="feedback-${row.id}.${(row.screenshot_type ?? '').split('/')[1] ?? 'bin'}"`,
    });
  }

  async function audit(workspaceId: string | null, feedbackId: string, actorId: string, action: string, from: string | null, to: string | null, comment: string | null) {
    if (!workspaceId) return;
    await appendAudit(sequelize, { dedupeKey: `${action}:${feedbackId}:${newId('a')}`, workspaceId, subjectType: 'feedback', subjectId: feedbackId, actorId, action, fromState: from, toState: to, comment, at: new Date().toISOString() });
  }

  const screenshotResponse = { 200: { description: 'The image', content: { 'image/png': { schema: z.any() }, 'image/jpeg': { schema: z.any() }, 'image/webp': { schema: z.any() } } }, ...errorResponses };

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'post', path: '/workspaces/{workspaceId}/feedback', tags: ['feedback'],
        summary: 'Send feedback to the console\'s operators: category, text, the page it came from, an optional screenshot (multipart/form-data)',
        middleware: [
          requirePermission('feedback.submit'),
          bodyLimit({ maxSize: config.feedbackMaxBytes + 64 * 1024, onError: () => { throw new AppError(413, 'screenshot_too_large', `The screenshot is larger than ${Math.round(config.feedbackMaxBytes / 1024 / 1024 * 10) / 10} MB`, { limit: config.feedbackMaxBytes }); } }),
        ],
        request: { params: WorkspaceParams, body: { content: { 'multipart/form-data': { schema: SubmitForm } }, required: true } },
        responses: { 201: json(FeedbackSchema, 'Sent'), ...errorResponses, 413: { description: 'The screenshot is too large', content: { 'application/json': { schema: z.any() } } } },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const form = c.req.valid('form');
        const user = c.get('user')!;
        const [recent] = await sequelize.query<{ n: number; oldest: Date | null }>(
          `SELECT count(*)::int AS n, min(created_at) AS oldest FROM feedback WHERE user_id = :userId AND created_at > now() - interval '1 hour'`,
          { replacements: { userId: user.id }, type: QueryTypes.SELECT },
        );
        if (recent && recent.n >= feedbackPerHour) {
          const retryAfterSeconds = Math.max(1, Math.ceil((new Date(recent.oldest!).getTime() + 3600_000 - Date.now()) / 1000));
          throw new AppError(429, 'rate_limited', `You sent ${feedbackPerHour} pieces of feedback within the hour; try again later`, { retryAfterSeconds });
        }
        let shot: { sha256: string; size: number; contentType: string; width: number | null; height: number | null } | null = null;
        const file = form.screenshot as unknown;
        if (file !== undefined && file !== '' && !(file instanceof File)) throw new AppError(400, 'screenshot_not_a_file', 'Attach the screenshot as a file in the "screenshot" field');
        if (file instanceof File && file.size > 0) {
          if (file.size > config.feedbackMaxBytes) throw new AppError(413, 'screenshot_too_large', `The screenshot is larger than the limit of ${config.feedbackMaxBytes} bytes`, { limit: config.feedbackMaxBytes });
          const bytes = Buffer.from(await file.arrayBuffer());
          let image;
          try {
            image = checkImage(bytes, { allowed: ['png', 'jpeg', 'webp'], maxBytes: config.feedbackMaxBytes, maxWidth: maxScreenshotSide, maxHeight: maxScreenshotSide });
          } catch (err) {
            if (err instanceof ImageError) throw new AppError(err.code === 'image_too_large' ? 413 : 400, err.code, `Screenshot: ${err.message}`, { field: 'screenshot' });
            throw err;
          }
          const stored = await store.put(bytes);
          shot = { ...stored, contentType: image.contentType, width: image.width, height: image.height };
        }
        const id = newId('fb');
        const [u] = await sequelize.query<{ email: string; name: string }>('SELECT email, name FROM users WHERE id = :id', { replacements: { id: user.id }, type: QueryTypes.SELECT });
        await sequelize.query(
          `INSERT INTO feedback (id, workspace_id, user_id, email, name, category, text, page, user_agent, screenshot_sha256, screenshot_type, screenshot_size, screenshot_width, screenshot_height)
           VALUES (:id, :workspaceId, :userId, :email, :name, :category, :text, :page, :userAgent, :sha, :type, :size, :width, :height)`,
          {
            replacements: {
              id, workspaceId, userId: user.id, email: u?.email ?? user.email, name: u?.name ?? user.name, category: form.category, text: form.text, page: form.page,
              userAgent: (c.req.header('user-agent') ?? '').slice(0, 300) || null, sha: shot?.sha256 ?? null, type: shot?.contentType ?? null, size: shot?.size ?? null,
              width: shot?.width ?? null, height: shot?.height ?? null,
            },
          },
        );
        await audit(workspaceId, id, user.id, 'feedback_sent', null, 'new', `${form.category}${shot ? ' with a screenshot' : ''}`);
        return c.json(feedbackOut(await findFeedback(id), []), 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/me/feedback', tags: ['feedback'], summary: 'The feedback you sent, newest first, with its status and the operators\' replies',
        middleware: [requireUser], request: { query: MineQuery },
        responses: { 200: json(z.object({ items: z.array(FeedbackSchema), nextCursor: z.string().nullable() }), 'A page'), ...errorResponses },
      }),
      async (c) => {
        const { limit, cursor } = c.req.valid('query');
        const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
        const rows = await sequelize.query<FeedbackRow>(
          `${selectFeedback} WHERE f.user_id = :userId ${cursor ? 'AND (f.created_at, f.id) < (:cAt::timestamptz, :cId)' : ''} ORDER BY f.created_at DESC, f.id DESC LIMIT :limit`,
          { replacements: { userId: c.get('user')!.id, cAt, cId, limit: limit + 1 }, type: QueryTypes.SELECT },
        );
        const page = rows.slice(0, limit);
        const replies = await repliesOf(page.map((r) => r.id));
        const last = page[page.length - 1];
        return c.json({ items: page.map((r) => feedbackOut(r, replies)), nextCursor: rows.length > limit && last ? encodeCursor(last.cursor_at, last.id) : null }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/me/feedback/{feedbackId}/screenshot', tags: ['feedback'], summary: 'The screenshot you attached to your feedback',
        middleware: [requireUser], request: { params: FeedbackParams }, responses: screenshotResponse,
      }),
      async (c) => screenshot(c, await findFeedback(c.req.valid('param').feedbackId, c.get('user')!.id)),
    )
    .openapi(
      createRoute({
        method: 'get', path: '/platform/feedback', tags: ['feedback'], summary: 'The feedback inbox: filter by status and category, search the text, newest first; counts per status',
        middleware: [requirePlatformPermission('platform.feedback')], request: { query: InboxQuery },
        responses: {
          200: json(z.object({ items: z.array(InboxItemSchema), nextCursor: z.string().nullable(), counts: z.object({ all: z.number(), new: z.number(), in_progress: z.number(), done: z.number() }) }), 'A page'),
          ...errorResponses,
        },
      }),
      async (c) => {
        const { status, category, q, limit, cursor } = c.req.valid('query');
        const [cAt, cId] = cursor ? decodeCursor(cursor) : [null, null];
        const like = q ? `%${q.replace(/[\\%_]/g, (m) => `\\${m}`)}%` : null;
        const filters = `${category ? 'AND f.category = :category' : ''} ${like ? 'AND (f.text ILIKE :like OR f.email ILIKE :like OR f.name ILIKE :like)' : ''}`;
        const [rows, [counts]] = await Promise.all([
          sequelize.query<FeedbackRow>(
            `${selectFeedback} WHERE true ${status ? 'AND f.status = :status' : ''} ${filters} ${cursor ? 'AND (f.created_at, f.id) < (:cAt::timestamptz, :cId)' : ''}
             ORDER BY f.created_at DESC, f.id DESC LIMIT :limit`,
            { replacements: { status: status ?? null, category: category ?? null, like, cAt, cId, limit: limit + 1 }, type: QueryTypes.SELECT },
          ),
          sequelize.query<{ all: number; new: number; in_progress: number; done: number }>(
            `SELECT count(*)::int AS all, count(*) FILTER (WHERE f.status = 'new')::int AS new, count(*) FILTER (WHERE f.status = 'in_progress')::int AS in_progress,
               count(*) FILTER (WHERE f.status = 'done')::int AS done FROM feedback f WHERE true ${filters}`,
            { replacements: { category: category ?? null, like }, type: QueryTypes.SELECT },
          ),
        ]);
        const page = rows.slice(0, limit);
        const replies = await repliesOf(page.map((r) => r.id));
        const last = page[page.length - 1];
        return c.json({
          items: page.map((r) => inboxOut(r, replies)), nextCursor: rows.length > limit && last ? encodeCursor(last.cursor_at, last.id) : null,
          counts: counts ?? { all: 0, new: 0, in_progress: 0, done: 0 },
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/platform/feedback/{feedbackId}', tags: ['feedback'], summary: 'One piece of feedback with its replies',
        middleware: [requirePlatformPermission('platform.feedback')], request: { params: FeedbackParams },
        responses: { 200: json(InboxItemSchema, 'The feedback'), ...errorResponses },
      }),
      async (c) => c.json(await inboxItem(c.req.valid('param').feedbackId), 200),
    )
    .openapi(
      createRoute({
        method: 'get', path: '/platform/feedback/{feedbackId}/screenshot', tags: ['feedback'], summary: 'The screenshot attached to a piece of feedback',
        middleware: [requirePlatformPermission('platform.feedback')], request: { params: FeedbackParams }, responses: screenshotResponse,
      }),
      async (c) => screenshot(c, await findFeedback(c.req.valid('param').feedbackId)),
    )
    .openapi(
      createRoute({
        method: 'patch', path: '/platform/feedback/{feedbackId}', tags: ['feedback'], summary: 'Move a piece of feedback to another status (new → in progress → done; done can be reopened)',
        middleware: [requirePlatformPermission('platform.feedback')],
        request: { params: FeedbackParams, body: { content: { 'application/json': { schema: StatusBody } }, required: true } },
        responses: { 200: json(InboxItemSchema, 'Changed'), ...errorResponses },
      }),
      async (c) => {
        const { feedbackId } = c.req.valid('param');
        const { status } = c.req.valid('json');
        const before = await findFeedback(feedbackId);
        if (before.status === status) return c.json(await inboxItem(feedbackId), 200);
        if (!feedbackTransitions[before.status].includes(status)) {
          throw new AppError(409, 'wrong_state', `Feedback that is ${before.status.replace('_', ' ')} cannot move to ${status.replace('_', ' ')}`, { status: before.status, allowed: feedbackTransitions[before.status] });
        }
        const user = c.get('user')!;
        const [moved] = await sequelize.query<{ id: string }>(
          `UPDATE feedback SET status = :status, status_changed_by = :userId, status_changed_at = now(), updated_at = now() WHERE id = :feedbackId AND status = :from RETURNING id`,
          { replacements: { feedbackId, status, userId: user.id, from: before.status }, type: QueryTypes.SELECT },
        );
        if (!moved) throw new AppError(409, 'conflict', 'Someone else changed this feedback at the same time; reload it');
        await audit(before.workspace_id, feedbackId, user.id, 'feedback_status', before.status, status, null);
        return c.json(await inboxItem(feedbackId), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/platform/feedback/{feedbackId}/replies', tags: ['feedback'],
        summary: 'Reply by mail to the person who sent the feedback (a durable feedbackReply workflow sends it, retrying while the mail server fails); new feedback moves to in progress',
        middleware: [requirePlatformPermission('platform.feedback')],
        request: { params: FeedbackParams, body: { content: { 'application/json': { schema: ReplyBody } }, required: true } },
        responses: { 201: json(InboxItemSchema, 'The feedback with the reply queued'), ...errorResponses },
      }),
      async (c) => {
        const { feedbackId } = c.req.valid('param');
        const { text } = c.req.valid('json');
        const user = c.get('user')!;
        const fb = await findFeedback(feedbackId);
        const key = c.req.header('idempotency-key');
        const replyId = key ? `fbr_${createHash('sha256').update(`${feedbackId}:${user.id}:${key.slice(0, 200)}`).digest('hex').slice(0, 24)}` : newId('fbr');
        const [inserted] = await sequelize.query<{ id: string }>(
          `INSERT INTO feedback_replies (id, feedback_id, author_id, author_name, text) VALUES (:replyId, :feedbackId, :userId, :name, :text)
           ON CONFLICT (id) DO NOTHING RETURNING id`,
          { replacements: { replyId, feedbackId, userId: user.id, name: user.name, text }, type: QueryTypes.SELECT },
        );
        if (inserted) {
          const input: FeedbackReplyInput = { replyId, feedbackId, ...feedbackReplyRetry };
          try {
            await temporal.workflow.start(feedbackReplyWorkflowType, { workflowId: feedbackReplyWorkflowId(replyId), taskQueue: config.temporal.taskQueue, args: [input] });
          } catch (err) {
            if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
              await sequelize.query('DELETE FROM feedback_replies WHERE id = :replyId', { replacements: { replyId } });
              throw err;
            }
          }
          if (fb.status === 'new') {
            await sequelize.query(`UPDATE feedback SET status = 'in_progress', status_changed_by = :userId, status_changed_at = now(), updated_at = now() WHERE id = :feedbackId AND status = 'new'`, {
              replacements: { feedbackId, userId: user.id },
            });
          } else {
            await sequelize.query('UPDATE feedback SET updated_at = now() WHERE id = :feedbackId', { replacements: { feedbackId } });
          }
          await audit(fb.workspace_id, feedbackId, user.id, 'feedback_replied', fb.status, fb.status === 'new' ? 'in_progress' : fb.status, null);
        }
        return c.json(await inboxItem(feedbackId), 201);
      },
    );
}
