/**
 * PayPub against strangers and against a token holder (issue 9, items 4 and 7), with real
 * daemons on a real btcd:
 *
 * - 1,000 anonymous requests for private-mode terms, each with a fresh buyer key, do not use up
 *   the sale: a real buyer then gets terms, funds the HTLC, and the seller's daemon claims it;
 *   they go to the seller's `--public-listen` listener, which serves nothing private;
 * - the API publishes only uploaded bytes or files under `<datadir>/paypub/outbox`, and unlocks
 *   only under `<datadir>/paypub/unlocked`, without creating directories or replacing files
 *   unless asked; the CLI does not replace a file without `--force` either.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeOfferLink } from '../../src/paypub/link.js';
import { startRegtestNode, type RegtestNode } from '../../src/regtest/harness.js';
import { runCli } from '../support/cli.js';
import { PASS, fundParty, outboxPath, removeParty, startParty, unlockedPath, type Party } from '../support/paypub-parties.js';
import { mineTo } from '../support/regtest-tx.js';

let node: RegtestNode;
let seller: Party;
let buyer: Party;
const file = new Uint8Array(randomBytes(20_000));
/** The private sale below: the seller knows all its keys, so it can unlock it (item 7's tests). */
let privateId = '';

beforeAll(async () => {
  node = await startRegtestNode({ kind: 'btcd' });
  seller = await startParty('seller', node, undefined, { publicListen: '127.0.0.1:0' });
  buyer = await startParty('buyer', node);
  for (const p of [seller, buyer]) await fundParty(node, p, 1_000_000n);
  mkdirSync(join(seller.datadir, 'paypub', 'outbox'), { recursive: true });
});

afterAll(async () => {
  for (const p of [seller, buyer]) await p?.stop().catch(() => undefined);
  await node?.stop();
  for (const p of [seller, buyer]) removeParty(p);
});

