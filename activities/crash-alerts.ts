import { ApplicationFailure, Context } from '@temporalio/activity';
import { QueryTypes } from 'sequelize';
import type { ActivityDeps } from './index.js';
import { createDetailedOutbox, renderMail } from './mail.js';
import type { CrashAlertMailInput } from '../workflows/contracts/crash-alert.js';

function heartbeat(details?: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    /* not in an activity context (called directly in a test) */
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

/** Activities of the crashAlert workflow: the mail to the workspace's members (kind `crashes`, once each). */
export function createCrashAlertActivities({ sequelize, mailer, publicUrl }: ActivityDeps) {
  const sendOnce = createDetailedOutbox(sequelize, mailer);

  return {
    /**
     * Mails every member of the workspace about the group: its title, kind, counts so far and the
     * top frame, with links to the group and to the rollout. A member who turned `crashes` off gets
     * nothing (the outbox records it suppressed). A group or version that is gone ends the alert.
     */
    async mailCrashAlert(input: CrashAlertMailInput): Promise<{ sent: number; skipped: number }> {
      heartbeat();
      const [g] = await sequelize.query<{
        title: string; kind: string; events: string; users: string; top_frames: { fn: string | null; module: string; line: number | null }[];
        mp_name: string; version: string; workspace_name: string; pipeline_id: string | null; pipeline_status: string | null; percent: number | null;
      }>(
        `SELECT g.title, g.kind, g.events, g.users, g.top_frames, m.name AS mp_name, v.version, w.name AS workspace_name,
                p.id AS pipeline_id, p.status AS pipeline_status, (p.rollout->>'percent')::float AS percent
         FROM crash_groups g JOIN mini_programs m ON m.id = g.mini_program_id JOIN workspaces w ON w.id = g.workspace_id
         JOIN versions v ON v.id = :versionId AND v.mini_program_id = g.mini_program_id
         LEFT JOIN LATERAL (SELECT id, status, rollout FROM pipelines WHERE version_id = :versionId AND kind = 'release' ORDER BY submitted_at DESC LIMIT 1) p ON true
         WHERE g.id = :groupId AND g.workspace_id = :workspaceId`,
        { replacements: { ...input }, type: QueryTypes.SELECT },
      );
      if (!g) throw ApplicationFailure.nonRetryable(`Crash group ${input.groupId} or version ${input.versionId} not found`, 'crash_group_gone');
      const members = await sequelize.query<{ id: string; email: string; name: string }>(
        `SELECT u.id, u.email, u.name FROM memberships ms JOIN users u ON u.id = ms.user_id WHERE ms.workspace_id = :workspaceId ORDER BY u.id`,
        { replacements: { ...input }, type: QueryTypes.SELECT },
      );
      const what = g.kind === 'crash' ? 'crash' : 'error';
      const headline = input.change === 'new' ? `New ${what} in ${g.mp_name} ${g.version}` : `Resolved ${what} is back in ${g.mp_name} ${g.version}`;
      const frame = g.top_frames[0];
      const rollout = g.pipeline_status === 'rolling_out' || g.pipeline_status === 'paused'
        ? `Version ${g.version} is rolling out${g.percent !== null ? ` (${g.percent}% of users)` : ''}${g.pipeline_status === 'paused' ? ', paused' : ''}.`
        : `Version ${g.version} was rolling out when this ${what} appeared.`;
      const link = `${publicUrl}/w/${encodeURIComponent(input.workspaceId)}/analytics/crashes/${encodeURIComponent(input.groupId)}`;
      let sent = 0;
      let skipped = 0;
      for (const m of members) {
        heartbeat(m.id);
        const outcome = await sendOnce(`${input.dedupeKey}:${m.id}`, {
          to: m.email, workspaceId: input.workspaceId, userId: m.id, kind: 'crashes',
          subject: `${headline}: ${g.title.length > 80 ? `${g.title.slice(0, 79)}…` : g.title}`,
          ...renderMail({
            workspaceName: g.workspace_name, greeting: `Hello ${m.name},`,
            paragraphs: [
              `${input.change === 'new' ? 'A new' : 'A resolved'} ${what} group ${input.change === 'new' ? 'appeared' : 'came back'} in ${g.mp_name} version ${g.version}: ${g.title}`,
              ...(frame ? [`Top frame: ${frame.fn ? `${frame.fn} in ` : ''}${frame.module}${frame.line !== null ? `:${frame.line}` : ''}`] : []),
              `So far: ${plural(Number(g.events), 'event')} from ${plural(Number(g.users), 'user')}.`,
              `${rollout} The rollout's health check halts it when the crash rate goes over its limits; you can also pause or abort it from the pipeline.`,
            ],
            action: { label: 'Open the crash group', url: link },
            footer: 'You get this mail as a member of the workspace; turn off "Crash alerts" in your notification preferences to stop them.',
          }),
        });
        if (outcome === 'sent') sent++;
        else skipped++;
      }
      return { sent, skipped };
    },
  };
}
