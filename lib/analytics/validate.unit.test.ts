import { describe, expect, it } from 'vitest';
import { fingerprintOf } from './fingerprint.js';
import { maxBatchEvents } from './types.js';
import { cachedFingerprint, checkEvents, limits, mergeRejections, readBatch, validateEvents, type CollectAuth, type Lookups, type ValidateContext } from './validate.js';

const now = Date.UTC(2026, 11, 7, 12, 0, 0);
const ws = 'ws_a';
const mp = 'mp_main';
const keyAuth: CollectAuth = { kind: 'ingest_key', miniProgramId: mp, workspaceId: ws };
const appAuth: CollectAuth = { kind: 'host_app', hostAppId: 'ha_1', workspaceId: ws };
const ctx = (auth: CollectAuth = keyAuth, retentionDays = 90): ValidateContext => ({ auth, now, retentionDays });

/** Workspace ws_a: mini programs mp_main (1.0.0 = ver_1, 1.1.0 = ver_2) and mp_side (2.0.0 = ver_s); host apps ha_1, ha_2. Elsewhere: mp_other, ha_other. */
const lookups: Lookups = {
  programWorkspace: (id) => ({ mp_main: ws, mp_side: ws, mp_other: 'ws_b' } as Record<string, string>)[id],
  versionOf: (id, ref, byId) => {
    const versions: Record<string, Record<string, string>> = { mp_main: { '1.0.0': 'ver_1', '1.1.0': 'ver_2' }, mp_side: { '2.0.0': 'ver_s' }, mp_other: { '1.0.0': 'ver_o' } };
    const of = versions[id] ?? {};
    return byId ? (Object.values(of).includes(ref) ? ref : undefined) : of[ref];
  },
  hostAppWorkspace: (id) => ({ ha_1: ws, ha_2: ws, ha_other: 'ws_b' } as Record<string, string>)[id],
};

let n = 0;
const uuid = () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
const base = () => ({ id: uuid(), userId: 'u1', sessionId: 's1', at: now - 60_000, versionId: 'ver_1' });
const good = {
  launch: () => ({ ...base(), type: 'launch' }),
  page_view: () => ({ ...base(), type: 'page_view', page: 'pages/index/index', value: 1234 }),
  custom: () => ({ ...base(), type: 'custom', name: 'add_to_cart', properties: { sku: 'A-1', qty: 2 } }),
  error: () => ({ ...base(), type: 'error', message: 'TypeError: x is undefined', stack: 'at f (app.js:1:2)', page: 'pages/cart/cart' }),
  crash: () => ({ ...base(), type: 'crash', message: 'Fatal: out of memory' }),
  perf: () => ({ ...base(), type: 'perf', name: 'launch_ms', value: 842.5 }),
};

/** The one rejection of a single event, or null when it passes. */
function verdict(event: unknown, c: ValidateContext = ctx()) {
  const { events, rejected } = validateEvents([event], c, lookups);
  expect(events.length + rejected.length).toBe(1);
  return rejected[0] ? { code: rejected[0].code, field: rejected[0].field } : null;
}

describe('readBatch', () => {
  it('refuses what is not a batch, as a whole', () => {
    expect(readBatch('{"events": [')).toMatchObject({ status: 400, code: 'invalid_json' });
    expect(readBatch(new Uint8Array([0xff, 0xfe, 0x00]))).toMatchObject({ code: 'invalid_json' });
    expect(readBatch('')).toMatchObject({ code: 'invalid_json' });
    for (const body of ['[]', '"x"', 'null', '42', '{}', '{"events": {}}', '{"events": "a"}', '[{"events": []}]']) expect([body, readBatch(body)]).toEqual([body, expect.objectContaining({ code: 'invalid_batch' })]);
    expect(readBatch('{"events": []}')).toMatchObject({ code: 'no_events' });
    expect(readBatch(JSON.stringify({ events: Array.from({ length: maxBatchEvents + 1 }, () => ({})) }))).toMatchObject({ code: 'too_many_events' });
  });

  it('gives the events of a good batch, from text or bytes (UTF-8)', () => {
    const events = [{ a: 'é✓😀' }];
    expect(readBatch(JSON.stringify({ events }))).toEqual(events);
    expect(readBatch(new TextEncoder().encode(JSON.stringify({ events, extra: true })))).toEqual(events);
    expect(readBatch(JSON.stringify({ events: Array.from({ length: maxBatchEvents }, () => 1) }))).toHaveLength(maxBatchEvents);
  });
});

