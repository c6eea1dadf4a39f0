/**
 * `deaddrop watch [--once] [--from HEIGHT] [--index URL]`: finds the drops left for your invite.
 *
 * - With a full-block backend (`--backend`, or the regtest node of the datadir) it runs the
 *   DropWatcher over blocks and the mempool (`drop.pending`, `drop.confirmed` with the
 *   confirmation count, `drop.reorged`, `drop.evicted`).
 * - With `--index <url>` it is a light client: it downloads whole height ranges of a deaddrop
 *   API's public candidate index and trial-decrypts them locally; no node of its own, and the
 *   index never learns which candidate (if any) was ours. Confirmed drops only.
 *
 * It prints every drop event no earlier `watch` printed (state in `drops.sqlite`, consumer
 * `print:cli`), one JSON object per line with `--json`. `--from H` rescans from H and also
 * prints the earlier events of drops at or above H. A progress bar goes to stderr during
 * rescans (plain lines when stderr is not a terminal). `--once` exits after catching up.
 */
import type { Command } from 'commander';
import type { ContextFactory } from '../context.js';
import type { CliContext } from '../context.js';
import { jsonReplacer } from '../output.js';
import { parseCount } from '../parse.js';
import { unlockKeys } from '../session.js';
import { withBackend } from '../backend.js';
import { CLI_WATCHER, openDropsStore } from '../../deaddrop/datadir-stores.js';
import { walletIdentity, walletSilentAddress } from '../../deaddrop/publish.js';
import { DeaddropError } from '../../util/errors.js';
import type { DropStore, OutboxEvent } from '../../deaddrop/watch/drop-store.js';
import { DropWatcher } from '../../deaddrop/watch/watcher.js';
import { LightClient } from '../../deaddrop/watch/light-client.js';
import { lockDatadir } from '../../daemon/datadir-lock.js';

/** Outbox consumer of what `watch` has printed. */
const PRINT_CONSUMER = `print:${CLI_WATCHER}`;
/** Light-client poll period when following. */
const INDEX_POLL_MS = 5000;

interface WatchFlags {
  once?: boolean;
  from?: string;
  index?: string;
  scanThreads?: string;
}

function warn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

/** One event as a human line. */
function eventLine(e: OutboxEvent): string {
  const d = e.data;
  const p = (d.payload ?? {}) as { endpoints?: string[]; message?: string };
  const what = `${String(d.txid)}:${String(d.vout)}`;
  const content = `endpoints ${(p.endpoints ?? []).join(' ') || '-'}  message ${JSON.stringify(p.message ?? '')}`;
  if (e.type === 'drop.confirmed') {
    const n = Number(d.confirmations);
    return `${e.type} ${what}  height ${String(d.height)} (${n} confirmation${n === 1 ? '' : 's'})  ${content}`;
  }
  if (e.type === 'drop.reorged') return `${e.type} ${what}  its block at height ${String(d.height)} left the chain`;
  if (e.type === 'drop.evicted') return `${e.type} ${what}  left the mempool unmined (replaced or evicted); it will not confirm unless it comes back`;
  return `${e.type} ${what}  ${content}`;
}

/** Prints outbox events once each (persisted consumer), optionally replaying history from a height. */
class EventPrinter {
  readonly #ctx: CliContext;
  readonly #store: DropStore;

  constructor(ctx: CliContext, store: DropStore) {
    this.#ctx = ctx;
    this.#store = store;
  }

