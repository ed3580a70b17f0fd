import type { ActivityDeps } from './index.js';

/** Activities of the accounts workflows (filled in by the accounts work of issue 3). */
export function createAccountActivities(deps: ActivityDeps) {
  void deps;
  return {};
}
