import { describe, expect, it } from 'vitest';
import { bucketCount, cohortLimit, inCohort, rolloutBucket } from './rollout-hash.js';

const users = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
const percents = [0, 0.5, 1, 5, 20, 50, 100];

describe('rollout buckets', () => {
  it('is deterministic and in range', () => {
    for (const u of users.slice(0, 500)) {
      const b = rolloutBucket('mp_a', u);
      expect(b).toBe(rolloutBucket('mp_a', u));
      expect(Number.isInteger(b) && b >= 0 && b < bucketCount).toBe(true);
    }
    // Fixed vectors (checked with `printf 'mp_demo:user-1' | sha256sum`): a change of the hashing
    // would move users between versions mid-rollout, so it must fail here.
    expect(rolloutBucket('mp_demo', 'user-1')).toBe(5165);
    expect(rolloutBucket('mp_demo', 'alice@example.com')).toBe(2872);
  });

  it('keeps every user of a smaller cohort in every larger one (monotonic)', () => {
    const buckets = users.map((u) => rolloutBucket('mp_a', u));
    for (let i = 1; i < percents.length; i++) {
      const lo = percents[i - 1]!;
      const hi = percents[i]!;
      for (const b of buckets) if (inCohort(b, lo)) expect(inCohort(b, hi)).toBe(true);
    }
  });

  it('puts the right share of users in the cohort (within ±1 point)', () => {
    const buckets = users.map((u) => rolloutBucket('mp_a', u));
    for (const p of percents) {
      const share = (buckets.filter((b) => inCohort(b, p)).length / users.length) * 100;
      expect(Math.abs(share - p)).toBeLessThanOrEqual(1);
    }
    expect(buckets.filter((b) => inCohort(b, 0)).length).toBe(0);
    expect(buckets.filter((b) => inCohort(b, 100)).length).toBe(users.length);
  });

  it('keys by mini program: another mini program gets a different first cohort', () => {
    const a = users.filter((u) => inCohort(rolloutBucket('mp_a', u), 5));
    const b = new Set(users.filter((u) => inCohort(rolloutBucket('mp_b', u), 5)));
    const overlap = a.filter((u) => b.has(u)).length / a.length;
    expect(overlap).toBeLessThan(0.2);
  });

  it('turns percents into bucket limits without float drift', () => {
    expect(cohortLimit(0.29)).toBe(29);
    expect(cohortLimit(57)).toBe(5700);
    expect(cohortLimit(0.125)).toBe(12.5);
    expect(cohortLimit(150)).toBe(10_000);
    expect(cohortLimit(-1)).toBe(0);
    expect(inCohort(28, 0.29)).toBe(true);
    expect(inCohort(29, 0.29)).toBe(false);
  });
});
