import { describe, expect, it } from 'vitest';
import { Lifecycle } from '../../src/util/lifecycle.js';
import { sleep } from '../../src/util/time.js';
import { expectCode } from '../support/errors.js';

/** A component whose open takes two steps with an await between them, recording what runs. */
function component(): { life: Lifecycle; running: Set<string>; calls: string[] } {
  const running = new Set<string>();
  const calls: string[] = [];
  const life = new Lifecycle('test component', {
    open: async (signal) => {
      calls.push('open');
      running.add('first');
      await sleep(20);
      if (signal.aborted) return;
      running.add('second');
    },
    close: async () => {
      calls.push('close');
      running.clear();
    },
  });
  return { life, running, calls };
}

describe('Lifecycle', () => {
  it('opens once however often ready() is called', async () => {
    const { life, calls } = component();
    await Promise.all([life.ready(), life.ready(), life.ready()]);
    await life.ready();
    expect(calls).toEqual(['open']);
    expect(life.opened).toBe(true);
  });

  it('closes once however often close() is called', async () => {
    const { life, calls } = component();
    await life.ready();
    await Promise.all([life.close(), life.close()]);
    await life.close();
    expect(calls).toEqual(['open', 'close']);
    expect(life.closed).toBe(true);
    expect(life.opened).toBe(false);
    await expectCode(life.ready(), 'CLOSED');
  });

  it('close during open waits for the open, then leaves nothing running', async () => {
    const { life, running, calls } = component();
    const opening = life.ready();
    await sleep(1);
    expect(running.has('first')).toBe(true);
    await life.close();
    expect(calls).toEqual(['open', 'close']);
    expect(running.size).toBe(0);
    await expectCode(opening, 'CLOSED');
  });

  it('a component never opened closes without running either hook, and cannot open after', async () => {
    const { life, calls } = component();
    await life.close();
    expect(calls).toEqual([]);
    await expectCode(life.ready(), 'CLOSED', 'test component is closed');
  });

  it('a failed open still runs close, so a partial open is released', async () => {
    const released: string[] = [];
    const life = new Lifecycle('failing', {
      open: async () => {
        throw new Error('boom');
      },
      close: async () => {
        released.push('close');
      },
    });
    await expect(life.ready()).rejects.toThrow('boom');
    await life.close();
    expect(released).toEqual(['close']);
  });
});
