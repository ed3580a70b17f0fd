import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { cohortLimit, rolloutBucket } from '../lib/rollout-hash.js';
import { buildPackage, minimalPackageFiles } from '../test/fixtures/packages.js';
import { waitForPort } from '../temporal/dev-server.js';
import { fmt, freePort, percentile, session, startPlatform } from './harness.js';

/**
 * `resolve` (the host apps' hot path) with 50 keep-alive connections for 10 s, against a bare
 * Hono route on @hono/node-server measured in the same run. The API runs as deployed
 * (api/server.ts in its own process, through createApp: the runtime edge route ahead of the console middleware) over a real database holding a mini
 * program with a live version and a 20% rollout. Targets: ≥ 10,000 req/s and ratio ≥ 0.3.
 */

if (process.env.MPDP_BENCH_ROLE === 'bare') {
  // The baseline, in its own process like the API.
  const app = new Hono().get('/bare', (c) => c.json({ ok: true }));
  serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(process.env.PORT) }, () => console.error('[bare] listening'));
} else {
  await main();
}

/**
 * Closed-loop load on raw keep-alive sockets: each connection sends a GET, reads the whole answer
 * (Content-Length or chunked), then sends the next. A lean client, so that on two cores the
 * measuring takes as little CPU from the server as it can.
 */
