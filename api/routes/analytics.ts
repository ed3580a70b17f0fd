import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type pg from 'pg';
import { AppError, notFound } from '../../lib/errors.js';
import {
  dayNumber, dayString, defaultRangeDays, exportCsv, exportReports, maxRangeDays, overview, rangeDays, retention, split, topPages, type DashboardFilter,
} from '../../lib/analytics/dashboards.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { WorkspaceParams, errorResponses, json } from '../schemas.js';

const dayField = (what: string) => z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a day as YYYY-MM-DD')
  .refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && dayString(Date.parse(`${s}T00:00:00Z`)) === s, 'not a calendar day')
  .describe(what);
const idField = (what: string) => z.string().min(1).max(100).describe(what);

const FilterQuery = z.object({
  from: dayField('first day of the range (UTC, inclusive); default: 29 days before `to`').optional(),
  to: dayField('last day of the range (UTC, inclusive); default: today').optional(),
  miniProgramId: idField('only this mini program (of the workspace)').optional(),
  versionId: idField('only this version (of the workspace, and of miniProgramId when given)').optional(),
  hostAppId: idField('only events sent through this host app (of the workspace)').optional(),
});

const RangeSchema = z.object({ from: z.string(), to: z.string() });
const DaySchema = z.object({
  day: z.string(), activeUsers: z.number(), newUsers: z.number(), launches: z.number(), sessions: z.number(),
  avgSessionMs: z.number().nullable().describe('average length (last event − first event) of the sessions that started that day; null without sessions'),
  pageViews: z.number(), errors: z.number(), crashes: z.number(),
});
const OverviewSchema = z
  .object({
    range: RangeSchema,
    totals: z.object({
      activeUsers: z.number().describe('distinct users over the whole range'), newUsers: z.number(), launches: z.number(), sessions: z.number(),
      avgSessionMs: z.number().nullable(), pageViews: z.number(), errors: z.number(), crashes: z.number(),
      crashRate: z.number().nullable().describe('crashes per launch; null without launches'),
    }),
    daily: z.array(DaySchema).describe('every day of the range, oldest first, zeros included'),
    weekly: z.array(z.object({ weekStart: z.string().describe('the Monday of the ISO week'), activeUsers: z.number() })).describe('distinct users per ISO week, over its days inside the range'),
    monthly: z.array(z.object({ month: z.string().describe('YYYY-MM'), activeUsers: z.number() })).describe('distinct users per calendar month, over its days inside the range'),
  })
  .openapi('AnalyticsOverview');
const PagesSchema = z
  .object({
    pages: z.array(z.object({
      page: z.string(), views: z.number(),
      avgTimeMs: z.number().nullable().describe('average time on page of the views that reported one; null when none did'),
      share: z.number().describe('share of all page views in the range (0..1)'),
    })),
  })
  .openapi('AnalyticsPages');
const RetentionSchema = z
  .object({
    cohorts: z.array(z.object({
      day: z.string(), users: z.number().describe('new users of the day (the cohort)'),
      d1: z.number().nullable().describe('cohort users active the next day; null while that day is after today (UTC)'),
      d7: z.number().nullable(), d30: z.number().nullable(),
    })),
    average: z.object({ d1: z.number().nullable(), d7: z.number().nullable(), d30: z.number().nullable() }).describe('returning share over the cohorts whose day is reached (0..1); null when none is'),
  })
  .openapi('AnalyticsRetention');
const SplitSchema = z
  .object({
    by: z.enum(['version', 'host_app']),
    rows: z.array(z.object({
      key: z.string().describe('the version id or host app id (\'\' = events sent with the mini program\'s ingest key and no host app)'),
      label: z.string(), activeUsers: z.number(), launches: z.number(), sessions: z.number(), crashes: z.number(), crashRate: z.number().nullable(),
    })),
  })
  .openapi('AnalyticsSplit');

const rangeError = (code: string, message: string, field: string) => new AppError(400, code, message, { fields: { [field]: [message] } });

/**
 * User behaviour dashboards of a workspace (or one mini program, version or host app of it) over a
 * range of UTC days, read from the rollups; CSV exports of the same numbers.
 */
