import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createSequelize, migrate } from '../db/index.js';
import { seedDemo, demoMiniProgramId, demoOperator, demoUsers, demoWorkspaceId } from '../db/seed.js';
import { demoAnalyticsDays, seedDemoAnalytics } from '../lib/analytics/demo-data.js';
import { loadConfig, releaseConfigOf } from '../lib/config.js';
import { PackageStore } from '../lib/storage.js';
import { writeCaughtMail } from '../lib/mail-catcher.js';
import { startSmtpPeer } from '../lib/smtp-peer.js';
import { connectClient } from '../temporal/client.js';
import { findOrBuildTemporal, repoRoot } from '../temporal/binary.js';
import { startDevServer, waitForPort } from '../temporal/dev-server.js';
import { writeSamplePackage } from '../test/fixtures/packages.js';

/**
 * Starts the whole platform on one machine: the Temporal dev server (SQLite file), a mail
 * catcher, the worker and the API with the console, then the demo data. Ctrl-C stops it all.
 */
const config = loadConfig();
const children: { name: string; proc: ChildProcess }[] = [];
let stopping = false;

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  console.error('\n[mpdp] stopping…');
  // API and worker first (they drain), the Temporal server last.
  for (const { proc } of [...children].reverse()) {
    if (proc.exitCode === null) proc.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      if (proc.exitCode !== null) return resolve();
      const t = setTimeout(() => {
        proc.kill('SIGKILL');
        resolve();
      }, 10_000);
      proc.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

function run(name: string, script: string, env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, script)], { stdio: 'inherit', env: { ...process.env, ...env } });
  proc.once('exit', (code) => {
    if (!stopping) {
      console.error(`[mpdp] ${name} exited with code ${code}; stopping the platform`);
      void stop(1);
    }
  });
  children.push({ name, proc });
  return proc;
}

try {
  await startAll();
} catch (err) {
  console.error('[mpdp] could not start:', err);
  await stop(1);
}

/** Everything in order; any failure stops what already started. */
async function startAll() {
  mkdirSync(config.dataDir, { recursive: true });
  await migrate(config.databaseUrl);

  let temporalAddress = config.temporal.address;
  if (!temporalAddress) {
    const binary = findOrBuildTemporal({ cli: config.temporal.cli });
    const proc = await startDevServer({ binary, dataDir: config.dataDir, port: config.temporal.port, uiPort: config.temporal.uiPort, namespace: config.temporal.namespace });
    children.push({ name: 'temporal', proc });
    temporalAddress = `127.0.0.1:${config.temporal.port}`;
  }

  // A mail catcher when SMTP_URL is left at its default: every mail lands in data/mail/*.eml.
  if (!process.env.SMTP_URL) {
    const mailDir = path.join(config.dataDir, 'mail');
    mkdirSync(mailDir, { recursive: true });
    const port = Number(new URL(config.smtpUrl).port || 25);
    await startSmtpPeer({
      port,
      onMessage: (m) => {
        const file = writeCaughtMail(mailDir, m);
        console.error(`[mail] to ${m.to.join(', ')}: ${m.subject}  (${path.relative(process.cwd(), file)})`);
      },
    });
  }

  const env = { TEMPORAL_ADDRESS: temporalAddress };
  run('worker', 'temporal/worker-main.ts', env);
  run('api', 'api/server.ts', env);
  await waitForPort(config.port, config.host === '0.0.0.0' ? '127.0.0.1' : config.host);

  const samplePath = path.join(config.dataDir, 'sample-package.zip');
  if (!existsSync(samplePath)) writeSamplePackage(samplePath);
  const password = config.demoPassword ?? 'mpdp-demo-2026';
  if (config.demoData) {
    const sequelize = createSequelize(config.databaseUrl, { pool: 2 });
    const temporal = await connectClient(temporalAddress, config.temporal.namespace);
    await seedDemo({
      sequelize, temporal, taskQueue: config.temporal.taskQueue, password, reviewReminderMs: config.release.reviewReminderMs,
      store: new PackageStore(config.dataDir), release: releaseConfigOf(config),
    });
    // Two weeks of user behaviour for the demo mini program's dashboards (skipped once it has some).
    const demoEvents = await seedDemoAnalytics({
      databaseUrl: config.databaseUrl, settings: config.analytics, workspaceId: demoWorkspaceId, miniProgramId: demoMiniProgramId, versionIds: ['ver_demo_mall_100', 'ver_demo_mall_110'],
    });
    if (demoEvents) console.log(`[platform] demo analytics: ${demoEvents.toLocaleString('en')} events over ${demoAnalyticsDays} days for ${demoMiniProgramId}`);
    await sequelize.close();
    await temporal.connection.close();
  }

  const line = '─'.repeat(64);
  console.log(`\n${line}\n  mpdp is running\n\n  Console       ${config.publicUrl}\n  API docs      ${config.publicUrl}/api/docs\n  Temporal UI   ${config.temporal.address ? '(external Temporal)' : `http://127.0.0.1:${config.temporal.uiPort}`}\n  Mail          ${process.env.SMTP_URL ? config.smtpUrl : `${path.join(config.dataDir, 'mail')}/*.eml  (console: ${config.publicUrl}/dev/mail)`}`);
  if (config.demoData) {
    console.log(`\n  Demo logins (password: ${password})`);
    for (const u of demoUsers) console.log(`    ${u.role.padEnd(10)} ${u.email}`);
    console.log(`    ${'operator'.padEnd(10)} ${demoOperator.email}  (platform operator: account applications)`);
  }
  console.log(`\n  Sample package ${config.publicUrl}/api/v1/sample-package\n  Stop with Ctrl-C; data stays in ${config.dataDir}\n${line}\n`);
}
