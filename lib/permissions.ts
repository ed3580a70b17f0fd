/** Workspace roles. The platform operator is a user flag, not a workspace role. */
export const workspaceRoles = ['admin', 'reviewer', 'developer'] as const;
export type WorkspaceRole = (typeof workspaceRoles)[number];

/**
 * The one permission table. Every API route names the permission it needs; the console asks the
 * API which actions are allowed instead of repeating these rules.
 */
export const permissionTable = {
  'workspace.read': ['admin', 'reviewer', 'developer'],
  'miniProgram.read': ['admin', 'reviewer', 'developer'],
  'miniProgram.create': ['admin', 'developer'],
  'version.read': ['admin', 'reviewer', 'developer'],
  'version.upload': ['admin', 'developer'],
  'version.submit': ['admin', 'developer'],
  'version.withdraw': ['admin', 'developer'],
  'version.approve': ['admin', 'reviewer'],
  'version.reject': ['admin', 'reviewer'],
  'version.release': ['admin', 'developer'],
  'audit.read': ['admin', 'reviewer', 'developer'],
} as const satisfies Record<string, readonly WorkspaceRole[]>;

export type Permission = keyof typeof permissionTable;

export function can(role: WorkspaceRole | null | undefined, permission: Permission): boolean {
  if (!role) return false;
  return (permissionTable[permission] as readonly WorkspaceRole[]).includes(role);
}

export function permissionsOf(role: WorkspaceRole | null | undefined): Permission[] {
  return (Object.keys(permissionTable) as Permission[]).filter((p) => can(role, p));
}
