import type { Client } from '@temporalio/client';
import { QueryTypes, type Sequelize } from 'sequelize';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createAuthorizationActivities } from '../../activities/authorizations.js';
import type { Activities } from '../../activities/index.js';
import { createSequelize } from '../../db/index.js';
import { createMailer, type Mailer } from '../../lib/mailer.js';
import { startSmtpPeer, type SmtpPeer } from '../../lib/smtp-peer.js';
import {
  approveAuthorizationUpdate, authorizationWorkflowId, authorizationWorkflowType, revokeAuthorizationUpdate, type AuthorizationInput, type AuthorizationState,
} from '../../workflows/contracts/authorization.js';
import { miniProgramWorkflowId, submitUpdate, syncUpdate, uploadVersionUpdate, type MiniProgramInput } from '../../workflows/contracts/mini-program.js';
import { defaultHealth, releaseStatusQuery, releaseWorkflowId } from '../../workflows/contracts/release.js';
import { realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { startTestWorker, uid } from '../helpers/workflow-env.js';

/**
 * The revocation cascade's activities against the real database, real SMTP and real release
 * pipelines (workflows on the dev server; their own activities are plain functions here, so a
 * pipeline reaches review without a package store).
 */
const rec = async () => {};
const pipelineFakes: Partial<Activities> = {
  projectMiniProgram: rec, projectNewVersion: rec, projectVersionStatus: rec, projectPipeline: rec,
  deliverWebhooks: async () => ({ delivered: 0, failed: 0 }),
  notifyPipeline: async () => ({ sent: 0, skipped: 0 }),
  validateStoredPackage: async () => ({ pageCount: 3 }),
};

let sequelize: Sequelize;
let smtp: SmtpPeer;
let mailer: Mailer;
let env: Awaited<ReturnType<typeof startTestWorker>>;
let client: Client;
let acts: ReturnType<typeof createAuthorizationActivities>;

beforeAll(async () => {
  sequelize = createSequelize(inject('databaseUrl'));
  smtp = await startSmtpPeer();
  mailer = createMailer(`smtp://127.0.0.1:${smtp.port}`, 'mpdp@example.test');
  env = await startTestWorker(pipelineFakes);
  client = env.client;
  acts = createAuthorizationActivities({ sequelize, mailer, store: null as never, publicUrl: 'http://console.test', temporal: client });
});
afterAll(async () => {
  await env?.stop();
  mailer?.close();
  await smtp?.close();
  await sequelize?.close();
});

const q = (sql: string, replacements: Record<string, unknown> = {}) => sequelize.query(sql, { replacements });
const rows = <T extends object>(sql: string, replacements: Record<string, unknown> = {}) => sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT });

/** A merchant with one Admin and one Developer, an ISV with an Admin and a Developer, two mini programs, an active authorization on the first. */
async function world() {
  const t = uid();
  const w = {
    merchant: `ws_m_${t}`, developer: `ws_d_${t}`, mp: `mp_a_${t}`, otherMp: `mp_b_${t}`, authId: `auth_${t}`,
    merchantAdmin: { id: `usr_ma_${t}`, email: `ma-${t}@example.test` }, merchantDev: { id: `usr_md_${t}`, email: `md-${t}@example.test` },
    isvAdmin: { id: `usr_ia_${t}`, email: `ia-${t}@example.test` }, isvDev: { id: `usr_id_${t}`, email: `id-${t}@example.test` },
  };
  await q(`INSERT INTO workspaces (id, name, code, type) VALUES (:merchant, 'Merchant Shop', :mcode, 'merchant'), (:developer, 'Acme ISV', :dcode, 'developer')`, { ...w, mcode: `M${t}`, dcode: `D${t}` });
  for (const [u, ws, role] of [[w.merchantAdmin, w.merchant, 'admin'], [w.merchantDev, w.merchant, 'developer'], [w.isvAdmin, w.developer, 'admin'], [w.isvDev, w.developer, 'developer']] as const) {
    await q(`INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :id, 'x')`, u);
    await q('INSERT INTO memberships (workspace_id, user_id, role) VALUES (:ws, :id, :role)', { ws, id: u.id, role });
  }
  for (const [id, name] of [[w.mp, 'Coffee Club'], [w.otherMp, 'Loyalty']]) {
    await q(`INSERT INTO mini_programs (id, workspace_id, name, status, created_by, created_at, updated_at, seq) VALUES (:id, :ws, :name, 'active', :by, now(), now(), 1)`, { id, ws: w.merchant, name, by: w.merchantAdmin.id });
  }
  const state: AuthorizationState = {
    authorizationId: w.authId, developerWorkspaceId: w.developer, merchantWorkspaceId: w.merchant, status: 'active', requestedMiniProgramIds: [w.mp, w.otherMp],
    requestedScope: ['view', 'upload', 'submit', 'testers'], miniProgramIds: [w.mp], scope: ['view', 'upload', 'submit', 'testers'], endsAt: null, message: '',
    requestedBy: w.isvAdmin.id, requestedAt: new Date().toISOString(), requestExpiresAt: new Date(Date.now() + 60_000).toISOString(), decidedBy: w.merchantAdmin.id,
    decidedAt: new Date().toISOString(), decisionReason: null, revokeScheduledAt: null, revokeTrigger: null, revokedBy: null, revokeReason: null, revokedAt: null,
    report: null, history: [], seq: 2,
  };
  return { ...w, state, scope: { authorizationId: w.authId, developerWorkspaceId: w.developer, merchantWorkspaceId: w.merchant, miniProgramIds: [w.mp] } };
}
type World = Awaited<ReturnType<typeof world>>;

