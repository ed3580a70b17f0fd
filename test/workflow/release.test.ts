import type { Client } from '@temporalio/client';
import { ApplicationFailure as ActivityAppFailure } from '@temporalio/activity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { FailureType } from '../../workflows/contracts/errors.js';
import {
  miniProgramStatusQuery, miniProgramWorkflowId, submitUpdate, syncUpdate, uploadVersionUpdate, type MiniProgramInput,
} from '../../workflows/contracts/mini-program.js';
import {
  approveUpdate, rejectUpdate, releaseStatusQuery, releaseUpdate, releaseWorkflowId, withdrawUpdate, type ReleaseStatus,
} from '../../workflows/contracts/release.js';
import { eventually } from '../helpers/eventually.js';
import { maybeRecordHistory, refusal, startTestWorker, uid } from '../helpers/workflow-env.js';

/** Plain-function activities that record what the workflows asked for. */
function fakeActivities() {
  const calls: { name: string; input: any }[] = [];
  const rec = (name: string) => async (input: any) => void calls.push({ name, input });
  const activities: Partial<Activities> = {
    projectMiniProgram: rec('projectMiniProgram'),
    projectNewVersion: rec('projectNewVersion'),
    projectVersionStatus: rec('projectVersionStatus'),
    notifySubmitter: rec('notifySubmitter'),
    async notifyReviewers(input) {
      calls.push({ name: 'notifyReviewers', input });
      return { sent: 2, skipped: 0 };
    },
    async validateStoredPackage(input) {
      calls.push({ name: 'validateStoredPackage', input });
      if (input.packageSha256.startsWith('bad')) throw ActivityAppFailure.nonRetryable('package_page_missing: pages/index/index.js is missing', FailureType.packageInvalid);
      return { pageCount: 12 };
    },
  };
  return { calls, activities };
}

const fake = fakeActivities();
let env: Awaited<ReturnType<typeof startTestWorker>>;
let client: Client;

beforeAll(async () => {
  env = await startTestWorker(fake.activities);
  client = env.client;
});
afterAll(async () => env?.stop());

async function newMiniProgram(reviewReminderMs = 0) {
  const miniProgramId = uid('mp_');
  const input: MiniProgramInput = {
    miniProgramId, workspaceId: uid('ws_'), name: 'Test Mall', description: '', category: 'shopping', icon: null,
    createdBy: 'usr_dev', createdAt: new Date().toISOString(), releaseConfig: { reviewReminderMs },
  };
  const handle = await client.workflow.start('miniProgramEntity', { workflowId: miniProgramWorkflowId(miniProgramId), taskQueue: env.taskQueue, args: [input] });
  await handle.executeUpdate(syncUpdate, { args: [] });
  return { miniProgramId, workspaceId: input.workspaceId, handle };
}

async function uploadAndSubmit(mp: Awaited<ReturnType<typeof newMiniProgram>>, version: string, opts: { sha?: string; submitter?: string } = {}) {
  const versionId = uid('ver_');
  await mp.handle.executeUpdate(uploadVersionUpdate, {
    args: [{ versionId, version, packageSha256: opts.sha ?? 'a'.repeat(64), packageSize: 1000, pageCount: 12, notes: '', actorId: opts.submitter ?? 'usr_dev' }],
  });
  await mp.handle.executeUpdate(submitUpdate, { args: [{ versionId, actorId: opts.submitter ?? 'usr_dev' }] });
  return { versionId, release: client.workflow.getHandle(releaseWorkflowId(versionId)) };
}

async function statusOf(versionId: string) {
  return (await client.workflow.getHandle(releaseWorkflowId(versionId)).query(releaseStatusQuery)).status;
}
const reaches = (versionId: string, status: ReleaseStatus) => eventually(async () => (await statusOf(versionId)) === status, { what: `${versionId} to be ${status}` });

