import { ApplicationFailure, Context } from '@temporalio/activity';
import { QueryTypes, type Transaction } from 'sequelize';
import type { ActivityDeps, AuditInput } from './index.js';
import { appendAudit } from './audit.js';
import { createOutbox, renderMail, type NotificationKind } from './mail.js';
import type { FeatureActivationState, FeatureChangeState, FeatureDiff, FeatureFields, FeatureStatus } from '../workflows/contracts/feature-change.js';
import { FailureType } from '../workflows/contracts/errors.js';

/** A feature as a revision's snapshot records it. */
export type FeatureSnapshot = FeatureFields & { status: FeatureStatus };

/** What changed from one snapshot to the next (before null: an addition, every field is new). */
export function featureDiff(before: FeatureSnapshot | null, after: FeatureSnapshot): FeatureDiff {
  const fields: FeatureDiff['fields'] = {};
  for (const f of ['key', 'name', 'description', 'accessMode', 'status'] as const) {
    const from = before ? before[f] : null;
    if (from !== after[f]) fields[f] = { from, to: after[f] };
  }
  const old = new Set(before?.jsapis ?? []);
  const now = new Set(after.jsapis);
  return { fields, jsapis: { added: [...now].filter((a) => !old.has(a)).sort(), removed: [...old].filter((a) => !now.has(a)).sort() } };
}

/** A one-line account of a diff, for the audit log. */
export function describeDiff(d: FeatureDiff): string {
  const parts = Object.entries(d.fields).map(([f, v]) => `${f}: ${v.from === null ? '' : `${JSON.stringify(v.from)} → `}${JSON.stringify(v.to)}`);
  if (d.jsapis.added.length) parts.push(`+${d.jsapis.added.join(', +')}`);
  if (d.jsapis.removed.length) parts.push(`-${d.jsapis.removed.join(', -')}`);
  return parts.join('; ') || 'no change';
}

export interface FeatureMailInput {
  /** Minted in the workflow per step; each recipient's mail is keyed `${dedupeKey}:${userId}`. */
  dedupeKey: string;
  workspaceId: string;
  /** reviewers: the workspace's Reviewers and Admins except userId; proposer: userId alone. */
  audience: 'reviewers' | 'proposer';
  userId: string;
  /** {proposer}/{requester} (userId's name), {feature} and {miniProgram} are replaced by names. */
  subject: string;
  paragraphs: string[];
  /** A console path. */
  link: string;
  kind: NotificationKind;
  miniProgramId?: string;
  featureId?: string;
}

interface FeatureRow { id: string; workspace_id: string; key: string; name: string; description: string; access_mode: 'direct' | 'activation'; jsapis: string[]; status: FeatureStatus; revision: number }
interface ChangeRow { id: string; workspace_id: string; feature_id: string; kind: 'add' | 'edit' | 'archive'; proposal: FeatureFields; status: string; proposed_by: string; created_at: Date }

const snapshotOf = (f: FeatureRow): FeatureSnapshot => ({ key: f.key, name: f.name, description: f.description, accessMode: f.access_mode, jsapis: [...f.jsapis], status: f.status });

function heartbeat(details: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    /* not in an activity context */
  }
}

