import { describe, expect, it } from 'vitest';
import { UsageError } from './args.js';
import { ApiError, NetworkError, backoffMs, defaultRetry, withRetry } from './client.js';
import { ExitCode, NotSignedIn, exitCodeOf } from './exit-codes.js';
import { formatEntry, rolloutLine, summaryLines, terminalStatuses } from './watch.js';
import type { Pipeline } from './client.js';

describe('exit codes', () => {
  it('map every kind of failure to its documented code', () => {
    expect(exitCodeOf(new UsageError('x'))).toBe(ExitCode.usage);
    expect(exitCodeOf(new NotSignedIn())).toBe(ExitCode.auth);
    expect(exitCodeOf(new ApiError(401, 'invalid_token', 'x'))).toBe(2);
    expect(exitCodeOf(new ApiError(403, 'forbidden', 'x'))).toBe(2);
    expect(exitCodeOf(new ApiError(404, 'not_found', 'x'))).toBe(3);
    expect(exitCodeOf(new ApiError(409, 'wrong_state', 'x'))).toBe(4);
    expect(exitCodeOf(new ApiError(400, 'package_page_missing', 'x'))).toBe(1);
    expect(exitCodeOf(new ApiError(413, 'package_too_large', 'x'))).toBe(1);
    expect(exitCodeOf(new ApiError(503, 'unavailable', 'x'))).toBe(6);
    expect(exitCodeOf(new ApiError(429, 'rate_limited', 'x'))).toBe(6);
    expect(exitCodeOf(new NetworkError('x', 'ECONNRESET'))).toBe(6);
  });
});

describe('retries', () => {
  it('back off exponentially with jitter, capped, and honour Retry-After', () => {
    const mid = () => 0.5;
    expect([2, 3, 4, 5, 6, 7].map((a) => backoffMs(defaultRetry, a, new NetworkError('x', 'x'), mid))).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
    expect(backoffMs(defaultRetry, 2, new NetworkError('x', 'x'), () => 0)).toBe(400);
    expect(backoffMs(defaultRetry, 2, new NetworkError('x', 'x'), () => 1)).toBe(600);
    expect(backoffMs(defaultRetry, 2, new ApiError(503, 'unavailable', 'x', {}, undefined, 3))).toBe(3000);
  });

  it('retry only what may succeed next time, up to the policy', async () => {
    const policy = { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 };
    let n = 0;
    await expect(withRetry(policy, async () => {
      n += 1;
      throw new NetworkError('drop', 'ECONNRESET');
    })).rejects.toThrow('drop');
    expect(n).toBe(3);
    n = 0;
    await expect(withRetry(policy, async () => {
      n += 1;
      throw new ApiError(409, 'wrong_state', 'no');
    })).rejects.toThrow('no');
    expect(n).toBe(1);
    const notices: number[] = [];
    expect(await withRetry(policy, async (attempt) => {
      if (attempt < 3) throw new ApiError(502, 'http_502', 'bad gateway');
      return attempt;
    }, ({ attempt }) => notices.push(attempt))).toBe(3);
    expect(notices).toEqual([2, 3]);
  });
});

describe('pipeline lines', () => {
  const base: Pipeline = { status: 'rolling_out', waitingFor: 'Rolling out', timeline: [] };

  it('say where a rollout is', () => {
    const soakEndsAt = new Date(2030, 0, 2, 14, 5, 0).toISOString();
    const rollout = { plan: [{ kind: 'whitelist' as const, percent: 0, soakMs: 1 }, { kind: 'percent' as const, percent: 5, soakMs: 1 }], stageIndex: 1, stageStartedAt: null, soakEndsAt, remainingSoakMs: null, percent: 5, whitelist: true, lastHealth: null };
    expect(rolloutLine({ ...base, rollout })).toBe('stage 2/2: 5% of users + testers, soaking until 14:05:00');
    expect(rolloutLine({ ...base, rollout: { ...rollout, stageIndex: 0, percent: 0 } })).toBe('stage 1/2: testers only, soaking until 14:05:00');
    expect(rolloutLine({ ...base, status: 'paused', rollout: { ...rollout, soakEndsAt: null, remainingSoakMs: 61_500 } })).toBe('stage 2/2: 5% of users + testers, paused with 62 s of soak left');
    expect(rolloutLine(base)).toBeNull();
    expect(summaryLines({ ...base, hotfix: true, waitingWords: 'Soaking 5% until 14:05', rollout })).toEqual([
      'Status: rolling_out (hotfix)', 'Waiting for: Soaking 5% until 14:05', 'Rollout: stage 2/2: 5% of users + testers, soaking until 14:05:00',
    ]);
  });

  it('print health figures and names from the pipeline', () => {
    const at = new Date(2030, 0, 2, 9, 0, 0).toISOString();
    const health = { at, launches: 400, crashes: 12, crashRate: 0.03, liveLaunches: 1000, liveCrashes: 5, liveCrashRate: 0.005, verdict: 'red', reason: 'above 1.09%' };
    expect(formatEntry({ at, status: 'halted', actorId: null, action: 'halted', data: health })).toBe('2030-01-02 09:00:00  halted      halted [red: 12/400 crashes = 3%, live 0.5%; above 1.09%]');
    expect(formatEntry({ at, status: 'in_review', actorId: 'usr_1', action: 'approval_recorded', comment: 'ok' }, { usr_1: 'Rita' })).toBe('2030-01-02 09:00:00  in_review   approval_recorded by Rita: "ok"');
  });

  it('stop on every terminal status of the workflow contract', () => {
    expect([...terminalStatuses].sort()).toEqual(['aborted', 'halted', 'invalid', 'offline', 'rejected', 'released', 'superseded', 'withdrawn']);
  });
});
