import { permissionTable, type Permission, type Principal } from './permissions.js';
import {
  releaseWaitingText, type HealthThresholds, type ReleaseState, type RolloutStage,
} from '../workflows/contracts/release.js';

/**
 * What a pipeline waits for and on whom, in words a release manager reads on the version page:
 * "Waiting 5 h 12 min for 1 more approval from a Reviewer or Admin other than Dana (the
 * submitter); due in 18 h". Pure: names, thresholds and the clock come in.
 */
export interface WordsOptions {
  /** User id → display name. */
  names: Record<string, string>;
  now: Date;
  /** The rollout health limits in force (config.release.health). */
  health: HealthThresholds;
  /** Clock times are written in this zone (default UTC, suffixed " UTC"). */
  timeZone?: string;
}

const roleLabels: Record<Principal, string> = {
  reviewer: 'Reviewer', admin: 'Admin', developer: 'Developer', 'mp:owner': 'owner of the mini program', 'mp:developer': 'developer of the mini program', operator: 'operator',
  'isv:view': 'authorized developer (view)', 'isv:upload': 'authorized developer (upload)', 'isv:submit': 'authorized developer (submit)', 'isv:testers': 'authorized developer (testers)',
  'key:read': 'API key (read)', 'key:upload': 'API key (upload)', 'key:submit': 'API key (submit)', 'key:release': 'API key (release)',
};
/** Workspace roles first (Reviewer before Admin: the one whose job it is), then per-mini-program roles. */
const roleOrder: Principal[] = ['reviewer', 'developer', 'admin', 'mp:owner', 'mp:developer', 'isv:submit', 'isv:upload', 'isv:view', 'isv:testers', 'operator'];

/** "a Reviewer or Admin": who holds a permission, read from the permission table. */
export function whoCan(permission: Permission): string {
  // People only: a workspace API key never waits for anything in words.
  const roles = [...(permissionTable[permission] as readonly Principal[])].filter((r) => !r.startsWith('key:')).sort((a, b) => roleOrder.indexOf(a) - roleOrder.indexOf(b)).map((r) => roleLabels[r]);
  if (!roles.length) return 'nobody';
  const first = roles[0]!;
  const article = /^[AEIOUaeiou]/.test(first) ? 'an' : 'a';
  return `${article} ${roles.length > 1 ? `${roles.slice(0, -1).join(', ')} or ${roles.at(-1)}` : first}`;
}

/** "5 h 12 min", "3 min", "2 d 4 h", "40 s". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** "14:02 UTC" today, "3 Mar 14:02 UTC" another day. */
export function clock(iso: string, now: Date, timeZone = 'UTC'): string {
  const at = new Date(iso);
  const day = (d: Date) => new Intl.DateTimeFormat('en-GB', { timeZone, year: 'numeric', month: 'short', day: 'numeric' }).format(d);
  const time = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(at);
  const zone = timeZone === 'UTC' ? ' UTC' : '';
  if (day(at) === day(now)) return `${time}${zone}`;
  const short = new Intl.DateTimeFormat('en-GB', { timeZone, month: 'short', day: 'numeric' }).format(at);
  return `${short} ${time}${zone}`;
}

