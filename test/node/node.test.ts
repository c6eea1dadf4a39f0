import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { PeerNode } from '../../src/node/node.js';
import type { PeerNodeEvents, PeerNodeOptions } from '../../src/node/node.js';
import { dial } from '../../src/node/transport/ws-transport.js';
import { NodeIdentity } from '../../src/node/identity.js';
import { MSG, encodeClock, encodeEntries, encodeInvite } from '../../src/node/wire.js';
import { tokenProof } from '../../src/node/introduction-token.js';
import { ZERO_HASH, createEntry } from '../../src/node/log/codec.js';
import { sha256, utf8 } from '../../src/node/crypto.js';
import type { LogEntry } from '../../src/node/log/codec.js';
import { toHex } from '../../src/util/bytes.js';
import { waitUntil } from '../support/wait.js';
import { expectCode } from '../support/errors.js';

const root = mkdtempSync(join(tmpdir(), 'dd-node-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const running = new Set<PeerNode>();
afterEach(async () => {
  await Promise.all([...running].map((n) => n.close()));
  running.clear();
});

let dirCounter = 0;
function seedOf(name: string): Uint8Array {
  return sha256(utf8(`test seed ${name}`));
}

/** Starts a node; `dir` keeps its sqlite file across restarts. */
async function start(name: string, extra: Partial<PeerNodeOptions> & { dir?: string } = {}): Promise<PeerNode & { dir: string }> {
  const dir = extra.dir ?? join(root, `${name}-${dirCounter++}`);
  const node = new PeerNode({
    seed: seedOf(name),
    dbPath: `${dir}.sqlite`,
    reconnectMinMs: 100,
    reconnectMaxMs: 400,
    inviteWaitMs: 2000,
    channel: { handshakeTimeoutMs: 2000 },
    ...extra,
  });
  await node.ready();
  running.add(node);
  return Object.assign(node, { dir });
}

async function stop(node: PeerNode): Promise<void> {
  await node.close();
  running.delete(node);
}

function next<K extends keyof PeerNodeEvents & string>(
  node: PeerNode,
  event: K,
  pred: (...args: Parameters<PeerNodeEvents[K]>) => boolean = () => true,
  timeoutMs = 5000,
): Promise<Parameters<PeerNodeEvents[K]>> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), timeoutMs);
    const l = ((...args: Parameters<PeerNodeEvents[K]>) => {
      if (!pred(...args)) return;
      clearTimeout(t);
      node.off(event, l);
      resolve(args);
    }) as PeerNodeEvents[K];
    node.on(event, l);
  });
}

function connectedTo(a: PeerNode, b: PeerNode): boolean {
  return a.connectedPeers().some((p) => toHex(p) === toHex(b.id));
}

/** `inviter` creates an invite and `joiner` uses it. */
async function introduce(inviter: PeerNode, joiner: PeerNode): Promise<void> {
  const intro = inviter.createIntroductionToken();
  const added = next(inviter, 'contact.added');
  await joiner.bootstrapFromIntroduction(intro);
  await added;
  await waitUntil(() => connectedTo(inviter, joiner) && connectedTo(joiner, inviter), 'connectedTo(inviter, joiner) && connectedTo(joiner, inviter)', { timeoutMs: 5_000, intervalMs: 10 });
}

function replicatedOn(node: PeerNode, author: Uint8Array, seq: number): Promise<unknown> {
  return next(node, 'entry.replicated', (e: LogEntry) => toHex(e.author) === toHex(author) && e.seq === seq);
}

describe('three nodes on loopback', () => {
  it('connect through invite tokens and replicate each other within 1 s', async () => {
    const [a, b, c] = await Promise.all([start('alice'), start('bob'), start('carol')]);
    await introduce(a, b);
    await introduce(a, c);
    await introduce(b, c);
    for (const n of [a, b, c]) expect(n.contacts().length).toBe(2);

    for (const author of [a, b, c]) {
      const others = [a, b, c].filter((n) => n !== author);
      const seq = (author.store.feed(author.id)?.length ?? 0) + 1;
      const arrivals = others.map((o) => replicatedOn(o, author.id, seq).then(() => performance.now()));
      const t0 = performance.now();
      author.append({ header: { type: 'post', app: 'test' }, body: utf8(`hello from ${seq}`) });
      const latencies = (await Promise.all(arrivals)).map((t) => t - t0);
      for (const ms of latencies) expect(ms).toBeLessThanOrEqual(1000);
    }
    // the stored copies are identical, with the same Merkle root
    expect(toHex(b.store.treeRoot(a.id))).toBe(toHex(a.store.treeRoot(a.id)));
    expect(toHex(c.store.treeRoot(a.id))).toBe(toHex(a.store.treeRoot(a.id)));
  });

  it('relays a followed feed through a common contact and resumes after a disconnect', async () => {
    const [a, b, c] = await Promise.all([start('alice'), start('bob'), start('carol')]);
    await introduce(a, b);
    await introduce(b, c);
    c.follow(a.id);
    b.follow(c.id);
    a.appendBatch(Array.from({ length: 20 }, (_, i) => ({ header: { type: 'post' }, body: utf8(`#${i}`) })));
    await waitUntil(() => c.store.feed(a.id)?.length === 20, 'c.store.feed(a.id)?.length === 20', { timeoutMs: 5_000, intervalMs: 10 });
    // c goes away, a writes more, c comes back and catches up from where it was
    const cDir = (c as PeerNode & { dir: string }).dir;
    await stop(c);
    a.appendBatch(Array.from({ length: 30 }, (_, i) => ({ header: { type: 'post' }, body: utf8(`later #${i}`) })));
    await waitUntil(() => b.store.feed(a.id)?.length === 50, 'b.store.feed(a.id)?.length === 50', { timeoutMs: 5_000, intervalMs: 10 });
    const c2 = await start('carol', { dir: cDir });
    await waitUntil(() => c2.store.feed(a.id)?.length === 50, 'c2.store.feed(a.id)?.length === 50', { timeoutMs: 5_000, intervalMs: 10 });
    expect(toHex(c2.store.treeRoot(a.id))).toBe(toHex(a.store.treeRoot(a.id)));
  });
});

