import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { QueryTypes } from 'sequelize';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { permissionTable } from '../../lib/permissions.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { passwordResetWorkflowId, type PasswordResetInput } from '../../workflows/contracts/account-application.js';
import { publicRoute, requireUser, sessionCookie } from '../middleware.js';
import { hashPassword, newSecret, sha256, verifyPassword } from '../passwords.js';
import { MeSchema, UserSchema, errorResponses, json } from '../schemas.js';

const TokenSchema = z
  .object({
    id: z.string(), name: z.string(), createdAt: z.string(), lastUsedAt: z.string().nullable(), revokedAt: z.string().nullable(),
    prefix: z.string().nullable().describe('the first characters of the token (`mpdp_pat_ab12cd`), to tell tokens apart; null for tokens made before prefixes were kept'),
    expiresAt: z.string().nullable().describe('refused from this moment on; null = never expires'),
    status: z.enum(['active', 'expired', 'revoked']),
  })
  .openapi('Token');

const NewTokenBody = z
  .object({
    name: z.string().trim().min(1, 'give the token a name, e.g. where it is used').max(100),
    expiresInDays: z.number().int().min(1).max(366).nullable().optional().describe('the token is refused after this many days; null or omitted = never expires'),
  })
  .openapi('NewToken');

/** `mpdp_pat_` and the first 6 characters of the secret: shown in lists, far too short to guess the rest from. */
const tokenPrefix = (token: string) => token.slice(0, 'mpdp_pat_'.length + 6);

const LoginBody = z.object({ email: z.email().max(254), password: z.string().min(1).max(200) }).openapi('LoginRequest');

const SessionSchema = z
  .object({ id: z.string(), createdAt: z.string(), lastSeenAt: z.string(), expiresAt: z.string(), userAgent: z.string().nullable(), address: z.string().nullable(), current: z.boolean() })
  .openapi('Session');

/** A new password: long enough to resist guessing, short enough to hash cheaply. */
export const NewPassword = z.string().min(10, 'at least 10 characters').max(200);

/** Sign-in rate limits: failures per account and per client address within the window. */
export const loginLimits = { windowMs: 15 * 60_000, perAccount: 5, perAddress: 20 };

