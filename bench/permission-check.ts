import { Hono } from 'hono';
import pg from 'pg';
import { authenticate, csrf, requirePermission } from '../api/middleware.js';
import type { AppEnv } from '../api/deps.js';
import { onError } from '../api/errors.js';
import { newSecret, sha256 } from '../api/passwords.js';
import { percentile, startPlatform } from './harness.js';

/**
 * The cost of the permission check per request (authenticate + requirePermission), at 10,000
 * memberships: the median time of a gated route minus that of a bare route, both served by the
 * same in-process Hono app in the same run, against the platform's PostgreSQL.
 */
const memberships = Number(process.env.BENCH_MEMBERSHIPS ?? 10_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5000);
const p = await startPlatform();
const pool = new pg.Pool({ connectionString: p.env.DATABASE_URL, max: 4 });
try {
  // 10,000 memberships: 100 workspaces of 100 members each, the bench user's among them.
  await p.sequelize.query(`INSERT INTO workspaces (id, name, code) SELECT 'ws_pc_' || w, 'PC ' || w, 'PC' || w FROM generate_series(1, 100) w`);
  await p.sequelize.query(`INSERT INTO users (id, email, name, password_hash) SELECT 'usr_pc_' || u, 'pc' || u || '@bench.test', 'PC ' || u, 'x' FROM generate_series(1, :n) u`, { replacements: { n: memberships - 3 } });
  await p.sequelize.query(
    `INSERT INTO memberships (workspace_id, user_id, role) SELECT 'ws_pc_' || (1 + u % 100), 'usr_pc_' || u, (ARRAY['admin','reviewer','developer'])[1 + u % 3] FROM generate_series(1, :n) u`,
    { replacements: { n: memberships - 3 } },
  );
  const [[{ n }]] = (await p.sequelize.query('SELECT count(*)::int AS n FROM memberships')) as [[{ n: number }], unknown];
  await p.sequelize.query('ANALYZE');
  const sessionId = newSecret();
  await p.sequelize.query(`INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at) VALUES (:h, 'usr_b_dev', 'c', now() + interval '1 hour')`, { replacements: { h: sha256(sessionId) } });

  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.use('/gated/*', authenticate(p.sequelize, pool), csrf);
  app.get('/bare/workspaces/:workspaceId/mini-programs/:miniProgramId', (c) => c.text('ok'));
  app.get('/gated/workspaces/:workspaceId/mini-programs/:miniProgramId', requirePermission('version.upload'), (c) => c.text('ok'));
  const headers = { cookie: `mpdp_session=${sessionId}` };
  const time = async (path: string) => {
    const t = process.hrtime.bigint();
    const res = await app.request(path, { headers });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return Number(process.hrtime.bigint() - t) / 1000;
  };
  const bare = `/bare/workspaces/${p.workspaceId}/mini-programs/mp_x`;
  const gated = `/gated/workspaces/${p.workspaceId}/mini-programs/mp_x`;
  for (let i = 0; i < 500; i++) await Promise.all([time(bare), time(gated)]); // warm-up
  const b: number[] = [];
  const g: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Interleaved, so both see the same machine load.
    b.push(await time(bare));
    g.push(await time(gated));
  }
  const mb = percentile(b, 50);
  const mg = percentile(g, 50);
  console.log(`permission check at ${n} memberships, ${rounds} requests each, sequential, in-process Hono:`);
  console.log(`  bare route:                                median ${mb.toFixed(0)} µs  (p95 ${percentile(b, 95).toFixed(0)} µs)`);
  console.log(`  authenticate + requirePermission + route:  median ${mg.toFixed(0)} µs  (p95 ${percentile(g, 95).toFixed(0)} µs)`);
  console.log(`  cost of the permission check:              median ${(mg - mb).toFixed(0)} µs per request`);
} finally {
  await pool.end();
  await p.stop();
}
