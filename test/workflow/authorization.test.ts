import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import type { RevocationScope } from '../../activities/authorizations.js';
import {
  approveAuthorizationUpdate, authorizationStatusQuery, authorizationWorkflowId, authorizationWorkflowType, cancelRevocationUpdate, denyAuthorizationUpdate,
  revokeAuthorizationUpdate, withdrawAuthorizationUpdate, type AuthorizationInput, type AuthorizationState, type RevocationReport,
} from '../../workflows/contracts/authorization.js';
import { FailureType } from '../../workflows/contracts/errors.js';
import { workflowBundle } from '../../temporal/worker.js';
import { eventually } from '../helpers/eventually.js';
import { maybeRecordHistory, refusal, startTestWorker, uid } from '../helpers/workflow-env.js';

interface FakePipeline { id: string; status: string }
interface World { pipelines: FakePipeline[]; testers: string[]; links: string[] }

/**
 * Plain-function activities that behave like the real ones where it matters: each cascade step
 * records its items by key (a re-run adds nothing) and answers all of them; effects are counted
 * per idempotency key, calls per activity.
 */
function fakeActivities() {
  const calls: { name: string; input: any }[] = [];
  /** Per authorization: what the ISV has in flight on the granted mini programs. */
  const worlds = new Map<string, World>();
  /** Items per `${authorizationId}:${kind}:${itemId}`: how often each effect happened. */
  const effects = new Map<string, number>();
  const items = new Map<string, { kind: string; id: string; detail: any; at: string }[]>();
  /** Authorizations whose withdraw step stops half-way on its first attempt until released (or cancelled). */
  const blocked = new Map<string, { entered: () => void; release: Promise<void>; enteredP: Promise<void> }>();
  const itemsOf = (authId: string, kind: string) => (items.get(authId) ?? []).filter((i) => i.kind === kind);
  const effect = (authId: string, kind: string, id: string, detail: any) => {
    const key = `${authId}:${kind}:${id}`;
    if (effects.has(key)) return; // ON CONFLICT DO NOTHING / the pipeline's update id
    effects.set(key, 1);
    const list = items.get(authId) ?? [];
    list.push({ kind, id, detail, at: new Date().toISOString() });
    items.set(authId, list);
  };
  const world = (s: RevocationScope) => worlds.get(s.authorizationId) ?? { pipelines: [], testers: [], links: [] };

  const activities: Partial<Activities> = {
    async projectAuthorization(input) {
      calls.push({ name: 'projectAuthorization', input });
    },
    async notifyAuthorization(input) {
      calls.push({ name: 'notifyAuthorization', input });
      effects.set(`mail:${input.dedupeKey}`, (effects.get(`mail:${input.dedupeKey}`) ?? 0) + 1);
      const to = input.audience === 'both' ? ['merchant-admin@example.test', 'dev-admin@example.test'] : input.audience === 'merchant_admins' ? ['merchant-admin@example.test'] : ['dev-admin@example.test'];
      if (!input.recordFor) return to.map((t) => ({ to: t, at: new Date().toISOString() }));
      for (const t of to) effect(input.recordFor, 'mailed', t, {});
      return itemsOf(input.recordFor, 'mailed').map((i) => ({ to: i.id, at: i.at }));
    },
    async revokeWithdrawSubmissions(input) {
      calls.push({ name: 'revokeWithdrawSubmissions', input });
      const pipelines = world(input).pipelines;
      const gate = blocked.get(input.authorizationId);
      for (const [n, p] of pipelines.entries()) {
        if (gate && n === Math.floor(pipelines.length / 2)) {
          blocked.delete(input.authorizationId); // only the first attempt stops
          gate.entered();
          // The worker goes away here: its shutdown cancels this attempt, which is then redone elsewhere.
          await Promise.race([gate.release, Context.current().cancelled]);
        }
        const detail = { pipelineId: p.id, versionId: `ver_${p.id}`, version: '1.0.0', miniProgramId: input.miniProgramIds[0], status: p.status };
        if (['validating', 'in_review'].includes(p.status)) effect(input.authorizationId, 'withdrawn', p.id, detail);
        else if (['approved', 'rolling_out', 'paused'].includes(p.status)) effect(input.authorizationId, 'left_running', p.id, detail);
      }
      return {
        withdrawn: itemsOf(input.authorizationId, 'withdrawn').map((i) => ({ pipelineId: i.id, versionId: i.detail.versionId, version: i.detail.version, miniProgramId: i.detail.miniProgramId, at: i.at })),
        leftRunning: itemsOf(input.authorizationId, 'left_running').map((i) => ({ pipelineId: i.id, versionId: i.detail.versionId, version: i.detail.version, miniProgramId: i.detail.miniProgramId, status: i.detail.status })),
      };
    },
    async revokeRemoveTesters(input) {
      calls.push({ name: 'revokeRemoveTesters', input });
      for (const t of world(input).testers) effect(input.authorizationId, 'tester_removed', t, { email: `${t}@example.test` });
      return itemsOf(input.authorizationId, 'tester_removed').map((i) => ({ id: i.id, email: i.detail.email, miniProgramId: input.miniProgramIds[0] ?? null, at: i.at }));
    },
    async revokePreviewLinks(input) {
      calls.push({ name: 'revokePreviewLinks', input });
      for (const l of world(input).links) effect(input.authorizationId, 'preview_link_revoked', l, {});
      return itemsOf(input.authorizationId, 'preview_link_revoked').map((i) => ({ id: i.id, versionId: 'ver_x', at: i.at }));
    },
  };

  function block(authId: string) {
    let entered!: () => void;
    let release!: () => void;
    const enteredP = new Promise<void>((r) => (entered = r));
    const releaseP = new Promise<void>((r) => (release = r));
    blocked.set(authId, { entered, release: releaseP, enteredP });
    return { entered: enteredP, release };
  }
  return { calls, worlds, effects, activities, block };
}

