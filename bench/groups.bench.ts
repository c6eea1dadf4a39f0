/**
 * Group benchmarks (docs/protocol/groups.md):
 *
 * - groups.message.encrypt   messages/s, 256-byte plaintext: ratchet step, HKDF, ChaCha20-Poly1305
 *                            (@noble/ciphers) and the Ed25519 signature. Anchor: libsodium Ed25519
 *                            sign alone, same run, turns alternating (the signature is the ceiling).
 * - groups.message.decrypt   messages/s: Ed25519 verify, ratchet step, HKDF, AEAD open. Anchor:
 *                            libsodium Ed25519 verify alone, same run.
 * - groups.message.post / .receive   the same through GroupMember with its sqlite store
 *                            (in memory): chain state and the message sealed at rest, one
 *                            transaction per message. Anchor: the crypto-only rate above.
 * - groups.add.<n>.*         adding one member to a group of n (10, 100, 1,000):
 *     .adder_ms              the admin's time: sign and apply the op, build the welcome (the whole
 *                            history), seal its sender key to the newcomer. For n = 1,000 beside
 *                            the published OpenMLS figure of issue 14 (about 734 ms to add one member
 *                            to a 1,000-member group): a documented constant, NOT measured here, and
 *                            OpenMLS does different work (a TreeKEM commit and welcome).
 *     .total_cpu_ms          CPU time summed over the whole group: the admin, every other member
 *                            (verify and apply the op, seal its key to the newcomer; one member is
 *                            measured and multiplied), and the newcomer (verify the history, open
 *                            n keys, seal its own key to n members).
 *     .bytes                 bytes sent by everyone for the add (ops, welcome, sealed keys).
 * - groups.remove.<n>.*      removing one member from a group of n, with lazy rotation (groups.md
 *                            section 5): .remover_ms (sign and apply the op, send it),
 *                            .total_cpu_ms (the remover, and every other member verifying and
 *                            applying the op: no key is sealed at removal time), .bytes (the op to
 *                            n-1 members). Then the deferred part, paid once by each member that
 *                            speaks afterwards: .rekey_per_speaker_cpu_ms (its first post: a new key
 *                            sealed to the n-2 others, plus each of them opening it) and
 *                            .rekey_per_speaker_bytes (those n-2 sealed keys). If all n-1 members
 *                            speak, the total is (n-1) times that: O(n^2) still, spread over time
 *                            and only for those who speak. Time lines carry the OpenMLS figure
 *                            (a 1,000-member add, the only published anchor of issue 14) and
 *                            their ratio to it.
 *
 * Each add/remove is repeated on fresh members and the median is reported.
 */
import { ed25519Sign, ed25519Verify, ed25519FromSeed } from '../src/node/crypto.js';
import { openNodeDatabase } from '../src/node/db.js';
import { NodeIdentity } from '../src/node/identity.js';
import { GroupMember, type Outgoing } from '../src/node/groups/member.js';
import { decodeMessage, openWithKey, sealGroupMessage, verifyGroupMessage } from '../src/node/groups/message.js';
import { keyFor, step, type ChainState } from '../src/node/groups/ratchet.js';
import { GroupStore } from '../src/node/groups/store.js';
import { compare, round } from './measure.js';
import type { Emit } from './types.js';

const OPENMLS_ADD_1000_MS = 734;
const OPENMLS_ANCHOR = 'OpenMLS add member to a 1,000-member group, published figure from issue 14 (a documented constant, not measured in this run)';

function member(seedByte: number): { id: NodeIdentity; gm: GroupMember } {
  const seed = new Uint8Array(32);
  new DataView(seed.buffer).setUint32(0, seedByte + 1);
  const id = NodeIdentity.fromSeed(seed);
  return { id, gm: new GroupMember(id, new GroupStore(openNodeDatabase(':memory:'), id)) };
}

const bytesOf = (out: readonly Outgoing[]): number => out.reduce((s, o) => s + o.bytes.length, 0);

