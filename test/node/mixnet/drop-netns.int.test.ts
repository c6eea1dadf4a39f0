/**
 * Issue 11's "Done when", end to end: two real daemons (`deaddrop start`) on different network
 * namespaces, Alice's behind a NAT router, meet through a drop on chain and exchange messages and
 * feeds with no direct connection between them.
 *
 * The network (test/support/netns.ts): a bridged "internet" with two providers and one mix per
 * layer (test/support/mix-runner.ts processes, their descriptors handed around by the test as
 * replication would), Bob's host on it, and Alice behind NAT. The chain is a btcd regtest node on
 * the root namespace's loopback, relayed to 127.0.0.1 inside Alice's and Bob's namespaces
 * (test/support/daemon-netns.ts), so chain traffic never shows in the namespaces' TCP tables.
 * Each daemon knows only its provider (`DEADDROP_MIX_PROVIDER=<id>@ws://…`) and its peer node
 * listens on its host's own address, so that a dial would be possible and would show.
 *
 * Flow: Bob prints an invite; Alice sends a drop to it through her daemon's API with no endpoint
 * (the default is the mixnet hint: no IP address); a block is mined; Bob's watcher finds the drop
 * and his daemon answers it over the mixnet; both have each other as a contact; messages go both
 * ways, and each one's feed reaches the other through the providers (the feed relay). Throughout, the TCP tables of both namespaces are sampled: never a connection between
 * them; and neither side's address (nor the router's, for Alice) is in anything the other daemon
 * answers (contacts, whereabouts, introductions, drops, messages, events) or stored in its datadir.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mixProviderId, mixnetEndpoint } from '../../../src/deaddrop/endpoint.js';
import { fromHex } from '../../../src/util/bytes.js';
import { startRegtestNode, type RegtestNode } from '../../../src/regtest/harness.js';
import { BridgeCounters, ChainRelay, NetnsDaemon, datadirText, ipPattern, runDeaddrop } from '../../support/daemon-netns.js';
import { MixLab } from '../../support/mix-lab.js';
import { NetLab, ROUTER_WAN_IP, netnsUnavailable, tearDownLab } from '../../support/netns.js';
import { waitUntil } from '../../support/wait.js';

const skip = netnsUnavailable();
const PASS = 'drop over the mixnet, across hosts';

interface Contact {
  node: string;
  endpoints: string[];
}
interface Message {
  id: string;
  direction: 'in' | 'out';
  contact: string;
  text: string;
}

describe.skipIf(skip !== null)(`a drop on chain leads to contacts over the mixnet, across namespaces, one behind NAT${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: NetLab;
  let mixes: MixLab;
  let btcd: RegtestNode;
  let relay: ChainRelay;
  let root: string;
  const daemons: NetnsDaemon[] = [];
  /** Established TCP peers of Alice's and Bob's namespaces, sampled all along. */
  const seen = { alice: new Set<string>(), bob: new Set<string>() };
  let sampler: NodeJS.Timeout | undefined;
  let counters: BridgeCounters;

  function sample(): void {
    for (const host of ['alice', 'bob'] as const) {
      try {
        for (const p of lab.tcpPeers(host)) seen[host].add(p.replace(/:\d+$/, ''));
      } catch {
        // the namespace is being removed
      }
    }
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'dd-dropnetns-'));
    lab = NetLab.create(['provA', 'provB', 'mix1', 'mix2', 'mix3', 'bob'], ['alice']);
    mixes = new MixLab(lab);
    // allSettled: a node that started while a runner failed must still be known to afterAll.
    const started = await Promise.allSettled([
      startRegtestNode({ kind: 'btcd' }).then((n) => void (btcd = n)),
      mixes.start('provA', { provider: true }), mixes.start('provB', { provider: true }),
      mixes.start('mix1', { layer: 1 }), mixes.start('mix2', { layer: 2 }), mixes.start('mix3', { layer: 3 }),
    ]);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    relay = await ChainRelay.open(root, btcd.rpcPort);
    await Promise.all([relay.into(lab, 'alice'), relay.into(lab, 'bob')]);
    sampler = setInterval(sample, 250);
    // Every packet on the "internet" between Alice (as the NAT shows her) and Bob, and, to show the
    // counters count, between each of them and their provider.
    const ip = (h: string): string => lab.host(h).ip;
    counters = BridgeCounters.create(lab, {
      alice_bob: [ROUTER_WAN_IP, ip('bob')], alice_provA: [ROUTER_WAN_IP, ip('provA')], bob_provB: [ip('bob'), ip('provB')],
    });
  }, 120_000);

  afterAll(async () => {
    if (sampler) clearInterval(sampler);
    await tearDownLab(lab, async () => {
      await Promise.all(daemons.map((d) => d.stop()));
      await mixes?.close();
      await relay?.close();
      await btcd?.stop();
    }, root);
  }, 60_000);

  it('Bob\'s daemon answers Alice\'s drop over the mixnet; messages and feeds go both ways; no connection, no address leaks', async () => {
    const alice = lab.host('alice');
    const bob = lab.host('bob');
    const provA = mixes.runners.find((r) => r.name === 'provA')!;
    const provB = mixes.runners.find((r) => r.name === 'provB')!;
    // The node's password goes in the environment, never in argv (`ps`).
    const url = new URL(btcd.backendUrl);
    const backend = ['--backend', `btcd://127.0.0.1:${url.port}`];
    const home = join(root, 'home');
    mkdirSync(home, { mode: 0o700 });
    const env = {
      DEADDROP_BACKEND_AUTH: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`,
      DEADDROP_PASSPHRASE: PASS, DEADDROP_MIX_DELAY_MS: '20',
      DEADDROP_MIX_LOOP_RATE: '0', DEADDROP_MIX_DROP_RATE: '0', DEADDROP_MIX_MIX_LOOP_RATE: '0',
    };
    const dirs = { alice: join(root, 'alice'), bob: join(root, 'bob') };
    await Promise.all([runDeaddrop(['--datadir', dirs.alice, ...backend, 'init'], env, home), runDeaddrop(['--datadir', dirs.bob, ...backend, 'init'], env, home)]);

    // Each daemon knows only its provider's id and endpoint; its peer node listens on its own host's address.
    const [a, b] = await Promise.all([
      NetnsDaemon.start({ lab, host: 'alice', datadir: dirs.alice, args: backend, home, env: { ...env, DEADDROP_NODE_HOST: alice.ip, DEADDROP_MIX_PROVIDER: `${provA.id}@${provA.url}` } }),
      NetnsDaemon.start({ lab, host: 'bob', datadir: dirs.bob, args: backend, home, env: { ...env, DEADDROP_NODE_HOST: bob.ip, DEADDROP_MIX_PROVIDER: `${provB.id}@${provB.url}` } }),
    ]);
    daemons.push(a, b);
    const aliceId = (await a.api<{ id: string; endpoints: string[] }>('GET', '/node')).id;
    const bobNode = await b.api<{ id: string; endpoints: string[] }>('GET', '/node');
    expect(bobNode.endpoints.join(' ')).toContain(bob.ip); // reachable in principle: a dial would show

    // Alice gets coins (the test funds her from the node; the relay carries her wallet's chain traffic).
    const { address } = await a.api<{ address: string }>('POST', '/wallet/address');
    await btcd.fund(address, 1_000_000, { confirm: true });
    await waitUntil(async () => (await a.api<{ confirmed: string }>('GET', '/wallet/balance')).confirmed !== '0', 'Alice\'s coins', 30_000, 250);
    for (const [d, prov] of [[a, provA], [b, provB]] as const) {
      await waitUntil(async () => {
        const m = await d.api<{ connected: boolean; home: string | null; layers: number[] }>('GET', '/node/mixnet');
        return m.connected && m.home === prov.id && m.layers.every((n) => n >= 1);
      }, `${d.name} linked to its provider, with the directory`, 30_000, 250);
    }

    // Bob's invite is all Alice gets out of band. Her drop names no endpoint: the API's default is
    // the mixnet hint of her provider, the same as the CLI's.
    const { uri } = await b.api<{ uri: string }>('GET', '/invite');
    const sent = await a.api<{ txid: string; endpoints: string[] }>('POST', '/drops/send', { recipient: uri, message: 'hi bob' });
    const hint = mixnetEndpoint(mixProviderId(fromHex(provA.id)));
    expect(sent.endpoints).toEqual([hint]);
    await btcd.mine(1);

    // Bob's watcher finds it; his daemon answers over the mixnet; both end as contacts with no endpoint.
    const drop = await waitUntil(async () => (await b.api<{ drops: { txid: string; status: string; endpoints: string[]; message: string }[] }>('GET', '/drops')).drops
      .find((d) => d.txid === sent.txid && d.status === 'confirmed'), 'Bob\'s watcher finds the drop', 30_000, 250);
    expect(drop.endpoints).toEqual([hint]);
    expect(drop.message).toBe('hi bob');
    const contactOf = async (d: NetnsDaemon, id: string): Promise<Contact | undefined> =>
      (await d.api<{ contacts: Contact[] }>('GET', '/node/contacts')).contacts.find((c) => c.node === id);
    const aliceAtBob = await waitUntil(() => contactOf(b, aliceId), () => `Bob has Alice as a contact (Bob's log: ${b.log.slice(-1500)})`, 60_000, 500);
    const bobAtAlice = await waitUntil(() => contactOf(a, bobNode.id), () => `Alice has Bob as a contact (Alice's log: ${a.log.slice(-1500)})`, 30_000, 500);
    expect(aliceAtBob.endpoints).toEqual([]);
    expect(bobAtAlice.endpoints).toEqual([]);
    await waitUntil(async () => (await b.api<{ introductions: { status: string }[] }>('GET', '/node/introductions')).introductions
      .map((i) => i.status).join() === 'done', 'Bob\'s introduction done', 10_000, 250);

    // Messages both ways, through the providers (the first may need a retry while directories settle).
    const sendTo = async (d: NetnsDaemon, contact: string, text: string): Promise<void> => {
      await waitUntil(async () => (await d.call('POST', '/node/messages', { contact, text })).status === 200, `${d.name} sends`, 20_000, 500);
    };
    const received = async (d: NetnsDaemon, from: string, text: string): Promise<Message> => waitUntil(async () =>
      (await d.api<{ messages: Message[] }>('GET', '/node/messages')).messages.find((m) => m.direction === 'in' && m.contact === from && m.text === text),
    `${d.name} receives "${text}"`, 30_000, 250);
    await sendTo(b, aliceId, 'hello Alice, over the mixnet');
    await received(a, bobNode.id, 'hello Alice, over the mixnet');
    await sendTo(a, bobNode.id, 'hello Bob, from behind the NAT');
    await received(b, aliceId, 'hello Bob, from behind the NAT');

    // Feeds both ways, through the providers too (the feed relay: no session between the two).
    interface Feed { author: string; length: number }
    const feedLength = async (d: NetnsDaemon, author: string): Promise<number> =>
      (await d.api<{ feeds: Feed[] }>('GET', '/node/feeds')).feeds.find((f) => f.author === author)?.length ?? 0;
    for (const [writer, reader, writerId] of [[a, b, aliceId], [b, a, bobNode.id]] as const) {
      for (let i = 0; i < 3; i++) await writer.api('POST', '/node/log', { type: 'post', text: `${writer.name} entry ${i}` });
      const own = await feedLength(writer, writerId);
      expect(own).toBeGreaterThanOrEqual(3);
      await waitUntil(async () => (await feedLength(reader, writerId)) >= own, () => `${reader.name} replicates ${writer.name}'s feed (${own} entries) over the mixnet`, 60_000, 500);
      const got = await reader.api<{ entries: { header: { text?: string } }[] }>('GET', `/node/log/${writerId}?from=1&limit=100`);
      expect(JSON.stringify(got)).toContain(`${writer.name} entry 2`);
    }

    // The CLI, run on Alice's host, defaults to the same hint; a second drop from the same
    // introducer is answered the same way and leaves one contact on each side.
    const viaCli = (await a.cli(['drop', 'send', uri, '--message', 'again, cli'])) as { txid: string; endpoints: string[] };
    expect(viaCli.endpoints).toEqual([hint]);
    await btcd.mine(1);
    await waitUntil(async () => {
      const list = (await b.api<{ introductions: { status: string }[] }>('GET', '/node/introductions')).introductions;
      return list.length === 2 && list.every((i) => i.status === 'done');
    }, () => `Bob answers the second drop (Bob's log: ${b.log.slice(-1500)})`, 60_000, 500);
    for (const [d, id] of [[a, bobNode.id], [b, aliceId]] as const) {
      expect((await d.api<{ contacts: Contact[] }>('GET', '/node/contacts')).contacts.filter((c) => c.node === id)).toHaveLength(1);
    }

    // The TCP tables: the probe sees real links (each to its own provider), never one between the two.
    sample();
    if (sampler) clearInterval(sampler);
    sampler = undefined;
    expect(seen.alice).toContain(lab.host('provA').ip);
    expect(seen.bob).toContain(lab.host('provB').ip);
    expect([...seen.alice], 'Alice\'s namespace connected to Bob').not.toContain(bob.ip);
    for (const ip of [alice.ip, ROUTER_WAN_IP]) expect([...seen.bob], `Bob's namespace connected to Alice (${ip})`).not.toContain(ip);
    // Not one packet between them on the bridge, over the whole run (the counters see the provider links).
    const packets = counters.read();
    expect(packets.alice_provA).toBeGreaterThan(0);
    expect(packets.bob_provB).toBeGreaterThan(0);
    expect(packets.alice_bob, 'packets between Alice and Bob').toBe(0);
    // Nothing but its provider and its own loopback (API, chain relay) for either.
    expect([...seen.alice].filter((ip) => ip !== '127.0.0.1' && ip !== lab.host('provA').ip)).toEqual([]);
    expect([...seen.bob].filter((ip) => ip !== '127.0.0.1' && ip !== lab.host('provB').ip)).toEqual([]);

    // What each daemon answers and stores about the other: no address of the other side.
    const [bobEvents, aliceEvents] = await Promise.all([b.events(), a.events()]);
    const types = (evs: unknown[]): string[] => evs.map((e) => (e as { type?: string }).type ?? '');
    expect(types(bobEvents)).toEqual(expect.arrayContaining(['drop.confirmed', 'node.introduction.accepted', 'node.message.received']));
    expect(types(aliceEvents)).toContain('node.message.received');
    const views = async (d: NetnsDaemon, events: unknown[]): Promise<string> => JSON.stringify([...await Promise.all([
      d.api('GET', '/node/contacts'), d.api('GET', '/node/whereabouts'), d.api('GET', '/node/introductions'),
      d.api('GET', '/drops'), d.api('GET', '/node/messages'),
    ]), events]);
    const [bobView, aliceView] = await Promise.all([views(b, bobEvents), views(a, aliceEvents)]);
    expect(bobView).toContain(aliceId); // the views are about the other side
    expect(aliceView).toContain(bobNode.id);
    for (const ip of [alice.ip, ROUTER_WAN_IP]) {
      expect(bobView, `Bob's daemon answers with Alice's address ${ip}`).not.toMatch(ipPattern(ip));
      expect(datadirText(dirs.bob), `Bob's datadir holds Alice's address ${ip}`).not.toMatch(ipPattern(ip));
    }
    expect(aliceView, 'Alice\'s daemon answers with Bob\'s address').not.toMatch(ipPattern(bob.ip));
    expect(datadirText(dirs.alice), 'Alice\'s datadir holds Bob\'s address').not.toMatch(ipPattern(bob.ip));
  }, 150_000);
});
