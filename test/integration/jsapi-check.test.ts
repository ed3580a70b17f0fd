import { ApplicationFailure } from '@temporalio/common';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MockActivityEnvironment } from '@temporalio/testing';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { createMailer } from '../../lib/mailer.js';
import { PackageStore } from '../../lib/storage.js';
import { connectClient } from '../../temporal/client.js';
import { miniProgramWorkflowId, submitUpdate } from '../../workflows/contracts/mini-program.js';
import { FailureType } from '../../workflows/contracts/errors.js';
import { releaseWorkflowId } from '../../workflows/contracts/release.js';
import { buildPackage, minimalPackageFiles, realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, type Agent, type Stack } from '../helpers/stack.js';
import { uid } from '../helpers/workflow-env.js';

let stack: Stack;
let dev: Agent;
let rev: Agent;
let mpId: string;
let mpUrl: string;

const q = (sql: string, replacements: Record<string, unknown> = {}) => stack.sequelize.query(sql, { replacements });
const rows = <T extends object>(sql: string, replacements: Record<string, unknown> = {}) => stack.sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT });

/** The page script of the packages below: `getLocation` is called on line 5, `request` (open) on 3. */
const pageScript = [
  "// my.tradePay({}) is only mentioned in a comment",
  'Page({',
  "  onLoad() { my.request({ url: 'https://api.example.test/shops' }); },",
  '  locate() {',
  '    my.getLocation({ type: 1, success: (res) => this.setData({ where: `at ${res.city}: my.scanCode()` }) });',
  '  },',
  '});',
].join('\n');

/** A valid package whose page script is `script` (and app.json with `extra` fields). */
function packageWith(version: string, script: string, extra: Record<string, unknown> = {}): Buffer {
  const files = minimalPackageFiles({ version });
  files['pages/index/index.js'] = script;
  files['app.json'] = JSON.stringify({ ...JSON.parse(files['app.json'] as string), ...extra }, null, 2);
  return buildPackage(files);
}