/** The TCP peer's address (not X-Forwarded-For, which any client can write). */
export function clientAddress(c: Context<AppEnv>): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Sign in and out, who am I, personal access tokens for the CLI. */
export function authRoutes({ sequelize, config, temporal }: ApiDeps) {
  async function me(userId: string, csrfToken: string | null) {
    const [user] = await sequelize.query<{ id: string; email: string; name: string; is_operator: boolean; last_workspace_id: string | null }>('SELECT id, email, name, is_operator, last_workspace_id FROM users WHERE id = :userId', { replacements: { userId }, type: QueryTypes.SELECT });
    if (!user) throw notFound('User');
    const workspaces = await sequelize.query<{ id: string; name: string; code: string; type: 'merchant' | 'developer'; role: 'admin' | 'reviewer' | 'developer' }>(
      `SELECT w.id, w.name, w.code, w.type, m.role FROM memberships m JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = :userId AND m.status = 'active' ORDER BY w.name`,
      { replacements: { userId }, type: QueryTypes.SELECT },
    );
    const lastWorkspaceId = user.last_workspace_id;
    return {
      user: { id: user.id, email: user.email, name: user.name, isOperator: user.is_operator },
      workspaces,
      lastWorkspaceId: workspaces.some((w) => w.id === lastWorkspaceId) ? lastWorkspaceId : (workspaces[0]?.id ?? null),
      csrfToken,
      permissions: permissionTable as unknown as Record<string, string[]>,
    };
  }

  /** 429 with Retry-After once an account or an address has too many recent failures. */
  async function refuseWhenLimited(email: string, address: string) {
    for (const [column, value, limit] of [['email', email, loginLimits.perAccount], ['address', address, loginLimits.perAddress]] as const) {
      // The limit-th newest failure in the window: once it ages out, the count is below the limit.
      const [row] = await sequelize.query<{ wait_ms: number }>(
        `SELECT GREATEST(0, EXTRACT(EPOCH FROM (at + (:windowMs || ' milliseconds')::interval - now())) * 1000)::float8 AS wait_ms
         FROM login_failures WHERE ${column} = :value AND at > now() - (:windowMs || ' milliseconds')::interval ORDER BY at DESC OFFSET :offset LIMIT 1`,
        { replacements: { value, windowMs: String(loginLimits.windowMs), offset: limit - 1 }, type: QueryTypes.SELECT },
      );
      if (row) {
        const retryAfter = Math.max(1, Math.ceil(row.wait_ms / 1000));
        const minutes = Math.ceil(retryAfter / 60);
        throw new AppError(429, 'rate_limited', `Too many failed sign-ins ${column === 'email' ? 'for this account' : 'from your address'}; try again in ${minutes} minute${minutes === 1 ? '' : 's'}`, { retryAfterSeconds: retryAfter });
      }
    }
  }

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'post', path: '/auth/login', tags: ['auth'], summary: 'Sign in with email and password; sets the session cookie (rate-limited per account and per address)', middleware: [publicRoute],
        request: { body: { content: { 'application/json': { schema: LoginBody } }, required: true } },
        responses: { 200: json(MeSchema, 'Signed in'), 400: errorResponses[400], 401: errorResponses[401], 429: errorResponses[429] },
      }),
      async (c) => {
        const { email, password } = c.req.valid('json');
        const address = clientAddress(c);
        await refuseWhenLimited(email.toLowerCase(), address);
        const [user] = await sequelize.query<{ id: string; password_hash: string }>('SELECT id, password_hash FROM users WHERE lower(email) = lower(:email)', { replacements: { email }, type: QueryTypes.SELECT });
        // Same answer and similar work for an unknown email and a wrong password.
        const ok = user ? await verifyPassword(password, user.password_hash) : (await verifyPassword(password, 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), false);
        if (!user || !ok) {
          await sequelize.query('INSERT INTO login_failures (email, address) VALUES (:email, :address)', { replacements: { email: email.toLowerCase(), address } });
          throw new AppError(401, 'invalid_credentials', 'Wrong email or password');
        }
        await sequelize.query('DELETE FROM login_failures WHERE email = :email', { replacements: { email: email.toLowerCase() } });
        // A fresh random session id on every sign-in, and whatever session the browser presented
        // ends here: an id planted before sign-in (fixation) is worth nothing after it.
        const presented = getCookie(c, sessionCookie);
        if (presented) await sequelize.query('DELETE FROM sessions WHERE id_hash = :hash', { replacements: { hash: sha256(presented) } });
        const sessionId = newSecret();
        const csrfToken = newSecret(18);
        const hash = sha256(sessionId);
        await sequelize.query(
          `INSERT INTO sessions (id_hash, user_id, csrf_token, user_agent, ip, expires_at) VALUES (:hash, :userId, :csrfToken, :ua, :address, now() + (:ttl || ' milliseconds')::interval)`,
          { replacements: { hash, userId: user.id, csrfToken, ua: c.req.header('user-agent')?.slice(0, 300) ?? null, address, ttl: String(config.sessionTtlMs) } },
        );
        setCookie(c, sessionCookie, sessionId, { httpOnly: true, sameSite: 'Lax', path: '/', secure: config.publicUrl.startsWith('https:'), maxAge: Math.floor(config.sessionTtlMs / 1000) });
        return c.json(await me(user.id, csrfToken), 200);
      },
    )
    .openapi(
      createRoute({ method: 'post', path: '/auth/logout', tags: ['auth'], summary: 'End this session', middleware: [publicRoute], responses: { 204: { description: 'Signed out' } } }),
      async (c) => {
        const hash = c.get('sessionHash');
        if (hash) await sequelize.query('DELETE FROM sessions WHERE id_hash = :hash', { replacements: { hash } });
        deleteCookie(c, sessionCookie, { path: '/' });
        return c.body(null, 204);
      },
    )
    .openapi(
      createRoute({ method: 'get', path: '/me', tags: ['auth'], summary: 'The signed-in user, their workspaces and roles', middleware: [requireUser], responses: { 200: json(MeSchema, 'Me'), 401: errorResponses[401] } }),
      async (c) => c.json(await me(c.get('user')!.id, c.get('csrfToken')), 200),
    )
    .openapi(
      createRoute({
        method: 'put', path: '/me/last-workspace', tags: ['auth'], summary: 'Remember the chosen workspace', middleware: [requireUser],
        request: { body: { content: { 'application/json': { schema: z.object({ workspaceId: z.string().min(1) }) } }, required: true } },
        responses: { 204: { description: 'Remembered' }, 404: errorResponses[404] },
      }),
      async (c) => {
        const { workspaceId } = c.req.valid('json');
        const [m] = await sequelize.query('SELECT 1 FROM memberships WHERE user_id = :userId AND workspace_id = :workspaceId AND status = \'active\'', { replacements: { userId: c.get('user')!.id, workspaceId }, type: QueryTypes.SELECT });
        if (!m) throw notFound('Workspace');
        await sequelize.query('UPDATE users SET last_workspace_id = :workspaceId WHERE id = :userId', { replacements: { workspaceId, userId: c.get('user')!.id } });
        return c.body(null, 204);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/me/tokens', tags: ['auth'], summary: 'Create a personal access token for the CLI (shown once)', middleware: [requireUser],
        request: { body: { content: { 'application/json': { schema: NewTokenBody } }, required: true } },
        responses: {
          201: json(z.object({ id: z.string(), name: z.string(), token: z.string(), prefix: z.string(), createdAt: z.string(), expiresAt: z.string().nullable(), user: UserSchema }), 'Created; the token is not shown again'),
          400: errorResponses[400], 401: errorResponses[401],
        },
      }),
      async (c) => {
        const { name, expiresInDays } = c.req.valid('json');
        const token = `mpdp_pat_${newSecret()}`;
        const id = newId('tok');
        // Only the hash is kept; the prefix is for telling tokens apart in the list.
        const [[row]] = (await sequelize.query(
          `INSERT INTO api_tokens (id, user_id, name, token_hash, token_prefix, expires_at)
           VALUES (:id, :userId, :name, :hash, :prefix, CASE WHEN :days::int IS NULL THEN NULL ELSE now() + make_interval(days => :days::int) END)
           RETURNING created_at, expires_at`,
          { replacements: { id, userId: c.get('user')!.id, name, hash: sha256(token), prefix: tokenPrefix(token), days: expiresInDays ?? null } },
        )) as unknown as [{ created_at: Date; expires_at: Date | null }[]];
        return c.json({
          id, name, token, prefix: tokenPrefix(token), createdAt: new Date(row!.created_at).toISOString(), expiresAt: row!.expires_at ? new Date(row!.expires_at).toISOString() : null, user: c.get('user')!,
        }, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/me/tokens', tags: ['auth'], summary: 'Your personal access tokens (never the secrets)', middleware: [requireUser],
        responses: { 200: json(z.object({ items: z.array(TokenSchema) }), 'Tokens') },
      }),
      async (c) => {
        const rows = await sequelize.query<{ id: string; name: string; created_at: Date; last_used_at: Date | null; revoked_at: Date | null; expires_at: Date | null; token_prefix: string | null; expired: boolean }>(
          `SELECT id, name, created_at, last_used_at, revoked_at, expires_at, token_prefix, expires_at IS NOT NULL AND expires_at <= now() AS expired
           FROM api_tokens WHERE user_id = :userId ORDER BY created_at DESC, id DESC`,
          { replacements: { userId: c.get('user')!.id }, type: QueryTypes.SELECT },
        );
        const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
        return c.json({
          items: rows.map((r) => ({
            id: r.id, name: r.name, createdAt: iso(r.created_at)!, lastUsedAt: iso(r.last_used_at), revokedAt: iso(r.revoked_at), prefix: r.token_prefix, expiresAt: iso(r.expires_at),
            status: r.revoked_at ? ('revoked' as const) : r.expired ? ('expired' as const) : ('active' as const),
          })),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/me/tokens/{tokenId}', tags: ['auth'], summary: 'Revoke a personal access token (it stops working at once)', middleware: [requireUser],
        request: { params: z.object({ tokenId: z.string().min(1).max(100) }) },
        responses: { 204: { description: 'Revoked' }, 404: errorResponses[404] },
      }),
      async (c) => {
        const { tokenId } = c.req.valid('param');
        const [rows] = await sequelize.query('UPDATE api_tokens SET revoked_at = now() WHERE id = :tokenId AND user_id = :userId AND revoked_at IS NULL RETURNING id', {
          replacements: { tokenId, userId: c.get('user')!.id },
        });
        if (!(rows as unknown[]).length) throw notFound('Token');
        return c.body(null, 204);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/me/sessions', tags: ['auth'], summary: 'Your active sessions, the current one flagged', middleware: [requireUser],
        responses: { 200: json(z.object({ items: z.array(SessionSchema) }), 'Sessions'), 401: errorResponses[401] },
      }),
      async (c) => {
        const rows = await sequelize.query<{ public_id: string; id_hash: string; created_at: Date; last_seen_at: Date; expires_at: Date; user_agent: string | null; ip: string | null }>(
          'SELECT public_id, id_hash, created_at, last_seen_at, expires_at, user_agent, ip FROM sessions WHERE user_id = :userId AND expires_at > now() ORDER BY last_seen_at DESC, created_at DESC',
          { replacements: { userId: c.get('user')!.id }, type: QueryTypes.SELECT },
        );
        const current = c.get('sessionHash');
        return c.json({
          items: rows.map((r) => ({
            id: r.public_id, createdAt: new Date(r.created_at).toISOString(), lastSeenAt: new Date(r.last_seen_at).toISOString(), expiresAt: new Date(r.expires_at).toISOString(),
            userAgent: r.user_agent, address: r.ip, current: r.id_hash === current,
          })),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete', path: '/me/sessions/{sessionId}', tags: ['auth'], summary: 'End one of your sessions (it gets 401 from its next request)', middleware: [requireUser],
        request: { params: z.object({ sessionId: z.string().min(1).max(100) }) },
        responses: { 204: { description: 'Ended' }, 404: errorResponses[404] },
      }),
      async (c) => {
        const { sessionId } = c.req.valid('param');
        const [rows] = await sequelize.query('DELETE FROM sessions WHERE public_id = :sessionId AND user_id = :userId RETURNING id_hash', { replacements: { sessionId, userId: c.get('user')!.id } });
        const ended = rows as { id_hash: string }[];
        if (!ended.length) throw notFound('Session');
        if (ended[0]!.id_hash === c.get('sessionHash')) deleteCookie(c, sessionCookie, { path: '/' });
        return c.body(null, 204);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/me/sessions/end-others', tags: ['auth'], summary: 'End all your sessions except this one', middleware: [requireUser],
        responses: { 200: json(z.object({ ended: z.number() }), 'Ended') },
      }),
      async (c) => {
        const [rows] = await sequelize.query('DELETE FROM sessions WHERE user_id = :userId AND id_hash <> :current RETURNING 1', { replacements: { userId: c.get('user')!.id, current: c.get('sessionHash') ?? '' } });
        return c.json({ ended: (rows as unknown[]).length }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/auth/password-reset', tags: ['auth'], summary: 'Mail a single-use password reset link; always 202, so it reveals no account', middleware: [publicRoute],
        request: { body: { content: { 'application/json': { schema: z.object({ email: z.email('a valid email address').max(254) }).openapi('PasswordResetRequest') } }, required: true } },
        responses: { 202: json(z.object({ accepted: z.literal(true) }), 'Accepted'), 400: errorResponses[400] },
      }),
      async (c) => {
        const { email } = c.req.valid('json');
        const input: PasswordResetInput = { resetId: newId('rst'), email, ttlMs: config.accounts.passwordResetTtlMs };
        // The same work for a known and an unknown address: the activity looks the account up.
        await temporal.workflow.start('passwordResetMail', { workflowId: passwordResetWorkflowId(input.resetId), taskQueue: config.temporal.taskQueue, args: [input] });
        return c.json({ accepted: true as const }, 202);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/auth/password-reset/confirm', tags: ['auth'], summary: "Set a new password with the link's token; ends every session of the account", middleware: [publicRoute],
        request: { body: { content: { 'application/json': { schema: z.object({ token: z.string().min(10).max(200), password: NewPassword }).openapi('PasswordResetConfirm') } }, required: true } },
        responses: { 204: { description: 'Password changed' }, 400: errorResponses[400], 410: errorResponses[410] },
      }),
      async (c) => {
        const { token, password } = c.req.valid('json');
        const passwordHash = await hashPassword(password);
        const outcome = await sequelize.transaction(async (transaction) => {
          const [reset] = await sequelize.query<{ id: string; user_id: string | null; used: boolean; expired: boolean }>(
            'SELECT id, user_id, used_at IS NOT NULL AS used, expires_at <= now() AS expired FROM password_resets WHERE token_hash = :hash FOR UPDATE',
            { replacements: { hash: sha256(token) }, type: QueryTypes.SELECT, transaction },
          );
          if (!reset || !reset.user_id) return 'invalid' as const;
          if (reset.used) return 'used' as const;
          if (reset.expired) return 'expired' as const;
          // This link and any other open one of the account stop working.
          await sequelize.query('UPDATE password_resets SET used_at = now() WHERE user_id = :userId AND used_at IS NULL', { replacements: { userId: reset.user_id }, transaction });
          await sequelize.query('UPDATE users SET password_hash = :passwordHash WHERE id = :userId', { replacements: { passwordHash, userId: reset.user_id }, transaction });
          // Whoever knew the old password is signed out everywhere.
          await sequelize.query('DELETE FROM sessions WHERE user_id = :userId', { replacements: { userId: reset.user_id }, transaction });
          await sequelize.query('DELETE FROM login_failures WHERE email = (SELECT lower(email) FROM users WHERE id = :userId)', { replacements: { userId: reset.user_id }, transaction });
          return 'changed' as const;
        });
        if (outcome === 'invalid') throw new AppError(410, 'reset_link_invalid', 'This reset link is not valid; ask for a new one');
        if (outcome === 'used') throw new AppError(410, 'reset_link_used', 'This reset link was already used; ask for a new one');
        if (outcome === 'expired') throw new AppError(410, 'reset_link_expired', 'This reset link has expired; ask for a new one');
        return c.body(null, 204);
      },
    );
}
