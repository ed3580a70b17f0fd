import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessOf, type Access } from '../../api/middleware.js';
import { hashPassword } from '../../api/passwords.js';
import { can, principalsOf, type IsvScope, type Principal, type WorkspaceRole } from '../../lib/permissions.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * Every API route × every caller (anonymous, Admin, Reviewer, Developer, a member who is only a
 * developer of one mini program, the platform operator) × own workspace / other workspace, each
 * cell checked against the one permission table. The routes come from the app itself: a route
 * whose gate carries no entry fails the test. Members of a developer (ISV) workspace with an
 * active grant on one mini program (scopes view / view+upload / view+upload+submit) are callers
 * too, on the granted mini program and on one that is not granted.
 */

interface Route { method: string; path: string; access: Access }
interface Caller { name: string; agent: Agent | null; role: WorkspaceRole | null; miniProgramRole: 'developer' | null; isOperator: boolean; userId: string | null; email: string | null; grants?: IsvScope[] }
type Target = 'own' | 'other' | 'ungranted';
interface Cell { caller: string; route: string; target: Target; expected: string; got: string }

let stack: Stack;
let routes: Route[];
const missing: string[] = [];
const callers: Caller[] = [];
const cellsSeen: Cell[] = [];
let ownMiniProgram = '';
let otherWorkspace = '';
let otherMiniProgram = '';
/** A mini program of the own workspace that no grant covers. */
let ungrantedMiniProgram = '';

/** Routes that end the caller's own session or membership run last for each caller, who is then restored. */
const endsCaller = (r: Route) => /logout|\/leave$|sessions/.test(r.path);

function fill(path: string, target: Target): string {
  return path.replace(/:([A-Za-z]+)(\{[^}]*\})?/g, (_m, name: string) => {
    if (name === 'workspaceId') return target === 'other' ? otherWorkspace : stack.workspaceId;
    if (name === 'miniProgramId') return target === 'own' ? ownMiniProgram : target === 'ungranted' ? ungrantedMiniProgram : otherMiniProgram;
    return `zz_${name}_none`;
  });
}

/** What the gate should do with this caller on this route, from the permission table alone. */
function expectation(c: Caller, r: Route, target: Target): 'pass' | 'unauthenticated' | 'forbidden' | 'hidden' {
  const a = r.access;
  if (a.kind === 'public') return 'pass';
  if (!c.agent) return 'unauthenticated';
  if (a.kind === 'user') return 'pass';
  if (a.kind === 'platform') return can(principalsOf({ role: null, isOperator: c.isOperator }), a.permission) ? 'pass' : 'forbidden';
  // Workspace routes: a workspace the caller is not in does not exist for them.
  if (target === 'other') return 'hidden';
  const onMiniProgram = r.path.includes(':miniProgramId');
  // Grants count on the granted mini program's routes only.
  const grants = onMiniProgram && target === 'own' ? (c.grants ?? []) : [];
  const who: Principal[] = principalsOf({ role: c.role, miniProgramRole: onMiniProgram ? c.miniProgramRole : null, isOperator: c.isOperator, grants });
  if (!c.role && !(onMiniProgram && c.miniProgramRole) && !grants.length) return 'hidden';
  return can(who, a.permission) ? 'pass' : 'forbidden';
}

/** What the gate did, read from the answer: its refusals have fixed codes and messages. */
function outcome(status: number, body: any): 'pass' | 'unauthenticated' | 'forbidden' | 'hidden' {
  const code = body?.error?.code;
  if (status === 401 && (code === 'unauthenticated' || code === 'invalid_token')) return 'unauthenticated';
  if (status === 403 && code === 'forbidden') return 'forbidden';
  if (status === 404 && /^Workspace not found/.test(body?.error?.message ?? '')) return 'hidden';
  return 'pass';
}

/** A server-sent event stream never ends: read its status (and an error body), then hang up. */
async function openStream(agent: Agent, url: string) {
  const res = await fetch(stack.baseUrl + url, { headers: agent.cookie ? { cookie: agent.cookie } : {} });
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
  if (!body) await res.body?.cancel();
  return { status: res.status, body };
}

async function restore(c: Caller) {
  if (!c.userId || !c.email) return;
  if (c.role) {
    await stack.sequelize.query(
      `INSERT INTO memberships (workspace_id, user_id, role) VALUES (:ws, :user, :role)
       ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = EXCLUDED.role, status = 'active'`,
      { replacements: { ws: stack.workspaceId, user: c.userId, role: c.role } },
    );
  }
  if (c.miniProgramRole) {
    await stack.sequelize.query(
      `INSERT INTO mini_program_roles (workspace_id, mini_program_id, user_id, role) VALUES (:ws, :mp, :user, :role) ON CONFLICT DO NOTHING`,
      { replacements: { ws: stack.workspaceId, mp: ownMiniProgram, user: c.userId, role: c.miniProgramRole } },
    );
  }
  c.agent = new Agent(stack.baseUrl);
  await c.agent.login(c.email);
}