const fake = fakeActivities();
let env: Awaited<ReturnType<typeof startTestWorker>>;
let client: Client;

beforeAll(async () => {
  env = await startTestWorker(fake.activities);
  client = env.client;
});
afterAll(async () => env?.stop());

const merchantAdmin = 'usr_merchant_admin';
const devAdmin = 'usr_dev_admin';

async function request(o: Partial<AuthorizationInput> = {}, taskQueue = env.taskQueue) {
  const input: AuthorizationInput = {
    authorizationId: uid('auth_'), developerWorkspaceId: uid('ws_dev_'), merchantWorkspaceId: uid('ws_m_'), miniProgramIds: ['mp_a', 'mp_b'], scope: ['view', 'upload', 'submit'],
    endsAt: null, message: 'we build your shop', requestedBy: devAdmin, requestTtlMs: 60_000, lapseReminderMs: 0, ...o,
  };
  const handle = await client.workflow.start<(i: AuthorizationInput) => Promise<AuthorizationState>>(authorizationWorkflowType, { workflowId: authorizationWorkflowId(input.authorizationId), taskQueue, args: [input] });
  await mailsOf(input.authorizationId, 1);
  return { input, handle };
}

const callsOf = (name: string, authId: string) => fake.calls.filter((c) => c.name === name && (c.input.state?.authorizationId ?? c.input.authorizationId) === authId);
const mailsOf = (authId: string, count: number) =>
  eventually(() => {
    const m = callsOf('notifyAuthorization', authId);
    return m.length >= count ? m : null;
  }, { what: `${count} mail(s) for ${authId}` });
const auditActions = (authId: string) => callsOf('projectAuthorization', authId).map((c) => c.input.audit.action as string);
const mailSteps = (authId: string) => callsOf('notifyAuthorization', authId).map((c) => String(c.input.dedupeKey).split(':').pop());

async function closed(p: Promise<unknown>) {
  const err = await p.then(() => null, (e: unknown) => e);
  expect((err as Error)?.name).toBe('WorkflowNotFoundError');
}