  #print(e: OutboxEvent): void {
    const text = this.#ctx.json ? JSON.stringify({ id: e.id, type: e.type, time: e.time, data: e.data }, jsonReplacer) : eventLine(e);
    process.stdout.write(text + '\n');
  }

  /** Events already printed by an earlier run whose drop is at or above `from` (or still unmined). */
  replay(from: number): void {
    const upTo = this.#store.deliveredSeq(PRINT_CONSUMER);
    for (let after = 0; after < upTo;) {
      const rows = this.#store.eventsAfter(after, 256).filter((e) => e.seq <= upTo);
      if (rows.length === 0) break;
      for (const e of rows) {
        const height = typeof e.data.height === 'number' ? e.data.height : (this.#store.getDrop(String(e.data.dropId))?.height ?? null);
        if (height === null || height >= from) this.#print(e);
      }
      after = rows[rows.length - 1]!.seq;
    }
  }

  /** Prints every event not printed yet. */
  flush(): void {
    if (this.#store.db.open) this.#store.deliver(PRINT_CONSUMER, (e) => this.#print(e));
  }
}

/** Rescan progress on stderr: a bar on a terminal, a line per second otherwise. */
class Progress {
  readonly #tty = process.stderr.isTTY === true;
  #shown = false;
  #lastLine = 0;

  update(height: number, tip: number): void {
    if (height >= tip) {
      this.done(height);
      return;
    }
    if (this.#tty) {
      const width = 30;
      const filled = Math.round((width * Math.max(0, height)) / Math.max(1, tip));
      process.stderr.write(`\r\x1b[2Kscanning [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] height ${height}/${tip}`);
    } else if (Date.now() - this.#lastLine >= 1000) {
      this.#lastLine = Date.now();
      process.stderr.write(`scanning: height ${height} of ${tip}\n`);
    }
    this.#shown = true;
  }

  done(height?: number): void {
    if (!this.#shown) return;
    this.#shown = false;
    const text = height === undefined ? 'scan finished' : `scanned to height ${height}`;
    process.stderr.write(this.#tty ? `\r\x1b[2K${text}\n` : `${text}\n`);
  }
}

/** Resolves on SIGINT/SIGTERM (or at once when `signal` already fired). */
function stopSignal(): { promise: Promise<void>; stopped: () => boolean } {
  let stopped = false;
  const promise = new Promise<void>((resolve) => {
    const stop = (): void => {
      stopped = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return { promise, stopped: () => stopped };
}

async function watchNode(ctx: CliContext, flags: WatchFlags, from: number | undefined): Promise<void> {
  const { keys, birthdayHeight } = await unlockKeys(ctx);
  const { store, seedChanged } = openDropsStore(ctx.datadir, walletSilentAddress(keys));
  const printer = new EventPrinter(ctx, store);
  const progress = new Progress();
  try {
    await withBackend(ctx, async (source) => {
      if (!source.capabilities.fullBlocks) {
        throw DeaddropError.unsupported(`the ${source.kind} backend serves no full blocks: use --index <url> of a deaddrop daemon's API instead`);
      }
      const watcher = new DropWatcher({
        source, store, identities: [walletIdentity(keys)], birthday: from ?? birthdayHeight, rescan: from !== undefined || seedChanged,
        name: CLI_WATCHER, follow: flags.once !== true,
        ...(flags.scanThreads === undefined ? {} : { scanThreads: parseCount(flags.scanThreads, '--scan-threads', 1, 1024) }),
        onEvent: (e) => (e.type === 'watch.progress' ? progress.update(Number(e.data.height), Number(e.data.tip)) : printer.flush()),
        onError: (err) => warn(err instanceof Error ? err.message : String(err)),
        onWarning: warn,
      });
      try {
        if (from !== undefined) printer.replay(from);
        const signal = stopSignal();
        await watcher.ready();
        printer.flush();
        await watcher.catchUp();
        if (source.capabilities.mempool) await watcher.scanMempool();
        progress.done();
        printer.flush();
        if (flags.once !== true) await signal.promise;
      } finally {
        await watcher.close();
      }
    });
  } finally {
    store.close();
  }
}

/** One light-client pass: downloads the index from the cursor (or `from`) to its tip and records drops. */
async function lightPass(lc: LightClient, store: DropStore, start: number, rescan: boolean, progress: Progress): Promise<void> {
  const info = await lc.info();
  let from = start;
  if (info.indexedFrom !== null && from < info.indexedFrom) {
    warn(`the index covers heights from ${info.indexedFrom} only; drops below it cannot be found through it`);
    from = info.indexedFrom;
  }
  const onProgress = (h: number, tip: number): void => progress.update(h, tip);
  if (!rescan) {
    await lc.sync(store, from, onProgress);
    return;
  }
  const tip = info.indexedTip ?? from - 1;
  const { found } = await lc.scan(from, tip, onProgress);
  store.transaction(() => {
    for (const d of found) store.connectBlock({ height: d.height, hash: d.blockHash }, [], [d], tip);
  });
}

async function watchIndex(ctx: CliContext, flags: WatchFlags & { index: string }, from: number | undefined): Promise<void> {
  const { keys, birthdayHeight } = await unlockKeys(ctx);
  const lc = new LightClient({ url: flags.index, identities: [walletIdentity(keys)] });
  const { store } = openDropsStore(ctx.datadir, walletSilentAddress(keys));
  const printer = new EventPrinter(ctx, store);
  const progress = new Progress();
  try {
    if (from !== undefined) printer.replay(from);
    printer.flush();
    const signal = stopSignal();
    await lightPass(lc, store, from ?? birthdayHeight, from !== undefined, progress);
    progress.done();
    printer.flush();
    while (flags.once !== true && !signal.stopped()) {
      // A referenced timer: it is what keeps a following light client alive (an unref'd one let
      // Node exit with code 13, "unsettled top-level await"). Cleared at once on a signal.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([signal.promise, new Promise((r) => (timer = setTimeout(r, INDEX_POLL_MS)))]);
      clearTimeout(timer);
      if (signal.stopped()) break;
      try {
        await lightPass(lc, store, birthdayHeight, false, progress);
        printer.flush();
      } catch (err) {
        warn(err instanceof Error ? err.message : String(err));
      }
    }
  } finally {
    store.close();
  }
}

export function registerWatchCommand(program: Command, context: ContextFactory): void {
  program
    .command('watch')
    .description('find dead drops left for your invite and print drop.pending / drop.confirmed / drop.reorged / drop.evicted events')
    .option('--once', 'exit after catching up with the chain (and the mempool)')
    .option('--from <height>', 'rescan from this block height and print every drop event since')
    .option('--index <url>', 'light client: use the public candidate index of a deaddrop API (e.g. http://127.0.0.1:8335) instead of a node')
    .option('--scan-threads <n>', 'threads that scan blocks during a catch-up or rescan (default: every core; 1 scans on the main thread)')
    .action(async (flags: WatchFlags) => {
      const ctx = context();
      const from = flags.from === undefined ? undefined : parseCount(flags.from, '--from', 0, 100_000_000);
      if (flags.scanThreads !== undefined) parseCount(flags.scanThreads, '--scan-threads', 1, 1024);
      // Fail on a malformed URL before asking for the passphrase.
      if (flags.index !== undefined) new LightClient({ url: flags.index, identities: [] });
      // A rescan rewrites the drop store a running daemon writes too: one writer per datadir.
      const lock = from === undefined ? undefined : lockDatadir(ctx.datadir, 'watch --from');
      try {
        if (flags.index !== undefined) await watchIndex(ctx, { ...flags, index: flags.index }, from);
        else await watchNode(ctx, flags, from);
      } finally {
        lock?.release();
      }
    });
}
