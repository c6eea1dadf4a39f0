/**
 * The README works verbatim: every ```` ```sh ```` block (info string exactly `sh`) is run as
 * written, in document order, in one bash started in the repository with a fresh HOME under a
 * temp dir and no DEADDROP_* variables from the test runner, the way a new user pastes them into
 * a fresh shell. Blocks marked ```` ```sh no-test ```` (set-up, the whole test suite, benchmarks,
 * the curl example that the daemon section already runs) are skipped, and that list is pinned
 * here so a runnable block cannot be skipped by accident.
 *
 * The only changes to the text: `shopt -s expand_aliases` (bash expands aliases only in
 * interactive shells) and `set -e` so the first failing command fails the test.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../src/regtest/harness.js';
import { runCli } from './support/cli.js';

interface Block {
  readonly info: string;
  readonly body: string;
  readonly line: number;
}

/** Fenced blocks whose info string starts with `sh`. */
function shellBlocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(sh(?:\s.*)?)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    out.push({ info: open[1]!.trim(), body: body.join('\n'), line: start + 1 });
  }
  return out;
}

/** The blocks the README marks `no-test`, by first line: long-running set-up, tests, benchmarks, one example. */
const SKIPPED = [
  'npm ci && npm start',
  'npm ci && npm test',
  'npm run bench            # all',
  'curl -H "Authorization: Bearer $(cat ~/.deaddrop/regtest/api.token)" "$(cat ~/.deaddrop/regtest/api.url)/status"',
];

describe('README', () => {
  const root = mkdtempSync(join(tmpdir(), 'dd-readme-'));
  const home = join(root, 'home');
  let pgid: number | undefined;

  afterAll(async () => {
    // Whatever the script left running (daemons, the node) is in its process group.
    if (pgid !== undefined) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // all gone
      }
    }
    // The regtest node runs detached (its own session): stop it the README's way if the script did not get there.
    await runCli(['regtest', 'down'], { HOME: home, DEADDROP_DATADIR: undefined });
    rmSync(root, { recursive: true, force: true });
  });

  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const blocks = shellBlocks(readme);

  it('marks only the set-up, test and benchmark blocks as not runnable', () => {
    const skipped = blocks.filter((b) => b.info !== 'sh');
    expect(skipped.every((b) => b.info === 'sh no-test')).toBe(true);
    expect(skipped.map((b) => b.body.split('\n')[0])).toEqual(SKIPPED);
    expect(blocks.filter((b) => b.info === 'sh').length).toBeGreaterThanOrEqual(6);
  });

  it('runs every sh block as written, in a fresh shell and HOME', async () => {
    mkdirSync(home, { recursive: true });
    const script = ['shopt -s expand_aliases', 'set -e', ...blocks.filter((b) => b.info === 'sh').map((b) => `# README.md line ${b.line}\n${b.body}`)].join('\n');
    const env: NodeJS.ProcessEnv = { HOME: home, PATH: process.env.PATH, LANG: 'C.UTF-8' };
    if (process.env.BITCOIND) env.BITCOIND = process.env.BITCOIND;
    // --norc --noprofile: the user's shell start-up files are not part of the README.
    const child = spawn('bash', ['--norc', '--noprofile', '-c', `set -x\n${script}`], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    pgid = child.pid;
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // gone
        }
      }, 840_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    const tail = out.split('\n').slice(-60).join('\n');
    expect(code, tail).toBe(0);
    // What the walk-through promises along the way.
    expect(out).toMatch(/drop\.pending [0-9a-f]{64}:\d+ .*message "hi"/);
    expect(out).toMatch(/drop\.confirmed [0-9a-f]{64}:\d+ .*\(1 confirmation\)/);
    expect(out).toContain('Bob has the file');
    expect(out).toContain('regtest node stopped');
  }, 900_000);
});
