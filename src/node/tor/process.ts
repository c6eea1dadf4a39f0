/**
 * Runs a tor process of our own: its own data directory (mode 0700), control and SOCKS ports
 * chosen by tor itself on 127.0.0.1 (`auto`, read back through ControlPortWriteToFile and
 * GETINFO net/listeners/socks, so there is no port race), cookie authentication, and
 * `__OwningControllerProcess` so tor exits when this Node process dies, even on SIGKILL.
 *
 * Used by the daemon (`deaddrop start --tor` without --tor-control) and by the private Tor
 * network of the tests (test/support/tor-network.ts), which passes its own torrc lines.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeaddropError } from '../../util/errors.js';
import { TorControl, parseControlAddress } from './control.js';
import type { SocksAddress } from './socks.js';
import { sleep } from '../../util/time.js';

export interface TorProcessOptions {
  /** Data directory (created with mode 0700). */
  readonly dataDir: string;
  /** The tor binary (default `tor` on PATH). */
  readonly torBinary?: string;
  /** Extra torrc lines (e.g. a private network's DirAuthority lines). */
  readonly torrc?: readonly string[];
  /** Whether tor opens a SOCKS port (default true). */
  readonly socks?: boolean;
  /** How long to wait for the control port (default 60 s). */
  readonly startTimeoutMs?: number;
  /** Receives tor's stdout/stderr lines (default: kept in a small ring for errors). */
  readonly onLog?: (line: string) => void;
}

/** A running tor with an authenticated control connection. */
export class TorProcess {
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  #exitCode: number | null | undefined = undefined;
  readonly control: TorControl;
  /** The SOCKS port, or null when started with `socks: false`. */
  readonly socks: SocksAddress | null;
  readonly dataDir: string;

  private constructor(child: ChildProcess, exited: Promise<number | null>, control: TorControl, socks: SocksAddress | null, dataDir: string) {
    this.#child = child;
    this.#exited = exited;
    this.control = control;
    this.socks = socks;
    this.dataDir = dataDir;
    void exited.then((code) => (this.#exitCode = code));
  }

  /** The process id (for tests and status). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return this.#exitCode === undefined;
  }

  /** Resolves with the exit code once tor has exited. */
  get exited(): Promise<number | null> {
    return this.#exited;
  }

  /** Starts tor and resolves once its control port is authenticated (not yet bootstrapped). */
  static async start(opts: TorProcessOptions): Promise<TorProcess> {
    await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
    await chmod(opts.dataDir, 0o700);
    const portFile = join(opts.dataDir, 'control-port');
    await rm(portFile, { force: true });
    const torrc = [
      `DataDirectory ${opts.dataDir}`,
      'ControlPort 127.0.0.1:auto',
      `ControlPortWriteToFile ${portFile}`,
      'CookieAuthentication 1',
      `CookieAuthFile ${join(opts.dataDir, 'control-cookie')}`,
      `SocksPort ${opts.socks === false ? '0' : '127.0.0.1:auto'}`,
      `__OwningControllerProcess ${process.pid}`,
      'Log notice stdout',
      'AvoidDiskWrites 1',
      ...(opts.torrc ?? []),
    ];
    const torrcPath = join(opts.dataDir, 'torrc');
    await writeFile(torrcPath, `${torrc.join('\n')}\n`, { mode: 0o600 });
    const ring: string[] = [];
    const onLine = (line: string): void => {
      ring.push(line);
      if (ring.length > 20) ring.shift();
      opts.onLog?.(line);
    };
    const child = spawn(opts.torBinary ?? 'tor', ['-f', torrcPath, '--defaults-torrc', '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const onData = (d: Buffer): void => {
      tail += d.toString();
      const parts = tail.split('\n');
      tail = parts.pop() ?? '';
      for (const p of parts) onLine(p);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', (err) => {
        onLine(`spawn failed: ${err.message}`);
        resolve(-1);
      });
    });
    let gone = false;
    void exited.then(() => (gone = true));
    const fail = (why: string): DeaddropError => {
      child.kill('SIGKILL');
      return DeaddropError.unreachable('tor', `${why}; last output: ${ring.slice(-5).join(' | ')}`);
    };
    const until = Date.now() + (opts.startTimeoutMs ?? 60_000);
    let control: TorControl | null = null;
    while (control === null) {
      if (gone) throw fail('tor exited at start');
      if (Date.now() > until) throw fail('tor did not open its control port in time');
      const text = await readFile(portFile, 'utf8').catch(() => '');
      const m = /^PORT=(\S+)$/m.exec(text);
      if (m) {
        control = await TorControl.connect(parseControlAddress(m[1] as string)).catch(() => null);
      }
      if (control === null) await sleep(100);
    }
    try {
      await control.authenticate();
      await control.takeOwnership();
      let socks: SocksAddress | null = null;
      if (opts.socks !== false) {
        const listeners = (await control.getInfo('net/listeners/socks'))['net/listeners/socks'] ?? '';
        const m = /"?(127\.0\.0\.1):(\d+)"?/.exec(listeners);
        if (!m) throw fail('tor reported no SOCKS listener');
        socks = { host: m[1] as string, port: Number(m[2]) };
      }
      return new TorProcess(child, exited, control, socks, opts.dataDir);
    } catch (err) {
      control.close();
      if (err instanceof DeaddropError && err.code === 'BACKEND_UNREACHABLE') throw err;
      throw fail(`tor control failed: ${(err as Error).message}`);
    }
  }

  /** Stops tor (SIGTERM, then SIGKILL after `graceMs`) and waits for it to exit. Idempotent. */
  async stop(graceMs = 5_000): Promise<void> {
    this.control.close();
    if (this.running) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
      await this.#exited;
      clearTimeout(timer);
    }
  }

  /** Kills tor at once (tests: a tor that dies). */
  kill(): void {
    this.#child.kill('SIGKILL');
  }
}
