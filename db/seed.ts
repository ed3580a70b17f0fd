import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { QueryTypes, type Sequelize } from 'sequelize';
import { hashPassword } from '../api/passwords.js';
import { newId } from '../lib/ids.js';
import type { WorkspaceRole } from '../lib/permissions.js';
import { miniProgramWorkflowId, syncUpdate, type MiniProgramInput } from '../workflows/contracts/mini-program.js';
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

/** The demo workspace, its three users and one mini program. Idempotent. */
export async function seedDemo(o: { sequelize: Sequelize; temporal: Client; taskQueue: string; password: string; reviewReminderMs: number }) {
  await seedUsers(o.sequelize, { workspaceId: demoWorkspaceId, workspaceName: 'Demo Shop Group', code: 'DEMO', users: demoUsers, password: o.password });
  const [op] = await o.sequelize.query('SELECT 1 FROM users WHERE id = :id', { replacements: { id: demoOperator.id }, type: QueryTypes.SELECT });
  if (!op) await ensureOperator(o.sequelize, { ...demoOperator, password: o.password });
  const input: MiniProgramInput = {
    miniProgramId: demoMiniProgramId, workspaceId: demoWorkspaceId, name: 'Demo Mall', description: 'A shop with a catalogue, cart, orders and a member centre.',
    category: 'shopping', icon: '🛍', createdBy: 'usr_demo_developer', createdAt: new Date().toISOString(), releaseConfig: { reviewReminderMs: o.reviewReminderMs },
  };
  try {
    await o.temporal.workflow.start('miniProgramEntity', {
      workflowId: miniProgramWorkflowId(demoMiniProgramId), taskQueue: o.taskQueue, args: [input],
      typedSearchAttributes: [{ key: WorkspaceIdKey, value: demoWorkspaceId }, { key: MiniProgramIdKey, value: demoMiniProgramId }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  await o.temporal.workflow.getHandle(miniProgramWorkflowId(demoMiniProgramId)).executeUpdate(syncUpdate, { args: [] });
}
