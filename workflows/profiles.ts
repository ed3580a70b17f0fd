import type { ActivityOptions } from '@temporalio/workflow';

/**
 * Read-model writes and audit rows: quick and idempotent. Ordinary (not local) activities, so a
 * workflow task that schedules one completes at once and a command's answer never waits for the
 * database. A short start-to-close timeout, so a dead worker's attempt is redone within seconds;
 * retried until the database is back.
 */
export const projection: ActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};

/**
 * Mail and package checks: slower, idempotent by dedupe key. They heartbeat, so a dead worker is
 * noticed after the heartbeat timeout rather than the whole start-to-close timeout.
 */
export const external: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '5 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};
