import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  liarZipBomb, missingPagePackage, notAZip, pathEscapePackage, realisticPackage, versionMismatchPackage, zipBombPackage,
} from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, type Agent, type Stack } from '../helpers/stack.js';
import { seedUsers } from '../../db/seed.js';

let stack: Stack;
let dev: Agent;
let rev: Agent;
let admin: Agent;
let mpUrl: string;
let mpId: string;

function allFiles(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name));
  } catch {
    return [];
  }
}

beforeAll(async () => {
  stack = await startStack({ env: { MAX_PACKAGE_BYTES: String(2 * 1024 * 1024) } });
  [dev, rev, admin] = await Promise.all([stack.agent('developer'), stack.agent('reviewer'), stack.agent('admin')]);
  const res = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Harbour Mall', description: 'Shop demo', category: 'shopping', icon: '🛍' });
  expect(res.status).toBe(201);
  mpId = res.body.id;
  mpUrl = `/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mpId}`;
});
afterAll(async () => stack?.stop());

describe('accounts and permissions', () => {
  it('refuses a wrong password, a missing session and a write without the CSRF token', async () => {
    const bad = await fetch(`${stack.baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: stack.users.admin.email, password: 'nope' }) });
    expect(bad.status).toBe(401);
    expect((await bad.json()).error.code).toBe('invalid_credentials');
    const anon = await fetch(`${stack.baseUrl}/api/v1/me`);
    expect(anon.status).toBe(401);
    const noCsrf = await fetch(`${stack.baseUrl}/api/v1/workspaces/${stack.workspaceId}/mini-programs`, {
      method: 'POST', headers: { cookie: dev.cookie, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Sneaky' }),
    });
    expect(noCsrf.status).toBe(403);
    expect((await noCsrf.json()).error.code).toBe('csrf_failed');
  });

  it('GET /me lists the workspace and role; a foreign workspace answers 404', async () => {
    const me = await rev.get('/api/v1/me');
    expect(me.body.workspaces).toEqual([expect.objectContaining({ id: stack.workspaceId, role: 'reviewer' })]);
    const foreign = await rev.get('/api/v1/workspaces/ws_someone_else/mini-programs');
    expect(foreign.status).toBe(404);
  });

  it('lets only admins and developers create, and validates the body with per-field details', async () => {
    const asReviewer = await rev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Nope' });
    expect(asReviewer.status).toBe(403);
    const invalid = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'x', category: 'weapons' });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe('validation_failed');
    expect(Object.keys(invalid.body.error.details.fields)).toEqual(expect.arrayContaining(['name', 'category']));
    const dup = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'harbour mall' });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('name_taken');
  });

  it('lists with search and cursor paging in a stable order', async () => {
    for (const name of ['Paging Alpha', 'Paging Beta', 'Paging Gamma']) {
      expect((await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name })).status).toBe(201);
    }
    const first = await dev.get(`/api/v1/workspaces/${stack.workspaceId}/mini-programs?q=paging&limit=2`);
    expect(first.body.items.map((i: any) => i.name)).toEqual(['Paging Gamma', 'Paging Beta']);
    expect(first.body.nextCursor).toBeTruthy();
    const second = await dev.get(`/api/v1/workspaces/${stack.workspaceId}/mini-programs?q=paging&limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((i: any) => i.name)).toEqual(['Paging Alpha']);
    expect(second.body.nextCursor).toBeNull();
    const badCursor = await dev.get(`/api/v1/workspaces/${stack.workspaceId}/mini-programs?cursor=garbage`);
    expect(badCursor.status).toBe(400);
  });
});

describe('upload checks', () => {
  const cases: [string, () => Buffer, number, string][] = [
    ['not a zip', notAZip, 400, 'package_not_zip'],
    ['a path escaping the root', () => pathEscapePackage(), 400, 'package_path_escape'],
    ['a listed page missing', missingPagePackage, 400, 'package_page_missing'],
    ['a version inside that differs', () => versionMismatchPackage('0.9.0'), 400, 'package_version_mismatch'],
    ['a zip bomb', zipBombPackage, 413, 'package_entry_too_large'],
    ['a zip bomb that lies about its size', () => liarZipBomb(), 413, 'package_entry_too_large'],
    ['an upload over the size limit', () => randomBytes(3 * 1024 * 1024), 413, 'package_too_large'],
  ];
  it.each(cases)('refuses %s with the right status and code, and stores nothing', async (_name, make, status, code) => {
    const before = allFiles(stack.dataDir).length;
    const res = await dev.upload(`${mpUrl}/versions`, make(), '0.9.0');
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(allFiles(stack.dataDir).length).toBe(before);
    const [{ n }] = await stack.sequelize.query<{ n: string }>('SELECT count(*) AS n FROM versions WHERE mini_program_id = :mpId AND version = :v', { replacements: { mpId, v: '0.9.0' }, type: QueryTypes.SELECT });
    expect(Number(n)).toBe(0);
  });

  it('refuses a version that is not semver', async () => {
    const res = await dev.upload(`${mpUrl}/versions`, realisticPackage({ version: '1.0.0' }), 'one');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
  });
});

