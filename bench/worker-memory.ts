import { PackageStore } from '../lib/storage.js';
import { buildPackage, minimalPackageFiles } from '../test/fixtures/packages.js';
import { miniProgramStatusQuery, miniProgramWorkflowId, submitUpdate, syncUpdate, uploadVersionUpdate, type MiniProgramInput } from '../workflows/contracts/mini-program.js';
import { approveUpdate, releaseStatusQuery, releaseUpdate, releaseWorkflowId } from '../workflows/contracts/release.js';
import { rssMiB, startPlatform } from './harness.js';

/** Worker memory (RSS) after 1,000 completed releases, driven through the workflows' own commands. */
const total = Number(process.env.BENCH_RELEASES ?? 1000);
const lanes = 10;
const p = await startPlatform();
const until = async (f: () => Promise<boolean>, workflowId: string) => {
  for (;;) {
    try {
      if (await f()) return;
    } catch (err) {
      // Say which workflow did not answer, and why, before giving up.
      const handle = p.temporal.workflow.getHandle(workflowId);
      const d = await handle.describe();
      const failures = ((await handle.fetchHistory()).events ?? []).filter((e) => e.workflowTaskFailedEventAttributes).map((e) => e.workflowTaskFailedEventAttributes?.failure?.message);
      console.error(`[bench] ${workflowId} (${d.status.name}, ${d.historyLength} events) did not answer: ${(err as Error).message}; failed tasks: ${JSON.stringify(failures.slice(0, 3))}`);
      throw err;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
};
try {
  const { sha256, size } = await new PackageStore(p.dataDir).put(buildPackage(minimalPackageFiles()));
  let done = 0;
  async function lane(n: number, releases: number) {
    const miniProgramId = `mp_mem_${n}`;
    const input: MiniProgramInput = {
      miniProgramId, workspaceId: p.workspaceId, name: `Memory ${n}`, description: '', category: 'tools', icon: null, createdBy: 'usr_b_dev',
      createdAt: new Date().toISOString(), releaseConfig: { reviewReminderMs: 0 },
    };
    const mp = await p.temporal.workflow.start('miniProgramEntity', { workflowId: miniProgramWorkflowId(miniProgramId), taskQueue: 'bench', args: [input] });
    await mp.executeUpdate(syncUpdate, { args: [] });
    for (let i = 0; i < releases; i++) {
      const versionId = `ver_mem_${n}_${i}`;
      await mp.executeUpdate(uploadVersionUpdate, { args: [{ versionId, version: `1.${i}.0`, packageSha256: sha256, packageSize: size, pageCount: 1, notes: '', actorId: 'usr_b_dev' }] });
      await mp.executeUpdate(submitUpdate, { args: [{ versionId, actorId: 'usr_b_dev' }] });
      const release = p.temporal.workflow.getHandle(releaseWorkflowId(versionId));
      await until(async () => (await release.query(releaseStatusQuery)).status === 'in_review', release.workflowId);
      await release.executeUpdate(approveUpdate, { args: [{ actorId: 'usr_b_rev' }] });
      await release.executeUpdate(releaseUpdate, { args: [{ actorId: 'usr_b_dev', plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] }] });
      await release.result();
      await until(async () => (await mp.query(miniProgramStatusQuery)).activeVersionId === null, mp.workflowId);
      done++;
    }
  }
  const warm = 2;
  await Promise.all(Array.from({ length: lanes }, (_, n) => lane(n, warm)));
  const before = rssMiB(p.worker.pid!);
  const t = performance.now();
  const rest = total - warm * lanes;
  await Promise.all(Array.from({ length: lanes }, (_, n) => lane(lanes + n, Math.ceil(rest / lanes))));
  const seconds = (performance.now() - t) / 1000;
  const after = rssMiB(p.worker.pid!);
  console.log(`worker RSS after ${warm * lanes} warm-up releases: ${before.toFixed(0)} MiB`);
  const measured = done - warm * lanes;
  console.log(`worker RSS after ${done} completed releases: ${after.toFixed(0)} MiB  (${after - before >= 0 ? '+' : ''}${(after - before).toFixed(0)} MiB; ${(measured / seconds).toFixed(1)} releases/s over ${seconds.toFixed(0)} s, ${lanes} at a time)`);
} finally {
  await p.stop();
}
