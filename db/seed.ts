import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { QueryTypes, type Sequelize } from 'sequelize';
import { hashPassword } from '../api/passwords.js';
import { newId } from '../lib/ids.js';
import type { WorkspaceRole } from '../lib/permissions.js';
import type { PackageStore } from '../lib/storage.js';
import { realisticPackage } from '../test/fixtures/packages.js';
import { miniProgramStatusQuery, miniProgramWorkflowId, submitUpdate, syncUpdate, uploadVersionUpdate, type MiniProgramInput } from '../workflows/contracts/mini-program.js';
import { advanceUpdate, approveUpdate, releaseStatusQuery, releaseUpdate, releaseWorkflowId, type ReleaseConfig, type ReleaseStatus } from '../workflows/contracts/release.js';
import { MiniProgramIdKey, WorkspaceIdKey } from '../workflows/contracts/search-attributes.js';

export const demoUsers: { id: string; email: string; name: string; role: WorkspaceRole }[] = [
  { id: 'usr_demo_admin', email: 'admin@demo.mpdp.dev', name: 'Ada Admin', role: 'admin' },
  { id: 'usr_demo_reviewer', email: 'reviewer@demo.mpdp.dev', name: 'Rui Reviewer', role: 'reviewer' },
  { id: 'usr_demo_developer', email: 'developer@demo.mpdp.dev', name: 'Dev Developer', role: 'developer' },
];
/** The demo platform operator (development demo data only; production bootstraps its own). */
export const demoOperator = { id: 'usr_demo_operator', email: 'operator@demo.mpdp.dev', name: 'Omar Operator' };
export const demoWorkspaceId = 'ws_demo';

/**
 * Creates the platform operator, or makes an existing account one and sets its password.
 * Idempotent; used at api start (OPERATOR_EMAIL + OPERATOR_PASSWORD) and by `npm run operator`.
 */
export async function ensureOperator(sequelize: Sequelize, o: { email: string; password: string; name?: string; id?: string }): Promise<{ id: string; created: boolean }> {
  const hash = await hashPassword(o.password);
  const [existing] = await sequelize.query<{ id: string }>('SELECT id FROM users WHERE lower(email) = lower(:email)', { replacements: { email: o.email }, type: QueryTypes.SELECT });
  if (existing) {
    await sequelize.query('UPDATE users SET is_operator = true, password_hash = :hash WHERE id = :id', { replacements: { id: existing.id, hash } });
    return { id: existing.id, created: false };
  }
  const id = o.id ?? newId('usr');
  await sequelize.query(
    `INSERT INTO users (id, email, name, password_hash, is_operator) VALUES (:id, :email, :name, :hash, true)
     ON CONFLICT (email) DO UPDATE SET is_operator = true, password_hash = EXCLUDED.password_hash`,
    { replacements: { id, email: o.email, name: o.name ?? 'Platform operator', hash } },
  );
  return { id, created: true };
}
export const demoMiniProgramId = 'mp_demo_mall';

/** Users and memberships straight into the tables (accounts are reference data, not a process). */
export async function seedUsers(sequelize: Sequelize, o: { workspaceId: string; workspaceName: string; code: string; users: { id: string; email: string; name: string; role: WorkspaceRole }[]; password: string }) {
  await sequelize.query(`INSERT INTO workspaces (id, name, code, type) VALUES (:id, :name, :code, 'merchant') ON CONFLICT (id) DO NOTHING`, { replacements: { id: o.workspaceId, name: o.workspaceName, code: o.code } });
  for (const u of o.users) {
    const [existing] = await sequelize.query('SELECT 1 FROM users WHERE id = :id', { replacements: { id: u.id }, type: QueryTypes.SELECT });
    if (!existing) {
      await sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash) ON CONFLICT DO NOTHING', { replacements: { ...u, hash: await hashPassword(o.password) } });
    }
    await sequelize.query('INSERT INTO memberships (workspace_id, user_id, role) VALUES (:ws, :id, :role) ON CONFLICT DO NOTHING', { replacements: { ws: o.workspaceId, id: u.id, role: u.role } });
  }
}

/** Waits (briefly) until a pipeline reaches one of the statuses. */
async function pipelineReaches(temporal: Client, workflowId: string, statuses: ReleaseStatus[]) {
  for (let i = 0; i < 200; i++) {
    const s = await temporal.workflow.getHandle(workflowId).query(releaseStatusQuery).catch(() => null);
    if (s && statuses.includes(s.status)) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`demo data: ${workflowId} did not reach ${statuses.join('/')}`);
}

