import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOperator } from '../../db/seed.js';
import { PackageStore } from '../../lib/storage.js';
import { buildPackage, minimalPackageFiles } from '../fixtures/packages.js';
import { reportHealth } from '../helpers/analytics.js';
import { eventually } from '../helpers/eventually.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * Rollout controls, rollback, offline and remove, timeline export and the operators' stuck list,
 * through HTTP against the real stack (API, worker, Temporal, PostgreSQL, SMTP). A step fails
 * after three attempts here (STEP_ATTEMPTS=3: a hiccup of the loaded test machine is retried, a broken package file is not fixed by retrying), and health checks run every 200 ms.
 */

let stack: Stack;
let dev: Agent;
let rev: Agent;
let admin: Agent;
let op: Agent;
let ws: string;

const pkg = (version: string) => buildPackage(minimalPackageFiles({ version }));
const enc = encodeURIComponent;
const pipelineUrl = (id: string) => `${ws}/pipelines/${enc(id)}`;

const names = new Map<string, string>();
async function createMiniProgram(name: string): Promise<string> {
  const res = await dev.post(`${ws}/mini-programs`, { name: `${name} ${uid()}`.slice(0, 60), category: 'tools' });
  expect(res.status).toBe(201);
  names.set(res.body.id, res.body.name);
  return res.body.id;
}

async function upload(mp: string, version: string): Promise<{ id: string; sha: string }> {
  const res = await dev.upload(`${ws}/mini-programs/${mp}/versions`, pkg(version), version);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.id, sha: res.body.packageSha256 };
}

async function pipeline(id: string, who = dev) {
  const res = await who.get(pipelineUrl(id));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { pipeline: any; allowedActions: string[]; rolloutDefaults: any };
}

async function waitFor(id: string, ok: (p: any) => boolean, what: string, timeoutMs = 30_000) {
  let last: any = null;
  try {
    return await eventually(async () => {
      const res = await dev.get(pipelineUrl(id));
      last = res.body;
      return res.status === 200 && ok(res.body.pipeline) ? res.body.pipeline : null;
    }, { what: `${id} ${what}`, timeoutMs, intervalMs: 100 });
  } catch (err) {
    // Say where it was instead: the status, what it waited for, and its last steps.
    const p = last?.pipeline;
    throw new Error(`${(err as Error).message}; last seen: ${p ? `${p.status} — ${p.waitingWords} — ${JSON.stringify(p.timeline.slice(-3))}` : JSON.stringify(last)}`);
  }
}

/** Upload, submit, and have the reviewer approve: the version's pipeline waits for its rollout. */
async function approvedVersion(mp: string, version: string) {
  const v = await upload(mp, version);
  const submitted = await dev.post(`${ws}/mini-programs/${mp}/versions/${v.id}/submit`, {}, { 'Idempotency-Key': uid() });
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
  const id = `release:${v.id}`;
  await waitFor(id, (p) => p.status === 'in_review', 'in review');
  const approved = await rev.post(`${pipelineUrl(id)}/approve`, { comment: 'looks good' });
  expect(approved.status, JSON.stringify(approved.body)).toBe(200);
  expect(approved.body.pipeline.status).toBe('approved');
  // The pipeline mails the submitter the decision before it turns to the rollout (see the report:
  // a release started while that mail is in flight is not picked up by the workflow yet).
  await stack.waitForMail({ to: stack.users.developer.email, subject: `${names.get(mp)} ${version} was approved` });
  return { ...v, pipelineId: id };
}

