/**
 * The first run and operational safety, through real processes on regtest (btcd):
 *
 * - one daemon per datadir: a second `start` and a `watch --from` are refused with one line
 *   naming the running pid; a lock left by a SIGKILLed daemon does not block a restart;
 * - file modes: after wallet, drop, PayPub and node activity every file under the datadir is
 *   0600 and every directory 0700, and a loosened datadir is tightened at start-up;
 * - secrets out of process metadata: `/proc/<pid>/cmdline` and `environ` of the node and of
 *   the daemon hold neither the RPC password nor the wallet passphrase; a password given in
 *   `--backend` draws a warning, `--backend-auth-file` works without one;
 * - `watch --index <url>` without `--once` follows until SIGINT, then exits 0;
 * - the seed can be backed up later (`wallet mnemonic`), and the daemon says how to
 *   authenticate without printing the token; a first start says what it is doing.
 *
 * Every process runs with HOME in a temp dir, so the per-user regtest discovery file is ours.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, runCliJson } from '../support/cli.js';
import { waitUntil } from '../support/wait.js';
import { chainNodes, useNodeKind } from '../support/nodes.js';
import { REPO_ROOT } from '../../src/regtest/harness.js';

const PASS = 'first run passphrase';

interface Proc {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
}

/** Spawns the CLI with exactly `env` over a minimal base (no DEADDROP_* from the test runner). */
function spawnCli(args: readonly string[], env: Record<string, string>): Proc {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DEADDROP_')) base[k] = v;
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (p.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (p.stderr += d.toString()));
  return p;
}

function exited(p: Proc): Promise<number | null> {
  if (p.child.exitCode !== null) return Promise.resolve(p.child.exitCode);
  return new Promise((r) => p.child.once('exit', (code) => r(code)));
}

async function stop(p: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return p?.child.exitCode ?? null;
  const done = exited(p);
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
  const code = await done;
  clearTimeout(timer);
  return code;
}

/** Waits until the daemon printed its API line (human mode) and returns the URL. */
async function apiOf(p: Proc): Promise<string> {
  return waitUntil(() => {
    if (p.child.exitCode !== null) throw new Error(`daemon exited ${p.child.exitCode}: ${p.stderr}`);
    return /API at (http:\/\/127\.0\.0\.1:\d+)/.exec(p.stdout)?.[1];
  }, 'the daemon API line', 90_000);
}

function procText(pid: number, what: 'cmdline' | 'environ'): string {
  return readFileSync(`/proc/${pid}/${what}`).toString('utf8').replaceAll('\0', ' ');
}

/** Every path under `dir` (itself included) with its permission bits. */
function walk(dir: string): { path: string; mode: number; dir: boolean }[] {
  const out: { path: string; mode: number; dir: boolean }[] = [];
  const visit = (p: string): void => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    out.push({ path: p, mode: st.mode & 0o777, dir: st.isDirectory() });
    if (st.isDirectory()) for (const n of readdirSync(p)) visit(join(p, n));
  };
  visit(dir);
  return out;
}