const percent = (p: number) => `${Number(p.toFixed(3))}%`;
const rate = (r: number) => `${Number((r * 100).toFixed(2))}%`;
const list = (xs: string[]) => (xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

function stageLabel(stage: RolloutStage | undefined): string {
  if (!stage) return '';
  return stage.kind === 'whitelist' ? 'testers' : percent(stage.percent);
}

export function pipelineWords(state: ReleaseState, o: WordsOptions): string {
  const now = o.now.getTime();
  const name = (id: string | null | undefined) => (id ? (o.names[id] ?? 'someone') : 'someone');
  const at = (iso: string) => clock(iso, o.now, o.timeZone);
  const submitter = name(state.submitterId);

  switch (state.status) {
    case 'validating':
      return `Checking the package submitted by ${submitter} ${duration(now - Date.parse(state.submittedAt))} ago`;

    case 'in_review': {
      const since = state.reviewRequestedAt ?? state.submittedAt;
      const missing = Math.max(1, state.requiredApprovals - state.approvals.length);
      const approvers = state.approvals.map((a) => name(a.actorId));
      const others = [`${submitter} (the submitter)`, ...(approvers.length ? [`${list(approvers)} (already approved)`] : [])];
      const parts = [
        `Waiting ${duration(now - Date.parse(since))} for ${missing} ${state.approvals.length ? 'more ' : ''}approval${missing === 1 ? '' : 's'} from ${whoCan('version.approve')} other than ${list(others)}`,
      ];
      if (state.approvals.length) parts[0] += ` (${state.approvals.length} of ${state.requiredApprovals} so far)`;
      if (state.slaDueAt) {
        const left = Date.parse(state.slaDueAt) - now;
        parts.push(left >= 0 ? `due in ${duration(left)}` : `overdue by ${duration(-left)}`);
      }
      if (state.remindedAt) parts.push(`reviewers were reminded at ${at(state.remindedAt)}`);
      if (state.escalatedAt) parts.push(`Admins were alerted at ${at(state.escalatedAt)}`);
      return parts.join('; ');
    }

    case 'approved': {
      const by = state.approvals.length ? list(state.approvals.map((a) => name(a.actorId))) : name(state.decidedBy);
      return state.kind === 'release'
        ? `Approved by ${by}; waiting for ${whoCan('version.release')} to start the rollout`
        : `Approved by ${by}; carrying out the ${state.kind}`;
    }

    case 'rolling_out': {
      const r = state.rollout;
      if (!r || r.stageIndex < 0) return 'Starting the rollout';
      const stage = r.plan[r.stageIndex];
      const head = `Stage ${r.stageIndex + 1} of ${r.plan.length} (${stageLabel(stage)})`;
      const last = r.stageIndex === r.plan.length - 1;
      const then = last ? 'then the release completes' : `then advances to ${stageLabel(r.plan[r.stageIndex + 1])}`;
      const limit = `if the crash rate stays under ${rate(o.health.maxCrashRate)} and ${o.health.maxRatioToLive}× the live version's`;
      const soak = r.soakEndsAt ? `soaks until ${at(r.soakEndsAt)}` : 'soaks';
      let words = `${head} ${soak}, ${then} ${limit}`;
      const h = r.lastHealth;
      if (h) {
        words += h.verdict === 'insufficient_data'
          ? `; last check at ${at(h.at)}: ${h.launches} of ${o.health.minLaunches} launches needed for a verdict`
          : `; last check at ${at(h.at)}: ${rate(h.crashRate)} over ${h.launches} launches (live ${rate(h.liveCrashRate)})`;
      }
      return words;
    }

    case 'paused': {
      const r = state.rollout;
      const where = r && r.stageIndex >= 0 ? ` at stage ${r.stageIndex + 1} of ${r.plan.length} (${stageLabel(r.plan[r.stageIndex])})` : '';
      const left = r?.remainingSoakMs != null ? ` with ${duration(r.remainingSoakMs)} of soak left` : '';
      const pausedBy = [...state.timeline].reverse().find((t) => t.action === 'paused');
      const who = pausedBy ? ` by ${name(pausedBy.actorId)} at ${at(pausedBy.at)}` : '';
      return `Paused${where}${who}${left}; waiting for ${whoCan('version.rollout')} to resume, advance or abort`;
    }

    case 'stuck': {
      const s = state.stuck;
      if (!s) return releaseWaitingText.stuck;
      const tries = s.retries ? ` (retried ${s.retries}×)` : '';
      return `Stuck at step '${s.step}' since ${at(s.since)}: ${s.error}${tries}; an operator can retry or abort`;
    }

    case 'released':
      if (state.kind === 'rollback') return `Rolled back${state.releasedAt ? ` at ${at(state.releasedAt)}` : ''}: version ${state.version} is live for everyone`;
      return `Released${state.releasedAt ? ` at ${at(state.releasedAt)}` : ''}: live for everyone`;

    case 'rejected': {
      const rj = state.rejection;
      if (!rj) return `Rejected by ${name(state.decidedBy)}; upload a fixed version and submit it`;
      return `Rejected by ${name(rj.actorId)} at ${at(rj.at)} (${rj.reasonLabel}); upload a fixed version and submit it`;
    }

    case 'withdrawn': {
      const w = [...state.timeline].reverse().find((t) => t.action === 'withdrawn');
      return w ? `Withdrawn by ${name(w.actorId)} at ${at(w.at)}; nothing more will happen` : releaseWaitingText.withdrawn;
    }

    case 'halted': {
      const h = state.rollout?.lastHealth;
      if (!h) return releaseWaitingText.halted;
      return `Halted by its health check at ${at(h.at)}: ${rate(h.crashRate)} crashes over ${h.launches} launches (live ${rate(h.liveCrashRate)}); ${h.reason}. The cohort went back to the previous version`;
    }

    case 'aborted': {
      const a = [...state.timeline].reverse().find((t) => t.action === 'aborted');
      return a ? `Aborted by ${name(a.actorId)} at ${at(a.at)}; the cohort went back to the previous version` : releaseWaitingText.aborted;
    }

    default:
      return state.waitingFor || releaseWaitingText[state.status];
  }
}
