import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { featureDiff, type FeatureSnapshot } from '../../activities/features.js';
import {
  approveActivationUpdate, approveFeatureChangeUpdate, featureActivationStatusQuery, featureActivationWorkflowId, featureActivationWorkflowType, featureChangeStatusQuery,
  featureChangeWorkflowId, featureChangeWorkflowType, rejectActivationUpdate, rejectFeatureChangeUpdate, withdrawActivationUpdate, withdrawFeatureChangeUpdate,
  type FeatureActivationInput, type FeatureActivationState, type FeatureChangeInput, type FeatureChangeState, type FeatureDiff, type FeatureFields,
} from '../../workflows/contracts/feature-change.js';
import { FailureType } from '../../workflows/contracts/errors.js';
import { eventually } from '../helpers/eventually.js';
import { maybeRecordHistory, refusal, startTestWorker, uid } from '../helpers/workflow-env.js';

/**
 * Plain-function activities over an in-memory feature store that behave like the real ones where
 * it matters: applying a change is idempotent per change id, the revision rises by one, the diff is
 * taken against the stored feature (the real pure featureDiff).
 */
function fakeActivities() {
  const calls: { name: string; input: any }[] = [];
  const features = new Map<string, FeatureSnapshot & { revision: number }>();
  const revisions = new Map<string, { featureId: string; revision: number; diff: FeatureDiff; snapshot: FeatureSnapshot; approvedBy: string }>();
  const changes = new Map<string, FeatureChangeInput>();
  const held = new Map<string, Promise<void>>();
  /** Holds the mail of that dedupe key until the returned function is called. */
  const hold = (dedupeKey: string) => {
    let release!: () => void;
    held.set(dedupeKey, new Promise<void>((r) => (release = r)));
    return () => {
      held.delete(dedupeKey);
      release();
    };
  };
  const activities: Partial<Activities> = {
    async projectFeatureChange(input) {
      calls.push({ name: 'projectFeatureChange', input });
    },
    async applyFeatureChange(input) {
      calls.push({ name: 'applyFeatureChange', input });
      const done = revisions.get(input.changeId);
      if (done) return { revision: done.revision, diff: done.diff };
      const change = changes.get(input.changeId)!;
      if (change.proposal.key === 'taken') throw ApplicationFailure.nonRetryable('a feature with the key taken exists already', FailureType.conflict);
      const current = features.get(change.featureId);
      const before: FeatureSnapshot | null = current ? { key: current.key, name: current.name, description: current.description, accessMode: current.accessMode, jsapis: current.jsapis, status: current.status } : null;
      const after: FeatureSnapshot = change.kind === 'archive' ? { ...before!, status: 'archived' } : { ...change.proposal, status: 'active' };
      const diff = featureDiff(before, after);
      const revision = (current?.revision ?? 0) + 1;
      features.set(change.featureId, { ...after, revision });
      revisions.set(input.changeId, { featureId: change.featureId, revision, diff, snapshot: after, approvedBy: input.actorId });
      return { revision, diff };
    },
    async projectFeatureActivation(input) {
      calls.push({ name: 'projectFeatureActivation', input });
    },
    async notifyFeature(input) {
      calls.push({ name: 'notifyFeature', input });
      // A held mail keeps its workflow open, so a command after the decision meets the workflow, not a closed run.
      const hold = held.get(input.dedupeKey);
      if (hold) await hold;
      return { sent: 1, skipped: 0 };
    },
  };
  return { calls, features, revisions, changes, activities, hold };
}

const fake = fakeActivities();
let env: Awaited<ReturnType<typeof startTestWorker>>;
let client: Client;

beforeAll(async () => {
  env = await startTestWorker(fake.activities);
  client = env.client;
});
afterAll(async () => env?.stop());

const developer = 'usr_dev';
const reviewer = 'usr_reviewer';
const workspaceId = 'ws_features';

const base: FeatureFields = { key: 'location', name: 'Location', description: 'Where the user is', accessMode: 'direct', jsapis: ['getLocation', 'openLocation'] };

