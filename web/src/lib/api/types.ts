/**
 * The console's view of the API's shapes, derived from the server's own route definitions
 * (type-only import: nothing from api/ ends up in the bundle).
 */
import type { hc, InferResponseType } from 'hono/client';
import type { AppType } from '../../../../api/app';

export type ApiClient = ReturnType<typeof hc<AppType>>;

type Ws = ApiClient['workspaces'][':workspaceId'];
type Mp = Ws['mini-programs'][':miniProgramId'];
type Ver = Mp['versions'][':versionId'];

export type Me = InferResponseType<ApiClient['me']['$get'], 200>;
export type User = Me['user'];
export type Workspace = Me['workspaces'][number];
export type WorkspaceRole = Workspace['role'];

export type MiniProgramPage = InferResponseType<Ws['mini-programs']['$get'], 200>;
export type MiniProgram = MiniProgramPage['items'][number];
export type MiniProgramStatus = MiniProgram['status'];
export type MiniProgramDetail = InferResponseType<Mp['$get'], 200>;

export type Version = MiniProgramDetail['versions'][number];
export type VersionStatus = Version['status'];
export type VersionAction = Version['allowedActions'][number];
export type VersionDetail = InferResponseType<Ver['$get'], 200>;
export type Pipeline = NonNullable<VersionDetail['pipeline']>;
export type TimelineEntry = Pipeline['timeline'][number];
export type AuditEntry = VersionDetail['audit'][number];

/** Every error the API answers has this body. */
export interface ApiErrorBody {
  error: { code: string; message: string; details: Record<string, unknown>; requestId: string };
}

// Testers and preview links (issue 3).
export type TesterPage = InferResponseType<Ws['testers']['$get'], 200>;
export type Tester = TesterPage['items'][number];
export type TesterReport = InferResponseType<Ws['testers']['$post'], 200>;
export type TesterReportRow = TesterReport['rows'][number];
export type PreviewLink = InferResponseType<Ver['preview']['$post'], 201>;
export type Preview = InferResponseType<ApiClient['preview'][':token']['$get'], 200>;

// Onboarding: account applications, sessions, the dev mailbox (issue 3).
export type ApplicationPage = InferResponseType<ApiClient['platform']['applications']['$get'], 200>;
export type AccountApplication = ApplicationPage['items'][number];
export type ApplicationStatus = AccountApplication['status'];
export type ApplicationPublicStatus = InferResponseType<ApiClient['applications'][':applicationId']['status']['$get'], 200>;
export type UserSession = InferResponseType<ApiClient['me']['sessions']['$get'], 200>['items'][number];
export type DevMailSummary = InferResponseType<ApiClient['dev']['mail']['$get'], 200>['items'][number];
export type DevMail = InferResponseType<ApiClient['dev']['mail'][':mailId']['$get'], 200>;

// Rollout controls, rollback / offline / remove, stuck pipelines (issue 4).
type Pl = Ws['pipelines'][':pipelineId'];
export type PipelineAnswer = InferResponseType<Pl['$get'], 200>;
export type PipelineView = PipelineAnswer['pipeline'];
export type PipelineAction = PipelineAnswer['allowedActions'][number];
export type PipelineTimelineEntry = PipelineView['timeline'][number];
export type RolloutState = NonNullable<PipelineView['rollout']>;
export type RolloutStage = RolloutState['plan'][number];
export type HealthReport = NonNullable<RolloutState['lastHealth']>;
export type PipelineSummary = InferResponseType<Mp['pipelines']['$get'], 200>['items'][number];
export type StuckPipeline = InferResponseType<ApiClient['platform']['pipelines']['stuck']['$get'], 200>['items'][number];
export type BulkPipelinesResult = InferResponseType<ApiClient['platform']['pipelines']['retry']['$post'], 200>;

// Approvals inbox, my requests, review policy and reject reasons (issue 4).
export type ReviewPage = InferResponseType<ApiClient['me']['reviews']['$get'], 200>;
export type ReviewRow = ReviewPage['items'][number];
export type ReviewCounts = ReviewPage['counts'];
export type ReleaseSettings = InferResponseType<Ws['release-settings']['$get'], 200>;
export type RejectReason = InferResponseType<Ws['reject-reasons']['$get'], 200>['items'][number];
export type VersionPipeline = NonNullable<VersionDetail['pipeline']>;
