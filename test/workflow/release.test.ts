import type { Client } from '@temporalio/client';
import { ApplicationFailure as ActivityAppFailure } from '@temporalio/activity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import type { PipelineMail, PipelineProjection } from '../../activities/pipeline.js';
import { FailureType } from '../../workflows/contracts/errors.js';
import {
  miniProgramStatusQuery, miniProgramWorkflowId, removeUpdate, rollbackUpdate, submitUpdate, syncUpdate, takeOfflineUpdate, uploadVersionUpdate,
  type MiniProgramInput, type SubmitInput,
} from '../../workflows/contracts/mini-program.js';
import {
  abortUpdate, advanceUpdate, approveUpdate, defaultHealth, pauseUpdate, rejectUpdate, releaseStatusQuery, releaseUpdate, releaseWorkflowId, resumeUpdate,
  retryStepUpdate, withdrawUpdate, type HealthReport, type ReleaseConfig, type ReleaseStatus, type RolloutStage,
} from '../../workflows/contracts/release.js';
import { eventually } from '../helpers/eventually.js';
import { maybeRecordHistory, refusal, startTestWorker, uid } from '../helpers/workflow-env.js';

/** Plain-function activities that record what the workflows asked for, with switches to make steps fail. */
function fakeActivities() {
  const calls: { name: string; input: any }[] = [];
  const rec = (name: string) => async (input: any) => void calls.push({ name, input });
  /** Package hashes whose storage is "down" (a retryable failure) while listed. */
  const storageDown = new Set<string>();
  /** Crash figures per version id; absent = a healthy version with plenty of launches. */
  const crashes = new Map<string, { launches: number; crashes: number }>();
  const activities: Partial<Activities> = {
    projectMiniProgram: rec('projectMiniProgram'),
    projectNewVersion: rec('projectNewVersion'),
    projectVersionStatus: rec('projectVersionStatus'),
    projectPipeline: rec('projectPipeline'),
    deliverWebhooks: async (input) => {
      calls.push({ name: 'deliverWebhooks', input });
      return { delivered: 1, failed: 0 };
    },
    async notifyPipeline(input) {
      calls.push({ name: 'notifyPipeline', input });
      return { sent: 1, skipped: 0 };
    },
    async validateStoredPackage(input) {
      calls.push({ name: 'validateStoredPackage', input });
      if (storageDown.has(input.packageSha256)) throw ActivityAppFailure.retryable('package storage failed: EIO', 'storage_unavailable');
      if (input.packageSha256.startsWith('bad')) throw ActivityAppFailure.nonRetryable('package_page_missing: pages/index/index.js is missing', FailureType.packageInvalid);
      return { pageCount: 12 };
    },
    async checkRolloutHealth(input): Promise<HealthReport> {
      calls.push({ name: 'checkRolloutHealth', input });
      const c = crashes.get(input.versionId) ?? { launches: 1000, crashes: 2 };
      const rate = c.crashes / c.launches;
      const red = c.launches >= input.thresholds.minLaunches && rate > input.thresholds.maxCrashRate;
      return {
        at: new Date().toISOString(), launches: c.launches, crashes: c.crashes, crashRate: rate, liveLaunches: 5000, liveCrashes: 10, liveCrashRate: 0.002,
        verdict: red ? 'red' : 'green', reason: red ? `crash rate ${(rate * 100).toFixed(2)}% is above the ${(input.thresholds.maxCrashRate * 100).toFixed(2)}% limit` : 'within limits',
      };
    },
  };
  return { calls, activities, storageDown, crashes };
}

const fake = fakeActivities();
let env: Awaited<ReturnType<typeof startTestWorker>>;
let client: Client;

beforeAll(async () => {
  env = await startTestWorker(fake.activities);
  client = env.client;
});
afterAll(async () => env?.stop());

const config = (o: Partial<ReleaseConfig> = {}): ReleaseConfig => ({
  reviewReminderMs: 0, reviewEscalationMs: 0, reviewSlaMs: 3600_000, stepAttempts: 2, healthCheckIntervalMs: 150, defaultSoakMs: 300, health: defaultHealth, ...o,
});
const now100: RolloutStage[] = [{ kind: 'percent', percent: 100, soakMs: 0 }];