export function analyticsRoutes(deps: ApiDeps) {
  const pool: pg.Pool = deps.pool;

  /** The range (defaults filled in, checked) and the filters (each must belong to the workspace). */
  async function filterOf(workspaceId: string, q: z.infer<typeof FilterQuery>): Promise<DashboardFilter> {
    const today = dayString(Date.now());
    const to = q.to ?? (q.from ? dayString(Math.min(dayNumber(q.from) + defaultRangeDays - 1, dayNumber(today)) * 86_400_000) : today);
    const from = q.from ?? dayString((dayNumber(to) - defaultRangeDays + 1) * 86_400_000);
    if (dayNumber(to) < dayNumber(from)) throw rangeError('invalid_range', `to (${to}) is before from (${from})`, 'to');
    if (rangeDays(from, to) > maxRangeDays) throw rangeError('range_too_long', `The range is ${rangeDays(from, to)} days; at most ${maxRangeDays}`, 'from');
    const f: DashboardFilter = { workspaceId, from, to, miniProgramId: q.miniProgramId ?? null, versionId: q.versionId ?? null, hostAppId: q.hostAppId ?? null };
    if (f.miniProgramId || f.versionId || f.hostAppId) {
      const { rows: [row] } = await pool.query<{ mp: boolean; version_mp: string | null; host: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM mini_programs WHERE id = $2 AND workspace_id = $1) AS mp,
                (SELECT mini_program_id FROM versions WHERE id = $3 AND workspace_id = $1) AS version_mp,
                EXISTS (SELECT 1 FROM host_apps WHERE id = $4 AND workspace_id = $1) AS host`,
        [workspaceId, f.miniProgramId ?? '', f.versionId ?? '', f.hostAppId ?? ''],
      );
      if (f.miniProgramId && !row?.mp) throw notFound('Mini program');
      if (f.versionId && (!row?.version_mp || (f.miniProgramId && row.version_mp !== f.miniProgramId))) throw notFound('Version');
      if (f.hostAppId && !row?.host) throw notFound('Host app');
    }
    return f;
  }

  const route = <Q extends z.ZodObject, R extends z.ZodType>(path: string, summary: string, query: Q, answer: R, description?: string) =>
    createRoute({
      method: 'get', path: `/workspaces/{workspaceId}/analytics/${path}`, tags: ['analytics'], summary, description,
      middleware: [requirePermission('analytics.read')] as const,
      request: { params: WorkspaceParams, query },
      responses: { 200: json(answer, summary), ...errorResponses },
    });
  const rangeNote = 'Days are UTC; the range is inclusive (default: the last 30 days), at most 366 days: 400 invalid_range when to < from, range_too_long beyond, validation_failed for a malformed day. A miniProgramId, versionId or hostAppId of another workspace answers 404 not_found. Read from the hourly/daily rollups.';

  return new OpenAPIHono<AppEnv>()
    .openapi(
      route('overview', 'Active users (daily, weekly, monthly), new users, launches, sessions and their length, page views, errors, crashes', FilterQuery, OverviewSchema, rangeNote),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        c.header('Cache-Control', 'no-store');
        return c.json(await overview(pool, await filterOf(workspaceId, c.req.valid('query'))), 200);
      },
    )
    .openapi(
      route('pages', 'Top pages by views, with the average time on page and their share of all views',
        FilterQuery.extend({ limit: z.coerce.number().int().min(1).max(500).default(20).describe('most pages listed (1–500, default 20)') }), PagesSchema, rangeNote),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const q = c.req.valid('query');
        c.header('Cache-Control', 'no-store');
        return c.json(await topPages(pool, await filterOf(workspaceId, q), q.limit), 200);
      },
    )
    .openapi(
      route('retention', 'Retention cohorts: each day\'s new users and how many came back on day 1, 7 and 30', FilterQuery, RetentionSchema,
        `${rangeNote} A cohort is the day's new users (with a version or host app filter: users whose first event was in it); coming back counts any activity in that mini program. dN is null while day + N is after today (UTC).`),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        c.header('Cache-Control', 'no-store');
        return c.json(await retention(pool, await filterOf(workspaceId, c.req.valid('query'))), 200);
      },
    )
    .openapi(
      route('split', 'Active users, launches, sessions, crashes and crash rate per version or per host app',
        FilterQuery.extend({ by: z.enum(['version', 'host_app']).default('version') }), SplitSchema, rangeNote),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const q = c.req.valid('query');
        c.header('Cache-Control', 'no-store');
        return c.json(await split(pool, await filterOf(workspaceId, q), q.by), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/workspaces/{workspaceId}/analytics/export.csv', tags: ['analytics'],
        summary: 'A dashboard as a CSV download (the same numbers as its JSON; rates as fractions, empty for null)',
        description: `${rangeNote} Reports: daily (the overview's days), pages (up to 1000), retention, versions, host_apps.`,
        middleware: [requirePermission('analytics.read')] as const,
        request: { params: WorkspaceParams, query: FilterQuery.extend({ report: z.enum(exportReports).default('daily') }) },
        responses: { 200: { description: 'The CSV file', content: { 'text/csv': { schema: z.string() } } }, ...errorResponses },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('param');
        const q = c.req.valid('query');
        const f = await filterOf(workspaceId, q);
        const csv = await exportCsv(pool, f, q.report);
        c.header('Cache-Control', 'no-store');
        c.header('Content-Disposition', `attachment; filename="analytics-${q.report}-${f.from}-${f.to}.csv"`);
        return c.body(csv, 200, { 'Content-Type': 'text/csv; charset=utf-8' }) as never;
      },
    );
}
