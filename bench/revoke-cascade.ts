import { hashPassword } from '../api/passwords.js';
import { buildPackage, minimalPackageFiles } from '../test/fixtures/packages.js';
import { maxMiniProgramsPerRequest } from '../api/routes/authorizations.js';
import { fmt, password, session, startPlatform } from './harness.js';

/**
 * A revocation that cascades over 100 in-flight submissions, on the real platform, through the API.
 * An ISV member (Admin of a developer workspace) works on merchant mini programs under active
 * authorizations, uploads and submits one version per mini program (one lane per mini program),
 * so 100 submissions are in review; then the merchant Admin revokes. Measured: the revoke's answer
 * (access cut), the report complete (every submission withdrawn), and the report's own steps.
 *
 * A request (and so a grant) names at most 50 mini programs (maxMiniProgramsPerRequest), so the
 * 100 submissions sit under 2 authorizations of 50 mini programs each, revoked at the same moment.
 * Baseline, same run: 100 other submissions of the same ISV member, on 100 other mini programs
 * under 2 other authorizations (never revoked), withdrawn by the submitter one after another with
 * the plain withdraw command (POST …/versions/{id}/withdraw).
 */
const N = Number(process.env.BENCH_N ?? 100);
const perGrant = maxMiniProgramsPerRequest;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const p = await startPlatform();
try {
  const ws = `/api/v1/workspaces/${p.workspaceId}`;
  const admin = await session(p.baseUrl, 'admin@bench.test');
  const dev = await session(p.baseUrl, 'developer@bench.test');
  await p.sequelize.query(`INSERT INTO users (id, email, name, password_hash) VALUES ('usr_b_isv', 'isv@bench.test', 'Bench ISV', :hash)`, { replacements: { hash: await hashPassword(password) } });
  const isv = await session(p.baseUrl, 'isv@bench.test');
  const devWs = (await isv.post('/api/v1/developer-workspaces', { name: 'Bench ISV' })).id as string;
  const pkg = buildPackage(minimalPackageFiles());

  /** n mini programs of the merchant, granted to the ISV in authorizations of at most 50; each gets one version submitted by the ISV, waited for in review. */
  async function prepare(label: string, n: number) {
    const mps: string[] = [];
    for (let i = 0; i < n; i++) mps.push((await dev.post(`${ws}/mini-programs`, { name: `${label} ${String(i).padStart(3, '0')}` })).id as string);
    const authorizations: string[] = [];
    for (let i = 0; i < n; i += perGrant) {
      const a = await isv.post(`/api/v1/workspaces/${devWs}/authorizations`, { merchantCode: 'BENCH', miniProgramIds: mps.slice(i, i + perGrant), scope: ['view', 'upload', 'submit'] });
      const approved = await admin.post(`${ws}/authorizations/${a.id}/approve`, {});
      if (approved.status !== 'active') throw new Error(`authorization ${a.id} is ${approved.status} after approval`);
      authorizations.push(a.id as string);
    }
    const versions: { mp: string; id: string }[] = [];
    for (const mp of mps) {
      const v = await isv.upload(`${ws}/mini-programs/${mp}/versions`, pkg, '1.0.0');
      await isv.post(`${ws}/mini-programs/${mp}/versions/${v.id}/submit`);
      versions.push({ mp, id: v.id as string });
    }
    for (const v of versions) {
      for (let k = 0; ; k++) {
        const d = await isv.get(`${ws}/mini-programs/${v.mp}/versions/${v.id}`);
        if (d.version?.status === 'in_review') break;
        if (k > 1500) throw new Error(`version ${v.id} is ${d.version?.status}, not in review`);
        await sleep(20);
      }
    }
    return { mps, authorizations, versions };
  }

  console.error(`[bench] preparing ${N} submissions in review for the cascade and ${N} for the baseline…`);
  const cascade = await prepare('Cascade', N);
  const baseline = await prepare('Baseline', N);
  await sleep(1000); // let the submissions' follow-up work (projections, mail) settle

  // Baseline: the submitter withdraws its 100 submissions, one command after another.
  const b0 = performance.now();
  const withdrawRtt: number[] = [];
  for (const v of baseline.versions) {
    const t = performance.now();
    const d = await isv.post(`${ws}/mini-programs/${v.mp}/versions/${v.id}/withdraw`, {});
    withdrawRtt.push(performance.now() - t);
    if (d.version?.status !== 'withdrawn') throw new Error(`baseline: ${v.id} is ${d.version?.status} after withdraw`);
  }
  const baselineMs = performance.now() - b0;
  await sleep(1000);

  // The cascade: every authorization revoked at once by the merchant Admin; then the reports are polled.
  const isvGet = (mp: string) => fetch(`${p.baseUrl}${ws}/mini-programs/${mp}`, { headers: { cookie: isv.headers.cookie } }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });
  const t0 = performance.now();
  const answered = await Promise.all(cascade.authorizations.map(async (id) => {
    const a = await admin.post(`${ws}/authorizations/${id}/revoke`, { reason: 'bench: cascade' });
    return { at: performance.now() - t0, status: a.status as string };
  }));
  const answeredAll = performance.now() - t0;
  const refused = await Promise.all(cascade.authorizations.map((_, i) => isvGet(cascade.mps[i * perGrant]!)));
  const done = new Map<string, { at: number; report: any; status: string }>();
  let polls = 0;
  while (done.size < cascade.authorizations.length) {
    if (performance.now() - t0 > 10 * 60_000) throw new Error('the revocation reports did not complete within 10 minutes');
    for (const id of cascade.authorizations) {
      if (done.has(id)) continue;
      const d = await admin.get(`${ws}/authorizations/${id}`);
      polls++;
      if (d.report?.completedAt && ['revoked', 'lapsed'].includes(d.authorization?.status)) done.set(id, { at: performance.now() - t0, report: d.report, status: d.authorization.status });
    }
    if (done.size < cascade.authorizations.length) await sleep(20);
  }
  const completeAll = performance.now() - t0;

  // Check: every cascade submission withdrawn, as its version says.
  let stillOpen = 0;
  for (const v of cascade.versions) {
    const d = await admin.get(`${ws}/mini-programs/${v.mp}/versions/${v.id}`);
    if (d.version?.status !== 'withdrawn') stillOpen++;
  }
  const withdrawnInReports = [...done.values()].reduce((n, d) => n + d.report.withdrawn.length, 0);
  const leftRunning = [...done.values()].reduce((n, d) => n + d.report.leftRunning.length, 0);

  const ms = (a: string, b: string) => Date.parse(b) - Date.parse(a);
  console.log(`setup: ${N} submissions in review under ${cascade.authorizations.length} authorizations of ≤${perGrant} mini programs (the API's limit per request), revoked at once; baseline: ${N} other submissions of the same ISV member`);
  console.log(`revoke → answer (access cut): ${answered.map((a, i) => `authorization ${i + 1} ${fmt(a.at)} (${a.status})`).join(', ')}; all answered ${fmt(answeredAll)}`);
  console.log(`ISV GET on a revoked mini program right after the answers: ${refused.join(', ')} (expected 403/404)`);
  console.log(`revoke → revocation report complete (polled GET …/authorizations/{id}, ${polls} polls): ${[...done.values()].map((d, i) => `authorization ${i + 1} ${fmt(d.at)}`).join(', ')}; all complete ${fmt(completeAll)}`);
  console.log(`withdrawn per the reports: ${withdrawnInReports} of ${N}; left running: ${leftRunning}; versions not withdrawn afterwards: ${stillOpen}`);
  for (const [i, id] of cascade.authorizations.entries()) {
    const r = done.get(id)!.report;
    const steps = (r.steps as { name: string; startedAt: string; finishedAt: string | null; count: number }[])
      .map((s) => `${s.name} ${s.finishedAt ? fmt(ms(s.startedAt, s.finishedAt)) : 'unfinished'} (${s.count})`).join(', ');
    console.log(`authorization ${i + 1} report (server clock): requested → completed ${fmt(ms(r.requestedAt, r.completedAt))}; steps: ${steps}`);
  }
  const perWithdrawCascade = Math.max(...[...done.values()].map((d) => {
    const s = (d.report.steps as { name: string; startedAt: string; finishedAt: string }[]).find((x) => x.name === 'withdraw_submissions')!;
    return ms(s.startedAt, s.finishedAt) / Math.max(1, d.report.withdrawn.length);
  }));
  const sorted = [...withdrawRtt].sort((a, b) => a - b);
  console.log(`baseline: ${N} withdraw commands one after another by the submitter: ${fmt(baselineMs)} (per command: median ${fmt(sorted[Math.floor(N / 2)]!)}, max ${fmt(sorted[N - 1]!)})`);
  console.log(`cascade withdraw step, per submission (slowest authorization): ${fmt(perWithdrawCascade)}`);
  console.log(`ratio cascade (revoke → all reports complete) / baseline (${N} sequential withdraws): ${(completeAll / baselineMs).toFixed(2)}`);
  const withdrawStepAll = Math.max(...[...done.values()].map((d) => {
    const s = (d.report.steps as { name: string; startedAt: string; finishedAt: string }[]).find((x) => x.name === 'withdraw_submissions')!;
    return ms(d.report.requestedAt, s.finishedAt);
  }));
  console.log(`ratio revoke → last submission withdrawn (report, server clock: ${fmt(withdrawStepAll)}) / baseline: ${(withdrawStepAll / baselineMs).toFixed(2)}`);
} finally {
  await p.stop();
}
