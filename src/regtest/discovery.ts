/**
 * Finding the running regtest node from any datadir. `deaddrop regtest up` (and a daemon that
 * starts its own regtest node) records which datadir owns the node in a per-user file,
 * `~/.deaddrop/regtest-node.json` (0600 in a 0700 directory). A command on regtest with no
 * `--backend` and no node of its own datadir attaches to that node: the RPC credentials stay in
 * the owner's `regtest/node.json` (0600) and never have to be typed on a command line.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

const VERSION = 1;

/** The per-user discovery file (follows $HOME). */
export function discoveryFile(): string {
  return join(homedir(), '.deaddrop', 'regtest-node.json');
}

interface Discovery {
  readonly version: number;
  /** The datadir whose `regtest/node.json` describes the node. */
  readonly datadir: string;
  readonly pid: number;
}

/** Records `datadir` as the owner of the running regtest node (atomic, 0600). */
export function publishRegtestNode(datadir: string, pid: number): void {
  const file = discoveryFile();
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const record: Discovery = { version: VERSION, datadir: resolve(datadir), pid };
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/** The datadir owning the published regtest node, or undefined when none is published. */
export function discoveredRegtestDatadir(): string | undefined {
  try {
    const v = JSON.parse(readFileSync(discoveryFile(), 'utf8')) as Partial<Discovery>;
    if (v.version === VERSION && typeof v.datadir === 'string' && v.datadir !== '') return v.datadir;
  } catch {
    // absent or unreadable: nothing published
  }
  return undefined;
}

/** Removes the discovery file when it names `datadir` (another node may have been published since). */
export function unpublishRegtestNode(datadir: string): void {
  if (discoveredRegtestDatadir() === resolve(datadir)) rmSync(discoveryFile(), { force: true });
}