const audit = (w: World, seq: number, action: string) => ({
  dedupeKey: `authorization:${w.authId}:${seq}`, workspaceId: w.merchant, subjectType: 'authorization' as const, subjectId: w.authId, actorId: w.merchantAdmin.id,
  action, fromState: null, toState: 'active', comment: null, at: new Date().toISOString(),
});

/**
 * A real release pipeline submitted by `by`, waiting in review, and its read-model row on the mini
 * program. Each runs under its own entity workflow (one release lane per mini program).
 */
async function submission(w: World, miniProgramId: string, by: string) {
  const entityId = uid('mp_entity_');
  const input: MiniProgramInput = {
    miniProgramId: entityId, workspaceId: w.merchant, name: 'x', description: '', category: 'shopping', icon: null, createdBy: w.merchantAdmin.id,
    createdAt: new Date().toISOString(), releaseConfig: { reviewReminderMs: 0 },
  };
  const entity = await client.workflow.start('miniProgramEntity', { workflowId: miniProgramWorkflowId(entityId), taskQueue: env.taskQueue, args: [input] });
  await entity.executeUpdate(syncUpdate, { args: [] });
  const versionId = uid('ver_');
  const version = `1.0.${Math.floor(Math.random() * 100000)}`;
  await entity.executeUpdate(uploadVersionUpdate, { args: [{ versionId, version, packageSha256: 'a'.repeat(64), packageSize: 10, pageCount: 3, notes: '', actorId: by }] });
  await entity.executeUpdate(submitUpdate, {
    args: [{ versionId, actorId: by, policy: { requiredApprovals: 1 }, config: { reviewReminderMs: 0, reviewSlaMs: 3600_000, stepAttempts: 2, healthCheckIntervalMs: 200, defaultSoakMs: 300, health: defaultHealth } }],
  });
  const id = releaseWorkflowId(versionId);
  await eventually(async () => (await client.workflow.getHandle(id).query(releaseStatusQuery)).status === 'in_review', { what: `${id} in review` });
  await pipelineRow(w, { id, miniProgramId, versionId, version, status: 'in_review', by });
  return id;
}
async function pipelineRow(w: World, p: { id: string; miniProgramId: string; versionId: string; version: string; status: string; by: string }) {
  await q(
    `INSERT INTO pipelines (id, kind, workspace_id, mini_program_id, version_id, version, status, submitted_by, submitted_at, updated_at, seq)
     VALUES (:id, 'release', :ws, :miniProgramId, :versionId, :version, :status, :by, now(), now(), 1)`,
    { ...p, ws: w.merchant },
  );
}
const itemCount = async (authId: string, kind: string) => Number((await rows<{ n: string }>('SELECT count(*) AS n FROM revocation_items WHERE authorization_id = :authId AND kind = :kind', { authId, kind }))[0]!.n);