/** Starts (or finds) a demo mini program's entity and waits until the read model lists it. */
async function demoMiniProgram(o: { temporal: Client; taskQueue: string }, input: MiniProgramInput) {
  try {
    await o.temporal.workflow.start('miniProgramEntity', {
      workflowId: miniProgramWorkflowId(input.miniProgramId), taskQueue: o.taskQueue, args: [input],
      typedSearchAttributes: [{ key: WorkspaceIdKey, value: input.workspaceId }, { key: MiniProgramIdKey, value: input.miniProgramId }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  const handle = o.temporal.workflow.getHandle(miniProgramWorkflowId(input.miniProgramId));
  await handle.executeUpdate(syncUpdate, { args: [] });
  return handle;
}

/**
 * The demo workspace, its three users, and two mini programs with a history worth looking at:
 * Demo Mall has 1.0.0 live, 1.1.0 rolling out (stage 2 of 5) and 1.2.0 uploaded; Demo Coffee has
 * 1.0.0 waiting in the approvals inbox. Idempotent: versions are only added to an empty mini program.
 */
export async function seedDemo(o: { sequelize: Sequelize; temporal: Client; taskQueue: string; password: string; reviewReminderMs: number; store?: PackageStore; release?: ReleaseConfig }) {
  await seedUsers(o.sequelize, { workspaceId: demoWorkspaceId, workspaceName: 'Demo Shop Group', code: 'DEMO', users: demoUsers, password: o.password });
  const [op] = await o.sequelize.query('SELECT 1 FROM users WHERE id = :id', { replacements: { id: demoOperator.id }, type: QueryTypes.SELECT });
  if (!op) await ensureOperator(o.sequelize, { ...demoOperator, password: o.password });
  const base = { workspaceId: demoWorkspaceId, createdBy: 'usr_demo_developer', createdAt: new Date().toISOString(), releaseConfig: { reviewReminderMs: o.reviewReminderMs } };
  const mall = await demoMiniProgram(o, { ...base, miniProgramId: demoMiniProgramId, name: 'Demo Mall', description: 'A shop with a catalogue, cart, orders and a member centre.', category: 'shopping', icon: '🛍' });
  const coffee = await demoMiniProgram(o, { ...base, miniProgramId: 'mp_demo_coffee', name: 'Demo Coffee', description: 'Order ahead and collect at the counter.', category: 'food', icon: '☕' });
  if (!o.store || !o.release) return;
  const store = o.store;
  const config = o.release;
  const upload = async (handle: typeof mall, versionId: string, version: string, notes: string) => {
    const bytes = realisticPackage({ version });
    const { sha256, size } = await store.put(bytes);
    await handle.executeUpdate(uploadVersionUpdate, { args: [{ versionId, version, packageSha256: sha256, packageSize: size, pageCount: 12, notes, actorId: 'usr_demo_developer' }] });
  };
  const submit = (handle: typeof mall, versionId: string) =>
    handle.executeUpdate(submitUpdate, { args: [{ versionId, actorId: 'usr_demo_developer', policy: { requiredApprovals: 1 }, config }] });

  if ((await mall.query(miniProgramStatusQuery)).versions.length === 0) {
    await upload(mall, 'ver_demo_mall_100', '1.0.0', 'First release: catalogue, cart and checkout.');
    await submit(mall, 'ver_demo_mall_100');
    const r1 = o.temporal.workflow.getHandle(releaseWorkflowId('ver_demo_mall_100'));
    await pipelineReaches(o.temporal, r1.workflowId, ['in_review']);
    await r1.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_demo_reviewer', comment: 'Checked on iOS and Android.' }] });
    await r1.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_demo_developer', plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] }] });
    await pipelineReaches(o.temporal, r1.workflowId, ['released']);
    for (let i = 0; i < 100 && (await mall.query(miniProgramStatusQuery)).activePipelineId; i++) await new Promise((r) => setTimeout(r, 100));

    await upload(mall, 'ver_demo_mall_110', '1.1.0', 'Member centre and order history.');
    await submit(mall, 'ver_demo_mall_110');
    const r2 = o.temporal.workflow.getHandle(releaseWorkflowId('ver_demo_mall_110'));
    await pipelineReaches(o.temporal, r2.workflowId, ['in_review']);
    await r2.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_demo_reviewer' }] });
    await r2.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_demo_developer' }] });
    await r2.executeUpdate(advanceUpdate, { args: [{ actorId: 'usr_demo_developer', comment: 'Stage 1 looked fine.' }] });
    await upload(mall, 'ver_demo_mall_120', '1.2.0', 'Coupons at checkout.');
  }
  if ((await coffee.query(miniProgramStatusQuery)).versions.length === 0) {
    await upload(coffee, 'ver_demo_coffee_100', '1.0.0', 'Menu, order ahead and pickup codes.');
    await submit(coffee, 'ver_demo_coffee_100');
  }
}