/** The report's steps ran in order, each finished before the next started. */
function expectOrderedSteps(report: RevocationReport) {
  expect(report.steps.map((s) => s.name)).toEqual(['cut_access', 'withdraw_submissions', 'remove_testers', 'revoke_preview_links', 'mail']);
  let last = 0;
  for (const s of report.steps) {
    expect(s.finishedAt).not.toBeNull();
    expect(Date.parse(s.startedAt)).toBeGreaterThanOrEqual(last);
    expect(Date.parse(s.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(s.startedAt));
    last = Date.parse(s.finishedAt!);
  }
  expect(Date.parse(report.completedAt!)).toBeGreaterThanOrEqual(last);
}

describe('developerAuthorization: the request', () => {
  it('mails the merchant Admins; approve narrows the grant, and a widening is refused (not_a_narrowing)', async () => {
    const { input, handle } = await request({ endsAt: new Date(Date.now() + 3600_000).toISOString() });
    const [first] = await mailsOf(input.authorizationId, 1);
    expect(first!.input.audience).toBe('merchant_admins');
    const wider = await refusal(handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin, miniProgramIds: ['mp_a', 'mp_other'] }] }));
    expect(wider.type).toBe('not_a_narrowing');
    const moreScope = await refusal(handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin, scope: ['view', 'testers'] }] }));
    expect(moreScope.type).toBe('not_a_narrowing');
    const later = await refusal(handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin, endsAt: new Date(Date.now() + 7200_000).toISOString() }] }));
    expect(later.type).toBe('not_a_narrowing');
    const empty = await refusal(handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin, scope: [] }] }));
    expect(empty.type).toBe('validation_failed');
    const state = await handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin, miniProgramIds: ['mp_a'], scope: ['view', 'upload'] }] });
    expect(state).toMatchObject({ status: 'active', miniProgramIds: ['mp_a'], scope: ['view', 'upload'], requestedMiniProgramIds: ['mp_a', 'mp_b'], decidedBy: merchantAdmin });
    // Decided once: a second approve or a deny is refused.
    expect((await refusal(handle.executeUpdate(denyAuthorizationUpdate, { args: [{ actorId: merchantAdmin, reason: 'no' }] }))).type).toBe(FailureType.wrongState);
    const mails = await mailsOf(input.authorizationId, 2);
    expect(mails[1]!.input).toMatchObject({ audience: 'developer_admins', miniProgramIds: ['mp_a'] });
    expect(auditActions(input.authorizationId)).toEqual(['requested', 'approved']);
    expect(callsOf('projectAuthorization', input.authorizationId).map((c) => c.input.state.seq)).toEqual([1, 2]);
    // End it so the history is complete.
    await handle.executeUpdate(revokeAuthorizationUpdate, { args: [{ actorId: devAdmin, by: 'developer', reason: 'project done' }] });
    expect((await handle.result()).status).toBe('revoked');
    await maybeRecordHistory(client, handle.workflowId, 'authorization-narrowed-relinquished');
  });

  it('deny ends it with the reason and mails the developer Admins; a reason is required', async () => {
    const { input, handle } = await request();
    expect((await refusal(handle.executeUpdate(denyAuthorizationUpdate, { args: [{ actorId: merchantAdmin, reason: ' ' }] }))).type).toBe('validation_failed');
    const state = await handle.executeUpdate(denyAuthorizationUpdate, { args: [{ actorId: merchantAdmin, reason: 'we work with another agency' }] });
    expect(state).toMatchObject({ status: 'denied', decisionReason: 'we work with another agency' });
    expect((await handle.result()).status).toBe('denied');
    expect(mailSteps(input.authorizationId)).toEqual(['requested', 'denied']);
    await closed(handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin }] }));
    await maybeRecordHistory(client, handle.workflowId, 'authorization-denied');
  });

  it('the ISV withdraws its request', async () => {
    const { input, handle } = await request();
    const state = await handle.executeUpdate(withdrawAuthorizationUpdate, { args: [{ actorId: devAdmin }] });
    expect(state.status).toBe('withdrawn');
    expect((await handle.result()).status).toBe('withdrawn');
    expect(auditActions(input.authorizationId)).toEqual(['requested', 'withdrawn']);
  });

  it('an undecided request expires after requestTtlMs and both sides are told', async () => {
    const started = Date.now();
    const { input, handle } = await request({ requestTtlMs: 800 });
    const final = await handle.result();
    expect(final.status).toBe('expired');
    expect(Date.now() - started).toBeGreaterThanOrEqual(750);
    const mails = await mailsOf(input.authorizationId, 2);
    expect(mails[1]!.input.audience).toBe('both');
    await closed(handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin }] }));
    await maybeRecordHistory(client, handle.workflowId, 'authorization-expired');
  });
});