describe('invite tokens', () => {
  it('are single-use, expire, and must be proven; the inviter stays up', async () => {
    const [a, b, c, d] = await Promise.all([start('alice'), start('bob'), start('carol'), start('dave')]);
    const intro = a.createIntroductionToken();
    await b.bootstrapFromIntroduction(intro);
    // replay by someone else
    await expectCode(c.bootstrapFromIntroduction(intro), 'REJECTED');
    // replay by the same joiner is refused too, and the two stay (or get back) connected
    await expectCode(b.bootstrapFromIntroduction(intro), 'REJECTED');
    await waitUntil(() => connectedTo(a, b) && connectedTo(b, a), 'connectedTo(a, b) && connectedTo(b, a)', { timeoutMs: 5_000, intervalMs: 10 });
    const expired = a.createIntroductionToken({ ttlMs: 1 });
    await new Promise((r) => setTimeout(r, 20));
    await expectCode(c.bootstrapFromIntroduction(expired), 'REJECTED');
    // a guessed secret
    const fresh = a.createIntroductionToken();
    const forged = fresh.token.slice();
    forged[31] = forged[31]! ^ 1;
    await expectCode(c.bootstrapFromIntroduction({ ...fresh, token: forged }), 'REJECTED');
    // an introduction whose pairwise key the inviter does not own: the joiner refuses it
    const other = a.createIntroductionToken();
    await expect(d.bootstrapFromIntroduction({ ...other, pairwiseKey: sha256(utf8('not it')) })).rejects.toMatchObject({
      code: 'REJECTED',
    });
    expect(c.contacts().length).toBe(0);
    expect(d.contacts().length).toBe(0);
    // the inviter still works: the untouched, unexpired invite succeeds
    await c.bootstrapFromIntroduction(fresh);
    expect(a.contacts().map((x) => toHex(x.node))).toEqual(expect.arrayContaining([toHex(b.id), toHex(c.id)]));
  });
});

describe('whereabouts', () => {
  it('a node restarted on another port is found again through a contact', async () => {
    const a = await start('alice');
    const b = await start('bob');
    const c = await start('carol');
    await introduce(a, b);
    await introduce(a, c);
    await introduce(b, c);
    const oldA = a.endpoints[0]!;
    await stop(c);
    await stop(a);
    // alice moves: new port; bob learns it directly, carol is away
    const a2 = await start('alice', { dir: a.dir });
    expect(a2.endpoints[0]).not.toBe(oldA);
    await waitUntil(() => connectedTo(a2, b), 'connectedTo(a2, b)', { timeoutMs: 5_000, intervalMs: 10 });
    // carol comes back on a new port too: neither can reach the other's old address,
    // only bob (unchanged) knows where both are now
    const c2 = await start('carol', { dir: c.dir });
    const moved = next(c2, 'whereabouts.updated', (r) => toHex(r.node) === toHex(a2.id), 6000);
    await waitUntil(() => connectedTo(c2, a2) && connectedTo(a2, c2), 'connectedTo(c2, a2) && connectedTo(a2, c2)', { timeoutMs: 6000, intervalMs: 10 });
    const [record] = await moved;
    expect(record.endpoints[0]).toBe(a2.endpoints[0]);
    expect(c2.contacts().find((x) => toHex(x.node) === toHex(a2.id))!.endpoints[0]).toBe(a2.endpoints[0]);
    const seq = a2.store.feed(a2.id)?.length ?? 0;
    const arrived = replicatedOn(c2, a2.id, seq + 1);
    a2.append({ header: { type: 'post' }, body: utf8('moved') });
    await arrived;
  });

  it('beacon.needed fires when no contact is reachable, and a contact can import the bundle', async () => {
    const a = await start('alice', { beaconAfterMs: 150, whereaboutsTtlMs: 60_000 });
    const b = await start('bob');
    await introduce(a, b);
    await stop(b);
    const [bundle] = await next(a, 'beacon.needed', () => true, 3000);
    const b2 = await start('bob', { dir: b.dir, reconnectMinMs: 60_000 });
    // b2 may already have reconnected to a; importing the (same or newer) bundle must be safe either way
    const fresh = a.whereabouts();
    expect(typeof b2.importWhereabouts(bundle)).toBe('boolean');
    b2.importWhereabouts(fresh.bundle);
    const rec = b2.contacts().find((x) => toHex(x.node) === toHex(a.id))!;
    expect(rec.endpoints[0]).toBe(a.endpoints[0]);
    expect(rec.whereaboutsSeq).toBeGreaterThanOrEqual(fresh.record.seq);
  });
});