/** Activities of the featureChange and featureActivation workflows. */
export function createFeatureActivities({ sequelize, mailer, publicUrl }: ActivityDeps) {
  const sendOnce = createOutbox(sequelize, mailer);

  return {
    /** Moves a change row forward with its audit line; a late write with a lower seq changes nothing. */
    async projectFeatureChange(input: { state: FeatureChangeState; at: string; audit: AuditInput }): Promise<void> {
      const s = input.state;
      await sequelize.transaction(async (transaction) => {
        await sequelize.query(
          `UPDATE feature_changes SET status = :status, decided_by = :decidedBy, decided_at = :decidedAt, reason = :reason, updated_at = :at, seq = :seq
           WHERE id = :changeId AND seq < :seq`,
          { replacements: { status: s.status, decidedBy: s.decidedBy, decidedAt: s.decidedAt, reason: s.reason, at: input.at, seq: s.seq, changeId: s.changeId }, transaction },
        );
        await appendAudit(sequelize, input.audit, transaction);
      });
    },

    /**
     * Applies an approved change in one transaction: the feature's next revision (snapshot and the
     * diff against the current row), the feature row, the change row and the audit lines. Idempotent:
     * a retry finds the revision written for this change and answers it.
     */
    async applyFeatureChange(input: { changeId: string; actorId: string; comment: string | null; at: string; seq: number; auditKey: string }): Promise<{ revision: number; diff: FeatureDiff }> {
      return sequelize.transaction(async (transaction: Transaction) => {
        const [change] = await sequelize.query<ChangeRow>('SELECT * FROM feature_changes WHERE id = :changeId FOR UPDATE', { replacements: input, type: QueryTypes.SELECT, transaction });
        if (!change) throw ApplicationFailure.nonRetryable(`no feature change ${input.changeId}`, FailureType.notFound);
        const [done] = await sequelize.query<{ revision: number; diff: FeatureDiff }>('SELECT revision, diff FROM feature_revisions WHERE change_id = :changeId', {
          replacements: input, type: QueryTypes.SELECT, transaction,
        });
        if (done) return done;
        if (change.status !== 'pending') throw ApplicationFailure.nonRetryable(`the change is ${change.status}`, FailureType.wrongState);
        const [feature] = await sequelize.query<FeatureRow>('SELECT * FROM features WHERE id = :id FOR UPDATE', { replacements: { id: change.feature_id }, type: QueryTypes.SELECT, transaction });
        if (change.kind !== 'add' && !feature) throw ApplicationFailure.nonRetryable(`no feature ${change.feature_id}`, FailureType.notFound);
        if (change.kind === 'add' && feature) throw ApplicationFailure.nonRetryable(`the feature ${change.feature_id} exists already`, FailureType.conflict);
        const before = feature ? snapshotOf(feature) : null;
        const p = change.proposal;
        const after: FeatureSnapshot = change.kind === 'archive'
          ? { ...before!, status: 'archived' }
          : { key: before?.key ?? p.key, name: p.name, description: p.description, accessMode: p.accessMode, jsapis: [...p.jsapis], status: 'active' };
        const diff = featureDiff(before, after);
        const revision = (feature?.revision ?? 0) + 1;
        const row = {
          id: change.feature_id, workspaceId: change.workspace_id, key: after.key, name: after.name, description: after.description, accessMode: after.accessMode,
          jsapis: after.jsapis, status: after.status, revision, createdBy: change.proposed_by, at: input.at,
        };
        if (change.kind === 'add') {
          try {
            await sequelize.query(
              `INSERT INTO features (id, workspace_id, key, name, description, access_mode, jsapis, status, revision, created_by, created_at, updated_at)
               VALUES (:id, :workspaceId, :key, :name, :description, :accessMode, ARRAY(SELECT jsonb_array_elements_text(CAST(:jsapis AS jsonb))), :status, :revision, :createdBy, :at, :at)`,
              { replacements: { ...row, jsapis: JSON.stringify(row.jsapis) }, transaction },
            );
          } catch (err) {
            if (/unique|duplicate/i.test(String((err as { parent?: Error }).parent?.message ?? (err as Error).message))) {
              throw ApplicationFailure.nonRetryable(`a feature with the key ${after.key} exists already`, FailureType.conflict);
            }
            throw err;
          }
        } else {
          await sequelize.query(
            `UPDATE features SET name = :name, description = :description, access_mode = :accessMode, jsapis = ARRAY(SELECT jsonb_array_elements_text(CAST(:jsapis AS jsonb))), status = :status, revision = :revision, updated_at = :at
             WHERE id = :id`,
            { replacements: { ...row, jsapis: JSON.stringify(row.jsapis) }, transaction },
          );
        }
        await sequelize.query(
          `INSERT INTO feature_revisions (feature_id, revision, snapshot, diff, kind, change_id, proposed_by, proposed_at, approved_by, approved_at, comment)
           VALUES (:id, :revision, :snapshot, :diff, :kind, :changeId, :proposedBy, :proposedAt, :actorId, :at, :comment)`,
          {
            replacements: {
              id: change.feature_id, revision, snapshot: JSON.stringify(after), diff: JSON.stringify(diff), kind: change.kind, changeId: change.id,
              proposedBy: change.proposed_by, proposedAt: change.created_at, actorId: input.actorId, at: input.at, comment: input.comment,
            },
            transaction,
          },
        );
        await sequelize.query(
          `UPDATE feature_changes SET status = 'approved', decided_by = :actorId, decided_at = :at, reason = :comment, updated_at = :at, seq = GREATEST(seq, :seq) WHERE id = :changeId`,
          { replacements: input, transaction },
        );
        await appendAudit(sequelize, {
          dedupeKey: input.auditKey, workspaceId: change.workspace_id, subjectType: 'feature_change', subjectId: change.id, actorId: input.actorId,
          action: 'approved', fromState: 'pending', toState: 'approved', comment: input.comment, at: input.at,
        }, transaction);
        await appendAudit(sequelize, {
          dedupeKey: `${input.auditKey}:feature`, workspaceId: change.workspace_id, subjectType: 'feature', subjectId: change.feature_id, actorId: input.actorId,
          action: change.kind === 'add' ? 'created' : change.kind === 'edit' ? 'edited' : 'archived', fromState: feature ? `revision ${feature.revision}` : null,
          toState: `revision ${revision}`, comment: describeDiff(diff), at: input.at,
        }, transaction);
        return { revision, diff };
      });
    },

    /** Moves a mini program's application row forward (this attempt only) with its audit line. */
    async projectFeatureActivation(input: { state: FeatureActivationState; at: string; audit: AuditInput }): Promise<void> {
      const s = input.state;
      await sequelize.transaction(async (transaction) => {
        await sequelize.query(
          `UPDATE mini_program_features SET status = :status, decided_by = :decidedBy, decided_at = :decidedAt, reason = :reason, updated_at = :at, seq = :seq
           WHERE mini_program_id = :miniProgramId AND feature_id = :featureId AND attempt = :attempt AND seq < :seq`,
          {
            replacements: { status: s.status, decidedBy: s.decidedBy, decidedAt: s.decidedAt, reason: s.reason, at: input.at, seq: s.seq, miniProgramId: s.miniProgramId, featureId: s.featureId, attempt: s.attempt },
            transaction,
          },
        );
        await appendAudit(sequelize, input.audit, transaction);
      });
    },

    /** Mails the workspace's Reviewers and Admins (except the proposer), or the proposer, once each. */
    async notifyFeature(input: FeatureMailInput): Promise<{ sent: number; skipped: number }> {
      const recipients = await sequelize.query<{ id: string; email: string; name: string }>(
        input.audience === 'reviewers'
          ? `SELECT u.id, u.email, u.name FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = :workspaceId AND m.role IN ('reviewer', 'admin') AND m.status = 'active' AND u.id <> :userId ORDER BY u.id`
          : 'SELECT id, email, name FROM users WHERE id = :userId',
        { replacements: { workspaceId: input.workspaceId, userId: input.userId }, type: QueryTypes.SELECT },
      );
      const [names] = await sequelize.query<{ person: string | null; workspace: string | null; feature: string | null; mini_program: string | null }>(
        `SELECT (SELECT name FROM users WHERE id = :userId) AS person, (SELECT name FROM workspaces WHERE id = :workspaceId) AS workspace,
                (SELECT name FROM features WHERE id = :featureId) AS feature, (SELECT name FROM mini_programs WHERE id = :miniProgramId) AS mini_program`,
        { replacements: { ...input, featureId: input.featureId ?? null, miniProgramId: input.miniProgramId ?? null }, type: QueryTypes.SELECT },
      );
      const fill = (s: string) => s
        .replace(/\{(proposer|requester)\}/g, names?.person ?? 'A member').replace(/\{feature\}/g, names?.feature ?? 'a feature').replace(/\{miniProgram\}/g, names?.mini_program ?? 'a mini program');
      let sent = 0;
      let skipped = 0;
      for (const r of recipients) {
        heartbeat(r.id);
        const outcome = await sendOnce(`${input.dedupeKey}:${r.id}`, {
          to: r.email, subject: fill(input.subject), workspaceId: input.workspaceId, userId: r.id, kind: input.kind,
          ...renderMail({
            workspaceName: names?.workspace, greeting: `Hello ${r.name},`, paragraphs: input.paragraphs.map(fill),
            action: { label: input.audience === 'reviewers' ? 'Review it' : 'Open it', url: `${publicUrl}${input.link}` },
          }),
        });
        if (outcome === 'sent') sent++;
        else skipped++;
      }
      return { sent, skipped };
    },
  };
}