describe('developerAuthorization: the revocation', () => {
  it('revoke now answers once access is cut, then runs each cascade step in order into the report', async () => {
    const { input, handle } = await request();
    fake.worlds.set(input.authorizationId, {
      pipelines: [{ id: 'release:v1', status: 'in_review' }, { id: 'release:v2', status: 'approved' }, { id: 'release:v3', status: 'validating' }],
      testers: ['tst_1', 'tst_2'], links: ['pl_1'],
    });
    await handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin }] });
    const answered = await handle.executeUpdate(revokeAuthorizationUpdate, { args: [{ actorId: merchantAdmin, by: 'merchant', reason: 'contract ended' }] });
    // The answer comes once the row says revoking (the access check honours only active).
    expect(['revoking', 'revoked']).toContain(answered.status);
    const cut = callsOf('projectAuthorization', input.authorizationId).find((c) => c.input.audit.action === 'access_cut');
    expect(cut!.input.state.status).toBe('revoking');
    expect((await refusal(handle.executeUpdate(revokeAuthorizationUpdate, { args: [{ actorId: merchantAdmin, by: 'merchant', reason: 'again' }] }))).type).toBe(FailureType.wrongState);

    const final = await handle.result();
    expect(final).toMatchObject({ status: 'revoked', revokeTrigger: 'merchant', revokedBy: merchantAdmin, revokeReason: 'contract ended' });
    const report = final.report!;
    expectOrderedSteps(report);
    expect(report.cutOff).toMatchObject({ miniProgramIds: ['mp_a', 'mp_b'], scope: ['view', 'upload', 'submit'] });
    expect(report.withdrawn.map((w) => w.pipelineId)).toEqual(['release:v1', 'release:v3']);
    expect(report.leftRunning.map((w) => [w.pipelineId, w.status])).toEqual([['release:v2', 'approved']]);
    expect(report.testersRemoved.map((t) => t.id)).toEqual(['tst_1', 'tst_2']);
    expect(report.previewLinksRevoked.map((l) => l.id)).toEqual(['pl_1']);
    expect(report.mailed.map((m) => m.to)).toEqual(['merchant-admin@example.test', 'dev-admin@example.test']);
    expect(report.steps.map((s) => s.count)).toEqual([2, 2, 2, 1, 2]);
    const withdrawCall = callsOf('revokeWithdrawSubmissions', input.authorizationId)[0]!.input;
    expect(withdrawCall).toMatchObject({ actorId: merchantAdmin, developerWorkspaceId: input.developerWorkspaceId, merchantWorkspaceId: input.merchantWorkspaceId, miniProgramIds: ['mp_a', 'mp_b'] });
    expect(auditActions(input.authorizationId)).toEqual(['requested', 'approved', 'access_cut', 'submissions_withdrawn', 'testers_removed', 'preview_links_revoked', 'revocation_mailed', 'revoked']);
    // The last projection carries the completed report (it goes to revocation_reports).
    const last = callsOf('projectAuthorization', input.authorizationId).at(-1)!.input.state as AuthorizationState;
    expect(last.report!.completedAt).toBe(report.completedAt);
    await maybeRecordHistory(client, handle.workflowId, 'authorization-revoked-cascade');
  });

  it('lapses at endsAt through the same revocation, after a reminder to both sides', async () => {
    const { input, handle } = await request({ endsAt: new Date(Date.now() + 2500).toISOString(), lapseReminderMs: 1500 });
    fake.worlds.set(input.authorizationId, { pipelines: [{ id: 'release:lapse1', status: 'in_review' }], testers: [], links: [] });
    await handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin }] });
    const final = await handle.result();
    expect(final.status).toBe('lapsed');
    expect(Date.parse(final.revokedAt!)).toBeGreaterThanOrEqual(Date.parse(input.endsAt!));
    expect(final.report).toMatchObject({ trigger: 'lapse', requestedBy: null });
    expectOrderedSteps(final.report!);
    expect(final.report!.withdrawn.map((w) => w.pipelineId)).toEqual(['release:lapse1']);
    expect(mailSteps(input.authorizationId)).toEqual(['requested', 'approved', 'lapse-reminder', 'revoked']);
    const reminder = callsOf('notifyAuthorization', input.authorizationId)[2]!.input;
    expect(reminder.audience).toBe('both');
    const actions = auditActions(input.authorizationId);
    expect(actions.slice(0, 4)).toEqual(['requested', 'approved', 'reminded', 'access_cut']);
    expect(actions.at(-1)).toBe('lapsed');
    await maybeRecordHistory(client, handle.workflowId, 'authorization-reminded-lapsed');
  });

  it('a scheduled revocation can be cancelled before it starts; a later revoke replaces the schedule', async () => {
    const { input, handle } = await request();
    await handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin }] });
    expect((await refusal(handle.executeUpdate(cancelRevocationUpdate, { args: [{ actorId: merchantAdmin }] }))).type).toBe(FailureType.wrongState);
    const scheduled = await handle.executeUpdate(revokeAuthorizationUpdate, { args: [{ actorId: merchantAdmin, by: 'merchant', reason: 'end of season', at: new Date(Date.now() + 800).toISOString() }] });
    expect(scheduled).toMatchObject({ status: 'active', revokeTrigger: 'merchant' });
    expect(scheduled.revokeScheduledAt).not.toBeNull();
    const cancelled = await handle.executeUpdate(cancelRevocationUpdate, { args: [{ actorId: merchantAdmin }] });
    expect(cancelled).toMatchObject({ status: 'active', revokeScheduledAt: null, revokeTrigger: null });
    await new Promise((r) => setTimeout(r, 1200)); // past the cancelled time: nothing happens
    expect((await handle.query(authorizationStatusQuery)).status).toBe('active');

    // Scheduled far ahead, then replaced by a sooner one: the sooner one runs.
    await handle.executeUpdate(revokeAuthorizationUpdate, { args: [{ actorId: merchantAdmin, by: 'merchant', reason: 'later', at: new Date(Date.now() + 3600_000).toISOString() }] });
    const soon = new Date(Date.now() + 700).toISOString();
    const replaced = await handle.executeUpdate(revokeAuthorizationUpdate, { args: [{ actorId: devAdmin, by: 'developer', reason: 'handing over', at: soon }] });
    expect(replaced.revokeScheduledAt).toBe(soon);
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'revoked', revokeTrigger: 'developer', revokedBy: devAdmin, revokeReason: 'handing over', revokeScheduledAt: null });
    expect(Date.parse(final.report!.requestedAt)).toBeGreaterThanOrEqual(Date.parse(soon));
    expectOrderedSteps(final.report!);
    expect(auditActions(input.authorizationId).slice(0, 6)).toEqual(['requested', 'approved', 'revocation_scheduled', 'revocation_cancelled', 'revocation_scheduled', 'revocation_scheduled']);
    await maybeRecordHistory(client, handle.workflowId, 'authorization-scheduled-cancelled-revoked');
  });

  it('a worker that dies half-way through the revocation: another finishes it, the report is complete and no step ran twice', async () => {
    const address = inject('temporalAddress');
    const taskQueue = uid('wf-auth-restart-');
    const startWorker = async () => {
      const connection = await NativeConnection.connect({ address });
      const worker = await Worker.create({ connection, taskQueue, workflowBundle: await workflowBundle(), activities: fake.activities, shutdownGraceTime: '200ms' });
      const running = worker.run();
      return { worker, async stop() { worker.shutdown(); await running; await connection.close(); } };
    };
    const first = await startWorker();
    const { input, handle } = await request({}, taskQueue);
    const pipelines = [1, 2, 3, 4].map((n) => ({ id: `release:k${n}`, status: n === 3 ? 'approved' : 'in_review' }));
    fake.worlds.set(input.authorizationId, { pipelines, testers: ['tst_k1'], links: ['pl_k1', 'pl_k2'] });
    const gate = fake.block(input.authorizationId);
    await handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: merchantAdmin }] });
    await handle.executeUpdate(revokeAuthorizationUpdate, { args: [{ actorId: merchantAdmin, by: 'merchant', reason: 'breach' }] });
    await gate.entered; // half the submissions are withdrawn, then the worker goes away
    await first.stop();

    const second = await startWorker();
    try {
      const final = await handle.result();
      expect(final.status).toBe('revoked');
      const report = final.report!;
      expectOrderedSteps(report);
      expect(report.withdrawn.map((w) => w.pipelineId)).toEqual(['release:k1', 'release:k2', 'release:k4']);
      expect(report.leftRunning.map((w) => w.pipelineId)).toEqual(['release:k3']);
      expect(report.testersRemoved).toHaveLength(1);
      expect(report.previewLinksRevoked).toHaveLength(2);
      expect(report.mailed).toHaveLength(2);
      // The withdraw step ran twice (the first attempt died); every other step once, and every effect once.
      expect(callsOf('revokeWithdrawSubmissions', input.authorizationId)).toHaveLength(2);
      for (const name of ['revokeRemoveTesters', 'revokePreviewLinks']) expect(callsOf(name, input.authorizationId)).toHaveLength(1);
      expect(mailSteps(input.authorizationId).filter((s) => s === 'revoked')).toHaveLength(1);
      const effects = [...fake.effects.entries()].filter(([k]) => k.startsWith(`${input.authorizationId}:`));
      expect(effects).toHaveLength(3 + 1 + 1 + 2 + 2);
      expect(effects.every(([, n]) => n === 1)).toBe(true);
      expect(auditActions(input.authorizationId).filter((a) => a === 'access_cut')).toHaveLength(1);
      await maybeRecordHistory(client, handle.workflowId, 'authorization-revoked-worker-restart');
    } finally {
      await second.stop();
    }
  });
});
