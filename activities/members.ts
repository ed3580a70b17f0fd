import type { ActivityDeps } from './index.js';

/** Activities of the members workflows (filled in by the members work of issue 3). */
export function createMemberActivities(deps: ActivityDeps) {
  void deps;
  return {};
}