describe('validateEvents: good events', () => {
  it('passes every type with its fields, defaults from the ingest key, ids lower-cased', () => {
    const raw = Object.values(good).map((g) => g());
    raw[0]!.id = raw[0]!.id.toUpperCase().replace('0000-4000', 'ABCD-4000');
    const { events, rejected } = validateEvents(raw, ctx(), lookups);
    expect(rejected).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['launch', 'page_view', 'custom', 'error', 'crash', 'perf']);
    expect(events[0]!.id).toBe(raw[0]!.id.toLowerCase());
    for (const e of events) expect(e).toMatchObject({ workspaceId: ws, miniProgramId: mp, versionId: 'ver_1', hostAppId: null, userId: 'u1', sessionId: 's1', at: now - 60_000 });
    expect(events[1]).toMatchObject({ page: 'pages/index/index', value: 1234, name: null, message: null, fingerprint: null, props: null });
    expect(events[2]).toMatchObject({ name: 'add_to_cart', props: '{"sku":"A-1","qty":2}' });
    expect(events[3]).toMatchObject({ message: 'TypeError: x is undefined', stack: 'at f (app.js:1:2)', page: 'pages/cart/cart', fingerprint: fingerprintOf('TypeError: x is undefined', 'at f (app.js:1:2)') });
    expect(events[4]).toMatchObject({ stack: null, fingerprint: fingerprintOf('Fatal: out of memory', null) });
    expect(events[5]).toMatchObject({ name: 'launch_ms', value: 842.5 });
  });

  it('resolves a version string to its id; takes an ISO time with offset; keeps the named host app of the workspace', () => {
    const e = { ...good.launch(), versionId: undefined, version: '1.1.0', at: '2026-12-07T12:59:00+01:00', hostAppId: 'ha_2', miniProgramId: mp, extra: { ignored: true } };
    const { events } = validateEvents([e], ctx(), lookups);
    expect(events[0]).toMatchObject({ versionId: 'ver_2', at: now - 60_000, hostAppId: 'ha_2' });
    expect(validateEvents([{ ...e, at: '2026-12-07T11:59:00.123456Z' }], ctx(), lookups).events[0]!.at).toBe(now - 60_000 + 123);
  });

  it('with a host app signature: events of any mini program of the workspace, host app from the signature', () => {
    const raw = [
      { ...good.launch(), miniProgramId: mp },
      { ...good.launch(), miniProgramId: 'mp_side', versionId: undefined, version: '2.0.0', hostAppId: 'ha_1' },
    ];
    const { events, rejected } = validateEvents(raw, ctx(appAuth), lookups);
    expect(rejected).toEqual([]);
    expect(events.map((e) => [e.miniProgramId, e.versionId, e.hostAppId])).toEqual([[mp, 'ver_1', 'ha_1'], ['mp_side', 'ver_s', 'ha_1']]);
  });

  it('treats null optional fields as absent and accepts the limits exactly', () => {
    const e = {
      ...good.error(), hostAppId: null, page: 'p'.repeat(limits.pageLength), properties: Object.fromEntries(Array.from({ length: limits.propertiesKeys }, (_, i) => [`k${i}`, i])),
      message: 'm'.repeat(limits.messageBytes), stack: 's'.repeat(limits.stackBytes), userId: 'u'.repeat(limits.userIdLength), sessionId: 's'.repeat(limits.sessionIdLength),
    };
    expect(verdict(e)).toBeNull();
    expect(verdict({ ...good.custom(), name: 'n'.repeat(limits.nameLength), properties: { big: 'x'.repeat(limits.propertiesBytes - 10) } })).toBeNull();
    expect(verdict({ ...good.launch(), at: now + 5 * 60_000, properties: null, value: 0 })).toBeNull();
    expect(verdict({ ...good.launch(), at: now - 7 * 24 * 3600_000 })).toBeNull();
    expect(verdict({ ...good.page_view(), value: undefined })).toBeNull();
  });

  it('fingerprints repeated errors from memory, exactly as fingerprintOf does', () => {
    const stacks = [null, 'at a (x.js:1:1)', 'at b (y.js:2:2)', 's'.repeat(limits.stackBytes)];
    for (let round = 0; round < 3; round++) {
      for (const stack of stacks) expect(cachedFingerprint('TypeError: boom', stack)).toBe(fingerprintOf('TypeError: boom', stack));
    }
    for (let i = 0; i < 1500; i++) cachedFingerprint(`Error ${i}`, null);
    expect(cachedFingerprint('Error 3', null)).toBe(fingerprintOf('Error 3', null));
  });

  it('replaces NUL characters in messages and stacks (text that cannot be stored)', () => {
    const { events } = validateEvents([{ ...good.error(), message: 'bad\0byte', stack: 'at\0x' }], ctx(), lookups);
    expect(events[0]).toMatchObject({ message: 'bad\uFFFDbyte', stack: 'at\uFFFDx' });
  });
});

