import { condition } from '@temporalio/workflow';

/**
 * Serializes handlers that call activities, so two updates never interleave their projections.
 * Deterministic: waiting is a workflow condition, not a timer.
 */
export class Mutex {
  private locked = false;

  async run<T>(fn: () => Promise<T>): Promise<T> {
    // Check again after every wake-up: several waiters are woken together when the lock frees,
    // and only the first may take it.
    while (this.locked) await condition(() => !this.locked);
    this.locked = true;
    try {
      return await fn();
    } finally {
      this.locked = false;
    }
  }
}
