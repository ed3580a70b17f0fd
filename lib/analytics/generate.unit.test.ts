import { describe, expect, it } from 'vitest';
import { eventTypes } from './types.js';
import { generateAll, generateEvents, usersForEvents, type GenerateOptions } from './generate.js';

const end = Date.UTC(2026, 5, 15, 13, 30);
const base: GenerateOptions = {
  seed: 7, workspaceId: 'ws_1', miniProgramId: 'mp_1', versions: ['v_1', 'v_2', 'v_3'],
  hostApps: [{ id: 'ha_1', weight: 3 }, { id: 'ha_2', weight: 1 }, { id: null, weight: 1 }], users: 300, days: 20, end,
};
const dayOf = (ms: number) => Math.floor(ms / 86_400_000);

describe('generateEvents', () => {
  it('gives the same events for the same seed and end, and others for another seed', () => {
    const a = generateAll(base);
    expect(generateAll(base)).toEqual(a);
    const other = generateAll({ ...base, seed: 8 });
    expect(other.map((e) => e.id)).not.toEqual(a.map((e) => e.id));
  });

  it('yields chunks of at most chunkSize that add up to everything', () => {
    const chunks = [...generateEvents({ ...base, chunkSize: 1000 })];
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.slice(0, -1).every((c) => c.length === 1000)).toBe(true);
    expect(chunks.flat()).toEqual(generateAll(base));
  });

  it('keeps every event inside the range, with unique uuid ids and the fields each type needs', () => {
    const all = generateAll(base);
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    for (const e of all) {
      expect(e.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(e.at).toBeLessThan(end);
      expect(dayOf(e.at)).toBeGreaterThanOrEqual(dayOf(end) - 19);
      expect(eventTypes).toContain(e.type);
      expect(['v_1', 'v_2', 'v_3']).toContain(e.versionId);
      if (e.type === 'page_view') expect(e.page).toBeTruthy();
      if (e.type === 'custom' || e.type === 'perf') expect(e.name).toBeTruthy();
      if (e.type === 'perf') expect(e.value).toBeGreaterThanOrEqual(0);
      if (e.type === 'error' || e.type === 'crash') {
        expect(e.message).toBeTruthy();
        expect(e.stack).toMatch(/^ {4}at /);
        expect(e.fingerprint).toBeTruthy();
      } else expect(e.fingerprint).toBeNull();
      if (e.props !== null) expect(() => JSON.parse(e.props!)).not.toThrow();
    }
  });

  it('looks like real traffic: every type present, sessions start with a launch, users come back, versions roll out, host apps weighted', () => {
    const all = generateAll(base);
    const byType = new Map<string, number>();
    for (const e of all) byType.set(e.type, (byType.get(e.type) ?? 0) + 1);
    for (const t of eventTypes) expect(byType.get(t) ?? 0).toBeGreaterThan(0);
    expect(byType.get('page_view')!).toBeGreaterThan(byType.get('launch')! * 2);
    expect(byType.get('crash')!).toBeLessThan(byType.get('error')!);

    const sessions = new Map<string, typeof all>();
    for (const e of all) sessions.set(e.sessionId, [...(sessions.get(e.sessionId) ?? []), e]);
    for (const events of sessions.values()) {
      const first = events.reduce((a, b) => (b.at < a.at ? b : a));
      // A session cut by `end` may have lost its tail, never its launch.
      expect(first.type).toBe('launch');
      expect(new Set(events.map((e) => e.userId)).size).toBe(1);
    }

    const daysOf = new Map<string, Set<number>>();
    for (const e of all) daysOf.set(e.userId, (daysOf.get(e.userId) ?? new Set()).add(dayOf(e.at)));
    const returning = [...daysOf.values()].filter((d) => d.size > 1).length;
    expect(returning).toBeGreaterThan(daysOf.size * 0.2);
    expect(daysOf.size).toBeLessThanOrEqual(300);

    // The newest version only shows up later in the range; the first one from the start.
    const firstAt = (v: string) => Math.min(...all.filter((e) => e.versionId === v).map((e) => e.at));
    expect(firstAt('v_3')).toBeGreaterThan(firstAt('v_1'));
    const host = (id: string | null) => all.filter((e) => e.hostAppId === id).length;
    expect(host('ha_1')).toBeGreaterThan(host('ha_2'));
    expect(host(null)).toBeGreaterThan(0);
  });

  it('estimates the users for a number of events', () => {
    const users = usersForEvents(50_000, { ...base });
    const n = generateAll({ ...base, users }).length;
    expect(n).toBeGreaterThan(35_000);
    expect(n).toBeLessThan(65_000);
  });
});
