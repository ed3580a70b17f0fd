import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import pg from 'pg';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createWebhookActivities, createWebhookSender, type WebhookEventInput } from '../../activities/webhooks.js';
import { createApp } from '../../api/app.js';
import { ChangeHub } from '../../api/events.js';
import { loadConfig } from '../../lib/config.js';
import { createMailer } from '../../lib/mailer.js';
import { PackageStore } from '../../lib/storage.js';
import { connectClient } from '../../temporal/client.js';
import { verifyWebhookSignature, webhookEventTypes } from '../../lib/webhook-signature.js';
import { startStack, type Agent, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';
import { realisticPackage } from '../fixtures/packages.js';

/** What the receiver saw: one entry per request, with the raw body as sent. */
interface Received { path: string; headers: IncomingHttpHeaders; body: string }

let stack: Stack;
let admin: Agent;
let ws: string;
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
const hits = new Map<string, number>();
/** The platform secret the stack runs with (the test mode default), to open sealed secrets like the worker does. */
const secretKey = loadConfig({ MPDP_MODE: 'test' }).secretKey;
const mailer = createMailer('smtp://127.0.0.1:9', 'test <t@example.test>');

/**
 * A real HTTP receiver: /ok/* answers 200, /flaky/* 500 the first time then 200, /redirect 302,
 * /slow after 2 s, /big a 10 KB body.
 */
function startReceiver(): Promise<void> {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const n = (hits.get(path) ?? 0) + 1;
      hits.set(path, n);
      if (path.startsWith('/flaky') && n === 1) return void res.writeHead(500, { 'content-type': 'text/plain' }).end('boom: database is down');
      if (path === '/redirect') return void res.writeHead(302, { location: `${receiverUrl}/ok/elsewhere` }).end();
      if (path === '/slow') return void setTimeout(() => res.writeHead(200).end('late'), 2000);
      if (path === '/big') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(10_000));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, path }));
    });
  });
  return new Promise((resolve) => receiver.listen(0, '127.0.0.1', () => {
    const a = receiver.address();
    receiverUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
    resolve();
  }));
}

const requestsTo = (path: string) => received.filter((r) => r.path === path);

function activities() {
  return createWebhookActivities({ sequelize: stack.sequelize, mailer, store: new PackageStore(stack.dataDir), publicUrl: stack.baseUrl, secretKey });
}

async function create(body: Record<string, unknown>, agent = admin, workspaceId = ws) {
  return agent.post(`/api/v1/workspaces/${workspaceId}/webhooks`, body);
}

