import { createHash, randomUUID } from 'node:crypto';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityDeps } from '../../activities/index.js';
import { createRuntimeActivities } from '../../activities/runtime.js';
import { changeChannel } from '../../activities/index.js';
import { cohortLimit, rolloutBucket } from '../../lib/rollout-hash.js';
import { PackageStore } from '../../lib/storage.js';
import { defaultHealth } from '../../workflows/contracts/release.js';
import { buildPackage, realisticPackageFiles } from '../fixtures/packages.js';
import { collect, reportHealth } from '../helpers/analytics.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, type Agent, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

/**
 * The runtime side against the real API and PostgreSQL: resolve for every rollout row, stable
 * cohorts, the whitelist, offline/removed, package download, and the health check over what
 * POST /api/v1/collect counted (runtime_counts).
 * The rollout rows are written here with SQL, as the pipeline's projection writes them.
 */

let stack: Stack;
let dev: Agent;
let admin: Agent;

interface Program { id: string; v1: { id: string; sha: string }; v2: { id: string; sha: string } }
let main: Program;

const users = Array.from({ length: 2000 }, (_, i) => `host-user-${i}`);

/** Packages are content-addressed: a file naming the mini program keeps its bytes its own (another test's same version would share them). */
const uniquePackage = (name: string, version: string) => buildPackage({ ...realisticPackageFiles({ version }), 'utils/build-id.js': `export const buildId = ${JSON.stringify(`${name} ${version} ${randomUUID()}`)};\n` });
async function createProgram(name: string, versions: string[]) {
  const res = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name });
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  const out: { id: string; sha: string }[] = [];
  for (const version of versions) {
    const up = await dev.upload(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${id}/versions`, uniquePackage(name, version), version);
    expect(up.status).toBe(201);
    out.push({ id: up.body.id, sha: up.body.packageSha256 });
  }
  // Wait for the entity's projections to settle, then lift seq so none of them overwrites what the test sets.
  await eventually(async () => {
    const [row] = await stack.sequelize.query<{ n: number }>('SELECT version_count AS n FROM mini_programs WHERE id = :id', { replacements: { id }, type: QueryTypes.SELECT });
    return row?.n === versions.length;
  }, { what: `${name} versions projected` });
  await stack.sequelize.query('UPDATE mini_programs SET seq = seq + 1000000 WHERE id = :id', { replacements: { id } });
  return { id, versions: out };
}

/** What the projection does after a change: announce it, so resolve reads again. */
async function announce(miniProgramId: string) {
  await stack.sequelize.query('SELECT pg_notify(:channel, :payload)', {
    replacements: { channel: changeChannel, payload: JSON.stringify({ workspaceId: stack.workspaceId, miniProgramId, kind: 'mini_program', status: 'test', seq: 0 }) },
  });
}

async function setLive(miniProgramId: string, live: { id: string } | null, status = 'released') {
  await stack.sequelize.query('UPDATE mini_programs SET live_version_id = :live, status = :status WHERE id = :id', { replacements: { id: miniProgramId, live: live?.id ?? null, status } });
  await announce(miniProgramId);
}

let epoch = 0;
async function setRollout(miniProgramId: string, r: { versionId: string; baselineVersionId: string | null; status: string; percent: number; whitelist?: boolean }) {
  epoch++;
  await stack.sequelize.query(
    `INSERT INTO rollouts (mini_program_id, workspace_id, pipeline_id, version_id, baseline_version_id, percent, whitelist, status, epoch, seq, updated_at)
     VALUES (:mp, :ws, :pipelineId, :versionId, :baselineVersionId, :percent, :whitelist, :status, :epoch, 1, now())
     ON CONFLICT (mini_program_id) DO UPDATE SET version_id = EXCLUDED.version_id, baseline_version_id = EXCLUDED.baseline_version_id, percent = EXCLUDED.percent,
       whitelist = EXCLUDED.whitelist, status = EXCLUDED.status, epoch = EXCLUDED.epoch, updated_at = now()`,
    { replacements: { mp: miniProgramId, ws: stack.workspaceId, pipelineId: `release:${r.versionId}`, ...r, whitelist: r.whitelist ?? false, epoch } },
  );
  await announce(miniProgramId);
}

async function resolve(miniProgramId: string, userId: string) {
  const res = await fetch(`${stack.baseUrl}/api/v1/runtime/mini-programs/${encodeURIComponent(miniProgramId)}/resolve?userId=${encodeURIComponent(userId)}`);
  return { status: res.status, body: (await res.json()) as any, headers: res.headers };
}

/** Resolves many users, a few dozen requests at a time. */
async function resolveAll(miniProgramId: string, ids: string[]) {
  const out: { userId: string; status: number; body: any }[] = [];
  for (let i = 0; i < ids.length; i += 50) {
    const batch = await Promise.all(ids.slice(i, i + 50).map(async (userId) => ({ userId, ...(await resolve(miniProgramId, userId)) })));
    out.push(...batch);
  }
  return out;
}

/** Waits until resolve reflects the last change (announced changes arrive asynchronously). */
async function settled(miniProgramId: string, userId: string, expected: Record<string, unknown>) {
  await eventually(async () => {
    const r = await resolve(miniProgramId, userId);
    return Object.entries(expected).every(([k, v]) => (k === 'status' ? r.status === v : r.body?.[k] === v));
  }, { what: `resolve of ${userId} to show ${JSON.stringify(expected)}`, timeoutMs: 10_000 });
}

async function countsOf(miniProgramId: string) {
  const [row] = await stack.sequelize.query<{ launches: string; crashes: string; rows: string }>(
    'SELECT coalesce(sum(launches), 0) AS launches, coalesce(sum(crashes), 0) AS crashes, count(*) AS rows FROM runtime_counts WHERE mini_program_id = :id',
    { replacements: { id: miniProgramId }, type: QueryTypes.SELECT },
  );
  return { launches: Number(row!.launches), crashes: Number(row!.crashes), rows: Number(row!.rows) };
}

/** Share tolerance: three standard deviations of a binomial share over n users, plus a little. */
const tolerance = (p: number, n: number) => 3 * Math.sqrt((p * (1 - p)) / n) + 0.005;

beforeAll(async () => {
  stack = await startStack();
  [dev, admin] = await Promise.all([stack.agent('developer'), stack.agent('admin')]);
  const m = await createProgram('Runtime Mall', ['1.0.0', '1.1.0']);
  main = { id: m.id, v1: m.versions[0]!, v2: m.versions[1]! };
  await setLive(main.id, main.v1);
});
afterAll(async () => stack?.stop());

describe('resolve', () => {
  it('answers the live version to everyone when nothing rolls out, with a downloadable package', async () => {
    await settled(main.id, 'anyone', { versionId: main.v1.id });
    const r = await resolve(main.id, 'anyone');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      miniProgramId: main.id, versionId: main.v1.id, version: '1.0.0', packageSha256: main.v1.sha,
      packageUrl: expect.stringMatching(new RegExp(`/api/v1/runtime/packages/${main.v1.sha}$`)), channel: 'live', rolloutPercent: null,
      // The domains the version shipped with (none set in this workspace when it was submitted).
      domains: { server: [], webview: [] },
    });
    expect(r.headers.get('cache-control')).toBe('no-store');

    const pkg = await fetch(`${stack.baseUrl}${new URL(r.body.packageUrl).pathname}`);
    expect(pkg.status).toBe(200);
    expect(pkg.headers.get('content-type')).toBe('application/zip');
    expect(pkg.headers.get('cache-control')).toContain('immutable');
    const bytes = Buffer.from(await pkg.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(main.v1.sha);
    const again = await fetch(`${stack.baseUrl}/api/v1/runtime/packages/${main.v1.sha}`, { headers: { 'if-none-match': `"${main.v1.sha}"` } });
    expect(again.status).toBe(304);
  });

  it('serves no package that belongs to no version, and refuses a malformed sha256', async () => {
    const stray = await new PackageStore(stack.dataDir).put(Buffer.from('not a package of any version'));
    const res = await fetch(`${stack.baseUrl}/api/v1/runtime/packages/${stray.sha256}`);
    expect(res.status).toBe(404);
    const bad = await fetch(`${stack.baseUrl}/api/v1/runtime/packages/..%2f..%2fetc%2fpasswd`);
    expect(bad.status).toBe(400);
  });

  it('keeps every user of the 5% cohort in it at 20%, with about the right shares', async () => {
    await setRollout(main.id, { versionId: main.v2.id, baselineVersionId: main.v1.id, status: 'rolling_out', percent: 5 });
    await settled(main.id, 'probe', { rolloutPercent: 5 });
    const at5 = await resolveAll(main.id, users);
    for (const r of at5) {
      const inCohort = rolloutBucket(main.id, r.userId) < cohortLimit(5);
      expect(r.body).toMatchObject(inCohort ? { versionId: main.v2.id, version: '1.1.0', channel: 'rollout', rolloutPercent: 5 } : { versionId: main.v1.id, channel: 'live', rolloutPercent: 5 });
    }
    const cohort5 = at5.filter((r) => r.body.channel === 'rollout').map((r) => r.userId);
    expect(Math.abs(cohort5.length / users.length - 0.05)).toBeLessThan(tolerance(0.05, users.length));

    await setRollout(main.id, { versionId: main.v2.id, baselineVersionId: main.v1.id, status: 'rolling_out', percent: 20 });
    await settled(main.id, 'probe', { rolloutPercent: 20 });
    const at20 = new Map((await resolveAll(main.id, users)).map((r) => [r.userId, r.body]));
    for (const u of cohort5) expect(at20.get(u)).toMatchObject({ versionId: main.v2.id, channel: 'rollout' });
    const cohort20 = [...at20.values()].filter((b) => b.channel === 'rollout').length;
    expect(Math.abs(cohort20 / users.length - 0.2)).toBeLessThan(tolerance(0.2, users.length));
    // The same user always gets the same answer.
    const again = await resolveAll(main.id, users.slice(0, 200));
    for (const r of again) expect(r.body.versionId).toBe(at20.get(r.userId).versionId);
  });

  it('keeps the cohort while paused, serves everyone once completed, and sends everyone back when halted, aborted or superseded', async () => {
    const inUser = users.find((u) => rolloutBucket(main.id, u) < cohortLimit(20))!;
    const outUser = users.find((u) => rolloutBucket(main.id, u) >= cohortLimit(20))!;
    await setRollout(main.id, { versionId: main.v2.id, baselineVersionId: main.v1.id, status: 'paused', percent: 20 });
    await settled(main.id, outUser, { versionId: main.v1.id });
    expect((await resolve(main.id, inUser)).body).toMatchObject({ versionId: main.v2.id, channel: 'rollout', rolloutPercent: 20 });

    await setRollout(main.id, { versionId: main.v2.id, baselineVersionId: main.v1.id, status: 'completed', percent: 100 });
    await settled(main.id, outUser, { versionId: main.v2.id });
    for (const u of [inUser, outUser]) expect((await resolve(main.id, u)).body).toMatchObject({ versionId: main.v2.id, channel: 'live', rolloutPercent: null });

    for (const status of ['halted', 'aborted', 'superseded']) {
      await setRollout(main.id, { versionId: main.v2.id, baselineVersionId: main.v1.id, status, percent: 20 });
      await settled(main.id, inUser, { versionId: main.v1.id });
      for (const u of [inUser, outUser]) expect((await resolve(main.id, u)).body).toMatchObject({ versionId: main.v1.id, channel: 'live', rolloutPercent: null });
    }
  });

  it('serves the testers of the mini program and of the workspace during a whitelist stage, by account id or address', async () => {
    const address = `tester-${uid()}@example.test`;
    const add = await admin.post(`/api/v1/workspaces/${stack.workspaceId}/testers`, { emails: [address], miniProgramId: main.id });
    expect(add.status).toBe(200);
    const byAccount = await admin.post(`/api/v1/workspaces/${stack.workspaceId}/testers`, { userIds: [stack.users.reviewer.id] });
    expect(byAccount.body.summary.added).toBe(1);
    const outsider = users.find((u) => rolloutBucket(main.id, u) >= cohortLimit(1))!;

    await setRollout(main.id, { versionId: main.v2.id, baselineVersionId: main.v1.id, status: 'rolling_out', percent: 0, whitelist: true });
    await settled(main.id, address, { channel: 'whitelist' });
    expect((await resolve(main.id, address.toUpperCase())).body).toMatchObject({ versionId: main.v2.id, channel: 'whitelist', rolloutPercent: 0 });
    expect((await resolve(main.id, stack.users.reviewer.id)).body).toMatchObject({ versionId: main.v2.id, channel: 'whitelist' });
    expect((await resolve(main.id, stack.users.reviewer.email)).body).toMatchObject({ versionId: main.v2.id, channel: 'whitelist' });
    expect((await resolve(main.id, outsider)).body).toMatchObject({ versionId: main.v1.id, channel: 'live' });

    // A whitelist stage that is over (next stage without it) no longer serves testers by being testers.
    await setRollout(main.id, { versionId: main.v2.id, baselineVersionId: main.v1.id, status: 'rolling_out', percent: 1, whitelist: false });
    await settled(main.id, 'probe', { rolloutPercent: 1 });
    const tester = await resolve(main.id, address);
    const expected = rolloutBucket(main.id, address) < cohortLimit(1) ? 'rollout' : 'live';
    expect(tester.body.channel).toBe(expected);
  });

  it('answers the cohort of a first release and no_live_version to the others', async () => {
    const fresh = await createProgram('Runtime Fresh', ['0.1.0']);
    const v = fresh.versions[0]!;
    const inUser = users.find((u) => rolloutBucket(fresh.id, u) < cohortLimit(50))!;
    const outUser = users.find((u) => rolloutBucket(fresh.id, u) >= cohortLimit(50))!;
    expect((await resolve(fresh.id, inUser)).body.error.code).toBe('no_live_version');
    await setRollout(fresh.id, { versionId: v.id, baselineVersionId: null, status: 'rolling_out', percent: 50 });
    await settled(fresh.id, inUser, { rolloutPercent: 50 });
    expect((await resolve(fresh.id, inUser)).body).toMatchObject({ versionId: v.id, channel: 'rollout' });
    const out = await resolve(fresh.id, outUser);
    expect(out.status).toBe(404);
    expect(out.body.error.code).toBe('no_live_version');
  });

  it('answers 410 for an offline mini program, 404 for a removed or unknown one, 400 without a user', async () => {
    const gone = await createProgram('Runtime Gone', ['2.0.0']);
    await setLive(gone.id, gone.versions[0]!);
    await settled(gone.id, 'someone', { versionId: gone.versions[0]!.id });
    await setLive(gone.id, gone.versions[0]!, 'offline');
    await settled(gone.id, 'someone', { status: 410 });
    const off = await resolve(gone.id, 'someone');
    expect(off.body.error.code).toBe('mini_program_offline');
    await setLive(gone.id, gone.versions[0]!, 'removed');
    await settled(gone.id, 'someone', { status: 404 });
    expect((await resolve(gone.id, 'someone')).body.error.code).toBe('not_found');
    const unknown = await resolve('mp_does_not_exist', 'someone');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
    const noUser = await fetch(`${stack.baseUrl}/api/v1/runtime/mini-programs/${main.id}/resolve`);
    expect(noUser.status).toBe(400);
    // The package of a removed mini program is no longer served.
    const pkg = await fetch(`${stack.baseUrl}/api/v1/runtime/packages/${gone.versions[0]!.sha}`);
    expect(pkg.status).toBe(404);
  });

  it('notices a change nobody announced within about a second', async () => {
    await setRollout(main.id, { versionId: main.v2.id, baselineVersionId: main.v1.id, status: 'halted', percent: 0 });
    await settled(main.id, 'probe', { versionId: main.v1.id });
    await stack.sequelize.query(`UPDATE rollouts SET status = 'completed' WHERE mini_program_id = :id`, { replacements: { id: main.id } });
    const started = Date.now();
    await settled(main.id, 'probe', { versionId: main.v2.id });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('launches and crashes from collect, and the health check', () => {
  let health: Program;

  beforeAll(async () => {
    const p = await createProgram('Runtime Health', ['3.0.0', '3.1.0']);
    health = { id: p.id, v1: p.versions[0]!, v2: p.versions[1]! };
  });

  const event = (type: 'launch' | 'crash' | 'page_view', versionId: string, extra: Record<string, unknown> = {}) => ({
    id: randomUUID(), type, miniProgramId: health.id, versionId, userId: `u-${randomUUID().slice(0, 8)}`, sessionId: randomUUID(), at: Date.now(),
    ...(type === 'crash' ? { message: 'TypeError: x is undefined', stack: 'TypeError: x is undefined\n    at onLoad (pages/index/index.js:3:9)' } : {}),
    ...(type === 'page_view' ? { page: 'pages/index/index' } : {}),
    ...extra,
  });

  it('counts the launches and crashes collect accepted per minute, and nothing it rejected', async () => {
    const before = await countsOf(health.id);
    const events = [
      ...Array.from({ length: 30 }, () => event('launch', health.v2.id)),
      ...Array.from({ length: 3 }, () => event('crash', health.v2.id)),
      // Other types are analytics only: not in the health-check counts.
      ...Array.from({ length: 5 }, () => event('page_view', health.v2.id)),
      event('launch', 'ver_nope'),
      event('crash', health.v2.id, { at: '2001-01-01T00:00:00Z' }),
      event('crash', health.v2.id, { message: undefined }),
    ];
    const res = await collect(stack, events);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: 38, written: 38, duplicates: 0, durable: true });
    expect(res.body.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([[38, 'unknown_version'], [39, 'time_out_of_range'], [40, 'missing_message']]);
    await reportHealth(stack, { miniProgramId: health.id, versionId: health.v1.id, launches: 1000, crashes: 4 });
    const after = await countsOf(health.id);
    expect(after.launches - before.launches).toBe(1030);
    expect(after.crashes - before.crashes).toBe(7);
  });

  it('counts a retried batch once (same event ids), so a client retry cannot fake a crash rate', async () => {
    const before = await countsOf(health.id);
    const events = [...Array.from({ length: 20 }, () => event('launch', health.v2.id)), ...Array.from({ length: 2 }, () => event('crash', health.v2.id))];
    const first = await collect(stack, events);
    const again = await collect(stack, events);
    expect(first.body).toMatchObject({ accepted: 22, written: 22, duplicates: 0 });
    expect(again.body).toMatchObject({ accepted: 22, written: 0, duplicates: 22 });
    const after = await countsOf(health.id);
    expect([after.launches - before.launches, after.crashes - before.crashes]).toEqual([20, 2]);
  });

  it('refuses a batch without a valid ingest key, and counts none of it', async () => {
    const before = await countsOf(health.id);
    const events = [event('launch', health.v2.id), event('crash', health.v2.id)];
    const res = await collect(stack, events, { key: 'mpik_not_a_key_of_anyone' });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unknown_ingest_key');
    // Another mini program's key cannot report for this one.
    const other = await collect(stack, events.map((e) => ({ ...e, id: randomUUID() })), { key: (await stack.sequelize.query<{ k: string }>('SELECT ingest_key AS k FROM mini_programs WHERE id = :id', { replacements: { id: main.id }, type: QueryTypes.SELECT }))[0]!.k });
    expect(other.status).toBe(202);
    expect(other.body.accepted).toBe(0);
    expect(other.body.rejected.map((r: { code: string }) => r.code)).toEqual(['wrong_mini_program', 'wrong_mini_program']);
    expect(await countsOf(health.id)).toEqual(before);
  });

  it('checkRolloutHealth is green on healthy reports and red with injected crashes, counting only the window', async () => {
    // A mini program of its own, so the other tests' reports stay out of the window.
    const p = await createProgram('Runtime Health Check', ['4.0.0', '4.1.0']);
    const checked = { id: p.id, v1: p.versions[0]!, v2: p.versions[1]! };
    const deps = { sequelize: stack.sequelize, store: new PackageStore(stack.dataDir), publicUrl: stack.baseUrl } as unknown as ActivityDeps;
    const { checkRolloutHealth } = createRuntimeActivities(deps);
    const since = new Date(Date.now() - 30 * 60_000);
    const at = (minutes: number) => new Date(since.getTime() + minutes * 60_000).toISOString();
    const input = { miniProgramId: checked.id, versionId: checked.v2.id, baselineVersionId: checked.v1.id, since: since.toISOString(), thresholds: defaultHealth };

    const empty = await checkRolloutHealth(input);
    expect(empty).toMatchObject({ verdict: 'insufficient_data', launches: 0, crashes: 0 });
    expect(Date.parse(empty.at)).toBeGreaterThan(Date.now() - 60_000);

    // Before the window: never counted.
    await reportHealth(stack, { miniProgramId: checked.id, versionId: checked.v2.id, launches: 0, crashes: 50, at: since.getTime() - 10 * 60_000 });
    const report = (versionId: string, counts: { launches?: number; crashes?: number }, minute: number) =>
      reportHealth(stack, { miniProgramId: checked.id, versionId, launches: counts.launches ?? 0, crashes: counts.crashes ?? 0, at: at(minute) });
    await report(checked.v2.id, { launches: 300 }, 1);
    await report(checked.v2.id, { crashes: 2 }, 2);
    await report(checked.v1.id, { launches: 400 }, 1);
    await report(checked.v1.id, { launches: 400, crashes: 4 }, 3);
    const green = await checkRolloutHealth(input);
    expect(green).toMatchObject({ verdict: 'green', launches: 300, crashes: 2, liveLaunches: 800, liveCrashes: 4 });
    expect(green.reason).toContain('0.67% (2 crashes / 300 launches) is within the 1.09% limit');

    // Injected crash reports trip it: 12 / 300 = 4% > 1.09%.
    await report(checked.v2.id, { crashes: 10 }, 4);
    const red = await checkRolloutHealth(input);
    expect(red).toMatchObject({ verdict: 'red', launches: 300, crashes: 12, crashRate: 0.04 });
    expect(red.reason).toBe("crash rate 4.00% (12 crashes / 300 launches) is above the 1.09% limit and is above 2× the live version's 0.50% (4 crashes / 800 launches)");

    // Same figures, a window starting after them: nothing to judge.
    expect((await checkRolloutHealth({ ...input, since: at(10) })).verdict).toBe('insufficient_data');
    // Without a baseline (a first release) only the absolute limit applies.
    expect(await checkRolloutHealth({ ...input, baselineVersionId: null })).toMatchObject({ verdict: 'red', liveLaunches: 0, liveCrashes: 0 });
  });
});