describe('validateEvents: every bad shape has its code', () => {
  const cases: [string, unknown, string, string | null, CollectAuth?][] = [
    ['null event', null, 'invalid_event', null],
    ['array event', [1], 'invalid_event', null],
    ['string event', 'launch', 'invalid_event', null],
    ['no id', { ...good.launch(), id: undefined }, 'invalid_id', 'id'],
    ['id not a uuid', { ...good.launch(), id: 'evt-1' }, 'invalid_id', 'id'],
    ['numeric id', { ...good.launch(), id: 12 }, 'invalid_id', 'id'],
    ['no type', { ...good.launch(), type: undefined }, 'unknown_type', 'type'],
    ['unknown type', { ...good.launch(), type: 'click' }, 'unknown_type', 'type'],
    ['type in capitals', { ...good.launch(), type: 'LAUNCH' }, 'unknown_type', 'type'],
    ['another mini program with a key', { ...good.launch(), miniProgramId: 'mp_side' }, 'wrong_mini_program', 'miniProgramId'],
    ['a number as mini program with a key', { ...good.launch(), miniProgramId: 5 }, 'wrong_mini_program', 'miniProgramId'],
    ['no mini program with a signature', good.launch(), 'unknown_mini_program', 'miniProgramId', appAuth],
    ['mini program of another workspace', { ...good.launch(), miniProgramId: 'mp_other', versionId: 'ver_o' }, 'unknown_mini_program', 'miniProgramId', appAuth],
    ['unknown mini program', { ...good.launch(), miniProgramId: 'mp_nope' }, 'unknown_mini_program', 'miniProgramId', appAuth],
    ['no version', { ...good.launch(), versionId: undefined }, 'unknown_version', 'versionId'],
    ['unknown version id', { ...good.launch(), versionId: 'ver_zzz' }, 'unknown_version', 'versionId'],
    ['version id of another mini program', { ...good.launch(), versionId: 'ver_s' }, 'unknown_version', 'versionId'],
    ['unknown version string', { ...good.launch(), versionId: undefined, version: '9.9.9' }, 'unknown_version', 'version'],
    ['numeric version', { ...good.launch(), versionId: undefined, version: 1.1 }, 'unknown_version', 'version'],
    ['host app of another workspace', { ...good.launch(), hostAppId: 'ha_other' }, 'unknown_host_app', 'hostAppId'],
    ['unknown host app', { ...good.launch(), hostAppId: 'ha_nope' }, 'unknown_host_app', 'hostAppId'],
    ['numeric host app', { ...good.launch(), hostAppId: 7 }, 'unknown_host_app', 'hostAppId'],
    ['another host app with a signature', { ...good.launch(), miniProgramId: mp, hostAppId: 'ha_2' }, 'wrong_host_app', 'hostAppId', appAuth],
    ['no user', { ...good.launch(), userId: undefined }, 'invalid_user_id', 'userId'],
    ['empty user', { ...good.launch(), userId: '' }, 'invalid_user_id', 'userId'],
    ['long user', { ...good.launch(), userId: 'u'.repeat(limits.userIdLength + 1) }, 'invalid_user_id', 'userId'],
    ['numeric user', { ...good.launch(), userId: 42 }, 'invalid_user_id', 'userId'],
    ['user with NUL', { ...good.launch(), userId: 'a\0b' }, 'invalid_user_id', 'userId'],
    ['no session', { ...good.launch(), sessionId: undefined }, 'invalid_session_id', 'sessionId'],
    ['long session', { ...good.launch(), sessionId: 's'.repeat(limits.sessionIdLength + 1) }, 'invalid_session_id', 'sessionId'],
    ['no time', { ...good.launch(), at: undefined }, 'invalid_time', 'at'],
    ['time not a date', { ...good.launch(), at: 'yesterday' }, 'invalid_time', 'at'],
    ['time without offset', { ...good.launch(), at: '2026-12-07T11:59:00' }, 'invalid_time', 'at'],
    ['date only', { ...good.launch(), at: '2026-12-07' }, 'invalid_time', 'at'],
    ['impossible hour', { ...good.launch(), at: '2026-12-07T25:00:00Z' }, 'invalid_time', 'at'],
    ['infinite time', { ...good.launch(), at: 1e400 }, 'invalid_time', 'at'],
    ['boolean time', { ...good.launch(), at: true }, 'invalid_time', 'at'],
    ['older than 7 days', { ...good.launch(), at: now - 7 * 24 * 3600_000 - 1 }, 'time_out_of_range', 'at'],
    ['seconds, not ms', { ...good.launch(), at: Math.floor(now / 1000) }, 'time_out_of_range', 'at'],
    ['too far ahead', { ...good.launch(), at: now + 5 * 60_000 + 1 }, 'time_out_of_range', 'at'],
    ['page_view without page', { ...good.page_view(), page: undefined }, 'missing_page', 'page'],
    ['page_view with empty page', { ...good.page_view(), page: '' }, 'missing_page', 'page'],
    ['long page', { ...good.page_view(), page: 'p'.repeat(limits.pageLength + 1) }, 'invalid_page', 'page'],
    ['numeric page', { ...good.launch(), page: 3 }, 'invalid_page', 'page'],
    ['custom without name', { ...good.custom(), name: undefined }, 'missing_name', 'name'],
    ['perf without name', { ...good.perf(), name: '' }, 'missing_name', 'name'],
    ['long name', { ...good.custom(), name: 'n'.repeat(limits.nameLength + 1) }, 'invalid_name', 'name'],
    ['numeric name', { ...good.custom(), name: 5 }, 'invalid_name', 'name'],
    ['perf without value', { ...good.perf(), value: undefined }, 'invalid_value', 'value'],
    ['negative value', { ...good.perf(), value: -1 }, 'invalid_value', 'value'],
    ['string value', { ...good.perf(), value: '12' }, 'invalid_value', 'value'],
    ['page_view with negative time on page', { ...good.page_view(), value: -5 }, 'invalid_value', 'value'],
    ['error without message', { ...good.error(), message: undefined }, 'missing_message', 'message'],
    ['crash with blank message', { ...good.crash(), message: '  \n ' }, 'missing_message', 'message'],
    ['numeric message', { ...good.error(), message: 500 }, 'missing_message', 'message'],
    ['message over 8 KB', { ...good.error(), message: 'm'.repeat(limits.messageBytes + 1) }, 'message_too_long', 'message'],
    ['message over 8 KB in UTF-8 bytes', { ...good.error(), message: 'é'.repeat(limits.messageBytes / 2 + 1) }, 'message_too_long', 'message'],
    ['stack not text', { ...good.error(), stack: ['at a'] }, 'invalid_stack', 'stack'],
    ['stack over 32 KB', { ...good.crash(), stack: 's'.repeat(limits.stackBytes + 1) }, 'stack_too_long', 'stack'],
    ['properties an array', { ...good.custom(), properties: [1, 2] }, 'invalid_properties', 'properties'],
    ['properties a string', { ...good.custom(), properties: 'a=1' }, 'invalid_properties', 'properties'],
    ['too many properties', { ...good.custom(), properties: Object.fromEntries(Array.from({ length: limits.propertiesKeys + 1 }, (_, i) => [`k${i}`, i])) }, 'invalid_properties', 'properties'],
    ['properties with NUL', { ...good.custom(), properties: { a: 'x\0y' } }, 'invalid_properties', 'properties'],
    ['properties with a lone surrogate', { ...good.custom(), properties: { a: 'x\ud800' } }, 'invalid_properties', 'properties'],
    ['properties over 4 KB', { ...good.custom(), properties: { big: 'x'.repeat(limits.propertiesBytes) } }, 'properties_too_large', 'properties'],
  ];
  for (const [what, event, code, field, auth] of cases) {
    it(`${what} → ${code}`, () => {
      expect(verdict(event, ctx(auth))).toEqual({ code, field });
    });
  }

  it('a shorter retention narrows the accepted past', () => {
    expect(verdict({ ...good.launch(), at: now - 3 * 24 * 3600_000 }, ctx(keyAuth, 2))).toEqual({ code: 'time_out_of_range', field: 'at' });
    expect(verdict({ ...good.launch(), at: now - 1 * 24 * 3600_000 }, ctx(keyAuth, 2))).toBeNull();
  });

  it('properties with escaped backslashes and real surrogate pairs are fine', () => {
    expect(verdict({ ...good.custom(), properties: { path: 'C:\\ud800\\u0000', emoji: '😀' } })).toBeNull();
  });
});

