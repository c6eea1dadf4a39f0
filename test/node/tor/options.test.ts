import { describe, expect, it } from 'vitest';
import { torOptionsFromFlags } from '../../../src/node/tor/options.js';
import { NodeTor } from '../../../src/node/tor/node-tor.js';
import { expectCode } from '../../support/errors.js';

describe('tor options of deaddrop start', () => {
  it('is off without flags; --tor-control and --tor-only imply --tor', () => {
    expect(torOptionsFromFlags({}, {})).toBeUndefined();
    expect(torOptionsFromFlags({ tor: true }, {})).toEqual({ only: false });
    expect(torOptionsFromFlags({ torOnly: true }, {})).toEqual({ only: true });
    expect(torOptionsFromFlags({ torControl: '127.0.0.1:9051' }, { DEADDROP_TOR_PASSWORD: 'pw' })).toEqual({
      control: '127.0.0.1:9051', controlPassword: 'pw', only: false,
    });
  });

  it('rejects a bad control address before anything starts', () => {
    expect(() => torOptionsFromFlags({ torControl: 'nowhere:0' }, {})).toThrow(/host:port or unix/);
  });

  it('fails with a clear error when no tor answers at --tor-control', async () => {
    await expectCode(NodeTor.open({ control: '127.0.0.1:9' }, '/nonexistent', () => undefined), 'BACKEND_UNREACHABLE');
  });
});
