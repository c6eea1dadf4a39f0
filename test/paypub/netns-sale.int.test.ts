/**
 * Issue 12, "Tested on several hosts": a PayPub sale between a seller and buyers on different
 * hosts completes while the seller's daemon is stopped between publishing and the claim.
 *
 * The network (test/support/netns.ts): a bridged "internet" with the seller's host, one buyer's
 * host and four storage servers' hosts on it, and a second buyer behind a NAT router. Every party
 * is a real `deaddrop start` daemon in its own namespace (test/support/daemon-netns.ts); the chain
 * is a btcd regtest node on the root namespace's loopback, relayed to 127.0.0.1 in each namespace,
 * so its traffic never shows on the test's network.
 *
 * Flow, as users on those hosts would do it:
 * 1. The four storage servers run `start --storage-server` on their host's address. The seller
 *    becomes their contact the way the product makes contacts: a drop on chain to each server's
 *    invite, naming the seller's node endpoint; each server's daemon answers it, and their signed
 *    announcements reach the seller's node by replication.
 * 2. The seller publishes (2-of-4 shares, happy 3): the bundle goes onto the servers. Publishing
 *    completes with the sample reveal after the beacon: only the seller holds the sampled keys, so
 *    its daemon must still be up then. The offer it hands out then carries the read capability,
 *    the servers holding shares, the anchor block and the reveal.
 * 3. The seller's daemon is STOPPED (its process is gone, nothing listens on its host).
 * 4. Each buyer, given the offer text, verifies and fetches every chunk from the storage servers,
 *    and pledges (one through its daemon's API, the other with `deaddrop paypub verify|pledge` on
 *    its host); the pledges carry their hint on chain. Blocks are mined.
 * 5. The seller's daemon starts again, finds both pledges by their hints and claims on its own;
 *    both buyers' daemons unlock byte-identical content.
 *
 * nftables counters on the bridge count every packet between each buyer and the seller's host over
 * the whole run, and the buyers' TCP tables are sampled while the seller is stopped: not one packet
 * then (nor at any other time: a buyer never talks to the seller's host), while the counters do see
 * the buyers' reads from the servers. Afterwards, neither buyer's address (nor the NAT's) is in the
 * seller's datadir, events, sale state, contacts or log, nor kept by the servers (which saw it
 * while serving the reads).
 *
 * Set-up shortcut: the keystores are written in-process with a cheap scrypt (what `deaddrop init`
 * writes, at lower cost), since seven default-cost unlocks on a shared 2-core machine take most of
 * a minute; everything after that goes through the daemons' APIs.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeOfferLink } from '../../src/paypub/link.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { createKeystore } from '../../src/wallet/keystore.js';
import { BridgeCounters, ChainRelay, NetnsDaemon, datadirText, ipPattern } from '../support/daemon-netns.js';
import { NetLab, ROUTER_WAN_IP, netnsUnavailable, tearDownLab } from '../support/netns.js';
import { FAST_SCRYPT, outboxPath, unlockedPath } from '../support/paypub-parties.js';
import { mineTo } from '../support/regtest-tx.js';
import { waitUntil } from '../support/wait.js';

const skip = netnsUnavailable();
const PASS = 'paypub across hosts';
const SERVERS = ['s0', 's1', 's2', 's3'];
const STORAGE_PORT = 7400;
const NODE_PORT = 9735;

interface Sale {
  claims: { txid: string; status: string }[];
  pledges: { txid: string; own: boolean; height: number | null }[];
  sample: { revealed: boolean };
  unlocked: { path: string } | null;
}

describe.skipIf(skip !== null)(`PayPub across network namespaces: seller, two buyers (one behind NAT), four storage servers${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: NetLab;
  let btcd: RegtestNode;
  let relay: ChainRelay;
  let root: string;
  const daemons: NetnsDaemon[] = [];
  let counters: BridgeCounters;
  /** Established TCP peers of the buyers' namespaces, sampled while the seller is stopped. */
  const seen = { buyer1: new Set<string>(), buyer2: new Set<string>() };
  let sampler: NodeJS.Timeout | undefined;

  function sample(): void {
    for (const host of ['buyer1', 'buyer2'] as const) {
      try {
        for (const p of lab.tcpPeers(host)) seen[host].add(p.replace(/:\d+$/, ''));
      } catch {
        // the namespace is being removed
      }
    }
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'dd-paynet-'));
    lab = NetLab.create(['seller', 'buyer1', ...SERVERS], ['buyer2']);
    btcd = await startRegtestNode({ kind: 'btcd' });
    relay = await ChainRelay.open(root, btcd.rpcPort);
    await Promise.all(['seller', 'buyer1', 'buyer2', ...SERVERS].map((h) => relay.into(lab, h)));
    // Each buyer as the seller's host sees it (buyer2 behind the NAT: the router's address), the
    // seller's host, and every server.
    const ip = (h: string): string => lab.host(h).ip;
    counters = BridgeCounters.create(lab, {
      buyer1_seller: [ip('buyer1'), ip('seller')], buyer2_seller: [ROUTER_WAN_IP, ip('seller')],
      ...Object.fromEntries(SERVERS.map((s) => [`buyer1_${s}`, [ip('buyer1'), ip(s)] as const])),
      ...Object.fromEntries(SERVERS.map((s) => [`buyer2_${s}`, [ROUTER_WAN_IP, ip(s)] as const])),
    });
  }, 60_000);

  afterAll(async () => {
    if (sampler) clearInterval(sampler);
    await tearDownLab(lab, async () => {
      await Promise.all(daemons.map((d) => d.stop()));
      await relay?.close();
      await btcd?.stop();
    }, root);
  }, 60_000);

  it('sells to buyers on two other hosts through four storage servers while the seller\'s daemon is stopped', async () => {
    const url = new URL(btcd.backendUrl);
    const backend = ['--backend', `btcd://127.0.0.1:${url.port}`];
    const home = join(root, 'home');
    mkdirSync(home, { mode: 0o700 });
    // The node's password goes in the environment, never in argv (`ps`).
    const env = { DEADDROP_BACKEND_AUTH: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`, DEADDROP_PASSPHRASE: PASS };
    const hosts = ['seller', 'buyer1', 'buyer2', ...SERVERS];
    const dir = (h: string): string => join(root, h);
    // What `deaddrop init` writes, with a cheap scrypt (stored in the keystore, so every unlock at
    // `start` is cheap too): seven default-cost unlocks on two cores take most of a minute.
    const birthdayHeight = await btcd.rpc<number>('getblockcount');
    await Promise.all(hosts.map((h) => createKeystore(dir(h), { passphrase: PASS, network: 'regtest', scrypt: FAST_SCRYPT, birthdayHeight })));

    // Every daemon's peer node (and a server's storage listener, which follows it) on its host's address.
    const start = async (h: string, startArgs: string[] = [], extra: Record<string, string> = {}): Promise<NetnsDaemon> => {
      const d = await NetnsDaemon.start({ lab, host: h, datadir: dir(h), args: backend, home, startArgs, env: { ...env, DEADDROP_NODE_HOST: lab.host(h).ip, ...extra } });
      daemons.push(d); // stopped in afterAll whatever happens next
      return d;
    };
    const all = async (starting: Promise<NetnsDaemon>[]): Promise<NetnsDaemon[]> => {
      // Settled first: a daemon that started while another failed must still be stopped.
      const r = await Promise.allSettled(starting);
      const failed = r.find((x) => x.status === 'rejected');
      if (failed) throw failed.reason;
      return r.map((x) => (x as PromiseFulfilledResult<NetnsDaemon>).value);
    };
    // The buyers are needed only once the offer exists: they start while the seller sets up.
    const buyersStarting = all([start('buyer1'), start('buyer2')]);
    buyersStarting.catch(() => undefined); // awaited below
    const [first, ...servers] = await all([
      start('seller', ['--node-port', String(NODE_PORT)], { DEADDROP_STORAGE_SHARES: '2/3/4' }),
      ...SERVERS.map((s) => start(s, ['--storage-server', '--storage-quota', '64M'], { DEADDROP_STORAGE_PORT: String(STORAGE_PORT) })),
    ]);
    let seller = first!;
    const by = (h: string): NetnsDaemon => servers.find((d) => d.name === h)!;
    const balance = (d: NetnsDaemon): Promise<boolean> => waitUntil(async () => (await d.api<{ confirmed: string }>('GET', '/wallet/balance')).confirmed !== '0', `${d.name}'s coins`, 30_000, 500);
    const fund = async (d: NetnsDaemon): Promise<void> => void await btcd.fund((await d.api<{ address: string }>('POST', '/wallet/address')).address, 2_000_000);
    await fund(seller);
    await btcd.mine(1);
    await balance(seller);

    // 1. The seller becomes a contact of each storage server: a drop to the server's invite naming
    //    the seller's node endpoint; the server's daemon dials it and their feeds replicate.
    const sellerNode = await seller.api<{ id: string; endpoints: string[] }>('GET', '/node');
    const endpoint = sellerNode.endpoints.find((e) => e.includes(lab.host('seller').ip));
    expect(endpoint).toBeDefined();
    for (const server of servers) {
      const { uri } = await server.api<{ uri: string }>('GET', '/invite');
      await seller.api('POST', '/drops/send', { recipient: uri, endpoints: [endpoint], feeRate: 2 });
    }
    await btcd.mine(1);
    const serverUrls = SERVERS.map((s) => `ws://${lab.host(s).ip}:${STORAGE_PORT}`).sort();
    await waitUntil(async () => {
      const st = await seller.api<{ knownServers: { endpoint: string; quota: number }[] }>('GET', '/storage/server');
      return st.knownServers.filter((k) => k.quota > 0).map((k) => k.endpoint).sort().join() === serverUrls.join();
    }, () => `the seller verified the four servers' announcements (seller's log: ${seller.log.slice(-1500)})`, 60_000, 500);

    // The buyers' coins confirm with the anchor.
    const buyers = await buyersStarting;
    for (const b of buyers) await fund(b);

    // 2. Publish into storage; the daemon anchors, stores, and reveals the sample after the beacon.
    const file = new Uint8Array(randomBytes(200_000));
    const path = outboxPath({ datadir: dir('seller') }, 'report.bin');
    writeFileSync(path, file);
    const pub = await seller.api<{ id: string; beaconHeight: number; storage: { stored: boolean; backend?: string } }>('POST', '/paypub/publish', {
      path, price: '100000', threshold: '200000', chunks: 16, sample: 4, beaconIn: 4, deadlineIn: 30, feeRate: 2,
    });
    const id = pub.id;
    expect(pub.storage).toEqual({ stored: true, backend: 'peers' });
    const status = (d: NetnsDaemon): Promise<Sale> => d.api<Sale>('GET', `/paypub/sales/${id}`);
    await btcd.mine(1);
    await mineTo(btcd, pub.beaconHeight + 1);
    // Publishing is complete only with the reveal: only the seller can open the sampled chunks.
    await waitUntil(async () => (await status(seller)).sample.revealed, 'the seller\'s daemon reveals the sample', 30_000, 250);
    const { offer, storage, reveal } = await seller.api<{ offer: string; storage: boolean; reveal: boolean }>('GET', `/paypub/sales/${id}/offer`);
    expect({ storage, reveal }).toEqual({ storage: true, reveal: true });
    const link = decodeOfferLink(offer, 'regtest');
    expect(link.storageCap).toMatch(/^dd-chk:r:/);
    // No seller URL: its API is on its own loopback, which on a buyer's host names the buyer's own machine.
    expect(link.url).toBeNull();
    // The hints name the servers on their hosts' addresses (not loopback), at least happy of them.
    const hinted = (link.storageServers ?? []).map((h) => h.url);
    expect(hinted.length).toBeGreaterThanOrEqual(3);
    for (const u of hinted) expect(serverUrls).toContain(u);

    // 3. The seller's daemon stops: its process is gone and nothing listens on its host's address.
    const sellerPid = seller.pid;
    await seller.stop();
    expect(seller.running).toBe(false);
    expect(() => process.kill(sellerPid, 0)).toThrow();
    expect(lab.exec('seller', 'ss', ['-Htln']).split('\n').filter((l) => l.includes(lab.host('seller').ip))).toEqual([]);
    const atStop = counters.read();
    sampler = setInterval(sample, 200);

    // 4. Each buyer, on its host, with nothing but the offer text: verify from storage, pledge.
    for (const b of buyers) await balance(b);
    const pledges: string[] = [];
    // buyer1 through its daemon's API; buyer2 with the CLI on its host, the offer in a file (the
    // one-shot commands read storage through the running daemon's /storage routes).
    type Verified = { ok: boolean; problems: string[]; chunksFrom: string; sample: { verified: boolean } };
    type Pledged = { txid: string; announced: boolean };
    // API clients name a file under the daemon's output folder; the CLI takes any path.
    const outOf = (b: NetnsDaemon): string => (b.name === 'buyer1' ? unlockedPath({ datadir: dir(b.name) }, 'bought.bin') : join(dir(b.name), 'bought.bin'));
    const offerFile = join(dir('buyer2'), 'offer.txt');
    writeFileSync(offerFile, `${offer}\n`, { mode: 0o600 });
    const byApi = async (b: NetnsDaemon): Promise<[Verified, Pledged]> => [
      await b.api<Verified>('POST', '/paypub/verify', { offer, out: 'bought.bin' }),
      await b.api<Pledged>('POST', '/paypub/pledge', { offer, sats: '100000', feeRate: 2 }),
    ];
    const byCli = async (b: NetnsDaemon): Promise<[Verified, Pledged]> => [
      (await b.cli(['paypub', 'verify', `@${offerFile}`, '--out', outOf(b)])) as Verified,
      (await b.cli(['paypub', 'pledge', `@${offerFile}`, '100000', '--fee-rate', '2'])) as Pledged,
    ];
    for (const b of buyers) {
      const [v, p] = await (b.name === 'buyer1' ? byApi(b) : byCli(b));
      expect(v.problems, b.name).toEqual([]);
      expect(v, b.name).toMatchObject({ ok: true, chunksFrom: 'storage', sample: { verified: true } });
      expect(p.announced, b.name).toBe(false);
      pledges.push(p.txid);
    }
    await btcd.mine(1);
    for (const [i, b] of buyers.entries()) {
      await waitUntil(async () => (await status(b)).pledges.some((p) => p.txid === pledges[i] && p.own && p.height !== null), `${b.name} sees its pledge confirmed`, 30_000, 250);
    }
    await btcd.mine(1); // the seller misses another block
    sample();
    clearInterval(sampler);
    sampler = undefined;
    const whileStopped = counters.read();

    // Not one packet between a buyer and the seller's host while it was stopped; the buyers did
    // talk to the storage servers (the counters count).
    const delta = (pair: string): number => (whileStopped[pair] ?? NaN) - (atStop[pair] ?? NaN);
    for (const n of ['buyer1', 'buyer2']) {
      expect(delta(`${n}_seller`), `packets between ${n} and the seller's host`).toBe(0);
      expect(SERVERS.reduce((sum, s) => sum + delta(`${n}_${s}`), 0), `${n}'s packets with the servers`).toBeGreaterThan(0);
    }
    expect([...seen.buyer1, ...seen.buyer2], 'a buyer connected to the seller\'s host').not.toContain(lab.host('seller').ip);

    // 5. The seller returns: its daemon finds both pledges by their hints and claims on its own.
    seller = await seller.restart();
    daemons.push(seller);
    const claimed = await waitUntil(async () => {
      const st = await status(seller);
      return st.claims.length > 0 ? st : undefined;
    }, () => `the seller's daemon claims (log: ${seller.log.slice(-1500)})`, 60_000, 250);
    expect(claimed.pledges.map((p) => p.txid).sort()).toEqual([...pledges].sort());
    await btcd.mine(1);
    for (const b of buyers) {
      await waitUntil(async () => (await status(b)).unlocked !== null, `${b.name} unlocks`, 30_000, 250);
      expect(Buffer.compare(readFileSync(outOf(b)), Buffer.from(file)), `${b.name}'s file`).toBe(0);
    }

    // Over the whole run, not one packet between a buyer and the seller's host.
    const end = counters.read();
    expect(end.buyer1_seller).toBe(0);
    expect(end.buyer2_seller).toBe(0);
    // It found them on chain (no buyer could tell it), and claimed both in one transaction.
    interface Ev { type: string; data: Record<string, unknown> }
    const events = (await seller.events()) as Ev[];
    expect(events.filter((e) => e.type === 'paypub.pledge.found').map((e) => e.data.txid).sort()).toEqual([...pledges].sort());
    expect(events.filter((e) => e.type === 'paypub.claim.broadcast').map((e) => e.data.pledges)).toEqual([2]);
    // The seller's daemon holds no buyer's address: not in what it answers, not in its datadir.
    const sellerView = JSON.stringify([events, await status(seller), await seller.api('GET', '/node/contacts')]);
    expect(sellerView).toContain(id);
    const sellerFiles = datadirText(dir('seller'));
    const sellerLog = first!.log + seller.log;
    // The servers necessarily saw the buyers' addresses (a read is a connection); they keep none.
    const serverFiles = SERVERS.map((s) => datadirText(dir(s)) + by(s).log).join('');
    for (const addr of [lab.host('buyer1').ip, lab.host('buyer2').ip, ROUTER_WAN_IP]) {
      expect(sellerView, `the seller's daemon answers with ${addr}`).not.toMatch(ipPattern(addr));
      expect(sellerFiles, `the seller's datadir holds ${addr}`).not.toMatch(ipPattern(addr));
      expect(sellerLog, `the seller's log names ${addr}`).not.toMatch(ipPattern(addr));
      expect(serverFiles, `a server's datadir or log holds ${addr}`).not.toMatch(ipPattern(addr));
    }
  }, 240_000); // about 60 s on an idle 2-core machine; far more when other jobs load it
});
