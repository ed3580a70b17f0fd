import { simpleParser } from 'mailparser';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createRuntimeActivities } from '../../activities/runtime.js';
import { applyCrashGroups, crashGroupId } from '../../lib/analytics/crash-groups.js';
import { fingerprintOf } from '../../lib/analytics/fingerprint.js';
import type { AnalyticsEvent, EventType } from '../../lib/analytics/types.js';
import { defaultHealth } from '../../workflows/contracts/release.js';
import { buildPackage, minimalPackageFiles } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { type Agent, startStack, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * Crash groups and crash rates through the real stack: events written by the API's ingest buffer
 * (grouping inside its flush), the crash routes over HTTP, the crash-rate numbers against the
 * rollout's own health check, and the alert mail for a new group in a version rolling out.
 */

let stack: Stack;
let dev: Agent;
let rev: Agent;
let admin: Agent;
let ws: string;
let pool: pg.Pool;

const enc = encodeURIComponent;
const hour = 3_600_000;

async function createMiniProgram(name: string): Promise<{ id: string; name: string }> {
  const res = await dev.post(`${ws}/mini-programs`, { name: `${name} ${uid()}`.slice(0, 60), category: 'tools' });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.id, name: res.body.name };
}

async function upload(mp: string, version: string): Promise<string> {
  const res = await dev.upload(`${ws}/mini-programs/${mp}/versions`, buildPackage(minimalPackageFiles({ version })), version);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  await eventually(async () => (await stack.sequelize.query('SELECT 1 FROM versions WHERE id = :id', { replacements: { id: res.body.id }, type: QueryTypes.SELECT })).length > 0, { what: `version ${version} row` });
  return res.body.id;
}

/** An event as collect builds it (validated, fingerprinted). */
function ev(o: { type: EventType; mp: string; versionId: string; user?: string; at?: number; message?: string; stack?: string | null; page?: string; hostAppId?: string | null }): AnalyticsEvent {
  const message = o.type === 'error' || o.type === 'crash' ? (o.message ?? 'Error: boom') : null;
  const stackText = o.type === 'error' || o.type === 'crash' ? (o.stack ?? null) : null;
  return {
    id: randomUUID(), type: o.type, at: o.at ?? Date.now(), workspaceId: stack.workspaceId, miniProgramId: o.mp, versionId: o.versionId, hostAppId: o.hostAppId ?? null,
    userId: o.user ?? 'u1', sessionId: `s-${o.user ?? 'u1'}`, page: o.page ?? 'pages/index/index', name: null, value: null,
    message, stack: stackText, fingerprint: message === null ? null : fingerprintOf(message, stackText), props: o.type === 'crash' ? '{"fatal":true}' : null,
  };
}

const cartStack = (line: number, port = 25014) => `TypeError: Cannot read property 'price' of undefined
    at Page.onLoad (http://127.0.0.1:${port}/appservice/pages/cart/index.js:${line}:5)
    at Page.<anonymous> (http://127.0.0.1:${port}/appservice/__dev__/WAService.js:2:1436771)`;
const payStack = `Error: Payment ord_8f3k2 declined
    at submitPayment (pages/pay/index.js:40:11)
    at Page.onTap (pages/pay/index.js:90:3)`;

beforeAll(async () => {
  stack = await startStack({ env: { STEP_ATTEMPTS: '3', HEALTH_CHECK_INTERVAL_MS: '200', ROLLOUT_SOAK_MS: '600000' } });
  ws = `/api/v1/workspaces/${stack.workspaceId}`;
  [dev, rev, admin] = await Promise.all([stack.agent('developer'), stack.agent('reviewer'), stack.agent('admin')]);
  pool = new pg.Pool({ connectionString: inject('databaseUrl'), max: 2 });
}, 180_000);
afterAll(async () => {
  await pool?.end();
  await stack?.stop();
});

