import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { deleteCookie, setCookie } from 'hono/cookie';
import { QueryTypes } from 'sequelize';
import { AppError, notFound } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import { permissionTable } from '../../lib/permissions.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requireUser, sessionCookie } from '../middleware.js';
import { newSecret, sha256, verifyPassword } from '../passwords.js';
import { MeSchema, UserSchema, errorResponses, json } from '../schemas.js';

const TokenSchema = z.object({ id: z.string(), name: z.string(), createdAt: z.string(), lastUsedAt: z.string().nullable(), revokedAt: z.string().nullable() }).openapi('Token');

const LoginBody = z.object({ email: z.email().max(254), password: z.string().min(1).max(200) }).openapi('LoginRequest');

/** Sign in and out, who am I, personal access tokens for the CLI. */
export function authRoutes({ sequelize, config }: ApiDeps) {
  async function me(userId: string, csrfToken: string | null) {
    const [user] = await sequelize.query<{ id: string; email: string; name: string; is_operator: boolean; last_workspace_id: string | null }>('SELECT id, email, name, is_operator, last_workspace_id FROM users WHERE id = :userId', { replacements: { userId }, type: QueryTypes.SELECT });
    if (!user) throw notFound('User');
    const workspaces = await sequelize.query<{ id: string; name: string; code: string; type: 'merchant' | 'developer'; role: 'admin' | 'reviewer' | 'developer' }>(
      `SELECT w.id, w.name, w.code, w.type, m.role FROM memberships m JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = :userId ORDER BY w.name`,
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

  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'post', path: '/auth/login', tags: ['auth'], summary: 'Sign in with email and password; sets the session cookie',
        request: { body: { content: { 'application/json': { schema: LoginBody } }, required: true } },
        responses: { 200: json(MeSchema, 'Signed in'), 400: errorResponses[400], 401: errorResponses[401] },
      }),
      async (c) => {
        const { email, password } = c.req.valid('json');
        const [user] = await sequelize.query<{ id: string; password_hash: string }>('SELECT id, password_hash FROM users WHERE lower(email) = lower(:email)', { replacements: { email }, type: QueryTypes.SELECT });
        // Same answer and similar work for an unknown email and a wrong password.
        const ok = user ? await verifyPassword(password, user.password_hash) : (await verifyPassword(password, 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), false);
        if (!user || !ok) throw new AppError(401, 'invalid_credentials', 'Wrong email or password');
        const sessionId = newSecret();
        const csrfToken = newSecret(18);
        const hash = sha256(sessionId);
        // A fresh session id on every sign-in (no fixation).
        await sequelize.query(
          `INSERT INTO sessions (id_hash, user_id, csrf_token, user_agent, expires_at) VALUES (:hash, :userId, :csrfToken, :ua, now() + (:ttl || ' milliseconds')::interval)`,
          { replacements: { hash, userId: user.id, csrfToken, ua: c.req.header('user-agent')?.slice(0, 200) ?? null, ttl: String(config.sessionTtlMs) } },
        );
        setCookie(c, sessionCookie, sessionId, { httpOnly: true, sameSite: 'Lax', path: '/', secure: config.publicUrl.startsWith('https:'), maxAge: Math.floor(config.sessionTtlMs / 1000) });
        return c.json(await me(user.id, csrfToken), 200);
      },
    )
    .openapi(
      createRoute({ method: 'post', path: '/auth/logout', tags: ['auth'], summary: 'End this session', responses: { 204: { description: 'Signed out' } } }),
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
        const [m] = await sequelize.query('SELECT 1 FROM memberships WHERE user_id = :userId AND workspace_id = :workspaceId', { replacements: { userId: c.get('user')!.id, workspaceId }, type: QueryTypes.SELECT });
        if (!m) throw notFound('Workspace');
        await sequelize.query('UPDATE users SET last_workspace_id = :workspaceId WHERE id = :userId', { replacements: { workspaceId, userId: c.get('user')!.id } });
        return c.body(null, 204);
      },
    )
    .openapi(
      createRoute({
        method: 'post', path: '/me/tokens', tags: ['auth'], summary: 'Create a personal access token for the CLI (shown once)', middleware: [requireUser],
        request: { body: { content: { 'application/json': { schema: z.object({ name: z.string().min(1).max(100) }) } }, required: true } },
        responses: { 201: json(z.object({ id: z.string(), name: z.string(), token: z.string(), user: UserSchema }), 'Created; the token is not shown again') },
      }),
      async (c) => {
        const { name } = c.req.valid('json');
        const token = `mpdp_pat_${newSecret()}`;
        const id = newId('tok');
        await sequelize.query('INSERT INTO api_tokens (id, user_id, name, token_hash) VALUES (:id, :userId, :name, :hash)', { replacements: { id, userId: c.get('user')!.id, name, hash: sha256(token) } });
        return c.json({ id, name, token, user: c.get('user')! }, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'get', path: '/me/tokens', tags: ['auth'], summary: 'Your personal access tokens (never the secrets)', middleware: [requireUser],
        responses: { 200: json(z.object({ items: z.array(TokenSchema) }), 'Tokens') },
      }),
      async (c) => {
        const rows = await sequelize.query<{ id: string; name: string; created_at: Date; last_used_at: Date | null; revoked_at: Date | null }>(
          'SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = :userId ORDER BY created_at DESC',
          { replacements: { userId: c.get('user')!.id }, type: QueryTypes.SELECT },
        );
        const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
        return c.json({ items: rows.map((r) => ({ id: r.id, name: r.name, createdAt: iso(r.created_at)!, lastUsedAt: iso(r.last_used_at), revokedAt: iso(r.revoked_at) })) }, 200);
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
    );
}
