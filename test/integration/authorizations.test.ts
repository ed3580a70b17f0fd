import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../api/passwords.js';
import { newId } from '../../lib/ids.js';
import { buildPackage, minimalPackageFiles } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * Developer (ISV) workspaces and their authorizations on a merchant's mini programs, through HTTP
 * against the real stack: the request, the merchant's (narrowing) approval, the ISV acting within
 * exactly the grant (sessions and bearer tokens alike), the revocation that refuses the very next
 * request and withdraws what is in review while leaving approved releases, and the report.
 */

let stack: Stack;
let ws: string;
let merchantCode: string;
let merchantAdmin: Agent;
let merchantDev: Agent;
let reviewer: Agent;
const enc = encodeURIComponent;
const pkg = (version: string) => buildPackage(minimalPackageFiles({ version }));

async function user(name: string) {
  const id = uid('usr_isv_');
  const email = `${name}-${id}@example.test`;
  await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)', { replacements: { id, email, name, hash: await hashPassword(testPassword) } });
  const agent = new Agent(stack.baseUrl);
  await agent.login(email);
  return { id, email, agent };
}

async function miniProgram(name: string) {
  const res = await merchantDev.post(`${ws}/mini-programs`, { name: `${name} ${uid()}`.slice(0, 60), category: 'tools' });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

const count = async (sql: string, replacements: Record<string, unknown> = {}) =>
  Number((await stack.sequelize.query<{ n: string }>(sql, { replacements, type: QueryTypes.SELECT }))[0]!.n);

async function pipelineStatus(agent: Agent, id: string) {
  const res = await agent.get(`${ws}/pipelines/${enc(id)}`);
  return res.status === 200 ? (res.body.pipeline.status as string) : null;
}

beforeAll(async () => {
  stack = await startStack();
  ws = `/api/v1/workspaces/${stack.workspaceId}`;
  [merchantAdmin, merchantDev, reviewer] = await Promise.all([stack.agent('admin'), stack.agent('developer'), stack.agent('reviewer')]);
  merchantCode = (await stack.sequelize.query<{ code: string }>('SELECT code FROM workspaces WHERE id = :id', { replacements: { id: stack.workspaceId }, type: QueryTypes.SELECT }))[0]!.code;
}, 120_000);
afterAll(async () => stack?.stop());

describe('developer workspaces', () => {
  it('lets any signed-in user create one, as its Developer Admin; bad input changes nothing', async () => {
    const someone = await user('founder');
    const res = await someone.agent.post('/api/v1/developer-workspaces', { name: 'Acme Apps' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ name: 'Acme Apps', type: 'developer', role: 'admin' });
    expect(res.body.code).toMatch(/^DEV-[A-Z0-9]{8}$/);
    const me = await someone.agent.get('/api/v1/me');
    expect(me.body.workspaces.map((w: { id: string }) => w.id)).toContain(res.body.id);
    const before = await count(`SELECT count(*) AS n FROM workspaces WHERE type = 'developer'`);
    expect((await someone.agent.post('/api/v1/developer-workspaces', { name: '' })).status).toBe(400);
    expect((await new Agent(stack.baseUrl).post('/api/v1/developer-workspaces', { name: 'Anon' })).status).toBe(401);
    expect(await count(`SELECT count(*) AS n FROM workspaces WHERE type = 'developer'`)).toBe(before);
    // Its members are Developer Admins and Developers: nobody is invited to review there.
    const invites = `/api/v1/workspaces/${res.body.id}/invitations`;
    const reviewer = await someone.agent.post(invites, { emails: ['rev@acme.example.test'], role: 'reviewer' });
    expect([reviewer.status, reviewer.body.error?.code]).toEqual([400, 'role_not_in_developer_workspace']);
    expect(await count(`SELECT count(*) AS n FROM invitations WHERE workspace_id = :ws`, { ws: res.body.id })).toBe(0);
    expect((await someone.agent.post(invites, { emails: ['dev@acme.example.test'], role: 'developer' })).status).toBe(200);
  });
});

describe('access through grants (authorization rows written directly)', () => {
  let isv: Awaited<ReturnType<typeof user>>;
  let devWs: string;
  let granted: string;
  let other: string;

  /** An authorization row as the workflow's projection writes it. */
  async function grant(o: { status?: string; mps: string[]; scope: string[]; endsAt?: Date | null }) {
    const id = newId('auth');
    await stack.sequelize.query(
      `INSERT INTO authorizations (id, developer_workspace_id, merchant_workspace_id, status, requested_mini_program_ids, requested_scope, mini_program_ids, scope, ends_at,
         requested_by, requested_at, decided_at, updated_at, seq)
       VALUES (:id, :devWs, :merchant, :status, ARRAY[:mps]::text[], ARRAY[:scope]::text[], ARRAY[:mps]::text[], ARRAY[:scope]::text[], :endsAt, :by, now(), now(), now(), 1)`,
      { replacements: { id, devWs, merchant: stack.workspaceId, status: o.status ?? 'active', mps: o.mps, scope: o.scope, endsAt: o.endsAt ?? null, by: isv.id } },
    );
    return id;
  }
  const setStatus = (id: string, status: string, endsAt: Date | null = null) =>
    stack.sequelize.query('UPDATE authorizations SET status = :status, ends_at = :endsAt, updated_at = now() WHERE id = :id', { replacements: { id, status, endsAt } });

  beforeAll(async () => {
    isv = await user('isv-direct');
    devWs = (await isv.agent.post('/api/v1/developer-workspaces', { name: 'Direct ISV' })).body.id;
    [granted, other] = await Promise.all([miniProgram('Granted'), miniProgram('Not granted')]);
  });

  it('grants exactly the granted mini program and scope, for sessions and bearer tokens, and refuses the next request once the grant is not active', async () => {
    const mpUrl = `${ws}/mini-programs/${granted}`;
    expect((await isv.agent.get(mpUrl)).status).toBe(404); // nothing yet: the workspace does not exist for them
    const id = await grant({ mps: [granted], scope: ['view', 'upload'] });

    const token = (await isv.agent.post('/api/v1/me/tokens', { name: 'ci' })).body.token as string;
    const bearer = (url: string) => fetch(stack.baseUrl + url, { headers: { authorization: `Bearer ${token}` } });

    const seen = await isv.agent.get(mpUrl);
    expect(seen.status, JSON.stringify(seen.body)).toBe(200);
    expect((await bearer(mpUrl)).status).toBe(200);
    const uploaded = await isv.agent.upload(`${mpUrl}/versions`, pkg('1.0.0'), '1.0.0');
    expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(201);
    expect(uploaded.body.createdBy.id).toBe(isv.id);
    // Outside the scope: no submit.
    const submit = await isv.agent.post(`${mpUrl}/versions/${uploaded.body.id}/submit`, {});
    expect(submit.status).toBe(403);
    expect(submit.body.error.code).toBe('forbidden');
    // Outside the grant: another mini program, the workspace's own routes.
    expect((await isv.agent.get(`${ws}/mini-programs/${other}`)).status).toBe(404);
    expect((await isv.agent.get(`${ws}/mini-programs`)).status).toBe(404);
    expect((await isv.agent.get(`${ws}/members`)).status).toBe(404);
    // Never what the scopes leave out, even on the granted mini program: taking it offline, rolling back.
    const offline = await isv.agent.post(`${mpUrl}/offline`, { reason: 'no' });
    expect(offline.status).toBe(403);
    expect(offline.body.error.code).toBe('forbidden');
    expect((await isv.agent.post(`${mpUrl}/rollback`, {})).status).toBe(403);

    const mine = await isv.agent.get('/api/v1/me/authorized-mini-programs');
    expect(mine.status).toBe(200);
    expect(mine.body.items).toEqual([expect.objectContaining({ miniProgram: expect.objectContaining({ id: granted }), scope: ['view', 'upload'], merchantWorkspace: expect.objectContaining({ id: stack.workspaceId }) })]);

    // Revocation's first step: the status leaves 'active'; the very next request is refused.
    await setStatus(id, 'revoking');
    const refused = await isv.agent.get(mpUrl);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('authorization_ended');
    const refusedToken = await bearer(mpUrl);
    expect(refusedToken.status).toBe(403);
    expect((await isv.agent.get('/api/v1/me/authorized-mini-programs')).body.items).toEqual([]);

    // An active grant past its end date counts for nothing either.
    await setStatus(id, 'active', new Date(Date.now() - 1000));
    expect((await isv.agent.get(mpUrl)).status).toBe(403);
    await setStatus(id, 'active', new Date(Date.now() + 3600_000));
    expect((await isv.agent.get(mpUrl)).status).toBe(200);

    // A member of the developer workspace who is blocked there holds nothing.
    await stack.sequelize.query(`UPDATE memberships SET status = 'blocked' WHERE workspace_id = :devWs AND user_id = :id`, { replacements: { devWs, id: isv.id } });
    expect((await isv.agent.get(mpUrl)).status).toBe(404);
    await stack.sequelize.query(`UPDATE memberships SET status = 'active' WHERE workspace_id = :devWs AND user_id = :id`, { replacements: { devWs, id: isv.id } });
    await setStatus(id, 'revoked');

    // Members of the merchant are untouched by any of this.
    expect((await merchantDev.get(mpUrl)).status).toBe(200);
  });

  it('with the testers scope, manages the testers of the granted mini program only; never the people or the workspace list', async () => {
    const id = await grant({ mps: [granted], scope: ['view', 'testers'] });
    const base = `${ws}/mini-programs`;
    const email = `isv-tester-${newId('t')}@example.test`;
    const added = await isv.agent.post(`${base}/${granted}/testers`, { emails: [email] });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    expect(added.body.summary.added).toBe(1);
    expect((await isv.agent.get(`${base}/${granted}/testers`)).body.items.map((t: { email: string }) => t.email)).toContain(email);
    expect((await isv.agent.post(`${base}/${other}/testers`, { emails: [email] })).status).toBe(404);
    expect((await isv.agent.post(`${ws}/testers`, { emails: [email] })).status).toBe(404);
    // The mini program's own people are not shown to an outside developer.
    expect((await isv.agent.get(`${base}/${granted}/roles`)).status).toBe(403);
    expect((await isv.agent.get(`${base}/${granted}`)).body.miniProgramRoles).toEqual([]);
    await setStatus(id, 'revoked');
    expect((await isv.agent.get(`${base}/${granted}/testers`)).status).toBe(403);
  });

  it('records each preview link with its creator, and refuses a revoked link with 410', async () => {
    const v = await merchantDev.upload(`${ws}/mini-programs/${other}/versions`, pkg('1.0.0'), '1.0.0');
    expect(v.status).toBe(201);
    const link = await merchantDev.post(`${ws}/mini-programs/${other}/versions/${v.body.id}/preview`);
    expect(link.status).toBe(201);
    const [row] = await stack.sequelize.query<{ id: string; created_by: string; version_id: string }>(
      'SELECT id, created_by, version_id FROM preview_links WHERE mini_program_id = :mp', { replacements: { mp: other }, type: QueryTypes.SELECT },
    );
    expect(row).toMatchObject({ created_by: stack.users.developer.id, version_id: v.body.id });
    expect((await merchantAdmin.get(`/api/v1/preview/${link.body.token}`)).status).toBe(200);
    await stack.sequelize.query('UPDATE preview_links SET revoked_at = now() WHERE id = :id', { replacements: { id: row!.id } });
    const gone = await merchantAdmin.get(`/api/v1/preview/${link.body.token}`);
    expect(gone.status).toBe(410);
    expect(gone.body.error.code).toBe('preview_link_revoked');
  });
});

describe('request, approve, act, revoke (with the workflow)', () => {
  let isvAdmin: Awaited<ReturnType<typeof user>>;
  let isvDev: Awaited<ReturnType<typeof user>>;
  let devWs: string;
  let devUrl: string;
  let mpA: string; // the ISV's submission in review: withdrawn on revoke
  let mpB: string; // requested, not granted
  let mpC: string; // the ISV's submission the merchant approved: left running
  let mpD: string; // the merchant's own approved release: untouched
  let authId: string;
  let isvInReview: string;
  let isvApproved: string;
  let merchantApproved: string;
  let isvLink: string;

  beforeAll(async () => {
    isvAdmin = await user('isv-admin');
    isvDev = await user('isv-dev');
    devWs = (await isvAdmin.agent.post('/api/v1/developer-workspaces', { name: 'Blue Fox Studio' })).body.id;
    devUrl = `/api/v1/workspaces/${devWs}`;
    await stack.sequelize.query(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:devWs, :id, 'developer')`, { replacements: { devWs, id: isvDev.id } });
    [mpA, mpB, mpC, mpD] = await Promise.all([miniProgram('Alpha'), miniProgram('Beta'), miniProgram('Gamma'), miniProgram('Delta')]);
  });

  it('refuses bad requests with a code and records nothing', async () => {
    const before = await count('SELECT count(*) AS n FROM authorizations');
    const body = { merchantCode, miniProgramIds: [mpA], scope: ['view'] };
    const cases: [Agent, string, unknown, number, string][] = [
      [isvAdmin.agent, devUrl, { ...body, merchantCode: 'NO-SUCH-CODE' }, 404, 'merchant_not_found'],
      [isvAdmin.agent, devUrl, { ...body, miniProgramIds: [mpA, 'mp_elsewhere'] }, 400, 'unknown_mini_program'],
      [isvAdmin.agent, devUrl, { ...body, miniProgramIds: [] }, 400, 'validation_failed'],
      [isvAdmin.agent, devUrl, { ...body, miniProgramIds: Array.from({ length: 51 }, (_, i) => `mp_${i}`) }, 400, 'validation_failed'],
      [isvAdmin.agent, devUrl, { ...body, scope: [] }, 400, 'validation_failed'],
      [isvAdmin.agent, devUrl, { ...body, scope: ['approve'] }, 400, 'validation_failed'],
      [isvAdmin.agent, devUrl, { ...body, endsAt: new Date(Date.now() - 60_000).toISOString() }, 400, 'endsAt_in_past'],
      [isvDev.agent, devUrl, body, 403, 'forbidden'], // a Developer, not the Developer Admin
      [merchantAdmin, ws, body, 403, 'not_a_developer_workspace'],
    ];
    for (const [agent, url, b, status, code] of cases) {
      const res = await agent.post(`${url}/authorizations`, b);
      expect(res.status, `${code}: ${JSON.stringify(res.body)}`).toBe(status);
      expect(res.body.error.code).toBe(code);
    }
    expect(await count('SELECT count(*) AS n FROM authorizations')).toBe(before);
  });

  it('requests; the merchant Admins are mailed and both sides see it', async () => {
    const res = await isvAdmin.agent.post(`${devUrl}/authorizations`, { merchantCode: merchantCode.toLowerCase(), miniProgramIds: [mpA, mpB, mpC, mpD], scope: ['view', 'upload', 'submit', 'testers'], message: 'We build your shop' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ status: 'requested', direction: 'outgoing', scope: [], requestedScope: ['view', 'upload', 'submit', 'testers'] });
    authId = res.body.id;
    await stack.waitForMail({ to: stack.users.admin.email });
    const incoming = await merchantAdmin.get(`${ws}/authorizations`);
    expect(incoming.status).toBe(200);
    expect(incoming.body.items.find((a: { id: string }) => a.id === authId)).toMatchObject({ direction: 'incoming', developerWorkspace: { id: devWs, name: 'Blue Fox Studio' } });
    const outgoing = await isvAdmin.agent.get(`${devUrl}/authorizations`);
    expect(outgoing.body.items.map((a: { id: string }) => a.id)).toContain(authId);
    // Before approval the ISV holds nothing.
    expect((await isvDev.agent.get(`${ws}/mini-programs/${mpA}`)).status).toBe(404);
    // A reviewer of the merchant sees authorizations but may not decide them; the ISV cannot approve its own.
    const seenByReviewer = await reviewer.get(`${ws}/authorizations`);
    expect(seenByReviewer.status).toBe(200);
    expect(seenByReviewer.body.items.map((a: { id: string }) => a.id)).toContain(authId);
    expect((await reviewer.post(`${ws}/authorizations/${authId}/approve`, {})).status).toBe(403);
    expect((await isvAdmin.agent.post(`${devUrl}/authorizations/${authId}/approve`, {})).body.error.code).toBe('wrong_side');
  });

  it('is approved by a merchant Admin, narrowed to three mini programs and three scopes', async () => {
    const wider = await merchantAdmin.post(`${ws}/authorizations/${authId}/approve`, { miniProgramIds: [mpA, 'mp_not_requested'] });
    expect(wider.status).toBe(400);
    expect(wider.body.error.code).toBe('not_a_narrowing');
    const res = await merchantAdmin.post(`${ws}/authorizations/${authId}/approve`, { miniProgramIds: [mpA, mpC, mpD], scope: ['view', 'upload', 'submit'], comment: 'no testers' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: 'active', scope: ['view', 'upload', 'submit'], decidedBy: { id: stack.users.admin.id } });
    expect(res.body.miniPrograms.map((m: { id: string }) => m.id).sort()).toEqual([mpA, mpC, mpD].sort());
    await eventually(async () => (await count(`SELECT count(*) AS n FROM authorizations WHERE id = :authId AND status = 'active'`, { authId })) === 1, { what: 'the grant projected' });
    const again = await merchantAdmin.post(`${ws}/authorizations/${authId}/approve`, {});
    expect(again.status).toBe(409);
  });

  it('lets an ISV member upload and submit on a granted mini program, nowhere else', async () => {
    const a = await isvDev.agent.upload(`${ws}/mini-programs/${mpA}/versions`, pkg('1.0.0'), '1.0.0');
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    const submitted = await isvDev.agent.post(`${ws}/mini-programs/${mpA}/versions/${a.body.id}/submit`, {});
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
    isvInReview = `release:${a.body.id}`;
    await eventually(async () => (await pipelineStatus(merchantAdmin, isvInReview)) === 'in_review', { what: 'the ISV submission in review' });

    // The merchant sees who it was: by the ISV on behalf of the merchant.
    const view = await merchantAdmin.get(`${ws}/mini-programs/${mpA}/versions/${a.body.id}`);
    expect(view.body.pipeline.onBehalf).toMatchObject({ developerWorkspace: { id: devWs, name: 'Blue Fox Studio' }, label: expect.stringMatching(/^by Blue Fox Studio on behalf of /) });

    // Requested but not granted: hidden, as any other mini program of the merchant.
    expect((await isvDev.agent.upload(`${ws}/mini-programs/${mpB}/versions`, pkg('1.0.0'), '1.0.0')).status).toBe(404);
    // No tester scope was granted, and the merchant's testers list is the workspace's.
    expect((await isvDev.agent.get(`${ws}/testers`)).status).toBe(404);

    // A preview link the ISV creates (scope view) is recorded as its own.
    const link = await isvDev.agent.post(`${ws}/mini-programs/${mpA}/versions/${a.body.id}/preview`);
    expect(link.status).toBe(201);
    isvLink = link.body.token;
    expect((await isvDev.agent.get(`/api/v1/preview/${isvLink}`)).body.access).toBe('authorized');

    // The ISV's submission on C, approved by the merchant: left running on revoke.
    const c = await isvDev.agent.upload(`${ws}/mini-programs/${mpC}/versions`, pkg('1.0.0'), '1.0.0');
    expect((await isvDev.agent.post(`${ws}/mini-programs/${mpC}/versions/${c.body.id}/submit`, {})).status).toBe(200);
    isvApproved = `release:${c.body.id}`;
    await eventually(async () => (await pipelineStatus(merchantAdmin, isvApproved)) === 'in_review', { what: 'C in review' });
    expect((await reviewer.post(`${ws}/pipelines/${enc(isvApproved)}/approve`, { comment: 'ok' })).status).toBe(200);

    // The merchant's own release on D, approved.
    const d = await merchantDev.upload(`${ws}/mini-programs/${mpD}/versions`, pkg('1.0.0'), '1.0.0');
    expect((await merchantDev.post(`${ws}/mini-programs/${mpD}/versions/${d.body.id}/submit`, {})).status).toBe(200);
    merchantApproved = `release:${d.body.id}`;
    await eventually(async () => (await pipelineStatus(merchantAdmin, merchantApproved)) === 'in_review', { what: 'D in review' });
    expect((await reviewer.post(`${ws}/pipelines/${enc(merchantApproved)}/approve`, { comment: 'ok' })).status).toBe(200);

    expect((await merchantAdmin.get(`${ws}/pipelines/${enc(merchantApproved)}`)).body.pipeline.onBehalf).toBeNull();

    // The merchant sees what the ISV did under the grant.
    const detail = await merchantAdmin.get(`${ws}/authorizations/${authId}`);
    expect(detail.status).toBe(200);
    expect(detail.body.activity.filter((x: { actor: { id: string } | null }) => x.actor?.id === isvDev.id).length).toBeGreaterThan(0);
    expect(detail.body.history.map((h: { action: string }) => h.action)).toEqual(expect.arrayContaining([expect.stringMatching(/request/), expect.stringMatching(/approv/)]));
  }, 120_000);

  it('revokes: the very next ISV request is refused, in-review work withdrawn, approved releases left and listed, links cut, a report to download', async () => {
    const revoked = await merchantAdmin.post(`${ws}/authorizations/${authId}/revoke`, { reason: 'contract ended' });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect(['revoking', 'revoked']).toContain(revoked.body.status);
    const next = await isvDev.agent.get(`${ws}/mini-programs/${mpA}`);
    expect(next.status).toBe(403);
    expect(next.body.error.code).toBe('authorization_ended');

    const detail = await eventually(async () => {
      const res = await merchantAdmin.get(`${ws}/authorizations/${authId}`);
      return res.body.authorization?.status === 'revoked' && res.body.report?.completedAt ? res.body : null;
    }, { what: 'the revocation to complete', timeoutMs: 60_000 });
    const report = detail.report;
    expect(report.withdrawn.map((w: { pipelineId: string }) => w.pipelineId)).toEqual([isvInReview]);
    expect(report.leftRunning.map((w: { pipelineId: string }) => w.pipelineId)).toEqual([isvApproved]);
    expect(await pipelineStatus(merchantAdmin, isvInReview)).toBe('withdrawn');
    expect(await pipelineStatus(merchantAdmin, isvApproved)).toBe('approved');
    expect(await pipelineStatus(merchantAdmin, merchantApproved)).toBe('approved');
    expect(JSON.stringify(report)).not.toContain(merchantApproved);
    expect(report.previewLinksRevoked.length).toBe(1);
    expect((await merchantAdmin.get(`/api/v1/preview/${isvLink}`)).body.error.code).toBe('preview_link_revoked');

    const download = await merchantAdmin.get(`${ws}/authorizations/${authId}/report`);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toBe(`attachment; filename="revocation-${authId}.json"`);
    expect(download.body).toMatchObject({ authorizationId: authId, trigger: 'merchant', reason: 'contract ended' });
    // The ISV side sees the same report; a second revoke is refused.
    expect((await isvAdmin.agent.get(`${devUrl}/authorizations/${authId}/report`)).status).toBe(200);
    expect((await merchantAdmin.post(`${ws}/authorizations/${authId}/revoke`, { reason: 'again' })).status).toBe(409);
  }, 120_000);
});

describe('the other ways an authorization ends (with the workflow)', () => {
  let isv: Awaited<ReturnType<typeof user>>;
  let devUrl: string;
  let mp: string;
  const request = async () => {
    const res = await isv.agent.post(`${devUrl}/authorizations`, { merchantCode, miniProgramIds: [mp], scope: ['view'] });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id as string;
  };

  beforeAll(async () => {
    isv = await user('isv-other');
    devUrl = `/api/v1/workspaces/${(await isv.agent.post('/api/v1/developer-workspaces', { name: 'Other ISV' })).body.id}`;
    mp = await miniProgram('Epsilon');
  });

  it('is withdrawn by the ISV, or denied by the merchant with a reason', async () => {
    const w = await request();
    expect((await merchantAdmin.post(`${ws}/authorizations/${w}/withdraw`)).body.error.code).toBe('wrong_side');
    const withdrawn = await isv.agent.post(`${devUrl}/authorizations/${w}/withdraw`);
    expect(withdrawn.status, JSON.stringify(withdrawn.body)).toBe(200);
    expect(withdrawn.body.status).toBe('withdrawn');

    const d = await request();
    expect((await merchantAdmin.post(`${ws}/authorizations/${d}/deny`, { reason: '' })).status).toBe(400);
    const denied = await merchantAdmin.post(`${ws}/authorizations/${d}/deny`, { reason: 'we build in house' });
    expect(denied.status).toBe(200);
    expect(denied.body).toMatchObject({ status: 'denied', decisionReason: 'we build in house' });
    expect((await merchantAdmin.post(`${ws}/authorizations/${d}/approve`, {})).status).toBe(409);
    expect((await isv.agent.get(`${ws}/mini-programs/${mp}`)).status).toBe(404);
  });

  it('schedules a revocation and cancels it; the ISV relinquishes a grant itself', async () => {
    const id = await request();
    expect((await merchantAdmin.post(`${ws}/authorizations/${id}/approve`, {})).body.status).toBe('active');
    const at = new Date(Date.now() + 3600_000).toISOString();
    expect((await merchantAdmin.post(`${ws}/authorizations/${id}/revoke`, { reason: 'later', at: new Date(Date.now() - 1000).toISOString() })).body.error.code).toBe('at_in_past');
    const scheduled = await merchantAdmin.post(`${ws}/authorizations/${id}/revoke`, { reason: 'end of quarter', at });
    expect(scheduled.status, JSON.stringify(scheduled.body)).toBe(200);
    expect(scheduled.body).toMatchObject({ status: 'active', revokeScheduledAt: at });
    expect((await isv.agent.get(`${ws}/mini-programs/${mp}`)).status).toBe(200); // still granted until then
    const cancelled = await merchantAdmin.post(`${ws}/authorizations/${id}/cancel-revocation`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.revokeScheduledAt).toBeNull();
    expect((await merchantAdmin.post(`${ws}/authorizations/${id}/cancel-revocation`)).status).toBe(409);

    const mine = await isv.agent.get('/api/v1/me/authorized-mini-programs');
    expect(mine.body.items.map((i: { miniProgram: { id: string } }) => i.miniProgram.id)).toEqual([mp]);
    const relinquished = await isv.agent.post(`${devUrl}/authorizations/${id}/revoke`, { reason: 'project done' });
    expect(relinquished.status).toBe(200);
    expect(relinquished.body.revokeTrigger).toBe('developer');
    expect((await isv.agent.get(`${ws}/mini-programs/${mp}`)).status).toBe(403);
    const report = await eventually(async () => {
      const res = await isv.agent.get(`${devUrl}/authorizations/${id}/report`);
      return res.status === 200 && res.body.completedAt ? res.body : null;
    }, { what: 'the report' });
    expect(report).toMatchObject({ trigger: 'developer', reason: 'project done', withdrawn: [], leftRunning: [] });
  });
});