function timed<T>(fn: () => T): { ms: number; value: T } {
  const t0 = performance.now();
  const value = fn();
  return { ms: performance.now() - t0, value };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function benchMessages(emit: Emit): void {
  const sender = NodeIdentity.fromSeed(new Uint8Array(32).fill(7));
  const kp = ed25519FromSeed(new Uint8Array(32).fill(7));
  const group = new Uint8Array(32).fill(1);
  const plaintext = new Uint8Array(256).fill(0x61);
  let chain: ChainState = { generation: 1, index: 0, chainKey: new Uint8Array(32).fill(3) };
  const sent: Uint8Array[] = [];
  const encrypt = (): Uint8Array => {
    const { messageKey, next } = step(chain);
    const m = sealGroupMessage(sender, { group, sender: sender.publicKey, generation: 1, index: chain.index }, messageKey, plaintext);
    chain = next;
    if (sent.length < 200_000) sent.push(m);
    return m;
  };
  const probe = new Uint8Array(73 + 256 + 16);
  const enc = compare(encrypt, () => ed25519Sign(probe, kp.secretKey), { rounds: 5, sliceMs: 200 });
  const encRate = 1000 / enc.ours.medianMs;
  const signRate = 1000 / enc.anchor.medianMs;
  emit({ name: 'groups.message.encrypt', unit: 'messages/s', value: round(encRate), anchor: 'libsodium Ed25519 sign alone, same run (the ceiling)', anchorValue: round(signRate), ratio: round(encRate / signRate) });

  let rx: ChainState = { generation: 1, index: 0, chainKey: new Uint8Array(32).fill(3) };
  let i = 0;
  const sig = ed25519Sign(probe, kp.secretKey);
  const decrypt = (): Uint8Array | null => {
    const m = decodeMessage(sent[i++ % sent.length]!);
    if (!verifyGroupMessage(m)) throw new Error('bench: bad signature');
    const k = keyFor(rx, m.index, []);
    if (!k) throw new Error('bench: no key');
    rx = k.chain;
    return openWithKey(m, k.messageKey);
  };
  const dec = compare(decrypt, () => ed25519Verify(sig, probe, kp.publicKey), { rounds: 5, sliceMs: 200 });
  const decRate = 1000 / dec.ours.medianMs;
  const verifyRate = 1000 / dec.anchor.medianMs;
  emit({ name: 'groups.message.decrypt', unit: 'messages/s', value: round(decRate), anchor: 'libsodium Ed25519 verify alone, same run (the ceiling)', anchorValue: round(verifyRate), ratio: round(decRate / verifyRate) });

  // Through GroupMember and its store.
  const a = member(1);
  const b = member(2);
  const { group: g } = a.gm.create('bench');
  const added = a.gm.add(g, b.id.publicKey);
  for (const o of added) if (o.kind === 'welcome') for (const k of b.gm.receiveWelcome(o.bytes).outgoing) a.gm.receiveKey(k.bytes);
  for (const o of added) if (o.kind === 'key') b.gm.receiveKey(o.bytes);
  for (const o of a.gm.post(g, plaintext).outgoing) if (o.kind === 'key') b.gm.receiveKey(o.bytes);
  const N = 900; // below ROTATE_AFTER_MESSAGES: one generation, all in flight at once
  const msgs: Uint8Array[] = [];
  const post = timed(() => {
    for (let j = 0; j < N; j++) {
      const r = a.gm.post(g, plaintext);
      for (const o of r.outgoing) if (o.kind === 'key') b.gm.receiveKey(o.bytes);
      msgs.push(r.message);
    }
  });
  const recv = timed(() => {
    for (const m of msgs) if (b.gm.receiveMessage(m).status !== 'ok') throw new Error('bench: receive failed');
  });
  const postRate = N / (post.ms / 1000);
  const recvRate = N / (recv.ms / 1000);
  emit({ name: 'groups.message.post', unit: 'messages/s', value: round(postRate), anchor: 'groups.message.encrypt (crypto only), same run', anchorValue: round(encRate), ratio: round(postRate / encRate) });
  emit({ name: 'groups.message.receive', unit: 'messages/s', value: round(recvRate), anchor: 'groups.message.decrypt (crypto only), same run', anchorValue: round(decRate), ratio: round(recvRate / decRate) });
}

/** A group of n: the admin, one fully synced member, n-2 members known by key only. */
function groupOf(n: number): { admin: ReturnType<typeof member>; bob: ReturnType<typeof member>; group: Uint8Array; next: number } {
  const admin = member(1_000_000);
  const bob = member(1_000_001);
  const { group } = admin.gm.create(`bench ${n}`);
  let welcome: Uint8Array | null = null;
  for (const o of admin.gm.add(group, bob.id.publicKey)) if (o.kind === 'welcome') welcome = o.bytes;
  for (let i = 2; i < n; i++) admin.gm.add(group, member(i).id.publicKey);
  // bob joins with the whole history at once (a late welcome is a valid welcome)
  const ops = admin.gm.history(group);
  for (const k of bob.gm.receiveWelcome(welcome!).outgoing) if (k.to.every((x, j) => x === admin.id.publicKey[j])) admin.gm.receiveKey(k.bytes);
  for (const op of ops) bob.gm.receiveOp(op);
  return { admin, bob, group, next: n };
}

function benchAdd(emit: Emit, n: number, repeats: number): void {
  const { admin, bob, group } = groupOf(n);
  const adder: number[] = [];
  const total: number[] = [];
  const bytes: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const newcomer = member(2_000_000 + r);
    const a = timed(() => admin.gm.add(group, newcomer.id.publicKey));
    const op = a.value.find((o) => o.kind === 'op')!;
    const welcome = a.value.find((o) => o.kind === 'welcome')!;
    // one existing member: verify and apply the op, seal its key to the newcomer
    const m = timed(() => bob.gm.receiveOp(op.bytes));
    // the newcomer: verify the history, derive, make and seal its key to every member
    const w = timed(() => newcomer.gm.receiveWelcome(welcome.bytes));
    // ...and open the n keys the members send it (measured on the two we have, times n/2)
    const keys = [...a.value, ...m.value.outgoing].filter((o) => o.kind === 'key');
    const k = timed(() => keys.forEach((o) => newcomer.gm.receiveKey(o.bytes)));
    const others = n - 2; // members besides the admin and bob
    const perMemberBytes = bytesOf(m.value.outgoing);
    adder.push(a.ms);
    total.push(a.ms + m.ms * (others + 1) + w.ms + (k.ms / keys.length) * n);
    bytes.push(bytesOf(a.value) + perMemberBytes * (others + 1) + bytesOf(w.value.outgoing));
    // bring bob's view of the newcomer's key along
    for (const o of w.value.outgoing) if (o.to.every((x, j) => x === bob.id.publicKey[j])) bob.gm.receiveKey(o.bytes);
  }
  const adderMs = median(adder);
  if (n === 1000) {
    emit({ name: `groups.add.${n}.adder_ms`, unit: 'ms', value: round(adderMs), anchor: OPENMLS_ANCHOR, anchorValue: OPENMLS_ADD_1000_MS, ratio: round(adderMs / OPENMLS_ADD_1000_MS) });
  } else emit({ name: `groups.add.${n}.adder_ms`, unit: 'ms', value: round(adderMs) });
  const totalMs = median(total);
  if (n === 1000) {
    emit({ name: `groups.add.${n}.total_cpu_ms`, unit: 'ms', value: round(totalMs), anchor: OPENMLS_ANCHOR, anchorValue: OPENMLS_ADD_1000_MS, ratio: round(totalMs / OPENMLS_ADD_1000_MS) });
  } else emit({ name: `groups.add.${n}.total_cpu_ms`, unit: 'ms', value: round(totalMs) });
  emit({ name: `groups.add.${n}.bytes`, unit: 'bytes', value: Math.round(median(bytes)) });
}