async function propose(o: Partial<FeatureChangeInput> = {}) {
  const input: FeatureChangeInput = {
    changeId: uid('fchg_'), workspaceId, featureId: uid('feat_'), kind: 'add', proposal: base, baseRevision: 0, proposedBy: developer, comment: 'for the store finder', ttlMs: 60_000, ...o,
  };
  fake.changes.set(input.changeId, input);
  const handle = await client.workflow.start<(i: FeatureChangeInput) => Promise<FeatureChangeState>>(featureChangeWorkflowType, {
    workflowId: featureChangeWorkflowId(input.changeId), taskQueue: env.taskQueue, args: [input],
  });
  await mailsOf(input.changeId, 1);
  return { input, handle };
}

const idOf = (c: { input: any }) => c.input.state?.changeId ?? c.input.changeId ?? String(c.input.dedupeKey ?? '').split(':')[1];
const callsOf = (name: string, id: string) => fake.calls.filter((c) => c.name === name && idOf(c) === id);
const mailsOf = (id: string, count: number) =>
  eventually(() => {
    const m = callsOf('notifyFeature', id);
    return m.length >= count ? m : null;
  }, { what: `${count} mail(s) for ${id}` });
const auditActions = (id: string) => callsOf('projectFeatureChange', id).map((c) => c.input.audit.action as string);