describe.each(chainNodes())('on %s', (kind) => {
  useNodeKind(kind);

  describe('first run and operational safety', () => {
    const root = mkdtempSync(join(tmpdir(), 'dd-first-run-'));
    const home = join(root, 'home');
    const dirs = { node: join(root, 'node'), alice: join(root, 'alice'), light: join(root, 'light'), solo: join(root, 'solo') };
    const passFile = join(root, 'passphrase');
    /** Passphrase from a file: the daemon's environment holds only the path. */
    const fileEnv = { HOME: home, DEADDROP_PASSPHRASE_FILE: passFile };
    const passEnv = { HOME: home, DEADDROP_PASSPHRASE: PASS };
    let rpcPass = '';
    let nodePid = 0;
    let daemon: Proc | undefined;
    let api = '';
    const procs: Proc[] = [];

    beforeAll(async () => {
      mkdirSync(home, { recursive: true });
      writeFileSync(passFile, `${PASS}\n`, { mode: 0o600 });
      // The node is started from its own datadir, with the passphrase in the environment: it must not inherit it.
      const up = await runCliJson<{ pid: number }>(['--datadir', dirs.node, 'regtest', 'up'], passEnv);
      nodePid = up.pid;
      rpcPass = (JSON.parse(readFileSync(join(dirs.node, 'regtest', 'node.json'), 'utf8')) as { rpcPass: string }).rpcPass;
      expect(rpcPass).toMatch(/^[0-9a-f]{32}$/);
    });

    afterAll(async () => {
      for (const p of [daemon, ...procs]) await stop(p);
      await runCli(['--datadir', dirs.node, 'regtest', 'down'], { HOME: home });
      await runCli(['--datadir', dirs.solo, 'regtest', 'down'], { HOME: join(root, 'home-solo') });
      rmSync(root, { recursive: true, force: true });
    });

    it('the regtest node has no password on its command line and none of our secrets in its environment', () => {
      const cmdline = procText(nodePid, 'cmdline');
      const environ = procText(nodePid, 'environ');
      expect(cmdline).toContain(kind);
      expect(cmdline).not.toContain(rpcPass);
      expect(cmdline).not.toMatch(/rpcpass/);
      expect(environ).not.toContain(PASS);
      expect(environ).not.toMatch(/DEADDROP_/);
      expect(lstatSync(join(dirs.node, 'regtest', 'node', kind === 'btcd' ? 'btcd.conf' : 'bitcoin.conf')).mode & 0o777).toBe(0o600);
    });

    it('init can show the seed, and `wallet mnemonic` exports it later behind the passphrase', async () => {
      // No --backend: the datadir finds the node `regtest up` published for this user.
      const created = await runCliJson<{ mnemonic: string; birthdayHeight: number }>(['--datadir', dirs.alice, 'init', '--show-mnemonic'], fileEnv);
      expect(created.mnemonic.split(' ')).toHaveLength(24);
      expect(created.birthdayHeight).toBeGreaterThanOrEqual(101);
      const exported = await runCliJson<{ mnemonic: string }>(['--datadir', dirs.alice, 'wallet', 'mnemonic'], fileEnv);
      expect(exported.mnemonic).toBe(created.mnemonic);
      const human = await runCli(['--datadir', dirs.alice, 'wallet', 'mnemonic'], passEnv);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain(created.mnemonic);
      const wrong = await runCli(['--datadir', dirs.alice, 'wallet', 'mnemonic'], { HOME: home, DEADDROP_PASSPHRASE: 'not it' });
      expect(wrong.code).not.toBe(0);
      expect(wrong.stdout).toBe('');
      expect(wrong.stderr.trim().split('\n')).toEqual([expect.stringMatching(/wrong passphrase/)]);
      const plain = await runCli(['--datadir', dirs.light, 'init'], passEnv);
      expect(plain.stdout).toMatch(/deaddrop wallet mnemonic/);
    });

    it('one daemon per datadir: a second start and a watch --from are refused naming its pid; a SIGKILLed daemon\'s lock does not block a restart', async () => {
      daemon = spawnCli(['--datadir', dirs.alice, 'start', '--regtest'], fileEnv);
      api = await apiOf(daemon);
      const pid = daemon.child.pid!;
      const lock = JSON.parse(readFileSync(join(dirs.alice, '.lock'), 'utf8')) as { pid: number };
      expect(lock.pid).toBe(pid);

      // How to authenticate, with the token's file, never the token.
      const token = readFileSync(join(dirs.alice, 'api.token'), 'utf8').trim();
      expect(daemon.stdout).toContain('Authorization: Bearer');
      expect(daemon.stdout).toContain(join(dirs.alice, 'api.token'));
      expect(daemon.stdout + daemon.stderr).not.toContain(token);

      const second = await runCli(['--datadir', dirs.alice, 'start', '--regtest'], fileEnv, 60_000);
      expect(second.code).not.toBe(0);
      expect(second.stderr.trim().split('\n')).toEqual([`error: datadir ${dirs.alice} is in use by a deaddrop daemon (pid ${pid}); stop it first`]);
      const rescan = await runCli(['--datadir', dirs.alice, 'watch', '--once', '--from', '0'], fileEnv);
      expect(rescan.code).not.toBe(0);
      expect(rescan.stderr.trim().split('\n')).toEqual([`error: datadir ${dirs.alice} is in use by a deaddrop daemon (pid ${pid}); stop it first`]);
      // The first daemon is untouched: its files still name it.
      expect(readFileSync(join(dirs.alice, 'api.url'), 'utf8').trim()).toBe(api);
      expect(readFileSync(join(dirs.alice, 'api.token'), 'utf8').trim()).toBe(token);

      // The daemon's own metadata: no RPC password, no passphrase (it came from a file).
      for (const what of ['cmdline', 'environ'] as const) {
        const text = procText(pid, what);
        expect(text, what).not.toContain(rpcPass);
        expect(text, what).not.toContain(PASS);
      }

      // SIGKILL leaves the lock file behind; a restart sees its process is gone and takes it.
      await stop(daemon, 'SIGKILL');
      expect(existsSync(join(dirs.alice, '.lock'))).toBe(true);
      // Loosen the datadir as an older version or a careless chmod would: the start-up check tightens it.
      chmodSync(dirs.alice, 0o755);
      chmodSync(join(dirs.alice, 'keystore.json'), 0o644);
      daemon = spawnCli(['--datadir', dirs.alice, 'start', '--regtest'], fileEnv);
      api = await apiOf(daemon);
      expect(daemon.stderr).toContain(`tightened the mode of ${dirs.alice} from 0755 to 0700`);
      expect(daemon.stderr).toContain(`tightened the mode of ${join(dirs.alice, 'keystore.json')} from 0644 to 0600`);
      expect((JSON.parse(readFileSync(join(dirs.alice, '.lock'), 'utf8')) as { pid: number }).pid).toBe(daemon.child.pid);
    });

    it('every file the daemon and the CLI write is 0600 and every directory 0700, sqlite -wal/-shm included', async () => {
      const { address } = await runCliJson<{ address: string }>(['--datadir', dirs.alice, 'wallet', 'address'], fileEnv);
      await runCliJson(['--datadir', dirs.alice, 'regtest', 'fund', address, '2000000'], { HOME: home });
      const invite = (await runCliJson<{ uri: string }>(['--datadir', dirs.light, 'invite'], passEnv)).uri;
      await runCliJson(['--datadir', dirs.alice, 'drop', 'send', invite, '--endpoint', 'ws://127.0.0.1:9', '--message', 'hi', '--fee-rate', '2'], fileEnv);
      const content = join(root, 'content.bin');
      writeFileSync(content, Buffer.alloc(4096, 7));
      await runCliJson(['--datadir', dirs.alice, 'paypub', 'publish', content, '--price', '10000', '--chunks', '4', '--sample', '1', '--fee-rate', '2', '--no-auto-claim'], fileEnv);
      await runCliJson(['--datadir', dirs.alice, 'log', 'append', '--type', 'post', '--json', '{"text":"modes"}'], fileEnv);
      await runCliJson(['--datadir', dirs.alice, 'regtest', 'mine', '1'], { HOME: home });
      const token = readFileSync(join(dirs.alice, 'api.token'), 'utf8').trim();
      await waitUntil(async () => {
        const r = await fetch(`${api}/drops`, { headers: { authorization: `Bearer ${token}` } });
        return r.ok ? true : undefined;
      }, 'the daemon API');

      const entries = walk(dirs.alice);
      const names = entries.map((e) => e.path.slice(dirs.alice.length + 1));
      for (const f of ['keystore.json', 'wallet.db', 'drops.sqlite', 'node.sqlite', 'api.token', 'api.url', '.lock']) expect(names, f).toContain(f);
      expect(names.some((n) => /-wal$/.test(n)), 'some sqlite -wal file').toBe(true);
      expect(names.some((n) => /paypub/.test(n)), 'PayPub files').toBe(true);
      const loose = entries.filter((e) => (e.dir ? e.mode !== 0o700 : (e.mode & 0o077) !== 0 || (e.mode & 0o600) !== 0o600));
      expect(loose.map((e) => `${e.path} ${e.mode.toString(8)}`)).toEqual([]);
      // The regtest node's own datadir too (btcd inherits the CLI's umask).
      const nodeLoose = walk(dirs.node).filter((e) => (e.mode & 0o077) !== 0);
      expect(nodeLoose.map((e) => `${e.path} ${e.mode.toString(8)}`)).toEqual([]);
    });

    it('`watch --index <url>` without --once follows the index until SIGINT, then exits 0', async () => {
      const w = spawnCli(['--datadir', dirs.light, 'watch', '--index', api], passEnv);
      procs.push(w);
      // It used to exit with code 13 about 3 s in, printing nothing: nothing kept it alive.
      await waitUntil(() => (w.stdout.includes('drop.confirmed') ? true : undefined), 'the light client to print the confirmed drop', 30_000)
        .catch((err: unknown) => {
          throw new Error(`${String(err)}; exit ${w.child.exitCode}; stderr ${w.stderr}`);
        });
      await new Promise((r) => setTimeout(r, 7_000));
      expect(w.child.exitCode).toBeNull();
      const t0 = Date.now();
      expect(await stop(w, 'SIGINT')).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5_000);
    });

    it('passwords stay out of the command line: a warning when given there, --backend-auth-file works without one', async () => {
      const url = new URL(`${kind}://127.0.0.1:${(JSON.parse(readFileSync(join(dirs.node, 'regtest', 'node.json'), 'utf8')) as { rpcPort: number }).rpcPort}`);
      const authFile = join(root, 'rpc-auth');
      writeFileSync(authFile, `deaddrop:${rpcPass}\n`, { mode: 0o600 });
      const viaFile = await runCli(['--datadir', dirs.light, '--backend', url.toString(), '--backend-auth-file', authFile, 'wallet', 'balance', '--json'], passEnv);
      expect(viaFile.code, viaFile.stderr).toBe(0);
      expect(viaFile.stderr).toBe('');
      const viaEnv = await runCli(['--datadir', dirs.light, '--backend', url.toString(), 'wallet', 'balance', '--json'], { ...passEnv, DEADDROP_BACKEND_AUTH: `deaddrop:${rpcPass}` });
      expect(viaEnv.code, viaEnv.stderr).toBe(0);
      expect(viaEnv.stderr).toBe('');
      const inline = `${kind}://deaddrop:${rpcPass}@127.0.0.1:${url.port}`;
      const warned = await runCli(['--datadir', dirs.light, '--backend', inline, 'wallet', 'balance', '--json'], passEnv);
      expect(warned.code).toBe(0);
      expect(warned.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^warning: the password in --backend is visible .*--backend-auth-file/)]);
      expect(warned.stderr).not.toContain(rpcPass);
    });

    it('a daemon that starts its own node says what it is doing, and the node gets neither password nor passphrase', async () => {
      // Its own HOME: no published node, so it starts one (as `npm start` does on a fresh machine).
      const soloHome = join(root, 'home-solo');
      mkdirSync(soloHome, { recursive: true });
      const d = spawnCli(['--datadir', dirs.solo, 'start', '--regtest'], { HOME: soloHome, DEADDROP_PASSPHRASE: PASS, DEADDROP_BACKEND_AUTH: 'someone:s3cret-auth', DEADDROP_REGTEST_NODE: kind });
      procs.push(d);
      await apiOf(d);
      expect(d.stderr).toMatch(/no regtest node running: starting one/);
      expect(d.stderr).toMatch(new RegExp(`${kind} started \\(pid \\d+\\), waiting for its RPC`));
      const state = JSON.parse(readFileSync(join(dirs.solo, 'regtest', 'node.json'), 'utf8')) as { pid: number; rpcPass: string };
      const cmdline = procText(state.pid, 'cmdline');
      const environ = procText(state.pid, 'environ');
      expect(cmdline).not.toContain(state.rpcPass);
      expect(environ).not.toContain(PASS);
      expect(environ).not.toContain('s3cret-auth');
      expect(environ).not.toMatch(/DEADDROP_/);
      expect(await stop(d)).toBe(0);
      await waitUntil(() => {
        try {
          process.kill(state.pid, 0);
          return undefined;
        } catch {
          return true;
        }
      }, 'the daemon\'s own node to stop with it');
    });

    it('the btcd installer says it is building before the silent go install', () => {
      const fake = join(root, 'fake');
      mkdirSync(join(fake, 'regtest'), { recursive: true });
      mkdirSync(join(fake, 'bin'), { recursive: true });
      copyFileSync(join(REPO_ROOT, 'regtest', 'install-btcd.sh'), join(fake, 'regtest', 'install-btcd.sh'));
      writeFileSync(join(fake, 'bin', 'go'), '#!/bin/sh\necho FAKE-GO-RAN\nexit 1\n', { mode: 0o755 });
      const r = spawnSync('bash', ['-c', `bash ${join(fake, 'regtest', 'install-btcd.sh')} 2>&1`], {
        // HOME in the temp dir: some shells source ~/.bashrc even here, which could put the real go first.
        env: { PATH: `${join(fake, 'bin')}:/usr/bin:/bin`, HOME: fake }, encoding: 'utf8',
      });
      const lines = r.stdout.split('\n');
      const building = lines.findIndex((l) => /building btcd v0\.26\.0 with go install .*about a minute/.test(l));
      expect(building, r.stdout).toBe(0);
      expect(lines.findIndex((l) => l === 'FAKE-GO-RAN')).toBeGreaterThan(building);
      expect(r.status).not.toBe(0);
    });
  });
});
