import { afterEach, describe, expect, it, vi } from 'vitest';
import { TokenBucket } from '../../src/util/token-bucket.js';

describe('TokenBucket', () => {
  afterEach(() => vi.useRealTimers());

  it('starts full, refills at its rate up to the burst, and grants whole tokens only', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const b = new TokenBucket(10, 5);
    expect(b.takeUpTo(8)).toBe(5);
    expect(b.take()).toBe(false);
    vi.advanceTimersByTime(150); // 1.5 tokens
    expect(b.takeUpTo(8)).toBe(1);
    vi.advanceTimersByTime(10_000);
    expect(b.available()).toBe(5); // never above the burst
  });

  it('takes a cost above the burst as the whole burst, so it is not refused for ever', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const b = new TokenBucket(10, 5);
    expect(b.take(100)).toBe(true);
    expect(b.take()).toBe(false);
  });

  it('spends into debt, which the rate pays back before anything more is granted', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const b = new TokenBucket(10, 5);
    b.spend(9);
    expect(b.available()).toBe(-4);
    vi.advanceTimersByTime(400);
    expect(b.takeUpTo(1)).toBe(0);
    vi.advanceTimersByTime(100);
    expect(b.takeUpTo(1)).toBe(1);
  });
});
