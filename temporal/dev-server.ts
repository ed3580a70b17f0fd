import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { customSearchAttributes } from '../workflows/contracts/search-attributes.js';

export interface DevServerOptions {
  binary: string;
  dataDir: string;
  port: number;
  uiPort: number;
  namespace: string;
  /** Keep the history in a SQLite file (durable across restarts); without it, in memory. */
  persistent?: boolean;
  ui?: boolean;
  dynamicConfig?: string[];
}

/**
 * One-node latency settings: the history service polls its transfer queue at most 20 times a
 * second by default, which adds ~40 ms to every activity and workflow task dispatch (measured in
 * bench/: an update awaiting one activity took 100 ms, 19 ms with this). Fine for one node.
 */
export const lowLatencyDynamicConfig = ['history.transferProcessorMaxPollRPS=1000', 'history.timerProcessorMaxPollRPS=1000'];

export const dynamicConfigArgs = (values: string[]) => values.flatMap((kv) => ['--dynamic-config-value', kv]);

/** The dev server's flags: SQLite in WAL mode, the Web UI, the project's search attributes. */
export function devServerArgs(o: DevServerOptions): string[] {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(o.port), '--namespace', o.namespace, '--log-level', 'warn'];
  if (o.persistent !== false) {
    args.push('--db-filename', path.join(o.dataDir, 'temporal.sqlite'), '--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', 'synchronous=NORMAL');
  }
  if (o.ui === false) args.push('--headless');
  else args.push('--ui-port', String(o.uiPort));
  for (const key of customSearchAttributes) args.push('--search-attribute', `${key.name}=Keyword`);
  args.push(...dynamicConfigArgs(o.dynamicConfig ?? lowLatencyDynamicConfig));
  return args;
}

export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host, () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts `temporal server start-dev` and resolves once its gRPC port accepts connections. */
export async function startDevServer(o: DevServerOptions): Promise<ChildProcess> {
  mkdirSync(o.dataDir, { recursive: true });
  const logFd = openSync(path.join(o.dataDir, 'temporal.log'), 'a');
  const child = spawn(o.binary, devServerArgs(o), { stdio: ['ignore', logFd, logFd] });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`temporal server exited early with code ${code}`))));
  await Promise.race([waitForPort(o.port), exited]);
  return child;
}
