import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProgressBar } from '../../cli/progress.js';
import { missingPagePackage, realisticPackageFiles } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, type Agent, type Stack } from '../helpers/stack.js';

const bin = fileURLToPath(new URL('../../cli/bin.mjs', import.meta.url));

let stack: Stack;
let dev: Agent;
let token: string;
let mpId: string;
let tmp: string;
let pkgDir: string;

interface Run {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** The real CLI in a child process, outside the repo, with its own config file and no inherited MPDP_* settings. */
function start(args: string[], env: Record<string, string> = {}): Run {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MPDP_')));
  const proc = spawn(process.execPath, [bin, ...args], {
    cwd: tmp, env: { ...inherited, MPDP_CONFIG: path.join(tmp, 'config', 'mpdp.json'), ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  return { proc, stdout: () => stdout, stderr: () => stderr, exit };
}

async function cli(args: string[], env: Record<string, string> = { MPDP_SERVER: stack.baseUrl, MPDP_TOKEN: token }) {
  const run = start(args, env);
  const code = await run.exit;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

beforeAll(async () => {
  stack = await startStack();
  dev = await stack.agent('developer');
  const created = await dev.post('/api/v1/me/tokens', { name: 'cli test' });
  expect(created.status).toBe(201);
  token = created.body.token;
  const mp = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'CLI Mall', category: 'shopping' });
  expect(mp.status).toBe(201);
  mpId = mp.body.id;

  tmp = mkdtempSync(path.join(os.tmpdir(), 'mpdp-cli-'));
  pkgDir = path.join(tmp, 'mall');
  for (const [name, content] of Object.entries(realisticPackageFiles({ version: '1.0.0' }))) {
    const file = path.join(pkgDir, name);
    if (name.endsWith('/')) mkdirSync(file, { recursive: true });
    else {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
    }
  }
  // What the CLI must leave out of the zip.
  mkdirSync(path.join(pkgDir, 'node_modules', 'left-pad'), { recursive: true });
  writeFileSync(path.join(pkgDir, 'node_modules', 'left-pad', 'index.js'), 'module.exports = 1;\n');
  mkdirSync(path.join(pkgDir, '.git'), { recursive: true });
  writeFileSync(path.join(pkgDir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  writeFileSync(path.join(pkgDir, '.env'), 'SECRET=1\n');
});
afterAll(async () => {
  await stack?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const target = () => ['--workspace', stack.workspaceId, '--mini-program', mpId];

describe('mpdp CLI against the real stack', () => {
  it('login checks the token and saves it (0600); whoami then works from the saved config', async () => {
    const login = await cli(['login', '--server', `${stack.baseUrl}/`, '--token', token], {});
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain(`as Dan Developer <${stack.users.developer.email}>`);
    const file = path.join(tmp, 'config', 'mpdp.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ server: stack.baseUrl, token });

    const who = await cli(['whoami'], {});
    expect(who.code, who.stderr).toBe(0);
    expect(who.stdout).toContain(stack.users.developer.email);
    expect(who.stdout).toMatch(new RegExp(`${stack.workspaceId}\\s+Test \\S+\\s+\\w+\\s+developer`));
  });

  it('whoami with a wrong token exits 2 (authentication) with the server message', async () => {
    const res = await cli(['whoami'], { MPDP_SERVER: stack.baseUrl, MPDP_TOKEN: 'mpdp_pat_wrong' });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('The API token is unknown, revoked or expired (invalid_token)');
    // A wrong token on the command line beats a good one in the environment.
    const flag = await cli(['whoami', '--token', 'nope'], { MPDP_SERVER: stack.baseUrl, MPDP_TOKEN: token });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('invalid_token');
  });

  it('refuses missing flags and unknown options with exit code 1', async () => {
    const missing = await cli(['upload', pkgDir, '--workspace', stack.workspaceId]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('missing --mini-program <id>, --version <semver>');
    const unknown = await cli(['status', '--verbose']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("Unknown option '--verbose'");
    const badVersion = await cli(['upload', pkgDir, ...target(), '--version', 'one']);
    expect(badVersion.code).toBe(1);
    const help = await cli(['upload', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: mpdp upload <dir-or-zip>');
  });

  let versionId: string;

  it('uploads a directory with progress, submits it, and the version is in the API', async () => {
    const res = await cli(['upload', pkgDir, ...target(), '--version', '1.0.0', '--notes', 'From the CLI', '--submit']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/Packed \d+ files from /);
    const progress = res.stderr.split('\n').filter((l) => l.startsWith('Uploading'));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)).toMatch(/^Uploading\s+100%\s+[\d.]+\/[\d.]+ kB$/);
    const id = /Uploaded 1\.0\.0 as (ver_\S+) \(46 pages/.exec(res.stdout)?.[1];
    expect(id, res.stdout).toBeTruthy();
    versionId = id!;
    expect(res.stdout).toMatch(/Status: (validating|in_review)\nWaiting for: \S/);

    const v = await dev.get(`/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mpId}/versions/${versionId}`);
    expect(v.status).toBe(200);
    expect(v.body.version).toMatchObject({ version: '1.0.0', pageCount: 46, notes: 'From the CLI' });
    expect(['validating', 'in_review']).toContain(v.body.version.status);

    // node_modules, .git and dotfiles stayed out of the zip.
    const zip = await fetch(`${stack.baseUrl}/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mpId}/versions/${versionId}/package`, { headers: { authorization: `Bearer ${token}` } });
    const bytes = Buffer.from(await zip.arrayBuffer());
    expect(bytes.includes('app.json')).toBe(true);
    for (const name of ['node_modules/', '.git/', '.env']) expect(bytes.includes(name), name).toBe(false);
  });

  it('list shows the mini program; status prints the timeline', async () => {
    const list = await cli(['list', '--workspace', stack.workspaceId, '--q', 'cli']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${mpId}\\s+CLI Mall\\s+\\w+`));
    const status = await cli(['status', ...target(), '--version-id', versionId]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`Version 1.0.0 (${versionId})`);
    expect(status.stdout).toMatch(/validating\s+submitted by Dan Developer/);
  });

  it('status --watch prints each timeline entry until the version is released', async () => {
    const follow = start(['status', ...target(), '--version-id', versionId, '--watch'], { MPDP_SERVER: stack.baseUrl, MPDP_TOKEN: token });
    await eventually(() => follow.stdout().includes('review_requested'), { what: 'the CLI to show the review request', timeoutMs: 30_000 });
    const versionUrl = `/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mpId}/versions/${versionId}`;
    const rev = await stack.agent('reviewer');
    expect((await rev.post(`${versionUrl}/approve`, { comment: 'Looks good' })).status).toBe(200);
    // Everyone at once: a one-stage plan with no soak.
    expect((await dev.post(`${versionUrl}/release`, { plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] })).status).toBe(200);
    expect(await follow.exit).toBe(0);
    const lines = follow.stdout().split('\n').filter((l) => /^\d{4}-/.test(l));
    const statuses = lines.map((l) => l.split(/\s{2,}/)[1]);
    expect(statuses.slice(0, 3)).toEqual(['validating', 'in_review', 'approved']);
    expect(statuses).toContain('rolling_out');
    expect(statuses.at(-1)).toBe('released');
    expect(follow.stdout()).toContain('approved by Rita Reviewer: "Looks good"');
    expect(follow.stdout()).toContain('rollout: stage 1/1: 100% of users');
    expect(follow.stdout()).toMatch(/→ Released/);
  });

  it('a package with a missing page makes the CLI exit non-zero with the server code', async () => {
    const zip = path.join(tmp, 'broken.zip');
    writeFileSync(zip, missingPagePackage());
    const res = await cli(['upload', zip, ...target(), '--version', '1.0.1', '--submit']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('package_page_missing');
    expect(res.stderr).toContain('pages/ghost/ghost');
    expect(res.stdout).not.toContain('Uploaded');
  });
});

describe('the progress bar', () => {
  it('redraws one line on a terminal and writes a few lines elsewhere', () => {
    let tty = '';
    const bar = new ProgressBar(2_300_000, { isTTY: true, write: (s: string) => (tty += s) });
    for (let sent = 0; sent <= 2_300_000; sent += 65_536) bar.update(sent);
    bar.update(1_196_000);
    expect(tty).toContain('\rUploading  [██████████░░░░░░░░░░]   52%  1.2/2.3 MB\x1b[K');
    bar.update(2_300_000);
    bar.done();
    expect(tty.endsWith('[████████████████████]  100%  2.3/2.3 MB\x1b[K\n')).toBe(true);

    let log = '';
    const plain = new ProgressBar(2_300_000, { isTTY: false, write: (s: string) => (log += s) });
    for (let sent = 0; sent < 2_300_000; sent += 65_536) plain.update(sent);
    plain.update(2_300_000);
    plain.done();
    expect(log.trim().split('\n').map((l) => l.split(/\s+/)[1])).toEqual(['0%', '25%', '51%', '76%', '100%']);
  });
});
