import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import { signPreviewToken } from '../../lib/preview-token.js';
import { realisticMainPages, realisticPackage, realisticSubPackages } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/** Short enough to watch a link expire, long enough to open a fresh one on a busy machine. */
const previewTtlMs = 4000;

let stack: Stack;
let admin: Agent;
let dev: Agent;
let rev: Agent;
let ws: string;
let mpA: { id: string; name: string };
let mpB: { id: string; name: string };
let versionUrl: string;
const tag = uid();

/** An account that belongs to no workspace. */
async function outsider(name: string): Promise<{ id: string; email: string; agent: Agent }> {
  const id = `usr_o_${uid()}`;
  const email = `${name}-${uid()}@Outside.example.test`;
  await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)', { replacements: { id, email, name, hash: await hashPassword(testPassword) } });
  const agent = new Agent(stack.baseUrl);
  await agent.login(email);
  return { id, email, agent };
}

const anonymous = () => new Agent(stack.baseUrl);

function csvImport(agent: Agent, csv: string, miniProgramId?: string) {
  const form = new FormData();
  form.set('file', new Blob([csv], { type: 'text/csv' }), 'testers.csv');
  if (miniProgramId) form.set('miniProgramId', miniProgramId);
  return agent.request('POST', `/api/v1/workspaces/${ws}/testers/import`, form);
}

beforeAll(async () => {
  stack = await startStack({ env: { PREVIEW_TTL_MS: String(previewTtlMs) } });
  ws = stack.workspaceId;
  [admin, dev, rev] = await Promise.all([stack.agent('admin'), stack.agent('developer'), stack.agent('reviewer')]);
  const a = await dev.post(`/api/v1/workspaces/${ws}/mini-programs`, { name: `Tester Mall ${tag}`, category: 'shopping' });
  const b = await dev.post(`/api/v1/workspaces/${ws}/mini-programs`, { name: `Tester Foods ${tag}`, category: 'food' });
  expect([a.status, b.status]).toEqual([201, 201]);
  mpA = { id: a.body.id, name: a.body.name };
  mpB = { id: b.body.id, name: b.body.name };
  const up = await dev.upload(`/api/v1/workspaces/${ws}/mini-programs/${mpA.id}/versions`, realisticPackage({ version: '1.0.0' }), '1.0.0', 'Cart fixes for the spring sale');
  expect(up.status).toBe(201);
  versionUrl = `/api/v1/workspaces/${ws}/mini-programs/${mpA.id}/versions/${up.body.id}`;
});
afterAll(async () => stack?.stop());

