import { hashPassword } from '../api/passwords.js';
import { fmt, password, percentile, session, startPlatform } from './harness.js';

/**
 * Revocation cut-off: the time from the revoke command (HTTP POST by a merchant Admin) to the first
 * refused request of an ISV member on the mini program, over N revocations (each of its own
 * authorization: request → approve → the ISV is let in → revoke). Two clocks: the next request
 * sent after the revoke answered (the "very next request" — it must be refused, always),
 * and a poller hammering the mini program while the revoke is in flight (the real moment of the cut).
 * Also the cost of the grant check: an ISV member's GET against a merchant member's.
 */
const N = Number(process.env.BENCH_N ?? 100);
const p = await startPlatform();
try {
  const ws = `/api/v1/workspaces/${p.workspaceId}`;
  const admin = await session(p.baseUrl, 'admin@bench.test');
  const dev = await session(p.baseUrl, 'developer@bench.test');
  await p.sequelize.query(`INSERT INTO users (id, email, name, password_hash) VALUES ('usr_b_isv', 'isv@bench.test', 'Bench ISV', :hash)`, { replacements: { hash: await hashPassword(password) } });
  const isv = await session(p.baseUrl, 'isv@bench.test');
  const devWs = (await isv.post('/api/v1/developer-workspaces', { name: 'Bench ISV' })).id as string;
  const mp = (await dev.post(`${ws}/mini-programs`, { name: 'Bench Granted' })).id as string;
  const mpUrl = `${p.baseUrl}${ws}/mini-programs/${mp}`;
  const isvGet = () => fetch(mpUrl, { headers: { cookie: isv.headers.cookie } }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });

  const afterAnswer: number[] = [];
  const revokeRtt: number[] = [];
  const pollerCut: number[] = [];
  let leaked = 0;
  let grantGets: number[] = [];
  for (let i = 0; i < N; i++) {
    const a = await isv.post(`/api/v1/workspaces/${devWs}/authorizations`, { merchantCode: 'BENCH', miniProgramIds: [mp], scope: ['view', 'upload'] });
    await admin.post(`${ws}/authorizations/${a.id}/approve`, {});
    if ((await isvGet()) !== 200) throw new Error(`revocation ${i}: the ISV was not let in after approval`);
    if (i === 0) {
      // The grant check's cost, once, on a warm path: an ISV member's GET vs a merchant member's.
      const memberGets: number[] = [];
      for (let k = 0; k < 300; k++) {
        let t = performance.now();
        await isvGet();
        grantGets.push(performance.now() - t);
        t = performance.now();
        await fetch(mpUrl, { headers: { cookie: dev.headers.cookie } }).then((r) => r.arrayBuffer());
        memberGets.push(performance.now() - t);
      }
      grantGets = grantGets.slice(50);
      console.log(`GET mini program, p50 / p99: ISV through a grant ${fmt(percentile(grantGets, 50))} / ${fmt(percentile(grantGets, 99))}; merchant member ${fmt(percentile(memberGets.slice(50), 50))} / ${fmt(percentile(memberGets.slice(50), 99))}`);
    }
    // A poller requests as the ISV back to back while the revoke is in flight.
    let stop = false;
    let firstRefused = 0;
    const poller = (async () => {
      while (!stop) {
        const status = await isvGet();
        if (status !== 200 && !firstRefused) firstRefused = performance.now();
      }
    })();
    const t0 = performance.now();
    await admin.post(`${ws}/authorizations/${a.id}/revoke`, { reason: 'bench' });
    const answered = performance.now();
    const status = await isvGet();
    const t1 = performance.now();
    stop = true;
    await poller;
    if (status === 200) leaked++;
    revokeRtt.push(answered - t0);
    afterAnswer.push(t1 - t0);
    pollerCut.push((firstRefused || t1) - t0);
  }
  const line = (name: string, v: number[]) => `${name}: p50 ${fmt(percentile(v, 50))}, p99 ${fmt(percentile(v, 99))}, max ${fmt(Math.max(...v))}`;
  console.log(`revocations: ${N}`);
  console.log(line('revoke command → answer (access cut)', revokeRtt));
  console.log(line('revoke command → the next ISV request refused', afterAnswer));
  console.log(line('revoke command → first refused request of a concurrent poller', pollerCut));
  console.log(`ISV requests let through after the revoke answered: ${leaked} of ${N}`);
} finally {
  await p.stop();
}
