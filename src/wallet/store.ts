/**
 * The wallet database (better-sqlite3, WAL): derived addresses, outputs paying them, wallet
 * transactions, and (through follower-store) the chain follower's cursor, all in one file so a
 * block's effects and the cursor commit together.
 *
 * Amounts are INTEGER satoshis (every amount fits in 2^53) and cross this boundary as bigint.
 * Every multi-row change goes through `transaction()`.
 */
import type Database from 'better-sqlite3';
import { openDatabase } from '../util/sqlite.js';
import { hex } from '@scure/base';
import { migrateFollowerStore } from '../chain/follow/follower-store.js';
import { DeaddropError } from '../util/errors.js';
import type { Network } from '../util/network.js';
import type { KeyChain } from './keys.js';

export const WALLET_DB_FILE = 'wallet.db';
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS addresses (
  chain   INTEGER NOT NULL,
  idx     INTEGER NOT NULL,
  script  BLOB    NOT NULL UNIQUE,
  address TEXT    NOT NULL,
  used    INTEGER NOT NULL DEFAULT 0,
  issued  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (chain, idx)
);
CREATE TABLE IF NOT EXISTS utxos (
  txid     TEXT    NOT NULL,
  vout     INTEGER NOT NULL,
  value    INTEGER NOT NULL,
  script   BLOB    NOT NULL,
  chain    INTEGER NOT NULL,
  idx      INTEGER NOT NULL,
  height   INTEGER,
  coinbase INTEGER NOT NULL DEFAULT 0,
  spent_by TEXT,
  PRIMARY KEY (txid, vout)
);
CREATE INDEX IF NOT EXISTS utxos_spent_by ON utxos (spent_by);
CREATE INDEX IF NOT EXISTS utxos_height ON utxos (height);
CREATE TABLE IF NOT EXISTS txs (
  txid        TEXT    PRIMARY KEY,
  raw         BLOB    NOT NULL,
  height      INTEGER,
  block_hash  TEXT,
  status      TEXT    NOT NULL,
  received    INTEGER NOT NULL DEFAULT 0,
  sent        INTEGER NOT NULL DEFAULT 0,
  fee         INTEGER,
  own         INTEGER NOT NULL DEFAULT 0,
  change_vout INTEGER,
  replaced_by TEXT,
  coinbase    INTEGER NOT NULL DEFAULT 0,
  first_seen  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS txs_height ON txs (height);
CREATE INDEX IF NOT EXISTS txs_status ON txs (status);
`;

/** pending: unconfirmed and believed in the mempool; the others are final states of unconfirmed txs. */
export type TxStatus = 'pending' | 'confirmed' | 'replaced' | 'conflicted' | 'dropped';

export interface AddressRow {
  readonly chain: KeyChain;
  readonly index: number;
  readonly script: Uint8Array;
  readonly address: string;
  readonly used: boolean;
  readonly issued: boolean;
}

export interface UtxoRow {
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  readonly script: Uint8Array;
  readonly chain: KeyChain;
  readonly index: number;
  /** null while unconfirmed. */
  readonly height: number | null;
  readonly coinbase: boolean;
  readonly spentBy: string | null;
}

export interface TxRow {
  readonly txid: string;
  readonly raw: Uint8Array;
  readonly height: number | null;
  readonly blockHash: string | null;
  readonly status: TxStatus;
  /** Sum of this tx's outputs paying the wallet. */
  readonly received: bigint;
  /** Sum of the wallet outputs this tx spends. */
  readonly sent: bigint;
  /** Known for transactions the wallet built. */
  readonly fee: bigint | null;
  readonly own: boolean;
  readonly changeVout: number | null;
  readonly replacedBy: string | null;
  readonly coinbase: boolean;
  /** Unix ms when first seen. */
  readonly firstSeen: number;
}

interface RawAddress { chain: number; idx: number; script: Uint8Array; address: string; used: number; issued: number }
interface RawUtxo { txid: string; vout: number; value: number; script: Uint8Array; chain: number; idx: number; height: number | null; coinbase: number; spent_by: string | null }
interface RawTx {
  txid: string; raw: Uint8Array; height: number | null; block_hash: string | null; status: string; received: number; sent: number;
  fee: number | null; own: number; change_vout: number | null; replaced_by: string | null; coinbase: number; first_seen: number;
}

const toAddress = (r: RawAddress): AddressRow => ({
  chain: r.chain as KeyChain, index: r.idx, script: new Uint8Array(r.script), address: r.address, used: r.used === 1, issued: r.issued === 1,
});
const toUtxo = (r: RawUtxo): UtxoRow => ({
  txid: r.txid, vout: r.vout, value: BigInt(r.value), script: new Uint8Array(r.script), chain: r.chain as KeyChain, index: r.idx,
  height: r.height, coinbase: r.coinbase === 1, spentBy: r.spent_by,
});
const toTx = (r: RawTx): TxRow => ({
  txid: r.txid, raw: new Uint8Array(r.raw), height: r.height, blockHash: r.block_hash, status: r.status as TxStatus,
  received: BigInt(r.received), sent: BigInt(r.sent), fee: r.fee === null ? null : BigInt(r.fee), own: r.own === 1,
  changeVout: r.change_vout, replacedBy: r.replaced_by, coinbase: r.coinbase === 1, firstSeen: r.first_seen,
});

function prepare(db: Database.Database) {
  return {
    addrInsert: db.prepare('INSERT OR IGNORE INTO addresses (chain, idx, script, address) VALUES (?, ?, ?, ?)'),
    addrAll: db.prepare<[], RawAddress>('SELECT * FROM addresses ORDER BY chain, idx'),
    addrChain: db.prepare<[number], RawAddress>('SELECT * FROM addresses WHERE chain = ? ORDER BY idx'),
    addrByScript: db.prepare<[Uint8Array], RawAddress>('SELECT * FROM addresses WHERE script = ?'),
    addrMarkUsed: db.prepare('UPDATE addresses SET used = 1 WHERE chain = ? AND idx = ?'),
    addrMarkIssued: db.prepare('UPDATE addresses SET issued = 1 WHERE chain = ? AND idx = ?'),
    addrNextFree: db.prepare<[number], RawAddress>('SELECT * FROM addresses WHERE chain = ? AND used = 0 AND issued = 0 ORDER BY idx LIMIT 1'),
    addrHighWater: db.prepare<[number], { n: number | null }>('SELECT MAX(idx) AS n FROM addresses WHERE chain = ? AND (used = 1 OR issued = 1)'),
    addrMax: db.prepare<[number], { n: number | null }>('SELECT MAX(idx) AS n FROM addresses WHERE chain = ?'),
    utxoGet: db.prepare<[string, number], RawUtxo>('SELECT * FROM utxos WHERE txid = ? AND vout = ?'),
    utxoInsert: db.prepare(
      `INSERT INTO utxos (txid, vout, value, script, chain, idx, height, coinbase) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (txid, vout) DO UPDATE SET height = excluded.height`,
    ),
    utxoUnspent: db.prepare<[], RawUtxo>('SELECT * FROM utxos WHERE spent_by IS NULL ORDER BY value DESC, txid, vout'),
    utxoAll: db.prepare<[], RawUtxo>('SELECT * FROM utxos ORDER BY height IS NULL, height, txid, vout'),
    utxoOfTx: db.prepare<[string], RawUtxo>('SELECT * FROM utxos WHERE txid = ? ORDER BY vout'),
    utxoSpentBy: db.prepare<[string], RawUtxo>('SELECT * FROM utxos WHERE spent_by = ?'),
    utxoSetSpent: db.prepare('UPDATE utxos SET spent_by = ? WHERE txid = ? AND vout = ?'),
    utxoUnspend: db.prepare('UPDATE utxos SET spent_by = NULL WHERE spent_by = ?'),
    utxoDeleteOfTx: db.prepare('DELETE FROM utxos WHERE txid = ?'),
    utxoSetHeightOfTx: db.prepare('UPDATE utxos SET height = ? WHERE txid = ?'),
    txGet: db.prepare<[string], RawTx>('SELECT * FROM txs WHERE txid = ?'),
    txUpsert: db.prepare(
      `INSERT INTO txs (txid, raw, height, block_hash, status, received, sent, fee, own, change_vout, coinbase, first_seen)
       VALUES (@txid, @raw, @height, @blockHash, @status, @received, @sent, @fee, @own, @changeVout, @coinbase, @firstSeen)
       ON CONFLICT (txid) DO UPDATE SET height = excluded.height, block_hash = excluded.block_hash, status = excluded.status,
         received = MAX(received, excluded.received), sent = MAX(sent, excluded.sent), replaced_by = NULL,
         fee = COALESCE(fee, excluded.fee), own = MAX(own, excluded.own), change_vout = COALESCE(change_vout, excluded.change_vout)`,
    ),
    txSetStatus: db.prepare('UPDATE txs SET status = ?, height = NULL, block_hash = NULL, replaced_by = ? WHERE txid = ?'),
    txAtHeight: db.prepare<[number], RawTx>('SELECT * FROM txs WHERE height = ?'),
    txPending: db.prepare<[], RawTx>("SELECT * FROM txs WHERE status = 'pending' ORDER BY first_seen"),
    txHistory: db.prepare<[number], RawTx>('SELECT * FROM txs ORDER BY height IS NULL DESC, height DESC, first_seen DESC LIMIT ?'),
  };
}

/** Opens (creating if needed) a wallet database file with the shared opener. */
export function openWalletDb(path: string): Database.Database {
  return openDatabase(path);
}

/** Typed access to the wallet tables. All methods are synchronous. */
export class WalletStore {
  readonly db: Database.Database;
  readonly #s: ReturnType<typeof prepare>;

  constructor(db: Database.Database, network: Network) {
    this.db = db;
    db.exec(SCHEMA);
    migrateFollowerStore(db);
    this.#checkMeta(network);
    this.#s = prepare(db);
  }

  #checkMeta(network: Network): void {
    const get = this.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
    const stored = get.get('network')?.value;
    if (stored === undefined) {
      const put = this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
      this.transaction(() => {
        put.run('network', network);
        put.run('schema', String(SCHEMA_VERSION));
      });
    } else if (stored !== network) {
      throw DeaddropError.wrongNetwork(network, stored);
    }
  }

  /** Runs `fn` in one IMMEDIATE sqlite transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // --- addresses ---
  insertAddress(chain: KeyChain, index: number, script: Uint8Array, address: string): void {
    this.#s.addrInsert.run(chain, index, script, address);
  }
  addresses(chain?: KeyChain): AddressRow[] {
    return (chain === undefined ? this.#s.addrAll.all() : this.#s.addrChain.all(chain)).map(toAddress);
  }
  addressByScript(script: Uint8Array): AddressRow | undefined {
    const r = this.#s.addrByScript.get(script);
    return r && toAddress(r);
  }
  markUsed(chain: KeyChain, index: number): void {
    this.#s.addrMarkUsed.run(chain, index);
  }
  markIssued(chain: KeyChain, index: number): void {
    this.#s.addrMarkIssued.run(chain, index);
  }
  /** Lowest address on `chain` neither used nor handed out. */
  nextFreeAddress(chain: KeyChain): AddressRow | undefined {
    const r = this.#s.addrNextFree.get(chain);
    return r && toAddress(r);
  }
  /** Highest index used or issued on `chain`, or -1. */
  highWater(chain: KeyChain): number {
    return this.#s.addrHighWater.get(chain)?.n ?? -1;
  }
  /** Highest derived index on `chain`, or -1. */
  maxDerived(chain: KeyChain): number {
    return this.#s.addrMax.get(chain)?.n ?? -1;
  }

  // --- utxos ---
  utxo(txid: string, vout: number): UtxoRow | undefined {
    const r = this.#s.utxoGet.get(txid, vout);
    return r && toUtxo(r);
  }
  insertUtxo(u: Omit<UtxoRow, 'spentBy'>): void {
    this.#s.utxoInsert.run(u.txid, u.vout, u.value, u.script, u.chain, u.index, u.height, u.coinbase ? 1 : 0);
  }
  unspent(): UtxoRow[] {
    return this.#s.utxoUnspent.all().map(toUtxo);
  }
  allUtxos(): UtxoRow[] {
    return this.#s.utxoAll.all().map(toUtxo);
  }
  outputsOf(txid: string): UtxoRow[] {
    return this.#s.utxoOfTx.all(txid).map(toUtxo);
  }
  spentBy(txid: string): UtxoRow[] {
    return this.#s.utxoSpentBy.all(txid).map(toUtxo);
  }
  setSpent(txid: string, vout: number, spender: string | null): void {
    this.#s.utxoSetSpent.run(spender, txid, vout);
  }
  unspendAllBy(spender: string): void {
    this.#s.utxoUnspend.run(spender);
  }
  deleteOutputsOf(txid: string): void {
    this.#s.utxoDeleteOfTx.run(txid);
  }
  setOutputsHeight(txid: string, height: number | null): void {
    this.#s.utxoSetHeightOfTx.run(height, txid);
  }

  // --- txs ---
  tx(txid: string): TxRow | undefined {
    const r = this.#s.txGet.get(txid);
    return r && toTx(r);
  }
  upsertTx(t: Omit<TxRow, 'replacedBy'>): void {
    this.#s.txUpsert.run({
      txid: t.txid, raw: t.raw, height: t.height, blockHash: t.blockHash, status: t.status, received: t.received, sent: t.sent,
      fee: t.fee, own: t.own ? 1 : 0, changeVout: t.changeVout, coinbase: t.coinbase ? 1 : 0, firstSeen: t.firstSeen,
    });
  }
  setTxStatus(txid: string, status: TxStatus, replacedBy: string | null = null): void {
    this.#s.txSetStatus.run(status, replacedBy, txid);
  }
  txsAtHeight(height: number): TxRow[] {
    return this.#s.txAtHeight.all(height).map(toTx);
  }
  pendingTxs(): TxRow[] {
    return this.#s.txPending.all().map(toTx);
  }
  history(limit = 1000): TxRow[] {
    return this.#s.txHistory.all(limit).map(toTx);
  }
}

/** Hex of a script, the key of the in-memory script index. */
export function scriptKey(script: Uint8Array): string {
  return hex.encode(script);
}
