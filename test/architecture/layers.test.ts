/**
 * The layer check (bin/check-layers.js, `npm run layers`): it passes on the real tree, and it
 * fails, naming file, line and import, on a small tree with a planted wrong-way import.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..', '..');
const CHECKER = join(REPO, 'bin', 'check-layers.js');

function check(root: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CHECKER, root], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('layer check', () => {
  let root: string;
  const write = (path: string, text: string): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'dd-layers-'));
    write('src/util/errors.ts', 'export class E extends Error {}\n');
    write('src/chain/types.ts', "import { E } from '../util/errors.js';\nexport type Tip = { height: number; e?: E };\n");
    write('src/chain/follow/follower.ts', "import type { Tip } from '../types.js';\nexport const tip = (t: Tip): number => t.height;\n");
    write('src/wallet/wallet.ts', "import type { Tip } from '../chain/types.js';\nexport interface Wallet { tip: Tip }\n");
    write('src/deaddrop/send.ts', "import type { Wallet } from '../wallet/wallet.js';\nexport type W = Wallet;\n");
    write('src/node/feature.ts', "import type { W } from '../deaddrop/send.js';\nexport type N = W;\n");
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('passes on the real tree', () => {
    const r = check(REPO);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/all pointing down/);
  });

  it('passes on a small tree whose imports point down (and along the one documented sideways direction)', () => {
    const r = check(root);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('fails on a planted wrong-way import (chain importing wallet), naming it', () => {
    write('src/chain/follow/follower.ts', [
      "import type { Tip } from '../types.js';",
      'import type {',
      '  Wallet,',
      "} from '../../wallet/wallet.js';",
      'export const tip = (t: Tip, _w?: Wallet): number => t.height;',
      '',
    ].join('\n'));
    const r = check(root);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("src/chain/follow/follower.ts:4: chain -> wallet ('../../wallet/wallet.js') points up");
    expect(r.stderr.trim().split('\n')).toHaveLength(2);
  });

  it('fails on a feature importing another feature, and on a dynamic import that points up', () => {
    write('src/paypub/buyer.ts', "import type { W } from '../deaddrop/send.js';\nexport type B = W;\n");
    write('src/wallet/keys.ts', "export async function harness(): Promise<unknown> {\n  return import('../cli/main.js');\n}\n");
    write('src/cli/main.ts', 'export const main = 1;\n');
    const r = check(root);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("src/paypub/buyer.ts:1: paypub -> deaddrop ('../deaddrop/send.js') points sideways");
    expect(r.stderr).toContain("src/wallet/keys.ts:2: wallet -> cli ('../cli/main.js') points up");
  });

  it('fails on a folder that is in no layer', () => {
    write('src/watcher/watcher.ts', "import type { Tip } from '../chain/types.js';\nexport type T = Tip;\n");
    const r = check(root);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('src/watcher/watcher.ts:1: watcher/ is in no layer');
  });
});
