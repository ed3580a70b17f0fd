import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { hashPassword } from '../../api/passwords.js';
import { Agent, startStack, testPassword, type Stack } from '../helpers/stack.js';

/**
 * The CLI as CI uses it: tokens (stdin, env, revoked, expired), --json documents, exit codes,
 * an upload that survives a dropped connection, preview QR codes, and `status --watch` until
 * a reviewer decides.
 */
const bin = fileURLToPath(new URL('../../cli/bin.mjs', import.meta.url));

let stack: Stack;
let dev: Agent;
let token: string;
let mpId: string;
let tmp: string;

interface Run {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** The real CLI in a child process, outside the repo, with its own config file and no inherited MPDP_* settings. */
function start(args: string[], env: Record<string, string> = {}, input?: string): Run {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPDP_')));
  const proc = spawn(process.execPath, [bin, ...args], {
    cwd: tmp, env: { ...inherited, MPDP_CONFIG: path.join(tmp, 'config', 'mpdp.json'), ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (input !== undefined) proc.stdin!.end(input);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  return { proc, stdout: () => stdout, stderr: () => stderr, exit };
}

const as = (t: string, server = stack.baseUrl) => ({ MPDP_SERVER: server, MPDP_TOKEN: t });

async function cli(args: string[], env: Record<string, string> = as(token), input?: string) {
  const run = start(args, env, input);
  const code = await run.exit;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Runs with --json and parses stdout, which must be exactly one JSON document. */
async function cliJson(args: string[], env: Record<string, string> = as(token), input?: string) {
  const res = await cli([...args, '--json'], env, input);
  let doc: any;
  try {
    doc = JSON.parse(res.stdout);
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${res.code}):\n${res.stdout}\n--- stderr:\n${res.stderr}`);
  }
  return { ...res, doc };
}

const mpUrl = (id = mpId) => `/api/v1/workspaces/${stack.workspaceId}/mini-programs/${id}`;
const target = (id = mpId) => ['--workspace', stack.workspaceId, '--mini-program', id];

async function newMiniProgram(name: string) {
  const mp = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name, category: 'shopping' });
  expect(mp.status).toBe(201);
  return mp.body.id as string;
}

function zipOf(version: string): string {
  const file = path.join(tmp, `pkg-${version}.zip`);
  writeFileSync(file, realisticPackage({ version }));
  return file;
}

async function newToken(name: string, expiresInDays?: number) {
  const res = await dev.post('/api/v1/me/tokens', { name, ...(expiresInDays ? { expiresInDays } : {}) });
  expect(res.status).toBe(201);
  return res.body as { id: string; token: string; prefix: string; expiresAt: string | null };
}

/**
 * A TCP proxy in front of the API. The first connection that carries an upload is forwarded
 * whole to the server, and cut the moment the server starts answering: the server did the
 * work, the client never hears about it. Everything else passes through.
 */
async function droppingProxy(upstreamPort: number) {
  let cut = 0;
  const connections: string[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    let first = true;
    let victim = false;
    client.on('data', (chunk) => {
      if (first) {
        first = false;
        const head = chunk.subarray(0, 200).toString('latin1');
        connections.push(head.split('\r\n')[0]!);
        victim = cut === 0 && /^POST \S+\/versions HTTP/.test(head);
        if (victim) cut += 1;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (victim) {
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, connections, cuts: () => cut, close: () => new Promise((r) => server.close(r)) };
}

beforeAll(async () => {
  stack = await startStack({ env: { ROLLOUT_SOAK_MS: '300', HEALTH_CHECK_INTERVAL_MS: '100' } });
  dev = await stack.agent('developer');
  token = (await newToken('ci')).token;
  mpId = await newMiniProgram('CI Mall');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mpdp-cli-ci-'));
});
afterAll(async () => {
  await stack?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('mpdp for CI: tokens, --json, exit codes', () => {
  it('--help lists the commands and the exit codes', async () => {
    const res = await cli(['--help']);
    expect(res.code).toBe(0);
    for (const c of ['login', 'upload', 'preview', 'submit', 'status']) expect(res.stdout).toContain(`  ${c} `);
    expect(res.stdout).toContain('Exit codes (for CI):');
    expect(res.stdout).toMatch(/^ {2}5 {2}the followed pipeline ended rejected, invalid, halted, aborted, withdrawn or superseded$/m);
    expect(res.stdout).toMatch(/^ {2}6 {2}network or server error/m);
  });

  it('login reads the token from stdin or MPDP_TOKEN, checks it, and saves it 0600; a bad one exits 2 and saves nothing', async () => {
    const file = path.join(tmp, 'config', 'mpdp.json');
    const bad = await cliJson(['login', '--server', stack.baseUrl], {}, 'mpdp_pat_not-a-token\n');
    expect(bad.code).toBe(2);
    expect(bad.doc.error).toMatchObject({ code: 'invalid_token', status: 401, exitCode: 2 });
    expect(() => statSync(file)).toThrow();

    const piped = await cliJson(['login', '--server', `${stack.baseUrl}/api/v1/`], {}, `${token}\n`);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.doc).toMatchObject({ server: stack.baseUrl, configPath: file, user: { email: stack.users.developer.email } });
    expect(piped.doc.workspaces.map((w: { id: string }) => w.id)).toContain(stack.workspaceId);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ server: stack.baseUrl, token });
    expect(piped.stderr).toContain(`Saved to ${file}`);

    // From the environment; the saved token is then used with no flags at all.
    const second = await newToken('env');
    const env = await cli(['login'], { MPDP_SERVER: stack.baseUrl, MPDP_TOKEN: second.token });
    expect(env.code, env.stderr).toBe(0);
    expect(env.stdout).toContain('as Dan Developer');
    expect(JSON.parse(readFileSync(file, 'utf8')).token).toBe(second.token);
    const who = await cliJson(['whoami'], {});
    expect(who.code).toBe(0);
    expect(who.doc.user.email).toBe(stack.users.developer.email);
    const tokens = await dev.get('/api/v1/me/tokens');
    expect(tokens.body.items.find((t: { id: string }) => t.id === second.id)).toMatchObject({ prefix: second.prefix, status: 'active', lastUsedAt: expect.any(String) });
    expect(second.token.startsWith(second.prefix)).toBe(true);
  });

  it('a revoked token and an expired token are refused with exit code 2', async () => {
    const revoked = await newToken('revoked soon');
    expect((await cli(['whoami'], as(revoked.token))).code).toBe(0);
    expect((await dev.request('DELETE', `/api/v1/me/tokens/${revoked.id}`)).status).toBe(204);
    const r = await cliJson(['whoami'], as(revoked.token));
    expect(r.code).toBe(2);
    expect(r.doc.error).toMatchObject({ code: 'invalid_token', exitCode: 2 });
    expect(r.stderr).toContain('may be revoked or expired');

    // Bad token requests change nothing.
    const before = (await dev.get('/api/v1/me/tokens')).body.items.length;
    for (const body of [{ name: '  ' }, { name: 'x', expiresInDays: 0 }, { name: 'x', expiresInDays: 1000 }, { name: 'x', expiresInDays: 1.5 }]) {
      const res = await dev.post('/api/v1/me/tokens', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect((await dev.get('/api/v1/me/tokens')).body.items.length).toBe(before);

    const expiring = await newToken('expires', 30);
    expect(new Date(expiring.expiresAt!).getTime() - Date.now()).toBeGreaterThan(29 * 86_400_000);
    const ok = await cliJson(['list', '--workspace', stack.workspaceId], as(expiring.token));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.doc.items.map((m: { id: string }) => m.id)).toContain(mpId);
    // Its expiry passes (moved into the past: the server's clock decides).
    await stack.sequelize.query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = :id", { replacements: { id: expiring.id } });
    const e = await cliJson(['list', '--workspace', stack.workspaceId], as(expiring.token));
    expect(e.code).toBe(2);
    expect(e.doc.error.code).toBe('invalid_token');
    const listed = (await dev.get('/api/v1/me/tokens')).body.items;
    expect(listed.find((t: { id: string }) => t.id === expiring.id).status).toBe('expired');
    expect(listed.find((t: { id: string }) => t.id === revoked.id).status).toBe('revoked');
    // Not signed in at all is an authentication error too.
    const none = await cliJson(['whoami'], { MPDP_CONFIG: path.join(tmp, 'nowhere.json') });
    expect(none.code).toBe(2);
    expect(none.doc.error.code).toBe('not_signed_in');
  });

  it('usage errors exit 1, unknown things 3, and an unreachable server 6 — each with one JSON document', async () => {
    const usage = await cliJson(['upload', '--workspace', stack.workspaceId]);
    expect(usage.code).toBe(1);
    expect(usage.doc.error).toMatchObject({ code: 'usage', exitCode: 1 });
    const unknownCommand = await cliJson(['deploy']);
    expect(unknownCommand.code).toBe(1);
    expect(unknownCommand.stderr).toContain('unknown command "deploy"');

    const missingMp = await cliJson(['upload', zipOf('9.9.9'), ...target('mp_does_not_exist'), '--version', '9.9.9']);
    expect(missingMp.code).toBe(3);
    expect(missingMp.doc.error).toMatchObject({ code: 'not_found', status: 404, exitCode: 3 });
    const missingVersion = await cliJson(['status', ...target(), '--version', '7.7.7']);
    expect(missingVersion.code).toBe(3);
    const missingId = await cliJson(['status', ...target(), '--version-id', 'ver_nope']);
    expect(missingId.code).toBe(3);
    expect(missingId.doc.error.status).toBe(404);

    // A port nobody listens on: retried with backoff, then exit 6.
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const down = await cliJson(['whoami'], as(token, `http://127.0.0.1:${port}`));
    expect(down.code).toBe(6);
    expect(down.doc.error).toMatchObject({ code: 'network', exitCode: 6 });
    expect(down.stderr.match(/trying again in/g)?.length).toBe(4);
  });

  it('upload survives a connection dropped after the server took the package: retried with the same key, one version', async () => {
    const proxy = await droppingProxy(Number(new URL(stack.baseUrl).port));
    try {
      const zip = zipOf('2.0.0');
      const sha256 = createHash('sha256').update(readFileSync(zip)).digest('hex');
      const up = await cliJson(['upload', zip, ...target(), '--version', '2.0.0', '--notes', 'through a flaky link'], as(token, proxy.url));
      expect(up.code, up.stderr).toBe(0);
      expect(proxy.cuts()).toBe(1);
      expect(proxy.connections.filter((l) => l.startsWith('POST ')).length).toBe(2);
      expect(up.stderr).toMatch(/dropped|socket hang up|ECONNRESET/);
      expect(up.stderr).toContain('trying again in');
      expect(up.stderr).toMatch(/Uploading \(try 2\)\s+100%/);
      expect(up.doc).toMatchObject({ sha256, attempts: 2, bytes: readFileSync(zip).length, version: { version: '2.0.0', packageSha256: sha256, pageCount: 46 } });
      expect(up.doc.idempotencyKey).toMatch(/^cli-[0-9a-f]{32}$/);
      expect(up.stderr).toContain(`sha256 ${sha256}`);

      // The first try's version is the one: the server made exactly one.
      const rows = await stack.sequelize.query<{ id: string }>("SELECT id FROM versions WHERE mini_program_id = :mpId AND version = '2.0.0'", { replacements: { mpId }, type: QueryTypes.SELECT });
      expect(rows.map((r) => r.id)).toEqual([up.doc.version.id]);
      const detail = await dev.get(mpUrl());
      expect(detail.body.versions.filter((v: { version: string }) => v.version === '2.0.0')).toHaveLength(1);
      expect(detail.body.miniProgram.versionCount).toBe(1);

      // The same key again (a re-run CI job) is the same version, not "version exists".
      const again = await cliJson(['upload', zip, ...target(), '--version', '2.0.0', '--idempotency-key', up.doc.idempotencyKey]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.doc.version.id).toBe(up.doc.version.id);
      // A fresh key for an existing version number is a conflict.
      const dup = await cliJson(['upload', zip, ...target(), '--version', '2.0.0']);
      expect(dup.code).toBe(4);
      expect(dup.doc.error).toMatchObject({ code: 'version_exists', status: 409, exitCode: 4 });
    } finally {
      await proxy.close();
    }
  });

  it('preview prints a QR code and the link; --json gives the link', async () => {
    const res = await cli(['preview', ...target(), '--version', '2.0.0']);
    expect(res.code, res.stderr).toBe(0);
    // The small terminal QR code: half-block characters, one line per two modules.
    const qrLines = res.stdout.split('\n').filter((l) => /[█▀▄]/.test(l));
    expect(qrLines.length).toBeGreaterThan(10);
    const link = /Preview link: (\S+)/.exec(res.stdout)?.[1];
    expect(link).toMatch(/\/preview\/[\w.-]+$/);
    expect(res.stdout).toContain('Expires: ');

    const json = await cliJson(['preview', ...target(), '--version', '2.0.0']);
    expect(json.code).toBe(0);
    expect(json.doc.url).toMatch(/\/preview\/[\w.-]+$/);
    expect(json.doc.qrPng).toMatch(new RegExp(`^${stack.baseUrl}/api/v1/preview/.+/qr\\.png$`));
    const png = await fetch(json.doc.qrPng);
    expect(png.headers.get('content-type')).toBe('image/png');
    // The link opens for the developer.
    const token = new URL(json.doc.url).pathname.split('/').pop()!;
    expect((await dev.get(`/api/v1/preview/${token}`)).body.version.version).toBe('2.0.0');
  });
});

describe('mpdp for CI: submit and status --watch through the release pipeline', () => {
  let rev: Agent;
  beforeAll(async () => {
    rev = await stack.agent('reviewer');
  });

  it('submitting twice exits 4; status --watch --json exits 5 when a reviewer rejects', async () => {
    const mp = await newMiniProgram('Watch Mall');
    const up = await cliJson(['upload', zipOf('1.0.0'), ...target(mp), '--version', '1.0.0']);
    expect(up.code, up.stderr).toBe(0);
    const versionId = up.doc.version.id as string;

    const first = await cliJson(['submit', ...target(mp), '--version-id', versionId]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.doc.version.id).toBe(versionId);
    expect(first.doc.pipeline.status).toMatch(/^(validating|in_review)$/);
    const twice = await cliJson(['submit', ...target(mp), '--version-id', versionId]);
    expect(twice.code).toBe(4);
    expect(twice.doc.error).toMatchObject({ status: 409, exitCode: 4 });

    const watch = start(['status', ...target(mp), '--version', '1.0.0', '--watch', '--json'], as(token));
    await eventually(() => watch.stderr().includes('review_requested'), { what: 'the watcher to show the review request', timeoutMs: 30_000 });
    expect(watch.stdout()).toBe('');
    const rejected = await rev.post(`${mpUrl(mp)}/versions/${versionId}/reject`, { reasonCode: 'crash_or_bug', comment: 'Crashes on the cart page' });
    expect(rejected.status, JSON.stringify(rejected.body)).toBe(200);
    expect(await watch.exit).toBe(5);
    const doc = JSON.parse(watch.stdout());
    expect(doc.pipeline.status).toBe('rejected');
    expect(doc.version.id).toBe(versionId);
    expect(watch.stderr()).toMatch(/rejected\s+rejected by Rita Reviewer: "Crashes on the cart page"/);
    expect(watch.stderr()).toMatch(/→ .*[Rr]eject/);
  });

  it('upload --submit --hotfix --watch follows approval and the staged rollout to released (exit 0)', async () => {
    const mp = await newMiniProgram('Hotfix Mall');
    const follow = start(['upload', zipOf('1.0.1'), ...target(mp), '--version', '1.0.1', '--submit', '--hotfix', '--watch', '--json'], as(token));
    await eventually(() => /in_review|Waiting for a reviewer/.test(follow.stderr()) && /ver_\w+/.exec(follow.stderr()), { what: 'the version in review', timeoutMs: 30_000 });
    const versionId = /as (ver_\w+)/.exec(follow.stderr())![1]!;
    const url = `${mpUrl(mp)}/versions/${versionId}`;
    await eventually(async () => (await dev.get(url)).body.pipeline?.status === 'in_review', { what: 'in review', timeoutMs: 30_000 });
    expect((await rev.post(`${url}/approve`, { comment: 'Ship it' })).status).toBe(200);
    const released = await dev.post(`${url}/release`);
    expect(released.status, JSON.stringify(released.body)).toBe(200);
    expect(await follow.exit).toBe(0);
    const doc = JSON.parse(follow.stdout());
    expect(doc.version.id).toBe(versionId);
    expect(doc.attempts).toBe(1);
    expect(doc.submission.pipeline.status).toBe('released');
    expect(doc.submission.pipeline.hotfix).toBe(true);
    expect(follow.stderr()).toContain('approved by Rita Reviewer: "Ship it"');
    // The rollout's stages went by on the watcher's screen.
    expect(follow.stderr()).toMatch(/rollout: stage 1\/5: 1% of users/);
    expect(follow.stderr()).toContain('→ Released');

    const status = await cli(['status', ...target(mp), '--version-id', versionId]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^Status: released \(hotfix\)$/m);
    expect(status.stdout).toContain('Timeline:');
  });
});

describe('an authorized outside developer (ISV) in CI', () => {
  it('lists the mini programs granted to it, uploads and submits on one, and is refused the moment the grant ends', async () => {
    // An ISV account and its developer workspace.
    const isvId = `usr_cli_isv_${Date.now().toString(36)}`;
    const email = `${isvId}@isv.example.test`;
    await stack.sequelize.query('INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)', { replacements: { id: isvId, email, name: 'CI Studio Bot', hash: await hashPassword(testPassword) } });
    const isv = new Agent(stack.baseUrl);
    await isv.login(email);
    const devWs = await isv.post('/api/v1/developer-workspaces', { name: 'CI Studio' });
    expect(devWs.status).toBe(201);
    const granted = await newMiniProgram('Granted to CI Studio');
    const other = await newMiniProgram('Not granted');
    // The grant as the authorization workflow's projection writes it (the workflow is tested on its own).
    const authId = `auth_cli_${Date.now().toString(36)}`;
    await stack.sequelize.query(
      `INSERT INTO authorizations (id, developer_workspace_id, merchant_workspace_id, status, requested_mini_program_ids, requested_scope, mini_program_ids, scope,
         requested_by, requested_at, decided_at, updated_at, seq)
       VALUES (:id, :devWs, :merchant, 'active', ARRAY[:mp]::text[], ARRAY['view','upload','submit']::text[], ARRAY[:mp]::text[], ARRAY['view','upload','submit']::text[], :by, now(), now(), now(), 1)`,
      { replacements: { id: authId, devWs: devWs.body.id, merchant: stack.workspaceId, mp: granted, by: isvId } },
    );
    const isvToken = (await isv.post('/api/v1/me/tokens', { name: 'ci' })).body.token as string;

    const listed = await cliJson(['list', '--authorized'], as(isvToken));
    expect(listed.code).toBe(0);
    expect(listed.doc.items.map((g: { miniProgram: { id: string }; merchantWorkspace: { id: string } }) => [g.miniProgram.id, g.merchantWorkspace.id])).toEqual([[granted, stack.workspaceId]]);
    const up = await cliJson(['upload', zipOf('4.0.0'), ...target(granted), '--version', '4.0.0', '--submit'], as(isvToken));
    expect(up.code, up.stderr).toBe(0);
    const versionId = (up.doc.version?.id ?? up.doc.id) as string;
    expect(versionId).toBeTruthy();
    await eventually(async () => (await dev.get(`${mpUrl(granted)}/versions/${versionId}`)).body.version.status === 'in_review', { what: 'the ISV submission in review' });
    // Not granted: unknown to it (exit 3).
    expect((await cliJson(['upload', zipOf('4.0.1'), ...target(other), '--version', '4.0.1'], as(isvToken))).code).toBe(3);
    // The grant ends: the very next command is refused with 403 (authorization_ended).
    await stack.sequelize.query(`UPDATE authorizations SET status = 'revoked', updated_at = now() WHERE id = :id`, { replacements: { id: authId } });
    const refused = await cliJson(['status', ...target(granted), '--version-id', versionId], as(isvToken));
    expect(refused.code).not.toBe(0);
    expect(refused.doc.error.status).toBe(403);
    expect(refused.doc.error.code).toBe('authorization_ended');
    expect((await cliJson(['list', '--authorized'], as(isvToken))).doc.items).toEqual([]);
  });
});

