import { Context } from '@temporalio/activity';
import { QueryTypes } from 'sequelize';
import type { PipelineKind, ReleaseState } from '../workflows/contracts/release.js';
import type { ActivityDeps, AuditInput } from './index.js';
import { announce, appendAudit } from './audit.js';
import { createOutbox, renderMail, type NotificationKind } from './mail.js';

/** The pipeline's row, as the read model keeps it (the timeline lives in the audit log). */
export type PipelineRow = Omit<ReleaseState, 'timeline' | 'waitingFor'> & { waitingFor: string; at: string; decidedAt: string | null };

export interface RolloutRow {
  versionId: string;
  baselineVersionId: string | null;
  percent: number;
  whitelist: boolean;
  /** rolling_out / paused: the cohort gets versionId; completed: everyone; otherwise the baseline. */
  status: string;
  epoch: number;
}

export interface PipelineProjection {
  pipeline: PipelineRow;
  /** The version row's new status (release pipelines, and a rollback's target once live). */
  versionStatus?: { status: string; seq: number; releasedAt?: string | null; decidedBy?: string | null; decisionComment?: string | null };
  rollout?: RolloutRow;
  audit?: AuditInput;
}

export type Audience = 'reviewers' | 'admins' | 'user';

export interface PipelineMail {
  dedupeKey: string;
  audience: Audience;
  workspaceId: string;
  /** audience 'user': who; otherwise: who is left out (the submitter never reviews their own). */
  userId?: string | null;
  subject: string;
  paragraphs: string[];
  /** Path in the console, e.g. /w/<ws>/mini-programs/<mp>/versions/<v>. */
  link: string;
  linkLabel: string;
  /** The notification kind (recipients may turn it off); derived from the dedupe key when omitted. */
  kind?: NotificationKind;
}

/**
 * The kind of a pipeline mail from its step (the dedupe key's suffix): review requests, reminders
 * and escalations are review_requests; the decision is decisions; an auto-halt is halts; every
 * other pipeline notice (stages, release) is rollouts.
 */
export function pipelineMailKind(m: Pick<PipelineMail, 'dedupeKey' | 'kind'>): NotificationKind {
  if (m.kind) return m.kind;
  if (/:review-(requested|reminder|escalation)$/.test(m.dedupeKey)) return 'review_requests';
  if (/:decision$/.test(m.dedupeKey)) return 'decisions';
  if (/:halted(:|$)/.test(m.dedupeKey)) return 'halts';
  return 'rollouts';
}

const kindLabel: Record<PipelineKind, string> = { release: 'release', rollback: 'rollback', offline: 'take-offline request' };
export const pipelineKindLabel = (k: PipelineKind) => kindLabel[k];

function heartbeat(details: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    /* called outside an activity (tests) */
  }
}