function benchRemove(emit: Emit, n: number, repeats: number): void {
  const { admin, bob, group } = groupOf(n + repeats);
  const remover: number[] = [];
  const total: number[] = [];
  const bytes: number[] = [];
  const speaker: number[] = [];
  const speakerBytes: number[] = [];
  const plaintext = new Uint8Array(256).fill(0x62);
  for (let r = 0; r < repeats; r++) {
    const size = n + repeats - r;
    const victim = member(2 + r).id.publicKey;
    const a = timed(() => admin.gm.remove(group, victim));
    const op = a.value.find((o) => o.kind === 'op')!;
    // every other member verifies and applies the op; with lazy rotation it sends nothing now
    const m = timed(() => bob.gm.receiveOp(op.bytes));
    if (m.value.outgoing.length > 0) throw new Error('bench: a removal made a member send keys at once');
    remover.push(a.ms);
    total.push(a.ms + m.ms * (size - 2));
    bytes.push(bytesOf(a.value) + bytesOf(m.value.outgoing) * (size - 2));
    // the price is paid by each member that speaks afterwards: its first post rotates (a new key
    // sealed to the size-2 others) and each of them opens that key once (measured on the admin)
    const p = timed(() => bob.gm.post(group, plaintext));
    const keys = p.value.outgoing.filter((o) => o.kind === 'key');
    if (keys.length !== size - 2) throw new Error(`bench: expected ${size - 2} keys, got ${keys.length}`);
    const toAdmin = keys.find((o) => o.to.every((x, j) => x === admin.id.publicKey[j]))!;
    const k = timed(() => admin.gm.receiveKey(toAdmin.bytes));
    speaker.push(p.ms + k.ms * (size - 2));
    speakerBytes.push(bytesOf(keys));
  }
  const anchored = (name: string, ms: number): void => {
    emit({ name, unit: 'ms', value: round(ms), anchor: OPENMLS_ANCHOR, anchorValue: OPENMLS_ADD_1000_MS, ratio: round(ms / OPENMLS_ADD_1000_MS) });
  };
  anchored(`groups.remove.${n}.remover_ms`, median(remover));
  anchored(`groups.remove.${n}.total_cpu_ms`, median(total));
  emit({ name: `groups.remove.${n}.bytes`, unit: 'bytes', value: Math.round(median(bytes)) });
  anchored(`groups.remove.${n}.rekey_per_speaker_cpu_ms`, median(speaker));
  emit({ name: `groups.remove.${n}.rekey_per_speaker_bytes`, unit: 'bytes', value: Math.round(median(speakerBytes)) });
}

export async function run(emit: Emit): Promise<void> {
  benchMessages(emit);
  for (const n of [10, 100, 1000]) {
    const repeats = n === 1000 ? 3 : 5;
    benchAdd(emit, n, repeats);
    benchRemove(emit, n, repeats);
  }
}
