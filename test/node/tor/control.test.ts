import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ReplyParser,
  TorControl,
  parseBootstrap,
  parseControlAddress,
  parseKeyValues,
  quoteString,
} from '../../../src/node/tor/control.js';
import { DeaddropError } from '../../../src/util/errors.js';
import { expectCode } from '../../support/errors.js';
import { NodeTor } from '../../../src/node/tor/node-tor.js';

describe('tor control reply parser', () => {
  it('parses single-line, multi-line and data-block replies, also when split across chunks', () => {
    const p = new ReplyParser();
    const text =
      '250 OK\r\n' +
      '250-version=0.4.9.11\r\n250-net/listeners/socks="127.0.0.1:9050"\r\n250 OK\r\n' +
      '250+ns/all=\r\nr relay1 AAAA\r\n..dotted\r\ns Fast Running\r\n.\r\n250 OK\r\n';
    const replies = [...text].flatMap((ch) => p.push(ch));
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250]);
    expect(replies[1]!.lines.map((l) => l.text)).toEqual(['version=0.4.9.11', 'net/listeners/socks="127.0.0.1:9050"', 'OK']);
    expect(replies[2]!.lines[0]).toEqual({ code: 250, text: 'ns/all=', data: 'r relay1 AAAA\n.dotted\ns Fast Running' });
  });

  it('reports error codes and asynchronous events as their own replies', () => {
    const p = new ReplyParser();
    const r = p.push('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"\r\n552 Unrecognized key "x"\r\n');
    expect(r.map((x) => x.code)).toEqual([650, 552]);
  });

  it('rejects malformed lines and replies that mix codes with a clear error', () => {
    expect(() => new ReplyParser().push('hello\r\n')).toThrow(/malformed reply line/);
    expect(() => new ReplyParser().push('25 OK\r\n')).toThrow(DeaddropError);
    expect(() => new ReplyParser().push('250-a=1\r\n251 OK\r\n')).toThrow(/mixes codes/);
  });

  it('rejects an oversize reply instead of buffering without bound', () => {
    const p = new ReplyParser();
    const line = `250-x=${'a'.repeat(1 << 20)}\r\n`;
    expect(() => {
      for (let i = 0; i < 10; i++) p.push(line);
    }).toThrow(/too large/);
  });
});

describe('tor control helpers', () => {
  it('reads key=value pairs with quoted values', () => {
    expect(parseKeyValues('METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/var/lib/tor/control \\"auth\\" cookie"')).toEqual({
      METHODS: 'COOKIE,SAFECOOKIE',
      COOKIEFILE: '/var/lib/tor/control "auth" cookie',
    });
  });

  it('parses bootstrap status lines and refuses others', () => {
    expect(parseBootstrap('NOTICE BOOTSTRAP PROGRESS=75 TAG=enough_dirinfo SUMMARY="Loaded enough directory info to build circuits"')).toEqual({
      progress: 75,
      tag: 'enough_dirinfo',
      summary: 'Loaded enough directory info to build circuits',
    });
    expect(parseBootstrap('NOTICE CIRCUIT_ESTABLISHED')).toBeNull();
    expect(parseBootstrap('NOTICE BOOTSTRAP PROGRESS=140 TAG=x')).toBeNull();
  });

  it('parses control addresses and rejects bad ones', () => {
    expect(parseControlAddress('9051')).toEqual({ host: '127.0.0.1', port: 9051 });
    expect(parseControlAddress('127.0.0.1:9151')).toEqual({ host: '127.0.0.1', port: 9151 });
    expect(parseControlAddress('[::1]:9051')).toEqual({ host: '::1', port: 9051 });
    expect(parseControlAddress('unix:/run/tor/control')).toEqual({ path: '/run/tor/control' });
    expect(() => parseControlAddress('host:99999')).toThrow(/host:port/);
    expect(() => parseControlAddress('a b:1')).toThrow(DeaddropError);
  });

  it('quotes strings and refuses line breaks', () => {
    expect(quoteString('pa"ss\\w')).toBe('"pa\\"ss\\\\w"');
    expect(() => quoteString('a\r\nQUIT')).toThrow(/line break/);
  });
});

/** A scripted control port: answers each received line with the next canned reply. */
async function fakeTor(answer: (line: string) => string): Promise<{ server: Server; port: number; lines: string[]; sockets: Socket[] }> {
  const lines: string[] = [];
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        lines.push(line);
        s.write(answer(line));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, lines, sockets };
}