describe('applyCrashGroups inside a flush transaction', () => {
  let mp: string;
  let v1: string;
  let v2: string;

  beforeAll(async () => {
    mp = (await createMiniProgram('Direct')).id;
    v1 = await upload(mp, '1.0.0');
    v2 = await upload(mp, '1.1.0');
  });

  async function inTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>, commit = true): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query(commit ? 'COMMIT' : 'ROLLBACK');
      return out;
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    } finally {
      client.release();
    }
  }

  it('aggregates per group: counts, users, kind, versions, hourly trend, newest samples; news for new groups only', async () => {
    const t0 = Date.now() - 3 * hour;
    const events = [
      ...Array.from({ length: 7 }, (_, i) => ev({ type: 'error', mp, versionId: v1, user: `u${i % 3}`, at: t0 + i * 60_000, message: "TypeError: Cannot read property 'price' of undefined", stack: cartStack(10 + i) })),
      ev({ type: 'crash', mp, versionId: v2, user: 'u9', at: t0 + 2 * hour, message: "TypeError: Cannot read property 'price' of undefined", stack: cartStack(99, 4000) }),
      ev({ type: 'error', mp, versionId: v1, user: 'u1', at: t0, message: 'Error: Payment ord_8f3k2 declined', stack: payStack }),
      ev({ type: 'launch', mp, versionId: v1 }),
    ];
    const news = await inTransaction((c) => applyCrashGroups(c, events));
    const cart = crashGroupId(mp, events[0]!.fingerprint!);
    const pay = crashGroupId(mp, events[8]!.fingerprint!);
    expect(news.map((n) => `${n.groupId}:${n.versionId}:${n.change}`).sort()).toEqual([`${cart}:${v1}:new`, `${cart}:${v2}:new`, `${pay}:${v1}:new`].sort());
    const { rows: [g] } = await pool.query('SELECT * FROM crash_groups WHERE id = $1', [cart]);
    expect(g).toMatchObject({ kind: 'crash', status: 'open', events: '8', users: '4', title: "TypeError: Cannot read property 'price' of undefined" });
    expect([...g.version_ids].sort()).toEqual([v1, v2].sort());
    expect(g.samples).toHaveLength(5);
    expect(g.samples[0].eventId).toBe(events[7]!.id); // the newest first
    expect(g.top_frames.map((f: { module: string }) => f.module)).toEqual(['pages/cart/index.js']);
    expect(new Date(g.first_seen).getTime()).toBe(t0);
    const { rows: hourly } = await pool.query('SELECT version_id, sum(events)::int AS n FROM crash_group_hourly WHERE group_id = $1 GROUP BY 1 ORDER BY 2 DESC', [cart]);
    expect(hourly).toEqual([{ version_id: v1, n: 7 }, { version_id: v2, n: 1 }]);
    const { rows: changes } = await pool.query('SELECT action, version_id FROM crash_group_changes WHERE group_id = $1', [cart]);
    expect(changes).toEqual([{ action: 'created', version_id: v1 }]);

    // A later flush: users already counted stay counted once; no news for a known group; samples stay 5, newest first.
    const later = [ev({ type: 'error', mp, versionId: v1, user: 'u0', at: t0 + 3 * hour - 1000, message: "TypeError: Cannot read property 'price' of undefined", stack: cartStack(12) }),
      ev({ type: 'error', mp, versionId: v1, user: 'u42', at: t0 + 10_000, message: "TypeError: Cannot read property 'price' of undefined", stack: cartStack(12) })];
    expect(await inTransaction((c) => applyCrashGroups(c, later))).toEqual([]);
    const { rows: [g2] } = await pool.query('SELECT events, users, samples, last_seen, first_seen FROM crash_groups WHERE id = $1', [cart]);
    expect(g2).toMatchObject({ events: '10', users: '5' });
    expect(g2.samples.map((s: { eventId: string }) => s.eventId).slice(0, 2)).toEqual([later[0]!.id, events[7]!.id]);
    expect(new Date(g2.last_seen).getTime()).toBe(later[0]!.at);
    const { rows: [{ n }] } = await pool.query('SELECT count(*)::int AS n FROM crash_group_users WHERE group_id = $1', [cart]);
    expect(n).toBe(5);
  });

  it('events of a mini program deleted meanwhile are skipped, the others grouped', async () => {
    const gone = ev({ type: 'error', mp: 'mp_deleted_meanwhile', versionId: v1, message: 'Error: orphan' });
    const kept = ev({ type: 'error', mp, versionId: v1, message: `Error: kept ${uid()}x` });
    const news = await inTransaction((c) => applyCrashGroups(c, [gone, kept]));
    expect(news.map((n) => n.groupId)).toEqual([crashGroupId(mp, kept.fingerprint!)]);
    expect((await pool.query('SELECT 1 FROM crash_groups WHERE mini_program_id = $1', ['mp_deleted_meanwhile'])).rows).toHaveLength(0);
  });

  it('text PostgreSQL refuses in jsonb (NUL, a lone surrogate) is mended, never a failed flush', async () => {
    const odd = ev({ type: 'crash', mp, versionId: v1, message: `Error: bad \u0000 byte \uD83D ${uid()}x`, stack: '    at f (pages/odd/index.js:1:1)\u0000\uDE00' });
    const news = await inTransaction((c) => applyCrashGroups(c, [odd]));
    expect(news).toHaveLength(1);
    const { rows: [g] } = await pool.query('SELECT title, samples FROM crash_groups WHERE id = $1', [news[0]!.groupId]);
    expect(g.title).toContain('bad \uFFFD byte \uFFFD');
    expect(g.samples[0].stack).toBe('    at f (pages/odd/index.js:1:1)\uFFFD\uFFFD');
  });

  it('a rolled-back flush leaves nothing behind', async () => {
    const e = ev({ type: 'error', mp, versionId: v1, message: `Error: only in a rollback ${uid()}x`, stack: null });
    await inTransaction((c) => applyCrashGroups(c, [e]), false);
    const { rows } = await pool.query('SELECT 1 FROM crash_groups WHERE mini_program_id = $1 AND fingerprint = $2', [mp, e.fingerprint]);
    expect(rows).toHaveLength(0);
  });

  it('concurrent flushes of the same groups neither deadlock nor lose counts', async () => {
    const msgs = ['Error: alpha', 'Error: beta', 'Error: gamma'].map((m) => `${m} ${uid()}x`);
    const batch = (reverse: boolean) => (reverse ? [...msgs].reverse() : msgs).flatMap((m) => [ev({ type: 'error', mp, versionId: v1, message: m, user: randomUUID() })]);
    await Promise.all(Array.from({ length: 6 }, (_, i) => inTransaction((c) => applyCrashGroups(c, batch(i % 2 === 1)))));
    const { rows } = await pool.query('SELECT events::int, users::int FROM crash_groups WHERE mini_program_id = $1 AND fingerprint = ANY($2)', [mp, msgs.map((m) => fingerprintOf(m, null))]);
    expect(rows).toEqual([{ events: 6, users: 6 }, { events: 6, users: 6 }, { events: 6, users: 6 }]);
  });
});

