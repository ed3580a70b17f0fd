import type { ActivityOptions } from '@temporalio/workflow';

/** Read-model writes and audit rows: quick, idempotent, retried until the database is back. */
export const projection: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};

/** Mail and package checks: slower, idempotent by dedupe key. */
export const external: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};
