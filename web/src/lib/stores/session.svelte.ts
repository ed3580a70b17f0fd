import type { Me, Workspace, WorkspaceRole } from '$lib/api/types';

/**
 * Who is signed in: the /me answer (user, workspaces with roles, CSRF token, permission table).
 * Filled by the auth service; read everywhere else.
 */
class Session {
  me = $state<Me | null>(null);
  /** Whether /me has been asked at least once since the page loaded. */
  checked = $state(false);

  get user() {
    return this.me?.user ?? null;
  }

  get csrfToken(): string | null {
    return this.me?.csrfToken ?? null;
  }

  get workspaces(): Workspace[] {
    return this.me?.workspaces ?? [];
  }

  set(me: Me | null): void {
    this.me = me;
    this.checked = true;
  }

  clear(): void {
    this.set(null);
  }

  workspace(id: string | null | undefined): Workspace | null {
    return this.workspaces.find((w) => w.id === id) ?? null;
  }

  role(workspaceId: string | null | undefined): WorkspaceRole | null {
    return this.workspace(workspaceId)?.role ?? null;
  }

  /** The permission table from /me crossed with the caller's role in the workspace. */
  can(workspaceId: string | null | undefined, permission: string): boolean {
    const role = this.role(workspaceId);
    if (!role || !this.me) return false;
    return (this.me.permissions[permission] ?? []).includes(role);
  }

  rememberWorkspace(workspaceId: string): void {
    if (this.me) this.me = { ...this.me, lastWorkspaceId: workspaceId };
  }
}

export const session = new Session();
