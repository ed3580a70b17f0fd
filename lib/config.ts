import type { ReleaseConfig } from '../workflows/contracts/release.js';
import { z } from 'zod';
import path from 'node:path';

const MiB = 1024 * 1024;

const durationMs = (def: number) => z.coerce.number().int().min(0).default(def);

/** Every setting mpdp reads from the environment, with the defaults for one-machine local use. */
const schema = z.object({
  MPDP_MODE: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  PUBLIC_URL: z.url().optional(),
  DATA_DIR: z.string().min(1).default('data'),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').default('postgres://postgres@127.0.0.1:5432/mpdp'),
  TEMPORAL_ADDRESS: z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port').optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('mpdp'),
  TEMPORAL_CLI: z.string().optional(),
  TEMPORAL_PORT: z.coerce.number().int().min(1).max(65535).default(7233),
  TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
  SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').default('smtp://127.0.0.1:1025'),
  MAIL_FROM: z.string().min(3).default('mpdp <no-reply@mpdp.local>'),
  MAX_PACKAGE_BYTES: z.coerce.number().int().min(1024).default(16 * MiB),
  SESSION_TTL_HOURS: z.coerce.number().int().min(1).default(24 * 7),
  REVIEW_REMINDER_MS: durationMs(24 * 3600_000),
  REVIEW_ESCALATION_MS: durationMs(24 * 3600_000),
  REVIEW_SLA_MS: durationMs(48 * 3600_000),
  STEP_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(5),
  ROLLOUT_SOAK_MS: durationMs(3600_000),
  HEALTH_CHECK_INTERVAL_MS: durationMs(60_000),
  CRASH_RATE_LIMIT: z.coerce.number().min(0).max(1).default(0.0109),
  CRASH_RATIO_LIMIT: z.coerce.number().min(1).default(2),
  HEALTH_MIN_LAUNCHES: z.coerce.number().int().min(1).default(200),
  TEMPORAL_UI_URL: z.url().optional(),
  WEBHOOK_ALLOW_HTTP: z.enum(['true', 'false', '1', '0']).optional().transform((v) => (v === undefined ? undefined : v === 'true' || v === '1')),
  WEBHOOK_ALLOW_PRIVATE: z.enum(['true', 'false', '1', '0']).optional().transform((v) => (v === undefined ? undefined : v === 'true' || v === '1')),
  INVITATION_TTL_MS: durationMs(7 * 24 * 3600_000),
  INVITATION_REMINDER_MS: durationMs(6 * 24 * 3600_000),
  APPLICATION_TTL_MS: durationMs(14 * 24 * 3600_000),
  APPLICATION_REMINDER_MS: durationMs(3 * 24 * 3600_000),
  PASSWORD_RESET_TTL_MS: durationMs(3600_000),
  PREVIEW_TTL_MS: durationMs(15 * 60_000),
  AUTHORIZATION_REQUEST_TTL_MS: durationMs(7 * 24 * 3600_000),
  AUTHORIZATION_LAPSE_REMINDER_MS: durationMs(3 * 24 * 3600_000),
  SECRET_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  KEY_ENCRYPTION_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  HOST_APP_KEY_OVERLAP_MS: durationMs(7 * 24 * 3600_000),
  FEATURE_CHANGE_TTL_MS: durationMs(14 * 24 * 3600_000),
  BRANDING_MAX_BYTES: z.coerce.number().int().min(1024).max(8 * MiB).default(512 * 1024),
  FEEDBACK_MAX_BYTES: z.coerce.number().int().min(1024).max(16 * MiB).default(4 * MiB),
  ANALYTICS_FLUSH_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  ANALYTICS_FLUSH_MAX_EVENTS: z.coerce.number().int().min(1).max(100_000).default(10_000),
  ANALYTICS_BUFFER_MAX_EVENTS: z.coerce.number().int().min(500).max(5_000_000).default(500_000),
  ANALYTICS_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  ANALYTICS_MAINTENANCE_INTERVAL_MS: durationMs(3600_000),
  ANALYTICS_ROLLUP_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  OPERATOR_EMAIL: z.email().optional(),
  OPERATOR_PASSWORD: z.string().min(10, 'must be at least 10 characters').optional(),
  DEMO_DATA: z.enum(['true', 'false', '1', '0']).default('true').transform((v) => v === 'true' || v === '1'),
  DEMO_PASSWORD: z.string().min(8).optional(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('warn'),
});

export type RawEnv = z.input<typeof schema>;

export interface Config {
  readonly mode: 'development' | 'production' | 'test';
  readonly host: string;
  readonly port: number;
  readonly publicUrl: string;
  readonly dataDir: string;
  readonly databaseUrl: string;
  readonly temporal: {
    readonly address: string | undefined;
    readonly namespace: string;
    readonly taskQueue: string;
    readonly cli: string | undefined;
    readonly port: number;
    readonly uiPort: number;
  };
  readonly smtpUrl: string;
  readonly mailFrom: string;
  readonly maxPackageBytes: number;
  readonly sessionTtlMs: number;
  readonly release: {
    readonly reviewReminderMs: number;
    readonly reviewEscalationMs: number;
    readonly reviewSlaMs: number;
    readonly stepAttempts: number;
    readonly defaultSoakMs: number;
    readonly healthCheckIntervalMs: number;
    readonly health: { readonly maxCrashRate: number; readonly maxRatioToLive: number; readonly minLaunches: number };
  };
  /** Links from the console to a workflow's page in the Temporal Web UI. */
  readonly temporalUiUrl: string;
  /** Webhook endpoints may be plain http:// (never in production unless set). */
  readonly webhookAllowHttp: boolean;
  /** Webhook endpoints may be on loopback or private addresses (never in production unless set). */
  readonly webhookAllowPrivate: boolean;
  readonly accounts: {
    readonly invitationTtlMs: number;
    readonly invitationReminderMs: number;
    readonly applicationTtlMs: number;
    readonly applicationReminderMs: number;
    readonly passwordResetTtlMs: number;
  };
  readonly previewTtlMs: number;
  /** Developer (ISV) authorizations: an undecided request expires; both sides are reminded before a grant lapses. */
  readonly authorization: { readonly requestTtlMs: number; readonly lapseReminderMs: number };
  /** Signs preview tokens; a fixed development value outside production. */
  readonly secretKey: string;
  /** Encrypts private key material at rest (host apps' platform key pairs); required in production, derived from SECRET_KEY elsewhere when unset. */
  readonly keyEncryptionKey: string;
  /** Host apps: how long the previous key keeps verifying after a rotation. */
  readonly hostApps: { readonly keyOverlapMs: number };
  /** An undecided feature change expires after this long. */
  readonly featureChangeTtlMs: number;
  /** Largest logo or favicon upload. */
  readonly brandingMaxBytes: number;
  /** Largest feedback screenshot. */
  readonly feedbackMaxBytes: number;
  /** Analytics ingest: flush cadence and size, the buffer's cap, raw-event retention. */
  readonly analytics: {
    readonly flushIntervalMs: number;
    readonly flushMaxEvents: number;
    readonly bufferMaxEvents: number;
    readonly retentionDays: number;
    readonly maintenanceIntervalMs: number;
    readonly rollupIntervalMs: number;
  };
  /** The platform operator created (or updated) at start, when both are set. */
  readonly operator: { readonly email: string | undefined; readonly password: string | undefined };
  readonly demoData: boolean;
  readonly demoPassword: string | undefined;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Parses the environment once; throws a ConfigError that names every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  const parsed = schema.safeParse(picked);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(picked[String(i.path[0])])})`));
  }
  const e = parsed.data;
  // Rules across settings, all reported at once.
  const problems: string[] = [];
  if (e.MPDP_MODE === 'production' && e.DEMO_DATA && !e.DEMO_PASSWORD) {
    problems.push('DEMO_DATA: demo data in production mode needs DEMO_PASSWORD (no default password in production)');
  }
  if (e.MPDP_MODE === 'production' && !e.KEY_ENCRYPTION_KEY) {
    problems.push('KEY_ENCRYPTION_KEY: production mode needs its own key-encryption key of at least 32 characters (it seals host apps\' private keys; kept apart from SECRET_KEY, so changing that secret never makes sealed keys unreadable)');
  }
  if (e.MPDP_MODE === 'production' && !e.SECRET_KEY) {
    problems.push('SECRET_KEY: production mode needs a secret of at least 16 characters (it signs preview links and invitation tokens)');
  }
  if ((e.OPERATOR_EMAIL === undefined) !== (e.OPERATOR_PASSWORD === undefined)) {
    problems.push('OPERATOR_EMAIL / OPERATOR_PASSWORD: set both to bootstrap the platform operator, or neither');
  }
  if (problems.length) throw new ConfigError(problems);
  const dataDir = path.resolve(e.DATA_DIR);
  return Object.freeze({
    mode: e.MPDP_MODE,
    host: e.HOST,
    port: e.PORT,
    publicUrl: (e.PUBLIC_URL ?? `http://${e.HOST === '0.0.0.0' ? '127.0.0.1' : e.HOST}:${e.PORT}`).replace(/\/$/, ''),
    dataDir,
    databaseUrl: e.DATABASE_URL,
    temporal: Object.freeze({
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      cli: e.TEMPORAL_CLI,
      port: e.TEMPORAL_PORT,
      uiPort: e.TEMPORAL_UI_PORT,
    }),
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    maxPackageBytes: e.MAX_PACKAGE_BYTES,
    sessionTtlMs: e.SESSION_TTL_HOURS * 3600_000,
    release: Object.freeze({
      reviewReminderMs: e.REVIEW_REMINDER_MS,
      reviewEscalationMs: e.REVIEW_ESCALATION_MS,
      reviewSlaMs: e.REVIEW_SLA_MS,
      stepAttempts: e.STEP_ATTEMPTS,
      defaultSoakMs: e.ROLLOUT_SOAK_MS,
      healthCheckIntervalMs: e.HEALTH_CHECK_INTERVAL_MS,
      health: Object.freeze({ maxCrashRate: e.CRASH_RATE_LIMIT, maxRatioToLive: e.CRASH_RATIO_LIMIT, minLaunches: e.HEALTH_MIN_LAUNCHES }),
    }),
    temporalUiUrl: (e.TEMPORAL_UI_URL ?? `http://127.0.0.1:${e.TEMPORAL_UI_PORT}`).replace(/\/$/, ''),
    webhookAllowHttp: e.WEBHOOK_ALLOW_HTTP ?? e.MPDP_MODE !== 'production',
    webhookAllowPrivate: e.WEBHOOK_ALLOW_PRIVATE ?? e.MPDP_MODE !== 'production',
    accounts: Object.freeze({
      invitationTtlMs: e.INVITATION_TTL_MS,
      invitationReminderMs: e.INVITATION_REMINDER_MS,
      applicationTtlMs: e.APPLICATION_TTL_MS,
      applicationReminderMs: e.APPLICATION_REMINDER_MS,
      passwordResetTtlMs: e.PASSWORD_RESET_TTL_MS,
    }),
    previewTtlMs: e.PREVIEW_TTL_MS,
    authorization: Object.freeze({ requestTtlMs: e.AUTHORIZATION_REQUEST_TTL_MS, lapseReminderMs: e.AUTHORIZATION_LAPSE_REMINDER_MS }),
    secretKey: e.SECRET_KEY ?? 'mpdp-development-secret-not-for-production',
    keyEncryptionKey: e.KEY_ENCRYPTION_KEY ?? `kek:${e.SECRET_KEY ?? 'mpdp-development-secret-not-for-production'}`,
    hostApps: Object.freeze({ keyOverlapMs: e.HOST_APP_KEY_OVERLAP_MS }),
    featureChangeTtlMs: e.FEATURE_CHANGE_TTL_MS,
    brandingMaxBytes: e.BRANDING_MAX_BYTES,
    feedbackMaxBytes: e.FEEDBACK_MAX_BYTES,
    analytics: Object.freeze({
      flushIntervalMs: e.ANALYTICS_FLUSH_INTERVAL_MS,
      flushMaxEvents: e.ANALYTICS_FLUSH_MAX_EVENTS,
      bufferMaxEvents: e.ANALYTICS_BUFFER_MAX_EVENTS,
      retentionDays: e.ANALYTICS_RETENTION_DAYS,
      maintenanceIntervalMs: e.ANALYTICS_MAINTENANCE_INTERVAL_MS,
      rollupIntervalMs: e.ANALYTICS_ROLLUP_INTERVAL_MS,
    }),
    operator: Object.freeze({ email: e.OPERATOR_EMAIL, password: e.OPERATOR_PASSWORD }),
    demoData: e.DEMO_DATA,
    demoPassword: e.DEMO_PASSWORD,
    logLevel: e.LOG_LEVEL,
  });
}

