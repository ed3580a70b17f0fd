import { z } from '@hono/zod-openapi';
import { pipelineKinds, releaseStatuses } from '../workflows/contracts/release.js';
import { miniProgramStatuses } from '../workflows/contracts/mini-program.js';
import { miniProgramRoles, workspaceRoles } from '../lib/permissions.js';
import { versionActions } from '../lib/actions.js';

export const ErrorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()), requestId: z.string() }) })
  .openapi('Error');

export const UserSchema = z.object({ id: z.string(), email: z.string(), name: z.string(), isOperator: z.boolean() }).openapi('User');
export const WorkspaceSchema = z
  .object({ id: z.string(), name: z.string(), code: z.string(), type: z.enum(['merchant', 'developer']), role: z.enum(workspaceRoles) })
  .openapi('Workspace');
export const MeSchema = z
  .object({ user: UserSchema, workspaces: z.array(WorkspaceSchema), lastWorkspaceId: z.string().nullable(), csrfToken: z.string().nullable(), permissions: z.record(z.string(), z.array(z.string())) })
  .openapi('Me');

export const versionStatuses = ['uploaded', ...releaseStatuses, 'superseded'] as const;

export const MiniProgramSchema = z
  .object({
    id: z.string(), workspaceId: z.string(), name: z.string(), description: z.string(), category: z.string(), icon: z.string().nullable(),
    status: z.enum(miniProgramStatuses), liveVersionId: z.string().nullable(), liveVersion: z.string().nullable(), activeVersionId: z.string().nullable(),
    versionCount: z.number(), createdBy: z.string(), createdAt: z.string(), updatedAt: z.string(),
  })
  .openapi('MiniProgram');

export const VersionSchema = z
  .object({
    id: z.string(), miniProgramId: z.string(), version: z.string(), notes: z.string(), status: z.enum(versionStatuses),
    packageSha256: z.string(), packageSize: z.number(), pageCount: z.number(),
    createdBy: z.object({ id: z.string(), name: z.string() }), submittedBy: z.object({ id: z.string(), name: z.string() }).nullable(),
    submittedAt: z.string().nullable(), decidedBy: z.object({ id: z.string(), name: z.string() }).nullable(), decisionComment: z.string().nullable(),
    releasedAt: z.string().nullable(), createdAt: z.string(), updatedAt: z.string(),
    allowedActions: z.array(z.enum(versionActions)),
  })
  .openapi('Version');

export const TimelineEntrySchema = z.object({ at: z.string(), status: z.enum(releaseStatuses), actorId: z.string().nullable(), actorName: z.string().nullable(), action: z.string(), comment: z.string().optional() });
export const PipelineSchema = z
  .object({ status: z.enum(releaseStatuses), waitingFor: z.string(), submittedAt: z.string(), timeline: z.array(TimelineEntrySchema) })
  .openapi('Pipeline');

export const AuditSchema = z
  .object({ id: z.string(), actor: z.object({ id: z.string(), name: z.string() }).nullable(), action: z.string(), fromState: z.string().nullable(), toState: z.string().nullable(), comment: z.string().nullable(), at: z.string() })
  .openapi('AuditEntry');

export const VersionDetailSchema = z.object({ version: VersionSchema, pipeline: PipelineSchema.nullable(), audit: z.array(AuditSchema) }).openapi('VersionDetail');
/** A member's role on one mini program (owner or developer), on top of their workspace role. */
export const MiniProgramRoleSchema = z
  .object({ userId: z.string(), name: z.string(), email: z.string(), role: z.enum(miniProgramRoles), workspaceRole: z.enum(workspaceRoles).nullable(), blocked: z.boolean() })
  .openapi('MiniProgramRole');
export const MiniProgramDetailSchema = z
  .object({ miniProgram: MiniProgramSchema, versions: z.array(VersionSchema), permissions: z.array(z.string()), miniProgramRoles: z.array(MiniProgramRoleSchema) })
  .openapi('MiniProgramDetail');

export const WorkspaceParams = z.object({ workspaceId: z.string().min(1).max(100) });
export const MiniProgramParams = WorkspaceParams.extend({ miniProgramId: z.string().min(1).max(100) });
export const VersionParams = MiniProgramParams.extend({ versionId: z.string().min(1).max(100) });

export const errorResponses = {
  400: { description: 'Invalid input', content: { 'application/json': { schema: ErrorSchema } } },
  401: { description: 'Not signed in', content: { 'application/json': { schema: ErrorSchema } } },
  403: { description: 'Not allowed', content: { 'application/json': { schema: ErrorSchema } } },
  404: { description: 'Not found', content: { 'application/json': { schema: ErrorSchema } } },
  409: { description: 'Wrong state or duplicate', content: { 'application/json': { schema: ErrorSchema } } },
  410: { description: 'Gone: expired or already used', content: { 'application/json': { schema: ErrorSchema } } },
  429: { description: 'Too many attempts; see Retry-After', content: { 'application/json': { schema: ErrorSchema } } },
} as const;

