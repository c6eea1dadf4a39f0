/**
 * kill -9 of a watcher process at random points of a 200-block rescan, 20+ trials against each
 * regtest node (one node per kind for the file): after a restart that runs to the tip, every drop has exactly one
 * confirmed event in the persisted outbox, and the event log written by the (killed) processes
 * holds every outbox event, each once when deduplicated by its stable id.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { type RegtestNode, startRegtestNode } from '../../../src/regtest/harness.js';
import { openBackend } from '../../../src/chain/open.js';
import type { ChainSource } from '../../../src/chain/types.js';
import { sendDrop } from '../../../src/deaddrop/send.js';
import { DropStore } from '../../../src/deaddrop/watch/drop-store.js';
import { DecoyMaker, TestSender, newIdentity, payload, submitBatch, opReturn } from '../../support/watch.js';
import { chainNodes, useNodeKind } from '../../support/nodes.js';
import { toHex } from '../../../src/util/bytes.js';

describe.each(chainNodes())('watcher crash safety on %s', (kind) => {
  useNodeKind(kind);

  const REPO = resolve(import.meta.dirname, '..', '..', '..');
  const CHILD = join(REPO, 'test', 'support', 'watch-child.ts');
  const TRIALS = 20;
  /** Trials run two at a time (the node and two watchers share the two cores). */
  const LANES = 2;
  const BLOCKS = 200;

  let node: RegtestNode;
  let source: ChainSource;
  let dir: string;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'watcher-crash-'));
    node = await startRegtestNode({ kind });
    source = await openBackend(node.backendUrl, { expectedNetwork: 'regtest' });
    await source.ready();
  }, 120_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await source?.close();
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  interface Run {
    readonly child: ChildProcess;
    /** Resolves when the child printed "ready". */
    readonly ready: Promise<void>;
    /** Resolves with the exit code (null when killed) and whether it printed "done". */
    readonly exit: Promise<{ code: number | null; done: boolean; stderr: string }>;
  }

  function runChild(env: string): Run {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      cwd: REPO, env: { ...process.env, DEADDROP_WATCH_CHILD: env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    let err = '';
    let onReady: () => void = () => undefined;
    const ready = new Promise<void>((r) => (onReady = r));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) onReady();
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exit = new Promise<{ code: number | null; done: boolean; stderr: string }>((res) =>
      child.on('exit', (code) => {
        children.delete(child);
        onReady();
        res({ code, done: out.includes('done'), stderr: err });
      }),
    );
    return { child, ready, exit };
  }

  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  /** Parses the event log, skipping a line torn by the kill. */
  function readLog(file: string): { id: string; type: string; txid: string }[] {
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').split('\n').flatMap((line) => {
      try {
        return line ? [JSON.parse(line) as { id: string; type: string; txid: string }] : [];
      } catch {
        return [];
      }
    });
  }

  /** The persisted cursor of trial `n` (null before the first block). */
  function cursorHeight(n: number): number | null {
    const file = join(dir, `t${n}.sqlite`);
    if (!existsSync(file)) return null;
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare<[], { h: number | null }>("SELECT max(height) AS h FROM follower_blocks WHERE name = 'drops'").get()?.h ?? null;
    } catch {
      return null; // killed before the schema was written
    } finally {
      db.close();
    }
  }

  /** After the final run: one confirmed event per drop in the outbox, all of them in the log. */
  function checkTrial(n: number, drops: readonly string[]): void {
    const store = DropStore.open(join(dir, `t${n}.sqlite`));
    try {
      const outbox = store.eventsAfter(0, 100_000);
      for (const txid of drops) {
        expect(outbox.filter((e) => e.data['txid'] === txid).map((e) => e.type)).toEqual(['drop.confirmed']);
      }
      expect(outbox).toHaveLength(drops.length);
      expect(store.listDrops().every((d) => d.status === 'confirmed')).toBe(true);
      // Every event reached the log at least once; deduplicated by id, exactly the outbox.
      const ids = [...new Set(readLog(join(dir, `t${n}.log`)).map((e) => e.id))];
      expect(ids.sort()).toEqual(outbox.map((e) => e.id).sort());
      expect(store.deliveredSeq('bus:drops')).toBe(outbox.at(-1)!.seq);
    } finally {
      store.close();
    }
  }

  describe('DropWatcher under kill -9', () => {
    it(`ends with exactly one confirmed event per drop after at least ${TRIALS} trials of random kills during a ${BLOCKS}-block rescan`, async () => {
      const B = newIdentity('B');
      const sender = new TestSender(node, source);
      await sender.fund(12, 20_000n);
      const maker = new DecoyMaker();
      const decoyCoins = await maker.fanOut(node, source, 40, 5_000n);
      await node.mine(1);
      const birthday = (await source.getTip()).height + 1;

      // 200 blocks: 6 drops to B and 40 decoy candidates spread over them.
      const drops: string[] = [];
      const dropAt = new Set([3, 40, 41, 99, 150, 197]);
      for (let i = 0; i < BLOCKS; i++) {
        if (dropAt.has(i)) drops.push((await sendDrop(sender, { recipient: B.address, payload: payload('ws://192.0.2.1:9000', `drop ${i}`), feeRate: 2 })).txid);
        if (i % 5 === 0 && decoyCoins.length > 0) await submitBatch(node, [maker.decoy(decoyCoins.pop()!, opReturn(new Uint8Array(randomBytes(80))))]);
        await node.mine(1);
      }
      const tip = await source.getTip();
      expect(tip.height).toBe(birthday + BLOCKS - 1);

      const config = (trial: number): string => JSON.stringify({
        backendUrl: node.backendUrl, db: join(dir, `t${trial}.sqlite`), log: join(dir, `t${trial}.log`), birthday,
        scanKey: toHex(B.identity.scanPrivateKey), spendKey: toHex(B.identity.spendPublicKey),
      });

      // Calibrate: how long a whole rescan takes after "ready".
      const cal = runChild(config(-1));
      await cal.ready;
      const t0 = Date.now();
      const calExit = await cal.exit;
      expect(calExit, calExit.stderr).toMatchObject({ code: 0, done: true });
      const rescanMs = Math.max(50, Date.now() - t0);

      let kills = 0;
      let killedMidway = 0;
      const trial = async (n: number): Promise<void> => {
        const env = config(n);
        // A kill at a random point of the rescan (every third trial: two), then a run to the end.
        for (let k = 0; k < (n % 3 === 2 ? 2 : 1); k++) {
          const run = runChild(env);
          await run.ready;
          await sleep(Math.floor(Math.random() * rescanMs));
          run.child.kill('SIGKILL');
          await run.exit;
          kills++;
          const at = cursorHeight(n);
          if (at !== null && at >= birthday && at < tip.height) killedMidway++;
        }
        const last = runChild(env);
        const res = await last.exit;
        expect(res, res.stderr).toMatchObject({ code: 0, done: true });
        checkTrial(n, drops);
      };
      // At least TRIALS trials; then more (up to three times as many) until enough kills landed
      // mid-rescan. A fast node (Core rescans 200 blocks in well under a second) puts many random
      // kills before the first block or after the last, and the calibration run is alone while the
      // trials run in lanes, so the share that lands midway varies from run to run.
      const midwayWanted = Math.ceil((TRIALS * 2) / 3);
      let n = 0;
      while (n < TRIALS || (killedMidway < midwayWanted && n < 3 * TRIALS)) {
        await Promise.all(Array.from({ length: LANES }, (_, i) => trial(n + i)));
        n += LANES;
      }
      expect(kills).toBeGreaterThanOrEqual(TRIALS);
      // Enough kills must land mid-rescan (some blocks done, some not), or the test would prove little.
      expect(killedMidway).toBeGreaterThanOrEqual(midwayWanted);
    }, 600_000);
  });
});
