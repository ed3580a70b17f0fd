/** Workspace roles. */
export const workspaceRoles = ['admin', 'reviewer', 'developer'] as const;
export type WorkspaceRole = (typeof workspaceRoles)[number];

/** Roles a member can hold on particular mini programs only, on top of their workspace role. */
export const miniProgramRoles = ['owner', 'developer'] as const;
export type MiniProgramRole = (typeof miniProgramRoles)[number];

/**
 * Who a permission can be granted to: a workspace role, a per-mini-program role (only counted on
 * that mini program's routes), or the platform operator (a user flag, not a workspace role).
 */
export type Principal = WorkspaceRole | `mp:${MiniProgramRole}` | 'operator' | `isv:${IsvScope}` | `key:${ApiKeyScope}`;
export const principals: readonly Principal[] = [...workspaceRoles, 'mp:owner', 'mp:developer', 'operator'];

/**
 * What a developer (ISV) workspace may be granted on a merchant's mini programs. A member of the
 * ISV holds `isv:<scope>` on exactly the granted mini programs while the grant is active: an input
 * to this table like the per-mini-program roles, never a second system.
 */
export const isvScopes = ['view', 'upload', 'submit', 'testers'] as const;
export type IsvScope = (typeof isvScopes)[number];
export const isvPrincipals: readonly Principal[] = isvScopes.map((s) => `isv:${s}` as const);

/**
 * What a workspace API key (server-to-server calls) may do: a key holds `key:<scope>` in its own
 * workspace, an input to this table like a role, never a second system.
 */
export const apiKeyScopes = ['read', 'upload', 'submit', 'release'] as const;
export type ApiKeyScope = (typeof apiKeyScopes)[number];
export const apiKeyPrincipals: readonly Principal[] = apiKeyScopes.map((s) => `key:${s}` as const);

const members = ['admin', 'reviewer', 'developer'] as const;
const mpMakers = ['admin', 'developer', 'mp:owner', 'mp:developer'] as const;

/**
 * The one permission table. Every API route names the permission it needs; the console asks the
 * API which actions are allowed instead of repeating these rules.
 */
