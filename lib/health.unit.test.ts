import { describe, expect, it } from 'vitest';
import { evaluateHealth } from './health.js';

const t = { maxCrashRate: 0.0109, maxRatioToLive: 2, minLaunches: 200 };
const quietLive = { liveLaunches: 0, liveCrashes: 0 };

describe('evaluateHealth', () => {
  it('gives no verdict below the minimum launches, even with many crashes', () => {
    const r = evaluateHealth({ launches: 199, crashes: 150, ...quietLive }, t);
    expect(r.verdict).toBe('insufficient_data');
    expect(r.reason).toBe('only 199 launches of the new version so far (150 crashes); the check judges from 200');
    expect(evaluateHealth({ launches: 0, crashes: 0, ...quietLive }, t)).toMatchObject({ verdict: 'insufficient_data', crashRate: 0 });
  });

  it('judges from exactly the minimum launches', () => {
    expect(evaluateHealth({ launches: 200, crashes: 0, ...quietLive }, t).verdict).toBe('green');
  });

  it('goes red above the absolute limit, with the figures in words', () => {
    const r = evaluateHealth({ launches: 500, crashes: 12, ...quietLive }, t);
    expect(r).toMatchObject({ verdict: 'red', launches: 500, crashes: 12, crashRate: 0.024 });
    expect(r.reason).toBe('crash rate 2.40% (12 crashes / 500 launches) is above the 1.09% limit');
  });

  it('is green at exactly the absolute limit and red just above it', () => {
    expect(evaluateHealth({ launches: 10_000, crashes: 109, ...quietLive }, t).verdict).toBe('green');
    expect(evaluateHealth({ launches: 10_000, crashes: 110, ...quietLive }, t).verdict).toBe('red');
  });

  it('goes red above twice the live rate when the live version has enough launches', () => {
    const r = evaluateHealth({ launches: 1000, crashes: 7, liveLaunches: 1000, liveCrashes: 3 }, t);
    expect(r.verdict).toBe('red');
    expect(r.liveCrashRate).toBe(0.003);
    expect(r.reason).toBe("crash rate 0.70% (7 crashes / 1,000 launches) is above 2× the live version's 0.30% (3 crashes / 1,000 launches)");
  });

  it('is green at exactly twice the live rate', () => {
    expect(evaluateHealth({ launches: 1000, crashes: 6, liveLaunches: 1000, liveCrashes: 3 }, t).verdict).toBe('green');
  });

  it('ignores the ratio when the live version has too few launches', () => {
    const r = evaluateHealth({ launches: 1000, crashes: 7, liveLaunches: 199, liveCrashes: 1 }, t);
    expect(r.verdict).toBe('green');
    expect(r.reason).toContain('too few launches to compare');
  });

  it('ignores the ratio when the live version has no crashes', () => {
    const r = evaluateHealth({ launches: 1000, crashes: 5, liveLaunches: 5000, liveCrashes: 0 }, t);
    expect(r.verdict).toBe('green');
    expect(r.reason).toContain('had no crashes');
  });

  it('names both rules when both trip', () => {
    const r = evaluateHealth({ launches: 1000, crashes: 30, liveLaunches: 1000, liveCrashes: 5 }, t);
    expect(r.verdict).toBe('red');
    expect(r.reason).toMatch(/above the 1\.09% limit and is above 2× the live version's 0\.50%/);
  });

  it('uses the default thresholds when none are given', () => {
    expect(evaluateHealth({ launches: 200, crashes: 3, ...quietLive }).verdict).toBe('red');
    expect(evaluateHealth({ launches: 199, crashes: 3, ...quietLive }).verdict).toBe('insufficient_data');
  });

  it('green reasons name the limit and the comparison', () => {
    const r = evaluateHealth({ launches: 500, crashes: 1, liveLaunches: 2000, liveCrashes: 4 }, t);
    expect(r.verdict).toBe('green');
    expect(r.reason).toBe("crash rate 0.20% (1 crash / 500 launches) is within the 1.09% limit and 2× the live version's 0.20% (4 crashes / 2,000 launches)");
  });
});