describe('release pipeline', () => {
  it('goes upload → review → approved → released, and the mini program shows it live', async () => {
    const mp = await newMiniProgram();
    const { versionId, release } = await uploadAndSubmit(mp, '1.0.0');
    await reaches(versionId, 'in_review');
    const approved = await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev', comment: 'looks good' }] });
    expect(approved.status).toBe('approved');
    expect(approved.decidedBy).toBe('usr_rev');
    const released = await release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev' }] });
    expect(released.status).toBe('released');
    expect(released.timeline.map((t) => t.action)).toEqual(['submitted', 'review_requested', 'approved', 'released']);
    const mpState = await eventually(async () => {
      const s = await mp.handle.query(miniProgramStatusQuery);
      return s.liveVersionId === versionId && s.activeVersionId === null ? s : null;
    }, { what: 'the version to go live' });
    expect(mpState.status).toBe('released');
    expect(mpState.versions[0]?.status).toBe('released');
    const reviewerMails = fake.calls.filter((c) => c.name === 'notifyReviewers' && c.input.versionId === versionId);
    expect(reviewerMails).toHaveLength(1);
    // Read-model writes for this version rise strictly in seq.
    const seqs = fake.calls.filter((c) => c.name === 'projectVersionStatus' && c.input.versionId === versionId).map((c) => c.input.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(await release.result()).toMatchObject({ status: 'released' });
    await maybeRecordHistory(client, releaseWorkflowId(versionId), 'release-approved-released');
  });

  it('refuses a reviewer approving their own submission (forbidden_actor) and a wrong state (wrong_state with the status)', async () => {
    const mp = await newMiniProgram();
    const { versionId, release } = await uploadAndSubmit(mp, '1.0.0', { submitter: 'usr_both' });
    await reaches(versionId, 'in_review');
    const own = await refusal(release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_both' }] }));
    expect(own.type).toBe(FailureType.forbiddenActor);
    const tooEarly = await refusal(release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev' }] }));
    expect(tooEarly.type).toBe(FailureType.wrongState);
    expect(tooEarly.details?.[0]).toEqual({ status: 'in_review' });
    await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    const twice = await refusal(release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev2' }] }));
    expect(twice.type).toBe(FailureType.wrongState);
    expect(twice.details?.[0]).toEqual({ status: 'approved' });
  });

  it('treats a repeated update id as the same command (Idempotency-Key)', async () => {
    const mp = await newMiniProgram();
    const { versionId, release } = await uploadAndSubmit(mp, '2.0.0');
    await reaches(versionId, 'in_review');
    const first = await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }], updateId: 'key-1' });
    const again = await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }], updateId: 'key-1' });
    expect(again.seq).toBe(first.seq);
    const state = await release.query(releaseStatusQuery);
    expect(state.timeline.filter((t) => t.action === 'approved')).toHaveLength(1);
  });

  it('needs a comment to reject, frees the lane after a rejection, and refuses a second submission while one is in review', async () => {
    const mp = await newMiniProgram();
    const v1 = await uploadAndSubmit(mp, '1.0.0');
    await reaches(v1.versionId, 'in_review');
    const v2Id = uid('ver_');
    await mp.handle.executeUpdate(uploadVersionUpdate, { args: [{ versionId: v2Id, version: '1.0.1', packageSha256: 'a'.repeat(64), packageSize: 1, pageCount: 1, notes: '', actorId: 'usr_dev' }] });
    const busy = await refusal(mp.handle.executeUpdate(submitUpdate, { args: [{ versionId: v2Id, actorId: 'usr_dev' }] }));
    expect(busy.type).toBe(FailureType.wrongState);
    const noComment = await refusal(v1.release.executeUpdate(rejectUpdate, { args: [{ actorId: 'usr_rev', comment: '  ' }] }));
    expect(noComment.type).toBe('comment_required');
    const rejected = await v1.release.executeUpdate(rejectUpdate, { args: [{ actorId: 'usr_rev', comment: 'crashes on the cart page' }] });
    expect(rejected.status).toBe('rejected');
    expect(rejected.decisionComment).toBe('crashes on the cart page');
    await eventually(async () => (await mp.handle.query(miniProgramStatusQuery)).activeVersionId === null, { what: 'the lane to free' });
    await mp.handle.executeUpdate(submitUpdate, { args: [{ versionId: v2Id, actorId: 'usr_dev' }] });
    await reaches(v2Id, 'in_review');
    expect(fake.calls.some((c) => c.name === 'notifySubmitter' && c.input.outcome === 'rejected' && c.input.comment === 'crashes on the cart page')).toBe(true);
    await maybeRecordHistory(client, releaseWorkflowId(v1.versionId), 'release-rejected');
  });

  it('refuses a duplicate version number', async () => {
    const mp = await newMiniProgram();
    await uploadAndSubmit(mp, '3.1.4');
    const dup = await refusal(
      mp.handle.executeUpdate(uploadVersionUpdate, { args: [{ versionId: uid('ver_'), version: '3.1.4', packageSha256: 'a'.repeat(64), packageSize: 1, pageCount: 1, notes: '', actorId: 'usr_dev' }] }),
    );
    expect(dup.type).toBe(FailureType.conflict);
  });

  it('ends as invalid when the stored package fails validation', async () => {
    const mp = await newMiniProgram();
    const { versionId, release } = await uploadAndSubmit(mp, '1.0.0', { sha: 'bad'.padEnd(64, '0') });
    const result = await release.result();
    expect(result.status).toBe('invalid');
    expect(result.timeline.at(-1)?.comment).toContain('package_page_missing');
    expect(fake.calls.some((c) => c.name === 'notifyReviewers' && c.input.versionId === versionId)).toBe(false);
  });

  it('can be withdrawn while in review, and then refuses approval', async () => {
    const mp = await newMiniProgram();
    const { versionId, release } = await uploadAndSubmit(mp, '1.0.0');
    await reaches(versionId, 'in_review');
    const s = await release.executeUpdate(withdrawUpdate, { args: [{ actorId: 'usr_dev' }] });
    expect(s.status).toBe('withdrawn');
    // The pipeline has ended, so the server itself refuses the update (the API answers 409 from the read model).
    const late = await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] }).then(() => null, (e: Error) => e);
    expect(late).toBeInstanceOf(Error); // refused by the validator, or by the server once the run has closed
    expect((await release.result()).status).toBe('withdrawn');
    await maybeRecordHistory(client, releaseWorkflowId(versionId), 'release-withdrawn');
  });

  it('marks the previous live version superseded when a newer one is released', async () => {
    const mp = await newMiniProgram();
    const v1 = await uploadAndSubmit(mp, '1.0.0');
    await reaches(v1.versionId, 'in_review');
    await v1.release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    await v1.release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev' }] });
    await eventually(async () => (await mp.handle.query(miniProgramStatusQuery)).activeVersionId === null, { what: 'v1 to finish' });
    const v2 = await uploadAndSubmit(mp, '1.1.0');
    await reaches(v2.versionId, 'in_review');
    await v2.release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_rev' }] });
    await v2.release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_dev' }] });
    const state = await eventually(async () => {
      const s = await mp.handle.query(miniProgramStatusQuery);
      return s.liveVersionId === v2.versionId ? s : null;
    }, { what: 'v2 to go live' });
    expect(state.liveVersion).toBe('1.1.0');
    expect(state.versions.find((v) => v.versionId === v1.versionId)?.status).toBe('superseded');
    const superseded = fake.calls.find((c) => c.name === 'projectVersionStatus' && c.input.versionId === v1.versionId && c.input.status === 'superseded');
    const lastV1Release = fake.calls.filter((c) => c.name === 'projectVersionStatus' && c.input.versionId === v1.versionId && c.input.status === 'released').at(-1);
    expect(superseded?.input.seq).toBeGreaterThan(lastV1Release?.input.seq);
    await maybeRecordHistory(client, miniProgramWorkflowId(mp.miniProgramId), 'mini-program-two-releases');
  });

  it('reminds reviewers once when a submission waits past the reminder time', async () => {
    const mp = await newMiniProgram(300);
    const { versionId } = await uploadAndSubmit(mp, '1.0.0');
    await eventually(() => fake.calls.filter((c) => c.name === 'notifyReviewers' && c.input.versionId === versionId).length === 2, { what: 'the reminder' });
    const reminder = fake.calls.filter((c) => c.name === 'notifyReviewers' && c.input.versionId === versionId)[1];
    expect(reminder?.input.dedupeKey).toContain('review-reminder');
  });
});