describe('forks', () => {
  it('a key that writes two histories is detected and the proof reaches nodes that saw one branch', async () => {
    const [a, b, c] = await Promise.all([start('alice'), start('bob'), start('carol')]);
    // mallory runs two nodes with the same key and different data
    const m1 = await start('mallory');
    const m2 = await start('mallory');
    await introduce(a, b);
    await introduce(a, c);
    await introduce(m1, a);
    await introduce(m2, b);
    const forks = [a, b, c].map((n) => next(n, 'fork.detected', () => true, 5000));
    // branches of different lengths: the check at min(seq) must still find the fork
    m1.appendBatch([1, 2, 3].map((i) => ({ header: { type: 'post' }, body: utf8(`branch one #${i}`) })));
    m2.append({ header: { type: 'post' }, body: utf8('branch two') });
    const proofs = await Promise.all(forks);
    for (const [p] of proofs) {
      expect(toHex(p.a.author)).toBe(toHex(m1.id));
      expect(p.a.seq).toBe(1);
    }
    // nothing valid was lost: what a stored (from whichever branch reached it first) is still there
    await waitUntil(() => a.store.feed(m1.id)?.forked === true && c.store.feed(m1.id)?.forked === true, 'a.store.feed(m1.id)?.forked === true && c.store.feed(m1.id)?.forked === true', { timeoutMs: 5_000, intervalMs: 10 });
    const first = a.store.get(m1.id, 1)!;
    const candidates = [m1.store.get(m1.id, 1)!, m2.store.get(m2.id, 1)!].map((e) => toHex(e.hash));
    expect(candidates).toContain(toHex(first.hash));
    expect(c.store.forkProof(m1.id)).not.toBeNull();
  });
});

describe('bad peers against a node', () => {
  it('garbage, strangers without invites, and wrong first messages are dropped; the node stays up', async () => {
    const a = await start('alice', { inviteWaitMs: 300 });
    const url = a.endpoints[0]!;
    const rejected: string[] = [];
    a.on('peer.rejected', (r) => rejected.push(r));

    const ws = new WebSocket(url);
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    ws.send(Buffer.from('definitely not noise'));
    await new Promise((r) => ws.once('close', r));

    const stranger = NodeIdentity.fromSeed(seedOf('stranger'));
    const silent = await dial(url, stranger);
    await new Promise<void>((r) => silent.once('close', () => r()));

    const rude = await dial(url, stranger);
    const rudeClosed = new Promise<void>((r) => rude.once('close', () => r()));
    rude.send(MSG.CLOCK, encodeClock([]));
    await rudeClosed;

    expect(rejected).toEqual(expect.arrayContaining(['bad-handshake', 'no invite']));
    expect(rejected.some((r) => r.startsWith('protocol'))).toBe(true);
    expect(a.contacts().length).toBe(0);
    const b = await start('bob');
    await introduce(a, b);
  });

  it('a contact that sends a badly signed entry is dropped', async () => {
    const a = await start('alice');
    const mallory = NodeIdentity.fromSeed(seedOf('mallory'));
    const intro = a.createIntroductionToken();
    const ch = await dial(intro.endpoints[0]!, mallory);
    const accepted = new Promise<number>((resolve) => ch.on('frame', (type) => resolve(type)));
    ch.send(MSG.INVITE, encodeInvite({ tokenId: intro.token.subarray(0, 16), mac: tokenProof(intro.token, ch.handshakeHash!), endpoints: [] }));
    expect(await accepted).toBe(MSG.INVITE_OK);
    const rejected = next(a, 'peer.rejected', (r) => r.includes('bad-signature'));
    const closed = new Promise<void>((r) => ch.once('close', () => r()));
    const forged = createEntry(mallory, { seq: 1, prev: ZERO_HASH, timestamp: 1, header: { type: 'post' }, body: utf8('x') }).raw.slice();
    forged[forged.length - 1] = forged[forged.length - 1]! ^ 1;
    ch.send(MSG.ENTRIES, encodeEntries([forged]));
    await Promise.all([rejected, closed]);
    expect(a.store.feed(mallory.publicKey)?.length ?? 0).toBe(0);
  });

  it('close() is idempotent, frees the port, and later calls throw CLOSED', async () => {
    const a = await start('alice');
    const url = a.endpoints[0]!;
    await Promise.all([a.close(), a.close()]);
    running.delete(a);
    expect(() => a.append({ header: { type: 'x' } })).toThrow(/closed/);
    await expectCode(dial(url, NodeIdentity.fromSeed(seedOf('x'))), 'BACKEND_UNREACHABLE');
  });
});
