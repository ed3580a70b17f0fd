import { readdirSync } from 'node:fs';
import path from 'node:path';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedUsers } from '../../db/seed.js';
import { realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * The review side of the release pipeline through HTTP: a two-approver policy, rejections with a
 * reason code and an attachment, the approvals inbox and my requests, the workspace's policy and
 * its reject reasons.
 */

let stack: Stack;
let admin: Agent;
let rev: Agent;
let rev2: Agent;
let dev: Agent;
let ws: string;
let mpId: string;
let mpUrl: string;
const second = { id: uid('usr_r2_'), email: `${uid('reviewer2-')}@example.test`, name: 'Ravi Second', role: 'reviewer' as const };

const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from('a screenshot of the crash, honest')]);

function storedFiles(): string[] {
  try {
    return readdirSync(path.join(stack.dataDir, 'packages'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name);
  } catch {
    return [];
  }
}

async function upload(version: string, base = mpUrl) {
  const res = await dev.upload(`${base}/versions`, realisticPackage({ version }), version, `Release ${version}`);
  expect(res.status).toBe(201);
  return `${base}/versions/${res.body.id}`;
}

async function inReview(url: string, agent = dev) {
  return eventually(async () => {
    const d = await agent.get(url);
    return d.body.version.status === 'in_review' ? d.body : null;
  }, { what: 'in review', timeoutMs: 20_000 });
}

beforeAll(async () => {
  stack = await startStack({ env: { REVIEW_SLA_MS: String(48 * 3600_000) } });
  ws = stack.workspaceId;
  [admin, rev, dev] = await Promise.all([stack.agent('admin'), stack.agent('reviewer'), stack.agent('developer')]);
  const res = await dev.post(`/api/v1/workspaces/${ws}/mini-programs`, { name: 'Tide Tables', description: 'Harbour tides', category: 'travel', icon: '🌊' });
  expect(res.status).toBe(201);
  mpId = res.body.id;
  mpUrl = `/api/v1/workspaces/${ws}/mini-programs/${mpId}`;
}, 180_000);
afterAll(async () => stack?.stop());

describe('release settings', () => {
  const url = () => `/api/v1/workspaces/${ws}/release-settings`;

  it('has a default policy every member may read, and only Admins change', async () => {
    const read = await dev.get(url());
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ requiredApprovals: 1, rollbackNeedsReview: false, offlineNeedsReview: true, updatedBy: null });
    expect(read.body.approvers.map((a: any) => a.name).sort()).toEqual(['Alice Admin', 'Rita Reviewer']);
    const asReviewer = await rev.request('PUT', url(), { requiredApprovals: 2 });
    expect(asReviewer.status).toBe(403);
    const asDeveloper = await dev.request('PUT', url(), { requiredApprovals: 2 });
    expect(asDeveloper.status).toBe(403);
  });

  it('refuses bad values and changes nothing', async () => {
    for (const body of [{ requiredApprovals: 0 }, { requiredApprovals: 11 }, { requiredApprovals: 1.5 }, { requiredApprovals: 'two' }, { rollbackNeedsReview: 'yes' }, { surprise: true }]) {
      const res = await admin.request('PUT', url(), body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect((await admin.get(url())).body.requiredApprovals).toBe(1);
    const [{ n }] = await stack.sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM audit_log WHERE workspace_id = :ws AND action = 'release_settings_changed'`, { replacements: { ws }, type: QueryTypes.SELECT });
    expect(Number(n)).toBe(0);
  });

  it('warns when too few members can approve, and audits each change', async () => {
    const three = await admin.request('PUT', url(), { requiredApprovals: 3 });
    expect(three.status).toBe(200);
    expect(three.body.requiredApprovals).toBe(3);
    expect(three.body.warnings).toEqual([expect.stringMatching(/^only 2 members can approve: Alice Admin, Rita Reviewer/)]);
    // A second reviewer joins: two approvals are possible for anyone's submission.
    await seedUsers(stack.sequelize, { workspaceId: ws, workspaceName: 'unused', code: 'UNUSED', users: [second], password: testPassword });
    rev2 = new Agent(stack.baseUrl);
    await rev2.login(second.email);
    const two = await admin.request('PUT', url(), { requiredApprovals: 2, rollbackNeedsReview: true });
    expect(two.status).toBe(200);
    expect(two.body).toMatchObject({ requiredApprovals: 2, rollbackNeedsReview: true, offlineNeedsReview: true, warnings: [], updatedBy: { name: 'Alice Admin' } });
    const audit = await stack.sequelize.query<{ subject_type: string; actor_id: string; comment: string }>(
      `SELECT subject_type, actor_id, comment FROM audit_log WHERE workspace_id = :ws AND action = 'release_settings_changed' ORDER BY id`,
      { replacements: { ws }, type: QueryTypes.SELECT },
    );
    expect(audit).toHaveLength(2);
    expect(audit[1]).toMatchObject({ subject_type: 'workspace', actor_id: stack.users.admin.id });
    expect(audit[1]!.comment).toContain('required approvals: 3 → 2');
    expect(audit[1]!.comment).toContain('rollbacks need review: no → yes');
  });
});

describe('a two-approver policy', () => {
  let versionUrl: string;
  let pipelineId: string;

  it('starts the pipeline with the policy and the configured SLA', async () => {
    versionUrl = await upload('1.0.0');
    // The Admin submits: they may review others' work, never their own.
    const submitted = await admin.post(`${versionUrl}/submit`, {});
    expect(submitted.status).toBe(200);
    const d = await inReview(versionUrl, admin);
    pipelineId = d.pipeline.pipelineId;
    expect(pipelineId).toBe(`release:${d.version.id}`);
    expect(d.pipeline).toMatchObject({ requiredApprovals: 2, approvals: [], hotfix: false, submitterId: stack.users.admin.id });
    expect(d.pipeline.names[stack.users.admin.id]).toBe('Alice Admin');
    expect(Date.parse(d.pipeline.slaDueAt) - Date.parse(d.pipeline.reviewRequestedAt)).toBe(48 * 3600_000);
    expect(d.pipeline.sla).toMatchObject({ dueAt: d.pipeline.slaDueAt, overdue: false });
    expect(d.pipeline.waitingWords).toMatch(/^Waiting .* for 2 approvals from a Reviewer or Admin other than Alice Admin \(the submitter\); due in (1 d 23 h|2 d)/);
    expect(d.pipeline.temporalUrl).toMatch(new RegExp(`/namespaces/default/workflows/${encodeURIComponent(pipelineId)}$`));
    expect(d.version.allowedActions).toEqual(['withdraw']);
  });

  it('lists it in the inbox of reviewers other than the submitter, oldest first', async () => {
    // The inbox reads the read model, which follows the workflow within moments.
    const waiting = await eventually(async () => {
      const l = await rev.get('/api/v1/me/reviews?view=waiting');
      return l.body.items.some((r: any) => r.pipelineId === pipelineId) ? l : null;
    }, { what: 'the submission in the inbox', timeoutMs: 10_000 });
    const row = waiting.body.items.find((r: any) => r.pipelineId === pipelineId);
    expect(row).toMatchObject({
      kind: 'release', status: 'in_review', version: '1.0.0', hotfix: false, workspace: { id: ws }, miniProgram: { id: mpId, name: 'Tide Tables', icon: '🌊' },
      submitter: { id: stack.users.admin.id, name: 'Alice Admin' }, approvals: { count: 0, required: 2 }, overdue: false, myDecision: null,
    });
    expect(row.waitedMs).toBeGreaterThanOrEqual(0);
    expect(row.consoleUrl).toBe(`/w/${ws}/mini-programs/${mpId}/versions/${pipelineId.slice('release:'.length)}`);
    expect(waiting.body.counts.waiting).toBeGreaterThanOrEqual(1);
    // The submitter's inbox does not hold their own submission; a developer has no inbox rows.
    expect((await admin.get('/api/v1/me/reviews?view=waiting')).body.items.map((r: any) => r.pipelineId)).not.toContain(pipelineId);
    expect((await dev.get('/api/v1/me/reviews?view=waiting')).body.items).toEqual([]);
    // Filters: workspace, mini program, age.
    expect((await rev.get(`/api/v1/me/reviews?workspaceId=${ws}&miniProgramId=${mpId}`)).body.items.map((r: any) => r.pipelineId)).toEqual([pipelineId]);
    expect((await rev.get('/api/v1/me/reviews?workspaceId=ws_nowhere')).body.items).toEqual([]);
    expect((await rev.get(`/api/v1/me/reviews?miniProgramId=${mpId}&minAgeHours=1`)).body.items).toEqual([]);
    expect((await rev.get('/api/v1/me/reviews?view=sideways')).status).toBe(400);
    expect((await rev.get('/api/v1/me/reviews?cursor=garbage')).status).toBe(400);
    // My requests: the submitter sees where it stands.
    const mine = await admin.get('/api/v1/me/requests');
    expect(mine.body.items.find((r: any) => r.pipelineId === pipelineId).waitingWords).toMatch(/2 approvals/);
  });

  it('never counts the submitter, counts each reviewer once, and approves at two distinct reviewers', async () => {
    const own = await admin.post(`${versionUrl}/approve`, {});
    expect(own.status).toBe(403);
    expect(own.body.error.code).toBe('forbidden_actor');

    const first = await rev.post(`${versionUrl}/approve`, { comment: 'Tide data checks out' });
    expect(first.status).toBe(200);
    expect(first.body.version.status).toBe('in_review');
    expect(first.body.pipeline.approvals).toEqual([expect.objectContaining({ actorId: stack.users.reviewer.id, comment: 'Tide data checks out' })]);
    expect(first.body.pipeline.requiredApprovals).toBe(2);
    expect(first.body.pipeline.names[stack.users.reviewer.id]).toBe('Rita Reviewer');
    expect(first.body.pipeline.waitingWords).toMatch(/for 1 more approval .* other than Alice Admin \(the submitter\) and Rita Reviewer \(already approved\) \(1 of 2 so far\)/);
    // Approved once: no approve button for her any more.
    expect(first.body.version.allowedActions).not.toContain('approve');

    const again = await rev.post(`${versionUrl}/approve`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_approved');

    // The inbox moves it from waiting to decided for her, and keeps it waiting for the other reviewer.
    await eventually(async () => {
      const decided = await rev.get('/api/v1/me/reviews?view=decided');
      return decided.body.items.some((r: any) => r.pipelineId === pipelineId && r.myDecision === 'approved' && r.approvals.count === 1);
    }, { what: 'the approval in the decided list', timeoutMs: 10_000 });
    expect((await rev.get('/api/v1/me/reviews?view=waiting')).body.items.map((r: any) => r.pipelineId)).not.toContain(pipelineId);
    expect((await rev2.get('/api/v1/me/reviews?view=waiting')).body.items.map((r: any) => r.pipelineId)).toContain(pipelineId);

    const secondApproval = await rev2.post(`${versionUrl}/approve`, {});
    expect(secondApproval.status).toBe(200);
    expect(secondApproval.body.version.status).toBe('approved');
    expect(secondApproval.body.pipeline.approvals.map((a: any) => a.actorId)).toEqual([stack.users.reviewer.id, second.id]);
    expect(secondApproval.body.pipeline.sla.overdue).toBe(false);
    expect(secondApproval.body.pipeline.waitingWords).toMatch(/^Approved by Rita Reviewer and Ravi Second; waiting for .* to start the rollout/);
    const decided = await eventually(async () => {
      const l = await rev2.get(`/api/v1/me/reviews?view=decided&status=approved`);
      return l.body.items.find((r: any) => r.pipelineId === pipelineId) ?? null;
    }, { what: 'the approved pipeline in the decided list', timeoutMs: 10_000 });
    expect(decided).toMatchObject({ status: 'approved', myDecision: 'approved', approvals: { count: 2, required: 2 } });
    expect((await rev2.get('/api/v1/me/reviews?view=decided&status=rejected')).body.items).toEqual([]);
  });

  it('releases to everyone at once with a one-stage plan', async () => {
    const released = await dev.post(`${versionUrl}/release`, { plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] });
    expect(released.status).toBe(200);
    let last = '';
    await eventually(async () => {
      const d = (await dev.get(versionUrl)).body;
      last = `${d.version.status}: ${d.pipeline?.waitingWords}`;
      return d.version.status === 'released';
    }, { what: 'released', timeoutMs: 20_000 }).catch((err) => {
      throw new Error(`${(err as Error).message} (last: ${last}; answered ${released.body.version.status})`);
    });
  });
});

describe('rejections with a reason', () => {
  let versionUrl: string;
  // A mini program of its own: its lane is free whatever the first one is doing.
  let mp2Url: string;
  let mp2Id: string;

  it('refuses an unknown or archived reason and changes nothing', async () => {
    const res = await dev.post(`/api/v1/workspaces/${ws}/mini-programs`, { name: 'Tide Alerts', description: 'Warnings', category: 'travel', icon: '🚩' });
    mp2Id = res.body.id;
    mp2Url = `/api/v1/workspaces/${ws}/mini-programs/${mp2Id}`;
    versionUrl = await upload('1.1.0', mp2Url);
    expect((await dev.post(`${versionUrl}/submit`, {})).status).toBe(200);
    await inReview(versionUrl);
    const before = storedFiles().length;
    const unknown = await rev.post(`${versionUrl}/reject`, { reasonCode: 'vibes', comment: 'Not feeling it', attachment: { name: 'x.png', contentType: 'image/png', dataBase64: png.toString('base64') } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('unknown_reason');
    const noComment = await rev.post(`${versionUrl}/reject`, { reasonCode: 'crash_or_bug' });
    expect(noComment.status).toBe(400);
    const big = await rev.post(`${versionUrl}/reject`, { reasonCode: 'crash_or_bug', comment: 'too big', attachment: { name: 'big.bin', contentType: 'application/octet-stream', dataBase64: Buffer.alloc(2 * 1024 * 1024 + 1).toString('base64') } });
    expect(big.status).toBe(413);
    expect(storedFiles().length).toBe(before);
    const d = (await dev.get(versionUrl)).body;
    expect(d.version.status).toBe('in_review');
    expect(d.pipeline.rejection).toBeNull();
  });

  it('rejects with a reason code, a comment and a file the submitter can download', async () => {
    const res = await rev.post(`${versionUrl}/reject`, {
      reasonCode: 'crash_or_bug', comment: 'Crashes when the tide table is empty', attachment: { name: 'crash.png', contentType: 'image/png', dataBase64: png.toString('base64') },
    });
    expect(res.status).toBe(200);
    expect(res.body.version.status).toBe('rejected');
    expect(res.body.pipeline.rejection).toMatchObject({
      actorId: stack.users.reviewer.id, reasonCode: 'crash_or_bug', reasonLabel: 'Crashes or functional bug', comment: 'Crashes when the tide table is empty',
      attachment: { name: 'crash.png', contentType: 'image/png', size: png.length },
    });
    // The submitter sees it on the version, and downloads the file.
    const seen = await dev.get(versionUrl);
    expect(seen.body.pipeline.rejection.reasonLabel).toBe('Crashes or functional bug');
    expect(seen.body.pipeline.waitingWords).toMatch(/^Rejected by Rita Reviewer at .* \(Crashes or functional bug\)/);
    const file = await fetch(`${stack.baseUrl}${versionUrl}/rejection/attachment`, { headers: { cookie: dev.cookie } });
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('image/png');
    expect(file.headers.get('content-disposition')).toMatch(/^attachment; filename="crash.png"/);
    expect(Buffer.from(await file.arrayBuffer()).equals(png)).toBe(true);
    const decided = await eventually(async () => {
      const l = await rev.get('/api/v1/me/reviews?view=decided&status=rejected');
      return l.body.items.find((r: any) => r.versionId === seen.body.version.id) ?? null;
    }, { what: 'the rejection in the decided list', timeoutMs: 10_000 });
    expect(decided).toMatchObject({ myDecision: 'rejected', rejection: { reasonCode: 'crash_or_bug', by: { name: 'Rita Reviewer' } } });
    const mine = (await dev.get(`/api/v1/me/requests?miniProgramId=${mp2Id}&status=rejected`)).body.items;
    expect(mine.map((r: any) => r.version)).toEqual(['1.1.0']);
    // A version without an attachment has nothing to download.
    expect((await dev.get(`${mp2Url}/versions/ver_nope/rejection/attachment`)).status).toBe(404);
  });

  it('lets a workspace add, change and archive its own reasons; built-ins stay as they are', async () => {
    const reasons = `/api/v1/workspaces/${ws}/reject-reasons`;
    const list = await rev.get(reasons);
    expect(list.status).toBe(200);
    expect(list.body.items.map((r: any) => r.code)).toEqual(expect.arrayContaining(['crash_or_bug', 'privacy', 'other']));
    expect(list.body.items.every((r: any) => r.builtin)).toBe(true);

    expect((await rev.post(reasons, { code: 'accessibility', label: 'Accessibility' })).status).toBe(403);
    expect((await admin.post(reasons, { code: 'Bad Code', label: 'x' })).status).toBe(400);
    expect((await admin.post(reasons, { code: 'ok_code', label: '' })).status).toBe(400);
    const added = await admin.post(reasons, { code: 'accessibility', label: 'Accessibility', description: 'Labels for screen readers' });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ code: 'accessibility', label: 'Accessibility', builtin: false, archived: false });
    const dup = await admin.post(reasons, { code: 'accessibility', label: 'Again' });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('reason_exists');
    const shadow = await admin.post(reasons, { code: 'other', label: 'Mine' });
    expect(shadow.status).toBe(409);

    const builtin = await admin.request('PATCH', `${reasons}/rr_builtin_other`, { label: 'Renamed' });
    expect(builtin.status).toBe(403);
    expect(builtin.body.error.code).toBe('builtin_reason');
    expect((await admin.request('PATCH', `${reasons}/rr_nope`, { label: 'x' })).status).toBe(404);
    const renamed = await admin.request('PATCH', `${reasons}/${added.body.id}`, { label: 'Accessibility gaps' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.label).toBe('Accessibility gaps');

    // A reviewer can reject with it, until it is archived.
    const v = await upload('1.2.0', mp2Url);
    expect((await dev.post(`${v}/submit`, {})).status).toBe(200);
    await inReview(v);
    expect((await admin.request('PATCH', `${reasons}/${added.body.id}`, { archived: true })).body.archived).toBe(true);
    const archived = await rev.post(`${v}/reject`, { reasonCode: 'accessibility', comment: 'No labels' });
    expect(archived.status).toBe(400);
    expect(archived.body.error.code).toBe('unknown_reason');
    expect((await rev.get(reasons)).body.items.map((r: any) => r.code)).not.toContain('accessibility');
    expect((await rev.get(`${reasons}?includeArchived=true`)).body.items.map((r: any) => r.code)).toContain('accessibility');
    expect((await admin.request('PATCH', `${reasons}/${added.body.id}`, { archived: false })).status).toBe(200);
    const ok = await rev.post(`${v}/reject`, { reasonCode: 'accessibility', comment: 'No labels on the tide chart' });
    expect(ok.status).toBe(200);
    expect(ok.body.pipeline.rejection).toMatchObject({ reasonCode: 'accessibility', reasonLabel: 'Accessibility gaps', attachment: null });
    const trail = await stack.sequelize.query<{ action: string }>(`SELECT action FROM audit_log WHERE workspace_id = :ws AND subject_type = 'workspace' AND action LIKE 'reject_reason%' ORDER BY id`, { replacements: { ws }, type: QueryTypes.SELECT });
    expect(trail.map((t) => t.action)).toEqual(['reject_reason_added', 'reject_reason_changed', 'reject_reason_archived', 'reject_reason_restored']);
  });

  it('withdraws a submission in review; a hotfix flag is carried into the pipeline', async () => {
    const v = await upload('1.3.0', mp2Url);
    const submitted = await dev.post(`${v}/submit`, { hotfix: true });
    expect(submitted.status).toBe(200);
    const d = await inReview(v);
    expect(d.pipeline.hotfix).toBe(true);
    expect((await dev.post(`${v}/submit`, { hotfix: 'yes' })).status).toBe(400);
    const withdrawn = await dev.post(`${v}/withdraw`, {});
    expect(withdrawn.status).toBe(200);
    expect(withdrawn.body.version.status).toBe('withdrawn');
    expect(withdrawn.body.version.allowedActions).toEqual([]);
  });
});
