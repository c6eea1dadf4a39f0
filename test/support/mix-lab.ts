/**
 * Mixnet nodes as processes in the namespaces of a {@link NetLab} (test/support/mix-runner.ts), with
 * the test process playing log replication among them: every signed entry one runner publishes
 * (its descriptors) is handed to every other runner, and to runners started later. Used by the
 * tests that put real daemons around a mixnet of runners (drop-netns.int.test.ts).
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { NodeIdentity } from '../../src/node/identity.js';
import { decodeEntry } from '../../src/node/log/codec.js';
import { DESCRIPTOR_TYPE } from '../../src/node/mixnet/directory.js';
import { toHex } from '../../src/util/bytes.js';
import type { NetLab } from './netns.js';
import { waitUntil } from './wait.js';

const RUNNER = new URL('./mix-runner.ts', import.meta.url).pathname;

export interface RunnerEvent {
  readonly ev: string;
  readonly [k: string]: unknown;
}

/** What an instrumented mix or provider saw of one packet. */
export interface PacketSeen {
  readonly from: string;
  readonly to: string;
  readonly kind: string;
}

/** One runner process and what it reported. */
export class MixRunner {
  readonly events: RunnerEvent[] = [];
  readonly packets: PacketSeen[] = [];
  stderr = '';
  readonly exited: Promise<void>;

  constructor(readonly name: string, readonly id: string, readonly child: ChildProcess, onEntry: (raw: string, from: MixRunner) => void) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let e: RunnerEvent;
      try {
        e = JSON.parse(line) as RunnerEvent;
      } catch {
        return;
      }
      if (e.ev === 'packet') this.packets.push(e as unknown as PacketSeen);
      else this.events.push(e);
      if (e.ev === 'entry') onEntry(e.raw as string, this);
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  send(cmd: object): void {
    if (this.child.exitCode === null && this.child.stdin!.writable) this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
  }

  /** The first event after index `from` that `pred` accepts (fails early when the runner exits). */
  async next(pred: (e: RunnerEvent) => boolean, what: string, from = 0, timeoutMs = 30_000): Promise<RunnerEvent> {
    return waitUntil(() => {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited (${this.child.exitCode}): ${this.stderr.slice(-2000)}`);
      return this.events.slice(from).find(pred);
    }, `${this.name}: ${what}`, timeoutMs, 50);
  }

  /**
   * Sends `cmd` and resolves with the runner's answer: the next `ev` event, or rejects on an `error`
   * event. Answers are matched by order only: await one request before sending the next.
   */
  async request(cmd: object, ev: string, timeoutMs = 30_000): Promise<RunnerEvent> {
    const from = this.events.length;
    this.send(cmd);
    const e = await this.next((x) => x.ev === ev || x.ev === 'error', ev, from, timeoutMs);
    if (e.ev === 'error') throw new Error(`${this.name}: ${String(e.message)}`);
    return e;
  }

  /** The runner's counters (`drops` by reason, `processed`, `connected`, mailbox size). */
  status(mailbox?: string): Promise<RunnerEvent> {
    return this.request({ op: 'status', ...(mailbox ? { mailbox } : {}) }, 'status', 10_000);
  }

  /** Texts of the messages this runner received. */
  received(): string[] {
    return this.events.filter((e) => e.ev === 'message').map((e) => (e.m as { text: string }).text);
  }

  /** The runner's mixnet listener (ws://ip:port), once ready. */
  get url(): string {
    const r = this.events.find((e) => e.ev === 'ready');
    if (!r) throw new Error(`${this.name} is not ready`);
    return r.url as string;
  }

  async quit(): Promise<void> {
    this.send({ op: 'quit' });
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Runners of one lab, and the entries they published. */
export class MixLab {
  readonly runners: MixRunner[] = [];
  readonly #entries: { raw: string; author: string; type: string }[] = [];
  readonly #lab: NetLab;

  constructor(lab: NetLab) {
    this.#lab = lab;
  }

  #broadcast(raw: string, from: MixRunner): void {
    const e = decodeEntry(Buffer.from(raw, 'hex'));
    this.#entries.push({ raw, author: toHex(e.author), type: String(e.header.type) });
    for (const r of this.runners) if (r !== from) r.send({ op: 'entry', raw });
  }

  /** Every entry published so far, oldest first (raw hex, author hex, entry type). */
  get entries(): readonly { raw: string; author: string; type: string }[] {
    return this.#entries;
  }

  /**
   * Starts a mix (`layer`) or provider on `host` and resolves once it published its descriptor; with
   * neither, a client, which resolves once ready. `extra` goes into the runner's config as it is
   * (`home`, `epochMs`, `capture`, `cover`: test/support/mix-runner.ts).
   */
  async start(host: string, role: { layer?: number; provider?: boolean }, extra: Record<string, unknown> = {}): Promise<MixRunner> {
    const seed = randomBytes(32);
    const id = toHex(NodeIdentity.fromSeed(seed).publicKey);
    const hasRole = role.layer !== undefined || role.provider === true;
    const cfg = { seed: toHex(seed), ...role, host: this.#lab.host(host).ip, meanDelayMs: 20, fetchIntervalMs: 200, ...extra };
    const child = this.#lab.spawn(host, process.execPath, ['--import', 'tsx', RUNNER, JSON.stringify(cfg)], { cwd: process.cwd() });
    const r = new MixRunner(host, id, child, (raw, from) => this.#broadcast(raw, from));
    this.runners.push(r);
    for (const e of this.#entries) r.send({ op: 'entry', raw: e.raw });
    await waitUntil(() => {
      if (child.exitCode !== null) throw new Error(`${host} exited (${child.exitCode}): ${r.stderr.slice(-2000)}`);
      return r.events.some((e) => e.ev === 'ready') && (!hasRole || this.#entries.some((e) => e.author === id && e.type === DESCRIPTOR_TYPE));
    }, `${host} ready${hasRole ? ' with its descriptor' : ''}`, 30_000, 50);
    return r;
  }

  async close(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.quit().catch(() => undefined)));
  }
}
