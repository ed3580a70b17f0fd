import { Context } from '@temporalio/activity';
import { ApplicationFailure, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { QueryTypes, type Transaction } from 'sequelize';
import type { ActivityDeps, AuditInput } from './index.js';
import { createDetailedOutbox, renderMail } from './mail.js';
import type { AuthorizationState, IsvScope, RevocationReport } from '../workflows/contracts/authorization.js';
import { FailureType } from '../workflows/contracts/errors.js';
import { releaseStatusQuery, withdrawUpdate } from '../workflows/contracts/release.js';
import { appendAudit } from './audit.js';

export interface AuthorizationProjection {
  state: AuthorizationState;
  at: string;
  audit: AuditInput;
}

export interface AuthorizationMailInput {
  /** Minted in the workflow per step; each recipient's mail is keyed `${dedupeKey}:${userId}`, so a retry sends once. */
  dedupeKey: string;
  /** Whose Admins are mailed. */
  audience: 'merchant_admins' | 'developer_admins' | 'both';
  authorizationId: string;
  developerWorkspaceId: string;
  merchantWorkspaceId: string;
  /** {developer}, {merchant}, {programs} and {scope} are replaced by names. */
  subject: string;
  paragraphs: string[];
  miniProgramIds: string[];
  scope: IsvScope[];
  /** Link into the console (a path under the recipient's workspace); default the authorization page. */
  link?: string;
  /** Records each recipient as a `mailed` item of this authorization's revocation, and answers all of them. */
  recordFor?: string;
}

/** What a revocation cascade step works on: the grant's mini programs in the merchant's workspace. */
export interface RevocationScope {
  authorizationId: string;
  developerWorkspaceId: string;
  merchantWorkspaceId: string;
  miniProgramIds: string[];
}

type Withdrawn = RevocationReport['withdrawn'][number];
type LeftRunning = RevocationReport['leftRunning'][number];

/** Pipelines the merchant's reviewers have not decided yet: the revocation withdraws them. */
const undecided = ['validating', 'in_review'];
/** Pipelines the merchant approved: left as they are, and listed. */
const decided = ['approved', 'rolling_out', 'paused'];
/** The comment a revocation's withdrawal carries in the pipeline's timeline (how a re-run recognises its own). */
const withdrawComment = 'authorization revoked';

function heartbeat(details: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    /* not in an activity context (called directly in a test) */
  }
}

const iso = (v: string | Date) => new Date(v).toISOString();

