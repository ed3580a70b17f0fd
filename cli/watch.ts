import { terminalReleaseStatuses } from '../workflows/contracts/release.js';
import { ApiError, retryable, type ApiClient, type Pipeline, type TimelineEntry, type VersionDetail } from './client.js';

/** Pipeline states after which nothing more happens (the workflow contract's list). */
export const terminalStatuses: readonly string[] = terminalReleaseStatuses;
/** Terminal states that count as success for `--watch`: anything else terminal exits 5. */
export const goodEndings: readonly string[] = ['released', 'offline'];

const enc = encodeURIComponent;
const pad = (n: number) => String(n).padStart(2, '0');

export function localTime(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const percent = (x: unknown) => (typeof x === 'number' ? `${(x * 100).toFixed(2).replace(/\.?0+$/, '')}%` : '?');

/** The facts of a timeline entry worth a line: health figures, a stage, a reason. */
function entryFacts(data: Record<string, unknown> | undefined): string {
  if (!data) return '';
  if (typeof data.verdict === 'string' && typeof data.launches === 'number') {
    return ` [${data.verdict}: ${data.crashes ?? 0}/${data.launches} crashes = ${percent(data.crashRate)}, live ${percent(data.liveCrashRate)}${data.reason && data.verdict !== 'green' ? `; ${String(data.reason)}` : ''}]`;
  }
  const parts: string[] = [];
  if (typeof data.percent === 'number') parts.push(`${data.percent}%`);
  if (data.whitelist === true || data.kind === 'whitelist') parts.push('testers');
  if (typeof data.reasonLabel === 'string') parts.push(data.reasonLabel);
  else if (typeof data.reasonCode === 'string') parts.push(data.reasonCode);
  if (typeof data.error === 'string') parts.push(data.error);
  return parts.length ? ` [${parts.join(', ')}]` : '';
}

/** `2025-03-01 14:02:11  in_review   validated by Dan: "…" [5%]`. */
export function formatEntry(e: TimelineEntry, names: Record<string, string> = {}): string {
  const who = e.actorName ?? (e.actorId ? names[e.actorId] : undefined);
  return `${localTime(e.at)}  ${e.status.padEnd(10)}  ${e.action}${who ? ` by ${who}` : ''}${e.comment ? `: "${e.comment}"` : ''}${entryFacts(e.data)}`;
}

/** What the pipeline waits for, in the most precise words the server gave. */
export const waitingLine = (p: Pipeline) => p.waitingWords || p.waitingFor;

/** `stage 2/5: 5% of users, soaking until 14:05:00`, or null without a rollout. */
export function rolloutLine(p: Pipeline): string | null {
  const r = p.rollout;
  if (!r) return null;
  const stage = r.plan[r.stageIndex];
  const where = r.stageIndex < 0 ? 'not started' : `stage ${r.stageIndex + 1}/${r.plan.length}`;
  const who = stage?.kind === 'whitelist' ? 'testers only' : `${r.percent}% of users${r.whitelist ? ' + testers' : ''}`;
  const soak = p.status === 'paused' && r.remainingSoakMs !== null ? `, paused with ${Math.ceil(r.remainingSoakMs / 1000)} s of soak left` : r.soakEndsAt ? `, soaking until ${localTime(r.soakEndsAt).slice(11)}` : '';
  return `${where}: ${who}${soak}`;
}

export function stuckLine(p: Pipeline): string | null {
  const s = p.stuck;
  return s ? `stuck at "${s.step}" since ${localTime(s.since)}: ${s.error}` : null;
}

/** The pipeline summary lines of `mpdp status`. */
export function summaryLines(p: Pipeline): string[] {
  const lines = [`Status: ${p.status}${p.hotfix ? ' (hotfix)' : ''}`, `Waiting for: ${waitingLine(p)}`];
  if (p.requiredApprovals && p.approvals && ['in_review', 'validating'].includes(p.status)) lines.push(`Approvals: ${p.approvals.length}/${p.requiredApprovals}`);
  if (p.slaDueAt && p.status === 'in_review') lines.push(`Review due: ${localTime(p.slaDueAt)}`);
  if (p.rejection) lines.push(`Rejected: ${p.rejection.reasonLabel || p.rejection.reasonCode}${p.rejection.comment ? `: "${p.rejection.comment}"` : ''}`);
  const rollout = rolloutLine(p);
  if (rollout) lines.push(`Rollout: ${rollout}`);
  const stuck = stuckLine(p);
  if (stuck) lines.push(`Stuck: ${stuck}`);
  return lines;
}

export interface WatchTarget {
  workspace: string;
  miniProgram: string;
  versionId: string;
}

/**
 * Follows a version's pipeline until it reaches a terminal status and returns its last detail.
 * `print` gets each new timeline entry and each change of what it waits for and of the rollout.
 * Wakes on the workspace's server-sent events (one stream), and polls as well: every
 * `pollMs` while the stream is up, every second when it is not. Transient failures (a server
 * restart, a network blip) are ridden out; a real answer such as 404 ends the watch.
 */
export async function watchVersion(client: ApiClient, t: WatchTarget, print: (line: string) => void, o: { pollMs?: number; signal?: AbortSignal } = {}): Promise<VersionDetail> {
  const versionPath = `/workspaces/${enc(t.workspace)}/mini-programs/${enc(t.miniProgram)}/versions/${enc(t.versionId)}`;
  const stop = new AbortController();
  o.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  let wake: (() => void) | null = null;
  let live = false;
  const listen = async () => {
    try {
      for await (const ev of client.events(`/workspaces/${enc(t.workspace)}/events?miniProgramId=${enc(t.miniProgram)}`, stop.signal)) {
        if (ev.event === 'ready') live = true;
        if (ev.event === 'change') wake?.();
      }
    } catch { /* no stream: polling carries on alone */ }
    live = false;
  };
  const listening = listen();

  let shown = 0;
  let waiting = '';
  let rollout: string | null = null;
  let stuck: string | null = null;
  let announced = false;
  let failures = 0;
  try {
    for (;;) {
      let detail: VersionDetail | undefined;
      try {
        detail = await client.get<VersionDetail>(versionPath);
        failures = 0;
      } catch (e) {
        if (!retryable(e) || ++failures > 3) throw e;
      }
      const p = detail?.pipeline;
      if (detail && !p && !announced) {
        print(`${detail.version.version} is not submitted yet; waiting for a submission…`);
        announced = true;
      }
      if (detail && p) {
        for (const e of p.timeline.slice(shown)) print(formatEntry(e, p.names));
        shown = Math.max(shown, p.timeline.length);
        if (waitingLine(p) !== waiting) print(`  → ${(waiting = waitingLine(p))}`);
        const r = rolloutLine(p);
        if (r && r !== rollout) print(`  rollout: ${r}`);
        rollout = r;
        const s = stuckLine(p);
        if (s && s !== stuck) print(`  ${s}`);
        stuck = s;
        if (terminalStatuses.includes(p.status)) return detail;
      }
      if (stop.signal.aborted) throw new ApiError(499, 'watch_stopped', 'Stopped following');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, live ? (o.pollMs ?? 5000) : 1000);
        wake = () => {
          clearTimeout(timer);
          // Events come in bursts (row, audit, mini program): read once they settle.
          setTimeout(resolve, 150);
        };
      });
      wake = null;
    }
  } finally {
    stop.abort();
    await listening;
  }
}
