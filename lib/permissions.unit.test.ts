import { describe, expect, it } from 'vitest';
import { allowedVersionActions } from './actions.js';
import { can, permissionTable, permissionsOf, workspaceRoles } from './permissions.js';

describe('permission table', () => {
  it('lets reviewers decide but not upload, and developers upload but not decide', () => {
    expect(can('reviewer', 'version.approve')).toBe(true);
    expect(can('reviewer', 'version.upload')).toBe(false);
    expect(can('developer', 'version.upload')).toBe(true);
    expect(can('developer', 'version.approve')).toBe(false);
    expect(can(null, 'workspace.read')).toBe(false);
  });

  it('gives admins every permission and everyone read access', () => {
    expect(permissionsOf('admin')).toEqual(Object.keys(permissionTable).filter((p) => !p.startsWith('platform.')));
    for (const role of workspaceRoles) expect(can(role, 'miniProgram.read')).toBe(true);
  });
});

describe('allowed version actions', () => {
  const base = { userId: 'u1', submittedBy: 'u2', laneBusy: false };
  it('offers submit only on an uploaded version with a free lane', () => {
    expect(allowedVersionActions({ ...base, role: 'developer', status: 'uploaded' })).toEqual(['submit']);
    expect(allowedVersionActions({ ...base, role: 'developer', status: 'uploaded', laneBusy: true })).toEqual([]);
    expect(allowedVersionActions({ ...base, role: 'reviewer', status: 'uploaded' })).toEqual([]);
  });

  it('offers approve and reject to reviewers, but never on their own submission', () => {
    expect(allowedVersionActions({ ...base, role: 'reviewer', status: 'in_review' })).toEqual(['approve', 'reject']);
    expect(allowedVersionActions({ ...base, role: 'admin', status: 'in_review', submittedBy: 'u1' })).toEqual(['withdraw']);
  });

  it('offers release after approval, and nothing once released', () => {
    expect(allowedVersionActions({ ...base, role: 'developer', status: 'approved' })).toEqual(['release', 'withdraw']);
    expect(allowedVersionActions({ ...base, role: 'admin', status: 'released' })).toEqual([]);
  });
});
