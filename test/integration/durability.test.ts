import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realisticPackage } from '../fixtures/packages.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => stack?.stop());

describe('durability', () => {
  it('finishes a release across two SIGKILLed workers with one reviewer mail each and no duplicate audit rows', async () => {
    const [dev, rev] = await Promise.all([stack.agent('developer'), stack.agent('reviewer')]);
    const mp = await dev.post(`/api/v1/workspaces/${stack.workspaceId}/mini-programs`, { name: 'Durable Mall' });
    expect(mp.status).toBe(201);
    const mpUrl = `/api/v1/workspaces/${stack.workspaceId}/mini-programs/${mp.body.id}`;
    const up = await dev.upload(`${mpUrl}/versions`, realisticPackage({ version: '2.0.0' }), '2.0.0');
    expect(up.status).toBe(201);
    const versionUrl = `${mpUrl}/versions/${up.body.id}`;

    // Kill the worker the moment the pipeline starts: validation, projections and mail are in flight.
    expect((await dev.post(`${versionUrl}/submit`)).status).toBe(200);
    await stack.worker.kill('SIGKILL');
    expect(stack.worker.proc.signalCode).toBe('SIGKILL');
    await stack.worker.start();

    await eventually(async () => (await dev.get(versionUrl)).body.version.status === 'in_review', { what: 'in review after the first kill', timeoutMs: 45_000 });
    await stack.waitForMail({ to: stack.users.reviewer.email, subject: 'Review requested' });
    await stack.waitForMail({ to: stack.users.admin.email, subject: 'Review requested' });

    // Kill it again while the release waits for its reviewer.
    await stack.worker.kill('SIGKILL');
    await stack.worker.start();
    const approved = await rev.post(`${versionUrl}/approve`, { comment: 'fine' });
    expect(approved.status).toBe(200);
    // Everyone at once: a one-stage plan with no soak, so the pipeline declares it released by itself.
    const released = await dev.post(`${versionUrl}/release`, { plan: [{ kind: 'percent', percent: 100, soakMs: 0 }] });
    expect(released.status).toBe(200);
    expect(['rolling_out', 'released']).toContain(released.body.version.status);

    // One mail per reviewer. SMTP cannot be exactly-once: a worker killed after the server took a mail
    // and before the outbox noted it sends it again on retry, with the same Message-ID (the dedupe
    // key), which mail clients show once. So: one Message-ID per recipient, and any resend is that one.
    const reviewMails = stack.mails.filter((m) => m.subject.includes('Review requested') && m.subject.includes('Durable Mall'));
    const messageId = (raw: string) => /^Message-ID:\s*(<[^>]+>)/im.exec(raw)?.[1];
    expect(reviewMails.every((m) => !!messageId(m.raw))).toBe(true);
    const byId = new Map(reviewMails.map((m) => [messageId(m.raw)!, m.to[0]]));
    expect([...byId.values()].sort()).toEqual([stack.users.admin.email, stack.users.reviewer.email].sort());
    expect(new Set(reviewMails.map((m) => `${m.to[0]} ${messageId(m.raw)}`)).size).toBe(2);
    // The entity hears of the release from its child; after a worker death that takes a few seconds.
    const list = await eventually(async () => {
      const l = await dev.get(`/api/v1/workspaces/${stack.workspaceId}/mini-programs?q=durable`);
      return l.body.items[0]?.status === 'released' ? l : null;
    }, { what: 'the mini program to show as released', timeoutMs: 30_000 });
    expect(list.body.items[0]).toMatchObject({ status: 'released', liveVersion: '2.0.0' });
    // The entity hears of the release only after its row was written, so the audit trail is complete now.
    const rows = await stack.sequelize.query<{ action: string; n: string }>(
      `SELECT action, count(*) AS n FROM audit_log WHERE subject_id = :id GROUP BY action ORDER BY action`,
      { replacements: { id: up.body.id }, type: QueryTypes.SELECT },
    );
    expect(rows.map((r) => [r.action, Number(r.n)])).toEqual([['approved', 1], ['released', 1], ['review_requested', 1], ['rollout_started', 1], ['submitted', 1], ['uploaded', 1]]);
  });
});
