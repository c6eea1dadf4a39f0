import { describe, expect, it } from 'vitest';
import { MailHub, type MailAddress } from '../../src/feature/mail.js';

describe('MailHub', () => {
  const addr: MailAddress = { provider: new Uint8Array(32).fill(1), mailbox: new Uint8Array(32).fill(2) };

  it('hands each message to the handler of its kind, and nothing else', () => {
    const hub = new MailHub();
    const got: number[][] = [];
    hub.on(0x50, (_from, plain) => got.push([...plain]));
    expect(hub.deliver(new Uint8Array(32), new Uint8Array([0x50, 7]))).toBe(true);
    expect(hub.deliver(new Uint8Array(32), new Uint8Array([0x51, 7]))).toBe(false);
    expect(hub.deliver(new Uint8Array(32), new Uint8Array(0))).toBe(false);
    expect(got).toEqual([[0x50, 7]]);
    expect(() => hub.on(0x50, () => undefined)).toThrow();
    hub.off(0x50);
    expect(hub.deliver(new Uint8Array(32), new Uint8Array([0x50]))).toBe(false);
  });

  it('a handler that throws does not reach the channel', () => {
    const hub = new MailHub();
    hub.on(1, () => {
      throw new Error('bug');
    });
    expect(hub.deliver(new Uint8Array(32), new Uint8Array([1]))).toBe(true);
  });

  it('sends through the attached channel only', async () => {
    const hub = new MailHub();
    expect(hub.own()).toBeNull();
    await expect(hub.send(addr, new Uint8Array([1]))).rejects.toThrow(/no channel/);
    const sent: Uint8Array[] = [];
    hub.attach({ own: () => addr, send: async (_to, plain) => void sent.push(plain) });
    expect(hub.own()).toBe(addr);
    await hub.send(addr, new Uint8Array([9]));
    expect(sent).toEqual([new Uint8Array([9])]);
    hub.attach(null);
    expect(hub.own()).toBeNull();
  });
});
