import { apiBase, csrfHeaders, seg, unwrap } from './http';

/**
 * Analytics: user behaviour dashboards, CSV exports, crash groups, crash rate per version and the
 * mini program's public ingest key. The shapes are the design's (api/routes/analytics.ts,
 * api/routes/crashes.ts, api/routes/collect.ts).
 */

/** The filter every dashboard takes; kept in the page's URL query. Empty strings mean "all". */
export interface AnalyticsFilter {
  from: string;
  to: string;
  miniProgramId: string;
  versionId: string;
  hostAppId: string;
}

export interface DailyRow {
  day: string;
  activeUsers: number;
  newUsers: number;
  launches: number;
  sessions: number;
  /** null without sessions. */
  avgSessionMs: number | null;
  pageViews: number;
  errors: number;
  crashes: number;
}

export interface Overview {
  range: { from: string; to: string };
  totals: { activeUsers: number; newUsers: number; launches: number; sessions: number; avgSessionMs: number | null; pageViews: number; errors: number; crashes: number; crashRate: number | null };
  daily: DailyRow[];
  weekly: { weekStart: string; activeUsers: number }[];
  monthly: { month: string; activeUsers: number }[];
}

export interface PageRow {
  page: string;
  views: number;
  avgTimeMs: number | null;
  share: number;
}

export interface Cohort {
  day: string;
  users: number;
  d1: number | null;
  d7: number | null;
  d30: number | null;
}

export interface Retention {
  cohorts: Cohort[];
  average: { d1: number | null; d7: number | null; d30: number | null };
}

export type SplitBy = 'version' | 'host_app';
export interface SplitRow {
  key: string;
  label: string;
  activeUsers: number;
  launches: number;
  sessions: number;
  crashes: number;
  crashRate: number | null;
}
export interface Split {
  by: SplitBy;
  rows: SplitRow[];
}

export type ExportReport = 'daily' | 'pages' | 'retention' | 'versions' | 'host_apps';

export type CrashKind = 'error' | 'crash';
export type CrashStatus = 'open' | 'resolved';

export interface CrashGroup {
  id: string;
  miniProgramId: string;
  miniProgramName: string;
  kind: CrashKind;
  title: string;
  message: string;
  status: CrashStatus;
  events: number;
  users: number;
  firstSeen: string;
  lastSeen: string;
  versions: { id: string; version: string }[];
  /** Daily counts over the last 14 days, oldest first. */
  trend: number[];
  resolvedAt: string | null;
  resolvedBy: { id: string; name: string } | null;
}

export interface CrashGroupPage {
  groups: CrashGroup[];
  nextCursor: string | null;
}

export interface CrashSample {
  eventId: string;
  at: string;
  versionId: string | null;
  version: string | null;
  hostAppId: string | null;
  userId: string | null;
  page: string | null;
  message: string;
  stack: string | null;
}

export interface CrashChange {
  action: 'created' | 'resolved' | 'reopened' | string;
  /** null: the platform (first seen, or reopened by a newer version). */
  actor: { id: string; name: string } | null;
  versionId: string | null;
  version?: string | null;
  comment: string | null;
  at: string;
}

export interface CrashGroupDetail {
  group: CrashGroup & { topFrames: unknown[]; fingerprint: string; reopenedAt?: string | null };
  samples: CrashSample[];
  hourly: { hour: string; events: number }[];
  byVersion: { versionId: string; version: string; events: number }[];
  changes: CrashChange[];
  /** Present when the API answers what the caller may do here. */
  permissions?: string[];
}

export interface CrashListQuery {
  miniProgramId?: string;
  versionId?: string;
  status?: CrashStatus | 'all';
  kind?: CrashKind | '';
  q?: string;
  sort?: 'last_seen' | 'events' | 'users';
  limit?: number;
  cursor?: string | null;
}

export interface HealthCheck {
  since: string;
  launches: number;
  crashes: number;
  rate: number;
  liveLaunches: number;
  liveCrashes: number;
  liveRate: number;
  /** lib/health.ts evaluateHealth: 'green' | 'red' | 'insufficient_data'. */
  verdict: string;
  reason?: string;
  thresholds: { minLaunches?: number; maxCrashRate?: number; maxRatioToLive?: number } & Record<string, number>;
}

export interface VersionCrashRate {
  versionId: string;
  version: string;
  status: string;
  launches: number;
  crashes: number;
  /** Crashes per launch over the range; null without launches. */
  crashRate: number | null;
  liveCrashRate: number | null;
  ratio: number | null;
  healthCheck: HealthCheck | null;
}

export interface CrashRates {
  live: { versionId: string; version: string } | null;
  versions: VersionCrashRate[];
}

export interface IngestKey {
  ingestKey: string;
  collectUrl: string;
}

const ws = (workspaceId: string) => `${apiBase}/workspaces/${seg(workspaceId)}`;

/** A query string from the set values only. */
function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

function getJson<T>(url: string): Promise<T> {
  return unwrap<T>(fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } }));
}

function postJson<T>(url: string, body: unknown): Promise<T> {
  return unwrap<T>(
    fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json', ...csrfHeaders() },
      body: JSON.stringify(body),
    }),
  );
}

const filterQuery = (f: AnalyticsFilter, extra: Record<string, string | number | undefined> = {}) =>
  query({ from: f.from, to: f.to, miniProgramId: f.miniProgramId, versionId: f.versionId, hostAppId: f.hostAppId, ...extra });