export const permissionTable = {
  'workspace.read': [...members, 'key:read'],
  /** General info: name, company, region, contacts. */
  'workspace.manage': ['admin'],
  /** Workspace API keys: created (shown once), listed, revoked by Admins. */
  'apiKey.read': ['admin'],
  'apiKey.manage': ['admin'],
  'miniProgram.read': [...members, 'mp:owner', 'mp:developer', 'isv:view', 'key:read'],
  'miniProgram.create': ['admin', 'developer'],
  /** Who owns or develops a mini program: its people, not shown to authorized outside developers. */
  'miniProgram.roles.read': [...members, 'mp:owner', 'mp:developer'],
  'miniProgram.roles.manage': ['admin'],
  'version.read': [...members, 'mp:owner', 'mp:developer', 'isv:view', 'key:read'],
  'version.upload': [...mpMakers, 'isv:upload', 'key:upload'],
  'version.submit': [...mpMakers, 'isv:submit', 'key:submit'],
  'version.withdraw': [...mpMakers, 'isv:submit'],
  'version.approve': ['admin', 'reviewer'],
  'version.reject': ['admin', 'reviewer'],
  'version.release': ['admin', 'developer', 'mp:owner', 'key:release'],
  'version.preview': [...members, 'mp:owner', 'mp:developer', 'isv:view'],
  /** Advance, pause, resume or abort a rollout in progress. */
  'version.rollout': ['admin', 'developer', 'mp:owner'],
  'miniProgram.rollback': ['admin', 'developer', 'mp:owner'],
  'miniProgram.offline': ['admin', 'mp:owner'],
  'miniProgram.remove': ['admin'],
  /** The approvals inbox: what waits on the caller as a reviewer. */
  'review.inbox': ['admin', 'reviewer'],
  'release.settings.read': members,
  'release.settings.manage': ['admin'],
  'webhook.read': ['admin'],
  'webhook.manage': ['admin'],
  'audit.read': members,
  'member.read': members,
  'member.manage': ['admin'],
  'tester.read': members,
  'tester.manage': ['admin', 'developer'],
  /** One mini program's testers: its owners and developers, and outside developers granted the testers scope. */
  'miniProgram.testers.read': [...members, 'mp:owner', 'mp:developer', 'isv:testers'],
  'miniProgram.testers.manage': ['admin', 'developer', 'mp:owner', 'isv:testers'],
  /** Developer (ISV) authorizations: Admins of either side, each seeing their own. */
  /** Both sides' members see their authorizations, their scope, history and report; Admins decide and revoke. */
  'authorization.read': members,
  'authorization.manage': ['admin'],
  /** The workspace's JSAPI catalog: everyone reads it; Admins edit an API (every edit recorded). */
  'jsapi.read': [...members, 'mp:owner', 'mp:developer', 'isv:view'],
  'jsapi.manage': ['admin'],
  /** Features (bundles of JSAPIs): proposing an addition or an edit starts a FeatureChange that a reviewer approves. */
  'feature.read': [...members, 'mp:owner', 'mp:developer', 'isv:view'],
  'feature.propose': ['admin', 'developer'],
  /** Approve or reject a feature change or a mini program's activation request (never one's own). */
  'feature.review': ['admin', 'reviewer'],
  /** The features a mini program holds, and applying for more. */
  'miniProgram.features.read': [...members, 'mp:owner', 'mp:developer', 'isv:view'],
  'miniProgram.features.apply': ['admin', 'developer', 'mp:owner', 'mp:developer', 'isv:submit'],
  /** Take a feature back from a mini program. */
  'miniProgram.features.revoke': ['admin'],
  /** Host apps (the super apps that run mini programs) and their keys. */
  'hostApp.read': members,
  'hostApp.manage': ['admin'],
  /** Console settings: logo and favicon, mail, domains, About Us, terms of service. */
  'settings.read': members,
  'settings.manage': ['admin'],
  /** Feedback to the console: any member sends it. */
  'feedback.submit': members,
  /** Analytics: user behaviour and crash dashboards, the CSV exports, a mini program's public ingest key. */
  'analytics.read': [...members, 'mp:owner', 'mp:developer', 'isv:view', 'key:read'],
  /** Mark a crash group resolved or reopen it. */
  'crash.manage': ['admin', 'developer', 'mp:owner', 'mp:developer'],
  /** Issue a new ingest key for a mini program (the old one stops being accepted). */
  'analytics.manage': ['admin', 'mp:owner'],
  'platform.applications': ['operator'],
  /** The feedback inbox: status and replies by mail. */
  'platform.feedback': ['operator'],
  /** Every stuck pipeline across workspaces: retry or abort. */
  'platform.releases': ['operator'],
} as const satisfies Record<string, readonly Principal[]>;

export type Permission = keyof typeof permissionTable;

/** Whether any of the caller's principals (or the one given) holds the permission. */
export function can(who: Principal | readonly Principal[] | null | undefined, permission: Permission): boolean {
  if (!who) return false;
  const list = Array.isArray(who) ? who : [who as Principal];
  const allowed = permissionTable[permission] as readonly Principal[];
  return list.some((p) => allowed.includes(p));
}

export function permissionsOf(who: Principal | readonly Principal[] | null | undefined): Permission[] {
  return (Object.keys(permissionTable) as Permission[]).filter((p) => can(who, p));
}

/** The principals of a caller: their workspace role, their role on the mini program in the path, operator. */
export function principalsOf(o: { role: WorkspaceRole | null | undefined; miniProgramRole?: MiniProgramRole | null; isOperator?: boolean; grants?: readonly IsvScope[] | null; keyScopes?: readonly ApiKeyScope[] | null }): Principal[] {
  const out: Principal[] = [];
  if (o.role) out.push(o.role);
  if (o.miniProgramRole) out.push(`mp:${o.miniProgramRole}`);
  if (o.isOperator) out.push('operator');
  // The scopes of active grants on the mini program in the path (ISV members only).
  for (const g of o.grants ?? []) out.push(`isv:${g}`);
  // A workspace API key's scopes (server-to-server calls, never a person).
  for (const k of o.keyScopes ?? []) out.push(`key:${k}`);
  return out;
}
