import { describe, expect, it } from 'vitest';
import { Backoff, ReportThrottle, sleep } from '../../src/util/time.js';

describe('sleep', () => {
  it('rejects with the abort reason when the signal aborts', async () => {
    const ac = new AbortController();
    const pending = sleep(10_000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
  });
  it('rejects at once on an aborted signal', async () => {
    await expect(sleep(10, AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });
});

describe('Backoff', () => {
  it('doubles up to the ceiling and starts again after reset', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 500 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 500, 500]);
    b.reset();
    expect(b.next()).toBe(100);
  });
  it('refuses a ceiling below the first delay', () => {
    expect(() => new Backoff({ initialMs: 100, maxMs: 50 })).toThrow(RangeError);
  });
});

describe('ReportThrottle', () => {
  it('lets one report through per interval, and a forced one at any time', () => {
    const t = new ReportThrottle(250);
    expect(t.take(false, 1_000)).toBe(true);
    expect(t.take(false, 1_100)).toBe(false);
    expect(t.take(false, 1_249)).toBe(false);
    expect(t.take(true, 1_260)).toBe(true);
    // the forced report restarts the interval
    expect(t.take(false, 1_400)).toBe(false);
    expect(t.take(false, 1_510)).toBe(true);
  });
});
