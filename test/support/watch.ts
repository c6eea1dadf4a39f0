/**
 * Test helpers for the watcher: identities, a raw transaction writer for the in-memory chain,
 * and a small taproot sender wallet (implements DropWallet) over a real regtest node.
 */
import { randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { Transaction, p2wpkh, Script } from '@scure/btc-signer';
import { encodeAddress } from '../../src/deaddrop/bip352.js';
import { type DropPayloadInput, newToken } from '../../src/deaddrop/codec.js';
import type { DropFunding, DropWallet } from '../../src/deaddrop/send.js';
import { hashToHex, sha256d } from '../../src/chain/bytes.js';
import { parseTransaction } from '../../src/chain/block.js';
import type { BroadcastResult, ChainSource } from '../../src/chain/types.js';
import type { RegtestNode } from '../../src/regtest/harness.js';
import { CHANGE, newMnemonic, RECEIVE, type TaprootKeyInfo, WalletKeys } from '../../src/wallet/keys.js';
import type { BuiltTx, SpendableCoin } from '../../src/wallet/tx.js';
import type { WatchIdentity } from '../../src/deaddrop/watch/candidates.js';
import type { WatcherEvent } from '../../src/deaddrop/watch/watcher.js';
import { toHex } from '../../src/util/bytes.js';
import { waitUntil } from './wait.js';

/** A receiver: the identity the watcher gets and the address a sender uses. */
export interface TestIdentity {
  readonly identity: WatchIdentity;
  readonly address: string;
}

/** Fresh random BIP352 keys (faster than deriving from a mnemonic). */
export function newIdentity(label: string): TestIdentity {
  const scan = secp256k1.utils.randomSecretKey();
  const spend = secp256k1.utils.randomSecretKey();
  const scanPub = secp256k1.getPublicKey(scan, true);
  const spendPub = secp256k1.getPublicKey(spend, true);
  return { identity: { label, scanPrivateKey: scan, spendPublicKey: spendPub }, address: encodeAddress(scanPub, spendPub, 'regtest') };
}

/** A payload with one endpoint and a message. */
export function payload(endpoint: string, message: string): DropPayloadInput {
  return { nodeKey: new Uint8Array(randomBytes(32)), token: newToken(), endpoints: [endpoint], message };
}

// ---------------------------------------------------------------------------------------------
// Raw transactions (for the in-memory chain: scripts are not validated there). The writer is
// test/support/tx.ts; these helpers add the script shapes the watcher tests need.

/** txid (display hex) of a raw tx. */
export function txidOf(raw: Uint8Array): string {
  return parseTransaction(raw).txid;
}

/** A P2TR key for the in-memory chain: spk = OP_1 <x(kG)>, private key k (the "output" key). */
export function taprootTestKey(): { priv: Uint8Array; script: Uint8Array } {
  const priv = secp256k1.utils.randomSecretKey();
  return { priv, script: Uint8Array.from([0x51, 0x20, ...secp256k1.getPublicKey(priv, true).subarray(1)]) };
}

/** OP_RETURN with one push of `data` (direct or PUSHDATA1). */
export function opReturn(data: Uint8Array): Uint8Array {
  return data.length <= 75 ? Uint8Array.from([0x6a, data.length, ...data]) : Uint8Array.from([0x6a, 0x4c, data.length, ...data]);
}

/** A Runestone-shaped script: OP_RETURN OP_13 <push>. */
export function runestone(data: Uint8Array): Uint8Array {
  return Uint8Array.from([0x6a, 0x5d, data.length, ...data]);
}

export { hashToHex, sha256d, toHex };

// ---------------------------------------------------------------------------------------------
// A taproot sender on a real node

/** Minimal BIP86 wallet for tests: coins are tracked locally from the txs it funds and sends. */
export class TestSender implements DropWallet {
  readonly keys = WalletKeys.fromMnemonic(newMnemonic(), 'regtest');
  coins: SpendableCoin[] = [];
  #next = 0;
  #changeNext = 0;

  constructor(readonly node: RegtestNode, readonly source: ChainSource) {}

  /** Funds `count` fresh receive keys with `sats` each, in one tx (not mined). */
  async fund(count: number, sats: bigint): Promise<string> {
    const keys = Array.from({ length: count }, () => this.keys.taprootKey(RECEIVE, this.#next++));
    const txid = await this.node.send(keys.map((k) => ({ address: k.address, sats })));
    const tx = parseTransaction(await this.source.getRawTransaction(txid));
    tx.outputs.forEach((o, vout) => {
      const k = keys.find((x) => toHex(x.script) === toHex(o.script));
      if (k) this.coins.push({ txid, vout, value: o.value, script: k.script, chain: k.chain, index: k.index });
    });
    return txid;
  }

  async fundingForDrop(): Promise<DropFunding> {
    return { network: 'regtest', keys: this.keys, coins: [...this.coins], change: this.#change() };
  }

  #change(): TaprootKeyInfo {
    return this.keys.taprootKey(CHANGE, this.#changeNext);
  }

  async broadcastOwn(built: BuiltTx): Promise<BroadcastResult> {
    const res = await this.source.broadcast(built.raw);
    if (!res.accepted) return res;
    const spent = new Set(built.plan.inputs.map((c) => `${c.txid}:${c.vout}`));
    this.coins = this.coins.filter((c) => !spent.has(`${c.txid}:${c.vout}`));
    const change = built.plan.change;
    if (change && built.changeIndex >= 0) {
      this.#changeNext++;
      const out = built.plan.outputs[built.changeIndex]!;
      this.coins.push({ txid: built.txid, vout: built.changeIndex, value: out.amount, script: change.script, chain: change.chain, index: change.index });
    }
    return res;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoys: cheap OP_RETURN transactions from a P2WPKH key (one nulldata output per tx, btcd policy)

/** A P2WPKH key that fans out coins and spends each into one OP_RETURN decoy. */
export class DecoyMaker {
  readonly priv = secp256k1.utils.randomSecretKey();
  readonly pay = p2wpkh(secp256k1.getPublicKey(this.priv, true), { bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef });

  /** Fans out `count` coins of `sats` from the node's funding wallet (one tx per 250 outputs). */
  async fanOut(node: RegtestNode, source: ChainSource, count: number, sats: bigint): Promise<{ txid: string; vout: number; value: bigint }[]> {
    const coins: { txid: string; vout: number; value: bigint }[] = [];
    for (let left = count; left > 0; left -= 250) {
      const n = Math.min(250, left);
      const txid = await node.send(Array.from({ length: n }, () => ({ script: this.pay.script, sats })));
      parseTransaction(await source.getRawTransaction(txid)).outputs.forEach((o, vout) => {
        if (toHex(o.script) === toHex(this.pay.script)) coins.push({ txid, vout, value: o.value });
      });
    }
    return coins;
  }

  /** One decoy: spends `coin` to an OP_RETURN with `script` plus change, at 2 sat/vB. */
  decoy(coin: { txid: string; vout: number; value: bigint }, dataScript: Uint8Array): Uint8Array {
    const tx = new Transaction({ allowUnknownOutputs: true });
    tx.addInput({ txid: coin.txid, index: coin.vout, witnessUtxo: { script: this.pay.script, amount: coin.value } });
    tx.addOutput({ script: dataScript, amount: 0n });
    const fee = BigInt(2 * (110 + dataScript.length));
    tx.addOutput({ script: this.pay.script, amount: coin.value - fee });
    tx.sign(this.priv);
    tx.finalize();
    return tx.extract();
  }
}

/**
 * Random decoy data scripts: 17..80 random bytes, every fifth Runestone-shaped. btcd relays
 * `OP_RETURN` followed by one push only, so there a Runestone is the bare `OP_RETURN OP_13`
 * (OP_13 counts as a push); Core relays the full `OP_RETURN OP_13 <data>` form.
 */
export function decoyScript(i: number, node: 'btcd' | 'bitcoind'): Uint8Array {
  const len = 17 + (i * 37) % 64;
  const data = new Uint8Array(randomBytes(len));
  if (i % 5 !== 0) return Script.encode(['RETURN', data]);
  return node === 'btcd' ? Uint8Array.of(0x6a, 0x5d) : runestone(data.subarray(0, Math.min(len, 75)));
}

/** Sends raw txs through the node's RPC in batches; returns how many the node accepted. */
export async function submitBatch(node: RegtestNode, raws: readonly Uint8Array[], batch = 100): Promise<number> {
  let ok = 0;
  for (let i = 0; i < raws.length; i += batch) {
    const res = await node.client.batch(raws.slice(i, i + batch).map((r) => ({ method: 'sendrawtransaction', params: [toHex(r)] })));
    ok += res.filter((r) => r.ok).length;
    const bad = res.find((r) => !r.ok);
    if (bad && !bad.ok) throw new Error(`decoy rejected: ${bad.error.message}`);
  }
  return ok;
}

/** Waits until `pred` holds over the events seen so far. */
export async function waitFor(events: WatcherEvent[], pred: (e: WatcherEvent) => boolean, timeoutMs = 20_000): Promise<WatcherEvent> {
  return waitUntil(() => events.find(pred), () => `an event; saw ${events.map((e) => e.type).join(', ') || 'none'}`, { timeoutMs, intervalMs: 20 });
}
