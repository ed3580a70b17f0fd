import type { Client } from '@temporalio/client';
import type pg from 'pg';
import type { Sequelize } from 'sequelize';
import type { Config } from '../lib/config.js';
import type { PackageStore } from '../lib/storage.js';
import type { ApiKeyScope, IsvScope, MiniProgramRole, WorkspaceRole } from '../lib/permissions.js';
import type { ChangeHub } from './events.js';
import type { IngestSink } from '../lib/analytics/types.js';

/** What the API is built over; created once in server.ts (or a test) and handed to createApp. */
export interface ApiDeps {
  config: Config;
  sequelize: Sequelize;
  /** A plain pg pool for the per-request session lookup. */
  pool: pg.Pool;
  temporal: Client;
  store: PackageStore;
  hub: ChangeHub;
  /** The analytics ingest buffer (lib/analytics/ingest.ts); createApp makes one over `pool` when omitted. */
  ingest?: IngestSink;
  /** Directory of the built console; omitted in API-only tests. */
  webRoot?: string;
}

export interface AuthedUser {
  id: string;
  email: string;
  name: string;
  isOperator: boolean;
}

/** Hono context variables set by the middleware. */
export interface AppEnv {
  Variables: {
    requestId: string;
    /** performance.now() when the request arrived (Server-Timing). */
    startedAt: number;
    user: AuthedUser | null;
    /** How the request authenticated: a console session (needs CSRF) or a bearer token. */
    authKind: 'session' | 'token' | 'invalid_token' | 'api_key' | 'invalid_api_key' | null;
    /** A workspace API key (server-to-server): its workspace and scopes; never a person. */
    apiKey: { id: string; workspaceId: string; name: string; scopes: ApiKeyScope[] } | null;
    sessionHash: string | null;
    csrfToken: string | null;
    /** The caller's role in the :workspaceId of the path, when there is one. */
    role: WorkspaceRole | null;
    workspaceId: string | null;
    /** The caller's per-mini-program role on the :miniProgramId of the path, when there is one. */
    miniProgramRole: MiniProgramRole | null;
    /** Scopes of the active developer (ISV) grants the caller holds on the :miniProgramId of the path (callers without a membership only). */
    grants: IsvScope[];
    /** The caller's developer workspace held a grant on that mini program that is no longer active (revoked, lapsed…): refused with 403, not hidden. */
    grantEnded: string | null;
    /** Set by the terms write gate (api/routes/preferences.ts) on a member's write while the workspace's current terms wait for their acceptance. */
    termsPending: { version: number; title: string } | null;
  };
}
