import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createSequelize, dropDatabase, migrate } from '../db/index.js';
import { seedUsers } from '../db/seed.js';
import { startSmtpPeer } from '../lib/smtp-peer.js';
import { connectClient } from '../temporal/client.js';
import { findOrBuildTemporal, repoRoot } from '../temporal/binary.js';
import { startDevServer, waitForPort } from '../temporal/dev-server.js';

export const password = 'bench password 1';

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resident set size of a process, from /proc (Linux). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}
export const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

function child(script: string, env: Record<string, string>): ChildProcess {
  // BENCH_CPU_PROF_DIR=<dir>: each child writes a V8 CPU profile there when it exits (for finding where the time goes).
  const prof = process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
  return spawn(process.execPath, [...prof, '--import', 'tsx', path.join(repoRoot, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
}

/**
 * The real platform for one benchmark run: an in-memory Temporal dev server, a fresh database,
 * an SMTP peer, the worker and the API as child processes (so their CPU and memory are their own).
 */
export async function startPlatform() {
  const temporalPort = await freePort();
  const temporalProc = await startDevServer({
    binary: findOrBuildTemporal(), dataDir: mkdtempSync(path.join(os.tmpdir(), 'mpdp-bench-t-')), port: temporalPort, uiPort: 0, namespace: 'default', persistent: false, ui: false,
  });
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/mpdp_bench_${randomBytes(4).toString('hex')}`;
  await migrate(databaseUrl);
  const smtp = await startSmtpPeer();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mpdp-bench-'));
  const apiPort = await freePort();
  const env = {
    MPDP_MODE: 'test', DATABASE_URL: databaseUrl, TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`, TEMPORAL_TASK_QUEUE: 'bench',
    SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, DATA_DIR: dataDir, PORT: String(apiPort), REVIEW_REMINDER_MS: '0',
  };
  const worker = child('temporal/worker-main.ts', env);
  const api = child('api/server.ts', env);
  await waitForPort(apiPort, '127.0.0.1', 120_000);
  const sequelize = createSequelize(databaseUrl, { pool: 5 });
  const temporal = await connectClient(env.TEMPORAL_ADDRESS, 'default');
  const workspaceId = 'ws_bench';
  const users = [
    { id: 'usr_b_admin', email: 'admin@bench.test', name: 'Bench Admin', role: 'admin' as const },
    { id: 'usr_b_rev', email: 'reviewer@bench.test', name: 'Bench Reviewer', role: 'reviewer' as const },
    { id: 'usr_b_dev', email: 'developer@bench.test', name: 'Bench Developer', role: 'developer' as const },
  ];
  await seedUsers(sequelize, { workspaceId, workspaceName: 'Bench', code: 'BENCH', users, password });
  return {
    baseUrl: `http://127.0.0.1:${apiPort}`, env, workspaceId, users, sequelize, temporal, worker, api, smtp, dataDir,
    async stop() {
      for (const p of [api, worker]) p.kill('SIGTERM');
      await Promise.all([api, worker].map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)))));
      await temporal.connection.close();
      await sequelize.close();
      await smtp.close();
      temporalProc.kill('SIGTERM');
      await dropDatabase(databaseUrl);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A signed-in HTTP session (cookie + CSRF), like the console's. */
export async function session(baseUrl: string, email: string) {
  const res = await fetch(`${baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
  if (res.status !== 200) throw new Error(`login failed: ${res.status}`);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  const { csrfToken } = (await res.json()) as { csrfToken: string };
  const headers = { cookie, 'x-csrf-token': csrfToken };
  const s = {
    headers,
    /** The Server-Timing header of the last POST, as { name: ms }. */
    lastTiming: {} as Record<string, number>,
    async post(url: string, body?: unknown) {
      const r = await fetch(baseUrl + url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
      s.lastTiming = Object.fromEntries((r.headers.get('server-timing') ?? '').split(',').map((m) => /(\w+);dur=([\d.]+)/.exec(m)).filter((m) => !!m).map((m) => [m[1]!, Number(m[2])]));
      const json = (await r.json()) as any;
      if (r.status >= 300) throw new Error(`${url}: ${r.status} ${JSON.stringify(json)}`);
      return json;
    },
    async get(url: string) {
      const r = await fetch(baseUrl + url, { headers });
      return (await r.json()) as any;
    },
    async upload(url: string, zip: Buffer, version: string) {
      const form = new FormData();
      form.set('package', new Blob([new Uint8Array(zip)]), 'p.zip');
      form.set('version', version);
      const r = await fetch(baseUrl + url, { method: 'POST', headers, body: form });
      const json = (await r.json()) as any;
      if (r.status >= 300) throw new Error(`${url}: ${r.status} ${JSON.stringify(json)}`);
      return json;
    },
  };
  return s;
}
