/** The bound on unfunded private-mode terms (src/paypub/private-offers.ts), as a pure policy. */
import { describe, expect, it } from 'vitest';
import { MAX_PENDING, MAX_PENDING_PER_SOURCE, OfferSources, PENDING_TTL_MS, offersToEvict, sourceKey, type PendingOffer } from '../../src/paypub/private-offers.js';

/** Plays requests against the policy the way the service does: evict, then add. */
class Seller {
  pending: PendingOffer[] = [];
  #n = 0;
  ask(source: string, now: number): string {
    const evicted = new Set(offersToEvict(this.pending, source, now));
    this.pending = this.pending.filter((o) => !evicted.has(o.paymentHash));
    const paymentHash = `offer-${this.#n++}`;
    this.pending.push({ paymentHash, createdAt: now, source });
    return paymentHash;
  }
}

describe('unfunded private terms', () => {
  it('a buyer still gets terms after 1,000 stranger requests, and a buyer elsewhere keeps theirs', () => {
    const s = new Seller();
    let now = 1_000_000;
    const early = s.ask('198.51.100.7', now++);
    for (let i = 0; i < 1000; i++) s.ask('203.0.113.9', now++);
    expect(s.pending.filter((o) => o.source === '203.0.113.9')).toHaveLength(MAX_PENDING_PER_SOURCE);
    expect(s.pending.map((o) => o.paymentHash)).toContain(early);
    // the stranger's own source too: its oldest terms make room
    const late = s.ask('203.0.113.9', now++);
    expect(s.pending.map((o) => o.paymentHash)).toContain(late);
  });

  it('many sources fill the sale: the heaviest source loses its oldest terms first, a lone buyer keeps theirs', () => {
    const s = new Seller();
    let now = 0;
    const buyer = s.ask('198.51.100.7', now++);
    for (let i = 0; i < 1000; i++) s.ask(`10.0.${i % 40}.1`, now++); // 40 sources, more than the sale keeps
    expect(s.pending.length).toBeLessThanOrEqual(MAX_PENDING);
    expect(s.pending.map((o) => o.paymentHash)).toContain(buyer);
  });

  it('one address per request (a sybil) turns the terms over oldest first: fresh terms outlive the next MAX_PENDING - 1 requests', () => {
    const s = new Seller();
    let now = 0;
    for (let i = 0; i < 1000; i++) s.ask(`10.1.${i >> 8}.${i & 255}`, now++);
    const buyer = s.ask('198.51.100.7', now++);
    for (let i = 0; i < MAX_PENDING - 1; i++) {
      s.ask(`10.2.0.${i}`, now++);
      expect(s.pending.map((o) => o.paymentHash)).toContain(buyer);
    }
    s.ask('10.3.0.1', now++);
    expect(s.pending.map((o) => o.paymentHash)).not.toContain(buyer);
  });

  it('terms expire after the TTL and terms from before a restart go first', () => {
    const old: PendingOffer[] = [{ paymentHash: 'old', createdAt: 0, source: '' }, { paymentHash: 'fresh', createdAt: PENDING_TTL_MS, source: 'a' }];
    expect(offersToEvict(old, 'b', PENDING_TTL_MS + 1)).toEqual(['old']);
    const full: PendingOffer[] = Array.from({ length: MAX_PENDING }, (_, i) => ({ paymentHash: `h${i}`, createdAt: 10 + i, source: i === 63 ? '' : `s${i}` }));
    expect(offersToEvict(full, 'new', 100)).toEqual(['h63']);
  });

  it('keys sources by IPv4 address and IPv6 /64', () => {
    expect(sourceKey('203.0.113.9')).toBe('203.0.113.9');
    expect(sourceKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(sourceKey('2001:db8:0:1:aaaa::1')).toBe(sourceKey('2001:db8:0:1:bbbb:cccc:dddd:eeee'));
    expect(sourceKey('2001:db8:0:1::1')).not.toBe(sourceKey('2001:db8:0:2::1'));
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    const sources = new OfferSources();
    sources.record('h', 'x');
    expect(sources.view([{ paymentHash: 'h', createdAt: 1 }, { paymentHash: 'g', createdAt: 2 }]).map((o) => o.source)).toEqual(['x', '']);
  });
});