async function upload(version: string, zip: Buffer): Promise<string> {
  const res = await dev.upload(`${mpUrl}/versions`, zip, version);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

/** A feature of the workspace listing `apis` (rows as the features engineer's tables hold them). */
async function feature(key: string, name: string, apis: string[], accessMode: 'direct' | 'activation' = 'direct'): Promise<string> {
  const id = uid('fea_');
  await q(
    `INSERT INTO features (id, workspace_id, key, name, description, access_mode, jsapis, status, revision, created_by, created_at, updated_at)
     VALUES (:id, :ws, :key, :name, '', :accessMode, ARRAY[:apis]::text[], 'active', 1, :by, now(), now())`,
    { id, ws: stack.workspaceId, key, name, accessMode, apis, by: stack.users.admin.id },
  );
  return id;
}

async function hold(featureId: string, status: 'active' | 'revoked' = 'active') {
  await q(
    `INSERT INTO mini_program_features (mini_program_id, feature_id, workspace_id, status, requested_by, requested_at, decided_by, decided_at, updated_at)
     VALUES (:mpId, :featureId, :ws, :status, :by, now(), :by, now(), now())
     ON CONFLICT (mini_program_id, feature_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now()`,
    { mpId, featureId, ws: stack.workspaceId, status, by: stack.users.admin.id },
  );
}

beforeAll(async () => {
  stack = await startStack();
  [dev, rev] = await Promise.all([stack.agent('developer'), stack.agent('reviewer')]);
  const res = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Harbour Maps', description: 'Store finder', category: 'shopping' });
  expect(res.status).toBe(201);
  mpId = res.body.id;
  mpUrl = `/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mpId}`;
});
afterAll(async () => stack?.stop());

describe('submit checks the JSAPIs a package calls', () => {
  let locationFeature: string;

  it('records what an upload uses, with file, line and column; the version page data marks what is missing', async () => {
    locationFeature = await feature(uid('location-'), 'Location', ['getLocation', 'chooseLocation']);
    const versionId = await upload('1.0.0', packageWith('1.0.0', pageScript));
    const stored = await rows<{ api: string; file: string; line: number; col: number; via: string }>('SELECT api, file, line, col, via FROM version_jsapis WHERE version_id = :versionId ORDER BY api', { versionId });
    expect(stored).toEqual([
      { api: 'getLocation', file: 'pages/index/index.js', line: 5, col: 5, via: 'call' },
      { api: 'request', file: 'pages/index/index.js', line: 3, col: 14, via: 'call' },
    ]);

    const usage = await rev.get(`${mpUrl}/versions/${versionId}/jsapis`);
    expect(usage.status).toBe(200);
    expect(usage.body.missingCount).toBe(1);
    expect(usage.body.items).toEqual([
      expect.objectContaining({ api: 'getLocation', permissionLevel: 'needs_feature', allowed: false, reason: 'not_granted', calls: [{ file: 'pages/index/index.js', line: 5, column: 5, via: 'call' }], callCount: 1 }),
      expect.objectContaining({ api: 'request', permissionLevel: 'open', allowed: true, reason: null }),
    ]);
  });

  it('refuses the submission with 422 naming the JSAPI, file and line, changes nothing; granting the feature lets it through', async () => {
    const versionId = (await rows<{ id: string }>('SELECT id FROM versions WHERE mini_program_id = :mpId AND version = :v', { mpId, v: '1.0.0' }))[0]!.id;
    const refused = await dev.post(`${mpUrl}/versions/${versionId}/submit`, {});
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('jsapi_not_granted');
    expect(refused.body.error.message).toContain('getLocation at pages/index/index.js:5');
    expect(refused.body.error.message).toContain('apply for "Location"');
    expect(refused.body.error.details.missing).toEqual([
      {
        api: 'getLocation', reason: 'not_granted', callCount: 1,
        calls: [{ file: 'pages/index/index.js', line: 5, column: 5, via: 'call' }],
        grantedBy: [{ featureId: locationFeature, key: expect.any(String), name: 'Location', accessMode: 'direct' }],
      },
    ]);
    // Nothing changed: still uploaded, no pipeline.
    expect((await dev.get(`${mpUrl}/versions/${versionId}`)).body.version.status).toBe('uploaded');
    expect(await rows('SELECT id FROM pipelines WHERE id = :id', { id: releaseWorkflowId(versionId) })).toEqual([]);

    // A feature that is held but not active does not count.
    await hold(locationFeature, 'revoked');
    expect((await dev.post(`${mpUrl}/versions/${versionId}/submit`, {})).status).toBe(422);

    await hold(locationFeature, 'active');
    const usage = await dev.get(`${mpUrl}/versions/${versionId}/jsapis`);
    expect(usage.body.items[0]).toMatchObject({ api: 'getLocation', allowed: true, grantedVia: [{ featureId: locationFeature, name: 'Location' }] });
    const ok = await dev.post(`${mpUrl}/versions/${versionId}/submit`, {});
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    // The pipeline's own check agrees: the version goes to review, not to invalid.
    await eventually(async () => (await dev.get(`${mpUrl}/versions/${versionId}`)).body.version.status === 'in_review', { what: 'in review' });
    await dev.post(`${mpUrl}/versions/${versionId}/withdraw`, {});
  });

  it('refuses a disabled JSAPI even when a held feature lists it', async () => {
    await q(`UPDATE jsapis SET status = 'disabled' WHERE workspace_id = :ws AND name = 'chooseLocation'`, { ws: stack.workspaceId });
    const versionId = await upload('1.1.0', packageWith('1.1.0', 'Page({\n  pick() { my.chooseLocation({}); },\n});\n'));
    const res = await dev.post(`${mpUrl}/versions/${versionId}/submit`, {});
    expect(res.status).toBe(422);
    expect(res.body.error.details.missing).toEqual([expect.objectContaining({ api: 'chooseLocation', reason: 'disabled', calls: [{ file: 'pages/index/index.js', line: 2, column: 12, via: 'call' }] })]);
    expect(res.body.error.message).toContain('chooseLocation at pages/index/index.js:2: disabled');
    const usage = await dev.get(`${mpUrl}/versions/${versionId}/jsapis`);
    expect(usage.body.items).toEqual([expect.objectContaining({ api: 'chooseLocation', status: 'disabled', allowed: false, reason: 'disabled' })]);
  });

  it('refuses an unknown JSAPI and one app.json declares, naming each', async () => {
    const versionId = await upload('1.2.0', packageWith('1.2.0', "Page({ onShow() { wx.makeItRain({ amount: 3 }); my.showToast({ content: 'hi' }); } });\n", { jsapis: ['tradePay'] }));
    const res = await dev.post(`${mpUrl}/versions/${versionId}/submit`, {});
    expect(res.status).toBe(422);
    expect(res.body.error.details.missing).toEqual([
      expect.objectContaining({ api: 'makeItRain', reason: 'unknown', calls: [{ file: 'pages/index/index.js', line: 1, column: 19, via: 'call' }] }),
      expect.objectContaining({ api: 'tradePay', reason: 'not_granted', calls: [expect.objectContaining({ file: 'app.json', via: 'manifest' })], grantedBy: [] }),
    ]);
    expect(res.body.error.message).toMatch(/makeItRain at pages\/index\/index\.js:1: not in the workspace's JSAPI catalog; tradePay at app\.json:\d+: not granted/);
  });

  it('the CLI prints each missing JSAPI with file:line and exits 1 (input refused)', async () => {
    const created = await dev.post('/api/v1/me/tokens', { name: 'jsapi cli' });
    expect(created.status).toBe(201);
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'mpdp-jsapi-cli-'));
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPDP_')));
    const proc = spawn(process.execPath, [fileURLToPath(new URL('../../cli/bin.mjs', import.meta.url)), 'submit', '--workspace', stack.workspaceId, '--mini-program', mpId, '--version', '1.2.0'], {
      cwd: tmp, env: { ...inherited, MPDP_CONFIG: path.join(tmp, 'mpdp.json'), MPDP_SERVER: stack.baseUrl, MPDP_TOKEN: created.body.token }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.once('close', resolve));
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('JSAPI(s) this mini program may not call (jsapi_not_granted)');
    expect(stderr).toMatch(/makeItRain: unknown: not in the workspace's JSAPI catalog\n\s+pages\/index\/index\.js:1:19/);
    expect(stderr).toMatch(/tradePay: not granted by a feature the mini program holds\n\s+app\.json:\d+:\d+ \(declared\)/);
  });

  it('lets the realistic demo package through: it calls only open JSAPIs', async () => {
    const versionId = await upload('1.3.0', realisticPackage({ version: '1.3.0' }));
    const usage = await dev.get(`${mpUrl}/versions/${versionId}/jsapis`);
    expect(usage.body.missingCount).toBe(0);
    expect(usage.body.items.map((i: { api: string }) => i.api)).toEqual(['getStorageSync', 'navigateTo', 'request', 'showToast', 'stopPullDownRefresh']);
    expect((await dev.post(`${mpUrl}/versions/${versionId}/submit`, {})).status).toBe(200);
    await eventually(async () => (await dev.get(`${mpUrl}/versions/${versionId}`)).body.version.status === 'in_review', { what: 'in review' });
    await dev.post(`${mpUrl}/versions/${versionId}/withdraw`, {});
  });

  it('a version uploaded before the scan existed is scanned from its stored package when needed', async () => {
    const versionId = await upload('1.4.0', packageWith('1.4.0', pageScript));
    await q('DELETE FROM version_jsapis WHERE version_id = :versionId', { versionId });
    await q('UPDATE versions SET jsapis_scanned_at = NULL WHERE id = :versionId', { versionId });
    const usage = await dev.get(`${mpUrl}/versions/${versionId}/jsapis`);
    expect(usage.body.items.map((i: { api: string }) => i.api)).toEqual(['getLocation', 'request']);
    expect((await rows('SELECT 1 FROM version_jsapis WHERE version_id = :versionId', { versionId })).length).toBe(2);
    expect(usage.body.callCount).toBe(2);
    expect((await dev.get(`${mpUrl}/versions/ver_nope/jsapis`)).status).toBe(404);
  });
});

describe('the release pipeline checks again', () => {
  it('fails the pipeline as an invalid package when a feature was revoked after the submission', async () => {
    const fea = await feature(uid('loc2-'), 'Location (store finder)', ['getLocation']);
    await q(`UPDATE mini_program_features SET status = 'revoked' WHERE mini_program_id = :mpId`, { mpId }); // (the first test's grant too)
    await hold(fea, 'revoked');
    const versionId = await upload('2.0.0', packageWith('2.0.0', pageScript));
    // Past the API's check (as if the feature was revoked between submit and validation):
    // submitted through the workflow itself; the pipeline's package check must refuse it.
    const temporal = await connectClient(inject('temporalAddress'), 'default');
    await temporal.workflow.getHandle(miniProgramWorkflowId(mpId)).executeUpdate(submitUpdate, { args: [{ versionId, actorId: stack.users.developer.id }] });
    let last: unknown;
    const detail = await eventually(async () => {
      const d = (await dev.get(`${mpUrl}/versions/${versionId}`)).body;
      last = d;
      return d.version.status === 'invalid' ? d : null;
    }, { what: 'the pipeline to fail validation' }).catch((err: Error) => { throw new Error(`${err.message}: ${JSON.stringify(last).slice(0, 3000)}`); });
    const failed = detail.pipeline.timeline.find((t: { action: string }) => t.action === 'validation_failed');
    expect(failed.comment).toContain('jsapi_not_granted');
    expect(failed.comment).toContain('getLocation at pages/index/index.js:5');
  });

  it('validateStoredPackage refuses with packageInvalid, finding the mini program by the workflow id', async () => {
    const fea = await feature(uid('loc3-'), 'Location 3', ['getLocation']);
    await hold(fea, 'active');
    const zip = packageWith('2.1.0', pageScript);
    const versionId = await upload('2.1.0', zip);
    const [v] = await rows<{ package_sha256: string }>('SELECT package_sha256 FROM versions WHERE id = :versionId', { versionId });
    const acts = createActivities({ sequelize: stack.sequelize, mailer: createMailer('smtp://127.0.0.1:9', 't <t@example.test>'), store: new PackageStore(stack.dataDir), publicUrl: stack.baseUrl });
    const env = new MockActivityEnvironment({ workflowExecution: { workflowId: releaseWorkflowId(versionId), runId: 'r1' } });
    const input = { packageSha256: v!.package_sha256, version: '2.1.0' };
    // Every feature granting getLocation held: it passes.
    await q(`UPDATE mini_program_features SET status = 'active' WHERE mini_program_id = :mpId`, { mpId });
    await expect(env.run(acts.validateStoredPackage, input)).resolves.toEqual({ pageCount: 1 });
    await q(`UPDATE mini_program_features SET status = 'revoked' WHERE mini_program_id = :mpId`, { mpId });
    const err = await env.run(acts.validateStoredPackage, input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe(FailureType.packageInvalid);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toContain('getLocation at pages/index/index.js:5');
  });
});
