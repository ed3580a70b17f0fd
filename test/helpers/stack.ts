import { serve, type ServerType } from '@hono/node-server';
import { spawn, type ChildProcess } from 'node:child_process';
import pg from 'pg';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { createApp } from '../../api/app.js';
import { ChangeHub } from '../../api/events.js';
import { createSequelize } from '../../db/index.js';
import { seedUsers } from '../../db/seed.js';
import { loadConfig } from '../../lib/config.js';
import type { WorkspaceRole } from '../../lib/permissions.js';
import { writeCaughtMail } from '../../lib/mail-catcher.js';
import { startSmtpPeer, type ReceivedMail } from '../../lib/smtp-peer.js';
import { PackageStore } from '../../lib/storage.js';
import { connectClient } from '../../temporal/client.js';
import { repoRoot } from '../../temporal/binary.js';
import { eventually } from './eventually.js';
import { uid } from './workflow-env.js';

export const testPassword = 'correct horse battery';

/** A signed-in HTTP client: keeps the session cookie and sends the CSRF token on writes. */
export class Agent {
  cookie = '';
  csrf = '';
  constructor(readonly baseUrl: string) {}

  async login(email: string, password = testPassword) {
    const res = await this.request('POST', '/api/v1/auth/login', { email, password });
    if (res.status !== 200) throw new Error(`login ${email} failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res;
  }

  async request(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
    const h: Record<string, string> = { ...headers };
    if (this.cookie) h.cookie = this.cookie;
    if (this.csrf && method !== 'GET') h['x-csrf-token'] = this.csrf;
    let payload: BodyInit | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      h['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(this.baseUrl + url, { method, headers: h, body: payload });
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) this.cookie = setCookie.split(';')[0] ?? '';
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch { /* not JSON */ }
    if (parsed && typeof parsed === 'object' && 'csrfToken' in parsed && parsed.csrfToken) this.csrf = parsed.csrfToken;
    return { status: res.status, body: parsed, headers: res.headers };
  }

  get = (url: string) => this.request('GET', url);
  post = (url: string, body?: unknown, headers?: Record<string, string>) => this.request('POST', url, body, headers);

  upload(url: string, zip: Buffer, version: string, notes = '') {
    const form = new FormData();
    form.set('package', new Blob([new Uint8Array(zip)], { type: 'application/zip' }), 'package.zip');
    form.set('version', version);
    form.set('notes', notes);
    return this.request('POST', url, form);
  }
}

export interface Stack {
  baseUrl: string;
  /** The Hono app itself (its route list feeds the permission-matrix test). */
  app: ReturnType<typeof createApp>['app'];
  /** The API's analytics ingest buffer (flush() writes what collect accepted). */
  ingest: ReturnType<typeof createApp>['ingest'];
  /** The API's pg pool (lib/analytics/daily-rollups.ts refreshDailyRollups takes it). */
  pool: pg.Pool;
  workspaceId: string;
  users: Record<WorkspaceRole, { id: string; email: string; name: string }>;
  mails: ReceivedMail[];
  dataDir: string;
  sequelize: ReturnType<typeof createSequelize>;
  worker: { proc: ChildProcess; kill(signal?: NodeJS.Signals): Promise<void>; start(): Promise<void> };
  agent(role: WorkspaceRole): Promise<Agent>;
  waitForMail(o: { to?: string; subject?: string | RegExp; count?: number }): Promise<ReceivedMail[]>;
  stop(): Promise<void>;
}

/**
 * The real stack for one test file: an SMTP peer, a worker child process on its own task queue,
 * the API in this process on a free port, against the run's Temporal server and database.
 */
export async function startStack(o: { env?: Record<string, string>; web?: boolean; devMailbox?: boolean } = {}): Promise<Stack> {
  // devMailbox: every received mail is also written to <dataDir>/mail, as the dev mail catcher does.
  const smtp = await startSmtpPeer(o.devMailbox ? { onMessage: (m) => writeCaughtMail(path.join(dataDir, 'mail'), m) } : {});
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mpdp-test-'));
  // The server listens first (on a free port), so PUBLIC_URL, and every link the API hands out
  // (preview links, the tracker's collect URL), carries the real address; the app is plugged in below.
  let handler: (...args: Parameters<ReturnType<typeof createApp>['app']['fetch']>) => Response | Promise<Response> = () => new Response('starting', { status: 503 });
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: (...args) => handler(...args), hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const baseUrl = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    MPDP_MODE: 'test',
    DATABASE_URL: inject('databaseUrl'),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_TASK_QUEUE: uid('it-'),
    SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
    DATA_DIR: dataDir,
    REVIEW_REMINDER_MS: '0',
    PORT: String(port),
    // Dashboards' daily rollups follow a flush within a second (30 s by default).
    ANALYTICS_ROLLUP_INTERVAL_MS: '1000',
    ...o.env,
  };
  const config = loadConfig(env);
  const sequelize = createSequelize(config.databaseUrl, { pool: 10 });
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 5 });
  const temporal = await connectClient(config.temporal.address!, config.temporal.namespace);
  const hub = new ChangeHub(config.databaseUrl);
  await hub.start();

  let proc!: ChildProcess;
  const worker = {
    get proc() {
      return proc;
    },
    async start() {
      proc = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'temporal/worker-main.ts')], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        let err = '';
        proc.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('polling task queue')) resolve();
        });
        proc.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${err}`)));
      });
      proc.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
    },
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill(signal);
      await exited;
    },
  };
  await worker.start();

  const webRoot = o.web ? fileURLToPath(new URL('../../web/build', import.meta.url)) : undefined;
  const { app, ingest } = createApp({ config, sequelize, pool, temporal, store: new PackageStore(dataDir), hub, webRoot });
  handler = app.fetch;

  const workspaceId = uid('ws_');
  const tag = uid();
  const users = {
    admin: { id: `usr_a_${tag}`, email: `admin-${tag}@example.test`, name: 'Alice Admin', role: 'admin' as const },
    reviewer: { id: `usr_r_${tag}`, email: `reviewer-${tag}@example.test`, name: 'Rita Reviewer', role: 'reviewer' as const },
    developer: { id: `usr_d_${tag}`, email: `developer-${tag}@example.test`, name: 'Dan Developer', role: 'developer' as const },
  };
  await seedUsers(sequelize, { workspaceId, workspaceName: `Test ${tag}`, code: tag.toUpperCase(), users: Object.values(users), password: testPassword });

  return {
    baseUrl, app, ingest, pool, workspaceId, users, mails: smtp.messages, dataDir, sequelize, worker,
    async agent(role) {
      const a = new Agent(baseUrl);
      await a.login(users[role].email);
      return a;
    },
    waitForMail({ to, subject, count = 1 }) {
      const match = (m: ReceivedMail) => (!to || m.to.includes(to)) && (!subject || (typeof subject === 'string' ? m.subject.includes(subject) : subject.test(m.subject)));
      return eventually(() => {
        const found = smtp.messages.filter(match);
        return found.length >= count ? found : null;
      }, { what: `mail to ${to ?? 'anyone'} about ${String(subject ?? 'anything')}`, timeoutMs: 30_000 });
    },
    async stop() {
      await worker.kill('SIGTERM');
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise((r) => server.close(r));
      await ingest.close();
      await hub.close();
      await sequelize.close();
      await pool.end();
      await temporal.connection.close();
      await smtp.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
