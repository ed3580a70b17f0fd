import { QueryTypes } from 'sequelize';
import { rssMiB, session, startPlatform } from './harness.js';

/**
 * Invite 1,000 addresses in one request against a real platform (API and worker as child
 * processes, Temporal dev server, PostgreSQL, SMTP peer): time until every mail has reached the
 * SMTP peer and every invitation is pending with its link minted, and the worker's RSS.
 */
const total = Number(process.env.BENCH_INVITES ?? 1000);
const p = await startPlatform();
try {
  const admin = await session(p.baseUrl, p.users[0]!.email);
  const emails = Array.from({ length: total }, (_, i) => `invitee-${i}@bench-invite.test`);
  const rssBefore = rssMiB(p.worker.pid!);
  const t0 = performance.now();
  const report = await admin.post(`/api/v1/workspaces/${p.workspaceId}/invitations`, { emails, role: 'developer' });
  const answered = performance.now() - t0;
  if (report.invited.length !== total) throw new Error(`only ${report.invited.length} invited: ${JSON.stringify(report.refused.slice(0, 3))}`);
  let mailsAt = 0;
  let pendingAt = 0;
  let peakRss = rssBefore;
  for (;;) {
    peakRss = Math.max(peakRss, rssMiB(p.worker.pid!));
    const mails = p.smtp.messages.filter((m) => m.to.some((t) => t.endsWith('@bench-invite.test'))).length;
    if (!mailsAt && mails >= total) mailsAt = performance.now() - t0;
    if (!pendingAt) {
      const [row] = await p.sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM invitations WHERE workspace_id = :ws AND status = 'pending' AND token_hash IS NOT NULL AND seq >= 1`, {
        replacements: { ws: p.workspaceId }, type: QueryTypes.SELECT,
      });
      if (Number(row!.n) >= total) pendingAt = performance.now() - t0;
    }
    if (mailsAt && pendingAt) break;
    if (performance.now() - t0 > 600_000) throw new Error(`timed out: ${mails} mails`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const rssAfter = rssMiB(p.worker.pid!);
  console.log(`invite ${total} addresses in one request`);
  console.log(`  API answered (rows written, ${total} workflows started): ${(answered / 1000).toFixed(2)} s`);
  console.log(`  all ${total} invitations pending with their link minted: ${(pendingAt / 1000).toFixed(2)} s`);
  console.log(`  all ${total} mails received by the SMTP peer:             ${(mailsAt / 1000).toFixed(2)} s`);
  console.log(`  worker RSS: ${rssBefore.toFixed(0)} MiB before, ${peakRss.toFixed(0)} MiB peak, ${rssAfter.toFixed(0)} MiB after`);
} finally {
  await p.stop();
}
