/**
 * A token bucket: `rate` tokens a second up to `burst`, starting full. The mixnet uses one per
 * link (packets a peer may send a mix) and one per contact (packets the feed relay may send).
 */
export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  #tokens: number;
  #at: number;

  constructor(rate: number, burst: number, now = Date.now()) {
    this.rate = rate;
    this.burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Tokens now (negative while a debt from {@link spend} is being paid back). */
  available(now = Date.now()): number {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    return this.#tokens;
  }

  /** Takes `cost` tokens (at most the whole burst, so no single cost is refused for ever) if there are as many. */
  take(cost = 1): boolean {
    const c = Math.min(cost, this.burst);
    if (this.available() < c) return false;
    this.#tokens -= c;
    return true;
  }

  /** Takes up to `n` whole tokens; returns how many it took. */
  takeUpTo(n: number): number {
    const granted = Math.max(0, Math.min(n, Math.floor(this.available())));
    this.#tokens -= granted;
    return granted;
  }

  /** Spends `n` tokens whether or not they are there (the debt delays what follows). */
  spend(n = 1): void {
    this.#tokens -= n;
  }
}