describe('private-mode terms under a flood of strangers', () => {
  let id = '';
  let offer = '';

  beforeAll(async () => {
    writeFileSync(outboxPath(seller, 'private.bin'), file);
    const pub = await seller.ok<{ id: string; beaconHeight: number }>('POST', '/paypub/publish', {
      path: outboxPath(seller, 'private.bin'), mode: 'private', price: '80000', chunks: 16, sample: 4, beaconIn: 3, deadlineIn: 14, feeRate: 2,
    });
    id = pub.id;
    privateId = id;
    await node.mine(1);
    await seller.waitFor('paypub.anchor.confirmed', (e) => e.data.id === id);
    await mineTo(node, pub.beaconHeight + 1);
    await seller.waitFor('paypub.sample.revealed', (e) => e.data.id === id);
    offer = (await seller.ok<{ offer: string }>('GET', `/paypub/sales/${id}/offer`)).offer;
  });

  it('the offer names the public listener, which serves the content and nothing private', async () => {
    const publicUrl = seller.daemon.publicUrl as string;
    expect(publicUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(publicUrl).not.toBe(seller.daemon.apiUrl);
    expect(decodeOfferLink(offer).url).toBe(publicUrl);
    expect((await fetch(`${publicUrl}/paypub/content/${id}/manifest`)).status).toBe(200);
    const token = readFileSync(join(seller.datadir, 'api.token'), 'utf8').trim();
    for (const path of ['/status', '/paypub/sales', `/paypub/sales/${id}/offer`, '/wallet/balance']) {
      const r = await fetch(`${publicUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status, path).toBe(404);
    }
  });

  it('a real buyer gets terms after 1,000 anonymous requests with random buyer keys, and the sale goes through', async () => {
    const base = seller.daemon.publicUrl ?? seller.daemon.apiUrl;
    const statuses = new Map<number, number>();
    const eventsBefore = seller.events.length;
    const started = Date.now();
    for (let batch = 0; batch < 50; batch++) {
      const replies = await Promise.all(Array.from({ length: 20 }, async () => {
        const buyerKey = Buffer.from(schnorr.getPublicKey(schnorr.utils.randomSecretKey())).toString('hex');
        const r = await fetch(`${base}/paypub/content/${id}/private`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ buyerKey }) });
        await r.arrayBuffer();
        return r.status;
      }));
      for (const s of replies) statuses.set(s, (statuses.get(s) ?? 0) + 1);
    }
    console.log(`1000 anonymous terms requests in ${Date.now() - started} ms: ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(statuses.get(200)).toBe(1000); // strangers are served (their terms are just cheap to drop)
    // and leave no trace in the seller's event outbox (it keeps every row it is given)
    await new Promise((r) => setTimeout(r, 1500));
    expect(seller.events.slice(eventsBefore).filter((e) => e.type.startsWith('paypub.'))).toHaveLength(0);

    const bought = await buyer.ok<{ txid: string; value: string; announced: boolean }>('POST', '/paypub/buy', { offer, feeRate: 2, out: 'bought.bin' });
    expect(bought.value).toBe('80000');
    expect(bought.announced).toBe(true);
    await node.mine(1);
    await seller.waitFor('paypub.claim.broadcast', (e) => e.data.id === id);
    await buyer.waitFor('paypub.unlocked', (e) => e.data.id === id, 15_000);
    expect(Buffer.compare(readFileSync(unlockedPath(buyer, 'bought.bin')), Buffer.from(file))).toBe(0);
  });
});

describe('the API token is not a filesystem key', () => {
  const content = new Uint8Array(randomBytes(5000));

  it('publishes no file from outside <datadir>/paypub/outbox', async () => {
    symlinkSync('/etc/passwd', outboxPath(seller, 'link-to-passwd'));
    for (const path of ['/etc/passwd', '../../api.token', join(seller.datadir, 'api.token'), 'link-to-passwd', outboxPath(seller, '../../api.token'), 'missing.bin']) {
      const r = await seller.api<{ error: string }>('POST', '/paypub/publish', { path, price: '10000', feeRate: 2 });
      expect(r.status, path).toBe(400);
      expect(r.body.error).toBe('BAD_INPUT');
    }
    expect((await seller.ok<{ sales: { role: string; mode: string }[] }>('GET', '/paypub/sales')).sales.filter((s) => s.mode === 'public')).toHaveLength(0);
  });

  it('publishes uploaded bytes', async () => {
    const token = readFileSync(join(seller.datadir, 'api.token'), 'utf8').trim();
    const r = await fetch(`${seller.daemon.apiUrl}/paypub/publish/upload?name=report.pdf&price=10000&chunks=8&sample=2&beaconIn=3&deadlineIn=14&feeRate=2`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: content,
    });
    const body = (await r.json()) as { id: string; fileLength: number; chunkCount: number };
    expect(r.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ fileLength: content.length, chunkCount: 8 });
    expect((await seller.ok<{ fileLength: number }>('GET', `/paypub/sales/${body.id}`)).fileLength).toBe(content.length);
    const bad = await fetch(`${seller.daemon.apiUrl}/paypub/publish/upload?name=../x&price=10000`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: content,
    });
    expect(bad.status).toBe(400);
  });

  it('unlocks only under <datadir>/paypub/unlocked, creating no directory and replacing no file without force', async () => {
    const unlock = (body: Record<string, unknown>) => seller.api<{ error?: string; path?: string }>('POST', `/paypub/sales/${privateId}/unlock`, body);
    for (const out of ['/nonexistent-dir/x', '/tmp/dd-escape.bin', '../x.bin', 'nodir/x.bin', '.']) {
      const r = await unlock({ out });
      expect(r.status, out).toBe(400);
    }
    expect(existsSync('/nonexistent-dir')).toBe(false);
    expect(existsSync('/tmp/dd-escape.bin')).toBe(false);
    expect(existsSync(join(seller.datadir, 'paypub', 'unlocked', 'nodir'))).toBe(false);

    const first = await unlock({ out: 'copy.bin' });
    expect(first.status).toBe(200);
    expect(first.body.path).toBe(unlockedPath(seller, 'copy.bin'));
    expect(Buffer.compare(readFileSync(unlockedPath(seller, 'copy.bin')), Buffer.from(file))).toBe(0);
    writeFileSync(unlockedPath(seller, 'copy.bin'), 'edited by the user');
    const again = await unlock({ out: 'copy.bin' });
    expect(again.status).toBe(409);
    expect(readFileSync(unlockedPath(seller, 'copy.bin'), 'utf8')).toBe('edited by the user');
    expect((await unlock({ out: 'copy.bin', force: true })).status).toBe(200);
    expect(Buffer.compare(readFileSync(unlockedPath(seller, 'copy.bin')), Buffer.from(file))).toBe(0);
  });

  it('the CLI does not replace a file without --force', async () => {
    const out = join(seller.datadir, 'report.pdf');
    writeFileSync(out, 'my own report');
    const args = ['--datadir', seller.datadir, '--backend', node.backendUrl, 'paypub', 'unlock', privateId, '--out', out];
    const refused = await runCli(args, { DEADDROP_PASSPHRASE: PASS });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/exists: pass --force/);
    expect(readFileSync(out, 'utf8')).toBe('my own report');
    const forced = await runCli([...args, '--force'], { DEADDROP_PASSPHRASE: PASS });
    expect(forced.code, forced.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(out), Buffer.from(file))).toBe(0);
  });
});