/** Projections and mails of pipelines (release, rollback, offline). Idempotent by seq and dedupe key. */
export function createPipelineActivities({ sequelize, mailer, publicUrl }: ActivityDeps) {
  const sendOnce = createOutbox(sequelize, mailer);

  return {
    /**
     * One transaction: the pipeline row, the version row, the rollout row the runtime resolves
     * from, the audit entry, and a change notice. Every write is guarded by seq (rollouts by epoch
     * then seq), so a retried or late projection changes nothing.
     */
    async projectPipeline(p: PipelineProjection): Promise<void> {
      const r = p.pipeline;
      await sequelize.transaction(async (transaction) => {
        await sequelize.query(
          `INSERT INTO pipelines (id, kind, workspace_id, mini_program_id, version_id, version, status, hotfix, submitted_by, submitted_at, reason, baseline_version_id,
             review_requested_at, sla_due_at, reminded_at, escalated_at, required_approvals, approvals, rejection, decided_by, decided_at, released_at, rollout, stuck, waiting_for, updated_at, seq)
           VALUES (:id, :kind, :workspaceId, :miniProgramId, :versionId, :version, :status, :hotfix, :submittedBy, :submittedAt, :reason, :baselineVersionId,
             :reviewRequestedAt, :slaDueAt, :remindedAt, :escalatedAt, :requiredApprovals, CAST(:approvals AS jsonb), CAST(:rejection AS jsonb), :decidedBy, :decidedAt, :releasedAt,
             CAST(:rollout AS jsonb), CAST(:stuck AS jsonb), :waitingFor, :at, :seq)
           ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, review_requested_at = EXCLUDED.review_requested_at, sla_due_at = EXCLUDED.sla_due_at,
             reminded_at = EXCLUDED.reminded_at, escalated_at = EXCLUDED.escalated_at, required_approvals = EXCLUDED.required_approvals, approvals = EXCLUDED.approvals,
             rejection = EXCLUDED.rejection, decided_by = EXCLUDED.decided_by, decided_at = EXCLUDED.decided_at, released_at = EXCLUDED.released_at,
             rollout = EXCLUDED.rollout, stuck = EXCLUDED.stuck, waiting_for = EXCLUDED.waiting_for, updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq
           WHERE pipelines.seq < EXCLUDED.seq`,
          {
            replacements: {
              id: r.pipelineId, kind: r.kind, workspaceId: r.workspaceId, miniProgramId: r.miniProgramId, versionId: r.versionId, version: r.version, status: r.status,
              hotfix: r.hotfix, submittedBy: r.submitterId, submittedAt: r.submittedAt, reason: r.reason, baselineVersionId: r.baselineVersionId,
              reviewRequestedAt: r.reviewRequestedAt, slaDueAt: r.slaDueAt, remindedAt: r.remindedAt, escalatedAt: r.escalatedAt, requiredApprovals: r.requiredApprovals,
              approvals: JSON.stringify(r.approvals), rejection: r.rejection ? JSON.stringify(r.rejection) : null, decidedBy: r.decidedBy, decidedAt: r.decidedAt,
              releasedAt: r.releasedAt, rollout: r.rollout ? JSON.stringify(r.rollout) : null, stuck: r.stuck ? JSON.stringify(r.stuck) : null,
              waitingFor: r.waitingFor, at: r.at, seq: r.seq,
            },
            transaction,
          },
        );
        const v = p.versionStatus;
        if (v) {
          await sequelize.query(
            `UPDATE versions SET status = :status, updated_at = :at, seq = :seq,
               submitted_by = CASE WHEN :kind = 'release' THEN :submittedBy ELSE submitted_by END,
               submitted_at = CASE WHEN :kind = 'release' THEN CAST(:submittedAt AS timestamptz) ELSE submitted_at END,
               decided_by = COALESCE(:decidedBy, decided_by), decision_comment = COALESCE(:decisionComment, decision_comment),
               released_at = COALESCE(CAST(:releasedAt AS timestamptz), released_at)
             WHERE id = :versionId AND seq < :seq`,
            {
              replacements: {
                status: v.status, seq: v.seq, at: r.at, kind: r.kind, submittedBy: r.submitterId, submittedAt: r.submittedAt, decidedBy: v.decidedBy ?? null,
                decisionComment: v.decisionComment ?? null, releasedAt: v.releasedAt ?? null, versionId: r.versionId,
              },
              transaction,
            },
          );
        }
        const o = p.rollout;
        if (o) {
          await sequelize.query(
            `INSERT INTO rollouts (mini_program_id, workspace_id, pipeline_id, version_id, baseline_version_id, percent, whitelist, status, epoch, seq, updated_at)
             VALUES (:miniProgramId, :workspaceId, :pipelineId, :versionId, :baselineVersionId, :percent, :whitelist, :status, :epoch, :seq, :at)
             ON CONFLICT (mini_program_id) DO UPDATE SET workspace_id = EXCLUDED.workspace_id, pipeline_id = EXCLUDED.pipeline_id, version_id = EXCLUDED.version_id,
               baseline_version_id = EXCLUDED.baseline_version_id, percent = EXCLUDED.percent, whitelist = EXCLUDED.whitelist, status = EXCLUDED.status,
               epoch = EXCLUDED.epoch, seq = EXCLUDED.seq, updated_at = EXCLUDED.updated_at
             WHERE rollouts.epoch < EXCLUDED.epoch OR (rollouts.epoch = EXCLUDED.epoch AND rollouts.seq < EXCLUDED.seq)`,
            { replacements: { ...o, miniProgramId: r.miniProgramId, workspaceId: r.workspaceId, pipelineId: r.pipelineId, seq: r.seq, at: r.at }, transaction },
          );
        }
        if (p.audit) await appendAudit(sequelize, p.audit, transaction);
        await announce(sequelize, { workspaceId: r.workspaceId, miniProgramId: r.miniProgramId, versionId: r.versionId, kind: 'version', status: r.status, seq: r.seq }, transaction);
      });
    },

    /** Mails reviewers, Admins or one person about a pipeline; once per recipient per dedupe key. */
    async notifyPipeline(m: PipelineMail): Promise<{ sent: number; skipped: number }> {
      type Person = { id: string; email: string; name: string };
      const people: Person[] =
        m.audience === 'user'
          ? await sequelize.query<Person>('SELECT id, email, name FROM users WHERE id = :userId', { replacements: { userId: m.userId ?? '' }, type: QueryTypes.SELECT })
          : await sequelize.query<Person>(
            `SELECT u.id, u.email, u.name FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = :workspaceId AND m.role IN (:roles) AND u.id <> :userId ORDER BY u.id`,
            { replacements: { workspaceId: m.workspaceId, roles: m.audience === 'admins' ? ['admin'] : ['reviewer', 'admin'], userId: m.userId ?? '' }, type: QueryTypes.SELECT },
          );
      const [workspace] = await sequelize.query<{ name: string }>('SELECT name FROM workspaces WHERE id = :workspaceId', { replacements: { workspaceId: m.workspaceId }, type: QueryTypes.SELECT });
      let sent = 0;
      let skipped = 0;
      for (const person of people) {
        heartbeat(person.id);
        const outcome = await sendOnce(`${m.dedupeKey}:${person.id}`, {
          to: person.email, workspaceId: m.workspaceId, userId: person.id, kind: pipelineMailKind(m),
          subject: m.subject,
          ...renderMail({ workspaceName: workspace?.name, greeting: `Hello ${person.name},`, paragraphs: m.paragraphs, action: { label: m.linkLabel, url: `${publicUrl}${m.link}` } }),
        });
        if (outcome === 'sent') sent++;
        else skipped++;
      }
      return { sent, skipped };
    },
  };
}