/** A fresh workspace where the stack's Admin is Admin, so a test sees only its own endpoints. */
async function freshWorkspace(): Promise<string> {
  const id = uid('ws_wh_');
  await stack.sequelize.query(`INSERT INTO workspaces (id, name, code) VALUES (:id, 'Hooks', :code)`, { replacements: { id, code: id.toUpperCase() } });
  await stack.sequelize.query(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:id, :user, 'admin')`, { replacements: { id, user: stack.users.admin.id } });
  return id;
}

beforeAll(async () => {
  stack = await startStack();
  ws = stack.workspaceId;
  admin = await stack.agent('admin');
  await startReceiver();
});
afterAll(async () => {
  mailer.close();
  await new Promise((r) => receiver?.close(r));
  await stack?.stop();
});

describe('webhook endpoints', () => {
  it('refuses bad input with 4xx codes and stores nothing', async () => {
    const [reviewer, developer] = await Promise.all([stack.agent('reviewer'), stack.agent('developer')]);
    const cases: [Record<string, unknown>, number, string][] = [
      [{}, 400, 'validation_failed'],
      [{ url: '' }, 400, 'validation_failed'],
      [{ url: 'ftp://hooks.example.com/in' }, 400, 'webhook_url_invalid'],
      [{ url: 'not a url' }, 400, 'webhook_url_invalid'],
      [{ url: 'https://user:secret@hooks.example.com/in' }, 400, 'webhook_url_credentials'],
      [{ url: `https://hooks.example.com/${'a'.repeat(2100)}` }, 400, 'validation_failed'],
      [{ url: 'https://hooks.example.com/in', events: ['release.exploded'] }, 400, 'validation_failed'],
      [{ url: 'https://hooks.example.com/in', description: 'd'.repeat(501) }, 400, 'validation_failed'],
    ];
    for (const [body, status, code] of cases) {
      const res = await create(body);
      expect([JSON.stringify(body).slice(0, 80), res.status, res.body.error?.code]).toEqual([JSON.stringify(body).slice(0, 80), status, code]);
    }
    // Only Admins manage webhooks (and read them).
    for (const agent of [reviewer, developer]) {
      expect((await create({ url: 'https://hooks.example.com/in' }, agent)).status).toBe(403);
      expect((await agent.get(`/api/v1/workspaces/${ws}/webhooks`)).status).toBe(403);
    }

    // In production mode (no WEBHOOK_ALLOW_HTTP) plain http is refused: a second app over the same database and Temporal with that setting.
    const strict = loadConfig({ MPDP_MODE: 'test', DATABASE_URL: inject('databaseUrl'), TEMPORAL_ADDRESS: inject('temporalAddress'), WEBHOOK_ALLOW_HTTP: 'false' });
    expect(strict.webhookAllowHttp).toBe(false);
    const pool = new pg.Pool({ connectionString: strict.databaseUrl, max: 2 });
    const temporal = await connectClient(strict.temporal.address!, strict.temporal.namespace);
    const hub = new ChangeHub(strict.databaseUrl);
    await hub.start();
    try {
      const { app } = createApp({ config: strict, sequelize: stack.sequelize, pool, temporal, store: new PackageStore(stack.dataDir), hub });
      const res = await app.request(`/api/v1/workspaces/${ws}/webhooks`, {
        method: 'POST', body: JSON.stringify({ url: 'http://hooks.example.com/in' }),
        headers: { 'content-type': 'application/json', cookie: admin.cookie, 'x-csrf-token': admin.csrf },
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('webhook_url_insecure');
      // Endpoints inside the network are refused too where private addresses are not allowed.
      const { app: guarded } = createApp({ config: { ...strict, webhookAllowHttp: true, webhookAllowPrivate: false }, sequelize: stack.sequelize, pool, temporal, store: new PackageStore(stack.dataDir), hub });
      for (const url of ['http://127.0.0.1:9/in', 'https://169.254.169.254/latest/meta-data', 'https://[::1]/in', 'https://hooks.localhost/in', 'https://10.0.0.8/in']) {
        const r = await guarded.request(`/api/v1/workspaces/${ws}/webhooks`, {
          method: 'POST', body: JSON.stringify({ url }),
          headers: { 'content-type': 'application/json', cookie: admin.cookie, 'x-csrf-token': admin.csrf },
        });
        expect([url, r.status, ((await r.json()) as { error: { code: string } }).error.code]).toEqual([url, 400, 'webhook_url_private']);
      }
    } finally {
      await hub.close();
      await temporal.connection.close();
      await pool.end();
    }

    const [{ n }] = await stack.sequelize.query<{ n: number }>('SELECT count(*)::int AS n FROM webhooks WHERE workspace_id = :ws', { replacements: { ws }, type: QueryTypes.SELECT });
    expect(n).toBe(0);
    const [{ a }] = await stack.sequelize.query<{ a: number }>("SELECT count(*)::int AS a FROM audit_log WHERE workspace_id = :ws AND subject_type = 'webhook'", { replacements: { ws }, type: QueryTypes.SELECT });
    expect(a).toBe(0);
  });

  it('creates an endpoint, shows its secret once, keeps it sealed in the database, and pings it with a signature the receiver verifies', async () => {
    const res = await create({ url: `${receiverUrl}/ok/ping`, description: 'CI bot', events: ['release.released', 'review.approved', 'release.released'] });
    expect(res.status).toBe(201);
    const { webhook, secret } = res.body;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(webhook).toMatchObject({ url: `${receiverUrl}/ok/ping`, description: 'CI bot', events: ['release.released', 'review.approved'], active: true, lastStatus: null });
    expect(webhook.createdBy).toEqual({ id: stack.users.admin.id, name: stack.users.admin.name });

    // Never in clear: not in the row, not in any answer after creation.
    const [row] = await stack.sequelize.query<{ text: string; sealed: string }>('SELECT w::text AS text, secret_sealed AS sealed FROM webhooks w WHERE id = :id', { replacements: { id: webhook.id }, type: QueryTypes.SELECT });
    expect(row!.text).not.toContain(secret);
    expect(row!.text).not.toContain(secret.slice(6));
    expect(row!.sealed).toMatch(/^v1\./);
    const got = await admin.get(`/api/v1/workspaces/${ws}/webhooks/${webhook.id}`);
    const list = await admin.get(`/api/v1/workspaces/${ws}/webhooks`);
    expect(JSON.stringify(got.body)).not.toContain(secret);
    expect(JSON.stringify(list.body)).not.toContain(secret);
    expect(list.body.items.map((w: any) => w.id)).toEqual([webhook.id]);
    expect(list.body.eventTypes.map((e: any) => e.type)).toEqual([...webhookEventTypes]);

    // Ping: synchronous, through the same sender as the activity.
    const before = received.length;
    const ping = await admin.post(`/api/v1/workspaces/${ws}/webhooks/${webhook.id}/ping`);
    expect(ping.status).toBe(200);
    const d = ping.body.delivery;
    expect(d).toMatchObject({ webhookId: webhook.id, eventType: 'ping', status: 'delivered', attempts: 1, responseStatus: 200, error: null });
    expect(d.responseExcerpt).toBe(JSON.stringify({ ok: true, path: '/ok/ping' }));
    expect(d.durationMs).toBeGreaterThanOrEqual(0);
    expect(received.length).toBe(before + 1);
    const req = received.at(-1)!;
    expect(req.headers['x-mpdp-event']).toBe('ping');
    expect(req.headers['x-mpdp-delivery']).toBe(d.id);
    expect(req.headers['user-agent']).toBe('mpdp-webhooks/1');
    expect(req.headers['content-type']).toBe('application/json');
    expect(verifyWebhookSignature(secret, req.headers['x-mpdp-signature'] as string, req.body)).toMatchObject({ ok: true });
    expect(verifyWebhookSignature('whsec_wrong', req.headers['x-mpdp-signature'] as string, req.body)).toMatchObject({ ok: false, reason: 'bad_signature' });
    const body = JSON.parse(req.body);
    expect(body).toMatchObject({ type: 'ping', workspaceId: ws, data: { webhook: { id: webhook.id }, message: 'mpdp can reach this endpoint.' } });
    expect(body.id).toBe(d.eventId);

    // The log and the endpoint's last status.
    const log = await admin.get(`/api/v1/workspaces/${ws}/webhooks/${webhook.id}/deliveries`);
    expect(log.body.items.map((x: any) => [x.id, x.status, x.responseStatus])).toEqual([[d.id, 'delivered', 200]]);
    expect(log.body.items[0].payload).toEqual(body);
    expect((await admin.get(`/api/v1/workspaces/${ws}/webhooks/${webhook.id}`)).body).toMatchObject({ lastStatus: 'delivered' });
    const [deliveryText] = await stack.sequelize.query<{ text: string }>('SELECT string_agg(d::text, \'\') AS text FROM webhook_deliveries d WHERE webhook_id = :id', { replacements: { id: webhook.id }, type: QueryTypes.SELECT });
    expect(deliveryText!.text).not.toContain(secret);
  });

  it('delivers an event once per subscribed endpoint: a failing receiver makes the activity throw, the retry sends to it alone', async () => {
    const hooksWs = await freshWorkspace();
    const mk = async (path: string, extra: Record<string, unknown> = {}) => {
      const r = await create({ url: `${receiverUrl}${path}`, ...extra }, admin, hooksWs);
      expect(r.status).toBe(201);
      return { id: r.body.webhook.id as string, secret: r.body.secret as string, path };
    };
    const tag = uid();
    const all = await mk(`/ok/all-${tag}`);
    const flaky = await mk(`/flaky/${tag}`, { events: ['release.released'] });
    const other = await mk(`/ok/other-${tag}`, { events: ['review.approved'] });
    const off = await mk(`/ok/off-${tag}`, { active: false });
    const event: WebhookEventInput = {
      eventId: `release:ver_${tag}:7`, workspaceId: hooksWs, type: 'release.released', at: new Date().toISOString(),
      payload: { versionId: `ver_${tag}`, version: '1.2.0', miniProgramId: 'mp_x', status: 'released' },
    };

    // First run: the flaky endpoint answers 500, so the activity fails with a retryable error.
    const env = new MockActivityEnvironment({ attempt: 1 });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const first = await env.run(activities().deliverWebhooks, event).then(() => null, (e: unknown) => e);
    expect(first).toBeInstanceOf(ApplicationFailure);
    expect((first as ApplicationFailure).type).toBe('webhook_delivery_failed');
    expect((first as ApplicationFailure).nonRetryable).toBe(false);
    expect((first as ApplicationFailure).message).toContain(`/flaky/${tag}: The endpoint answered 500`);
    expect(beats).toHaveLength(2);
    expect([requestsTo(`/ok/all-${tag}`).length, requestsTo(`/flaky/${tag}`).length, requestsTo(`/ok/other-${tag}`).length, requestsTo(`/ok/off-${tag}`).length]).toEqual([1, 1, 0, 0]);

    const rows = async () => stack.sequelize.query<{ webhook_id: string; id: string; status: string; attempts: number; response_status: number; response_excerpt: string; error: string | null }>(
      'SELECT webhook_id, id, status, attempts, response_status, response_excerpt, error FROM webhook_deliveries WHERE event_id = :eventId ORDER BY webhook_id',
      { replacements: { eventId: event.eventId }, type: QueryTypes.SELECT },
    );
    const afterFirst = new Map((await rows()).map((r) => [r.webhook_id, r]));
    expect(afterFirst.size).toBe(2);
    expect(afterFirst.get(all.id)).toMatchObject({ status: 'delivered', attempts: 1, response_status: 200 });
    expect(afterFirst.get(flaky.id)).toMatchObject({ status: 'failed', attempts: 1, response_status: 500, response_excerpt: 'boom: database is down', error: 'The endpoint answered 500' });

    // Temporal's retry: only the failed endpoint gets it again, and this time it is delivered.
    const retry = await new MockActivityEnvironment({ attempt: 2 }).run(activities().deliverWebhooks, event);
    expect(retry).toEqual({ delivered: 1, failed: 0 });
    expect([requestsTo(`/ok/all-${tag}`).length, requestsTo(`/flaky/${tag}`).length]).toEqual([1, 2]);
    const afterRetry = new Map((await rows()).map((r) => [r.webhook_id, r]));
    expect(afterRetry.get(flaky.id)).toMatchObject({ status: 'delivered', attempts: 2, response_status: 200, error: null });
    expect(afterRetry.get(all.id)).toMatchObject({ status: 'delivered', attempts: 1 });

    // A late duplicate of the same event sends nothing.
    expect(await activities().deliverWebhooks(event)).toEqual({ delivered: 0, failed: 0 });
    expect(requestsTo(`/flaky/${tag}`).length + requestsTo(`/ok/all-${tag}`).length).toBe(3);

    // Each request was signed with its own endpoint's secret; both attempts carried the same delivery id.
    for (const [hook, path] of [[all, `/ok/all-${tag}`], [flaky, `/flaky/${tag}`]] as const) {
      for (const r of requestsTo(path)) {
        expect(verifyWebhookSignature(hook.secret, r.headers['x-mpdp-signature'] as string, r.body).ok).toBe(true);
        expect(JSON.parse(r.body)).toEqual({ id: event.eventId, type: event.type, workspaceId: hooksWs, createdAt: event.at, data: event.payload });
        expect(r.headers['x-mpdp-event']).toBe('release.released');
      }
    }
    expect(requestsTo(`/flaky/${tag}`).map((r) => r.headers['x-mpdp-delivery'])).toEqual([afterRetry.get(flaky.id)!.id, afterRetry.get(flaky.id)!.id]);
    expect(verifyWebhookSignature(all.secret, requestsTo(`/flaky/${tag}`)[0]!.headers['x-mpdp-signature'] as string, requestsTo(`/flaky/${tag}`)[0]!.body).ok).toBe(false);

    // The delivery log shows the attempts.
    const log = await admin.get(`/api/v1/workspaces/${hooksWs}/webhooks/${flaky.id}/deliveries`);
    expect(log.body.items).toHaveLength(1);
    expect(log.body.items[0]).toMatchObject({ eventId: event.eventId, eventType: 'release.released', status: 'delivered', attempts: 2, responseStatus: 200 });
    expect(log.body.items[0].deliveredAt).not.toBeNull();
    expect((await admin.get(`/api/v1/workspaces/${hooksWs}/webhooks/${other.id}/deliveries`)).body.items).toEqual([]);
    expect((await admin.get(`/api/v1/workspaces/${hooksWs}/webhooks/${off.id}/deliveries`)).body.items).toEqual([]);
    // Ids of another workspace are not found here.
    expect((await admin.get(`/api/v1/workspaces/${ws}/webhooks/${flaky.id}/deliveries`)).status).toBe(404);
    expect((await admin.post(`/api/v1/workspaces/${ws}/webhooks/${flaky.id}/ping`)).status).toBe(404);

    // An event of another workspace, or before an endpoint existed, reaches none of these.
    expect(await activities().deliverWebhooks({ ...event, eventId: `x:${tag}`, workspaceId: 'ws_nobody' })).toEqual({ delivered: 0, failed: 0 });
    expect(await activities().deliverWebhooks({ ...event, eventId: `old:${tag}`, at: '2020-01-01T00:00:00.000Z' })).toEqual({ delivered: 0, failed: 0 });
  });

  it('rotates the secret: both sign during the overlap, then the new one alone', async () => {
    const r = await create({ url: `${receiverUrl}/ok/rotate-${uid()}` });
    const { webhook, secret: oldSecret } = r.body;
    const rot = await admin.post(`/api/v1/workspaces/${ws}/webhooks/${webhook.id}/rotate-secret`);
    expect(rot.status).toBe(200);
    expect(rot.body.secret).toMatch(/^whsec_/);
    expect(rot.body.secret).not.toBe(oldSecret);
    expect(rot.body.webhook.secretRotatedAt).not.toBeNull();
    // Default overlap: 24 hours during which a receiver holding either secret verifies.
    expect(Date.parse(rot.body.webhook.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(23.9 * 3600_000);
    await admin.post(`/api/v1/workspaces/${ws}/webhooks/${webhook.id}/ping`);
    let req = received.at(-1)!;
    expect((req.headers['x-mpdp-signature'] as string).match(/v1=/g)).toHaveLength(2);
    expect(verifyWebhookSignature(rot.body.secret, req.headers['x-mpdp-signature'] as string, req.body).ok).toBe(true);
    expect(verifyWebhookSignature(oldSecret, req.headers['x-mpdp-signature'] as string, req.body).ok).toBe(true);

    // Bad overlap: refused, nothing changes (the same two secrets still sign).
    expect((await admin.post(`/api/v1/workspaces/${ws}/webhooks/${webhook.id}/rotate-secret`, { overlapHours: 500 })).body.error.code).toBe('validation_failed');
    // Rotating with no overlap: the previous secret (the second one) stops at once.
    const rot2 = await admin.post(`/api/v1/workspaces/${ws}/webhooks/${webhook.id}/rotate-secret`, { overlapHours: 0 });
    expect(rot2.status).toBe(200);
    expect(rot2.body.webhook.previousSecretExpiresAt).toBeNull();
    await admin.post(`/api/v1/workspaces/${ws}/webhooks/${webhook.id}/ping`);
    req = received.at(-1)!;
    expect(verifyWebhookSignature(rot2.body.secret, req.headers['x-mpdp-signature'] as string, req.body).ok).toBe(true);
    expect(verifyWebhookSignature(rot.body.secret, req.headers['x-mpdp-signature'] as string, req.body).ok).toBe(false);
    expect(verifyWebhookSignature(oldSecret, req.headers['x-mpdp-signature'] as string, req.body).ok).toBe(false);
    const [row] = await stack.sequelize.query<{ text: string }>('SELECT w::text AS text FROM webhooks w WHERE id = :id', { replacements: { id: webhook.id }, type: QueryTypes.SELECT });
    for (const s of [rot2.body.secret, rot.body.secret, oldSecret]) expect(row!.text).not.toContain(s);
  });

  it('updates, disables, redelivers, pages the log, and deletes', async () => {
    const hooksWs = await freshWorkspace();
    const sibling = await create({ url: `${receiverUrl}/ok/sibling-${uid()}`, active: false }, admin, hooksWs);
    const r = await create({ url: `${receiverUrl}/ok/manage-${uid()}` }, admin, hooksWs);
    const id = r.body.webhook.id as string;
    const base = `/api/v1/workspaces/${hooksWs}/webhooks/${id}`;

    // Updates: bad input changes nothing.
    expect((await admin.request('PATCH', base, {})).status).toBe(400);
    const bad = await admin.request('PATCH', base, { url: 'https://a:b@example.com/' });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'webhook_url_credentials']);
    const dup = await admin.request('PATCH', base, { url: sibling.body.webhook.url });
    expect([dup.status, dup.body.error.code]).toEqual([409, 'webhook_exists']);
    expect((await admin.get(base)).body.url).toBe(r.body.webhook.url);
    const up = await admin.request('PATCH', base, { description: 'Renamed', events: ['release.halted'] });
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ description: 'Renamed', events: ['release.halted'], url: r.body.webhook.url });

    // Five pings, paged two at a time: every delivery once, newest first.
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await admin.post(`${base}/ping`)).body.delivery.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await admin.get(`${base}/deliveries?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((x: any) => x.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    expect((await admin.get(`${base}/deliveries?cursor=garbage`)).body.error.code).toBe('invalid_cursor');

    // Redeliver: same delivery id, one more attempt.
    const again = await admin.post(`${base}/deliveries/${ids[0]}/redeliver`);
    expect(again.status).toBe(200);
    expect(again.body.delivery).toMatchObject({ id: ids[0], attempts: 2, status: 'delivered' });
    expect(received.at(-1)!.headers['x-mpdp-delivery']).toBe(ids[0]);
    expect((await admin.post(`${base}/deliveries/whd_nope/redeliver`)).status).toBe(404);

    // Disabled: no events, no redelivery; a ping still tests the endpoint.
    expect((await admin.request('PATCH', base, { active: false })).body.active).toBe(false);
    const refused = await admin.post(`${base}/deliveries/${ids[0]}/redeliver`);
    expect([refused.status, refused.body.error.code]).toEqual([409, 'webhook_disabled']);
    expect(await activities().deliverWebhooks({ eventId: `dis:${uid()}`, workspaceId: hooksWs, type: 'release.halted', at: new Date().toISOString(), payload: {} })).toEqual({ delivered: 0, failed: 0 });
    expect((await admin.get(`${base}/deliveries?limit=100`)).body.items).toHaveLength(5);

    // Audit trail of the changes.
    const audit = await stack.sequelize.query<{ action: string }>("SELECT action FROM audit_log WHERE subject_type = 'webhook' AND subject_id = :id ORDER BY id", { replacements: { id }, type: QueryTypes.SELECT });
    expect(audit.map((a) => a.action)).toEqual(['webhook_created', 'webhook_updated', 'webhook_updated']);

    // Delete: the endpoint and its log go; other workspaces' ids are not found.
    const del = await admin.request('DELETE', base);
    expect(del.status).toBe(200);
    expect((await admin.get(base)).status).toBe(404);
    const [{ n }] = await stack.sequelize.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_id = :id', { replacements: { id }, type: QueryTypes.SELECT });
    expect(n).toBe(0);
    expect((await admin.request('DELETE', base)).status).toBe(404);
  });

  it('records timeouts, refused connections, redirects and long answers as failures without following or storing too much', async () => {
    const sender = createWebhookSender({ sequelize: stack.sequelize, secretKey, timeoutMs: 300 });
    const outcome = async (url: string) => {
      const r = await create({ url });
      expect(r.status).toBe(201);
      const id = await sender.enqueue(r.body.webhook.id, { eventId: `t:${uid()}`, type: 'release.stuck', workspaceId: ws, at: new Date().toISOString(), payload: {} });
      return (await sender.attempt(id)).delivery;
    };
    const slow = await outcome(`${receiverUrl}/slow`);
    expect(slow).toMatchObject({ status: 'failed', response_status: null, error: 'No answer within 0.3 s' });
    expect(slow.duration_ms).toBeLessThan(1500);

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    expect((await outcome(`http://127.0.0.1:${port}/gone`)).error).toMatch(/^ECONNREFUSED/);

    // Where private addresses are refused, a public-looking name that resolves inside the network is
    // refused at delivery (DNS checked at every attempt), permanently, and nothing reaches the receiver.
    const guarded = createWebhookSender({ sequelize: stack.sequelize, secretKey, timeoutMs: 300, allowPrivate: false, resolve: async () => [{ address: '127.0.0.1' }] });
    const hit = requestsTo('/rebound').length;
    const rebound = await create({ url: `https://hooks.example.com/rebound` });
    const reboundId = await guarded.enqueue(rebound.body.webhook.id, { eventId: `t:${uid()}`, type: 'release.stuck', workspaceId: ws, at: new Date().toISOString(), payload: {} });
    const refused = await guarded.attempt(reboundId);
    expect(refused.permanent).toBe(true);
    expect(refused.delivery).toMatchObject({ status: 'failed', response_status: null });
    expect(refused.delivery.error).toMatch(/hooks\.example\.com resolves to 127\.0\.0\.1, a private or local address/);
    expect(requestsTo('/rebound').length).toBe(hit);

    const before = requestsTo('/ok/elsewhere').length;
    const redirect = await outcome(`${receiverUrl}/redirect`);
    expect(redirect).toMatchObject({ status: 'failed', response_status: 302 });
    expect(redirect.error).toContain('Redirect not followed');
    expect(requestsTo('/ok/elsewhere').length).toBe(before);

    const big = await outcome(`${receiverUrl}/big`);
    expect(big).toMatchObject({ status: 'delivered', response_status: 200 });
    expect(big.response_excerpt).toBe('x'.repeat(500));
  });

  it('answers a retried create with the same Idempotency-Key with the same endpoint and secret', async () => {
    const key = uid('idem-');
    const url = `${receiverUrl}/ok/idem-${uid()}`;
    const a = await admin.post(`/api/v1/workspaces/${ws}/webhooks`, { url }, { 'Idempotency-Key': key });
    const b = await admin.post(`/api/v1/workspaces/${ws}/webhooks`, { url }, { 'Idempotency-Key': key });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.body.webhook.id).toBe(a.body.webhook.id);
    expect(b.body.secret).toBe(a.body.secret);
    const c = await admin.post(`/api/v1/workspaces/${ws}/webhooks`, { url });
    expect([c.status, c.body.error.code]).toEqual([409, 'webhook_exists']);
  });

  it('receives the release pipeline\'s own events, signed, after the state they announce is readable', async () => {
    const workspaceId = await freshWorkspace();
    await stack.sequelize.query(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:ws, :dev, 'developer'), (:ws, :rev, 'reviewer')`, {
      replacements: { ws: workspaceId, dev: stack.users.developer.id, rev: stack.users.reviewer.id },
    });
    const path = `/ok/pipeline-${uid()}`;
    const created = await create({ url: `${receiverUrl}${path}`, events: ['review.requested', 'review.approved', 'release.rolling_out', 'release.released'] }, admin, workspaceId);
    expect(created.status).toBe(201);
    const [dev, rev] = await Promise.all([stack.agent('developer'), stack.agent('reviewer')]);
    const mp = await dev.post(`/api/v1/workspaces/${workspaceId}/mini-programs`, { name: 'Hooked Mall', category: 'shopping' });
    expect(mp.status).toBe(201);
    const mpUrl = `/api/v1/workspaces/${workspaceId}/mini-programs/${mp.body.id}`;
    const up = await dev.upload(`${mpUrl}/versions`, realisticPackage({ version: '1.0.0' }), '1.0.0');
    expect(up.status).toBe(201);
    const versionUrl = `${mpUrl}/versions/${up.body.id}`;
    expect((await dev.post(`${versionUrl}/submit`)).status).toBe(200);
    await expect.poll(() => requestsTo(path).length).toBe(1);
    expect((await rev.post(`${versionUrl}/approve`, {})).status).toBe(200);
    expect((await dev.post(`${versionUrl}/release`, { plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] })).status).toBe(200);
    await expect.poll(() => requestsTo(path).length).toBe(4);
    const events = requestsTo(path).map((r) => {
      expect(verifyWebhookSignature(created.body.secret, String(r.headers['x-mpdp-signature']), r.body, 300)).toMatchObject({ ok: true });
      return JSON.parse(r.body) as { type: string; data: { status: string; versionId: string } };
    });
    expect(events.map((e) => e.type)).toEqual(['review.requested', 'review.approved', 'release.rolling_out', 'release.released']);
    expect(events.every((e) => e.data.versionId === up.body.id)).toBe(true);
    // Sent after the projection: the read model already shows what the last event says.
    const version = await dev.get(versionUrl);
    expect(version.body.version.status).toBe('released');
  });
});