async function newMiniProgram() {
  const miniProgramId = uid('mp_');
  const input: MiniProgramInput = {
    miniProgramId, workspaceId: uid('ws_'), name: 'Test Mall', description: '', category: 'shopping', icon: null,
    createdBy: 'usr_dev', createdAt: new Date().toISOString(), releaseConfig: { reviewReminderMs: 0 },
  };
  const handle = await client.workflow.start('miniProgramEntity', { workflowId: miniProgramWorkflowId(miniProgramId), taskQueue: env.taskQueue, args: [input] });
  await handle.executeUpdate(syncUpdate, { args: [] });
  return { miniProgramId, workspaceId: input.workspaceId, handle };
}
type Mp = Awaited<ReturnType<typeof newMiniProgram>>;

async function upload(mp: Mp, version: string, sha = 'a'.repeat(64)) {
  const versionId = uid('ver_');
  await mp.handle.executeUpdate(uploadVersionUpdate, { args: [{ versionId, version, packageSha256: sha, packageSize: 1000, pageCount: 12, notes: '', actorId: 'usr_dev' }] });
  return versionId;
}
async function uploadAndSubmit(mp: Mp, version: string, o: { sha?: string; submitter?: string; approvals?: number; cfg?: Partial<ReleaseConfig>; hotfix?: boolean } = {}) {
  const versionId = await upload(mp, version, o.sha);
  const submit: SubmitInput = { versionId, actorId: o.submitter ?? 'usr_dev', hotfix: o.hotfix, policy: { requiredApprovals: o.approvals ?? 1 }, config: config(o.cfg) };
  await mp.handle.executeUpdate(submitUpdate, { args: [submit] });
  return { versionId, release: client.workflow.getHandle(releaseWorkflowId(versionId)) };
}
const stateOf = (workflowId: string) => client.workflow.getHandle(workflowId).query(releaseStatusQuery);
const reaches = (workflowId: string, status: ReleaseStatus) =>
  eventually(async () => ((await stateOf(workflowId)).status === status ? stateOf(workflowId) : null), { what: `${workflowId} to be ${status}` });
const projections = (pipelineId: string) => fake.calls.filter((c) => c.name === 'projectPipeline' && c.input.pipeline.pipelineId === pipelineId).map((c) => c.input as PipelineProjection);
const mails = (pred: (m: PipelineMail) => boolean) => fake.calls.filter((c) => c.name === 'notifyPipeline' && pred(c.input)).map((c) => c.input as PipelineMail);

/** Submits, approves and releases to everyone at once; answers once the version is live. */
async function releaseNow(mp: Mp, version: string) {
  const v = await uploadAndSubmit(mp, version);
  await reaches(releaseWorkflowId(v.versionId), 'in_review');
  await v.release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
  await v.release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev', plan: now100 }] });
  await eventually(async () => (await mp.handle.query(miniProgramStatusQuery)).liveVersionId === v.versionId, { what: `${version} live` });
  return v;
}