/** Rows for the README's settings table, kept next to the schema so they cannot drift. */
export const settingsDoc: Record<keyof typeof schema.shape, string> = {
  MPDP_MODE: '`development`, `production` or `test`',
  HOST: 'address the API and console listen on',
  PORT: 'port of the API and console',
  PUBLIC_URL: 'URL used in mails (default `http://HOST:PORT`)',
  DATA_DIR: 'packages, Temporal SQLite file, dev mail',
  DATABASE_URL: 'PostgreSQL; the database is created when missing',
  TEMPORAL_ADDRESS: 'use this Temporal server instead of starting a local one',
  TEMPORAL_NAMESPACE: 'Temporal namespace',
  TEMPORAL_TASK_QUEUE: 'task queue of the worker',
  TEMPORAL_CLI: 'path of a `temporal` binary to use',
  TEMPORAL_PORT: 'gRPC port of the local dev server',
  TEMPORAL_UI_PORT: 'Web UI port of the local dev server',
  SMTP_URL: 'mail server (dev: the built-in catcher)',
  MAIL_FROM: 'sender of every mail',
  MAX_PACKAGE_BYTES: 'largest package upload',
  SESSION_TTL_HOURS: 'console session lifetime',
  REVIEW_REMINDER_MS: 'reviewer reminder after a submission waits this long',
  REVIEW_ESCALATION_MS: 'Admins get an escalation this long after the reviewer reminder (24 h)',
  REVIEW_SLA_MS: 'a review is due this long after it was requested (48 h)',
  STEP_ATTEMPTS: 'attempts of a failing pipeline step (storage, mail) before it parks as stuck',
  ROLLOUT_SOAK_MS: 'soak time of each stage of the default rollout ladder (1 h)',
  HEALTH_CHECK_INTERVAL_MS: 'how often a soaking stage checks its crash rate (1 min)',
  CRASH_RATE_LIMIT: 'a rollout halts above this crash rate per launch (0.0109 = 1.09%)',
  CRASH_RATIO_LIMIT: 'a rollout halts above this multiple of the live version\'s crash rate',
  HEALTH_MIN_LAUNCHES: 'launches of the new version a stage needs before the health check judges it',
  TEMPORAL_UI_URL: 'Temporal Web UI for links from the console (default the local dev server\'s)',
  WEBHOOK_ALLOW_HTTP: 'allow plain http:// webhook endpoints (default: yes except in production)',
  WEBHOOK_ALLOW_PRIVATE: 'allow webhook endpoints on loopback or private addresses (default: yes except in production)',
  INVITATION_TTL_MS: 'an invitation expires after this long (7 days)',
  INVITATION_REMINDER_MS: 'the invitee is reminded after this long (6 days)',
  APPLICATION_TTL_MS: 'an undecided account application expires after this long (14 days)',
  APPLICATION_REMINDER_MS: 'operators are reminded of an undecided application after this long (3 days)',
  PASSWORD_RESET_TTL_MS: 'a password reset link works this long (1 hour)',
  PREVIEW_TTL_MS: 'a preview link and QR code work this long (15 minutes)',
  AUTHORIZATION_REQUEST_TTL_MS: 'an undecided developer (ISV) authorization request expires after this long (7 days)',
  AUTHORIZATION_LAPSE_REMINDER_MS: 'both sides are reminded this long before an authorization with an end date lapses (3 days)',
  SECRET_KEY: 'signs preview links (required in production)',
  KEY_ENCRYPTION_KEY: 'encrypts host apps\' private keys at rest (required in production; elsewhere derived from SECRET_KEY)',
  HOST_APP_KEY_OVERLAP_MS: 'after a host app key rotation the previous key still verifies this long (7 days)',
  FEATURE_CHANGE_TTL_MS: 'an undecided feature change expires after this long (14 days)',
  BRANDING_MAX_BYTES: 'largest logo or favicon upload (512 KiB)',
  FEEDBACK_MAX_BYTES: 'largest feedback screenshot (4 MiB)',
  ANALYTICS_FLUSH_INTERVAL_MS: 'collected events are written to PostgreSQL at least this often; a crash of the API loses at most this long of accepted events (1 s)',
  ANALYTICS_FLUSH_MAX_EVENTS: 'most events one flush writes in one statement (10,000)',
  ANALYTICS_BUFFER_MAX_EVENTS: 'events waiting to be written beyond this answer 503 ingest_overloaded with Retry-After (500,000)',
  ANALYTICS_RETENTION_DAYS: 'raw events older than this many days are dropped (whole day partitions); rollups and crash groups stay (90)',
  ANALYTICS_MAINTENANCE_INTERVAL_MS: 'how often partitions are created ahead and old ones dropped (1 hour)',
  ANALYTICS_ROLLUP_INTERVAL_MS: 'after a flush that wrote events, the daily rollups the dashboards read are rebuilt for the last 8 days, at least this long after the previous rebuild ended: how far the dashboards may lag (30 s)',
  OPERATOR_EMAIL: 'bootstrap a platform operator with this email (with OPERATOR_PASSWORD)',
  OPERATOR_PASSWORD: 'password of the bootstrapped operator (no default)',
  DEMO_DATA: 'seed the demo workspace and users',
  DEMO_PASSWORD: 'password of the demo users (required in production)',
  LOG_LEVEL: 'log verbosity',
};

/** The pipeline settings a submission carries (read at submit time, so changes apply to new pipelines). */
export function releaseConfigOf(config: Config): ReleaseConfig {
  const r = config.release;
  return {
    reviewReminderMs: r.reviewReminderMs, reviewEscalationMs: r.reviewEscalationMs, reviewSlaMs: r.reviewSlaMs, stepAttempts: r.stepAttempts,
    healthCheckIntervalMs: r.healthCheckIntervalMs, defaultSoakMs: r.defaultSoakMs, health: { ...r.health },
  };
}