describe('authorization activities (real database)', () => {
  it('projectAuthorization upserts the row guarded by seq, keeps the report, appends an audit line', async () => {
    const w = await world();
    await acts.projectAuthorization({ state: w.state, at: new Date().toISOString(), audit: audit(w, 2, 'approved') });
    await acts.projectAuthorization({ state: { ...w.state, status: 'requested', seq: 1 }, at: new Date().toISOString(), audit: audit(w, 1, 'requested') });
    const [row] = await rows<{ status: string; mini_program_ids: string[]; scope: string[]; seq: number }>('SELECT status, mini_program_ids, scope, seq FROM authorizations WHERE id = :id', { id: w.authId });
    expect(row).toMatchObject({ status: 'active', mini_program_ids: [w.mp], seq: 2 });
    const report = {
      authorizationId: w.authId, developerWorkspaceId: w.developer, merchantWorkspaceId: w.merchant, trigger: 'merchant' as const, requestedBy: w.merchantAdmin.id, reason: 'r',
      requestedAt: new Date().toISOString(), cutOff: null, withdrawn: [], leftRunning: [], testersRemoved: [], previewLinksRevoked: [], mailed: [], steps: [], completedAt: null,
    };
    await acts.projectAuthorization({ state: { ...w.state, status: 'revoking', report, seq: 3 }, at: new Date().toISOString(), audit: audit(w, 3, 'access_cut') });
    const [stored] = await rows<{ report: { trigger: string }; completed_at: Date | null }>('SELECT report, completed_at FROM revocation_reports WHERE authorization_id = :id', { id: w.authId });
    expect(stored).toMatchObject({ report: { trigger: 'merchant' }, completed_at: null });
    const lines = await rows<{ action: string; subject_type: string }>('SELECT action, subject_type FROM audit_log WHERE subject_id = :id ORDER BY id', { id: w.authId });
    expect(lines).toEqual([{ action: 'approved', subject_type: 'authorization' }, { action: 'requested', subject_type: 'authorization' }, { action: 'access_cut', subject_type: 'authorization' }]);
  });

  it('withdraws the ISV\'s submissions through their pipelines, lists approved ones, leaves everyone else\'s; a re-run reports each once', async () => {
    const w = await world();
    await acts.projectAuthorization({ state: w.state, at: new Date().toISOString(), audit: audit(w, 2, 'approved') });
    const isvSubmission = await submission(w, w.mp, w.isvDev.id);
    const merchantSubmission = await submission(w, w.mp, w.merchantDev.id);
    await pipelineRow(w, { id: `release:${uid('ver_')}`, miniProgramId: w.mp, versionId: uid('ver_'), version: '0.9.0', status: 'approved', by: w.isvAdmin.id });
    await pipelineRow(w, { id: `release:${uid('ver_')}`, miniProgramId: w.otherMp, versionId: uid('ver_'), version: '0.1.0', status: 'in_review', by: w.isvDev.id });

    const first = await acts.revokeWithdrawSubmissions({ ...w.scope, actorId: w.merchantAdmin.id });
    expect(first.withdrawn.map((x) => x.pipelineId)).toEqual([isvSubmission]);
    expect(first.leftRunning.map((x) => [x.version, x.status])).toEqual([['0.9.0', 'approved']]);
    const isvState = await client.workflow.getHandle(isvSubmission).query(releaseStatusQuery);
    expect(isvState.status).toBe('withdrawn');
    expect(isvState.timeline.at(-1)).toMatchObject({ action: 'withdrawn', actorId: w.merchantAdmin.id, comment: 'authorization revoked' });
    expect((await client.workflow.getHandle(merchantSubmission).query(releaseStatusQuery)).status).toBe('in_review');

    // A crash after the pipeline was told but before the item was written: the re-run tells it
    // again under the same update id and records it once.
    await q(`DELETE FROM revocation_items WHERE authorization_id = :id AND kind = 'withdrawn'`, { id: w.authId });
    await q(`UPDATE pipelines SET status = 'withdrawn' WHERE id = :id`, { id: isvSubmission });
    const again = await acts.revokeWithdrawSubmissions({ ...w.scope, actorId: w.merchantAdmin.id });
    expect(again.withdrawn.map((x) => x.pipelineId)).toEqual([isvSubmission]);
    expect(again.leftRunning).toEqual(first.leftRunning);
    expect(await itemCount(w.authId, 'withdrawn')).toBe(1);
    expect(await itemCount(w.authId, 'left_running')).toBe(1);
    const withdrawals = (await client.workflow.getHandle(isvSubmission).query(releaseStatusQuery)).timeline.filter((e) => e.action === 'withdrawn');
    expect(withdrawals).toHaveLength(1);
  });

  it('removes the testers and revokes the preview links the ISV made on the granted mini programs only; once each', async () => {
    const w = await world();
    await acts.projectAuthorization({ state: w.state, at: new Date().toISOString(), audit: audit(w, 2, 'approved') });
    const tester = (id: string, mp: string, by: string) => q('INSERT INTO testers (id, workspace_id, mini_program_id, email, added_by) VALUES (:id, :ws, :mp, :email, :by)', { id, ws: w.merchant, mp, email: `${id}@example.test`, by });
    const t = uid('tst_');
    await tester(`${t}_isv`, w.mp, w.isvDev.id);
    await tester(`${t}_merchant`, w.mp, w.merchantAdmin.id);
    await tester(`${t}_other`, w.otherMp, w.isvDev.id);
    const link = (id: string, mp: string, by: string) => q(`INSERT INTO preview_links (id, token_hash, workspace_id, mini_program_id, version_id, created_by, expires_at) VALUES (:id, :id, :ws, :mp, 'ver_x', :by, now() + interval '1 day')`, { id, ws: w.merchant, mp, by });
    await link(`${t}_l_isv`, w.mp, w.isvAdmin.id);
    await link(`${t}_l_merchant`, w.mp, w.merchantDev.id);
    await link(`${t}_l_other`, w.otherMp, w.isvAdmin.id);

    const removed = await acts.revokeRemoveTesters(w.scope);
    expect(removed.map((x) => [x.id, x.email, x.miniProgramId])).toEqual([[`${t}_isv`, `${t}_isv@example.test`, w.mp]]);
    const left = await rows<{ id: string }>('SELECT id FROM testers WHERE workspace_id = :ws ORDER BY id', { ws: w.merchant });
    expect(left.map((r) => r.id)).toEqual([`${t}_merchant`, `${t}_other`]);
    expect((await acts.revokeRemoveTesters(w.scope)).map((x) => x.id)).toEqual([`${t}_isv`]);
    expect(await itemCount(w.authId, 'tester_removed')).toBe(1);

    const revoked = await acts.revokePreviewLinks(w.scope);
    expect(revoked.map((x) => x.id)).toEqual([`${t}_l_isv`]);
    const links = await rows<{ id: string; revoked: boolean }>('SELECT id, revoked_at IS NOT NULL AS revoked FROM preview_links WHERE workspace_id = :ws ORDER BY id', { ws: w.merchant });
    expect(links).toEqual([{ id: `${t}_l_isv`, revoked: true }, { id: `${t}_l_merchant`, revoked: false }, { id: `${t}_l_other`, revoked: false }]);
    expect((await acts.revokePreviewLinks(w.scope)).map((x) => x.id)).toEqual([`${t}_l_isv`]);
    expect(await itemCount(w.authId, 'preview_link_revoked')).toBe(1);
  });

  it('mails the Admins of both sides once (a retry sends nothing) and records them for the report', async () => {
    const w = await world();
    await acts.projectAuthorization({ state: w.state, at: new Date().toISOString(), audit: audit(w, 2, 'approved') });
    const mail = () => acts.notifyAuthorization({
      dedupeKey: `authorization:${w.authId}:revoked`, audience: 'both', authorizationId: w.authId, developerWorkspaceId: w.developer, merchantWorkspaceId: w.merchant,
      subject: 'Authorization revoked', paragraphs: ['{merchant} revoked the authorization: {developer} no longer has access to {programs} ({scope}).'],
      miniProgramIds: [w.mp], scope: ['view', 'upload'], recordFor: w.authId,
    });
    const mailed = await mail();
    expect(mailed.map((m) => m.to).sort()).toEqual([w.isvAdmin.email, w.merchantAdmin.email].sort());
    const received = await eventually(() => {
      const m = smtp.messages.filter((x) => x.to.some((to) => to === w.isvAdmin.email || to === w.merchantAdmin.email));
      return m.length >= 2 ? m : null;
    }, { what: 'two revocation mails' });
    expect(received[0]!.raw.replace(/=\r?\n/g, '')).toContain('Merchant Shop revoked the authorization: Acme ISV no longer has access to Coffee Club (view, upload).');
    expect(await mail()).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.messages.filter((x) => x.to.some((to) => to === w.isvAdmin.email || to === w.merchantAdmin.email))).toHaveLength(2);
    expect(await itemCount(w.authId, 'mailed')).toBe(2);
  });
});