beforeAll(async () => {
  stack = await startStack();
  // Every route and the entry its gate carries.
  const byRoute = new Map<string, { method: string; path: string; access?: Access }>();
  for (const r of stack.app.routes) {
    if (!r.path.startsWith('/api/v1/') || r.method === 'ALL') continue;
    if (/\/(openapi\.json|docs)$/.test(r.path)) continue;
    const key = `${r.method} ${r.path}`;
    const entry = byRoute.get(key) ?? { method: r.method, path: r.path };
    entry.access ??= accessOf(r.handler);
    byRoute.set(key, entry);
  }
  routes = [];
  for (const [key, r] of byRoute) {
    if (r.access) routes.push(r as Route);
    else missing.push(key);
  }

  const dev = await stack.agent('developer');
  ownMiniProgram = (await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Matrix Own' })).body.id;
  // Another workspace with a mini program of its own, where none of the callers belongs.
  otherWorkspace = uid('ws_other_');
  otherMiniProgram = uid('mp_other_');
  await stack.sequelize.query(`INSERT INTO workspaces (id, name, code) VALUES (:id, 'Elsewhere', :code)`, { replacements: { id: otherWorkspace, code: otherWorkspace.toUpperCase() } });
  await stack.sequelize.query(
    `INSERT INTO mini_programs (id, workspace_id, name, status, version_count, created_by, created_at, updated_at, seq)
     VALUES (:id, :ws, 'Elsewhere App', 'draft', 0, 'usr_nobody', now(), now(), 1)`,
    { replacements: { id: otherMiniProgram, ws: otherWorkspace } },
  );

  const hash = await hashPassword(testPassword);
  const extra = async (name: string, isOperator: boolean) => {
    const id = uid('usr_mx_');
    const email = `${name}-${id}@example.test`;
    await stack.sequelize.query(`INSERT INTO users (id, email, name, password_hash, is_operator) VALUES (:id, :email, :name, :hash, :isOperator)`, { replacements: { id, email, name, hash, isOperator } });
    return { id, email };
  };
  callers.push({ name: 'anonymous', agent: null, role: null, miniProgramRole: null, isOperator: false, userId: null, email: null });
  for (const role of ['admin', 'reviewer', 'developer'] as const) {
    callers.push({ name: role, agent: await stack.agent(role), role, miniProgramRole: null, isOperator: false, userId: stack.users[role].id, email: stack.users[role].email });
  }
  // A Reviewer who is also a developer of one mini program only.
  const mpDev = await extra('mp-developer', false);
  await stack.sequelize.query(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:ws, :user, 'reviewer')`, { replacements: { ws: stack.workspaceId, user: mpDev.id } });
  await stack.sequelize.query(
    `INSERT INTO mini_program_roles (workspace_id, mini_program_id, user_id, role) VALUES (:ws, :mp, :user, 'developer')`,
    { replacements: { ws: stack.workspaceId, mp: ownMiniProgram, user: mpDev.id } },
  );
  const mpAgent = new Agent(stack.baseUrl);
  await mpAgent.login(mpDev.email);
  callers.push({ name: 'reviewer+mp-developer', agent: mpAgent, role: 'reviewer', miniProgramRole: 'developer', isOperator: false, userId: mpDev.id, email: mpDev.email });
  // A developer (ISV) workspace per scope set, each granted ownMiniProgram only.
  ungrantedMiniProgram = (await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Matrix Ungranted' })).body.id;
  for (const scope of [['view'], ['view', 'upload'], ['view', 'upload', 'submit']] as IsvScope[][]) {
    const isv = await extra(`isv-${scope.join('-')}`, false);
    const devWs = uid('ws_dev_');
    await stack.sequelize.query(`INSERT INTO workspaces (id, name, code, type) VALUES (:id, 'Matrix ISV', :code, 'developer')`, { replacements: { id: devWs, code: devWs.toUpperCase() } });
    await stack.sequelize.query(`INSERT INTO memberships (workspace_id, user_id, role) VALUES (:ws, :user, 'developer')`, { replacements: { ws: devWs, user: isv.id } });
    await stack.sequelize.query(
      `INSERT INTO authorizations (id, developer_workspace_id, merchant_workspace_id, status, requested_mini_program_ids, requested_scope, mini_program_ids, scope, requested_by, requested_at, updated_at, seq)
       VALUES (:id, :devWs, :ws, 'active', ARRAY[:mp]::text[], ARRAY[:scope]::text[], ARRAY[:mp]::text[], ARRAY[:scope]::text[], :user, now(), now(), 1)`,
      { replacements: { id: uid('auth_mx_'), devWs, ws: stack.workspaceId, mp: ownMiniProgram, scope, user: isv.id } },
    );
    const agent = new Agent(stack.baseUrl);
    await agent.login(isv.email);
    callers.push({ name: `isv:${scope.join('+')}`, agent, role: null, miniProgramRole: null, isOperator: false, userId: isv.id, email: isv.email, grants: scope });
  }
  const op = await extra('operator', true);
  const opAgent = new Agent(stack.baseUrl);
  await opAgent.login(op.email);
  callers.push({ name: 'operator', agent: opAgent, role: null, miniProgramRole: null, isOperator: true, userId: op.id, email: op.email });
}, 120_000);
afterAll(async () => stack?.stop());

describe('permission matrix', () => {
  it('has an entry for every route', () => {
    expect(routes.length).toBeGreaterThan(30);
    expect(missing).toEqual([]);
  });

  it('answers every route × caller × own/other workspace as the permission table says: 0 violations', async () => {
    const cells: Cell[] = [];
    const ordered = [...routes.filter((r) => !endsCaller(r)), ...routes.filter(endsCaller)];
    for (const caller of callers) {
      for (const target of ['other', 'ungranted', 'own'] as const) {
        for (const r of ordered) {
          if (target === 'other' && !r.path.includes(':workspaceId')) continue;
          if (target === 'ungranted' && (!caller.grants || !r.path.includes(':miniProgramId'))) continue;
          const expected = expectation(caller, r, target);
          const url = fill(r.path, target);
          const agent = caller.agent ?? new Agent(stack.baseUrl);
          const res = r.path.endsWith('/events') ? await openStream(agent, url) : await agent.request(r.method, url, r.method === 'GET' || r.method === 'HEAD' ? undefined : {});
          const got = outcome(res.status, res.body);
          cells.push({ caller: caller.name, route: `${r.method} ${r.path}`, target, expected, got: `${got} (${res.status} ${res.body?.error?.code ?? ''})` });
          if (endsCaller(r) && caller.agent && got === 'pass') await restore(caller);
        }
      }
    }
    cellsSeen.push(...cells);
    const violations = cells.filter((c) => !c.got.startsWith(c.expected));
    // Every caller kind is exercised, and refusals really happen (the check can fail).
    expect(cells.filter((c) => c.expected === 'forbidden').length).toBeGreaterThan(10);
    expect(cells.filter((c) => c.expected === 'hidden').length).toBeGreaterThan(10);
    console.log(`[matrix] ${routes.length} routes, ${callers.length} callers, ${cells.length} cells, ${violations.length} violations`);
    expect(violations).toEqual([]);
  }, 300_000);

  it('covers the approvals inbox, my requests, release settings and reject reasons', () => {
    expect(routes.map((r) => `${r.method} ${r.path}`)).toEqual(expect.arrayContaining([
      'GET /api/v1/me/reviews', 'GET /api/v1/me/requests',
      'GET /api/v1/workspaces/:workspaceId/release-settings', 'PUT /api/v1/workspaces/:workspaceId/release-settings',
      'GET /api/v1/workspaces/:workspaceId/reject-reasons', 'POST /api/v1/workspaces/:workspaceId/reject-reasons',
      'PATCH /api/v1/workspaces/:workspaceId/reject-reasons/:reasonId',
      'GET /api/v1/workspaces/:workspaceId/mini-programs/:miniProgramId/versions/:versionId/rejection/attachment',
    ]));
  });

  it('lets ISV callers pass exactly their scopes on the granted mini program, and hides the rest', () => {
    const isv = cellsSeen.filter((c) => c.caller.startsWith('isv:'));
    expect(isv.filter((c) => c.target === 'own' && c.expected === 'pass' && /:miniProgramId/.test(c.route)).length).toBeGreaterThan(10);
    expect(isv.filter((c) => c.target === 'own' && c.expected === 'forbidden').length).toBeGreaterThan(10);
    const ungranted = isv.filter((c) => c.target === 'ungranted' && c.route.includes('/workspaces/:workspaceId/'));
    expect(ungranted.length).toBeGreaterThan(10);
    expect(ungranted.filter((c) => c.expected !== 'hidden')).toEqual([]);
    // Upload passes the gate for upload scopes only, submit for the submit scope only.
    const gate = (caller: string, route: string) => isv.find((c) => c.caller === caller && c.target === 'own' && c.route === route)?.expected;
    const upload = 'POST /api/v1/workspaces/:workspaceId/mini-programs/:miniProgramId/versions';
    const submit = 'POST /api/v1/workspaces/:workspaceId/mini-programs/:miniProgramId/versions/:versionId/submit';
    expect([gate('isv:view', upload), gate('isv:view+upload', upload), gate('isv:view+upload+submit', upload)]).toEqual(['forbidden', 'pass', 'pass']);
    expect([gate('isv:view', submit), gate('isv:view+upload', submit), gate('isv:view+upload+submit', submit)]).toEqual(['forbidden', 'forbidden', 'pass']);
  });

  it('lets a developer of one mini program upload there only', async () => {
    const dev = callers.find((c) => c.name === 'developer')!.agent!;
    const other = (await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Matrix Second' })).body.id;
    const mpDev = callers.find((c) => c.name === 'reviewer+mp-developer')!.agent!;
    const pkg = Buffer.from('not a zip');
    const own = await mpDev.upload(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${ownMiniProgram}/versions`, pkg, '1.0.0');
    expect(own.status).toBe(400); // past the gate: the package itself is refused
    expect(own.body.error.code).toMatch(/^package_/);
    const elsewhere = await mpDev.upload(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${other}/versions`, pkg, '1.0.0');
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.error.code).toBe('forbidden');
  });
});