export const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });

// The release pipeline in depth (issue 4): a pipeline's whole state as the console sees it.
export const RolloutStageSchema = z
  .object({
    kind: z.enum(['percent', 'whitelist']),
    percent: z.number().describe('0 < percent ≤ 100 for a percent stage; ignored for the whitelist stage'),
    soakMs: z.number().int().describe('how long the stage soaks before the next (0–30 days)'),
  })
  .openapi('RolloutStage');
export const HealthReportSchema = z
  .object({
    at: z.string(), launches: z.number(), crashes: z.number(), crashRate: z.number(), liveLaunches: z.number(), liveCrashes: z.number(), liveCrashRate: z.number(),
    verdict: z.enum(['green', 'red', 'insufficient_data']), reason: z.string(),
  })
  .openapi('HealthReport');
export const RolloutStateSchema = z
  .object({
    plan: z.array(RolloutStageSchema), stageIndex: z.number(), stageStartedAt: z.string().nullable(), soakEndsAt: z.string().nullable(), remainingSoakMs: z.number().nullable(),
    percent: z.number(), whitelist: z.boolean(), lastHealth: HealthReportSchema.nullable(),
  })
  .openapi('RolloutState');
export const PipelineTimelineEntrySchema = z
  .object({
    at: z.string(), status: z.enum(releaseStatuses), actorId: z.string().nullable(), action: z.string(), comment: z.string().optional(),
    data: z.record(z.string(), z.unknown()).optional().describe('numbers and facts of the step: health figures, stage, reason code, error'),
  })
  .openapi('PipelineTimelineEntry');
export const PipelineViewSchema = z
  .object({
    kind: z.enum(pipelineKinds), pipelineId: z.string(), versionId: z.string(), miniProgramId: z.string(), workspaceId: z.string(), version: z.string(),
    status: z.enum(releaseStatuses), hotfix: z.boolean(), submitterId: z.string(), submittedAt: z.string(), reason: z.string().nullable(), baselineVersionId: z.string().nullable(),
    reviewRequestedAt: z.string().nullable(), slaDueAt: z.string().nullable(), remindedAt: z.string().nullable(), escalatedAt: z.string().nullable(),
    requiredApprovals: z.number(), approvals: z.array(z.object({ actorId: z.string(), at: z.string(), comment: z.string().nullable() })),
    rejection: z
      .object({
        actorId: z.string(), at: z.string(), reasonCode: z.string(), reasonLabel: z.string(), comment: z.string(),
        attachment: z.object({ name: z.string(), sha256: z.string(), size: z.number(), contentType: z.string() }).nullable(),
      })
      .nullable(),
    decidedBy: z.string().nullable(), decisionComment: z.string().nullable(), releasedAt: z.string().nullable(),
    rollout: RolloutStateSchema.nullable(),
    stuck: z.object({ step: z.string(), error: z.string(), since: z.string(), resumeStatus: z.enum(releaseStatuses), retries: z.number() }).nullable(),
    waitingFor: z.string(), timeline: z.array(PipelineTimelineEntrySchema), seq: z.number(),
    names: z.record(z.string(), z.string()).describe('user id → name, for everyone the pipeline mentions'),
    waitingWords: z.string().describe('what it waits for and on whom, in words, with the SLA clock'),
    temporalUrl: z.string(), sla: z.object({ waitedMs: z.number(), dueAt: z.string().nullable(), overdue: z.boolean() }).nullable(),
    onBehalf: z
      .object({ developerWorkspace: z.object({ id: z.string(), name: z.string() }), merchantWorkspace: z.object({ id: z.string(), name: z.string() }), label: z.string() })
      .nullable()
      .optional()
      .describe('submitted by a developer (ISV) workspace\'s member under an authorization: "by <ISV> on behalf of <merchant>"'),
  })
  .openapi('PipelineView');

/** A version's page: its row, its release pipeline as the console sees it, its audit trail. */
export const VersionDetailViewSchema = VersionDetailSchema.extend({
  pipeline: PipelineViewSchema.nullable(),
  lane: z
    .object({ pipelineId: z.string().nullable(), status: z.enum(releaseStatuses).nullable(), versionId: z.string().nullable() })
    .nullable()
    .describe('another pipeline holding the mini program\'s lane (in review or rolling out), if any'),
}).openapi('VersionDetailView');
