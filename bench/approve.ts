import { pingUpdate, pingWorkflowId } from '../workflows/contracts/ping.js';
import { approveUpdate, releaseUpdate, releaseWorkflowId } from '../workflows/contracts/release.js';
import { buildPackage, minimalPackageFiles } from '../test/fixtures/packages.js';
import { fmt, percentile, session, startPlatform } from './harness.js';

/**
 * Approve round trip (HTTP → Update → answer with the new state) against a bare Update on an
 * empty workflow, both measured here; then projection lag (release Update answered → the list
 * endpoint shows the new live version).
 */
const N = Number(process.env.BENCH_N ?? 150);
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 100);
const p = await startPlatform();
try {
  const dev = await session(p.baseUrl, 'developer@bench.test');
  const rev = await session(p.baseUrl, 'reviewer@bench.test');
  const ws = `/api/v1/workspaces/${p.workspaceId}`;
  const pkg = buildPackage(minimalPackageFiles());

  console.error(`[bench] preparing ${N} versions in review…`);
  const versions: { mp: string; id: string; name: string }[] = [];
  for (let i = 0; i < N; i++) {
    const name = `Bench ${String(i).padStart(4, "0")}`;
    const mp = await dev.post(`${ws}/mini-programs`, { name });
    const v = await dev.upload(`${ws}/mini-programs/${mp.id}/versions`, pkg, '1.0.0');
    await dev.post(`${ws}/mini-programs/${mp.id}/versions/${v.id}/submit`);
    versions.push({ mp: mp.id, id: v.id, name });
  }
  for (const v of versions) {
    for (;;) {
      const d = await dev.get(`${ws}/mini-programs/${v.mp}/versions/${v.id}`);
      if (d.version.status === 'in_review') break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // Baselines: a bare Update on an empty workflow, same client machine, same server. "Hot": the
  // same workflow again and again (always in the worker's cache). "Idle": a different empty
  // workflow each time, started beforehand and idle since, as each version's pipeline is.
  const ping = await p.temporal.workflow.start('pingWorkflow', { workflowId: pingWorkflowId(`bench-${Date.now()}`), taskQueue: 'bench', args: [600_000] });
  for (let i = 0; i < 30; i++) await ping.executeUpdate(pingUpdate, { args: [i] });
  const bare: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await ping.executeUpdate(pingUpdate, { args: [i] });
    bare.push(performance.now() - t);
  }
  const idlePings = [];
  for (let i = 0; i < N; i++) idlePings.push(await p.temporal.workflow.start('pingWorkflow', { workflowId: pingWorkflowId(`bench-idle-${Date.now()}-${i}`), taskQueue: 'bench', args: [600_000] }));
  await new Promise((r) => setTimeout(r, 1000));

  // Approvals paced like people (GAP_MS apart, so one approval's follow-up work — projection,
  // mail, the mini program's bookkeeping — is not measured as part of the next one), each one
  // next to a bare Update on its own idle empty workflow, so both see the same machine at the
  // same moment (this machine is a VM whose speed drifts within a run).
  // Every other version is approved by the approve Update itself, without HTTP, to split the cost.
  const bareIdle: number[] = [];
  const approve: number[] = [];
  const direct: number[] = [];
  const inApi: Record<string, number>[] = [];
  for (const [i, v] of versions.entries()) {
    let t = performance.now();
    await idlePings[i]!.executeUpdate(pingUpdate, { args: [1] });
    bareIdle.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, GAP_MS));
    t = performance.now();
    if (i % 2) {
      const s = await p.temporal.workflow.getHandle(releaseWorkflowId(v.id)).executeUpdate(approveUpdate, { args: [{ actorId: 'usr_b_rev', comment: 'ok' }] });
      direct.push(performance.now() - t);
      if (s.status !== 'approved') throw new Error(`unexpected status ${s.status}`);
    } else {
      const d = await rev.post(`${ws}/mini-programs/${v.mp}/versions/${v.id}/approve`, { comment: 'ok' });
      approve.push(performance.now() - t);
      inApi.push(rev.lastTiming);
      if (d.version.status !== 'approved') throw new Error(`unexpected status ${d.version.status}`);
    }
    await new Promise((r) => setTimeout(r, GAP_MS));
  }

  // The HTTP floor on this machine: a public route that answers after one SELECT 1.
  const floor: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await (await fetch(`${p.baseUrl}/api/v1/health`)).json();
    floor.push(performance.now() - t);
  }

  // Projection lag: the release Update answers, then the list shows the live version.
  const lag: number[] = [];
  for (const v of versions) {
    await p.temporal.workflow.getHandle(releaseWorkflowId(v.id)).executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_b_dev', plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] }] });
    const t = performance.now();
    for (;;) {
      const list = await dev.get(`${ws}/mini-programs?q=${encodeURIComponent(`${v.name}`)}&limit=50`);
      if (list.items.find((i: any) => i.id === v.mp)?.liveVersion === '1.0.0') break;
    }
    lag.push(performance.now() - t);
  }
  await ping.terminate('bench done');
  await Promise.all(idlePings.map((h) => h.terminate('bench done')));

  const med = (a: number[]) => percentile(a, 50);
  console.log(`approve round trip over HTTP (n=${approve.length}):   median ${fmt(med(approve))}   p99 ${fmt(percentile(approve, 99))}`);
  console.log(`  inside the API: before the handler ${fmt(med(inApi.map((x) => x.gate ?? 0)))}, Update ${fmt(med(inApi.map((x) => x.update ?? 0)))}, answer built in ${fmt(med(inApi.map((x) => x.detail ?? 0)))} (medians)`);
  console.log(`  HTTP floor, GET /api/v1/health (one SELECT 1) (n=${N}): median ${fmt(med(floor))}`);
  console.log(`approve Update alone, no HTTP (n=${direct.length}): median ${fmt(med(direct))}   p99 ${fmt(percentile(direct, 99))}`);
  console.log(`bare Update, idle empty workflows, interleaved with the approvals (n=${N}): median ${fmt(med(bareIdle))}   p99 ${fmt(percentile(bareIdle, 99))}`);
  console.log(`bare Update, one hot empty workflow (n=${N}): median ${fmt(med(bare))}   p99 ${fmt(percentile(bare, 99))}`);
  console.log(`median ratio approve/bare (idle workflows): ${(med(approve) / med(bareIdle)).toFixed(2)}  (target <= 1.5)`);
  console.log(`median ratio approve/bare (hot workflow):   ${(med(approve) / med(bare)).toFixed(2)}`);
  console.log(`projection lag, release → list shows it (n=${N}): median ${fmt(med(lag))}   p99 ${fmt(percentile(lag, 99))}  (target p99 < 250 ms)`);
} finally {
  await p.stop();
}
