import { hash } from 'node:crypto';

/** Users are spread over this many buckets: a rollout percent has a resolution of 0.01%. */
export const bucketCount = 10_000;

/**
 * The user's bucket for a mini program, 0 ≤ bucket < 10,000: the first four bytes of
 * sha256(`miniProgramId:userId`) modulo 10,000. Keyed by the mini program, not the version, so the
 * same users come first in every rollout of it and a user in the cohort at 5% stays in at 20%.
 */
export function rolloutBucket(miniProgramId: string, userId: string): number {
  // One-shot hash: no Hash object per call (this runs on every resolve).
  return hash('sha256', `${miniProgramId}:${userId}`, 'buffer').readUInt32BE(0) % bucketCount;
}

/** Buckets below this are in a cohort of `percent` (0–100); rounded so 0.29 × 100 is 29, not 28.999…. */
export function cohortLimit(percent: number): number {
  return Math.round(Math.min(100, Math.max(0, percent)) * 100 * 1000) / 1000;
}

/** Whether a bucket is in the cohort of a rollout at `percent` (0–100). */
export function inCohort(bucket: number, percent: number): boolean {
  return bucket < cohortLimit(percent);
}
