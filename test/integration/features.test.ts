import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedUsers } from '../../db/seed.js';
import { grantedJsapis } from '../../lib/feature-grants.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

let stack: Stack;
let admin: Agent;
let reviewer: Agent;
let developer: Agent;
let outsider: Agent;
let ws: string;

const count = async (sql: string, replacements: Record<string, unknown> = {}) =>
  Number((await stack.sequelize.query<{ n: string }>(sql, { replacements, type: QueryTypes.SELECT }))[0]!.n);
/** Everything the feature routes write, as one fingerprint: a refused request must leave it as it was. */
const footprint = async () =>
  [
    await count('SELECT count(*) AS n FROM features WHERE workspace_id = :ws', { ws }),
    await count('SELECT count(*) AS n FROM feature_changes WHERE workspace_id = :ws', { ws }),
    await count('SELECT count(*) AS n FROM feature_revisions r JOIN features f ON f.id = r.feature_id WHERE f.workspace_id = :ws', { ws }),
    await count(`SELECT count(*) AS n FROM mini_program_features WHERE workspace_id = :ws`, { ws }),
    await count(`SELECT coalesce(sum(revision), 0) AS n FROM features WHERE workspace_id = :ws`, { ws }),
  ].join('/');

const url = (path = '') => `/api/v1/workspaces/${ws}${path}`;

