import { z } from '@hono/zod-openapi';
import { releaseStatuses } from '../workflows/contracts/release.js';
import { miniProgramStatuses } from '../workflows/contracts/mini-program.js';
import { miniProgramRoles, workspaceRoles } from '../lib/permissions.js';

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
    allowedActions: z.array(z.enum(['submit', 'approve', 'reject', 'withdraw', 'release'])),
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
