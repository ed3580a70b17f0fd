import { describe, expect, it } from 'vitest';
import { clock, duration, pipelineWords, whoCan } from './pipeline-words.js';
import { defaultHealth, defaultPlan, type ReleaseState } from '../workflows/contracts/release.js';
import { slaClock } from '../api/pipeline-view.js';

const now = new Date('2026-03-10T14:30:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();
const later = (ms: number) => new Date(now.getTime() + ms).toISOString();
const h = 3600_000;
const names = { dana: 'Dana', rita: 'Rita', sam: 'Sam', alice: 'Alice' };

function state(over: Partial<ReleaseState> = {}): ReleaseState {
  return {
    kind: 'release', pipelineId: 'release:ver_1', versionId: 'ver_1', miniProgramId: 'mp_1', workspaceId: 'ws_1', version: '1.2.0', status: 'in_review', hotfix: false,
    submitterId: 'dana', submittedAt: ago(5 * h + 13 * 60_000), reason: null, baselineVersionId: null, reviewRequestedAt: ago(5 * h + 12 * 60_000),
    slaDueAt: later(18 * h), remindedAt: null, escalatedAt: null, requiredApprovals: 1, approvals: [], rejection: null, decidedBy: null, decisionComment: null,
    releasedAt: null, rollout: null, stuck: null, waitingFor: '', timeline: [], seq: 3, ...over,
  };
}
const words = (s: ReleaseState) => pipelineWords(s, { names, now, health: defaultHealth });

describe('pipeline words', () => {
  it('writes durations and clock times a person reads', () => {
    expect(duration(40_000)).toBe('40 s');
    expect(duration(3 * 60_000)).toBe('3 min');
    expect(duration(5 * h + 12 * 60_000)).toBe('5 h 12 min');
    expect(duration(52 * h)).toBe('2 d 4 h');
    expect(clock('2026-03-10T14:02:00Z', now)).toBe('14:02 UTC');
    expect(clock('2026-03-08T09:05:00Z', now)).toBe('8 Mar 09:05 UTC');
  });

  it('names who may approve from the permission table', () => {
    expect(whoCan('version.approve')).toBe('a Reviewer or Admin');
  });

  it('says how long a review waited, for how many approvals, from whom, and when it is due', () => {
    expect(words(state())).toBe('Waiting 5 h 12 min for 1 approval from a Reviewer or Admin other than Dana (the submitter); due in 18 h');
    const two = state({ requiredApprovals: 2, approvals: [{ actorId: 'rita', at: ago(h), comment: null }], remindedAt: '2026-03-10T14:02:00Z' });
    expect(words(two)).toBe(
      'Waiting 5 h 12 min for 1 more approval from a Reviewer or Admin other than Dana (the submitter) and Rita (already approved) (1 of 2 so far); due in 18 h; reviewers were reminded at 14:02 UTC',
    );
    const late = state({ slaDueAt: ago(2 * h), escalatedAt: ago(h) });
    expect(words(late)).toMatch(/overdue by 2 h; Admins were alerted at 13:30 UTC$/);
  });

  it('describes a soaking stage with its limit and a paused or stuck pipeline with who can act', () => {
    const rollout = { plan: defaultPlan(h), stageIndex: 1, stageStartedAt: ago(20 * 60_000), soakEndsAt: '2026-03-10T15:40:00Z', remainingSoakMs: null, percent: 5, whitelist: false, lastHealth: null };
    expect(words(state({ status: 'rolling_out', rollout }))).toBe(
      "Stage 2 of 5 (5%) soaks until 15:40 UTC, then advances to 20% if the crash rate stays under 1.09% and 2× the live version's",
    );
    const paused = state({ status: 'paused', rollout: { ...rollout, soakEndsAt: null, remainingSoakMs: 35 * 60_000 }, timeline: [{ at: ago(5 * 60_000), status: 'paused', actorId: 'sam', action: 'paused' }] });
    expect(words(paused)).toBe('Paused at stage 2 of 5 (5%) by Sam at 14:25 UTC with 35 min of soak left; waiting for a Developer, Admin or owner of the mini program to resume, advance or abort');
    const stuck = state({ status: 'stuck', stuck: { step: 'notify reviewers', error: 'SMTP refused (550)', since: '2026-03-10T14:10:00Z', resumeStatus: 'in_review', retries: 0 } });
    expect(words(stuck)).toBe("Stuck at step 'notify reviewers' since 14:10 UTC: SMTP refused (550); an operator can retry or abort");
  });

  it('says who rejected and why', () => {
    const rejected = state({ status: 'rejected', rejection: { actorId: 'rita', at: '2026-03-10T13:00:00Z', reasonCode: 'crash_or_bug', reasonLabel: 'Crashes or functional bug', comment: 'Crashes on pay', attachment: null } });
    expect(words(rejected)).toBe('Rejected by Rita at 13:00 UTC (Crashes or functional bug); upload a fixed version and submit it');
  });
});

describe('SLA clock', () => {
  it('runs while in review and stops at the decision', () => {
    expect(slaClock(state(), now)).toEqual({ waitedMs: 5 * h + 12 * 60_000, dueAt: later(18 * h), overdue: false });
    const decided = state({
      status: 'approved', slaDueAt: ago(3 * h), reviewRequestedAt: ago(6 * h),
      timeline: [{ at: ago(2 * h), status: 'approved', actorId: 'rita', action: 'approved' }],
    });
    expect(slaClock(decided, now)).toEqual({ waitedMs: 4 * h, dueAt: ago(3 * h), overdue: true });
    expect(slaClock(state({ reviewRequestedAt: null }), now)).toBeNull();
  });
});
