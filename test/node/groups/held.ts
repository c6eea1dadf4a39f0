/**
 * What a removed member holds, and a search through it: every byte string of its database (each
 * sealed value opened with its own node key), tried as message keys and chain keys against a
 * group message. Used by removal.test.ts and files.test.ts.
 */
import { expect } from 'vitest';
import { aeadOpen, utf8 } from '../../../src/node/crypto.js';
import { openWithKey, type GroupMessage } from '../../../src/node/groups/message.js';
import { messageKey, nextChainKey } from '../../../src/node/groups/ratchet.js';
import { toHex } from '../../../src/util/bytes.js';
import type { Party } from './world.js';

/** Every byte string in the party's database, and every sealed one opened with its own key. */
export function everythingHeld(p: Pick<Party, 'identity' | 'db' | 'seed'>): Uint8Array[] {
  const key = p.identity.derive('group-store', new Uint8Array(0));
  const tables = p.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
  const out: Uint8Array[] = [p.seed, key];
  for (const t of tables) {
    for (const row of p.db.prepare(`SELECT * FROM "${t}"`).all() as Record<string, unknown>[]) {
      const hex = (c: string): string => toHex(new Uint8Array(row[c] as Buffer));
      const wheres = [
        row.grp && row.generation !== undefined ? `own:${hex('grp')}:${String(row.generation)}` : '',
        row.sender ? `key:${hex('grp')}:${hex('sender')}:${String(row.generation)}` : '',
        row.idx !== undefined && row.sender ? `skip:${hex('grp')}:${hex('sender')}:${String(row.generation)}:${String(row.idx)}` : '',
        row.id !== undefined && row.grp ? `msg:${hex('grp')}:${String(row.id)}` : '',
      ].filter((w) => w !== '');
      for (const v of Object.values(row)) {
        if (!(v instanceof Uint8Array)) continue;
        const b = new Uint8Array(v);
        out.push(b);
        for (const w of wheres) {
          const opened = b[0] === 1 ? aeadOpen(key, b.subarray(1), utf8(w)) : null;
          if (opened) out.push(opened);
        }
      }
    }
  }
  return out;
}

/** Tries every 32-byte window as a message key and as a chain key ratcheted 0..index+2 steps. */
export function bruteForce(held: readonly Uint8Array[], m: GroupMessage): Uint8Array | null {
  let tried = 0;
  for (const blob of held) {
    for (let i = 0; i + 32 <= blob.length; i++) {
      let ck: Uint8Array = blob.slice(i, i + 32);
      const direct = openWithKey(m, ck);
      if (direct) return direct;
      for (let s = 0; s <= m.index + 2; s++) {
        tried++;
        const pt = openWithKey(m, messageKey(ck));
        if (pt) return pt;
        ck = nextChainKey(ck);
      }
    }
  }
  expect(tried).toBeGreaterThan(100);
  return null;
}
