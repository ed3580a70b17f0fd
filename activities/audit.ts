import type { Sequelize, Transaction } from 'sequelize';
import type { AuditInput, ChangeEvent } from './index.js';

/** The channel projections announce changes on; the API fans them out as server-sent events. */
export const changeChannel = 'mpdp_changes';

/** One audit line per dedupe key: a retried projection writes it once. */
export async function appendAudit(sequelize: Sequelize, a: AuditInput, transaction?: Transaction) {
  await sequelize.query(
    `INSERT INTO audit_log (dedupe_key, workspace_id, subject_type, subject_id, actor_id, action, from_state, to_state, comment, at)
     VALUES (:dedupeKey, :workspaceId, :subjectType, :subjectId, :actorId, :action, :fromState, :toState, :comment, :at)
     ON CONFLICT (dedupe_key) DO NOTHING`,
    { replacements: { ...a, comment: a.comment ?? null }, transaction },
  );
}

/** Tells the API (and through it the console) that a mini program or version changed. */
export async function announce(sequelize: Sequelize, e: ChangeEvent, transaction?: Transaction) {
  await sequelize.query('SELECT pg_notify(:channel, :payload)', { replacements: { channel: changeChannel, payload: JSON.stringify(e) }, transaction });
}
