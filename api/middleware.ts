import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type pg from 'pg';
import { QueryTypes, type Sequelize } from 'sequelize';
import { randomUUID } from 'node:crypto';
import { AppError, forbidden, notFound, unauthenticated } from '../lib/errors.js';
import { can, principalsOf, type ApiKeyScope, type IsvScope, type MiniProgramRole, type Permission, type WorkspaceRole } from '../lib/permissions.js';
import type { AppEnv } from './deps.js';
import { sha256 } from './passwords.js';
import { hashApiKey, looksLikeApiKey, parseApiKey } from '../lib/api-keys.js';

export const sessionCookie = 'mpdp_session';

export const requestId: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set('startedAt', performance.now());
  const id = randomUUID();
  c.set('requestId', id);
  c.header('X-Request-Id', id);
  await next();
};

interface AuthRow {
  id: string;
  email: string;
  name: string;
  is_operator: boolean;
  csrf_token: string | null;
  /** Only an active membership gives a role: a blocked member has none. */
  role: WorkspaceRole | null;
  mp_role: MiniProgramRole | null;
  /** Session lookups only: last_seen_at is over a minute old. */
  seen_stale?: boolean;
  /** Writes only: the workspace's current terms version when this member has not accepted it. */
  terms_version: number | null;
  terms_title: string | null;
}

/** The write gate's paths that stay open with terms pending: accepting them, and leaving the workspace. */
const openWhileTermsPending = /^\/api\/v1\/workspaces\/[^/]+\/(terms\/[^/]+\/accept|leave)$/;

/**
 * The membership part of the auth query: role and mini program role of an active membership only;
 * and, for a write (`checkTerms`), the workspace's current terms of service when this member has
 * not accepted them (the permission gate answers 403 terms_not_accepted after its own checks, so a
 * refusal for a missing permission still reads 'forbidden'). Folded into the one auth query so a
 * write costs no extra round trip; the lateral join is not evaluated for reads.
 */
const membershipColumns = (ws: string, mp: string, checkTerms: string) =>
  `m.role, r.role AS mp_role, tp.version AS terms_version, tp.title AS terms_title
   FROM %FROM%
   LEFT JOIN memberships m ON m.user_id = u.id AND m.workspace_id = ${ws} AND m.status = 'active'
   LEFT JOIN mini_program_roles r ON m.user_id IS NOT NULL AND r.user_id = u.id AND r.workspace_id = ${ws} AND r.mini_program_id = ${mp}
   LEFT JOIN LATERAL (
     SELECT t.version, t.title FROM (SELECT version, title FROM terms_versions WHERE ${checkTerms} AND m.user_id IS NOT NULL AND workspace_id = ${ws} ORDER BY version DESC LIMIT 1) t
     WHERE NOT EXISTS (SELECT 1 FROM terms_acceptances a WHERE a.workspace_id = ${ws} AND a.user_id = u.id AND a.version = t.version)
   ) tp ON true`;

/**
 * The scopes a caller holds on a merchant's mini program through developer (ISV) grants: ACTIVE,
 * unexpired authorizations of the merchant covering the mini program, to a developer workspace the
 * caller is an active member of. Only the status 'active' counts, so the revocation's first step
 * (status revoking) refuses the very next request; a grant that ended says so (403) instead of
 * hiding the workspace. One query on the merchant's authorizations (indexed by merchant), made only
 * for callers without a membership in the path's workspace on a mini program's route.
 */
async function grantsOn(pool: pg.Pool, userId: string, ws: string, mp: string): Promise<{ scopes: IsvScope[]; ended: string | null }> {
  const { rows: [row] } = await pool.query<{ scopes: IsvScope[] | null; last_status: string | null }>({
    name: 'mpdp_auth_grants',
    text: `SELECT array_agg(DISTINCT s.scope) FILTER (WHERE a.status = 'active' AND (a.ends_at IS NULL OR a.ends_at > now())) AS scopes,
             (array_agg(a.status ORDER BY a.updated_at DESC))[1] AS last_status
           FROM authorizations a
           JOIN memberships m ON m.workspace_id = a.developer_workspace_id AND m.user_id = $1 AND m.status = 'active'
           LEFT JOIN LATERAL unnest(a.scope) AS s(scope) ON true
           WHERE a.merchant_workspace_id = $2 AND $3 = ANY(a.mini_program_ids)`,
    values: [userId, ws, mp],
  });
  const scopes = row?.scopes ?? [];
  return { scopes, ended: scopes.length ? null : (row?.last_status === 'active' ? 'lapsed' : row?.last_status ?? null) };
}

/**
 * Resolves the caller from the session cookie or a bearer token, and their role in the path's
 * workspace, in one query (a second one, for grants, only for callers without a membership on a
 * mini program's route). Never rejects by itself: routes say what they need.
 */