export const getOverview = (workspaceId: string, f: AnalyticsFilter) => getJson<Overview>(`${ws(workspaceId)}/analytics/overview${filterQuery(f)}`);
export const getPages = (workspaceId: string, f: AnalyticsFilter, limit = 10) => getJson<{ pages: PageRow[] }>(`${ws(workspaceId)}/analytics/pages${filterQuery(f, { limit })}`);
export const getRetention = (workspaceId: string, f: AnalyticsFilter) => getJson<Retention>(`${ws(workspaceId)}/analytics/retention${filterQuery(f)}`);
export const getSplit = (workspaceId: string, f: AnalyticsFilter, by: SplitBy) => getJson<Split>(`${ws(workspaceId)}/analytics/split${filterQuery(f, { by })}`);

/** Where the browser downloads a report as CSV, with the filters on screen. */
export const exportCsvUrl = (workspaceId: string, f: AnalyticsFilter, report: ExportReport) => `${ws(workspaceId)}/analytics/export.csv${filterQuery(f, { report })}`;

export function listCrashGroups(workspaceId: string, q: CrashListQuery = {}): Promise<CrashGroupPage> {
  return getJson<CrashGroupPage>(
    `${ws(workspaceId)}/crash-groups${query({ miniProgramId: q.miniProgramId, versionId: q.versionId, status: q.status, kind: q.kind, q: q.q?.trim(), sort: q.sort, limit: q.limit, cursor: q.cursor })}`,
  );
}

export const getCrashGroup = (workspaceId: string, groupId: string) => getJson<CrashGroupDetail>(`${ws(workspaceId)}/crash-groups/${seg(groupId)}`);

/** Resolve or reopen a group; answers the group as it is now (409 wrong_state when it already was). */
export function setCrashGroupState(workspaceId: string, groupId: string, action: 'resolve' | 'reopen', comment: string): Promise<unknown> {
  const c = comment.trim();
  return postJson(`${ws(workspaceId)}/crash-groups/${seg(groupId)}/${action}`, c ? { comment: c } : {});
}

export function getCrashRates(workspaceId: string, miniProgramId: string, range: { from?: string; to?: string } = {}): Promise<CrashRates> {
  return getJson<CrashRates>(`${ws(workspaceId)}/mini-programs/${seg(miniProgramId)}/crash-rates${query({ from: range.from, to: range.to })}`);
}

export const getIngestKey = (workspaceId: string, miniProgramId: string) => getJson<IngestKey>(`${ws(workspaceId)}/mini-programs/${seg(miniProgramId)}/ingest-key`);

/* ───────────── Dates and numbers ───────────── */

/** A UTC day as YYYY-MM-DD. */
export const isoDay = (d: Date) => d.toISOString().slice(0, 10);

/** The last `days` days up to today (UTC), both ends included. */
export function lastDays(days: number, now = new Date()): { from: string; to: string } {
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const from = new Date(to.getTime() - (days - 1) * 86_400_000);
  return { from: isoDay(from), to: isoDay(to) };
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
export const isDay = (s: string | null | undefined): s is string => !!s && DAY.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`));

/** The filter a URL names; a missing or bad range falls back to the last 30 days. */
export function filterFromUrl(sp: URLSearchParams): AnalyticsFilter {
  const from = sp.get('from');
  const to = sp.get('to');
  const range = isDay(from) && isDay(to) && from <= to ? { from, to } : lastDays(30);
  return { ...range, miniProgramId: sp.get('miniProgramId') ?? '', versionId: sp.get('versionId') ?? '', hostAppId: sp.get('hostAppId') ?? '' };
}

/** Writes the filter into a URL's query (the default range stays out of it). */
export function filterToUrl(url: URL, f: AnalyticsFilter): URL {
  const next = new URL(url);
  const d = lastDays(30);
  const set = (k: string, v: string) => (v ? next.searchParams.set(k, v) : next.searchParams.delete(k));
  const isDefault = f.from === d.from && f.to === d.to;
  set('from', isDefault ? '' : f.from);
  set('to', isDefault ? '' : f.to);
  set('miniProgramId', f.miniProgramId);
  set('versionId', f.versionId);
  set('hostAppId', f.hostAppId);
  return next;
}

/** Days in a range, both ends included. */
export const rangeDays = (from: string, to: string) => Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000) + 1;

const intFmt = new Intl.NumberFormat('en');
const compactFmt = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
export const fmtInt = (n: number | null | undefined) => (n === null || n === undefined ? '—' : intFmt.format(n));
export const fmtCompact = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n < 10_000 ? intFmt.format(n) : compactFmt.format(n));

/** A rate 0..1 as a percentage with a precision that suits small crash rates. */
export function fmtPercent(r: number | null | undefined, digits?: number): string {
  if (r === null || r === undefined || Number.isNaN(r)) return '—';
  const p = r * 100;
  const d = digits ?? (p === 0 ? 0 : p < 1 ? 2 : p < 10 ? 1 : 0);
  return `${p.toFixed(d)}%`;
}

/** A duration in ms as "2m 05s", "48s", "1h 12m". */
export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

const shortDay = new Intl.DateTimeFormat('en', { month: 'short', day: 'numeric', timeZone: 'UTC' });
const longDay = new Intl.DateTimeFormat('en', { month: 'short', day: 'numeric', year: 'numeric', timeZone: 'UTC' });
/** "Dec 7" for a YYYY-MM-DD day (UTC). */
export const fmtDay = (day: string) => shortDay.format(new Date(`${day.slice(0, 10)}T00:00:00Z`));
export const fmtDayLong = (day: string) => longDay.format(new Date(`${day.slice(0, 10)}T00:00:00Z`));
