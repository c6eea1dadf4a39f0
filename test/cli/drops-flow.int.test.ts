/**
 * Dead drops tried as a new user would, through the real CLI and daemon on regtest (btcd, and Bitcoin Core when available):
 * B prints an invite; A (funded) sends introductions to it; B's `watch --once` and B's daemon
 * websocket report them in the mempool and confirmed, with exactly the endpoint and message;
 * C sees nothing; `drops list`; a light client (B's seed, no node) finds them through the
 * public index of a locked daemon; the API sends one; bad inputs give one-line errors.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { CLI, backendArgs, runCli, runCliJson, startDaemonProcess, stopDaemonProcess, type DaemonProcess } from '../support/cli.js';
import { encodeAddress } from '../../src/deaddrop/bip352.js';
import { WalletKeys, newMnemonic } from '../../src/wallet/keys.js';
import { waitUntil } from '../support/wait.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';

describe.each(chainNodes())('CLI on %s', (kind) => {
  useNodeKind(kind);

  const PASS = 'drops flow passphrase';
  const env = { DEADDROP_PASSPHRASE: PASS };
  const ENDPOINT = 'ws://127.0.0.1:9000';

  interface DropEventJson {
    id: string;
    type: string;
    data: { txid: string; vout: number; status: string; height?: number; confirmations?: number; payload: { endpoints: string[]; message: string; nodeKey: string; token: string } };
  }

  interface Sent {
    txid: string;
    vsize: number;
    fee: string;
    introduction: number;
    nodeKey: string;
    opReturnVout: number;
    notifyVout: number;
  }




  /** `watch --once --json`: one JSON object per stdout line. */
  async function watchOnce(datadir: string, globalArgs: readonly string[], watchArgs: readonly string[] = []): Promise<DropEventJson[]> {
    const r = await runCli(['--datadir', datadir, ...globalArgs, 'watch', '--once', ...watchArgs, '--json'], env);
    if (r.code !== 0) throw new Error(`watch exited ${r.code}: ${r.stderr}`);
    return r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as DropEventJson);
  }


  describe('dead drops through the CLI on regtest', () => {
    const root = mkdtempSync(join(tmpdir(), 'dd-drops-'));
    const dirs = { a: join(root, 'a'), b: join(root, 'b'), c: join(root, 'c'), light: join(root, 'b-light') };
    let backend = '';
    let invite = '';
    let inviteAddress = '';
    let birthday = 0;
    let daemonB: DaemonProcess | undefined;
    let daemonC: DaemonProcess | undefined;
    const sent: Sent[] = [];
    const wsEvents: { type: string; data: Record<string, unknown> }[] = [];
    let ws: WebSocket | undefined;

  const bk = (dir: string): string[] => ['--datadir', dir, ...backendArgs(backend, root)];
    const get = async (d: DaemonProcess, path: string, auth = true): Promise<Response> =>
      fetch(`${d.api}${path}`, { headers: auth ? { authorization: `Bearer ${d.token}` } : {} });

    beforeAll(async () => {
      const up = await runCliJson<{ backend: string; height: number }>(['--datadir', dirs.a, 'regtest', 'up']);
      backend = up.backend;
      expect(backend.startsWith(`${kind}://`)).toBe(true);
      const [, b] = await Promise.all([
        runCliJson(['--datadir', dirs.a, 'init'], env),
        runCliJson<{ birthdayHeight: number; mnemonic: string }>([...bk(dirs.b), 'init', '--show-mnemonic'], env),
        runCliJson([...bk(dirs.c), 'init'], env),
      ]);
      birthday = b.birthdayHeight;
      // B's seed restored where there is no node at all: the light client's datadir.
      await runCliJson(['--datadir', dirs.light, 'init', '--restore', '--birthday', String(birthday)], { ...env, DEADDROP_MNEMONIC: b.mnemonic });
      const { address } = await runCliJson<{ address: string }>(['--datadir', dirs.a, 'wallet', 'address'], env);
      await runCliJson(['--datadir', dirs.a, 'regtest', 'fund', address, '1000000']);
    });

    afterAll(async () => {
      ws?.close();
      await stopDaemonProcess(daemonB);
      await stopDaemonProcess(daemonC);
      await runCli(['--datadir', dirs.a, 'regtest', 'down']);
      rmSync(root, { recursive: true, force: true });
    });

    it('B prints an invite: URI, terminal QR, PNG and SVG', async () => {
      const r = await runCliJson<{ uri: string; address: string; label: string; birthday: number }>([...bk(dirs.b), 'invite', '--label', 'Bob'], env);
      expect(r.uri).toMatch(/^deaddrop:sprt1q[02-9ac-hj-np-z]{100,}\?label=Bob&birthday=\d+$/);
      expect(r.birthday).toBe(birthday);
      expect(r.birthday).toBeGreaterThan(100);
      invite = r.uri;
      inviteAddress = r.address;
      const png = join(root, 'invite.png');
      const svg = join(root, 'invite.svg');
      const human = await runCli([...bk(dirs.b), 'invite', '--label', 'Bob', '--qr', '--png', png, '--svg', svg], env);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain(invite);
      expect(human.stdout).toContain('▄');
      expect(readFileSync(png).subarray(0, 4).toString('hex')).toBe('89504e47');
      expect(readFileSync(svg, 'utf8')).toMatch(/<svg[\s\S]*<\/svg>/);
    });

    it('A\'s drop is reported to B in the mempool and confirmed, with exactly that endpoint and message; C sees nothing', async () => {
    daemonB = await startDaemonProcess(dirs.b, backendArgs(backend, root), env);
      ws = new WebSocket(`${daemonB.api.replace('http', 'ws')}/events?types=drop.,watch.`, { headers: { authorization: `Bearer ${daemonB.token}` } });
      await new Promise((resolve, reject) => {
        ws!.once('open', resolve);
        ws!.once('error', reject);
      });
      ws.on('message', (m) => wsEvents.push(JSON.parse(String(m)) as { type: string; data: Record<string, unknown> }));
      expect(await watchOnce(dirs.b, ['--backend', backend])).toEqual([]);

      const first = await runCliJson<Sent>(['--datadir', dirs.a, 'drop', 'send', invite, '--endpoint', ENDPOINT, '--message', 'hi', '--fee-rate', '2'], env);
      expect(first.txid).toMatch(/^[0-9a-f]{64}$/);
      expect(BigInt(first.fee)).toBe(BigInt(2 * first.vsize));
      expect(first.vsize).toBeLessThanOrEqual(205);
      // A second introduction (to the same person) must use a fresh pairwise key.
      const second = await runCliJson<Sent>(['--datadir', dirs.a, 'drop', 'send', inviteAddress, '--endpoint', ENDPOINT, '--message', 'hi again', '--notify-output', '--fee-rate', '2'], env);
      expect([first.introduction, second.introduction]).toEqual([1, 2]);
      expect(second.nodeKey).not.toBe(first.nodeKey);
      expect(second.notifyVout).toBeGreaterThanOrEqual(0);
      sent.push(first, second);

      const pending = await watchOnce(dirs.b, ['--backend', backend]);
      expect(pending.map((e) => `${e.type} ${e.data.txid}`).sort()).toEqual([`drop.pending ${first.txid}`, `drop.pending ${second.txid}`].sort());
      const p1 = pending.find((e) => e.data.txid === first.txid)!;
      expect(p1.data.vout).toBe(first.opReturnVout);
      expect(p1.data.payload).toMatchObject({ endpoints: [ENDPOINT], message: 'hi', nodeKey: first.nodeKey });
      expect(pending.find((e) => e.data.txid === second.txid)!.data.payload).toMatchObject({ endpoints: [ENDPOINT], message: 'hi again', nodeKey: second.nodeKey });
      await waitUntil(() => wsEvents.find((e) => e.type === 'drop.pending' && e.data.txid === first.txid), 'drop.pending on the websocket');

      const mined = await runCliJson<{ height: number }>(['--datadir', dirs.a, 'regtest', 'mine', '1']);
      const confirmed = await watchOnce(dirs.b, ['--backend', backend]);
      expect(confirmed.map((e) => e.type)).toEqual(['drop.confirmed', 'drop.confirmed']);
      const c1 = confirmed.find((e) => e.data.txid === first.txid)!;
      expect(c1.data).toMatchObject({ status: 'confirmed', height: mined.height, confirmations: 1 });
      expect(c1.data.payload).toMatchObject({ endpoints: [ENDPOINT], message: 'hi' });
      const wsConfirmed = await waitUntil(() => wsEvents.find((e) => e.type === 'drop.confirmed' && e.data.txid === first.txid), 'drop.confirmed on the websocket');
      expect(wsConfirmed.data).toMatchObject({ height: mined.height, confirmations: 1, payload: { endpoints: [ENDPOINT], message: 'hi' } });
      await waitUntil(() => wsEvents.find((e) => e.type === 'watch.progress' && e.data.height === mined.height), 'watch.progress on the websocket');
      expect(wsEvents.filter((e) => e.type.startsWith('drop.')).map((e) => `${e.type} ${String(e.data.txid)}`).sort()).toEqual(
        [`drop.confirmed ${first.txid}`, `drop.confirmed ${second.txid}`, `drop.pending ${first.txid}`, `drop.pending ${second.txid}`].sort());

      // Printed once: a second run has nothing new. C, another identity on the same chain, sees nothing.
      expect(await watchOnce(dirs.b, ['--backend', backend])).toEqual([]);
      expect(await watchOnce(dirs.c, ['--backend', backend])).toEqual([]);

    // One writer per datadir: a rescan (it rewrites B's drop store) is refused while B's daemon
    // runs, with one line naming the daemon's pid; it runs once the daemon has stopped.
    const refused = await runCli([...bk(dirs.b), 'watch', '--once', '--from', String(birthday), '--json'], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`in use by a deaddrop daemon \\(pid ${daemonB.child.pid}\\)`))]);
    ws.close();
    await stopDaemonProcess(daemonB);

      // A rescan from the birthday replays the history of both drops and shows progress on stderr.
      const rescan = await runCli([...bk(dirs.b), 'watch', '--once', '--from', String(birthday), '--json'], env);
      expect(rescan.code).toBe(0);
      const replayed = rescan.stdout.trim().split('\n').map((l) => JSON.parse(l) as DropEventJson);
      expect(replayed.map((e) => `${e.type} ${e.data.txid}`).sort()).toEqual(
        sent.flatMap((s) => [`drop.confirmed ${s.txid}`, `drop.pending ${s.txid}`]).sort());
      expect(rescan.stderr).toMatch(new RegExp(`scanned to height ${mined.height}`));
      expect(await watchOnce(dirs.b, ['--backend', backend])).toEqual([]);
    daemonB = await startDaemonProcess(dirs.b, backendArgs(backend, root), env);

      const list = await runCliJson<{ drops: { txid: string; status: string; endpoints: string[]; message: string }[] }>(['--datadir', dirs.b, 'drops', 'list']);
      expect(list.drops.map((d) => [d.txid, d.status, d.endpoints, d.message]).sort()).toEqual(
        [[first.txid, 'confirmed', [ENDPOINT], 'hi'], [second.txid, 'confirmed', [ENDPOINT], 'hi again']].sort());
      const ledger = await runCliJson<{ introductions: { number: number; txid: string; status: string; nodeKey: string }[] }>(['--datadir', dirs.a, 'drops', 'sent']);
      expect(ledger.introductions.map((i) => [i.number, i.txid, i.status, i.nodeKey])).toEqual([[1, first.txid, 'sent', first.nodeKey], [2, second.txid, 'sent', second.nodeKey]]);
      expect(statSync(join(dirs.a, 'introductions.sqlite')).mode & 0o777).toBe(0o600);
    });

    it('a light client with B\'s seed and no node finds the drops in a locked daemon\'s public index', async () => {
      daemonC = await startDaemonProcess(dirs.c, ['--backend', backend], {}); // no passphrase: wallet locked, index only
      const tip = (await runCliJson<{ height: number }>(['--datadir', dirs.a, 'regtest', 'status'])).height;
      await waitUntil(async () => {
        const info = (await (await get(daemonC!, '/index/info', false)).json()) as { indexedTip: number | null };
        return info.indexedTip !== null && info.indexedTip >= tip ? info : undefined;
      }, 'the index to reach the tip');
      expect((await get(daemonC, '/drops', false)).status).toBe(401);

    // No --backend and no regtest node published for this user (a HOME where `regtest up` never ran): a clear error.
    const noNode = await runCli(['--datadir', dirs.light, 'watch', '--once'], { ...env, HOME: join(root, 'empty-home') });
      expect(noNode.stderr).toMatch(/no backend/);
      const found = await watchOnce(dirs.light, [], ['--index', daemonC.api]);
      expect(found.map((e) => `${e.type} ${e.data.txid}`).sort()).toEqual(sent.map((s) => `drop.confirmed ${s.txid}`).sort());
      expect(found.find((e) => e.data.txid === sent[0]!.txid)!.data.payload).toMatchObject({ endpoints: [ENDPOINT], message: 'hi' });
      expect(await watchOnce(dirs.light, [], ['--index', daemonC.api])).toEqual([]);
    });

    it('the daemon API gives the invite, lists drops and sends one', async () => {
      const d = daemonB!;
      const inv = (await (await get(d, '/invite?label=Bob')).json()) as { uri: string; address: string };
      expect(inv.uri).toBe(invite);
      const drops = (await (await get(d, '/drops')).json()) as { drops: { txid: string }[] };
      expect(drops.drops.map((x) => x.txid).sort()).toEqual(sent.map((s) => s.txid).sort());

      const post = (body: unknown): Promise<Response> => fetch(`${d.api}/drops/send`, {
        method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      const cInvite = (await runCliJson<{ uri: string }>([...bk(dirs.c), 'invite'], env)).uri;
      const bad = await post({ recipient: cInvite, endpoints: ['ftp://nope'] });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toBe('BAD_INPUT');

      const { address } = (await (await fetch(`${d.api}/wallet/address`, { method: 'POST', headers: { authorization: `Bearer ${d.token}` } })).json()) as { address: string };
      await runCliJson(['--datadir', dirs.a, 'regtest', 'fund', address, '100000']);
      await waitUntil(async () => {
        const b = (await (await get(d, '/wallet/balance')).json()) as { confirmed: string };
        return b.confirmed === '100000' ? b : undefined;
      }, 'B\'s daemon wallet to see its funds');
      // C follows (no --once) while B's daemon sends to C through the API; whenever C's watcher
      // comes up, its first mempool pass or the mempool feed finds the drop before it is mined.
      const follow = spawn(process.execPath, [CLI, ...bk(dirs.c), 'watch', '--json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      const lines: DropEventJson[] = [];
      let partial = '';
      follow.stdout!.on('data', (d: Buffer) => {
        const parts = (partial + d.toString()).split('\n');
        partial = parts.pop()!;
        lines.push(...parts.filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as DropEventJson));
      });
      const exited = new Promise<number | null>((r) => follow.once('exit', (code) => r(code)));

      const res = await post({ recipient: cInvite, endpoints: ['ws://10.1.2.3:7000'], message: 'from the API', feeRate: 2, expires: '12h' });
      expect(res.status).toBe(200);
      const viaApi = (await res.json()) as Sent;
      expect(BigInt(viaApi.fee)).toBe(BigInt(2 * viaApi.vsize));
      await waitUntil(() => lines.find((e) => e.type === 'drop.pending' && e.data.txid === viaApi.txid), 'C\'s follow-mode watch to print drop.pending');
      await runCliJson(['--datadir', dirs.a, 'regtest', 'mine', '1']);
      await waitUntil(() => lines.find((e) => e.type === 'drop.confirmed' && e.data.txid === viaApi.txid), 'C\'s follow-mode watch to print drop.confirmed');
      follow.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(lines.map((e) => [e.type, e.data.txid])).toEqual([['drop.pending', viaApi.txid], ['drop.confirmed', viaApi.txid]]);
      expect(lines[1]!.data.payload).toMatchObject({ endpoints: ['ws://10.1.2.3:7000'], message: 'from the API' });
      expect(await watchOnce(dirs.b, ['--backend', backend])).toEqual([]);
    });

    it('both daemons stop cleanly on SIGTERM', async () => {
      for (const d of [daemonB!, daemonC!]) {
        const exited = new Promise<number | null>((r) => d.child.once('exit', (code) => r(code)));
        d.child.kill('SIGTERM');
        const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
        expect(code).toBe(0);
      }
    });

    it('gives one clear line and sends nothing on bad input', async () => {
      const testnetAddress = (() => {
        const k = WalletKeys.fromMnemonic(newMnemonic(), 'testnet').silentPaymentKeys();
        return encodeAddress(k.scan.publicKey, k.spend.publicKey, 'testnet');
      })();
      const cases: Array<{ args: string[]; expect: RegExp }> = [
        { args: ['drop', 'send', 'deaddrop:garbage', '--endpoint', ENDPOINT], expect: /not a deaddrop invite or silent-payment address/ },
        { args: ['drop', 'send', 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080', '--endpoint', ENDPOINT], expect: /not a deaddrop invite or silent-payment address/ },
        { args: ['drop', 'send', testnetAddress, '--endpoint', ENDPOINT], expect: /expected regtest/ },
        { args: ['drop', 'send', `${invite}&colour=red`, '--endpoint', ENDPOINT], expect: /unknown parameter/ },
        { args: ['drop', 'send', invite, '--endpoint', 'ftp://1.2.3.4'], expect: /endpoint: / },
        { args: ['drop', 'send', invite, '--endpoint', ENDPOINT, '--message', 'this message is much too long'], expect: /message too long: 29 bytes, 21 available/ },
        { args: ['drop', 'send', invite, '--message', 'hi'], expect: /at least one --endpoint/ },
        { args: ['drop', 'send', invite, '--endpoint', ENDPOINT, '--expires', 'soon'], expect: /token lifetime/ },
        { args: ['drop', 'send', invite, '--endpoint', ENDPOINT, '--fee-rate', '1500'], expect: /above the cap/ },
        { args: ['watch', '--from', 'yesterday'], expect: /--from must be a whole number/ },
        { args: ['watch', '--index', 'not a url'], expect: /index url/ },
        { args: ['invite', '--label', 'x'.repeat(65)], expect: /label must be 1\.\.64 characters/ },
      ];
      const results = await Promise.all(cases.map((c) => runCli(['--datadir', dirs.a, ...c.args], env)));
      results.forEach((r, i) => {
        const what = cases[i]!.args.join(' ');
        expect(r.code, what).not.toBe(0);
        const lines = r.stderr.trim().split('\n');
        expect(lines, what).toHaveLength(1);
        expect(lines[0], what).toMatch(cases[i]!.expect);
        expect(r.stderr, what).not.toMatch(/\n\s+at /);
      });
      // Nothing was recorded, except the fee-cap case, which failed after its key was issued.
      const ledger = await runCliJson<{ introductions: { status: string }[] }>(['--datadir', dirs.a, 'drops', 'sent']);
      expect(ledger.introductions.map((i) => i.status)).toEqual(['sent', 'sent', 'failed']);
    });
  });
});
