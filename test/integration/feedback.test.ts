import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { eventually } from '../helpers/eventually.js';
import { uid } from '../helpers/workflow-env.js';
import { solidPng } from '../fixtures/packages.js';

const maxBytes = 200_000;
let stack: Stack;
let admin: Agent;
let reviewer: Agent;
let developer: Agent;
let outsider: Agent;
let operator: Agent;
let ws: string;

async function extraUser(name: string, isOperator: boolean) {
  const id = uid('usr_fb_');
  const email = `${name}-${id}@example.test`;
  await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash, is_operator) VALUES (:id, :email, :name, :hash, :isOperator)', {
    replacements: { id, email, name, hash: await hashPassword(testPassword), isOperator },
  });
  const agent = new Agent(stack.baseUrl);
  await agent.login(email);
  return { id, email, agent };
}

function form(fields: Record<string, string | undefined>, shot?: { bytes: Buffer; name: string; type: string }) {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) f.set(k, v);
  if (shot) f.set('screenshot', new Blob([new Uint8Array(shot.bytes)], { type: shot.type }), shot.name);
  return f;
}

const send = (agent: Agent, fields: Record<string, string | undefined>, shot?: { bytes: Buffer; name: string; type: string }, workspaceId = ws) =>
  agent.post(`/api/v1/workspaces/${workspaceId}/feedback`, form(fields, shot));

const count = async () => (await stack.sequelize.query<{ n: number }>('SELECT count(*)::int AS n FROM feedback', { type: QueryTypes.SELECT }))[0]!.n;

