import { defineUpdate } from '@temporalio/workflow';

export const pingWorkflowId = (name: string) => `ping:${name}`;

/** Answers at once: the bare-Update baseline of the benchmarks and a worker liveness probe. */
export const pingUpdate = defineUpdate<number, [number]>('ping');