export function authenticate(sequelize: Sequelize, pool: pg.Pool): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set('user', null);
    c.set('role', null);
    c.set('miniProgramRole', null);
    c.set('grants', []);
    c.set('grantEnded', null);
    c.set('authKind', null);
    c.set('apiKey', null);
    c.set('sessionHash', null);
    c.set('csrfToken', null);
    const ws = /\/workspaces\/([^/]+)/.exec(c.req.path)?.[1] ?? null;
    // A per-mini-program role counts only on that mini program's routes, inside its workspace.
    let mp = ws ? (/\/workspaces\/[^/]+\/mini-programs\/([^/]+)/.exec(c.req.path)?.[1] ?? null) : null;
    // A pipeline's routes are its mini program's routes too: an owner of the mini program drives its rollout.
    const pipelineId = ws && !mp ? /\/workspaces\/[^/]+\/pipelines\/([^/]+)/.exec(c.req.path)?.[1] : undefined;
    if (pipelineId) {
      let id = pipelineId;
      try {
        id = decodeURIComponent(pipelineId);
      } catch {
        /* a malformed id finds no pipeline */
      }
      const [row] = await sequelize.query<{ mini_program_id: string }>('SELECT mini_program_id FROM pipelines WHERE id = :id AND workspace_id = :ws', {
        replacements: { id, ws }, type: QueryTypes.SELECT,
      });
      mp = row?.mini_program_id ?? null;
    }
    c.set('workspaceId', ws);
    c.set('termsPending', null);
    // Terms of service stand in front of a workspace's writes by its members (never reads, never a workspace API key).
    const checkTerms = !!ws && !['GET', 'HEAD', 'OPTIONS'].includes(c.req.method) && !openWhileTermsPending.test(c.req.path);
    const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const cookie = getCookie(c, sessionCookie);
    if (bearer && looksLikeApiKey(bearer)) {
      // A workspace API key: acts only in its own workspace, with its scopes as principals; not a person.
      c.set('authKind', 'invalid_api_key');
      const parsed = parseApiKey(bearer);
      const [key] = parsed
        ? await sequelize.query<{ id: string; workspace_id: string; name: string; scopes: ApiKeyScope[]; used_stale: boolean }>(
          `SELECT id, workspace_id, name, scopes, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS used_stale FROM workspace_api_keys
           WHERE id = :id AND secret_hash = :hash AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
          { replacements: { id: parsed.id, hash: hashApiKey(bearer) }, type: QueryTypes.SELECT },
        )
        : [];
      if (key) {
        if (key.used_stale) await sequelize.query('UPDATE workspace_api_keys SET last_used_at = now() WHERE id = :id', { replacements: { id: key.id } });
        c.set('user', { id: key.id, email: '', name: `API key ${key.name}`, isOperator: false });
        c.set('apiKey', { id: key.id, workspaceId: key.workspace_id, name: key.name, scopes: key.scopes });
        c.set('authKind', 'api_key');
      }
      return next();
    } else if (bearer) {
      const [row] = await sequelize.query<AuthRow>(
        `SELECT u.id, u.email, u.name, u.is_operator, NULL AS csrf_token, ${membershipColumns(':ws', ':mp', ':checkTerms').replace('%FROM%', 'api_tokens t JOIN users u ON u.id = t.user_id')}
         WHERE t.token_hash = :hash AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())`,
        { replacements: { hash: sha256(bearer), ws, mp, checkTerms }, type: QueryTypes.SELECT },
      );
      if (!row) {
        // Refused by the routes that need a user, not here: public routes still answer.
        c.set('authKind', 'invalid_token');
        return next();
      }
      await sequelize.query('UPDATE api_tokens SET last_used_at = now() WHERE token_hash = :hash AND (last_used_at IS NULL OR last_used_at < now() - interval \'1 minute\')', { replacements: { hash: sha256(bearer) } });
      c.set('user', { id: row.id, email: row.email, name: row.name, isOperator: row.is_operator });
      c.set('role', row.role);
      c.set('miniProgramRole', row.mp_role);
      c.set('authKind', 'token');
      if (row.terms_version !== null) c.set('termsPending', { version: row.terms_version, title: row.terms_title! });
    } else if (cookie) {
      const hash = sha256(cookie);
      // On every console request: a named prepared statement on a plain pg pool, the cheapest path.
      const { rows: [row] } = await pool.query<AuthRow>({
        name: 'mpdp_auth_session',
        text: `SELECT u.id, u.email, u.name, u.is_operator, s.csrf_token, s.last_seen_at < now() - interval '1 minute' AS seen_stale, ${membershipColumns('$2', '$3', '$4::boolean').replace('%FROM%', 'sessions s JOIN users u ON u.id = s.user_id')}
               WHERE s.id_hash = $1 AND s.expires_at > now()`,
        values: [hash, ws, mp, checkTerms],
      });
      if (row) {
        // "Last seen" for the sessions list, written at most once a minute per session.
        if (row.seen_stale) await pool.query('UPDATE sessions SET last_seen_at = now() WHERE id_hash = $1', [hash]);
        c.set('user', { id: row.id, email: row.email, name: row.name, isOperator: row.is_operator });
        c.set('role', row.role);
        c.set('miniProgramRole', row.mp_role);
        c.set('authKind', 'session');
        c.set('sessionHash', hash);
        c.set('csrfToken', row.csrf_token);
        if (row.terms_version !== null) c.set('termsPending', { version: row.terms_version, title: row.terms_title! });
      }
    }
    // Bearer tokens and sessions alike: an ISV member's access to a merchant's mini program.
    const user = c.get('user');
    if (user && ws && mp && !c.get('role')) {
      const g = await grantsOn(pool, user.id, ws, mp);
      c.set('grants', g.scopes);
      c.set('grantEnded', g.ended);
    }
    await next();
  };
}

/** Cookie-authenticated writes must echo the session's CSRF token in X-CSRF-Token. */
export const csrf: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.get('authKind') === 'session' && !['GET', 'HEAD', 'OPTIONS'].includes(c.req.method)) {
    if (c.req.header('x-csrf-token') !== c.get('csrfToken')) throw new AppError(403, 'csrf_failed', 'Missing or wrong X-CSRF-Token header; reload the page');
  }
  await next();
};

function refuseAnonymous(c: Context<AppEnv>): never {
  if (c.get('authKind') === 'invalid_api_key') throw new AppError(401, 'invalid_api_key', 'The workspace API key is unknown, revoked or expired');
  if (c.get('authKind') === 'invalid_token') throw new AppError(401, 'invalid_token', 'The API token is unknown, revoked or expired');
  throw unauthenticated();
}

/**
 * What a route's gate lets through, tagged on the gate itself so the permission-matrix test can
 * read every route's entry from the app (a route without a tagged gate fails that test).
 */
export type Access = { kind: 'public' } | { kind: 'user' } | { kind: 'workspace'; permission: Permission } | { kind: 'platform'; permission: Permission };
export const accessOf = (handler: unknown): Access | undefined => (handler as { access?: Access }).access;
const tagged = (access: Access, mw: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> => Object.assign(mw, { access });

/** A route anyone may call (it checks what it needs itself, e.g. a token in the link). */
export const publicRoute: MiddlewareHandler<AppEnv> = tagged({ kind: 'public' }, async (_c, next) => {
  await next();
});

/** A route any signed-in user may call, about themselves. */
export const requireUser: MiddlewareHandler<AppEnv> = tagged({ kind: 'user' }, async (c, next) => {
  if (!c.get('user')) refuseAnonymous(c);
  if (c.get('apiKey')) throw apiKeyNotAllowed();
  await next();
});

/** Routes about a person (or the platform) refuse workspace API keys: a key is not a person. */
const apiKeyNotAllowed = () => new AppError(403, 'api_key_not_allowed', 'A workspace API key cannot call this route: it acts for its workspace, not for a person');

/**
 * The permission gate every workspace route names. A workspace the caller does not belong to
 * answers 404, so ids from elsewhere reveal nothing.
 */
export function requirePermission(permission: Permission): MiddlewareHandler<AppEnv> {
  return tagged({ kind: 'workspace', permission }, async (c, next) => {
    const user = c.get('user');
    if (!user) refuseAnonymous(c);
    const role = c.get('role');
    const miniProgramRole = c.get('miniProgramRole');
    const grants = c.get('grants') ?? [];
    // A workspace API key holds its scopes in its own workspace only: anywhere else it sees nothing.
    const key = c.get('apiKey');
    const keyScopes = key && key.workspaceId === c.get('workspaceId') ? key.scopes : [];
    if (!role && !miniProgramRole && !grants.length && !keyScopes.length) {
      // An ISV whose grant on this mini program ended learns so (it knows the merchant already); anyone else sees nothing.
      const ended = c.get('grantEnded');
      if (ended) throw new AppError(403, 'authorization_ended', `Your developer workspace's authorization on this mini program is ${ended === 'revoking' ? 'revoked' : ended}`, { status: ended });
      throw notFound('Workspace');
    }
    const who = principalsOf({ role, miniProgramRole, isOperator: user.isOperator, grants, keyScopes });
    if (!can(who, permission)) {
      if (key) throw forbidden(`This API key's scopes (${key.scopes.join(', ')}) do not allow ${permission}`);
      const held = [role, miniProgramRole && `${miniProgramRole} of this mini program`, grants.length && `developer authorization: ${grants.join(', ')}`].filter(Boolean).join(', ');
      throw forbidden(`Your ${role || miniProgramRole ? 'role' : 'access'} (${held}) does not allow ${permission}`);
    }
    // Terms of service: the write gate found the current version unaccepted (checked after the permission, so refusals keep their order).
    const terms = c.get('termsPending');
    if (terms) throw new AppError(403, 'terms_not_accepted', `Accept the workspace's terms of service (version ${terms.version}: ${terms.title}) before making changes`, { version: terms.version });
    await next();
  });
}

/** The gate of platform-level routes (no workspace in the path): operator permissions. */
export function requirePlatformPermission(permission: Permission): MiddlewareHandler<AppEnv> {
  return tagged({ kind: 'platform', permission }, async (c, next) => {
    const user = c.get('user');
    if (!user) refuseAnonymous(c);
    if (c.get('apiKey')) throw apiKeyNotAllowed();
    if (!can(principalsOf({ role: null, isOperator: user.isOperator }), permission)) throw forbidden(`Only a platform operator may use ${permission}`);
    await next();
  });
}
