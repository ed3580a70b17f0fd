import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { announce as announceChange, appendAudit as appendAuditLine } from './audit.js';
import type { Mailer } from '../lib/mailer.js';
import { createAccountActivities } from './accounts.js';
import { createAuthorizationActivities } from './authorizations.js';
import { createCrashAlertActivities } from './crash-alerts.js';
import { createFeatureActivities } from './features.js';
import { createFeedbackActivities } from './feedback.js';
import { createOutbox, renderMail } from './mail.js';
import { createMemberActivities } from './members.js';
import { createPipelineActivities } from './pipeline.js';
import { createRuntimeActivities } from './runtime.js';
import { createWebhookActivities } from './webhooks.js';
import type { PackageStore } from '../lib/storage.js';
import { checkPackage, PackageError } from '../lib/package-check.js';
import { jsapiScanTargets, missingForPipeline } from '../lib/jsapi-check.js';
import { missingMessage, scanPackageFiles } from '../lib/jsapi-scan.js';
import { FailureType } from '../workflows/contracts/errors.js';
import type { MiniProgramState } from '../workflows/contracts/mini-program.js';

export interface ActivityDeps {
  sequelize: Sequelize;
  mailer: Mailer;
  store: PackageStore;
  publicUrl: string;
  /** Derives invitation tokens (HMAC), so no token is ever stored or in a workflow history in clear. */
  secretKey?: string;
  /** Webhook deliveries may go to loopback or private addresses (config.webhookAllowPrivate; default yes). */
  webhookAllowPrivate?: boolean;
  /** Lets a revocation tell the ISV's pipelines to withdraw (their withdraw update). */
  temporal?: Client;
}

export interface AuditInput {
  /** Unique per workflow step, so a retried projection writes one row. */
  dedupeKey: string;
  workspaceId: string;
  subjectType: 'mini_program' | 'version' | 'workspace' | 'member' | 'invitation' | 'application' | 'tester' | 'user' | 'pipeline' | 'authorization'
    | 'jsapi' | 'feature' | 'feature_change' | 'host_app' | 'api_key' | 'settings' | 'terms' | 'feedback';
  subjectId: string;
  actorId: string | null;
  action: string;
  fromState: string | null;
  toState: string | null;
  comment?: string | null;
  at: string;
}

export interface VersionProjection {
  versionId: string;
  miniProgramId: string;
  workspaceId: string;
  version: string;
  notes: string;
  status: string;
  packageSha256: string;
  packageSize: number;
  pageCount: number;
  createdBy: string;
  createdAt: string;
  submittedBy?: string | null;
  submittedAt?: string | null;
  decidedBy?: string | null;
  decisionComment?: string | null;
  releasedAt?: string | null;
  at: string;
  seq: number;
  audit?: AuditInput;
}

export interface VersionStatusProjection {
  versionId: string;
  miniProgramId: string;
  workspaceId: string;
  status: string;
  submittedBy?: string | null;
  submittedAt?: string | null;
  decidedBy?: string | null;
  decisionComment?: string | null;
  releasedAt?: string | null;
  at: string;
  seq: number;
  audit?: AuditInput;
}

export interface ChangeEvent {
  workspaceId: string;
  miniProgramId: string;
  versionId?: string;
  kind: 'mini_program' | 'version';
  status: string;
  seq: number;
}

export { changeChannel } from './audit.js';

/** Heartbeats when running inside an activity (and is a no-op when called directly, e.g. in tests). */
function heartbeat(details: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    /* not in an activity context */
  }
}

/** The workflow an activity runs for (null when called directly, e.g. in tests). */
function currentWorkflowId(): string | null {
  try {
    return Context.current().info.workflowExecution?.workflowId ?? null;
  } catch {
    return null;
  }
}