/** A WebP (VP8L header only: the check reads headers, never pixels). */
function webpVp8l(width: number, height: number): Buffer {
  const d = Buffer.alloc(10);
  d[0] = 0x2f;
  d.writeUInt32LE(((width - 1) | ((height - 1) << 14)) >>> 0, 1);
  const body = Buffer.concat([Buffer.from('WEBPVP8L'), Buffer.from([10, 0, 0, 0]), d]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0, 'ascii');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** Fetches a binary route as the agent (the helper parses text). */
async function bytesOf(agent: Agent, url: string) {
  const res = await fetch(stack.baseUrl + url, { headers: { cookie: agent.cookie } });
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

beforeAll(async () => {
  stack = await startStack({ env: { FEEDBACK_MAX_BYTES: String(maxBytes) } });
  ws = stack.workspaceId;
  [admin, reviewer, developer] = await Promise.all([stack.agent('admin'), stack.agent('reviewer'), stack.agent('developer')]);
  outsider = (await extraUser('outsider', false)).agent;
  operator = (await extraUser('operator', true)).agent;
}, 120_000);
afterAll(async () => stack?.stop());

describe('sending feedback', () => {
  it('every member sends it, with or without a screenshot; others cannot; each sees only their own', async () => {
    const png = solidPng(640, 400, [40, 110, 220]);
    const sent = await send(developer, { category: 'bug', text: 'The version page spins forever after I upload 2.0.0.', page: '/w/ws_1/mini-programs/mp_1?tab=versions' }, { bytes: png, name: 'shot.png', type: 'image/png' });
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    expect(sent.body).toMatchObject({
      category: 'bug', status: 'new', page: '/w/ws_1/mini-programs/mp_1?tab=versions', replies: [],
      screenshot: { contentType: 'image/png', size: png.length, width: 640, height: 400 }, workspace: { id: ws },
    });
    expect((await send(admin, { category: 'idea', text: 'Let us pin mini programs to the top.' })).body).toMatchObject({ category: 'idea', screenshot: null, page: '' });
    expect((await send(reviewer, { category: 'question', text: 'How do I change the review SLA?', page: '/w/x/settings/release' })).status).toBe(201);
    // A JPEG-looking name on a WebP is fine: the content decides.
    const webp = webpVp8l(17, 9);
    const w = await send(reviewer, { category: 'other', text: 'WebP shot' }, { bytes: webp, name: 'shot.jpg', type: 'image/jpeg' });
    expect(w.status, JSON.stringify(w.body)).toBe(201);
    expect(w.body.screenshot.contentType).toBe('image/webp');

    for (const agent of [outsider, operator]) expect((await send(agent, { category: 'bug', text: 'not a member' })).status).toBe(404);
    // Anonymous: a form is refused before anything (415, anonymous writes are JSON only); JSON gets 401.
    expect((await send(new Agent(stack.baseUrl), { category: 'bug', text: 'anonymous' })).status).toBe(415);
    expect((await new Agent(stack.baseUrl).post(`/api/v1/workspaces/${ws}/feedback`, { category: 'bug', text: 'anonymous' })).status).toBe(401);

    const mine = await developer.get('/api/v1/me/feedback');
    expect(mine.body.items).toHaveLength(1);
    expect(mine.body.items[0].id).toBe(sent.body.id);
    expect((await reviewer.get('/api/v1/me/feedback')).body.items).toHaveLength(2);
    expect((await outsider.get('/api/v1/me/feedback')).body.items).toEqual([]);

    // The screenshot: its sender and operators; nobody else (404 for another member, 403 at the operators' route).
    const own = await bytesOf(developer, `/api/v1/me/feedback/${sent.body.id}/screenshot`);
    expect([own.status, own.type]).toEqual([200, 'image/png']);
    expect(own.body.equals(png)).toBe(true);
    expect((await bytesOf(admin, `/api/v1/me/feedback/${sent.body.id}/screenshot`)).status).toBe(404);
    const ops = await bytesOf(operator, `/api/v1/platform/feedback/${sent.body.id}/screenshot`);
    expect([ops.status, ops.body.equals(png)]).toEqual([200, true]);
    for (const agent of [admin, reviewer, developer]) expect((await bytesOf(agent, `/api/v1/platform/feedback/${sent.body.id}/screenshot`)).status).toBe(403);
  });

  it('bad input answers a code and stores nothing', async () => {
    const before = await count();
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    const cases: [Record<string, string | undefined>, { bytes: Buffer; name: string; type: string } | undefined, number, string][] = [
      [{ text: 'no category' }, undefined, 400, 'validation_failed'],
      [{ category: 'complaint', text: 'bad category' }, undefined, 400, 'validation_failed'],
      [{ category: 'bug', text: '   ' }, undefined, 400, 'validation_failed'],
      [{ category: 'bug', text: 'x'.repeat(5001) }, undefined, 400, 'validation_failed'],
      [{ category: 'bug', text: 'bad page', page: 'https://evil.example/' }, undefined, 400, 'validation_failed'],
      [{ category: 'bug', text: 'text renamed .png' }, { bytes: Buffer.from('hello, I am not a picture'), name: 'shot.png', type: 'image/png' }, 400, 'unsupported_image'],
      [{ category: 'bug', text: 'an SVG' }, { bytes: svg, name: 'shot.png', type: 'image/png' }, 400, 'image_type_not_allowed'],
      [{ category: 'bug', text: 'too wide' }, { bytes: solidPng(9000, 2, [1, 2, 3]), name: 'wide.png', type: 'image/png' }, 400, 'image_dimensions_too_large'],
      [{ category: 'bug', text: 'too big' }, { bytes: Buffer.concat([solidPng(4, 4, [1, 2, 3]), Buffer.alloc(maxBytes)]), name: 'big.png', type: 'image/png' }, 413, 'screenshot_too_large'],
      [{ category: 'bug', text: 'far too big' }, { bytes: Buffer.alloc(maxBytes * 3), name: 'huge.png', type: 'image/png' }, 413, 'screenshot_too_large'],
    ];
    for (const [fields, shot, status, code] of cases) {
      const res = await send(developer, fields, shot);
      expect([res.status, res.body?.error?.code], fields.text).toEqual([status, code]);
    }
    expect(await count()).toBe(before);
  });
});

describe('the operators\' inbox', () => {
  it('only operators read it, filter it, move statuses along and reply; the reply reaches the sender by mail', async () => {
    const fb = (await send(developer, { category: 'bug', text: 'Upload fails with a 502 when the package is 18 MB.', page: '/w/ws/mini-programs' })).body;
    for (const agent of [admin, reviewer, developer, outsider]) {
      expect((await agent.get('/api/v1/platform/feedback')).status).toBe(403);
      expect((await agent.get(`/api/v1/platform/feedback/${fb.id}`)).status).toBe(403);
      expect((await agent.request('PATCH', `/api/v1/platform/feedback/${fb.id}`, { status: 'done' })).status).toBe(403);
      expect((await agent.post(`/api/v1/platform/feedback/${fb.id}/replies`, { text: 'hi' })).status).toBe(403);
    }
    expect((await new Agent(stack.baseUrl).get('/api/v1/platform/feedback')).status).toBe(401);

    const inbox = await operator.get('/api/v1/platform/feedback');
    expect(inbox.status).toBe(200);
    expect(inbox.body.counts).toMatchObject({ all: 5, new: 5, in_progress: 0, done: 0 });
    expect(inbox.body.items[0]).toMatchObject({ id: fb.id, from: { id: stack.users.developer.id, email: stack.users.developer.email, name: 'Dan Developer' }, allowedStatuses: ['in_progress', 'done'] });
    expect((await operator.get('/api/v1/platform/feedback?category=idea')).body.items.map((i: { category: string }) => i.category)).toEqual(['idea']);
    expect((await operator.get('/api/v1/platform/feedback?q=502')).body.items.map((i: { id: string }) => i.id)).toEqual([fb.id]);
    const paged = await operator.get('/api/v1/platform/feedback?limit=2');
    expect(paged.body.items).toHaveLength(2);
    const next = await operator.get(`/api/v1/platform/feedback?limit=2&cursor=${paged.body.nextCursor}`);
    expect(next.body.items.map((i: { id: string }) => i.id)).not.toContain(paged.body.items[0].id);
    expect((await operator.get('/api/v1/platform/feedback?status=open')).status).toBe(400);
    expect((await operator.get('/api/v1/platform/feedback/fb_nope')).status).toBe(404);

    // Status: new → in progress → done → reopened; done → new is refused.
    expect((await operator.request('PATCH', `/api/v1/platform/feedback/${fb.id}`, { status: 'closed' })).status).toBe(400);
    const moved = await operator.request('PATCH', `/api/v1/platform/feedback/${fb.id}`, { status: 'in_progress' });
    expect(moved.body).toMatchObject({ status: 'in_progress', allowedStatuses: ['done', 'new'], statusChangedBy: { name: 'operator' } });
    expect((await operator.request('PATCH', `/api/v1/platform/feedback/${fb.id}`, { status: 'done' })).body.status).toBe('done');
    const refused = await operator.request('PATCH', `/api/v1/platform/feedback/${fb.id}`, { status: 'new' });
    expect([refused.status, refused.body.error.code, refused.body.error.details.status]).toEqual([409, 'wrong_state', 'done']);
    expect((await operator.request('PATCH', `/api/v1/platform/feedback/${fb.id}`, { status: 'in_progress' })).body.status).toBe('in_progress');
    expect((await operator.get('/api/v1/platform/feedback?status=in_progress')).body.counts).toMatchObject({ in_progress: 1, new: 4 });

    // Reply: empty is refused and stores nothing; a real one is mailed through the SMTP peer.
    const empty = await operator.post(`/api/v1/platform/feedback/${fb.id}/replies`, { text: '  ' });
    expect([empty.status, empty.body.error.code]).toEqual([400, 'validation_failed']);
    expect((await operator.post('/api/v1/platform/feedback/fb_nope/replies', { text: 'hello' })).status).toBe(404);
    const replied = await operator.post(`/api/v1/platform/feedback/${fb.id}/replies`, { text: 'Thanks Dan! Uploads above 16 MB hit the proxy limit.\n\nWe raised it to 50 MB today.' }, { 'idempotency-key': 'reply-1' });
    expect(replied.status).toBe(201);
    expect(replied.body.replies).toHaveLength(1);
    expect(replied.body.replies[0]).toMatchObject({ author: { name: 'operator' }, mailStatus: expect.stringMatching(/queued|sent/) });
    // The same Idempotency-Key: the same one reply.
    expect((await operator.post(`/api/v1/platform/feedback/${fb.id}/replies`, { text: 'again' }, { 'idempotency-key': 'reply-1' })).body.replies).toHaveLength(1);

    const [mail] = await stack.waitForMail({ to: stack.users.developer.email, subject: 'Re: your bug report to mpdp' });
    const body = mail!.raw.replace(/=\r?\n/g, '');
    expect(body).toContain('Uploads above 16 MB hit the proxy limit');
    expect(body).toContain('Upload fails with a 502');
    expect(body).toContain('/account/feedback');
    const sent = await eventually(async () => {
      const r = (await developer.get('/api/v1/me/feedback')).body.items.find((i: { id: string }) => i.id === fb.id);
      return r?.replies[0]?.mailStatus === 'sent' ? r : null;
    }, { what: 'the reply marked sent' });
    expect(sent.replies[0]).toMatchObject({ attempts: 1, lastError: null, sentAt: expect.any(String), text: expect.stringContaining('50 MB') });
    expect(stack.mails.filter((m) => m.to.includes(stack.users.developer.email) && m.subject.startsWith('Re:'))).toHaveLength(1);
    // A reply to new feedback moves it to in progress.
    const fresh = (await send(admin, { category: 'question', text: 'Where are the invoices?' })).body;
    expect((await operator.post(`/api/v1/platform/feedback/${fresh.id}/replies`, { text: 'Under Billing.' })).body.status).toBe('in_progress');
    await stack.waitForMail({ to: stack.users.admin.email, subject: 'Re: your question to mpdp' });
  });

  it('twenty pieces of feedback an hour per person, then 429 with Retry-After', async () => {
    const member = await extraUser('chatty', false);
    await stack.sequelize.query(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:ws, :user, 'developer')`, { replacements: { ws, user: member.id } });
    for (let i = 0; i < 20; i++) expect((await send(member.agent, { category: 'other', text: `note ${i}` })).status).toBe(201);
    const res = await send(member.agent, { category: 'other', text: 'one more' });
    expect([res.status, res.body.error.code]).toEqual([429, 'rate_limited']);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(3000);
  });
});