describe('tester whitelist', () => {
  it('adds testers by email and by account id, with a report for each entry, and refuses what it cannot add', async () => {
    const o = await outsider('acct');
    const res = await admin.post(`/api/v1/workspaces/${ws}/testers`, {
      emails: [' Ann@Example.test ', 'not-an-email', 'ann@example.test', 'ben@example.test'],
      userIds: [o.id, 'usr_does_not_exist'],
    });
    expect(res.status).toBe(200);
    expect(res.body.rows.map((r: any) => [r.row, r.email, r.outcome, r.code])).toEqual([
      [1, 'ann@example.test', 'added', null],
      [2, 'not-an-email', 'refused', 'bad_email'],
      [3, 'ann@example.test', 'refused', 'duplicate_in_file'],
      [4, 'ben@example.test', 'added', null],
      [5, o.email.toLowerCase(), 'added', null],
      [6, 'usr_does_not_exist', 'refused', 'unknown_account'],
    ]);
    expect(res.body.summary).toMatchObject({ total: 6, added: 3, exists: 0, refused: 3 });

    // Again: already testers of the workspace; the same address for one mini program is a new entry.
    const again = await admin.post(`/api/v1/workspaces/${ws}/testers`, { emails: ['ann@example.test'] });
    expect(again.body.rows[0]).toMatchObject({ outcome: 'exists', reason: 'Already a tester of the workspace' });
    const narrowed = await dev.post(`/api/v1/workspaces/${ws}/testers`, { emails: ['ann@example.test'], miniProgramId: mpB.id });
    expect(narrowed.body.rows[0]).toMatchObject({ outcome: 'added', miniProgram: { id: mpB.id, name: mpB.name } });

    // The account is linked: by address for the one that exists.
    const list = await admin.get(`/api/v1/workspaces/${ws}/testers?q=${encodeURIComponent(o.email.toLowerCase())}`);
    expect(list.body.items).toEqual([expect.objectContaining({ email: o.email.toLowerCase(), user: { id: o.id, name: 'acct' }, miniProgram: null })]);

    const count = async () => (await stack.sequelize.query<{ n: number }>('SELECT count(*)::int AS n FROM testers WHERE workspace_id = :ws', { replacements: { ws }, type: QueryTypes.SELECT }))[0]!.n;
    const before = await count();
    const unknownMp = await admin.post(`/api/v1/workspaces/${ws}/testers`, { emails: ['cy@example.test'], miniProgramId: 'mp_elsewhere' });
    expect(unknownMp.status).toBe(400);
    expect(unknownMp.body.error.code).toBe('unknown_mini_program');
    const empty = await admin.post(`/api/v1/workspaces/${ws}/testers`, { emails: [] });
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe('validation_failed');
    const asReviewer = await rev.post(`/api/v1/workspaces/${ws}/testers`, { emails: ['cy@example.test'] });
    expect(asReviewer.status).toBe(403);
    const asOutsider = await o.agent.post(`/api/v1/workspaces/${ws}/testers`, { emails: ['cy@example.test'] });
    expect(asOutsider.status).toBe(404);
    expect(await count()).toBe(before);
  });

  it('links a tester to the account that signs up later with that address', async () => {
    const email = `later-${uid()}@example.test`;
    expect((await admin.post(`/api/v1/workspaces/${ws}/testers`, { emails: [email] })).body.summary.added).toBe(1);
    const id = `usr_l_${uid()}`;
    await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)', { replacements: { id, email: email.toUpperCase(), name: 'Late Comer', hash: 'x' } });
    const list = await rev.get(`/api/v1/workspaces/${ws}/testers?q=${encodeURIComponent(email)}`);
    expect(list.status).toBe(200);
    expect(list.body.items[0].user).toEqual({ id, name: 'Late Comer' });
  });

  it('removes a tester, with audit lines for the add and the remove', async () => {
    const add = await admin.post(`/api/v1/workspaces/${ws}/testers`, { emails: ['gone@example.test'], miniProgramId: mpA.id });
    const testerId = add.body.rows[0].testerId;
    expect(testerId).toMatch(/^tst_/);
    const asReviewer = await rev.request('DELETE', `/api/v1/workspaces/${ws}/testers/${testerId}`);
    expect(asReviewer.status).toBe(403);
    const del = await admin.request('DELETE', `/api/v1/workspaces/${ws}/testers/${testerId}`);
    expect(del.status).toBe(200);
    expect(del.body.removed).toEqual({ id: testerId, email: 'gone@example.test' });
    const again = await admin.request('DELETE', `/api/v1/workspaces/${ws}/testers/${testerId}`);
    expect(again.status).toBe(404);
    const audit = await stack.sequelize.query<{ action: string; actor_id: string; comment: string }>(
      `SELECT action, actor_id, comment FROM audit_log WHERE subject_type = 'tester' AND subject_id = :testerId ORDER BY id`,
      { replacements: { testerId }, type: QueryTypes.SELECT },
    );
    expect(audit).toEqual([
      { action: 'added', actor_id: stack.users.admin.id, comment: `gone@example.test (mini program ${mpA.name})` },
      { action: 'removed', actor_id: stack.users.admin.id, comment: `gone@example.test (mini program ${mpA.name})` },
    ]);
  });

  it('imports 1,000 CSV rows in one request with a per-row report of what was refused and why', async () => {
    const existing = 'ann@example.test';
    const lines = ['email,mini program'];
    const expectRefused = new Map<number, string>();
    for (let i = 0; i < 1000; i++) {
      const row = lines.length + 1;
      if (i % 100 === 7) {
        lines.push(`bad-address-${i}`);
        expectRefused.set(row, 'bad_email');
      } else if (i % 100 === 13) {
        lines.push(`qa${i}@bulk.example.test,No Such App`);
        expectRefused.set(row, 'unknown_mini_program');
      } else if (i % 100 === 21) {
        lines.push(lines[lines.length - 1]!);
        expectRefused.set(row, 'duplicate_in_file');
      } else if (i === 500) {
        lines.push(existing);
      } else if (i % 2) {
        lines.push(`QA${i}@Bulk.Example.test,"${mpA.name.toUpperCase()}"`);
      } else {
        lines.push(`qa${i}@bulk.example.test${i % 3 ? `,${mpB.id}` : ''}`);
      }
    }
    await admin.post(`/api/v1/workspaces/${ws}/testers`, { emails: [existing] });
    const started = performance.now();
    const res = await csvImport(admin, lines.join('\r\n'));
    const elapsed = performance.now() - started;
    console.log(`[testers] import of 1,000 CSV rows: ${elapsed.toFixed(0)} ms round trip, ${res.body.summary?.ms} ms in the handler`);
    expect(res.status).toBe(200);
    expect(res.body.rows).toHaveLength(1000);
    expect(res.body.summary).toMatchObject({ total: 1000, header: true, refused: 30, exists: 1, added: 969 });
    const refused = res.body.rows.filter((r: any) => r.outcome === 'refused');
    expect(new Map(refused.map((r: any) => [r.row, r.code]))).toEqual(expectRefused);
    for (const r of refused) expect(r.reason).toEqual(expect.any(String));
    expect(refused.find((r: any) => r.code === 'duplicate_in_file').reason).toMatch(/^Duplicate of row \d+$/);
    expect(res.body.rows.find((r: any) => r.row === 502)).toMatchObject({ email: existing, outcome: 'exists' });
    expect(res.body.rows.find((r: any) => r.row === 3)).toMatchObject({ email: 'qa1@bulk.example.test', outcome: 'added', miniProgram: { id: mpA.id, name: mpA.name } });

    // Listed: paging through the 969 new ones with a stable order, no repeats.
    const seen = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: any = await admin.get(`/api/v1/workspaces/${ws}/testers?q=bulk.example&limit=200${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.total).toBe(969);
      for (const t of page.body.items) seen.add(t.id);
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(5);
    expect(seen.size).toBe(969);
    const onlyB = await admin.get(`/api/v1/workspaces/${ws}/testers?scope=miniProgram&miniProgramId=${mpB.id}&q=bulk.example&limit=1`);
    expect(onlyB.body.items[0].miniProgram.id).toBe(mpB.id);
    const wholeWs = await admin.get(`/api/v1/workspaces/${ws}/testers?scope=workspace&q=bulk.example&limit=200`);
    expect(wholeWs.body.items.every((t: any) => t.miniProgram === null)).toBe(true);
    expect(onlyB.body.total + wholeWs.body.total + (await admin.get(`/api/v1/workspaces/${ws}/testers?scope=miniProgram&miniProgramId=${mpA.id}&q=bulk.example`)).body.total).toBe(969);

    const audit = await stack.sequelize.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log WHERE workspace_id = :ws AND subject_type = 'tester' AND comment LIKE '%@bulk.example.test%'`, { replacements: { ws }, type: QueryTypes.SELECT });
    expect(audit[0]!.n).toBe(969);
  });

  it('imports 5,000 rows in one request, listed in the file order', async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `big${String(i).padStart(4, '0')}@five.example.test${i % 2 ? `,${mpB.id}` : ''}`);
    const started = performance.now();
    const res = await csvImport(admin, lines.join('\n'));
    console.log(`[testers] import of 5,000 CSV rows: ${(performance.now() - started).toFixed(0)} ms round trip, ${res.body.summary?.ms} ms in the handler`);
    expect(res.status).toBe(200);
    expect(res.body.summary).toMatchObject({ total: 5000, added: 5000, refused: 0, header: false });
    const first = await admin.get(`/api/v1/workspaces/${ws}/testers?q=five.example&limit=3`);
    expect(first.body.total).toBe(5000);
    expect(first.body.items.map((t: any) => t.email)).toEqual(['big0000@five.example.test', 'big0001@five.example.test', 'big0002@five.example.test']);
  });

  it('takes a text/csv body without a header, with a default mini program; refuses broken files whole', async () => {
    const res = await admin.request('POST', `/api/v1/workspaces/${ws}/testers/import?miniProgramId=${mpB.id}`, undefined, {});
    expect(res.status).toBe(400);
    const send = (body: string, q = '') => fetch(`${stack.baseUrl}/api/v1/workspaces/${ws}/testers/import${q}`, {
      method: 'POST', headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf, 'content-type': 'text/csv' }, body,
    }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const ok = await send('plain1@example.test\nplain2@example.test,\n', `?miniProgramId=${mpB.id}`);
    expect(ok.status).toBe(200);
    expect(ok.body.summary).toMatchObject({ header: false, added: 2 });
    expect(ok.body.rows.map((r: any) => r.miniProgram?.id)).toEqual([mpB.id, mpB.id]);
    const unterminated = await send('a@example.test\n"b@example.test,x\n');
    expect(unterminated.status).toBe(400);
    expect(unterminated.body.error).toMatchObject({ code: 'csv_invalid', details: { line: 2 } });
    const empty = await send('\n\n');
    expect(empty.body.error.code).toBe('csv_empty');
    const tooMany = await send(Array.from({ length: 10_001 }, (_, i) => `x${i}@example.test`).join('\n'));
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error.code).toBe('csv_too_many_rows');
    const json = await admin.post(`/api/v1/workspaces/${ws}/testers/import`, { csv: 'a@example.test' });
    // Neither multipart nor CSV: refused before the handler, by the route's declared media types.
    expect(json.status).toBe(415);
  });
});