describe('developerAuthorization on the real worker', () => {
  let stack: Stack;
  const taskQueue = uid('it-auth-');
  beforeAll(async () => {
    stack = await startStack({ env: { TEMPORAL_TASK_QUEUE: taskQueue } });
  });
  afterAll(async () => stack?.stop());

  it('request → approve → revoke: the worker tells the ISV\'s pipeline to withdraw, and the row, the report and the mails follow', async () => {
    const t = uid();
    const developer = `ws_d_${t}`;
    const isv = { id: `usr_isv_${t}`, email: `isv-${t}@example.test` };
    await q(`INSERT INTO workspaces (id, name, code, type) VALUES (:developer, 'Acme ISV', :code, 'developer')`, { developer, code: `D${t}` });
    await q(`INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, 'Ivy ISV', 'x')`, isv);
    await q(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:developer, :id, 'admin')`, { developer, id: isv.id });
    const dev = await stack.agent('developer');
    const mp = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Harbour Mall', description: '', category: 'shopping' });
    expect(mp.status).toBe(201);
    const up = await dev.upload(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp.body.id}/versions`, realisticPackage({ version: '1.0.0' }), '1.0.0');
    expect(up.status).toBe(201);
    // Submitted by the ISV member (the grant check in the API is not this test's subject).
    await client.workflow.getHandle(miniProgramWorkflowId(mp.body.id)).executeUpdate(submitUpdate, { args: [{ versionId: up.body.id, actorId: isv.id }] });
    const pipelineId = releaseWorkflowId(up.body.id);
    await eventually(async () => (await rows<{ status: string }>('SELECT status FROM pipelines WHERE id = :pipelineId AND submitted_by = :by', { pipelineId, by: isv.id }))[0]?.status === 'in_review', { what: 'the ISV submission in review' });

    const input: AuthorizationInput = {
      authorizationId: `auth_${t}`, developerWorkspaceId: developer, merchantWorkspaceId: stack.workspaceId, miniProgramIds: [mp.body.id], scope: ['view', 'upload', 'submit'],
      endsAt: null, message: 'we run your mall', requestedBy: isv.id, requestTtlMs: 60_000, lapseReminderMs: 0,
    };
    const handle = await client.workflow.start<(i: AuthorizationInput) => Promise<AuthorizationState>>(authorizationWorkflowType, { workflowId: authorizationWorkflowId(input.authorizationId), taskQueue, args: [input] });
    await stack.waitForMail({ to: stack.users.admin.email, subject: 'Authorization requested by Acme ISV' });
    await handle.executeUpdate(approveAuthorizationUpdate, { args: [{ actorId: stack.users.admin.id }] });
    expect((await rows<{ status: string }>('SELECT status FROM authorizations WHERE id = :id', { id: input.authorizationId }))[0]?.status).toBe('active');

    const asked = Date.now();
    const answer = await handle.executeUpdate(revokeAuthorizationUpdate, { args: [{ actorId: stack.users.admin.id, by: 'merchant', reason: 'contract ended' }] });
    const cutMs = Date.now() - asked;
    // The answer comes once the row no longer says active: the access check refuses the next request.
    expect((await rows<{ status: string }>('SELECT status FROM authorizations WHERE id = :id', { id: input.authorizationId }))[0]?.status).not.toBe('active');
    expect(['revoking', 'revoked']).toContain(answer.status);
    const final = await handle.result();
    expect(final.status).toBe('revoked');
    expect(final.report!.withdrawn.map((w) => w.pipelineId)).toEqual([pipelineId]);
    expect((await client.workflow.getHandle(pipelineId).query(releaseStatusQuery)).status).toBe('withdrawn');
    await eventually(async () => (await rows<{ status: string }>('SELECT status FROM pipelines WHERE id = :pipelineId', { pipelineId }))[0]?.status === 'withdrawn', { what: 'the pipeline row withdrawn' });
    const [report] = await rows<{ report: { steps: { name: string }[] }; completed_at: Date | null }>('SELECT report, completed_at FROM revocation_reports WHERE authorization_id = :id', { id: input.authorizationId });
    expect(report!.completed_at).not.toBeNull();
    expect(report!.report.steps.map((x) => x.name)).toEqual(['cut_access', 'withdraw_submissions', 'remove_testers', 'revoke_preview_links', 'mail']);
    await stack.waitForMail({ to: isv.email, subject: 'Authorization revoked' });
    await stack.waitForMail({ to: stack.users.admin.email, subject: 'Authorization revoked' });
    console.log(`[authorization] revoke → access cut answered in ${cutMs} ms; whole revocation ${Date.parse(final.report!.completedAt!) - Date.parse(final.report!.requestedAt)} ms`);
  });
});