/** Approved, then released to everyone at once. */
async function liveVersion(mp: string, version: string) {
  const v = await approvedVersion(mp, version);
  const res = await dev.post(`${pipelineUrl(v.pipelineId)}/release`, { plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  await waitFor(v.pipelineId, (p) => p.status === 'released', 'released');
  await eventually(async () => (await miniProgramRow(mp)).live_version_id === v.id, { what: `${version} live` });
  return v;
}

async function miniProgramRow(mp: string) {
  const [row] = await stack.sequelize.query<{ status: string; live_version_id: string | null }>('SELECT status, live_version_id FROM mini_programs WHERE id = :mp', { replacements: { mp }, type: QueryTypes.SELECT });
  return row!;
}

beforeAll(async () => {
  stack = await startStack({ env: { STEP_ATTEMPTS: '3', HEALTH_CHECK_INTERVAL_MS: '200', ROLLOUT_SOAK_MS: '600000' } });
  ws = `/api/v1/workspaces/${stack.workspaceId}`;
  [dev, rev, admin] = await Promise.all([stack.agent('developer'), stack.agent('reviewer'), stack.agent('admin')]);
  const email = `operator-${uid()}@example.test`;
  await ensureOperator(stack.sequelize, { email, password: testPassword, name: 'Olga Operator' });
  op = new Agent(stack.baseUrl);
  await op.login(email);
}, 180_000);
afterAll(async () => stack?.stop());

describe('rollout plans', () => {
  let mp: string;
  let id: string;

  beforeAll(async () => {
    mp = await createMiniProgram('Plans');
    id = (await approvedVersion(mp, '1.0.0')).pipelineId;
  });

  const bad: [string, unknown, RegExp][] = [
    ['no stages', [], /1 to 10 stages/],
    ['eleven stages', Array.from({ length: 11 }, (_, i) => ({ kind: 'percent', percent: (i + 1) * 9 > 100 ? 100 : (i + 1) * 9, soakMs: 0 })), /1 to 10 stages/],
    ['falling percentages', [{ kind: 'percent', percent: 20, soakMs: 0 }, { kind: 'percent', percent: 5, soakMs: 0 }, { kind: 'percent', percent: 100, soakMs: 0 }], /must rise/],
    ['a last stage below 100', [{ kind: 'percent', percent: 1, soakMs: 0 }, { kind: 'percent', percent: 50, soakMs: 0 }], /last stage must release to 100%/],
    ['a whitelist stage that is not first', [{ kind: 'percent', percent: 5, soakMs: 0 }, { kind: 'whitelist', percent: 0, soakMs: 0 }, { kind: 'percent', percent: 100, soakMs: 0 }], /whitelist can only be the first/],
    ['a percentage of 0', [{ kind: 'percent', percent: 0, soakMs: 0 }, { kind: 'percent', percent: 100, soakMs: 0 }], /above 0/],
    ['a soak over 30 days', [{ kind: 'percent', percent: 5, soakMs: 31 * 24 * 3600_000 }, { kind: 'percent', percent: 100, soakMs: 0 }], /0 to 30 days/],
    ['an unknown stage kind', [{ kind: 'everyone', percent: 100, soakMs: 0 }], /plan/],
  ];
  it.each(bad)('refuses a plan with %s: 400 invalid_plan, and nothing starts', async (_name, plan, message) => {
    const res = await dev.post(`${pipelineUrl(id)}/release`, { plan });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_plan');
    expect(res.body.error.message).toMatch(message);
    expect((await pipeline(id)).pipeline.status).toBe('approved');
  });

  it('offers the default ladder and its health limits with the pipeline, and the start to those who may', async () => {
    const got = await pipeline(id);
    expect(got.rolloutDefaults.plan.map((s: any) => s.percent)).toEqual([1, 5, 20, 50, 100]);
    expect(got.rolloutDefaults.plan[0].soakMs).toBe(600_000);
    expect(got.rolloutDefaults.health).toEqual({ maxCrashRate: 0.0109, maxRatioToLive: 2, minLaunches: 200 });
    expect(got.allowedActions).toContain('release');
    expect((await pipeline(id, rev)).allowedActions).not.toContain('release');
    const asReviewer = await rev.post(`${pipelineUrl(id)}/release`, {});
    expect(asReviewer.status).toBe(403);
  });

  it('answers 404 for a pipeline id of another workspace or that is no pipeline', async () => {
    const elsewhere = `/api/v1/workspaces/ws_nowhere/pipelines/${enc(id)}`;
    expect((await dev.get(elsewhere)).status).toBe(404);
    const [{ id: other }] = await stack.sequelize.query<{ id: string }>(
      `INSERT INTO workspaces (id, name, code) VALUES (:id, 'Other', :code) RETURNING id`, { replacements: { id: uid('ws_'), code: uid('C').toUpperCase() }, type: QueryTypes.SELECT },
    );
    await stack.sequelize.query(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:ws, :user, 'admin')`, { replacements: { ws: other, user: stack.users.developer.id } });
    const foreign = await dev.post(`/api/v1/workspaces/${other}/pipelines/${enc(id)}/pause`, {});
    expect(foreign.status).toBe(404);
    expect((await dev.get(`/api/v1/workspaces/${other}/pipelines/${enc(id)}`)).status).toBe(404);
    expect((await dev.get(pipelineUrl('mini-program:whatever'))).status).toBe(404);
    expect((await dev.get(pipelineUrl('release:ver_nothing_here'))).status).toBe(404);
  });
});

describe('a staged rollout with a custom plan', () => {
  let mp: string;
  let id: string;
  let versionId: string;

  beforeAll(async () => {
    mp = await createMiniProgram('Ladder');
    await liveVersion(mp, '1.0.0');
    const v = await approvedVersion(mp, '1.1.0');
    id = v.pipelineId;
    versionId = v.id;
  });

  it('starts a 3-stage plan (testers, 50%, 100%) and serves the cohort from the rollouts row', async () => {
    const plan = [{ kind: 'whitelist', percent: 0, soakMs: 120_000 }, { kind: 'percent', percent: 50, soakMs: 120_000 }, { kind: 'percent', percent: 100, soakMs: 0 }];
    const res = await dev.post(`${pipelineUrl(id)}/release`, { plan }, { 'Idempotency-Key': 'start-ladder' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const p = res.body.pipeline;
    expect(p.status).toBe('rolling_out');
    expect(p.rollout).toMatchObject({ stageIndex: 0, whitelist: true, percent: 0 });
    expect(p.rollout.plan).toEqual(plan);
    expect(Date.parse(p.rollout.soakEndsAt) - Date.now()).toBeGreaterThan(100_000);
    expect(res.body.allowedActions).toEqual(expect.arrayContaining(['advance', 'pause', 'abort']));
    expect(p.temporalUrl).toContain(`/workflows/${enc(id)}`);
    // The same Idempotency-Key answers the first outcome again rather than a refusal.
    const again = await dev.post(`${pipelineUrl(id)}/release`, { plan }, { 'Idempotency-Key': 'start-ladder' });
    expect(again.status).toBe(200);
    const twice = await dev.post(`${pipelineUrl(id)}/release`, { plan });
    expect(twice.status).toBe(409);
    await eventually(async () => {
      const [row] = await stack.sequelize.query<{ version_id: string; whitelist: boolean; status: string }>('SELECT version_id, whitelist, status FROM rollouts WHERE mini_program_id = :mp', { replacements: { mp }, type: QueryTypes.SELECT });
      return row?.version_id === versionId && row.whitelist && row.status === 'rolling_out';
    }, { what: 'the rollouts row of the whitelist stage' });
  });

  it('pauses (the soak clock stops), resumes, and refuses what the state does not allow', async () => {
    const reviewerPause = await rev.post(`${pipelineUrl(id)}/pause`, {});
    expect(reviewerPause.status).toBe(403);
    const paused = await dev.post(`${pipelineUrl(id)}/pause`, { comment: 'checking a report' });
    expect(paused.status).toBe(200);
    expect(paused.body.pipeline.status).toBe('paused');
    expect(paused.body.pipeline.rollout.soakEndsAt).toBeNull();
    expect(paused.body.pipeline.rollout.remainingSoakMs).toBeGreaterThan(60_000);
    expect(paused.body.allowedActions).toEqual(expect.arrayContaining(['resume', 'advance', 'abort']));
    expect(paused.body.allowedActions).not.toContain('pause');
    const pauseAgain = await dev.post(`${pipelineUrl(id)}/pause`, {});
    expect(pauseAgain.status).toBe(409);
    expect(pauseAgain.body.error.code).toBe('wrong_state');
    const resumed = await dev.post(`${pipelineUrl(id)}/resume`, {});
    expect(resumed.status).toBe(200);
    expect(resumed.body.pipeline.status).toBe('rolling_out');
    expect(resumed.body.pipeline.rollout.soakEndsAt).not.toBeNull();

    // The pipeline's routes are its mini program's: a Reviewer who owns this mini program drives its rollout.
    const owned = await admin.request('PUT', `${ws}/mini-programs/${mp}/roles/${stack.users.reviewer.id}`, { role: 'owner' });
    expect(owned.status, JSON.stringify(owned.body)).toBe(200);
    try {
      const ownerPause = await rev.post(`${pipelineUrl(id)}/pause`, {});
      expect(ownerPause.status, JSON.stringify(ownerPause.body)).toBe(200);
      expect((await rev.post(`${pipelineUrl(id)}/resume`, {})).status).toBe(200);
    } finally {
      expect((await admin.request('DELETE', `${ws}/mini-programs/${mp}/roles/${stack.users.reviewer.id}`)).status).toBe(200);
    }
    expect((await rev.post(`${pipelineUrl(id)}/pause`, {})).status).toBe(403);
  });

  it('advances by hand to 50%, then to 100%: the version is live and the release completes', async () => {
    const second = await dev.post(`${pipelineUrl(id)}/advance`, { comment: 'testers are happy' });
    expect(second.status).toBe(200);
    expect(second.body.pipeline.rollout).toMatchObject({ stageIndex: 1, percent: 50 });
    await eventually(async () => {
      const [row] = await stack.sequelize.query<{ percent: string }>('SELECT percent FROM rollouts WHERE mini_program_id = :mp', { replacements: { mp }, type: QueryTypes.SELECT });
      return Number(row?.percent) === 50;
    }, { what: 'rollouts at 50%' });
    const last = await dev.post(`${pipelineUrl(id)}/advance`, {});
    expect(last.status).toBe(200);
    const done = await waitFor(id, (p) => p.status === 'released', 'released');
    expect(done.rollout.percent).toBe(100);
    await eventually(async () => (await miniProgramRow(mp)).live_version_id === versionId, { what: '1.1.0 live' });
    const actions = done.timeline.map((t: any) => t.action);
    expect(actions).toEqual(expect.arrayContaining(['submitted', 'approved', 'rollout_started', 'paused', 'resumed', 'released']));
    expect(actions.filter((a: string) => a === 'stage_advanced' || a === 'stage_started').length).toBeGreaterThanOrEqual(2);
    const advance = await dev.post(`${pipelineUrl(id)}/advance`, {});
    expect(advance.status).toBe(409);
  });

  it('exports the complete timeline as JSON and CSV downloads with names resolved', async () => {
    const json = await fetch(`${stack.baseUrl}${pipelineUrl(id)}/timeline?format=json`, { headers: { cookie: dev.cookie } });
    expect(json.status).toBe(200);
    expect(json.headers.get('content-disposition')).toMatch(/^attachment; filename="timeline-.+-release-1\.1\.0\.json"$/);
    const body = await json.json();
    expect(body).toMatchObject({ pipelineId: id, kind: 'release', version: '1.1.0', status: 'released' });
    const submitted = body.entries.find((e: any) => e.action === 'submitted');
    expect(submitted.actorName).toBe('Dan Developer');
    expect(body.entries.find((e: any) => e.action === 'approved').actorName).toBe('Rita Reviewer');
    expect(body.entries.find((e: any) => e.action === 'paused').comment).toBe('checking a report');

    const csv = await fetch(`${stack.baseUrl}${pipelineUrl(id)}/timeline?format=csv`, { headers: { cookie: dev.cookie } });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).toMatch(/filename=".+\.csv"/);
    const lines = (await csv.text()).trim().split('\r\n');
    expect(lines[0]).toBe('at,action,status,actor_id,actor_name,comment,data');
    expect(lines.length).toBe(body.entries.length + 1);
    expect(lines.some((l) => l.includes(',submitted,') && l.includes('Dan Developer'))).toBe(true);
    // Step data (stage numbers, health figures) rides along as JSON in the last column.
    expect(lines.some((l) => /stage_(advanced|started)/.test(l) && /"\{.*\}"$/.test(l))).toBe(true);
    const bad = await dev.get(`${pipelineUrl(id)}/timeline?format=xml`);
    expect(bad.status).toBe(400);
  });

  it('lists every pipeline of the mini program, newest first', async () => {
    const res = await dev.get(`${ws}/mini-programs/${mp}/pipelines`);
    expect(res.status).toBe(200);
    expect(res.body.items.map((p: any) => [p.kind, p.version, p.status])).toEqual([['release', '1.1.0', 'released'], ['release', '1.0.0', 'released']]);
    expect(res.body.items[0]).toMatchObject({ submittedBy: { name: 'Dan Developer' }, baselineVersion: '1.0.0' });
    const page = await dev.get(`${ws}/mini-programs/${mp}/pipelines?limit=1`);
    expect(page.body.items).toHaveLength(1);
    const rest = await dev.get(`${ws}/mini-programs/${mp}/pipelines?limit=1&cursor=${page.body.nextCursor}`);
    expect(rest.body.items.map((p: any) => p.version)).toEqual(['1.0.0']);
  });
});

describe('a rollout that advances by itself, and one aborted', () => {
  it('soaks each stage (health checks running) and completes with no hand on it', async () => {
    const mp = await createMiniProgram('Auto');
    await liveVersion(mp, '2.0.0');
    const v = await approvedVersion(mp, '2.1.0');
    const res = await dev.post(`${pipelineUrl(v.pipelineId)}/release`, { plan: [{ kind: 'percent', percent: 10, soakMs: 700 }, { kind: 'percent', percent: 60, soakMs: 700 }, { kind: 'percent', percent: 100, soakMs: 0 }] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const done = await waitFor(v.pipelineId, (p) => p.status === 'released', 'released by itself');
    const advanced = done.timeline.filter((t: any) => t.action === 'stage_advanced');
    expect(advanced.map((t: any) => t.actorId)).toEqual([null, null]);
    // Each soaking stage was checked: no launches yet is no verdict, which does not hold the ladder.
    expect(advanced[0].data.health).toMatchObject({ verdict: 'insufficient_data', launches: 0 });
    expect(done.timeline.at(-1).action).toBe('released');
  });

  it('halts by itself when the new version crashes, with the numbers on the timeline', async () => {
    const mp = await createMiniProgram('Crashy');
    const live = await liveVersion(mp, '4.0.0');
    const v = await approvedVersion(mp, '4.1.0');
    // What the host apps' runtimes send: launch and crash events through POST /api/v1/collect (wait=true).
    const report = (versionId: string, launches: number, crashes: number) => reportHealth(stack, { miniProgramId: mp, versionId, launches, crashes });
    await report(live.id, 5000, 10);
    const res = await dev.post(`${pipelineUrl(v.pipelineId)}/release`, { plan: [{ kind: 'percent', percent: 5, soakMs: 300_000 }, { kind: 'percent', percent: 100, soakMs: 0 }] });
    expect(res.status).toBe(200);
    await report(v.id, 1000, 40);
    const halted = await waitFor(v.pipelineId, (p) => p.status === 'halted', 'halted');
    expect(halted.rollout.lastHealth).toMatchObject({ verdict: 'red', launches: 1000, crashes: 40, crashRate: 0.04 });
    const entry = halted.timeline.find((t: any) => t.action === 'halted');
    expect(entry.data.health).toMatchObject({ verdict: 'red', crashes: 40 });
    expect((await miniProgramRow(mp)).live_version_id).toBe(live.id);
    const csv = await (await fetch(`${stack.baseUrl}${pipelineUrl(v.pipelineId)}/timeline?format=csv`, { headers: { cookie: dev.cookie } })).text();
    expect(csv.split('\r\n').find((l) => l.includes(',halted,'))).toMatch(/""crashes"":40/);
    await stack.waitForMail({ to: stack.users.developer.email, subject: /halted/i });
  });

  it('aborts: the cohort goes back to the live version, which stays live', async () => {
    const mp = await createMiniProgram('Abort');
    const live = await liveVersion(mp, '3.0.0');
    const v = await approvedVersion(mp, '3.1.0');
    await dev.post(`${pipelineUrl(v.pipelineId)}/release`, { plan: [{ kind: 'percent', percent: 20, soakMs: 300_000 }, { kind: 'percent', percent: 100, soakMs: 0 }] });
    const aborted = await admin.post(`${pipelineUrl(v.pipelineId)}/abort`, { comment: 'support tickets up' });
    expect(aborted.status).toBe(200);
    expect(aborted.body.pipeline.status).toBe('aborted');
    expect(aborted.body.allowedActions).toEqual([]);
    await eventually(async () => {
      const [row] = await stack.sequelize.query<{ status: string }>('SELECT status FROM rollouts WHERE mini_program_id = :mp', { replacements: { mp }, type: QueryTypes.SELECT });
      return row && row.status !== 'rolling_out';
    }, { what: 'the rollout row left rolling_out' });
    expect((await miniProgramRow(mp)).live_version_id).toBe(live.id);
    expect((await admin.post(`${pipelineUrl(v.pipelineId)}/resume`, {})).status).toBe(409);
  });
});

describe('rollback, offline and remove', () => {
  let mp: string;
  let v1: { id: string };
  let v2: { id: string };

  beforeAll(async () => {
    mp = await createMiniProgram('Lifecycle');
    v1 = await liveVersion(mp, '1.0.0');
    v2 = await liveVersion(mp, '1.1.0');
  });

  it('refuses a rollback to the live version, to an unknown one, to one never live, and without a reason', async () => {
    const url = `${ws}/mini-programs/${mp}/rollback`;
    const toLive = await dev.post(url, { targetVersionId: v2.id, reason: 'oops' });
    expect(toLive.status).toBe(409);
    expect(toLive.body.error.message).toMatch(/live version already/);
    expect((await dev.post(url, { targetVersionId: 'ver_nope', reason: 'nope' })).status).toBe(404);
    const never = await upload(mp, '1.2.0');
    const neverLive = await dev.post(url, { targetVersionId: never.id, reason: 'never live' });
    expect([404, 409]).toContain(neverLive.status);
    expect(neverLive.body.error.message).toMatch(/roll back to version 1\.2\.0/);
    const noReason = await dev.post(url, { targetVersionId: v1.id });
    expect(noReason.status).toBe(400);
    expect((await rev.post(url, { targetVersionId: v1.id, reason: 'reviewers cannot' })).status).toBe(403);
  });

  it('rolls back to an earlier live version: a pipeline of its own, and that version is live again', async () => {
    const res = await dev.post(`${ws}/mini-programs/${mp}/rollback`, { targetVersionId: v1.id, reason: 'checkout broke in 1.1.0' }, { 'Idempotency-Key': 'rb-1' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const p = res.body.pipeline;
    expect(p.kind).toBe('rollback');
    expect(p.pipelineId).toMatch(/^rollback:/);
    expect(p.reason).toBe('checkout broke in 1.1.0');
    const same = await dev.post(`${ws}/mini-programs/${mp}/rollback`, { targetVersionId: v1.id, reason: 'checkout broke in 1.1.0' }, { 'Idempotency-Key': 'rb-1' });
    expect(same.body.pipeline.pipelineId).toBe(p.pipelineId);
    const done = await waitFor(p.pipelineId, (x) => x.status === 'released', 'rolled back');
    expect(done.timeline.map((t: any) => t.action)).toContain('rolled_back');
    await eventually(async () => (await miniProgramRow(mp)).live_version_id === v1.id, { what: '1.0.0 live again' });
    const history = await dev.get(`${ws}/mini-programs/${mp}/pipelines?kind=rollback`);
    expect(history.body.items.map((i: any) => [i.id, i.reason])).toEqual([[p.pipelineId, 'checkout broke in 1.1.0']]);
    // And forward again, as often as needed.
    const forward = await dev.post(`${ws}/mini-programs/${mp}/rollback`, { targetVersionId: v2.id, reason: 'fixed on the server side' });
    expect(forward.status, JSON.stringify(forward.body)).toBe(201);
    await waitFor(forward.body.pipeline.pipelineId, (x) => x.status === 'released', 'rolled forward');
    await eventually(async () => (await miniProgramRow(mp)).live_version_id === v2.id, { what: '1.1.0 live again' });
  });

  it('refuses remove while online; takes offline after review (reason required); then removes', async () => {
    const early = await admin.post(`${ws}/mini-programs/${mp}/remove`, {});
    expect(early.status).toBe(409);
    const noReason = await admin.post(`${ws}/mini-programs/${mp}/offline`, { reason: 'x' });
    expect(noReason.status).toBe(400);
    expect((await dev.post(`${ws}/mini-programs/${mp}/offline`, { reason: 'developers cannot' })).status).toBe(403);

    const res = await admin.post(`${ws}/mini-programs/${mp}/offline`, { reason: 'merchant contract ended' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const id = res.body.pipeline.pipelineId as string;
    expect(res.body.pipeline.kind).toBe('offline');
    // Offline needs review by default: the admin who asked cannot approve it themselves.
    await waitFor(id, (p) => p.status === 'in_review', 'offline in review');
    expect((await admin.post(`${pipelineUrl(id)}/approve`, {})).status).toBe(403);
    const approved = await rev.post(`${pipelineUrl(id)}/approve`, { comment: 'confirmed with the merchant' });
    expect(approved.status).toBe(200);
    await waitFor(id, (p) => p.status === 'offline', 'offline');
    await eventually(async () => (await miniProgramRow(mp)).status === 'offline', { what: 'mini program offline' });

    const removed = await admin.post(`${ws}/mini-programs/${mp}/remove`, { reason: 'gone for good' });
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    expect(removed.body.miniProgram.status).toBe('removed');
    await eventually(async () => (await miniProgramRow(mp)).status === 'removed', { what: 'mini program removed' });
    const list = await dev.get(`${ws}/mini-programs?limit=100`);
    expect(list.body.items.map((i: any) => i.id)).not.toContain(mp);
    const removedList = await dev.get(`${ws}/mini-programs?status=removed`);
    expect(removedList.body.items.map((i: any) => i.id)).toContain(mp);
  });
});

describe('operators and stuck pipelines', () => {
  const store = () => new PackageStore(stack.dataDir);

  /**
   * A submitted version whose package storage fails (its file turned into a directory): stuck.
   * Each has a version of its own, hence a package file of its own.
   */
  async function stuckPipeline(name: string, version: string) {
    const mp = await createMiniProgram(name);
    const v = await upload(mp, version);
    const file = store().pathOf(v.sha);
    const bytes = readFileSync(file);
    rmSync(file);
    mkdirSync(file);
    await dev.post(`${ws}/mini-programs/${mp}/versions/${v.id}/submit`, {});
    const id = `release:${v.id}`;
    const p = await waitFor(id, (x) => x.status === 'stuck', 'stuck');
    const repair = () => {
      rmSync(file, { recursive: true, force: true });
      writeFileSync(file, bytes);
    };
    return { id, mp, p, repair };
  }

  it('parks a failing step as stuck, lists it for operators only, and a retry carries on', async () => {
    const a = await stuckPipeline('Stuck Retry', '9.0.1');
    expect(a.p.stuck).toMatchObject({ step: 'check the package', resumeStatus: 'validating' });
    expect(a.p.stuck.error).toMatch(/storage/);

    expect((await dev.get('/api/v1/platform/pipelines/stuck')).status).toBe(403);
    const list = await eventually(async () => {
      const res = await op.get('/api/v1/platform/pipelines/stuck');
      return res.status === 200 && res.body.items.some((i: any) => i.id === a.id) ? res.body : null;
    }, { what: 'the stuck pipeline in Temporal visibility' });
    const item = list.items.find((i: any) => i.id === a.id);
    expect(item).toMatchObject({
      kind: 'release', status: 'stuck', step: 'check the package', retries: 0, resumeStatus: 'validating',
      workspace: { id: stack.workspaceId }, miniProgram: { id: a.mp }, version: { version: '9.0.1' },
      consoleUrl: `/w/${stack.workspaceId}/mini-programs/${a.mp}/versions/${a.id.slice('release:'.length)}`,
    });
    expect(item.temporalUrl).toMatch(new RegExp(`/namespaces/default/workflows/${enc(a.id)}$`));
    expect(item.workspace.name).toMatch(/^Test /);

    const retryTooEarly = await op.post('/api/v1/platform/pipelines/retry', { ids: [] });
    expect(retryTooEarly.status).toBe(400);
    a.repair();
    const retried = await op.post('/api/v1/platform/pipelines/retry', { ids: [a.id, 'release:ver_missing', 'not-a-pipeline'], comment: 'storage is back' });
    expect(retried.status).toBe(200);
    expect(retried.body.succeeded).toBe(1);
    expect(retried.body.results).toEqual([
      expect.objectContaining({ id: a.id, ok: true }),
      expect.objectContaining({ id: 'release:ver_missing', ok: false, code: 'not_found' }),
      expect.objectContaining({ id: 'not-a-pipeline', ok: false, code: 'not_found' }),
    ]);
    const after = await waitFor(a.id, (x) => x.status === 'in_review', 'in review after the retry');
    expect(after.timeline.map((t: any) => t.action)).toEqual(expect.arrayContaining(['stuck', 'step_retried', 'review_requested']));
    const retryAgain = await op.post('/api/v1/platform/pipelines/retry', { ids: [a.id] });
    expect(retryAgain.body.results[0]).toMatchObject({ ok: false, code: 'wrong_state' });
  });

  it('aborts a stuck pipeline in bulk: it ends aborted and leaves the list', async () => {
    const b = await stuckPipeline('Stuck Abort', '9.0.2');
    await eventually(async () => (await op.get('/api/v1/platform/pipelines/stuck')).body.items.some((i: any) => i.id === b.id), { what: 'listed' });
    const res = await op.post('/api/v1/platform/pipelines/abort', { ids: [b.id], comment: 'package lost; developer will re-upload' });
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([expect.objectContaining({ id: b.id, ok: true, status: 'aborted' })]);
    const p = await waitFor(b.id, (x) => x.status === 'aborted', 'aborted');
    const entry = p.timeline.find((t: any) => t.action === 'aborted');
    expect(p.names[entry.actorId]).toBe('Olga Operator');
    await eventually(async () => !(await op.get('/api/v1/platform/pipelines/stuck')).body.items.some((i: any) => i.id === b.id), { what: 'gone from the stuck list' });
    b.repair();
  });
});