describe('review', () => {
  it('needs N distinct reviewers (never the submitter, never the same one twice), then rolls out stage by stage by itself', async () => {
    const mp = await newMiniProgram();
    const { versionId, release } = await uploadAndSubmit(mp, '1.0.0', { approvals: 2 });
    const id = releaseWorkflowId(versionId);
    const inReview = await reaches(id, 'in_review');
    expect(inReview.requiredApprovals).toBe(2);
    expect(inReview.slaDueAt).not.toBeNull();
    expect((await refusal(release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_dev' }] }))).type).toBe(FailureType.forbiddenActor);
    const first = await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev', comment: 'ok by me' }] });
    expect(first.status).toBe('in_review');
    expect(first.approvals.map((a) => a.actorId)).toEqual(['usr_rev']);
    expect((await refusal(release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] }))).type).toBe('already_approved');
    const second = await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev2' }] });
    expect(second.status).toBe('approved');
    expect(second.decidedBy).toBe('usr_rev2');
    const tooEarly = await refusal(release.executeUpdate(advanceUpdate, { args: [{ actorId: 'usr_dev' }] }));
    expect(tooEarly.type).toBe(FailureType.wrongState);

    const plan: RolloutStage[] = [{ kind: 'whitelist', percent: 0, soakMs: 250 }, { kind: 'percent', percent: 20, soakMs: 250 }, { kind: 'percent', percent: 100, soakMs: 250 }];
    const started = await release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev', plan }] });
    expect(started.status).toBe('rolling_out');
    expect(started.rollout).toMatchObject({ stageIndex: 0, whitelist: true, percent: 0 });
    const done = await release.result() as Awaited<ReturnType<typeof stateOf>>;
    expect(done.status).toBe('released');
    expect(done.timeline.map((t) => t.action)).toEqual([
      'submitted', 'review_requested', 'approval_recorded', 'approved', 'rollout_started', 'stage_advanced', 'stage_advanced', 'released',
    ]);
    // Each automatic advance carries the health numbers it was judged on.
    expect(done.timeline.filter((t) => t.action === 'stage_advanced').every((t) => (t.data?.health as HealthReport)?.verdict === 'green')).toBe(true);
    // What the runtime was told, in order: testers, then 20%, then everyone.
    const served = projections(id).filter((p) => p.rollout).map((p) => `${p.rollout!.status}:${p.rollout!.percent}:${p.rollout!.whitelist}`);
    expect([...new Set(served)]).toEqual(['rolling_out:0:true', 'rolling_out:20:true', 'rolling_out:100:true', 'completed:100:true']);
    const seqs = projections(id).map((p) => p.pipeline.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const s = await eventually(async () => {
      const st = await mp.handle.query(miniProgramStatusQuery);
      return st.liveVersionId === versionId && !st.activePipelineId ? st : null;
    }, { what: 'live' });
    expect(s.status).toBe('released');
    expect(mails((m) => m.dedupeKey === `${id}:decision`)).toHaveLength(1);
    await maybeRecordHistory(client, id, 'v2-release-two-approvals-staged');
  });

  it('rejects with a reason code and comment (both required), tells the submitter, and frees the lane', async () => {
    const mp = await newMiniProgram();
    const v1 = await uploadAndSubmit(mp, '1.0.0');
    const id = releaseWorkflowId(v1.versionId);
    await reaches(id, 'in_review');
    const v2 = await upload(mp, '1.0.1');
    expect((await refusal(mp.handle.executeUpdate(submitUpdate, { args: [{ versionId: v2, actorId: 'usr_dev' }] }))).type).toBe(FailureType.wrongState);
    const noReason = await refusal(v1.release.executeUpdate(rejectUpdate, { args: [{ actorId: 'usr_rev', reasonCode: '', reasonLabel: '', comment: 'x' }] }));
    expect(noReason.type).toBe('reason_required');
    const attachment = { name: 'crash.png', sha256: 'c'.repeat(64), size: 2048, contentType: 'image/png' };
    const rejected = await v1.release.executeUpdate(rejectUpdate, { args: [{ actorId: 'usr_rev', reasonCode: 'crash_or_bug', reasonLabel: 'Crashes or functional bug', comment: 'cart page crashes', attachment }] });
    expect(rejected.status).toBe('rejected');
    expect(rejected.rejection).toMatchObject({ reasonCode: 'crash_or_bug', comment: 'cart page crashes', attachment });
    await eventually(async () => !(await mp.handle.query(miniProgramStatusQuery)).activePipelineId, { what: 'the lane to free' });
    await mp.handle.executeUpdate(submitUpdate, { args: [{ versionId: v2, actorId: 'usr_dev', policy: { requiredApprovals: 1 }, config: config() }] });
    await reaches(releaseWorkflowId(v2), 'in_review');
    const told = await eventually(() => mails((m) => m.dedupeKey === `${id}:decision`)[0] ?? null, { what: 'the decision mail' });
    expect(told.audience).toBe('user');
    expect(told.paragraphs.join(' ')).toContain('Crashes or functional bug');
    await maybeRecordHistory(client, id, 'v2-release-rejected');
  });

  it('can be withdrawn while in review; an invalid package ends as invalid', async () => {
    const mp = await newMiniProgram();
    const { versionId, release } = await uploadAndSubmit(mp, '1.0.0');
    await reaches(releaseWorkflowId(versionId), 'in_review');
    expect((await release.executeUpdate(withdrawUpdate, { args: [{ actorId: 'usr_dev' }] })).status).toBe('withdrawn');
    expect(((await release.result()) as { status: string }).status).toBe('withdrawn');
    const bad = await uploadAndSubmit(mp, '1.0.1', { sha: 'bad'.padEnd(64, '0') });
    const result = (await bad.release.result()) as Awaited<ReturnType<typeof stateOf>>;
    expect(result.status).toBe('invalid');
    expect(result.timeline.at(-1)?.comment).toContain('package_page_missing');
  });

  it('reminds reviewers after the reminder time, then escalates to Admins, and says so on the timeline', async () => {
    const mp = await newMiniProgram();
    const { versionId, release } = await uploadAndSubmit(mp, '1.0.0', { cfg: { reviewReminderMs: 300, reviewEscalationMs: 300 } });
    const id = releaseWorkflowId(versionId);
    const s = await eventually(async () => ((await stateOf(id)).escalatedAt ? stateOf(id) : null), { what: 'the escalation' });
    expect(s.remindedAt! < s.escalatedAt!).toBe(true);
    expect(s.timeline.map((t) => t.action)).toEqual(['submitted', 'review_requested', 'sla_reminder_sent', 'sla_escalated']);
    const sent = mails((m) => m.dedupeKey.startsWith(id));
    expect(sent.map((m) => [m.audience, m.dedupeKey.split(':').at(-1)])).toEqual([['reviewers', 'review-requested'], ['reviewers', 'review-reminder'], ['admins', 'review-escalation']]);
    expect(sent.every((m) => m.userId === 'usr_dev' || m.audience === 'admins')).toBe(true);
    await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    await maybeRecordHistory(client, id, 'v2-release-reminded-escalated');
  });
});

describe('staged rollout', () => {
  it('pauses, resumes, advances by hand and aborts; the cohort goes back to the live version', async () => {
    const mp = await newMiniProgram();
    await releaseNow(mp, '1.0.0');
    const { versionId, release } = await uploadAndSubmit(mp, '1.1.0');
    const id = releaseWorkflowId(versionId);
    await reaches(id, 'in_review');
    await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    const plan: RolloutStage[] = [1, 5, 20, 100].map((percent) => ({ kind: 'percent', percent, soakMs: 60_000 }));
    await release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev', plan }] });
    const paused = await release.executeUpdate(pauseUpdate, { args: [{ actorId: 'usr_dev', comment: 'waiting for support' }] });
    expect(paused.status).toBe('paused');
    expect(paused.rollout!.remainingSoakMs).toBeGreaterThan(50_000);
    expect(paused.rollout!.soakEndsAt).toBeNull();
    expect((await refusal(release.executeUpdate(pauseUpdate, { args: [{ actorId: 'usr_dev' }] }))).type).toBe(FailureType.wrongState);
    const resumed = await release.executeUpdate(resumeUpdate, { args: [{ actorId: 'usr_dev' }] });
    expect(resumed.status).toBe('rolling_out');
    const advanced = await release.executeUpdate(advanceUpdate, { args: [{ actorId: 'usr_dev' }] });
    expect(advanced.rollout).toMatchObject({ stageIndex: 1, percent: 5 });
    const aborted = await release.executeUpdate(abortUpdate, { args: [{ actorId: 'usr_dev', comment: 'wrong build' }] });
    expect(aborted.status).toBe('aborted');
    expect(aborted.rollout!.percent).toBe(0);
    await release.result();
    const last = projections(id).at(-1)!;
    expect(last.rollout).toMatchObject({ status: 'aborted', percent: 0 });
    expect(last.rollout!.baselineVersionId).toBe((await mp.handle.query(miniProgramStatusQuery)).liveVersionId);
    const s = await eventually(async () => {
      const st = await mp.handle.query(miniProgramStatusQuery);
      return !st.activePipelineId ? st : null;
    }, { what: 'the lane to free' });
    expect(s.liveVersion).toBe('1.0.0');
    await maybeRecordHistory(client, id, 'v2-rollout-pause-resume-advance-abort');
  });

  it('halts by itself when the crash rate passes the limit, records the numbers and mails the submitter and Admins', async () => {
    const mp = await newMiniProgram();
    await releaseNow(mp, '1.0.0');
    const { versionId, release } = await uploadAndSubmit(mp, '1.1.0');
    const id = releaseWorkflowId(versionId);
    await reaches(id, 'in_review');
    await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    await release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev', plan: [{ kind: 'percent', percent: 5, soakMs: 60_000 }, { kind: 'percent', percent: 100, soakMs: 60_000 }] }] });
    fake.crashes.set(versionId, { launches: 400, crashes: 12 }); // 3% crash rate
    const halted = (await release.result()) as Awaited<ReturnType<typeof stateOf>>;
    expect(halted.status).toBe('halted');
    const entry = halted.timeline.at(-1)!;
    expect(entry.action).toBe('halted');
    expect(entry.data?.health).toMatchObject({ launches: 400, crashes: 12, verdict: 'red' });
    expect(entry.comment).toContain('3.00%');
    expect(projections(id).at(-1)!.rollout).toMatchObject({ status: 'halted', percent: 0 });
    await eventually(() => mails((m) => m.dedupeKey.startsWith(`${id}:halted`)).length === 2, { what: 'the halt mails' });
    expect(mails((m) => m.dedupeKey.startsWith(`${id}:halted`)).map((m) => m.audience).sort()).toEqual(['admins', 'user']);
    expect((await mp.handle.query(miniProgramStatusQuery)).liveVersion).toBe('1.0.0');
    await maybeRecordHistory(client, id, 'v2-rollout-halted');
  });

  it('lets a hotfix take over a rollout in progress (the older rollout is superseded)', async () => {
    const mp = await newMiniProgram();
    await releaseNow(mp, '1.0.0');
    const v2 = await uploadAndSubmit(mp, '1.1.0');
    await reaches(releaseWorkflowId(v2.versionId), 'in_review');
    const v3Early = await upload(mp, '1.1.1');
    // Not while in review, even as a hotfix.
    expect((await refusal(mp.handle.executeUpdate(submitUpdate, { args: [{ versionId: v3Early, actorId: 'usr_dev', hotfix: true }] }))).type).toBe(FailureType.wrongState);
    await v2.release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    await v2.release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev', plan: [{ kind: 'percent', percent: 10, soakMs: 60_000 }, { kind: 'percent', percent: 100, soakMs: 0 }] }] });
    // The entity hears of the rollout by signal, a moment after the command answered.
    await eventually(async () => (await mp.handle.query(miniProgramStatusQuery)).versions.find((v) => v.versionId === v2.versionId)?.status === 'rolling_out', { what: 'the entity to see the rollout' });
    await mp.handle.executeUpdate(submitUpdate, { args: [{ versionId: v3Early, actorId: 'usr_dev', hotfix: true, policy: { requiredApprovals: 1 }, config: config() }] });
    const old = (await v2.release.result()) as Awaited<ReturnType<typeof stateOf>>;
    expect(old.status).toBe('superseded');
    expect(old.timeline.at(-1)!.comment).toContain('1.1.1');
    const hot = await reaches(releaseWorkflowId(v3Early), 'in_review');
    expect(hot.hotfix).toBe(true);
    const s = await mp.handle.query(miniProgramStatusQuery);
    expect(s.activeVersionId).toBe(v3Early);
    expect(s.liveVersion).toBe('1.0.0');
    await maybeRecordHistory(client, miniProgramWorkflowId(mp.miniProgramId), 'v2-mini-program-hotfix-takeover');
  });
});

describe('rollback, offline, remove', () => {
  it('rolls back to any earlier live version, as often as needed, reviewed when the policy says so', async () => {
    const mp = await newMiniProgram();
    const v1 = await releaseNow(mp, '1.0.0');
    const v2 = await releaseNow(mp, '1.1.0');
    await releaseNow(mp, '1.2.0');
    const unreleased = await upload(mp, '1.3.0');
    const never = await refusal(mp.handle.executeUpdate(rollbackUpdate, { args: [{ requestId: uid('rb'), targetVersionId: unreleased, actorId: 'usr_dev', reason: 'x', policy: { requiredApprovals: 0 }, config: config() }] }));
    expect(never.type).toBe(FailureType.wrongState);
    // Straight back two versions, no review.
    const r1 = await mp.handle.executeUpdate(rollbackUpdate, { args: [{ requestId: uid('rb'), targetVersionId: v1.versionId, actorId: 'usr_dev', reason: 'checkout broken', policy: { requiredApprovals: 0 }, config: config() }] });
    expect(r1.kind).toBe('rollback');
    const done = (await client.workflow.getHandle(r1.pipelineId).result()) as Awaited<ReturnType<typeof stateOf>>;
    expect(done.status).toBe('released');
    expect(done.timeline.map((t) => t.action)).toEqual(['requested', 'approved', 'rolled_back']);
    expect(projections(r1.pipelineId).at(-1)!.rollout).toMatchObject({ versionId: v1.versionId, status: 'completed', percent: 100 });
    await eventually(async () => (await mp.handle.query(miniProgramStatusQuery)).liveVersionId === v1.versionId, { what: 'v1 live again' });
    // Then to v2, with a review this time.
    const r2 = await mp.handle.executeUpdate(rollbackUpdate, { args: [{ requestId: uid('rb'), targetVersionId: v2.versionId, actorId: 'usr_dev', reason: 'v1 lacks the promo', policy: { requiredApprovals: 1 }, config: config() }] });
    await reaches(r2.pipelineId, 'in_review');
    await client.workflow.getHandle(r2.pipelineId).executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    await eventually(async () => (await mp.handle.query(miniProgramStatusQuery)).liveVersionId === v2.versionId, { what: 'v2 live again' });
    const s = await mp.handle.query(miniProgramStatusQuery);
    expect(s.versions.find((v) => v.versionId === v1.versionId)?.status).toBe('superseded');
    await maybeRecordHistory(client, r2.pipelineId, 'v2-rollback-reviewed');
  });

  it('takes a mini program offline (with review) and removes it only when offline', async () => {
    const mp = await newMiniProgram();
    await releaseNow(mp, '1.0.0');
    expect((await refusal(mp.handle.executeUpdate(removeUpdate, { args: [{ actorId: 'usr_admin' }] }))).type).toBe(FailureType.wrongState);
    const off = await mp.handle.executeUpdate(takeOfflineUpdate, { args: [{ requestId: uid('off'), actorId: 'usr_admin', reason: 'licence expired', policy: { requiredApprovals: 1 }, config: config() }] });
    await reaches(off.pipelineId, 'in_review');
    await client.workflow.getHandle(off.pipelineId).executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    await eventually(async () => (await mp.handle.query(miniProgramStatusQuery)).status === 'offline', { what: 'offline' });
    const removed = await mp.handle.executeUpdate(removeUpdate, { args: [{ actorId: 'usr_admin', reason: 'closing the shop' }] });
    expect(removed.status).toBe('removed');
    const v = await upload(mp, '2.0.0').catch(() => null);
    if (v) expect((await refusal(mp.handle.executeUpdate(submitUpdate, { args: [{ versionId: v, actorId: 'usr_dev' }] }))).message).toContain('removed');
  });
});

describe('stuck pipelines', () => {
  it('parks as stuck when a step exhausts its retries, and goes on after an operator retries it', async () => {
    const mp = await newMiniProgram();
    const sha = `d${uid()}`.padEnd(64, '0');
    fake.storageDown.add(sha);
    const { versionId, release } = await uploadAndSubmit(mp, '1.0.0', { sha });
    const id = releaseWorkflowId(versionId);
    const stuck = await reaches(id, 'stuck');
    expect(stuck.stuck).toMatchObject({ step: 'check the package', resumeStatus: 'validating' });
    expect(stuck.stuck!.error).toContain('storage');
    expect(projections(id).at(-1)!.pipeline.status).toBe('stuck');
    fake.storageDown.delete(sha);
    const retried = await release.executeUpdate(retryStepUpdate, { args: [{ actorId: 'usr_operator' }] });
    expect(retried.status).toBe('validating');
    await reaches(id, 'in_review');
    // ... and on to the end.
    await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    await release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev', plan: now100 }] });
    const done = (await release.result()) as Awaited<ReturnType<typeof stateOf>>;
    expect(done.status).toBe('released');
    expect(done.timeline.map((t) => t.action)).toEqual(['submitted', 'stuck', 'step_retried', 'review_requested', 'approved', 'rollout_started', 'released']);
    expect(done.timeline[1]!.data).toMatchObject({ step: 'check the package' });
    await maybeRecordHistory(client, id, 'v2-release-stuck-retried');
  });

  it('can be aborted while stuck', async () => {
    const mp = await newMiniProgram();
    const sha = `e${uid()}`.padEnd(64, '0');
    fake.storageDown.add(sha);
    const { versionId, release } = await uploadAndSubmit(mp, '1.0.0', { sha });
    await reaches(releaseWorkflowId(versionId), 'stuck');
    const aborted = await release.executeUpdate(abortUpdate, { args: [{ actorId: 'usr_operator', comment: 'storage migration' }] });
    expect(aborted.status).toBe('aborted');
    expect(((await release.result()) as { status: string }).status).toBe('aborted');
    await eventually(async () => !(await mp.handle.query(miniProgramStatusQuery)).activePipelineId, { what: 'the lane to free' });
    await maybeRecordHistory(client, releaseWorkflowId(versionId), 'v2-release-stuck-aborted');
  });
});