describe('a batch of good and bad events', () => {
  it('lists each bad event by index with a message, in order, and keeps the good ones', () => {
    const raw = [good.launch(), null, { ...good.launch(), versionId: 'nope' }, good.page_view(), { ...good.perf(), value: -1 }, { ...good.launch(), hostAppId: 'ha_other' }, good.crash()];
    const { events, rejected } = validateEvents(raw, ctx(), lookups);
    expect(events.map((e) => e.id)).toEqual([raw[0], raw[3], raw[6]].map((e) => (e as { id: string }).id));
    expect(rejected.map((r) => [r.index, r.code])).toEqual([[1, 'invalid_event'], [2, 'unknown_version'], [4, 'invalid_value'], [5, 'unknown_host_app']]);
    for (const r of rejected) expect(r.message.length).toBeGreaterThan(10);
  });

  it('merges the two passes\' rejections by index', () => {
    const r = (index: number) => ({ index, code: 'invalid_id' as const, field: 'id', message: 'x' });
    expect(mergeRejections([r(0), r(3), r(4)], [r(1), r(2), r(5)]).map((x) => x.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(mergeRejections([], [r(2)]).map((x) => x.index)).toEqual([2]);
  });

  it('checks a large volume quickly (hand-written checks, no schema library per event)', () => {
    const raw = Array.from({ length: 500 }, (_, i) => Object.values(good)[i % 6]!());
    const batch = JSON.parse(JSON.stringify(raw)) as unknown[];
    for (let round = 0; round < 20; round++) checkEvents(batch, ctx()); // warm up the JIT
    const started = performance.now();
    let passed = 0;
    for (let round = 0; round < 200; round++) passed += checkEvents(batch, ctx()).checked.length;
    const perSecond = (200 * 500) / ((performance.now() - started) / 1000);
    expect(passed).toBe(200 * 500);
    // Generous for a busy two-core machine: a quiet one checks about two million per second.
    expect(perSecond).toBeGreaterThan(20_000);
  });
});
