/**
 * Settling introductions whose send was interrupted (the process was killed, or the node's
 * answer never came): a ledger row still `reserved` after the sender is gone.
 *
 * The ledger records the drop's txid before the broadcast, and the wallet writes the signed
 * transaction before it leaves and settles that record with the node at its next sync
 * (src/wallet/reservations.ts). So, once the wallet has synced:
 * - no txid: the drop was never signed, so never broadcast: `failed`;
 * - the wallet knows the transaction (pending or confirmed): `sent`;
 * - the wallet still holds a broadcast record for it (the node could not be asked yet): left
 *   as it is, for the next start;
 * - otherwise the transaction never reached the node, or the node refused it: `failed`.
 */
import type { IntroductionLedger } from './introductions.js';
import type { Reservation } from '../wallet/reservations.js';
import type { TxRow } from '../wallet/store.js';

/** What settling needs from the wallet. */
export interface SettleWallet {
  transaction(txid: string): Promise<TxRow | undefined>;
  reservations(): Promise<Reservation[]>;
}

/** Counts of introductions settled. */
export interface SettleResult {
  readonly sent: number;
  readonly failed: number;
  readonly pending: number;
}

/**
 * Settles every `reserved` introduction created before `before` (Unix ms): rows made later may
 * belong to a send still running in another process.
 */
export async function settleIntroductions(ledger: IntroductionLedger, wallet: SettleWallet, before: number): Promise<SettleResult> {
  let sent = 0;
  let failed = 0;
  let pending = 0;
  const held = new Set((await wallet.reservations()).map((r) => r.id));
  for (const row of ledger.list()) {
    if (row.status !== 'reserved' || row.createdAt >= before) continue;
    if (row.txid === null || row.vout === null) {
      ledger.markFailed(row.number);
      failed++;
      continue;
    }
    const tx = await wallet.transaction(row.txid);
    if (tx && (tx.status === 'pending' || tx.status === 'confirmed')) {
      ledger.markSent(row.number, row.txid, row.vout);
      sent++;
    } else if (held.has(row.txid)) {
      pending++;
    } else {
      ledger.markFailed(row.number);
      failed++;
    }
  }
  return { sent, failed, pending };
}