async function propose(body: Record<string, unknown>, agent = developer) {
  const res = await agent.post(url('/features'), body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

/** Proposes and approves a feature: answers the feature id. */
async function feature(o: { key?: string; accessMode?: 'direct' | 'activation'; jsapis?: string[] } = {}) {
  const key = o.key ?? `f-${uid()}`;
  const change = await propose({ key, name: `Feature ${key}`, accessMode: o.accessMode ?? 'direct', jsapis: o.jsapis ?? ['getLocation'] });
  const res = await reviewer.post(url(`/feature-changes/${change.id}/approve`), {});
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return change.featureId as string;
}

async function miniProgram() {
  const res = await developer.post(url('/mini-programs'), { name: `Shop ${uid()}`.slice(0, 60), category: 'tools' });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const id = res.body.id as string;
  await eventually(async () => (await count('SELECT count(*) AS n FROM mini_programs WHERE id = :id', { id })) === 1 || null, { what: 'the mini program row' });
  return id;
}

beforeAll(async () => {
  stack = await startStack();
  ws = stack.workspaceId;
  [admin, reviewer, developer] = await Promise.all([stack.agent('admin'), stack.agent('reviewer'), stack.agent('developer')]);
  const tag = uid();
  const other = { id: `usr_o_${tag}`, email: `outsider-${tag}@example.test`, name: 'Otto Outsider', role: 'admin' as const };
  await seedUsers(stack.sequelize, { workspaceId: uid('ws_other_'), workspaceName: 'Elsewhere', code: `O${tag}`.toUpperCase(), users: [other], password: testPassword });
  outsider = new Agent(stack.baseUrl);
  await outsider.login(other.email);
});
afterAll(async () => stack?.stop());

describe('features: propose, review, history', () => {
  it('an addition is a pending change until a reviewer approves it as revision 1; an edit is revision 2 with its diff', async () => {
    const key = `maps-${uid()}`;
    const change = await propose({ key, name: 'Maps', description: 'Where things are', accessMode: 'direct', jsapis: ['openLocation', 'getLocation', 'getLocation'], comment: 'store finder' });
    expect(change).toMatchObject({ kind: 'add', status: 'pending', proposal: { key, jsapis: ['getLocation', 'openLocation'] }, proposedBy: { id: stack.users.developer.id, name: 'Dan Developer' }, revision: null });
    expect(change.diff.jsapis).toEqual({ added: ['getLocation', 'openLocation'], removed: [] });
    // Reviewers and Admins are mailed, not the proposer.
    await stack.waitForMail({ to: stack.users.reviewer.email, subject: /Feature change to review/ });
    await stack.waitForMail({ to: stack.users.admin.email, subject: /Feature change to review/ });

    // Not in the list yet; listed as a pending addition; the detail shows the proposal.
    const list = await developer.get(url('/features'));
    expect(list.body.items.find((f: any) => f.key === key)).toBeUndefined();
    expect(list.body.pendingAdditions.map((c: any) => c.id)).toContain(change.id);
    const pendingDetail = await developer.get(url(`/features/${change.featureId}`));
    expect(pendingDetail.status).toBe(200);
    expect(pendingDetail.body).toMatchObject({ feature: null, pendingChange: { id: change.id }, revisions: [] });
    expect(pendingDetail.body.jsapis).toEqual([
      { name: 'getLocation', category: 'location', permissionLevel: 'needs_feature', status: 'active' },
      { name: 'openLocation', category: 'location', permissionLevel: 'open', status: 'active' },
    ]);
    // The same key again is refused while the addition waits.
    const before = await footprint();
    expect((await developer.post(url('/features'), { key, name: 'Again', accessMode: 'direct', jsapis: ['getLocation'] })).body.error.code).toBe('feature_exists');
    expect(await footprint()).toBe(before);

    // The proposer cannot approve (even as an Admin would not be asked: the Developer lacks feature.review).
    expect((await developer.post(url(`/feature-changes/${change.id}/approve`), {})).status).toBe(403);
    const approved = await reviewer.post(url(`/feature-changes/${change.id}/approve`), { comment: 'looks right' });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', revision: 1, decidedBy: { id: stack.users.reviewer.id }, reason: 'looks right' });
    await stack.waitForMail({ to: stack.users.developer.email, subject: /Feature change approved/ });

    const edit = await developer.post(url(`/features/${change.featureId}/changes`), { kind: 'edit', name: 'Maps & places', jsapis: ['chooseLocation', 'getLocation'], comment: 'pick a place' });
    expect(edit.status, JSON.stringify(edit.body)).toBe(202);
    expect(edit.body.diff).toEqual({ fields: { name: { from: 'Maps', to: 'Maps & places' } }, jsapis: { added: ['chooseLocation'], removed: ['openLocation'] } });
    // One pending change per feature.
    const again = await admin.post(url(`/features/${change.featureId}/changes`), { kind: 'edit', description: 'x' });
    expect([again.status, again.body.error.code]).toEqual([409, 'change_pending']);
    expect((await admin.post(url(`/feature-changes/${edit.body.id}/approve`), {})).status).toBe(200);

    const detail = await reviewer.get(url(`/features/${change.featureId}`));
    expect(detail.body.feature).toMatchObject({ key, name: 'Maps & places', revision: 2, jsapis: ['chooseLocation', 'getLocation'], status: 'active', pendingChange: null });
    expect(detail.body.revisions.map((r: any) => [r.revision, r.kind, r.proposedBy.name, r.approvedBy.name])).toEqual([[2, 'edit', 'Dan Developer', 'Alice Admin'], [1, 'add', 'Dan Developer', 'Rita Reviewer']]);
    expect(detail.body.revisions[0].diff).toEqual(edit.body.diff);
    expect(detail.body.revisions[1].diff.fields.key).toEqual({ from: null, to: key });
    const history = await developer.get(url(`/features/${change.featureId}/history`));
    expect(history.body.items.map((r: any) => r.revision)).toEqual([2, 1]);
    const changes = await developer.get(url(`/features/${change.featureId}/changes`));
    expect(changes.body.items.map((c: any) => [c.kind, c.status])).toEqual([['edit', 'approved'], ['add', 'approved']]);
    // The audit log has the revisions.
    expect(await count(`SELECT count(*) AS n FROM audit_log WHERE subject_type = 'feature' AND subject_id = :id AND action IN ('created', 'edited')`, { id: change.featureId })).toBe(2);
    // Search and filters.
    expect((await developer.get(url(`/features?q=${encodeURIComponent('maps &')}`))).body.items.map((f: any) => f.key)).toEqual([key]);
    expect((await developer.get(url('/features?jsapi=chooseLocation'))).body.items.map((f: any) => f.key)).toContain(key);
    expect((await developer.get(url('/features?accessMode=activation'))).body.items.map((f: any) => f.key)).not.toContain(key);
  });

  it('reject needs a reason and the proposer is told; only the proposer withdraws; decided changes refuse more', async () => {
    const change = await propose({ key: `cam-${uid()}`, name: 'Camera', accessMode: 'direct', jsapis: ['chooseImage'] });
    const before = await footprint();
    expect((await reviewer.post(url(`/feature-changes/${change.id}/reject`), {})).body.error.code).toBe('validation_failed');
    expect((await reviewer.post(url(`/feature-changes/${change.id}/reject`), { reason: '  ' })).body.error.code).toBe('validation_failed');
    expect((await developer.post(url(`/feature-changes/${change.id}/reject`), { reason: 'x' })).status).toBe(403);
    expect(await footprint()).toBe(before);
    const rejected = await reviewer.post(url(`/feature-changes/${change.id}/reject`), { reason: 'chooseImage is open: no feature needed' });
    expect(rejected.body).toMatchObject({ status: 'rejected', reason: 'chooseImage is open: no feature needed', decidedBy: { name: 'Rita Reviewer' } });
    await stack.waitForMail({ to: stack.users.developer.email, subject: /Feature change rejected/ });
    expect([(await reviewer.post(url(`/feature-changes/${change.id}/approve`), {})).status, (await developer.post(url(`/feature-changes/${change.id}/withdraw`))).status]).toEqual([409, 409]);
    expect((await developer.get(url(`/features/${change.featureId}`))).body).toMatchObject({ feature: null, pendingChange: null, revisions: [] });

    const second = await propose({ key: `cam-${uid()}`, name: 'Camera', accessMode: 'direct', jsapis: ['saveImageToPhotosAlbum'] });
    const notMine = await admin.post(url(`/feature-changes/${second.id}/withdraw`));
    expect([notMine.status, notMine.body.error.code]).toEqual([403, 'not_proposer']);
    const withdrawn = await developer.post(url(`/feature-changes/${second.id}/withdraw`));
    expect(withdrawn.body.status).toBe('withdrawn');
    expect((await developer.get(url('/feature-changes?status=withdrawn'))).body.items.map((c: any) => c.id)).toContain(second.id);
    expect((await developer.get(url('/feature-changes'))).body.items.map((c: any) => c.id)).not.toContain(second.id);
  });

  it('an Admin who proposed cannot approve their own change (own_change); another Admin or Reviewer can; archiving is a revision too', async () => {
    const change = await propose({ key: `arch-${uid()}`, name: 'Short-lived', accessMode: 'direct', jsapis: ['getClipboard'] }, admin);
    const own = await admin.post(url(`/feature-changes/${change.id}/approve`), {});
    expect([own.status, own.body.error.code]).toEqual([403, 'own_change']);
    expect((await admin.post(url(`/feature-changes/${change.id}/reject`), { reason: 'no' })).body.error.code).toBe('own_change');
    expect((await reviewer.post(url(`/feature-changes/${change.id}/approve`), {})).body.revision).toBe(1);
    const archive = await developer.post(url(`/features/${change.featureId}/changes`), { kind: 'archive', comment: 'unused' });
    expect(archive.status).toBe(202);
    expect(archive.body.diff).toEqual({ fields: { status: { from: 'active', to: 'archived' } }, jsapis: { added: [], removed: [] } });
    expect((await admin.post(url(`/feature-changes/${archive.body.id}/approve`), {})).body.revision).toBe(2);
    const detail = await developer.get(url(`/features/${change.featureId}`));
    expect(detail.body.feature).toMatchObject({ status: 'archived', revision: 2 });
    expect((await developer.get(url('/features'))).body.items.map((f: any) => f.id)).not.toContain(change.featureId);
    expect((await developer.get(url('/features?status=archived'))).body.items.map((f: any) => f.id)).toContain(change.featureId);
    const edit = await developer.post(url(`/features/${change.featureId}/changes`), { kind: 'edit', name: 'Back' });
    expect([edit.status, edit.body.error.code]).toEqual([409, 'feature_archived']);
  });

  it('refuses bad proposals with their codes and changes nothing', async () => {
    const existing = await feature({ key: `taken-${uid()}` });
    const taken = (await developer.get(url(`/features/${existing}`))).body.feature.key as string;
    const before = await footprint();
    const cases: [Record<string, unknown>, number, string][] = [
      [{}, 400, 'validation_failed'],
      [{ key: 'Bad Key', name: 'x', accessMode: 'direct', jsapis: ['getLocation'] }, 400, 'validation_failed'],
      [{ key: 'ok-key', name: '', accessMode: 'direct', jsapis: ['getLocation'] }, 400, 'validation_failed'],
      [{ key: 'ok-key', name: 'x', accessMode: 'sometimes', jsapis: ['getLocation'] }, 400, 'validation_failed'],
      [{ key: 'ok-key', name: 'x', accessMode: 'direct', jsapis: [] }, 400, 'validation_failed'],
      [{ key: 'ok-key', name: 'x', accessMode: 'direct', jsapis: ['getLocation', 'teleport', 'readMinds'] }, 400, 'unknown_jsapi'],
      [{ key: 'ok-key', name: 'x', accessMode: 'direct', jsapis: ['getLocation', 'tradePay'] }, 400, 'restricted_needs_activation'],
      [{ key: taken, name: 'x', accessMode: 'direct', jsapis: ['getLocation'] }, 409, 'feature_exists'],
    ];
    for (const [body, status, code] of cases) {
      const res = await developer.post(url('/features'), body);
      expect([JSON.stringify(body), res.status, res.body.error?.code]).toEqual([JSON.stringify(body), status, code]);
    }
    const unknown = await developer.post(url('/features'), { key: 'ok-key', name: 'x', accessMode: 'direct', jsapis: ['teleport', 'getLocation'] });
    expect(unknown.body.error.details.jsapis).toEqual(['teleport']);
    expect(unknown.body.error.message).toContain('teleport');
    const edits: [Record<string, unknown>, number, string][] = [
      [{ kind: 'rename' }, 400, 'validation_failed'],
      [{ kind: 'edit' }, 400, 'no_change'],
      [{ kind: 'edit', jsapis: ['getLocation', 'nope'] }, 400, 'unknown_jsapi'],
      [{ kind: 'edit', jsapis: ['tradePay'] }, 400, 'restricted_needs_activation'],
    ];
    for (const [body, status, code] of edits) {
      const res = await developer.post(url(`/features/${existing}/changes`), body);
      expect([JSON.stringify(body), res.status, res.body.error?.code]).toEqual([JSON.stringify(body), status, code]);
    }
    expect((await developer.post(url('/features/feat_nope/changes'), { kind: 'edit', name: 'x' })).status).toBe(404);
    expect((await developer.get(url('/features/feat_nope'))).status).toBe(404);
    expect((await reviewer.post(url('/feature-changes/fchg_nope/approve'), {})).status).toBe(404);
    // A restricted JSAPI is fine in an activation-needed feature (and then pending, so it is withdrawn to keep the count).
    const ok = await propose({ key: `pay-${uid()}`, name: 'Pay', accessMode: 'activation', jsapis: ['tradePay'] });
    await developer.post(url(`/feature-changes/${ok.id}/withdraw`));
    expect((await footprint()).split('/').filter((_, i) => i !== 1).join('/')).toBe(before.split('/').filter((_, i) => i !== 1).join('/'));
  });
});

describe('features: roles', () => {
  it('everyone reads; Admins and Developers propose; Reviewers and Admins decide; a non-member sees nothing', async () => {
    const id = await feature();
    for (const agent of [admin, reviewer, developer]) {
      expect((await agent.get(url('/features'))).status).toBe(200);
      expect((await agent.get(url(`/features/${id}`))).status).toBe(200);
      expect((await agent.get(url(`/features/${id}/history`))).status).toBe(200);
      expect((await agent.get(url(`/features/${id}/changes`))).status).toBe(200);
      expect((await agent.get(url('/feature-changes'))).status).toBe(200);
    }
    const before = await footprint();
    const byReviewer = await reviewer.post(url('/features'), { key: `r-${uid()}`, name: 'R', accessMode: 'direct', jsapis: ['getLocation'] });
    expect([byReviewer.status, byReviewer.body.error.code]).toEqual([403, 'forbidden']);
    expect((await reviewer.post(url(`/features/${id}/changes`), { kind: 'archive' })).status).toBe(403);
    for (const path of ['/features', `/features/${id}`, `/features/${id}/history`, `/features/${id}/changes`, '/feature-changes']) {
      const res = await outsider.get(url(path));
      expect([path, res.status]).toEqual([path, 404]);
    }
    expect((await outsider.post(url('/features'), { key: `o-${uid()}`, name: 'O', accessMode: 'direct', jsapis: ['getLocation'] })).status).toBe(404);
    expect((await new Agent(stack.baseUrl).get(url('/features'))).status).toBe(401);
    expect(await footprint()).toBe(before);

    const change = await propose({ key: `x-${uid()}`, name: 'X', accessMode: 'direct', jsapis: ['getLocation'] }, admin);
    expect((await developer.post(url(`/feature-changes/${change.id}/approve`), {})).status).toBe(403);
    expect((await outsider.post(url(`/feature-changes/${change.id}/approve`), {})).status).toBe(404);
    expect((await outsider.get(url(`/feature-changes/${change.id}`))).status).toBe(404);
    expect((await reviewer.get(url(`/feature-changes/${change.id}`))).body.status).toBe('pending');
    expect((await reviewer.post(url(`/feature-changes/${change.id}/reject`), { reason: 'duplicate' })).status).toBe(200);
  });
});

describe('mini programs and their features', () => {
  it('a direct feature is granted at once; an activation-needed one waits for a reviewer; grantedJsapis follows', async () => {
    const mp = await miniProgram();
    const direct = await feature({ jsapis: ['getLocation', 'calculateRoute'] });
    const gated = await feature({ accessMode: 'activation', jsapis: ['tradePay', 'getLocation'] });
    const list = await developer.get(url(`/mini-programs/${mp}/features`));
    expect(list.status).toBe(200);
    expect(list.body.items.filter((h: any) => [direct, gated].includes(h.feature.id)).map((h: any) => h.status)).toEqual([null, null]);

    const granted = await developer.post(url(`/mini-programs/${mp}/features/${direct}/apply`), {});
    expect(granted.status, JSON.stringify(granted.body)).toBe(200);
    expect(granted.body).toMatchObject({ status: 'active', attempt: 1, requestedBy: { name: 'Dan Developer' } });
    expect((await developer.post(url(`/mini-programs/${mp}/features/${direct}/apply`), {})).body.error.code).toBe('already_active');
    expect(await count(`SELECT count(*) AS n FROM audit_log WHERE subject_id = :direct AND action = 'activation_granted'`, { direct })).toBe(1);

    const asked = await developer.post(url(`/mini-programs/${mp}/features/${gated}/apply`), { message: 'checkout' });
    expect(asked.status).toBe(202);
    expect(asked.body).toMatchObject({ status: 'requested', message: 'checkout' });
    await stack.waitForMail({ to: stack.users.reviewer.email, subject: /Feature activation to review/ });
    expect((await developer.post(url(`/mini-programs/${mp}/features/${gated}/apply`), {})).body.error.code).toBe('already_requested');
    expect((await developer.post(url(`/mini-programs/${mp}/features/${gated}/approve`), {})).status).toBe(403);

    let grants = await grantedJsapis(stack.sequelize, mp);
    expect([...grants.keys()].sort()).toEqual(['calculateRoute', 'getLocation']);

    const approved = await reviewer.post(url(`/mini-programs/${mp}/features/${gated}/approve`), {});
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body).toMatchObject({ status: 'active', decidedBy: { name: 'Rita Reviewer' } });
    grants = await grantedJsapis(stack.sequelize, mp);
    expect([...grants.keys()].sort()).toEqual(['calculateRoute', 'getLocation', 'tradePay']);
    expect(grants.get('getLocation')!.map((g) => g.featureId).sort()).toEqual([direct, gated].sort());
    await stack.waitForMail({ to: stack.users.developer.email, subject: /Feature activated/ });

    // Revoke: Admins only, with a reason.
    expect((await reviewer.post(url(`/mini-programs/${mp}/features/${gated}/revoke`), { reason: 'x' })).status).toBe(403);
    expect((await admin.post(url(`/mini-programs/${mp}/features/${gated}/revoke`), {})).body.error.code).toBe('validation_failed');
    const revoked = await admin.post(url(`/mini-programs/${mp}/features/${gated}/revoke`), { reason: 'licence lapsed' });
    expect(revoked.body).toMatchObject({ status: 'revoked', reason: 'licence lapsed' });
    expect((await admin.post(url(`/mini-programs/${mp}/features/${gated}/revoke`), { reason: 'again' })).status).toBe(409);
    expect([...(await grantedJsapis(stack.sequelize, mp)).keys()].sort()).toEqual(['calculateRoute', 'getLocation']);

    // Applying again is a new attempt: rejected with a reason this time.
    const again = await developer.post(url(`/mini-programs/${mp}/features/${gated}/apply`), {});
    expect(again.body).toMatchObject({ status: 'requested', attempt: 2 });
    expect((await reviewer.post(url(`/mini-programs/${mp}/features/${gated}/reject`), {})).body.error.code).toBe('validation_failed');
    const rejected = await reviewer.post(url(`/mini-programs/${mp}/features/${gated}/reject`), { reason: 'not this quarter' });
    expect(rejected.body).toMatchObject({ status: 'rejected', reason: 'not this quarter' });
    expect((await reviewer.post(url(`/mini-programs/${mp}/features/${gated}/approve`), {})).status).toBe(409);

    // And withdrawn by the applicant only.
    const third = await developer.post(url(`/mini-programs/${mp}/features/${gated}/apply`), {});
    expect(third.body.attempt).toBe(3);
    const notMine = await admin.post(url(`/mini-programs/${mp}/features/${gated}/withdraw`));
    expect([notMine.status, notMine.body.error.code]).toEqual([403, 'not_proposer']);
    expect((await developer.post(url(`/mini-programs/${mp}/features/${gated}/withdraw`))).body.status).toBe('withdrawn');
  });

  it('the applicant cannot approve their own application; archived features and unknown ids are refused; non-members see nothing', async () => {
    const mp = await miniProgram();
    const gated = await feature({ accessMode: 'activation', jsapis: ['getClipboard'] });
    await admin.post(url(`/mini-programs/${mp}/features/${gated}/apply`), {});
    const own = await admin.post(url(`/mini-programs/${mp}/features/${gated}/approve`), {});
    expect([own.status, own.body.error.code]).toEqual([403, 'own_change']);
    expect((await reviewer.post(url(`/mini-programs/${mp}/features/${gated}/approve`), {})).body.status).toBe('active');

    const before = await footprint();
    expect((await developer.post(url(`/mini-programs/${mp}/features/feat_nope/apply`), {})).status).toBe(404);
    expect((await developer.post(url(`/mini-programs/mp_nope/features/${gated}/apply`), {})).status).toBe(404);
    expect((await developer.get(url('/mini-programs/mp_nope/features'))).status).toBe(404);
    expect((await reviewer.post(url(`/mini-programs/${mp}/features/${gated}/reject`), { reason: 'x' })).status).toBe(409);
    expect((await outsider.get(url(`/mini-programs/${mp}/features`))).status).toBe(404);
    expect((await outsider.post(url(`/mini-programs/${mp}/features/${gated}/apply`), {})).status).toBe(404);
    expect(await footprint()).toBe(before);
    for (const agent of [admin, reviewer, developer]) expect((await agent.get(url(`/mini-programs/${mp}/features`))).status).toBe(200);

    const archived = await feature();
    const arch = await developer.post(url(`/features/${archived}/changes`), { kind: 'archive' });
    await reviewer.post(url(`/feature-changes/${arch.body.id}/approve`), {});
    const res = await developer.post(url(`/mini-programs/${mp}/features/${archived}/apply`), {});
    expect([res.status, res.body.error.code]).toEqual([409, 'feature_archived']);
  });
});