describe('featureChange', () => {
  it('an approved addition is revision 1 and an approved edit revision 2, each with its diff; the proposer is mailed', async () => {
    const add = await propose();
    const [asked] = await mailsOf(add.input.changeId, 1);
    expect(asked!.input).toMatchObject({ audience: 'reviewers', userId: developer, kind: 'review_requests', workspaceId });
    expect(await add.handle.query(featureChangeStatusQuery)).toMatchObject({ status: 'pending', kind: 'add' });
    const approved = await add.handle.executeUpdate(approveFeatureChangeUpdate, { args: [{ actorId: reviewer }] });
    expect(approved).toMatchObject({ status: 'approved', decidedBy: reviewer, revision: 1 });
    expect(approved.diff).toEqual({
      fields: { key: { from: null, to: 'location' }, name: { from: null, to: 'Location' }, description: { from: null, to: 'Where the user is' }, accessMode: { from: null, to: 'direct' }, status: { from: null, to: 'active' } },
      jsapis: { added: ['getLocation', 'openLocation'], removed: [] },
    });
    expect((await add.handle.result()).status).toBe('approved');
    expect(callsOf('notifyFeature', add.input.changeId).map((c) => [c.input.audience, String(c.input.dedupeKey).split(':').pop()])).toEqual([['reviewers', 'proposed'], ['proposer', 'approved']]);
    // The approval is one apply; its audit line goes with it (not a second projection).
    expect(callsOf('applyFeatureChange', add.input.changeId)).toHaveLength(1);
    expect(auditActions(add.input.changeId)).toEqual(['proposed']);
    await maybeRecordHistory(client, add.handle.workflowId, 'feature-change-add-approved');

    const edit = await propose({ featureId: add.input.featureId, kind: 'edit', baseRevision: 1, proposal: { ...base, name: 'Location & maps', accessMode: 'activation', jsapis: ['chooseLocation', 'getLocation'] } });
    const second = await edit.handle.executeUpdate(approveFeatureChangeUpdate, { args: [{ actorId: reviewer, reason: 'fine' }] });
    expect(second).toMatchObject({ status: 'approved', revision: 2, reason: 'fine' });
    expect(second.diff).toEqual({ fields: { name: { from: 'Location', to: 'Location & maps' }, accessMode: { from: 'direct', to: 'activation' } }, jsapis: { added: ['chooseLocation'], removed: ['openLocation'] } });
    expect(fake.features.get(add.input.featureId)).toMatchObject({ revision: 2, name: 'Location & maps' });
    await edit.handle.result();
    await maybeRecordHistory(client, edit.handle.workflowId, 'feature-change-edit-approved');
  });

  it('the proposer can neither approve nor reject their own change (own_change); a decided change refuses more (wrong_state)', async () => {
    const { handle } = await propose();
    const release = fake.hold(`${handle.workflowId}:approved`);
    expect((await refusal(handle.executeUpdate(approveFeatureChangeUpdate, { args: [{ actorId: developer }] }))).type).toBe('own_change');
    expect((await refusal(handle.executeUpdate(rejectFeatureChangeUpdate, { args: [{ actorId: developer, reason: 'meh' }] }))).type).toBe('own_change');
    expect((await handle.query(featureChangeStatusQuery)).status).toBe('pending');
    await handle.executeUpdate(approveFeatureChangeUpdate, { args: [{ actorId: reviewer }] });
    expect((await refusal(handle.executeUpdate(rejectFeatureChangeUpdate, { args: [{ actorId: 'usr_other', reason: 'late' }] }))).type).toBe(FailureType.wrongState);
    expect((await refusal(handle.executeUpdate(withdrawFeatureChangeUpdate, { args: [{ actorId: developer }] }))).type).toBe(FailureType.wrongState);
    release();
    expect((await handle.result()).status).toBe('approved');
  });

  it('reject needs a reason, ends the change and tells the proposer why', async () => {
    const { input, handle } = await propose({ proposal: { ...base, key: 'camera', name: 'Camera' } });
    expect((await refusal(handle.executeUpdate(rejectFeatureChangeUpdate, { args: [{ actorId: reviewer, reason: '  ' }] }))).type).toBe('validation_failed');
    const state = await handle.executeUpdate(rejectFeatureChangeUpdate, { args: [{ actorId: reviewer, reason: 'use the media feature' }] });
    expect(state).toMatchObject({ status: 'rejected', reason: 'use the media feature', decidedBy: reviewer, revision: null });
    expect((await handle.result()).status).toBe('rejected');
    const mails = await mailsOf(input.changeId, 2);
    expect(mails[1]!.input).toMatchObject({ audience: 'proposer', kind: 'decisions' });
    expect(mails[1]!.input.paragraphs.join(' ')).toContain('use the media feature');
    expect(auditActions(input.changeId)).toEqual(['proposed', 'rejected']);
    expect(callsOf('applyFeatureChange', input.changeId)).toHaveLength(0);
    await maybeRecordHistory(client, handle.workflowId, 'feature-change-rejected');
  });

  it('only the proposer withdraws (not_proposer otherwise)', async () => {
    const { input, handle } = await propose();
    expect((await refusal(handle.executeUpdate(withdrawFeatureChangeUpdate, { args: [{ actorId: reviewer }] }))).type).toBe('not_proposer');
    const state = await handle.executeUpdate(withdrawFeatureChangeUpdate, { args: [{ actorId: developer }] });
    expect(state.status).toBe('withdrawn');
    expect((await handle.result()).status).toBe('withdrawn');
    expect(auditActions(input.changeId)).toEqual(['proposed', 'withdrawn']);
    await maybeRecordHistory(client, handle.workflowId, 'feature-change-withdrawn');
  });

  it('an undecided change expires after ttlMs and the proposer is told', async () => {
    const started = Date.now();
    const { input, handle } = await propose({ ttlMs: 800 });
    const final = await handle.result();
    expect(final.status).toBe('expired');
    expect(Date.now() - started).toBeGreaterThanOrEqual(750);
    expect(auditActions(input.changeId)).toEqual(['proposed', 'expired']);
    expect(callsOf('notifyFeature', input.changeId).map((c) => String(c.input.dedupeKey).split(':').pop())).toEqual(['proposed', 'expired']);
    await maybeRecordHistory(client, handle.workflowId, 'feature-change-expired');
  });

  it('an approval that cannot be applied is refused with the activity\'s reason and leaves the change pending', async () => {
    const { handle } = await propose({ proposal: { ...base, key: 'taken' } });
    const refused = await refusal(handle.executeUpdate(approveFeatureChangeUpdate, { args: [{ actorId: reviewer }] }));
    expect([refused.type, refused.message]).toEqual([FailureType.conflict, 'a feature with the key taken exists already']);
    expect((await handle.query(featureChangeStatusQuery)).status).toBe('pending');
    expect((await handle.executeUpdate(withdrawFeatureChangeUpdate, { args: [{ actorId: developer }] })).status).toBe('withdrawn');
  });

  it('an approved archive is the next revision with status archived', async () => {
    const add = await propose();
    await add.handle.executeUpdate(approveFeatureChangeUpdate, { args: [{ actorId: reviewer }] });
    const archive = await propose({ featureId: add.input.featureId, kind: 'archive', baseRevision: 1 });
    const state = await archive.handle.executeUpdate(approveFeatureChangeUpdate, { args: [{ actorId: reviewer }] });
    expect(state).toMatchObject({ revision: 2, diff: { fields: { status: { from: 'active', to: 'archived' } }, jsapis: { added: [], removed: [] } } });
  });
});