describe('upload → review → release through HTTP', () => {
  let versionUrl: string;

  it('uploads a realistic package and refuses the same version again with 409', async () => {
    const res = await dev.upload(`${mpUrl}/versions`, realisticPackage({ version: '1.0.0' }), '1.0.0', 'First release');
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ version: '1.0.0', status: 'uploaded', pageCount: 46, allowedActions: ['submit'] });
    versionUrl = `${mpUrl}/versions/${res.body.id}`;
    expect(allFiles(path.join(stack.dataDir, 'packages'))).toEqual([expect.stringContaining(res.body.packageSha256)]);
    const again = await dev.upload(`${mpUrl}/versions`, realisticPackage({ version: '1.0.0' }), '1.0.0');
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('version_exists');
    const asReviewer = await rev.upload(`${mpUrl}/versions`, realisticPackage({ version: '1.0.1' }), '1.0.1');
    expect(asReviewer.status).toBe(403);
  });

  it('submits, mails the reviewers over SMTP, and enforces who may decide', async () => {
    const submitted = await admin.post(`${versionUrl}/submit`);
    expect(submitted.status).toBe(200);
    expect(['validating', 'in_review']).toContain(submitted.body.version.status);
    const [mail] = await stack.waitForMail({ to: stack.users.reviewer.email, subject: 'Review requested' });
    expect(mail!.raw).toContain('Harbour Mall');
    // The admin submitted, so only the reviewer is mailed (the submitter never reviews themselves).
    expect(stack.mails.filter((m) => m.to.includes(stack.users.admin.email) && m.subject.includes('Review requested'))).toHaveLength(0);
    await eventually(async () => (await dev.get(versionUrl)).body.version.status === 'in_review', { what: 'in review' });

    const asDeveloper = await dev.post(`${versionUrl}/approve`);
    expect(asDeveloper.status).toBe(403);
    const ownSubmission = await admin.post(`${versionUrl}/approve`);
    expect(ownSubmission.status).toBe(403);
    expect(ownSubmission.body.error.code).toBe('forbidden_actor');
    const tooEarly = await dev.post(`${versionUrl}/release`);
    expect(tooEarly.status).toBe(409);
    expect(tooEarly.body.error.details).toEqual({ status: 'in_review' });
    const noComment = await rev.post(`${versionUrl}/reject`, { reasonCode: 'other' });
    expect(noComment.status).toBe(400);
    const noReason = await rev.post(`${versionUrl}/reject`, { comment: 'why not' });
    expect(noReason.status).toBe(400);
  });

  it('answers 404 to a command addressed through another workspace, even one the caller belongs to', async () => {
    await seedUsers(stack.sequelize, { workspaceId: `${stack.workspaceId}_other`, workspaceName: 'Other', code: `${stack.workspaceId}_O`.toUpperCase(), users: [{ ...stack.users.reviewer, role: 'reviewer' }], password: 'unused password' });
    const foreignPath = versionUrl.replace(`/workspaces/${stack.workspaceId}/`, `/workspaces/${stack.workspaceId}_other/`);
    const res = await rev.post(`${foreignPath}/approve`);
    expect(res.status).toBe(404);
    expect((await rev.get(foreignPath)).status).toBe(404);
    expect((await rev.get(versionUrl)).body.version.status).toBe('in_review');
  });

  it('approves (idempotently with the same key) and releases; the list shows it live at once', async () => {
    const key = { 'idempotency-key': 'approve-once' };
    const approved = await rev.post(`${versionUrl}/approve`, { comment: 'LGTM' }, key);
    expect(approved.status).toBe(200);
    expect(approved.body.version.status).toBe('approved');
    expect(approved.body.pipeline.waitingWords).toMatch(/^Approved by Rita Reviewer; waiting for .* to start the rollout/);
    const repeat = await rev.post(`${versionUrl}/approve`, { comment: 'LGTM' }, key);
    expect(repeat.status).toBe(200);
    expect(repeat.body.version.status).toBe('approved');
    // The audit trail is a projection: it follows the answer within moments.
    const audited = await eventually(async () => {
      const d = await rev.get(versionUrl);
      return d.body.audit.some((a: any) => a.action === 'approved') ? d : null;
    }, { what: 'the approval in the audit trail', timeoutMs: 5000 });
    const approveRows = audited.body.audit.filter((a: any) => a.action === 'approved');
    expect(approveRows).toHaveLength(1);
    expect(approveRows[0].actor.name).toBe('Rita Reviewer');

    // Release starts a rollout; one stage at 100% with no soak releases to everyone at once.
    const badPlan = await dev.post(`${versionUrl}/release`, { plan: [{ kind: 'percent', percent: 50, soakMs: 0 }] });
    expect(badPlan.status).toBe(400);
    expect(badPlan.body.error.code).toBe('invalid_plan');
    const released = await dev.post(`${versionUrl}/release`, { plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] });
    expect(released.status).toBe(200);
    expect(['rolling_out', 'released']).toContain(released.body.version.status);
    expect(released.body.pipeline.rollout.plan).toEqual([{ kind: 'percent', percent: 100, soakMs: 0 }]);
    const done = await eventually(async () => {
      const d = await dev.get(versionUrl);
      return d.body.version.status === 'released' && d.body.audit.length === 6 ? d.body : null;
    }, { what: 'released with six audit rows', timeoutMs: 15_000 });
    expect(done.version.allowedActions).toEqual([]);
    expect(done.audit.map((a: any) => a.action)).toEqual(['uploaded', 'submitted', 'review_requested', 'approved', 'rollout_started', 'released']);
    const list = await eventually(async () => {
      const l = await dev.get(`/api/v1/workspaces/${stack.workspaceId}/mini-programs?q=harbour`);
      return l.body.items[0]?.liveVersion === '1.0.0' ? l : null;
    }, { what: 'the list to show the live version', timeoutMs: 5000 });
    expect(list.body.items[0].status).toBe('released');
    const late = await rev.post(`${versionUrl}/approve`);
    expect(late.status).toBe(409);
    expect(late.body.error.details).toEqual({ status: 'released' });
    await stack.waitForMail({ to: stack.users.admin.email, subject: 'was approved' });
  });

  it('marks the previous version superseded when a newer one is released, and streams changes as SSE', async () => {
    const ctrl = new AbortController();
    const events: string[] = [];
    const sse = fetch(`${stack.baseUrl}/api/v1/workspaces/${stack.workspaceId}/events?miniProgramId=${mpId}`, { headers: { cookie: dev.cookie }, signal: ctrl.signal }).then(async (res) => {
      const reader = res.body!.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        events.push(new TextDecoder().decode(value));
      }
    }).catch(() => undefined);
    await eventually(() => events.join('').includes('event: ready'), { what: 'the stream to open' });

    const up = await dev.upload(`${mpUrl}/versions`, realisticPackage({ version: '1.1.0', style: 'wechat' }), '1.1.0');
    expect(up.status).toBe(201);
    const v2 = `${mpUrl}/versions/${up.body.id}`;
    expect((await dev.post(`${v2}/submit`)).status).toBe(200);
    await eventually(async () => (await dev.get(v2)).body.version.status === 'in_review', { what: 'v2 in review' });
    expect((await rev.post(`${v2}/approve`)).status).toBe(200);
    expect((await dev.post(`${v2}/release`, { plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] })).status).toBe(200);
    const detail = await eventually(async () => {
      const d = await dev.get(mpUrl);
      return d.body.versions.find((v: any) => v.version === '1.0.0')?.status === 'superseded' && d.body.miniProgram.liveVersion === '1.1.0' ? d : null;
    }, { what: '1.0.0 to be superseded', timeoutMs: 5000 });
    expect(detail.body.miniProgram.liveVersion).toBe('1.1.0');
    await eventually(() => events.join('').includes('"status":"released"'), { what: 'a change event for the release' });
    ctrl.abort();
    await sse;
    const [{ n }] = await stack.sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM audit_log WHERE subject_id = :id AND action = 'superseded'`, { replacements: { id: detail.body.versions.find((v: any) => v.version === '1.0.0').id }, type: QueryTypes.SELECT });
    expect(Number(n)).toBe(1);
  });

  it('publishes an OpenAPI document and a docs page', async () => {
    const doc = await dev.get('/api/v1/openapi.json');
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/workspaces/{workspaceId}/mini-programs/{miniProgramId}/versions/{versionId}/approve']));
    const page = await fetch(`${stack.baseUrl}/api/docs`);
    expect(await page.text()).toContain('openapi.json');
  });
});

describe('personal access tokens', () => {
  it('work as bearer tokens, are listed without their secret, and stop working once revoked', async () => {
    const created = await dev.post('/api/v1/me/tokens', { name: 'laptop CLI' });
    expect(created.status).toBe(201);
    const token = created.body.token as string;
    const bearer = { authorization: `Bearer ${token}` };
    const whoami = await fetch(`${stack.baseUrl}/api/v1/me`, { headers: bearer });
    expect((await whoami.json()).user.email).toBe(stack.users.developer.email);
    const [{ token_hash }] = await stack.sequelize.query<{ token_hash: string }>('SELECT token_hash FROM api_tokens WHERE id = :id', { replacements: { id: created.body.id }, type: QueryTypes.SELECT });
    expect(token_hash).not.toContain(token);
    const list = await dev.get('/api/v1/me/tokens');
    expect(JSON.stringify(list.body)).not.toContain(token);
    expect(list.body.items[0]).toMatchObject({ id: created.body.id, name: 'laptop CLI', revokedAt: null });
    expect((await dev.request('DELETE', `/api/v1/me/tokens/${created.body.id}`)).status).toBe(204);
    const after = await fetch(`${stack.baseUrl}/api/v1/me`, { headers: bearer });
    expect(after.status).toBe(401);
    expect((await after.json()).error.code).toBe('invalid_token');
    // A bad token does not break public routes.
    expect((await fetch(`${stack.baseUrl}/api/v1/health`, { headers: bearer })).status).toBe(200);
  });
});