/** Activities of the developerAuthorization workflow: its projection, its mails and the revocation cascade. */
export function createAuthorizationActivities({ sequelize, mailer, publicUrl, temporal }: ActivityDeps) {
  const sendOnce = createDetailedOutbox(sequelize, mailer);

  /** Users of the developer workspace who are not also members of the merchant's: whose work the revocation cuts. */
  const isvMembers = `SELECT d.user_id FROM memberships d WHERE d.workspace_id = :developerWorkspaceId
    AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.workspace_id = :merchantWorkspaceId AND m.user_id = d.user_id)`;

  async function items(authorizationId: string, kinds: string[], transaction?: Transaction) {
    return sequelize.query<{ kind: string; item_id: string; detail: Record<string, unknown>; at: Date }>(
      'SELECT kind, item_id, detail, at FROM revocation_items WHERE authorization_id = :authorizationId AND kind IN (:kinds) ORDER BY at, item_id',
      { replacements: { authorizationId, kinds }, type: QueryTypes.SELECT, transaction },
    );
  }

  async function record(authorizationId: string, kind: string, itemId: string, detail: Record<string, unknown>) {
    await sequelize.query(
      `INSERT INTO revocation_items (authorization_id, kind, item_id, detail) VALUES (:authorizationId, :kind, :itemId, CAST(:detail AS jsonb))
       ON CONFLICT DO NOTHING`,
      { replacements: { authorizationId, kind, itemId, detail: JSON.stringify(detail) } },
    );
  }

  return {
    /**
     * Upserts the authorizations row (never backwards: guarded by seq), appends the audit line
     * and, once a revocation runs, keeps its report in revocation_reports, in one transaction.
     */
    async projectAuthorization({ state: s, at, audit }: AuthorizationProjection): Promise<void> {
      await sequelize.transaction(async (transaction) => {
        const [rows] = await sequelize.query(
          `INSERT INTO authorizations (id, developer_workspace_id, merchant_workspace_id, status, requested_mini_program_ids, requested_scope, mini_program_ids, scope,
             ends_at, message, requested_by, requested_at, request_expires_at, decided_by, decided_at, decision_reason, revoke_trigger, revoked_by, revoke_reason,
             revoke_scheduled_at, revoked_at, updated_at, seq)
           VALUES (:authorizationId, :developerWorkspaceId, :merchantWorkspaceId, :status, ARRAY[:requestedMiniProgramIds]::text[], ARRAY[:requestedScope]::text[],
             CAST(:miniProgramIds AS text[]), CAST(:scope AS text[]), :endsAt, :message, :requestedBy, :requestedAt, :requestExpiresAt, :decidedBy, :decidedAt,
             :decisionReason, :revokeTrigger, :revokedBy, :revokeReason, :revokeScheduledAt, :revokedAt, :at, :seq)
           ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, mini_program_ids = EXCLUDED.mini_program_ids, scope = EXCLUDED.scope, ends_at = EXCLUDED.ends_at,
             decided_by = EXCLUDED.decided_by, decided_at = EXCLUDED.decided_at, decision_reason = EXCLUDED.decision_reason, revoke_trigger = EXCLUDED.revoke_trigger,
             revoked_by = EXCLUDED.revoked_by, revoke_reason = EXCLUDED.revoke_reason, revoke_scheduled_at = EXCLUDED.revoke_scheduled_at,
             revoked_at = EXCLUDED.revoked_at, updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq
           WHERE authorizations.seq < EXCLUDED.seq
           RETURNING id`,
          {
            replacements: {
              ...s, at,
              // Postgres array literals: an empty list cannot be written as ARRAY[].
              miniProgramIds: `{${s.miniProgramIds.map((id) => JSON.stringify(id)).join(',')}}`,
              scope: `{${s.scope.join(',')}}`,
            },
            transaction,
          },
        );
        if (s.report && (rows as unknown[]).length) {
          await sequelize.query(
            `INSERT INTO revocation_reports (authorization_id, report, started_at, completed_at) VALUES (:id, CAST(:report AS jsonb), :startedAt, :completedAt)
             ON CONFLICT (authorization_id) DO UPDATE SET report = EXCLUDED.report, completed_at = EXCLUDED.completed_at`,
            { replacements: { id: s.authorizationId, report: JSON.stringify(s.report), startedAt: s.report.requestedAt, completedAt: s.report.completedAt }, transaction },
          );
        }
        await appendAudit(sequelize, audit, transaction);
      });
    },

    /** Mails the Admins of one side or both, once per recipient and step; answers who was mailed. */
    async notifyAuthorization(input: AuthorizationMailInput): Promise<{ to: string; at: string }[]> {
      const workspaces = input.audience === 'both' ? [input.merchantWorkspaceId, input.developerWorkspaceId]
        : input.audience === 'merchant_admins' ? [input.merchantWorkspaceId] : [input.developerWorkspaceId];
      const admins = await sequelize.query<{ id: string; email: string; name: string; workspace_id: string }>(
        `SELECT u.id, u.email, u.name, m.workspace_id FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.workspace_id IN (:workspaces) AND m.role = 'admin' AND m.status = 'active' ORDER BY array_position(ARRAY[:workspaces]::text[], m.workspace_id), u.id`,
        { replacements: { workspaces }, type: QueryTypes.SELECT },
      );
      const names = new Map(
        (await sequelize.query<{ id: string; name: string }>('SELECT id, name FROM workspaces WHERE id IN (:ids)', {
          replacements: { ids: [input.merchantWorkspaceId, input.developerWorkspaceId] }, type: QueryTypes.SELECT,
        })).map((w) => [w.id, w.name]),
      );
      const programs = input.miniProgramIds.length
        ? (await sequelize.query<{ name: string }>('SELECT name FROM mini_programs WHERE id IN (:ids) ORDER BY name', { replacements: { ids: input.miniProgramIds }, type: QueryTypes.SELECT })).map((p) => p.name)
        : [];
      const fill = (text: string) => text
        .replaceAll('{developer}', names.get(input.developerWorkspaceId) ?? 'The developer workspace')
        .replaceAll('{merchant}', names.get(input.merchantWorkspaceId) ?? 'the merchant')
        .replaceAll('{programs}', programs.length ? programs.join(', ') : `${input.miniProgramIds.length} mini program(s)`)
        .replaceAll('{scope}', input.scope.join(', '));
      const mailed: { to: string; at: string }[] = [];
      const seen = new Set<string>();
      for (const admin of admins) {
        if (seen.has(admin.id)) continue; // an Admin of both sides gets one mail
        seen.add(admin.id);
        heartbeat(admin.id);
        const outcome = await sendOnce(`${input.dedupeKey}:${admin.id}`, {
          to: admin.email, workspaceId: admin.workspace_id, userId: admin.id, kind: 'authorizations',
          subject: fill(input.subject),
          ...renderMail({
            workspaceName: names.get(admin.workspace_id), greeting: `Hello ${admin.name},`, paragraphs: input.paragraphs.map(fill),
            action: { label: 'Open the authorization', url: `${publicUrl}/w/${admin.workspace_id}${input.link ?? `/authorizations/${input.authorizationId}`}` },
          }),
        });
        // An Admin who turned authorization mails off is not counted as mailed.
        if (outcome === 'suppressed') continue;
        if (input.recordFor) await record(input.recordFor, 'mailed', admin.email, { to: admin.email });
        mailed.push({ to: admin.email, at: new Date().toISOString() });
      }
      if (!input.recordFor) return mailed;
      return (await items(input.recordFor, ['mailed'])).map((i) => ({ to: i.item_id, at: iso(i.at) }));
    },

    /**
     * Withdraws the ISV's undecided submissions on the granted mini programs through their
     * pipelines' withdraw update (same update id on a retry, so a pipeline is told once), and
     * lists the ones the merchant already approved, which are left running. Answers every item
     * of this authorization, so a re-run after a crash reports each once.
     */
    async revokeWithdrawSubmissions(input: RevocationScope & { actorId: string }): Promise<{ withdrawn: Withdrawn[]; leftRunning: LeftRunning[] }> {
      const pipelines = await sequelize.query<{ id: string; version_id: string; version: string; mini_program_id: string; status: string; resume: string | null; live: boolean }>(
        `SELECT p.id, p.version_id, p.version, p.mini_program_id, p.status, p.stuck->>'resumeStatus' AS resume, mp.live_version_id = p.version_id AS live
         FROM pipelines p JOIN mini_programs mp ON mp.id = p.mini_program_id
         WHERE p.workspace_id = :merchantWorkspaceId AND p.mini_program_id IN (:miniProgramIds) AND p.submitted_by IN (${isvMembers})
           AND NOT EXISTS (SELECT 1 FROM revocation_items ri WHERE ri.authorization_id = :authorizationId AND ri.kind IN ('withdrawn', 'left_running') AND ri.item_id = p.id)
         ORDER BY p.submitted_at, p.id`,
        { replacements: { ...input }, type: QueryTypes.SELECT },
      );
      for (const p of pipelines) {
        heartbeat(p.id);
        const effective = p.status === 'stuck' ? p.resume ?? 'stuck' : p.status;
        const detail = { pipelineId: p.id, versionId: p.version_id, version: p.version, miniProgramId: p.mini_program_id, status: p.status };
        if (undecided.includes(effective) || p.status === 'withdrawn') {
          const outcome = p.status === 'withdrawn' ? (await withdrawnByUs(p.id, input) ? 'withdrawn' : null) : await withdraw(p.id, input);
          if (outcome === 'withdrawn') await record(input.authorizationId, 'withdrawn', p.id, detail);
          else if (outcome && decided.includes(outcome)) await record(input.authorizationId, 'left_running', p.id, { ...detail, status: outcome });
        } else if (decided.includes(effective) || (p.status === 'released' && p.live)) {
          await record(input.authorizationId, 'left_running', p.id, detail);
        }
      }
      const all = await items(input.authorizationId, ['withdrawn', 'left_running']);
      const d = (i: (typeof all)[number]) => i.detail as { pipelineId: string; versionId: string; version: string; miniProgramId: string; status: string };
      return {
        withdrawn: all.filter((i) => i.kind === 'withdrawn').map((i) => ({ pipelineId: d(i).pipelineId, versionId: d(i).versionId, version: d(i).version, miniProgramId: d(i).miniProgramId, at: iso(i.at) })),
        leftRunning: all.filter((i) => i.kind === 'left_running').map((i) => ({ pipelineId: d(i).pipelineId, versionId: d(i).versionId, version: d(i).version, miniProgramId: d(i).miniProgramId, status: d(i).status })),
      };
    },

    /** Removes the testers ISV members added on the granted mini programs, recording each removal in the same statement. */
    async revokeRemoveTesters(input: RevocationScope): Promise<RevocationReport['testersRemoved']> {
      return sequelize.transaction(async (transaction) => {
        await sequelize.query(
          `WITH removed AS (
             DELETE FROM testers t WHERE t.workspace_id = :merchantWorkspaceId AND t.mini_program_id IN (:miniProgramIds) AND t.added_by IN (${isvMembers})
             RETURNING t.id, t.email, t.mini_program_id)
           INSERT INTO revocation_items (authorization_id, kind, item_id, detail)
           SELECT :authorizationId, 'tester_removed', id, jsonb_build_object('email', email, 'miniProgramId', mini_program_id) FROM removed
           ON CONFLICT DO NOTHING`,
          { replacements: { ...input }, transaction },
        );
        return (await items(input.authorizationId, ['tester_removed'], transaction))
          .map((i) => ({ id: i.item_id, email: String(i.detail.email), miniProgramId: (i.detail.miniProgramId as string | null) ?? null, at: iso(i.at) }));
      });
    },

    /** Revokes the preview links ISV members created on the granted mini programs, recording each in the same statement. */
    async revokePreviewLinks(input: RevocationScope): Promise<RevocationReport['previewLinksRevoked']> {
      return sequelize.transaction(async (transaction) => {
        await sequelize.query(
          `WITH revoked AS (
             UPDATE preview_links l SET revoked_at = now()
             WHERE l.workspace_id = :merchantWorkspaceId AND l.mini_program_id IN (:miniProgramIds) AND l.created_by IN (${isvMembers}) AND l.revoked_at IS NULL
             RETURNING l.id, l.version_id, l.mini_program_id)
           INSERT INTO revocation_items (authorization_id, kind, item_id, detail)
           SELECT :authorizationId, 'preview_link_revoked', id, jsonb_build_object('versionId', version_id, 'miniProgramId', mini_program_id) FROM revoked
           ON CONFLICT DO NOTHING`,
          { replacements: { ...input }, transaction },
        );
        return (await items(input.authorizationId, ['preview_link_revoked'], transaction)).map((i) => ({ id: i.item_id, versionId: String(i.detail.versionId), at: iso(i.at) }));
      });
    },
  };

  /**
   * Tells one pipeline to withdraw. Answers 'withdrawn' when it is (by this revocation, now or in an
   * earlier attempt), else the status it had moved on to (the merchant decided meanwhile), or null.
   */
  async function withdraw(pipelineId: string, input: RevocationScope & { actorId: string }): Promise<string | null> {
    if (!temporal) throw new Error('the worker has no Temporal client to tell pipelines to withdraw');
    try {
      await temporal.workflow.getHandle(pipelineId).executeUpdate(withdrawUpdate, {
        args: [{ actorId: input.actorId, workspaceId: input.merchantWorkspaceId, comment: withdrawComment }],
        updateId: `revoke:${input.authorizationId}:${pipelineId}`,
      });
      return 'withdrawn';
    } catch (err) {
      const cause = err instanceof WorkflowUpdateFailedError ? err.cause : null;
      if (cause instanceof ApplicationFailure && cause.type === FailureType.wrongState) {
        const status = (cause.details?.[0] as { status?: string } | undefined)?.status ?? null;
        // Already withdrawn: by an earlier attempt of ours whose record was lost, or by its submitter.
        if (status === 'withdrawn') return (await withdrawnByUs(pipelineId, input)) ? 'withdrawn' : null;
        return status;
      }
      if (err instanceof WorkflowNotFoundError || (err as Error).name === 'WorkflowNotFoundError') return (await withdrawnByUs(pipelineId, input)) ? 'withdrawn' : null;
      throw err;
    }
  }

  /** Whether the pipeline's own timeline says this revocation withdrew it (a crash may have lost our record of it). */
  async function withdrawnByUs(pipelineId: string, input: { actorId: string }): Promise<boolean> {
    if (!temporal) return false;
    try {
      const s = await temporal.workflow.getHandle(pipelineId).query(releaseStatusQuery);
      return s.timeline.some((e) => e.action === 'withdrawn' && e.actorId === input.actorId && e.comment === withdrawComment);
    } catch {
      return false; // the pipeline's history is gone: it was not withdrawn by this revocation as far as anyone can tell
    }
  }
}
