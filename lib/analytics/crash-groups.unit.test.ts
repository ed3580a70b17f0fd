import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { aggregateCrashEvents, compareSemver, crashGroupId, maxSamples } from './crash-groups.js';
import { fingerprintOf } from './fingerprint.js';
import type { AnalyticsEvent } from './types.js';

const ev = (o: Partial<AnalyticsEvent> & { message?: string }): AnalyticsEvent => {
  const message = o.message ?? 'Error: boom';
  return {
    id: randomUUID(), type: 'error', at: Date.UTC(2026, 11, 7, 10), workspaceId: 'ws', miniProgramId: 'mp_a', versionId: 'v1', hostAppId: null, userId: 'u1',
    sessionId: 's1', page: 'pages/index/index', name: null, value: null, stack: null, fingerprint: fingerprintOf(message, o.stack ?? null), props: null, ...o, message,
  };
};

describe('compareSemver', () => {
  it('orders by major, minor, patch numerically; a pre-release before its release', () => {
    const sorted = ['1.10.0', '1.2.0', '1.2.0-beta.2', '1.2.0-beta.10', '1.2.0-alpha', '0.9.9', '2.0.0'].sort(compareSemver);
    expect(sorted).toEqual(['0.9.9', '1.2.0-alpha', '1.2.0-beta.2', '1.2.0-beta.10', '1.2.0', '1.10.0', '2.0.0']);
    expect(compareSemver('1.0.0+build.5', '1.0.0')).toBe(0);
  });
});

describe('aggregateCrashEvents', () => {
  it('one delta per (mini program, fingerprint), sorted, skipping other event types', () => {
    const deltas = aggregateCrashEvents([
      ev({ miniProgramId: 'mp_b' }), ev({ message: 'Error: other' }), ev({}), ev({ type: 'launch' as const }), ev({ type: 'crash', versionId: 'v2', userId: 'u2', at: Date.UTC(2026, 11, 7, 11) }),
    ]);
    expect(deltas.map((d) => `${d.mini_program_id} ${d.title} ${d.events}`).sort()).toEqual(['mp_a Error: boom 2', 'mp_a Error: other 1', 'mp_b Error: boom 1']);
    const boom = deltas.find((d) => d.mini_program_id === 'mp_a' && d.title === 'Error: boom')!;
    expect(boom).toMatchObject({ id: crashGroupId('mp_a', fingerprintOf('Error: boom', null)), kind: 'crash', events: 2, users: ['u1', 'u2'], version_ids: ['v1', 'v2'] });
    expect(deltas.map((d) => d.mini_program_id + d.fingerprint)).toEqual(deltas.map((d) => d.mini_program_id + d.fingerprint).sort());
  });

  it('keeps the newest samples only, newest first, and counts per hour and version', () => {
    const t = Date.UTC(2026, 11, 7, 10, 59);
    const events = Array.from({ length: 8 }, (_, i) => ev({ at: t + i * 20_000, versionId: i % 2 ? 'v2' : 'v1' }));
    const [d] = aggregateCrashEvents([...events].reverse());
    expect(d!.samples).toHaveLength(maxSamples);
    expect(d!.samples.map((s) => s.eventId)).toEqual(events.slice(-maxSamples).reverse().map((e) => e.id));
    expect(d!.first_seen).toBe(new Date(t).toISOString());
    expect(d!.firstVersionId).toBe('v1');
    expect(Object.fromEntries(d!.hourly)).toEqual({
      // 10:59:00 v1, 10:59:20 v2, 10:59:40 v1 | 11:00:00 v2, 11:00:20 v1, …
      [`${new Date(Date.UTC(2026, 11, 7, 10)).toISOString()}\0v1`]: 2,
      [`${new Date(Date.UTC(2026, 11, 7, 10)).toISOString()}\0v2`]: 1,
      [`${new Date(Date.UTC(2026, 11, 7, 11)).toISOString()}\0v1`]: 2,
      [`${new Date(Date.UTC(2026, 11, 7, 11)).toISOString()}\0v2`]: 3,
    });
  });
});
