/**
 * Chain steps the PayPub tests take against a real regtest node: the tip, mining to a height,
 * broadcasting raw transactions, and what a broadcast must have come to.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { expect } from 'vitest';
import type { BroadcastResult } from '../../src/chain/types.js';
import type { RegtestNode } from '../../src/regtest/harness.js';

/** The node's tip height. */
export function tipHeight(node: RegtestNode): Promise<number> {
  return node.rpc<number>('getblockcount');
}

/** Mines until the chain is at `height` (nothing when it is there already). */
export async function mineTo(node: RegtestNode, height: number): Promise<void> {
  const tip = await tipHeight(node);
  if (height > tip) await node.mine(height - tip);
}

/** Hands a raw transaction to the node; its verdict, with the node's reason when it refuses. */
export function broadcastRaw(node: RegtestNode, raw: Uint8Array): Promise<BroadcastResult> {
  return node.dialect.sendRawTransaction(node.client, bytesToHex(raw));
}

export function expectAccepted(res: BroadcastResult): void {
  expect(res.accepted, res.accepted ? '' : `node rejected: ${res.reason}`).toBe(true);
}

/** The node refused the transaction, for a reason matching `pattern` when one is given. */
export function expectRejected(res: BroadcastResult, pattern?: RegExp): void {
  expect(res.accepted, res.accepted ? 'node accepted a transaction it should reject' : res.reason).toBe(false);
  if (!res.accepted && pattern) expect(res.reason).toMatch(pattern);
}
