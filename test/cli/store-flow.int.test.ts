/**
 * Storage through the real CLI and a `deaddrop start --storage-server` daemon on regtest: the
 * daemon announces itself and serves its own files (1-of-1 here: one daemon), `store put` prints
 * the read capability, `store get` writes the file back byte-identical, `store ls`, `store check`
 * and `store server status` answer; bad capabilities, bad paths and bad flags give one-line errors.
 * (Several servers, n−k loss and repair are covered on PeerNodes in test/node/storage/.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliJson, startDaemonProcess, stopDaemonProcess, type DaemonProcess } from '../support/cli.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';

describe.each(chainNodes().slice(0, 1))('deaddrop store on %s', (kind) => {
  useNodeKind(kind);
  const env = { DEADDROP_PASSPHRASE: 'store flow passphrase' };
  const root = mkdtempSync(join(tmpdir(), 'dd-store-cli-'));
  const alice = join(root, 'alice');
  let daemon: DaemonProcess | undefined;

  beforeAll(async () => {
    await runCliJson(['--datadir', alice, 'regtest', 'up']);
  }, 180_000);

  afterAll(async () => {
    await stopDaemonProcess(daemon);
    await runCli(['--datadir', alice, 'regtest', 'down']);
    rmSync(root, { recursive: true, force: true });
  });

  it('puts, lists, checks and gets a file through a storage-server daemon', { timeout: 180_000 }, async () => {
    await runCliJson(['--datadir', alice, 'init'], env);
    const badQuota = await runCli(['--datadir', alice, 'start', '--storage-server', '--storage-quota', 'lots'], env);
    expect(badQuota.code).toBe(2);
    expect(badQuota.stderr).toMatch(/^error: --storage-quota must be a size such as 500M/m);
    daemon = await startDaemonProcess(alice, [], { ...env, DEADDROP_STORAGE_SHARES: '1/1/1' }, ['--storage-server', '--storage-quota', '10M']);

    const status = await runCliJson<{ serving: boolean; quotaBytes: number; knownServers: { self: boolean }[] }>(['--datadir', alice, 'store', 'server', 'status']);
    expect(status).toMatchObject({ serving: true, quotaBytes: 10_000_000 });
    expect(status.knownServers).toEqual([expect.objectContaining({ self: true })]);

    const file = join(root, 'photo.bin');
    const data = randomBytes(300_000);
    writeFileSync(file, data);
    const put = await runCli(['--datadir', alice, 'store', 'put', file]);
    expect(put.code, put.stderr).toBe(0);
    const cap = put.stdout.trim();
    expect(cap).toMatch(/^dd-chk:r:[a-z2-7]+:[a-z2-7]+:1:1:300000$/);
    // Progress counts segments (128 KiB each: 3 for 300 kB), hashed then sent.
    expect(put.stderr).toMatch(/encode +\[#+\] 3\/3/);
    expect(put.stderr).toMatch(/upload +\[#+\] 3\/3/);

    const out = join(root, 'back.bin');
    const capFile = join(root, 'cap.txt');
    writeFileSync(capFile, `${cap}\n`, { mode: 0o600 });
    const got = await runCli(['--datadir', alice, 'store', 'get', `@${capFile}`, '--out', out]);
    expect(got.code, got.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(out), data)).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const again = await runCli(['--datadir', alice, 'store', 'get', cap, '--out', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists: use --force/);

    const ls = await runCliJson<{ files: { name: string; cap: string; size: number }[] }>(['--datadir', alice, 'store', 'ls']);
    expect(ls.files).toEqual([expect.objectContaining({ name: 'photo.bin', cap, size: 300_000 })]);
    const check = await runCli(['--datadir', alice, 'store', 'check', cap]);
    expect(check.stdout).toMatch(/^healthy: 1 of 1 shares \(1 needed\)/);
    const after = await runCliJson<{ usedBytes: number; shares: number; activeLeases: number }>(['--datadir', alice, 'store', 'server', 'status']);
    expect(after).toMatchObject({ shares: 1, activeLeases: 1 });
    expect(after.usedBytes).toBeGreaterThan(300_000);

    for (const bad of ['not-a-cap', 'dd-chk:r:abc:def:1:1:5']) {
      const r = await runCli(['--datadir', alice, 'store', 'get', bad, '--out', join(root, 'x.bin')]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toMatch(/^error: .*capability/m);
      expect(existsSync(join(root, 'x.bin'))).toBe(false);
    }
    const missing = await runCli(['--datadir', alice, 'store', 'put', join(root, 'nope.bin')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.bin/);
  });
  it('attaches a file to a feed entry by capability and saves it back from the entry', { timeout: 120_000 }, async () => {
    expect(daemon).toBeDefined();
    const file = join(root, 'notes.txt');
    const data = randomBytes(50_000);
    writeFileSync(file, data);
    const appended = await runCli(['--datadir', alice, 'log', 'append', '--type', 'post', '--text', 'see attached', '--attach', file]);
    expect(appended.code, appended.stderr).toBe(0);
    expect(appended.stdout).toMatch(/^appended #\d+ \([0-9a-f]{64}\)\n {2}attachment notes\.txt: dd-chk:r:[a-z2-7]+:[a-z2-7]+:1:1:50000$/m);
    const shown = await runCli(['--datadir', alice, 'log', 'show']);
    expect(shown.stdout).toMatch(/post "see attached"\n {2}attachment notes\.txt \(50000 bytes\): dd-chk:r:/);

    const dir = mkdtempSync(join(root, 'saved-'));
    const saved = await runCli(['--datadir', alice, 'log', 'show', '--save-attachments', dir]);
    expect(saved.code, saved.stderr).toBe(0);
    expect(saved.stdout).toMatch(/saved #\d+ notes\.txt \(50000 bytes\) to /);
    expect(Buffer.compare(readFileSync(join(dir, 'notes.txt')), data)).toBe(0);
    const twice = await runCli(['--datadir', alice, 'log', 'show', '--save-attachments', dir]);
    expect(twice.stdout).toMatch(/NOT saved #\d+ notes\.txt: .*exists: not overwritten/);

    const missing = await runCli(['--datadir', alice, 'log', 'append', '--type', 'post', '--attach', join(root, 'nope.bin')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.bin/);
  });
  it('puts and gets a file whose share spans several frames, streamed to disk', { timeout: 120_000 }, async () => {
    expect(daemon).toBeDefined();
    const file = join(root, 'big.bin');
    const data = randomBytes(6 * 1024 * 1024 + 5); // one share of 6 MiB: three parts each way
    writeFileSync(file, data);
    const put = await runCli(['--datadir', alice, 'store', 'put', '--no-keep', file]);
    expect(put.code, put.stderr).toBe(0);
    const out = join(root, 'big-back.bin');
    const got = await runCli(['--datadir', alice, 'store', 'get', put.stdout.trim(), '--out', out]);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stderr).toMatch(/download +\[#{30}\] 49\/49/); // 49 segments of 128 KiB
    expect(Buffer.compare(readFileSync(out), data)).toBe(0);
  });
});