describe('crash groups through ingest and the API', () => {
  let mp: { id: string; name: string };
  let v1: string;
  let v2: string;
  let v3: string;
  let cartGroup: string;

  beforeAll(async () => {
    mp = await createMiniProgram('Crashy');
    [v1, v2, v3] = [await upload(mp.id, '1.0.0'), await upload(mp.id, '1.1.0'), await upload(mp.id, '1.2.0')];
    const t0 = Date.now() - 30 * 60_000;
    const events = [
      // one error hitting many records and users across builds → one group
      ...Array.from({ length: 12 }, (_, i) => ev({ type: 'error', mp: mp.id, versionId: i < 8 ? v1 : v2, user: `user-${i % 5}`, at: t0 + i * 1000, message: "TypeError: Cannot read property 'price' of undefined", stack: cartStack(10 + i, 20000 + i) })),
      // a payment error with ids in the message → one group
      ...Array.from({ length: 3 }, (_, i) => ev({ type: 'crash', mp: mp.id, versionId: v1, user: `user-${i}`, at: t0 + i * 1000, message: `Error: Payment ord_${i}a${i}b declined`, stack: payStack })),
      // a different error in the same page → another group
      ev({ type: 'error', mp: mp.id, versionId: v2, user: 'user-7', at: t0, message: 'RangeError: Invalid array length', stack: cartStack(10) }),
      ev({ type: 'launch', mp: mp.id, versionId: v1 }),
    ];
    const result = await stack.ingest.acceptAndWait(events);
    expect(result.written).toBe(events.length);
    cartGroup = crashGroupId(mp.id, events[0]!.fingerprint!);
  });

  const list = (who: Agent, query = '') => who.get(`${ws}/crash-groups?miniProgramId=${enc(mp.id)}${query}`);

  it('lists the groups with counts, users, versions and a trend', async () => {
    const res = await list(dev, '&sort=events');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.groups.map((g: any) => [g.title, g.kind, g.events, g.users])).toEqual([
      ["TypeError: Cannot read property 'price' of undefined", 'error', 12, 5],
      ['Error: Payment ord_0a0b declined', 'crash', 3, 3],
      ['RangeError: Invalid array length', 'error', 1, 1],
    ]);
    const cart = res.body.groups[0];
    expect(cart).toMatchObject({ id: cartGroup, miniProgramId: mp.id, miniProgramName: mp.name, status: 'open', resolvedAt: null, resolvedBy: null });
    expect(cart.versions).toEqual([{ id: v2, version: '1.1.0' }, { id: v1, version: '1.0.0' }]);
    expect(cart.trend).toHaveLength(14);
    expect(cart.trend.reduce((a: number, b: number) => a + b, 0)).toBe(12);
    expect(res.body.nextCursor).toBeNull();
  });

  it('filters by version, kind and words, pages with a cursor, and refuses foreign ids', async () => {
    expect((await list(dev, `&versionId=${v2}`)).body.groups.map((g: any) => g.title).sort()).toEqual(["TypeError: Cannot read property 'price' of undefined", 'RangeError: Invalid array length'].sort());
    expect((await list(dev, '&kind=crash')).body.groups.map((g: any) => g.events)).toEqual([3]);
    expect((await list(dev, '&q=array%20length')).body.groups).toHaveLength(1);
    const p1 = await list(dev, '&sort=users&limit=2');
    expect(p1.body.groups.map((g: any) => g.users)).toEqual([5, 3]);
    const p2 = await list(dev, `&sort=users&limit=2&cursor=${enc(p1.body.nextCursor)}`);
    expect(p2.body.groups.map((g: any) => g.users)).toEqual([1]);
    expect(p2.body.nextCursor).toBeNull();
    const t1 = await list(dev, '&limit=1');
    const t2 = await list(dev, `&limit=1&cursor=${enc(t1.body.nextCursor)}`);
    expect(t2.body.groups[0].id).not.toBe(t1.body.groups[0].id);
    expect((await list(dev, `&sort=events&cursor=${enc(p1.body.nextCursor)}`)).body.error.code).toBe('invalid_cursor');
    expect((await dev.get(`${ws}/crash-groups?miniProgramId=mp_nope`)).status).toBe(404);
    expect((await dev.get(`${ws}/crash-groups?versionId=ver_nope`)).status).toBe(404);
    expect((await dev.get(`${ws}/crash-groups?status=maybe`)).body.error.code).toBe('validation_failed');
  });

  it('shows a group: top frames, samples with stacks, hourly trend, per version, history', async () => {
    const res = await dev.get(`${ws}/crash-groups/${cartGroup}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const { group, samples, hourly, byVersion, changes } = res.body;
    expect(group.topFrames).toEqual([expect.objectContaining({ fn: 'Page.onLoad', module: 'pages/cart/index.js' })]);
    expect(group.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    expect(samples).toHaveLength(5);
    expect(samples[0]).toMatchObject({ versionId: v2, version: '1.1.0', userId: 'user-1', page: 'pages/index/index', stack: expect.stringContaining('pages/cart/index.js:21:5') });
    expect(hourly).toHaveLength(7 * 24);
    expect(hourly.reduce((a: number, h: any) => a + h.events, 0)).toBe(12);
    expect(byVersion).toEqual([{ versionId: v2, version: '1.1.0', events: 4 }, { versionId: v1, version: '1.0.0', events: 8 }]);
    expect(changes).toEqual([expect.objectContaining({ action: 'created', actor: null, versionId: v1, version: '1.0.0' })]);
    expect((await dev.get(`${ws}/crash-groups/cg_nope`)).status).toBe(404);
  });

  it('drills down to the raw events, newest first, in pages', async () => {
    const p1 = await dev.get(`${ws}/crash-groups/${cartGroup}/events?limit=5`);
    expect(p1.status, JSON.stringify(p1.body)).toBe(200);
    expect(p1.body.events).toHaveLength(5);
    expect(p1.body.events[0]).toMatchObject({ type: 'error', versionId: v2, version: '1.1.0', userId: 'user-1', message: "TypeError: Cannot read property 'price' of undefined" });
    const all = [...p1.body.events];
    let cursor = p1.body.nextCursor;
    while (cursor) {
      const p = await dev.get(`${ws}/crash-groups/${cartGroup}/events?limit=5&cursor=${enc(cursor)}`);
      all.push(...p.body.events);
      cursor = p.body.nextCursor;
    }
    expect(all).toHaveLength(12);
    expect(new Set(all.map((e) => e.eventId)).size).toBe(12);
    const times = all.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('per role: members read; reviewers may not resolve; another workspace sees nothing', async () => {
    expect((await list(rev)).status).toBe(200);
    const refused = await rev.post(`${ws}/crash-groups/${cartGroup}/resolve`, { comment: 'not mine' });
    expect(refused.status).toBe(403);
    const { rows: [g] } = await pool.query('SELECT status FROM crash_groups WHERE id = $1', [cartGroup]);
    expect(g.status).toBe('open');
    const other = await startOtherWorkspaceAgent();
    expect((await other.get(`${ws}/crash-groups`)).status).toBe(404);
    expect((await other.get(`${ws}/crash-groups/${cartGroup}`)).status).toBe(404);
  });

  it('resolves and reopens with comments; the same move twice is a 409 and changes nothing', async () => {
    const resolved = await dev.post(`${ws}/crash-groups/${cartGroup}/resolve`, { comment: 'fixed the price lookup' });
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    expect(resolved.body).toMatchObject({ id: cartGroup, status: 'resolved', resolvedBy: { id: stack.users.developer.id, name: stack.users.developer.name } });
    const again = await admin.post(`${ws}/crash-groups/${cartGroup}/resolve`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('wrong_state');
    expect((await list(dev)).body.groups.map((g: any) => g.id)).not.toContain(cartGroup); // open by default
    expect((await list(dev, '&status=resolved')).body.groups.map((g: any) => g.id)).toEqual([cartGroup]);
    const reopened = await admin.post(`${ws}/crash-groups/${cartGroup}/reopen`, { comment: 'still seen in QA' });
    expect(reopened.body).toMatchObject({ status: 'open', resolvedAt: null });
    expect((await admin.post(`${ws}/crash-groups/${cartGroup}/reopen`)).status).toBe(409);
    const { body } = await dev.get(`${ws}/crash-groups/${cartGroup}`);
    expect(body.changes.map((ch: any) => [ch.action, ch.actor?.id ?? null, ch.comment])).toEqual([
      ['reopened', stack.users.admin.id, 'still seen in QA'],
      ['resolved', stack.users.developer.id, 'fixed the price lookup'],
      ['created', null, null],
    ]);
    expect(body.changes[1].version).toBe('1.1.0'); // resolved as of the newest version that had it
    const tooLong = await dev.post(`${ws}/crash-groups/${cartGroup}/resolve`, { comment: 'x'.repeat(1001) });
    expect(tooLong.status).toBe(400);
    expect((await pool.query('SELECT status FROM crash_groups WHERE id = $1', [cartGroup])).rows[0].status).toBe('open');
  });

  it('a resolved group stays resolved for old versions and reopens by itself in a newer one', async () => {
    expect((await dev.post(`${ws}/crash-groups/${cartGroup}/resolve`, { comment: 'fixed in 1.2.0' })).status).toBe(200);
    const msg = "TypeError: Cannot read property 'price' of undefined";
    await stack.ingest.acceptAndWait([ev({ type: 'error', mp: mp.id, versionId: v1, user: 'late-user', message: msg, stack: cartStack(10) })]);
    let g = (await dev.get(`${ws}/crash-groups/${cartGroup}`)).body.group;
    expect(g).toMatchObject({ status: 'resolved', events: 13 });
    await stack.ingest.acceptAndWait([ev({ type: 'error', mp: mp.id, versionId: v3, user: 'new-user', message: msg, stack: cartStack(11) })]);
    const detail = (await dev.get(`${ws}/crash-groups/${cartGroup}`)).body;
    g = detail.group;
    expect(g).toMatchObject({ status: 'open', events: 14, resolvedAt: null, reopenedAt: expect.any(String) });
    expect(detail.changes[0]).toMatchObject({ action: 'reopened', actor: null, versionId: v3, version: '1.2.0', comment: 'Seen again in version 1.2.0 (resolved in 1.1.0)' });
  });

  it('duplicates from a client retry count once', async () => {
    const e = ev({ type: 'error', mp: mp.id, versionId: v1, user: 'dup', message: 'RangeError: Invalid array length', stack: cartStack(10) });
    await stack.ingest.acceptAndWait([e]);
    await stack.ingest.acceptAndWait([{ ...e }]);
    const g = (await list(dev, '&q=array%20length')).body.groups[0];
    expect(g).toMatchObject({ events: 2, users: 2 });
  });

  async function startOtherWorkspaceAgent() {
    // A user of another workspace (seeded by its own stack helper call is too heavy: a plain user with no membership here).
    const { seedUsers } = await import('../../db/seed.js');
    const tag = uid();
    await seedUsers(stack.sequelize, { workspaceId: uid('ws_'), workspaceName: `Other ${tag}`, code: tag.toUpperCase(), users: [{ id: `usr_o_${tag}`, email: `other-${tag}@example.test`, name: 'Otto Other', role: 'admin' }], password: 'correct horse battery' });
    const { Agent } = await import('../helpers/stack.js');
    const a = new Agent(stack.baseUrl);
    await a.login(`other-${tag}@example.test`);
    return a;
  }
});

describe('crash rates and alerts for a version rolling out', () => {
  let mp: { id: string; name: string };
  let live: string;
  let rolling: string;
  let pipelineId: string;

  async function pipelineOf(id: string) {
    const res = await dev.get(`${ws}/pipelines/${enc(id)}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.pipeline;
  }
  async function waitFor(id: string, ok: (p: any) => boolean, what: string) {
    return eventually(async () => {
      const p = await pipelineOf(id);
      return ok(p) ? p : null;
    }, { what: `${id} ${what}`, timeoutMs: 60_000, intervalMs: 150 });
  }
  async function approved(version: string) {
    const versionId = await upload(mp.id, version);
    const submitted = await dev.post(`${ws}/mini-programs/${mp.id}/versions/${versionId}/submit`, {}, { 'Idempotency-Key': uid() });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
    const id = `release:${versionId}`;
    await waitFor(id, (p) => p.status === 'in_review', 'in review');
    const ok = await rev.post(`${ws}/pipelines/${enc(id)}/approve`, { comment: 'fine' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    await stack.waitForMail({ to: stack.users.developer.email, subject: `${mp.name} ${version} was approved` });
    return { versionId, id };
  }

  beforeAll(async () => {
    mp = await createMiniProgram('Rolling');
    const first = await approved('1.0.0');
    expect((await dev.post(`${ws}/pipelines/${enc(first.id)}/release`, { plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] })).status).toBe(200);
    await waitFor(first.id, (p) => p.status === 'released', 'released');
    live = first.versionId;
    const second = await approved('1.1.0');
    rolling = second.versionId;
    pipelineId = second.id;
    const started = await dev.post(`${ws}/pipelines/${enc(pipelineId)}/release`, { plan: [{ kind: 'percent', percent: 10, soakMs: 600_000 }, { kind: 'percent', percent: 100, soakMs: 0 }] });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    await waitFor(pipelineId, (p) => p.status === 'rolling_out' && !!p.rollout?.stageStartedAt, 'rolling out');
  }, 240_000);

  it('crash rate per version against live, and for the rolling-out version exactly what checkRolloutHealth returns', async () => {
    const now = Date.now();
    const launches = (versionId: string, n: number) => Array.from({ length: n }, (_, i) => ev({ type: 'launch', mp: mp.id, versionId, user: `l${i}`, at: now - 1000 }));
    const crashes = (versionId: string, n: number) => Array.from({ length: n }, (_, i) => ev({ type: 'crash', mp: mp.id, versionId, user: `c${i}`, at: now - 1000, message: 'Error: native bridge lost', stack: null }));
    await stack.ingest.acceptAndWait([...launches(live, 400), ...crashes(live, 2), ...launches(rolling, 250), ...crashes(rolling, 1)]);

    const res = await dev.get(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp.id}/crash-rates`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.live).toEqual({ versionId: live, version: '1.0.0' });
    const [r, l] = res.body.versions;
    expect(l).toMatchObject({ versionId: live, version: '1.0.0', launches: 400, crashes: 2, crashRate: 2 / 400, liveCrashRate: 2 / 400, ratio: 1, healthCheck: null });
    expect(r).toMatchObject({ versionId: rolling, version: '1.1.0', status: 'rolling_out', launches: 250, crashes: 1, crashRate: 1 / 250, liveCrashRate: 2 / 400, ratio: (1 / 250) / (2 / 400) });

    // The rollout's own activity over the same version and instant.
    const p = await pipelineOf(pipelineId);
    const config = { release: { health: defaultHealth } }; // the stack's (default) limits
    const { checkRolloutHealth } = createRuntimeActivities({ sequelize: stack.sequelize } as never);
    const report = await checkRolloutHealth({ miniProgramId: mp.id, versionId: rolling, baselineVersionId: live, since: p.rollout.stageStartedAt, thresholds: config.release.health });
    expect(r.healthCheck).toEqual({
      since: p.rollout.stageStartedAt, launches: report.launches, crashes: report.crashes, rate: report.crashRate, liveLaunches: report.liveLaunches,
      liveCrashes: report.liveCrashes, liveRate: report.liveCrashRate, verdict: report.verdict, reason: report.reason, thresholds: config.release.health,
    });
    expect(report).toMatchObject({ launches: 250, crashes: 1, liveLaunches: 400, liveCrashes: 2, verdict: 'green' });

    const bad = await dev.get(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp.id}/crash-rates?from=2026-03-02&to=2026-03-01`);
    expect(bad.body.error.code).toBe('invalid_range');
    expect((await dev.get(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp.id}/crash-rates?from=2020-01-01&to=2026-03-01`)).body.error.code).toBe('range_too_long');
    expect((await dev.get(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/mp_nope/crash-rates`)).status).toBe(404);
  });

  it('a new group in the rolling-out version mails the members once (a member who muted crash alerts gets none); a live-only group mails nobody', async () => {
    const muted = await rev.request('PUT', '/api/v1/me/notification-preferences', { workspaceId: stack.workspaceId, preferences: { crashes: false } });
    expect(muted.status, JSON.stringify(muted.body)).toBe(200);
    const liveOnly = ev({ type: 'error', mp: mp.id, versionId: live, message: `Error: old trouble ${uid()}x`, stack: null });
    await stack.ingest.acceptAndWait([liveOnly]);
    const message = "TypeError: Cannot read property 'coupon' of null";
    // errors, not crashes: the rollout's health check (every 200 ms here) must not halt it meanwhile
    const fresh = [1, 2, 3].map((i) => ev({ type: 'error', mp: mp.id, versionId: rolling, user: `r${i}`, message, stack: cartStack(30 + i) }));
    await stack.ingest.acceptAndWait(fresh.slice(0, 1));
    await stack.ingest.acceptAndWait(fresh.slice(1)); // a second flush of the same group: no second alert
    const subject = `New error in ${mp.name} 1.1.0`;
    const [toDev] = await stack.waitForMail({ to: stack.users.developer.email, subject });
    await stack.waitForMail({ to: stack.users.admin.email, subject });
    const text = (await simpleParser(toDev!.raw)).text ?? '';
    expect(text).toContain(message);
    expect(text).toContain('pages/cart/index.js');
    expect(text).toContain(`/w/${stack.workspaceId}/analytics/crashes/${crashGroupId(mp.id, fresh[0]!.fingerprint!)}`);
    const groupId = crashGroupId(mp.id, fresh[0]!.fingerprint!);
    await eventually(async () => {
      const rows = await stack.sequelize.query<{ status: string; recipient: string }>(`SELECT status, recipient FROM mail_log WHERE dedupe_key LIKE :k`, { replacements: { k: `crash-alert:${groupId}:${rolling}:%` }, type: QueryTypes.SELECT });
      return rows.length === 3 ? rows : null;
    }, { what: 'three mail_log rows' });
    const rows = await stack.sequelize.query<{ status: string; recipient: string }>(`SELECT status, recipient FROM mail_log WHERE dedupe_key LIKE :k ORDER BY recipient`, { replacements: { k: `crash-alert:${groupId}:${rolling}:%` }, type: QueryTypes.SELECT });
    expect(Object.fromEntries(rows.map((r) => [r.recipient, r.status]))).toEqual({
      [stack.users.admin.email]: 'sent', [stack.users.developer.email]: 'sent', [stack.users.reviewer.email]: 'suppressed',
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(stack.mails.filter((m) => m.subject.startsWith(subject))).toHaveLength(2);
    expect(stack.mails.filter((m) => m.subject.includes('old trouble'))).toHaveLength(0);
  });
});