async function apply(o: Partial<FeatureActivationInput> = {}) {
  const input: FeatureActivationInput = { miniProgramId: uid('mp_'), featureId: uid('feat_'), workspaceId, attempt: 1, requestedBy: developer, message: 'we need payments', ttlMs: 60_000, ...o };
  const handle = await client.workflow.start<(i: FeatureActivationInput) => Promise<FeatureActivationState>>(featureActivationWorkflowType, {
    workflowId: featureActivationWorkflowId(input.miniProgramId, input.featureId, input.attempt), taskQueue: env.taskQueue, args: [input],
  });
  const key = `${handle.workflowId}:requested`;
  await eventually(() => fake.calls.find((c) => c.name === 'notifyFeature' && c.input.dedupeKey === key), { what: 'the review request mail' });
  return { input, handle };
}
const activationCalls = (input: FeatureActivationInput) => fake.calls.filter((c) => c.name === 'projectFeatureActivation' && c.input.state.miniProgramId === input.miniProgramId);

describe('featureActivation', () => {
  it('a reviewer approves an application: the mini program holds the feature; the applicant cannot approve it', async () => {
    const { input, handle } = await apply();
    const release = fake.hold(`${handle.workflowId}:approved`);
    expect((await handle.query(featureActivationStatusQuery)).status).toBe('requested');
    expect((await refusal(handle.executeUpdate(approveActivationUpdate, { args: [{ actorId: developer }] }))).type).toBe('own_change');
    const state = await handle.executeUpdate(approveActivationUpdate, { args: [{ actorId: reviewer }] });
    expect(state).toMatchObject({ status: 'active', decidedBy: reviewer, attempt: 1 });
    expect((await refusal(handle.executeUpdate(rejectActivationUpdate, { args: [{ actorId: 'usr_other', reason: 'late' }] }))).type).toBe(FailureType.wrongState);
    release();
    expect((await handle.result()).status).toBe('active');
    expect(activationCalls(input).map((c) => [c.input.audit.action, c.input.state.status, c.input.state.seq])).toEqual([['activation_requested', 'requested', 1], ['activation_approved', 'active', 2]]);
    await maybeRecordHistory(client, handle.workflowId, 'feature-change-activation-approved');
  });

  it('a rejection carries its reason; the applicant may withdraw a second application', async () => {
    const { input, handle } = await apply();
    const state = await handle.executeUpdate(rejectActivationUpdate, { args: [{ actorId: reviewer, reason: 'no payment licence' }] });
    expect(state).toMatchObject({ status: 'rejected', reason: 'no payment licence' });
    expect((await handle.result()).status).toBe('rejected');
    await maybeRecordHistory(client, handle.workflowId, 'feature-change-activation-rejected');

    const again = await apply({ miniProgramId: input.miniProgramId, featureId: input.featureId, attempt: 2 });
    expect(again.handle.workflowId).toBe(`feature-activation:${input.miniProgramId}:${input.featureId}:2`);
    expect((await refusal(again.handle.executeUpdate(withdrawActivationUpdate, { args: [{ actorId: reviewer }] }))).type).toBe('not_proposer');
    expect((await again.handle.executeUpdate(withdrawActivationUpdate, { args: [{ actorId: developer }] })).status).toBe('withdrawn');
    expect((await again.handle.result()).status).toBe('withdrawn');
  });
});
