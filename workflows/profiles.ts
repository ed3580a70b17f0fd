import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';

/**
 * Read-model writes and audit rows: quick and idempotent, so they run as local activities in the
 * worker that holds the workflow (no task-queue round trip: an approve answers in one workflow
 * task). Retried until the database is back; a dead worker's attempt is redone by the next one.
 */
export const projection: LocalActivityOptions = {
  startToCloseTimeout: '10 seconds',
  localRetryThreshold: '10 seconds',
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
