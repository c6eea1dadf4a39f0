/**
 * The dead-drop watcher against each regtest node (one per kind for the file): the basic flow (B sees A's
 * drop in the mempool and confirmed, with exactly the endpoint and message; C sees nothing),
 * 1,000 decoys, malformed envelopes, a reorg with invalidateblock, an RBF replacement that
 * evicts a pending drop, the public index served over
 * HTTP and a light client that finds its drop from the index alone.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { startRegtestNode, type RegtestNode } from '../../../src/regtest/harness.js';
import { openBackend } from '../../../src/chain/open.js';
import type { ChainSource } from '../../../src/chain/types.js';
import { parseTransaction } from '../../../src/chain/block.js';
import { buildDrop } from '../../../src/deaddrop/scan.js';
import { outpointFromHex } from '../../../src/deaddrop/bip352.js';
import { sendDrop, bip86OutputPrivateKey } from '../../../src/deaddrop/send.js';
import { DropWatcher, type WatcherEvent } from '../../../src/deaddrop/watch/watcher.js';
import { indexRoutes } from '../../../src/deaddrop/watch/index-routes.js';
import { LightClient } from '../../../src/deaddrop/watch/light-client.js';
import { DropStore } from '../../../src/deaddrop/watch/drop-store.js';
import { EventBus } from '../../../src/util/event-bus.js';
import { Wallet } from '../../../src/wallet/wallet.js';
import { WalletKeys, newMnemonic } from '../../../src/wallet/keys.js';
import type { SpendableCoin } from '../../../src/wallet/tx.js';
import { DecoyMaker, TestSender, decoyScript, newIdentity, payload, submitBatch, waitFor, opReturn, type TestIdentity } from '../../support/watch.js';
import { chainNodes, useNodeKind } from '../../support/nodes.js';

describe.each(chainNodes())('watcher on %s', (kind) => {
  useNodeKind(kind);

  const ENDPOINT = 'ws://203.0.113.7:9735';
  const MESSAGE = 'hello B, from A';

  let node: RegtestNode;
  let dir: string;
  const sources: ChainSource[] = [];
  const watchers: DropWatcher[] = [];
  const wallets: Wallet[] = [];

  async function source(): Promise<ChainSource> {
    const s = await openBackend(node.backendUrl, { expectedNetwork: 'regtest', pollIntervalMs: 100 });
    sources.push(s);
    return s;
  }

  interface Watched {
    readonly watcher: DropWatcher;
    readonly events: WatcherEvent[];
  }

  async function watch(name: string, ids: readonly TestIdentity[], birthday: number, opts: { bus?: EventBus } = {}): Promise<Watched> {
    const events: WatcherEvent[] = [];
    const watcher = new DropWatcher({
      source: await source(), store: join(dir, `${name}.sqlite`), identities: ids.map((i) => i.identity), birthday,
      pollIntervalMs: 100, mempoolPollMs: 1000, onEvent: (e) => events.push(e), ...(opts.bus ? { events: opts.bus } : {}),
      onError: (err) => events.push({ id: `error:${events.length}`, type: 'error', data: { message: String(err) } }),
    });
    watchers.push(watcher);
    await watcher.ready();
    return { watcher, events };
  }

  const dropEvents = (w: Watched): WatcherEvent[] => w.events.filter((e) => e.type.startsWith('drop.') || e.type === 'error');

  async function tipHeight(): Promise<number> {
    return (await node.dialect.getTip(node.client)).height;
  }

  /** Waits until the watcher has scanned the node's tip. */
  async function synced(w: Watched): Promise<void> {
    const tip = await node.dialect.getTip(node.client);
    await w.watcher.catchUp();
    expect(w.watcher.cursor()?.hash).toBe(tip.hash);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'watcher-int-'));
    node = await startRegtestNode({ kind });
  }, 120_000);

  afterAll(async () => {
    for (const w of watchers) await w.close();
    for (const w of wallets) await w.close();
    for (const s of sources) await s.close();
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('DropWatcher', () => {
    const B = newIdentity('B');
    const C = newIdentity('C');
    let sender: TestSender;
    let wB: Watched;
    let wC: Watched;
    let wIndex: Watched;
    let dropTxid = '';
    let aWallet: Wallet;
    let birthday = 0;

    it('B sees A\'s drop in the mempool and once confirmed, with exactly that endpoint and message; C sees nothing', async () => {
      birthday = (await tipHeight()) + 1;
      // A uses the real wallet for its drops; a bare test sender makes the decoys below.
      const wallet = new Wallet({ keys: WalletKeys.fromMnemonic(newMnemonic(), 'regtest'), source: await source(), db: join(dir, 'a-wallet.db'), birthdayHeight: birthday });
      wallets.push(wallet);
      await wallet.ready();
      await node.fund(await wallet.newReceiveAddress(), 500_000n);
      sender = new TestSender(node, await source());
      await sender.fund(60, 20_000n);
      await node.mine(1);
      await wallet.sync();
      aWallet = wallet;
      const bus = new EventBus();
      wB = await watch('B', [B], birthday, { bus });
      wC = await watch('C', [C], birthday);
      wIndex = await watch('index', [], birthday); // no keys: builds the public index only

      const sent = await sendDrop(aWallet, { recipient: B.address, payload: payload(ENDPOINT, MESSAGE), feeRate: 2, notifyOutput: true });
      dropTxid = sent.txid;
      expect(sent.notifyVout).toBeGreaterThanOrEqual(0);
      expect(sent.fee).toBe(BigInt(Math.ceil(2 * sent.vsize)));
      expect((await aWallet.transaction(dropTxid))?.txid).toBe(dropTxid); // the wallet recorded it

      const pending = await waitFor(wB.events, (e) => e.type === 'drop.pending');
      expect(pending.data).toMatchObject({ txid: dropTxid, vout: sent.opReturnVout, identity: 'B', status: 'pending' });
      expect(pending.data['payload']).toMatchObject({ endpoints: [ENDPOINT], message: MESSAGE });

      const [hash] = await node.mine(1);
      const confirmed = await waitFor(wB.events, (e) => e.type === 'drop.confirmed');
      expect(confirmed.data).toMatchObject({ txid: dropTxid, confirmations: 1, blockHash: hash, height: birthday + 1 });
      expect(confirmed.data['payload']).toMatchObject({ endpoints: [ENDPOINT], message: MESSAGE });
      expect(bus.history('drop.').map((e) => e.type)).toEqual(['drop.pending', 'drop.confirmed']);

      await synced(wC);
      await synced(wIndex);
      expect(dropEvents(wC)).toEqual([]);
      expect(dropEvents(wB).map((e) => e.type)).toEqual(['drop.pending', 'drop.confirmed']);
      // The index holds the drop's candidate with its tweak data, and nothing about who it is for.
      const rows = wIndex.watcher.index.candidates(birthday, birthday + 1).candidates;
      expect(rows.map((r) => r.txid)).toContain(dropTxid);
      expect(Object.keys(rows[0]!).sort()).toEqual(['blockHash', 'data', 'height', 'tweak', 'txid', 'vout']);
    });

    it('1,000 decoy OP_RETURNs (random 17-80 bytes, Runestone-shaped, same sender) and malformed envelopes raise no event', async () => {
      const maker = new DecoyMaker();
      const coins = await maker.fanOut(node, sources[0]!, 950, 5_000n);
      await node.mine(1);
      const raws = coins.map((c, i) => maker.decoy(c, decoyScript(i, node.kind)));
      // 50 from the same sender A (its taproot coins; half shaped like a drop: 80 random bytes).
      for (let i = 0; i < 50; i++) raws.push(await decoyFromSender(sender, new Uint8Array(randomBytes(i % 2 === 0 ? 80 : 17 + i))));
      // Malformed: a drop to B truncated to 60 bytes, one with a flipped bit, and a real drop to C.
      raws.push(await malformedDrop(sender, B, (env) => env.subarray(0, 60)));
      raws.push(await malformedDrop(sender, B, (env) => { const e = env.slice(); e[40]! ^= 1; return e; }));
      const toC = await sendDrop(sender, { recipient: C.address, payload: payload(ENDPOINT, 'for C'), feeRate: 2 });
      expect(raws.length).toBeGreaterThanOrEqual(1002);
      expect(await submitBatch(node, raws)).toBe(raws.length);

      const before = dropEvents(wB).length;
      await wB.watcher.scanMempool();
      await node.mine(2);
      await synced(wB);
      await synced(wC);
      await synced(wIndex);
      expect(dropEvents(wB).slice(before)).toEqual([]);
      // C got exactly its own drop, pending then confirmed.
      expect(dropEvents(wC).filter((e) => e.data['txid'] === toC.txid).map((e) => e.type)).toContain('drop.confirmed');
      expect(dropEvents(wC).every((e) => e.data['txid'] === toC.txid)).toBe(true);
      // The index: every decoy of 52-80 bytes with eligible inputs is a candidate; Runestones and short ones are not.
      const tip = await tipHeight();
      const indexed = wIndex.watcher.index.candidates(birthday, tip).candidates;
      const expectedCandidates = raws.filter((r) => {
        const out = parseTransaction(r).outputs.find((o) => o.script[0] === 0x6a)!;
        const s = out.script;
        return s[1] !== 0x5d && s.length - (s[1] === 0x4c ? 3 : 2) >= 52;
      }).length;
      expect(indexed.length).toBe(expectedCandidates + 2); // + the drops to B and to C
      // B really trial-decrypted them all, in the mempool and in blocks.
      expect(wB.watcher.store.candidateCount()).toBe(wIndex.watcher.store.candidateCount());
      expect(wB.watcher.stats().mempoolCandidates).toBeGreaterThanOrEqual(expectedCandidates);
    }, 180_000);

    it('a reorg with invalidateblock retracts the drop and re-mining confirms it again', async () => {
      await aWallet.sync();
      const sent = await sendDrop(aWallet, { recipient: B.address, payload: payload(ENDPOINT, 'reorg me'), feeRate: 2 });
      await waitFor(wB.events, (e) => e.type === 'drop.pending' && e.data['txid'] === sent.txid);
      const [hash] = await node.mine(1);
      await waitFor(wB.events, (e) => e.type === 'drop.confirmed' && e.data['txid'] === sent.txid);
      await node.invalidateBlock(hash!);
      const reorged = await waitFor(wB.events, (e) => e.type === 'drop.reorged' && e.data['txid'] === sent.txid);
      expect(reorged.data).toMatchObject({ blockHash: hash, status: 'reorged' });
      const [h1] = await node.mine(2);
      const again = await waitFor(wB.events, (e) => e.type === 'drop.confirmed' && e.data['txid'] === sent.txid && e.data['blockHash'] !== hash);
      expect(again.data['blockHash']).toBe(h1);
      const mine = dropEvents(wB).filter((e) => e.data['txid'] === sent.txid);
      expect(new Set(mine.map((e) => e.id)).size).toBe(mine.length);
      expect(mine.map((e) => e.type).filter((t) => t !== 'drop.pending')).toEqual(['drop.confirmed', 'drop.reorged', 'drop.confirmed']);
      await synced(wIndex);
      const rows = wIndex.watcher.index.candidates(birthday, await tipHeight()).candidates.filter((c) => c.txid === sent.txid);
      expect(rows.map((r) => r.blockHash)).toEqual([h1]);
    });

    it('a pending drop replaced by an RBF double spend without a drop is retracted (drop.evicted) and never confirmed', async () => {
      const coins = [...sender.coins];
      const sent = await sendDrop(sender, { recipient: B.address, payload: payload(ENDPOINT, 'replace me'), feeRate: 2 });
      const pending = await waitFor(wB.events, (e) => e.type === 'drop.pending' && e.data['txid'] === sent.txid);
      const spent = parseTransaction(await sources[0]!.getRawTransaction(sent.txid)).inputs
        .map((i) => coins.find((c) => c.txid === i.prevTxidHex && c.vout === i.vout)!);
      expect(spent.every((c) => c !== undefined)).toBe(true);
      const replacement = await replaceWithoutDrop(sender, spent, sent.fee + 5_000n);
      const res = await sources[0]!.broadcast(replacement);
      expect(res.accepted).toBe(true);
      expect(await node.client.call<string[]>('getrawmempool', [])).not.toContain(sent.txid);

      const evicted = await waitFor(wB.events, (e) => e.type === 'drop.evicted' && e.data['txid'] === sent.txid);
      expect(evicted.id).toBe(`drop.evicted:${String(pending.data['dropId'])}:2`);
      expect(evicted.data).toMatchObject({ dropId: pending.data['dropId'], status: 'evicted', vout: sent.opReturnVout });
      const [hash] = await node.mine(1);
      await synced(wB);
      await wB.watcher.scanMempool();
      const block = await node.client.call<{ tx: string[] }>('getblock', [hash!, 1]);
      expect(block.tx).toContain(parseTransaction(replacement).txid);
      expect(dropEvents(wB).filter((e) => e.data['txid'] === sent.txid).map((e) => e.type)).toEqual(['drop.pending', 'drop.evicted']);
      expect(wB.watcher.drops().find((d) => d.txid === sent.txid)?.status).toBe('evicted');
      // Every drop mined earlier in this file left the mempool by being mined: none was evicted.
      expect(dropEvents(wB).filter((e) => e.type === 'drop.evicted').map((e) => e.data['txid'])).toEqual([sent.txid]);
      await synced(wIndex); // (the light client below reads the index up to the tip)
      expect(wIndex.watcher.index.candidates(birthday, await tipHeight()).candidates.map((c) => c.txid)).not.toContain(sent.txid);
    });

    it('a light client finds its drop from the public index alone', async () => {
      const app: FastifyInstance = Fastify();
      await app.register(indexRoutes, { index: wIndex.watcher.index });
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      try {
        const requests: string[] = [];
        const logged: typeof fetch = (input, init) => {
          requests.push(String(input));
          return fetch(input, init);
        };
        const lc = new LightClient({ url, identities: [B.identity], rangeSize: 3, fetch: logged });
        const { found, scannedTo } = await lc.scan(birthday);
        expect(scannedTo).toBe(await tipHeight());
        expect(found.map((f) => f.txid)).toContain(dropTxid);
        expect(found.find((f) => f.txid === dropTxid)?.payload).toMatchObject({ endpoints: [ENDPOINT], message: MESSAGE });
        // Only whole ranges were asked for.
        expect(requests.every((r) => /\/index\/(info|candidates\?from=\d+&to=\d+)$/.test(r))).toBe(true);
        const lcC = new LightClient({ url, identities: [C.identity] });
        expect((await lcC.scan(birthday)).found.every((f) => f.identity === 'C')).toBe(true);
        // `deaddrop watch --index`: drops recorded in a local store with outbox events, once.
        const store = DropStore.open(join(dir, 'light.sqlite'));
        try {
          const events = await lc.sync(store, birthday);
          expect(events.filter((e) => e.data['txid'] === dropTxid).map((e) => e.type)).toEqual(['drop.confirmed']);
          expect(events.every((e) => e.type === 'drop.confirmed')).toBe(true);
          expect(await lc.sync(store, birthday)).toEqual([]);
        } finally {
          store.close();
        }
      } finally {
        await app.close();
      }
    });
  });

  /** Spends `coins` (the inputs of one of A's drops) back to A with `fee`, no OP_RETURN: an RBF replacement. */
  async function replaceWithoutDrop(sender: TestSender, coins: readonly SpendableCoin[], fee: bigint): Promise<Uint8Array> {
    const { Transaction } = await import('@scure/btc-signer');
    const tx = new Transaction();
    let total = 0n;
    for (const c of coins) {
      const key = sender.keys.taprootKey(c.chain, c.index);
      tx.addInput({ txid: c.txid, index: c.vout, witnessUtxo: { script: c.script, amount: c.value }, tapInternalKey: key.internalKey });
      total += c.value;
    }
    tx.addOutput({ script: coins[0]!.script, amount: total - fee });
    coins.forEach((c, i) => tx.signIdx(sender.keys.taprootPrivateKey(c.chain, c.index), i));
    tx.finalize();
    return tx.extract();
  }

  /** A sender-side decoy: A's taproot coin spent to an OP_RETURN of random data (no envelope). */
  async function decoyFromSender(sender: TestSender, data: Uint8Array): Promise<Uint8Array> {
    const { Transaction } = await import('@scure/btc-signer');
    const coin = sender.coins.pop()!;
    const tx = new Transaction({ allowUnknownOutputs: true });
    const key = sender.keys.taprootKey(coin.chain, coin.index);
    tx.addInput({ txid: coin.txid, index: coin.vout, witnessUtxo: { script: coin.script, amount: coin.value }, tapInternalKey: key.internalKey });
    tx.addOutput({ script: opReturn(data), amount: 0n });
    tx.addOutput({ script: coin.script, amount: coin.value - 500n });
    tx.sign(sender.keys.taprootPrivateKey(coin.chain, coin.index));
    tx.finalize();
    return tx.extract();
  }

  /** A drop to `to` whose envelope is then damaged by `damage` (so it must not decrypt). */
  async function malformedDrop(sender: TestSender, to: TestIdentity, damage: (env: Uint8Array) => Uint8Array): Promise<Uint8Array> {
    const { Transaction } = await import('@scure/btc-signer');
    const coin = sender.coins.pop()!;
    const key = sender.keys.taprootKey(coin.chain, coin.index);
    const priv = sender.keys.taprootPrivateKey(coin.chain, coin.index);
    const drop = buildDrop({
      inputs: [{ outpoint: outpointFromHex(coin.txid, coin.vout), prevoutScript: coin.script, privateKey: bip86OutputPrivateKey(priv) }],
      recipient: to.address, payload: payload(ENDPOINT, 'damaged'),
    });
    const tx = new Transaction({ allowUnknownOutputs: true });
    tx.addInput({ txid: coin.txid, index: coin.vout, witnessUtxo: { script: coin.script, amount: coin.value }, tapInternalKey: key.internalKey });
    tx.addOutput({ script: opReturn(damage(drop.envelope)), amount: 0n });
    tx.addOutput({ script: coin.script, amount: coin.value - 500n });
    tx.sign(priv);
    tx.finalize();
    return tx.extract();
  }
});