describe('tor control client (against a scripted port)', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  it('keeps the onion key out of errors and rejects a reply without ServiceID', async () => {
    const fake = await fakeTor((line) => (line.startsWith('ADD_ONION') ? '512 Bad arguments to ADD_ONION\r\n' : '250 OK\r\n'));
    servers.push(fake.server);
    const c = await TorControl.connect({ host: '127.0.0.1', port: fake.port });
    await c.authenticate({ password: 'secret "pw"' });
    expect(fake.lines[0]).toBe('AUTHENTICATE "secret \\"pw\\""');
    const err = await expectCode(c.addOnion(new Uint8Array(32).fill(7), [{ virtualPort: 80, target: '127.0.0.1:1234' }]), 'REJECTED');
    expect(err.message).toBe('tor refused ADD_ONION: 512 Bad arguments to ADD_ONION');
    expect(fake.lines[1]).toMatch(/^ADD_ONION ED25519-V3:\S{88} Flags=Detach,DiscardPK Port=80,127.0.0.1:1234$/);
    expect(err.message).not.toContain(fake.lines[1]!.split(' ')[1]!.slice(11, 30));
    c.close();
  });

  it('returns GETINFO values, demands every key, and dispatches bootstrap events', async () => {
    const fake = await fakeTor((line) => {
      if (line === 'GETINFO version') return '650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY="Loading"\r\n250-version=0.4.9.11\r\n250 OK\r\n';
      if (line === 'GETINFO config-file') return '250 OK\r\n';
      return '250 OK\r\n';
    });
    servers.push(fake.server);
    const c = await TorControl.connect({ host: '127.0.0.1', port: fake.port });
    const seen: number[] = [];
    c.on('bootstrap', (b) => seen.push(b.progress));
    expect(await c.getInfo('version')).toEqual({ version: '0.4.9.11' });
    expect(seen).toEqual([50]);
    await expect(c.getInfo('config-file')).rejects.toThrow(/lacks config-file/);
    await expect(c.getInfo('bad key')).rejects.toThrow(/bad GETINFO key/);
    c.close();
  });

  it('fails pending commands with CLOSED when tor goes away, and on a garbage reply', async () => {
    const fake = await fakeTor((line) => (line === 'GETINFO version' ? 'garbage\r\n' : ''));
    servers.push(fake.server);
    const c = await TorControl.connect({ host: '127.0.0.1', port: fake.port });
    let closed = false;
    c.on('close', () => (closed = true));
    await expect(c.getInfo('version')).rejects.toThrow(/malformed reply line/);
    expect(closed).toBe(true);
    await expectCode(c.getInfo('version'), 'CLOSED');

    const c2 = await TorControl.connect({ host: '127.0.0.1', port: fake.port });
    const pending = c2.command('SIGNAL NEWNYM');
    await new Promise((r) => setTimeout(r, 50));
    for (const s of fake.sockets) s.destroy();
    await expectCode(pending, 'CLOSED');
  });

  it('gives a clear error when nothing listens', async () => {
    const fake = await fakeTor(() => '');
    const port = fake.port;
    await new Promise((r) => fake.server.close(r));
    await expectCode(TorControl.connect({ host: '127.0.0.1', port }), 'BACKEND_UNREACHABLE');
  });
});

describe('NodeTor lifecycle', () => {
  it('an open that fails after connecting closes the control connection it opened', async () => {
    const fake = await fakeTor((line) => {
      if (line.startsWith('GETINFO net/listeners/socks')) return '250-net/listeners/socks="127.0.0.1:9050"\r\n250 OK\r\n';
      if (line.startsWith('SETEVENTS')) return '552 Unrecognized event "STATUS_CLIENT"\r\n';
      return '250 OK\r\n';
    });
    try {
      const closed: Socket[] = [];
      await expect(NodeTor.open({ control: `127.0.0.1:${fake.port}` }, '/nonexistent-datadir', () => undefined)).rejects.toThrow();
      await expect.poll(() => {
        for (const s of fake.sockets) if (s.closed && !closed.includes(s)) closed.push(s);
        return closed.length;
      }).toBe(fake.sockets.length);
      expect(fake.sockets.length).toBe(1);
    } finally {
      await new Promise((r) => fake.server.close(r));
    }
  });
});
