/**
 * A complete private Tor network on 127.0.0.1 for the integration tests, built the way Tor's own
 * test tool (chutney, layout hs-v3-min) builds one, with the options measured in
 * /work/shared/notes/network.md: 3 directory authorities (keys from tor-gencert), 3 relays
 * (2 exits that allow 127.0.0.0/8), `TestingTorNetwork 1`, short voting intervals,
 * `AssumeReachable 1` on relays, `VanguardsLiteEnabled 0` on clients and onion hosts, empty
 * GeoIP files. Start it once per test file ({@link startTorNetwork}); it is ready when a client's
 * consensus lists every relay. {@link TorNetwork.stop} leaves no tor process behind, and every
 * tor started here also exits by itself when the test process dies (__OwningControllerProcess).
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../src/regtest/harness.js';
import { TorProcess } from '../../src/node/tor/process.js';
import { waitUntil } from './wait.js';

const run = promisify(execFile);

/** Whether tor and tor-gencert are installed (regtest/install-tor.sh installs them). */
export function torAvailable(): boolean {
  return spawnSync('tor', ['--version']).status === 0 && spawnSync('tor-gencert', ['--help']).error === undefined;
}

/** Options every instance of the network shares. */
function commonTorrc(dirAuthorities: readonly string[], geoip: string): string[] {
  return [
    'TestingTorNetwork 1',
    'PathsNeededToBuildCircuits 0.67',
    'TestingDirAuthVoteExit *',
    'TestingDirAuthVoteGuard *',
    'TestingDirAuthVoteHSDir *',
    'TestingMinExitFlagThreshold 0',
    'V3AuthNIntervalsValid 2',
    `GeoIPFile ${geoip}`,
    `GeoIPv6File ${geoip}`,
    ...dirAuthorities,
  ];
}

interface NodeSpec {
  nick: string;
  dir: string;
  orPort: number;
  dirPort: number;
  role: 'authority' | 'exit' | 'middle';
}

export interface TorNetwork {
  /** torrc lines a client or onion host of this network needs (pass to TorProcess.start). */
  readonly clientTorrc: readonly string[];
  /** A bootstrapped client of the network (SOCKS and control), for the tests' own use. */
  readonly client: TorProcess;
  /** Nicknames of every relay (authorities included). */
  readonly relays: readonly string[];
  /** Seconds from start to ready. */
  readonly startSeconds: number;
  /** The network's root directory (a data dir per instance below it). */
  readonly root: string;
  /** Starts another client/onion host on this network (stopped by {@link stop}). */
  startClient(name: string): Promise<TorProcess>;
  /** Waits until `tor` has bootstrapped to 100% and its consensus lists every relay. */
  waitReady(tor: TorProcess, timeoutMs?: number): Promise<void>;
  /** Stops every instance and removes the directory (idempotent). */
  stop(): Promise<void>;
}