describe('preview links', () => {
  async function issue(agent: Agent = dev) {
    const res = await agent.post(`${versionUrl}/preview`);
    expect(res.status).toBe(201);
    return res.body as { url: string; path: string; token: string; expiresAt: string; qrPng: string; qrSvg: string };
  }

  it('issues a signed link that expires after PREVIEW_TTL_MS, and opens it for a member', async () => {
    const before = Date.now();
    const link = await issue(rev);
    expect(link.url).toMatch(/\/preview\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(link.expiresAt) - before).toBeGreaterThanOrEqual(previewTtlMs - 50);
    expect(Date.parse(link.expiresAt) - before).toBeLessThanOrEqual(previewTtlMs + 5000);
    const res = await dev.get(`/api/v1/preview/${link.token}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      access: 'member', workspace: { id: ws }, miniProgram: { id: mpA.id, name: mpA.name },
      version: { version: '1.0.0', notes: 'Cart fixes for the spring sale', status: 'uploaded' },
      package: { uploadedBy: { id: stack.users.developer.id, name: stack.users.developer.name } },
    });
    expect(res.body.package.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(res.body.package.size).toBe(realisticPackage({ version: '1.0.0' }).length);
    expect(res.body.manifest.pages).toEqual(realisticMainPages);
    expect(res.body.manifest.subPackages).toEqual(realisticSubPackages);
  });

  it('opens for a whitelisted tester who is not a member, and only for the right mini program', async () => {
    const t = await outsider('tess');
    const link = await issue();
    const refused = await t.agent.get(`/api/v1/preview/${link.token}`);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('not_a_tester');

    // A tester of another mini program of the workspace is still refused.
    await admin.post(`/api/v1/workspaces/${ws}/testers`, { emails: [t.email], miniProgramId: mpB.id });
    expect((await t.agent.get(`/api/v1/preview/${link.token}`)).status).toBe(403);

    await admin.post(`/api/v1/workspaces/${ws}/testers`, { emails: [t.email.toUpperCase()], miniProgramId: mpA.id });
    const opened = await t.agent.get(`/api/v1/preview/${link.token}`);
    expect(opened.status).toBe(200);
    expect(opened.body.access).toBe('tester');
    expect(opened.body.manifest.pages.length).toBe(realisticMainPages.length);

    // A workspace-wide tester opens it too; a stranger with the same link does not.
    const w = await outsider('wide');
    await admin.post(`/api/v1/workspaces/${ws}/testers`, { userIds: [w.id] });
    expect((await w.agent.get(`/api/v1/preview/${link.token}`)).body.access).toBe('tester');
    const stranger = await outsider('stranger');
    expect((await stranger.agent.get(`/api/v1/preview/${link.token}`)).status).toBe(403);
  });

  it('asks an anonymous caller to sign in', async () => {
    const link = await issue();
    const res = await anonymous().get(`/api/v1/preview/${link.token}`);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });

  it('refuses a tampered, a foreign and a malformed token with 400, and an expired one with 410', async () => {
    const link = await issue();
    const [payload, sig] = link.token.split('.') as [string, string];
    const [v, versionId, wsId, exp] = Buffer.from(payload, 'base64url').toString().split('.');
    const extended = `${Buffer.from(`${v}.${versionId}.${wsId}.${Number(exp) + 86_400_000}`).toString('base64url')}.${sig}`;
    const tampered = await dev.get(`/api/v1/preview/${extended}`);
    expect(tampered.status).toBe(400);
    expect(tampered.body.error.code).toBe('preview_token_invalid');
    const foreign = signPreviewToken({ versionId: versionId!, workspaceId: wsId!, expiresAt: Date.now() + 60_000 }, 'another-platforms-secret-key');
    expect((await dev.get(`/api/v1/preview/${foreign}`)).body.error.code).toBe('preview_token_invalid');
    const malformed = await dev.get('/api/v1/preview/hello');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('preview_token_malformed');
    expect((await dev.get(`/api/v1/preview/${extended}/qr.png`)).status).toBe(400);

    await eventually(() => Date.now() > Date.parse(link.expiresAt) + 10, { timeoutMs: previewTtlMs + 5000, intervalMs: 100 });
    const expired = await dev.get(`/api/v1/preview/${link.token}`);
    expect(expired.status).toBe(410);
    expect(expired.body.error).toMatchObject({ code: 'preview_expired', details: { expiredAt: link.expiresAt } });
    expect((await dev.get(`/api/v1/preview/${link.token}/qr.svg`)).status).toBe(410);
  });

  it('serves the QR code as a PNG that decodes and as an SVG', async () => {
    const link = await issue();
    const png = await fetch(stack.baseUrl + link.qrPng);
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await png.arrayBuffer());
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
    expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([360, 360]);
    expect(bytes.subarray(-8, -4).toString('latin1')).toBe('IEND');
    const svg = await fetch(stack.baseUrl + link.qrSvg);
    expect(svg.headers.get('content-type')).toBe('image/svg+xml');
    const text = await svg.text();
    expect(text).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]*viewBox="0 0 (\d+) \1"/);
    expect(text).toContain('<path');
  });

  it('refuses to issue a link for a version of another workspace or to a stranger', async () => {
    const bogus = await dev.post(`/api/v1/workspaces/${ws}/mini-programs/${mpB.id}/versions/${versionUrl.split('/').pop()}/preview`);
    expect(bogus.status).toBe(404);
    const t = await outsider('nolink');
    expect((await t.agent.post(`${versionUrl}/preview`)).status).toBe(404);
  });
});

describe('one mini program\'s testers', () => {
  it('lets an owner of that mini program alone manage its testers, and nothing else', async () => {
    const made = await admin.request('PUT', `/api/v1/workspaces/${ws}/mini-programs/${mpA.id}/roles/${stack.users.reviewer.id}`, { role: 'owner' });
    expect(made.status).toBe(200);
    const base = `/api/v1/workspaces/${ws}/mini-programs`;
    const email = `owner-added-${tag}@example.test`;
    const added = await rev.post(`${base}/${mpA.id}/testers`, { emails: [email] });
    expect(added.status).toBe(200);
    expect(added.body.summary.added).toBe(1);
    const id = added.body.rows[0].testerId as string;
    const [row] = await stack.sequelize.query<{ mini_program_id: string | null; added_by: string }>('SELECT mini_program_id, added_by FROM testers WHERE id = :id', { replacements: { id }, type: QueryTypes.SELECT });
    expect(row).toEqual({ mini_program_id: mpA.id, added_by: stack.users.reviewer.id });
    // Not the workspace's list, and not another mini program's.
    expect((await rev.post(`/api/v1/workspaces/${ws}/testers`, { emails: [`ws-${tag}@example.test`] })).status).toBe(403);
    expect((await rev.post(`${base}/${mpB.id}/testers`, { emails: [`b-${tag}@example.test`] })).status).toBe(403);
    const list = await rev.get(`${base}/${mpA.id}/testers?q=owner-added`);
    expect(list.body.items.map((t: { id: string }) => t.id)).toEqual([id]);
    // A whole-workspace tester cannot be removed through one mini program's list.
    const wsTester = await admin.post(`/api/v1/workspaces/${ws}/testers`, { emails: [`whole-${tag}@example.test`] });
    const wsTesterId = wsTester.body.rows[0].testerId as string;
    expect((await rev.request('DELETE', `${base}/${mpA.id}/testers/${wsTesterId}`)).status).toBe(404);
    expect((await rev.request('DELETE', `${base}/${mpA.id}/testers/${id}`)).status).toBe(200);
    const [{ n }] = await stack.sequelize.query<{ n: number }>('SELECT count(*)::int AS n FROM testers WHERE id IN (:ids)', { replacements: { ids: [id, wsTesterId] }, type: QueryTypes.SELECT });
    expect(n).toBe(1);
  });
});