async function load(port: number, paths: string[], o: { connections: number; seconds: number }) {
  const requests = paths.map((p) => Buffer.from(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`));
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let next = 0;
  const deadline = performance.now() + o.seconds * 1000;
  const started = performance.now();
  await Promise.all(Array.from({ length: o.connections }, () => new Promise<void>((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let buf: Buffer = Buffer.alloc(0);
    let sentAt = 0;
    const send = () => {
      if (performance.now() >= deadline) {
        socket.end();
        resolve();
        return;
      }
      sentAt = performance.now();
      socket.write(requests[next++ % requests.length]!);
    };
    socket.on('connect', send);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        const head = buf.indexOf('\r\n\r\n');
        if (head < 0) return;
        const headers = buf.toString('latin1', 0, head);
        let end: number;
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
        if (length) end = head + 4 + Number(length[1]);
        else if (/\r\ntransfer-encoding:\s*chunked/i.test(headers)) {
          const last = buf.indexOf('\r\n0\r\n\r\n', head);
          if (last < 0) return;
          end = last + 7;
        } else end = head + 4;
        if (buf.length < end) return;
        const status = Number(headers.slice(9, 12));
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 200) latencies.push(performance.now() - sentAt);
        buf = buf.subarray(end);
        send();
      }
    });
  })));
  const elapsed = (performance.now() - started) / 1000;
  const errors = [...statuses].filter(([s]) => s !== 200).reduce((n, [, c]) => n + c, 0);
  return { rps: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors, statuses: Object.fromEntries(statuses) };
}

/** CPU time (user + system) a process has used, in ms, from /proc (Linux, 100 ticks a second). */
function cpuMs(pid: number | undefined): number {
  if (!pid) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Load plus the server's CPU per answered request: a figure that other load on the machine moves less. */
async function measure(pid: number | undefined, port: number, paths: string[], o: { connections: number; seconds: number }) {
  const before = cpuMs(pid);
  const r = await load(port, paths, o);
  const count = r.rps * o.seconds;
  return { ...r, cpuUsPerRequest: ((cpuMs(pid) - before) * 1000) / count };
}

async function main() {
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  const connections = 50;
  const p = await startPlatform();
  const barePort = await freePort();
  const bare = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { env: { ...process.env, MPDP_BENCH_ROLE: 'bare', PORT: String(barePort) }, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    // A mini program with 1.0.0 live and 1.1.0 rolling out to 20%, as the pipeline leaves them.
    const dev = await session(p.baseUrl, 'developer@bench.test');
    const ws = `/api/v1/workspaces/${p.workspaceId}`;
    const mp = await dev.post(`${ws}/mini-programs`, { name: 'Resolve Bench' });
    const v1 = await dev.upload(`${ws}/mini-programs/${mp.id}/versions`, buildPackage(minimalPackageFiles({ version: '1.0.0' })), '1.0.0');
    const v2 = await dev.upload(`${ws}/mini-programs/${mp.id}/versions`, buildPackage(minimalPackageFiles({ version: '1.1.0' })), '1.1.0');
    for (;;) {
      const [[row]] = (await p.sequelize.query('SELECT version_count FROM mini_programs WHERE id = :id', { replacements: { id: mp.id } })) as [{ version_count: number }[], unknown];
      if (row?.version_count === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await p.sequelize.query(`UPDATE mini_programs SET live_version_id = :v1, live_version = '1.0.0', status = 'released', seq = seq + 1000000 WHERE id = :id`, { replacements: { id: mp.id, v1: v1.id } });
    await p.sequelize.query(
      `INSERT INTO rollouts (mini_program_id, workspace_id, pipeline_id, version_id, baseline_version_id, percent, whitelist, status, epoch, seq, updated_at)
       VALUES (:id, :ws, :pipeline, :v2, :v1, 20, false, 'rolling_out', 1, 1, now())`,
      { replacements: { id: mp.id, ws: p.workspaceId, pipeline: `release:${v2.id}`, v1: v1.id, v2: v2.id } },
    );
    await p.sequelize.query(`SELECT pg_notify('mpdp_changes', :payload)`, { replacements: { payload: JSON.stringify({ workspaceId: p.workspaceId, miniProgramId: mp.id, kind: 'mini_program', status: 'released', seq: 0 }) } });
    await waitForPort(barePort);

    // Check the answers before measuring: every user gets the version their bucket says, about 20% the new one.
    const users = Array.from({ length: 10_000 }, (_, i) => `bench-user-${i}`);
    const paths = users.map((u) => `/api/v1/runtime/mini-programs/${mp.id}/resolve?userId=${encodeURIComponent(u)}`);
    let inRollout = 0;
    for (let i = 0; i < 2000; i += 100) {
      await Promise.all(users.slice(i, i + 100).map(async (u, j) => {
        const r = await fetch(p.baseUrl + paths[i + j]!);
        const body = (await r.json()) as { versionId: string; channel: string };
        const expected = rolloutBucket(mp.id, u) < cohortLimit(20) ? v2.id : v1.id;
        if (r.status !== 200 || body.versionId !== expected) throw new Error(`resolve ${u}: ${r.status} ${JSON.stringify(body)} (expected ${expected})`);
        if (body.channel === 'rollout') inRollout++;
      }));
    }
    console.log(`resolve check: 2000 users, ${(inRollout / 20).toFixed(1)}% in the 20% rollout, every answer as its bucket says`);

    const apiPort = Number(new URL(p.baseUrl).port);
    await load(apiPort, paths, { connections, seconds: 2 }); // warm-up
    await load(barePort, ['/bare'], { connections, seconds: 2 });
    const api = await measure(p.api.pid, apiPort, paths, { connections, seconds });
    const base = await measure(bare.pid, barePort, ['/bare'], { connections, seconds });
    const line = (r: typeof api) => `${r.rps.toFixed(0)} req/s   p50 ${fmt(r.p50)}   p99 ${fmt(r.p99)}   server CPU ${r.cpuUsPerRequest.toFixed(1)} µs/req   non-200 ${r.errors}`;
    console.log(`resolve, API (the real server and app, 20% rollout), ${connections} connections ${seconds}s: ${line(api)}`);
    console.log(`bare Hono route,                            ${connections} connections ${seconds}s: ${line(base)}`);
    console.log(`throughput ratio resolve/bare: ${(api.rps / base.rps).toFixed(2)}   CPU-per-request ratio bare/resolve: ${(base.cpuUsPerRequest / api.cpuUsPerRequest).toFixed(2)}  (targets: >= 10000 req/s, ratio >= 0.3)`);
  } finally {
    bare.kill('SIGTERM');
    await p.stop();
  }
}