/** Every side effect the workflows have. Built over its dependencies, wired in temporal/worker.ts. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createReleaseActivities(deps), ...createAccountActivities(deps), ...createMemberActivities(deps),
    ...createPipelineActivities(deps), ...createRuntimeActivities(deps), ...createWebhookActivities(deps),
    ...createAuthorizationActivities(deps),
    ...createFeatureActivities(deps),
    ...createFeedbackActivities(deps),
    ...createCrashAlertActivities(deps),
  };
}

/** Projections, package checks and mails of the release pipeline. */
function createReleaseActivities({ sequelize, mailer, store, publicUrl }: ActivityDeps) {
  const appendAudit = (a: AuditInput, transaction?: Transaction) => appendAuditLine(sequelize, a, transaction);
  const announce = (e: ChangeEvent, transaction?: Transaction) => announceChange(sequelize, e, transaction);

  const sendOnce = createOutbox(sequelize, mailer);

  return {
    /** Upserts the mini program row; a lower seq than the stored one changes nothing. */
    async projectMiniProgram(input: { state: MiniProgramState; versionCount?: number; at: string; audit?: AuditInput }): Promise<void> {
      const s = input.state;
      await sequelize.transaction(async (transaction) => {
        await sequelize.query(
          `INSERT INTO mini_programs (id, workspace_id, name, description, category, icon, status, live_version_id, live_version, active_version_id, version_count, created_by, created_at, updated_at, seq)
           VALUES (:id, :workspaceId, :name, :description, :category, :icon, :status, :liveVersionId, :liveVersion, :activeVersionId, :versionCount, :createdBy, :createdAt, :at, :seq)
           ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, live_version_id = EXCLUDED.live_version_id, live_version = EXCLUDED.live_version,
             active_version_id = EXCLUDED.active_version_id, version_count = EXCLUDED.version_count, updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq
           WHERE mini_programs.seq < EXCLUDED.seq`,
          {
            replacements: {
              id: s.miniProgramId, workspaceId: s.workspaceId, name: s.name, description: s.description, category: s.category, icon: s.icon,
              status: s.status, liveVersionId: s.liveVersionId, liveVersion: s.liveVersion, activeVersionId: s.activeVersionId,
              versionCount: input.versionCount ?? s.versions.length, createdBy: s.createdBy, createdAt: s.createdAt, at: input.at, seq: s.seq,
            },
            transaction,
          },
        );
        if (input.audit) await appendAudit(input.audit, transaction);
        await announce({ workspaceId: s.workspaceId, miniProgramId: s.miniProgramId, kind: 'mini_program', status: s.status, seq: s.seq }, transaction);
      });
    },

    /** Inserts a freshly uploaded version's row (idempotent on its id). */
    async projectNewVersion(v: VersionProjection): Promise<void> {
      await sequelize.transaction(async (transaction) => {
        await sequelize.query(
          `INSERT INTO versions (id, mini_program_id, workspace_id, version, notes, status, package_sha256, package_size, page_count, created_by, created_at, updated_at, seq)
           VALUES (:versionId, :miniProgramId, :workspaceId, :version, :notes, :status, :packageSha256, :packageSize, :pageCount, :createdBy, :createdAt, :at, :seq)
           ON CONFLICT (id) DO NOTHING`,
          { replacements: { ...v }, transaction },
        );
        if (v.audit) await appendAudit(v.audit, transaction);
        await announce({ workspaceId: v.workspaceId, miniProgramId: v.miniProgramId, versionId: v.versionId, kind: 'version', status: v.status, seq: v.seq }, transaction);
      });
    },

    /** Moves a version row forward; a late or repeated write with a lower seq changes nothing. */
    async projectVersionStatus(v: VersionStatusProjection): Promise<void> {
      await sequelize.transaction(async (transaction) => {
        await sequelize.query(
          `UPDATE versions SET status = :status, updated_at = :at, seq = :seq,
             submitted_by = COALESCE(:submittedBy, submitted_by), submitted_at = COALESCE(:submittedAt, submitted_at),
             decided_by = COALESCE(:decidedBy, decided_by), decision_comment = COALESCE(:decisionComment, decision_comment),
             released_at = COALESCE(:releasedAt, released_at)
           WHERE id = :versionId AND seq < :seq`,
          {
            replacements: {
              ...v, submittedBy: v.submittedBy ?? null, submittedAt: v.submittedAt ?? null, decidedBy: v.decidedBy ?? null,
              decisionComment: v.decisionComment ?? null, releasedAt: v.releasedAt ?? null,
            },
            transaction,
          },
        );
        if (v.audit) await appendAudit(v.audit, transaction);
        await announce({ workspaceId: v.workspaceId, miniProgramId: v.miniProgramId, versionId: v.versionId, kind: 'version', status: v.status, seq: v.seq }, transaction);
      });
    },

    /** Re-checks the stored package: its bytes still hash to the address and its shape is valid. */
    async validateStoredPackage(input: { packageSha256: string; version: string }): Promise<{ pageCount: number }> {
      heartbeat('reading');
      let bytes: Buffer;
      try {
        bytes = await store.get(input.packageSha256);
      } catch (err) {
        // A package that is not there is a bad package; storage that fails is retried (and the
        // pipeline parks as stuck when the retries run out).
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw ApplicationFailure.nonRetryable(`package ${input.packageSha256} is missing from storage`, FailureType.packageInvalid);
        throw ApplicationFailure.retryable(`package storage failed: ${(err as Error).message}`, 'storage_unavailable');
      }
      try {
        const summary = await checkPackage(bytes, { version: input.version, collect: jsapiScanTargets });
        if (summary.sha256 !== input.packageSha256) throw ApplicationFailure.nonRetryable('stored package does not match its sha256', FailureType.packageInvalid);
        // The JSAPIs again: a feature may have been revoked since the submission.
        const missing = await missingForPipeline(sequelize, { workflowId: currentWorkflowId(), packageSha256: input.packageSha256, version: input.version, uses: scanPackageFiles(summary.collected ?? new Map()) });
        if (missing.length > 0) throw ApplicationFailure.nonRetryable(`jsapi_not_granted: ${missingMessage(missing)}`, FailureType.packageInvalid, { missing });
        return { pageCount: summary.pages.length + summary.subPackages.reduce((n, s) => n + s.pages.length, 0) };
      } catch (err) {
        if (err instanceof PackageError) throw ApplicationFailure.nonRetryable(`${err.code}: ${err.message}`, FailureType.packageInvalid);
        throw err;
      }
    },

    /** Mails every reviewer and admin of the workspace except the submitter, once each. */
    async notifyReviewers(input: { dedupeKey: string; workspaceId: string; miniProgramId: string; miniProgramName: string; versionId: string; version: string; submitterId: string }): Promise<{ sent: number; skipped: number }> {
      const reviewers = await sequelize.query<{ id: string; email: string; name: string }>(
        `SELECT u.id, u.email, u.name FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.workspace_id = :workspaceId AND m.role IN ('reviewer', 'admin') AND u.id <> :submitterId ORDER BY u.id`,
        { replacements: input, type: QueryTypes.SELECT },
      );
      const [submitter] = await sequelize.query<{ name: string }>('SELECT name FROM users WHERE id = :submitterId', { replacements: input, type: QueryTypes.SELECT });
      const [workspace] = await sequelize.query<{ name: string }>('SELECT name FROM workspaces WHERE id = :workspaceId', { replacements: input, type: QueryTypes.SELECT });
      const link = `${publicUrl}/w/${input.workspaceId}/mini-programs/${input.miniProgramId}/versions/${input.versionId}`;
      let sent = 0;
      let skipped = 0;
      for (const r of reviewers) {
        heartbeat(r.id);
        const outcome = await sendOnce(`${input.dedupeKey}:${r.id}`, {
          to: r.email, workspaceId: input.workspaceId, userId: r.id, kind: 'review_requests',
          subject: `Review requested: ${input.miniProgramName} ${input.version}`,
          ...renderMail({
            workspaceName: workspace?.name, greeting: `Hello ${r.name},`,
            paragraphs: [`${submitter?.name ?? 'A developer'} submitted ${input.miniProgramName} version ${input.version} for review.`],
            action: { label: 'Review it', url: link },
          }),
        });
        if (outcome === 'sent') sent++;
        else skipped++;
      }
      return { sent, skipped };
    },

    /** Tells the submitter what happened to their submission, once per decision. */
    async notifySubmitter(input: { dedupeKey: string; submitterId: string; miniProgramName: string; version: string; outcome: string; comment?: string | null; link: string; workspaceId?: string }): Promise<void> {
      const [user] = await sequelize.query<{ email: string; name: string }>('SELECT email, name FROM users WHERE id = :submitterId', { replacements: input, type: QueryTypes.SELECT });
      if (!user) return;
      await sendOnce(input.dedupeKey, {
        // The workspace from the input, else from the console link (/w/<ws>/…) older workflows pass.
        to: user.email, workspaceId: input.workspaceId ?? /^\/w\/([^/]+)\//.exec(input.link)?.[1] ?? null, userId: input.submitterId, kind: 'decisions',
        subject: `${input.miniProgramName} ${input.version} was ${input.outcome}`,
        ...renderMail({
          greeting: `Hello ${user.name},`,
          paragraphs: [`${input.miniProgramName} version ${input.version} was ${input.outcome}.`, ...(input.comment ? [`Comment: ${input.comment}`] : [])],
          action: { label: 'Open the version', url: `${publicUrl}${input.link}` },
        }),
      });
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