/** Starts the network and resolves once its first client is ready (about 15-30 s). */
export async function startTorNetwork(opts: { relays?: number; exits?: number } = {}): Promise<TorNetwork> {
  const t0 = Date.now();
  const root = await mkdtemp(join(tmpdir(), 'deaddrop-tornet-'));
  const procs: TorProcess[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(procs.map((p) => p.stop(3_000)));
    await rm(root, { recursive: true, force: true });
  };
  try {
    const geoip = join(root, 'geoip-empty');
    await writeFile(geoip, '');
    const specs: NodeSpec[] = [];
    const relayCount = opts.relays ?? 3;
    const exitCount = opts.exits ?? 2;
    for (let i = 0; i < 3 + relayCount; i++) {
      const role = i < 3 ? 'authority' : i - 3 < exitCount ? 'exit' : 'middle';
      const nick = `${role === 'authority' ? 'auth' : role}${i}`;
      specs.push({ nick, dir: join(root, nick), orPort: await freePort(), dirPort: await freePort(), role });
    }
    // Authority keys: a v3 identity and signing key from tor-gencert, the relay identity key
    // (its fingerprint) from tor --list-fingerprint in the same data directory.
    const dirAuthorities: string[] = [];
    const fingerprints = new Map<string, string>();
    for (const s of specs) {
      await mkdir(join(s.dir, 'keys'), { recursive: true, mode: 0o700 });
      await run('tor', ['--quiet', '--ignore-missing-torrc', '-f', '/dev/null', '--DataDirectory', s.dir, '--list-fingerprint', '--ORPort', '1', '--DirAuthority', 'x 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff']);
      const fpr = (await readFile(join(s.dir, 'fingerprint'), 'utf8')).trim().split(/\s+/)[1] as string;
      fingerprints.set(s.nick, fpr);
      if (s.role !== 'authority') continue;
      const k = (f: string): string => join(s.dir, 'keys', f);
      await new Promise<void>((resolve, reject) => {
        const child = execFile(
          'tor-gencert',
          ['--create-identity-key', '-m', '12', '-a', `127.0.0.1:${s.dirPort}`, '-i', k('authority_identity_key'), '-s', k('authority_signing_key'), '-c', k('authority_certificate'), '--passphrase-fd', '0'],
          (err) => (err ? reject(err) : resolve()),
        );
        child.stdin?.end('\n');
      });
      const cert = await readFile(k('authority_certificate'), 'utf8');
      const v3ident = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1];
      if (!v3ident) throw new Error(`tor-gencert wrote no fingerprint for ${s.nick}`);
      dirAuthorities.push(`DirAuthority ${s.nick} orport=${s.orPort} no-v2 v3ident=${v3ident} 127.0.0.1:${s.dirPort} ${fpr}`);
    }
    const common = commonTorrc(dirAuthorities, geoip);
    const voting = ['V3AuthVotingInterval 10', 'V3AuthVoteDelay 2', 'V3AuthDistDelay 2', 'TestingV3AuthInitialVotingInterval 10', 'TestingV3AuthInitialVoteDelay 2', 'TestingV3AuthInitialDistDelay 2'];
    await Promise.all(
      specs.map(async (s) => {
        const lines = [
          ...common,
          `Nickname ${s.nick}`,
          'Address 127.0.0.1',
          `ORPort 127.0.0.1:${s.orPort}`,
          `DirPort 127.0.0.1:${s.dirPort}`,
          'AssumeReachable 1',
          `ContactInfo ${s.nick}@test.invalid`,
          ...(s.role === 'authority' ? ['AuthoritativeDirectory 1', 'V3AuthoritativeDirectory 1', ...voting, 'ExitPolicy reject *:*'] : []),
          ...(s.role === 'exit' ? ['ExitRelay 1', 'ExitPolicyRejectPrivate 0', 'ExitPolicy accept 127.0.0.0/8:*', 'ExitPolicy reject *:*'] : []),
          ...(s.role === 'middle' ? ['ExitPolicy reject *:*'] : []),
        ];
        procs.push(await TorProcess.start({ dataDir: s.dir, torrc: lines, socks: false }));
      }),
    );
    const clientTorrc = [...common, 'VanguardsLiteEnabled 0'];
    const relays = specs.map((s) => s.nick);
    const waitReady = async (tor: TorProcess, timeoutMs = 120_000): Promise<void> => {
      await waitUntil(
        async () => {
          const [b, ns] = await Promise.all([tor.control.bootstrapStatus(), tor.control.getInfo('ns/all').catch(() => ({ 'ns/all': '' }))]);
          if (b.progress < 100) return undefined;
          const listed = new Set([...(ns['ns/all'] ?? '').matchAll(/^r (\S+) /gm)].map((m) => m[1]));
          return relays.every((r) => listed.has(r)) ? true : undefined;
        },
        'the private Tor network to list every relay',
        timeoutMs,
        500,
      );
    };
    const startClient = async (name: string): Promise<TorProcess> => {
      const p = await TorProcess.start({ dataDir: join(root, `client-${name}`), torrc: clientTorrc });
      procs.push(p);
      return p;
    };
    const client = await startClient('probe');
    await waitReady(client);
    return { clientTorrc, client, relays, startSeconds: (Date.now() - t0) / 1000, root, startClient, waitReady, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
