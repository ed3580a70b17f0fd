import { approveUpdate, releaseWorkflowId } from '../workflows/contracts/release.js';
import { buildPackage, minimalPackageFiles } from '../test/fixtures/packages.js';
import { fmt, percentile, session, startPlatform } from './harness.js';
const N = 20;
const p = await startPlatform();
try {
  const dev = await session(p.baseUrl, 'developer@bench.test');
  const ws = `/api/v1/workspaces/${p.workspaceId}`;
  const pkg = buildPackage(minimalPackageFiles());
  const ids: string[] = [];
  const tc: number[] = [], tu: number[] = [], ts: number[] = [];
  for (let i = 0; i < N; i++) {
    let t = performance.now();
    const mp = await dev.post(`${ws}/mini-programs`, { name: `P ${i}` });
    tc.push(performance.now() - t); t = performance.now();
    const v = await dev.upload(`${ws}/mini-programs/${mp.id}/versions`, pkg, '1.0.0');
    tu.push(performance.now() - t); t = performance.now();
    await dev.post(`${ws}/mini-programs/${mp.id}/versions/${v.id}/submit`);
    ts.push(performance.now() - t);
    ids.push(v.id);
  }
  console.log('create', fmt(percentile(tc, 50)), 'upload', fmt(percentile(tu, 50)), 'submit', fmt(percentile(ts, 50)));
  await new Promise((r) => setTimeout(r, 2000));
  const ta: number[] = [];
  for (const id of ids) {
    const t = performance.now();
    await p.temporal.workflow.getHandle(releaseWorkflowId(id)).executeUpdate(approveUpdate, { args: [{ actorId: 'usr_b_rev' }] });
    ta.push(performance.now() - t);
  }
  console.log('direct approve update', fmt(percentile(ta, 50)), fmt(percentile(ta, 99)));
  const h = await p.temporal.workflow.getHandle(releaseWorkflowId(ids[5]!)).fetchHistory();
  const evs = h.events ?? [];
  const t0 = Number(evs[0]!.eventTime!.seconds) * 1000 + (evs[0]!.eventTime!.nanos ?? 0) / 1e6;
  for (const e of evs) {
    const t = Number(e.eventTime!.seconds) * 1000 + (e.eventTime!.nanos ?? 0) / 1e6;
    console.log(String(e.eventId).padStart(3), (t - t0).toFixed(1).padStart(9), e.eventType);
  }
  const tq: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    await p.sequelize.query('SELECT 1');
    tq.push(performance.now() - t);
  }
  console.log('SELECT 1', fmt(percentile(tq, 50)));
} finally {
  await p.stop();
}
