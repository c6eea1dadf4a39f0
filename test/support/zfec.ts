/**
 * Runs the real zfec (PyPI `zfec` 1.6.0.0, installed by regtest/install-zfec.sh into the
 * project-local venv) on a batch of jobs in one Python process, for byte-compatibility tests
 * and the codec bench.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The venv's python (the one regtest/install-zfec.sh installs zfec into). */
export const VENV_PYTHON = fileURLToPath(new URL('../../.tools/electrumx/bin/python', import.meta.url));

const SCRIPT = String.raw`
import sys, json, zfec
assert zfec.__version__.startswith("1.6.0"), zfec.__version__
for line in sys.stdin:
    c = json.loads(line)
    if c["op"] == "encode":
        shares = zfec.Encoder(c["k"], c["n"]).encode([bytes.fromhex(b) for b in c["blocks"]])
        print(json.dumps({"shares": [bytes(s).hex() for s in shares]}))
    else:
        blocks = zfec.Decoder(c["k"], c["n"]).decode([bytes.fromhex(b) for b in c["shares"]], c["nums"])
        print(json.dumps({"blocks": [bytes(b).hex() for b in blocks]}))
`;

export type ZfecJob =
  | { readonly op: 'encode'; readonly k: number; readonly n: number; readonly blocks: readonly Uint8Array[] }
  | { readonly op: 'decode'; readonly k: number; readonly n: number; readonly shares: readonly Uint8Array[]; readonly nums: readonly number[] };

/** Runs the jobs through zfec; returns, per job, the shares (encode) or the k blocks (decode). */
export function runZfec(jobs: readonly ZfecJob[]): Uint8Array[][] {
  if (!existsSync(VENV_PYTHON)) throw new Error(`no venv python at ${VENV_PYTHON}: run bash regtest/ensure-tools.sh`);
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  const input = jobs
    .map((j) =>
      JSON.stringify(
        j.op === 'encode'
          ? { op: 'encode', k: j.k, n: j.n, blocks: j.blocks.map(hex) }
          : { op: 'decode', k: j.k, n: j.n, shares: j.shares.map(hex), nums: j.nums },
      ),
    )
    .join('\n');
  const r = spawnSync(VENV_PYTHON, ['-c', SCRIPT], { input, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zfec failed (status ${r.status}): ${r.stderr} (run bash regtest/install-zfec.sh)`);
  const lines = r.stdout.trim().split('\n');
  if (lines.length !== jobs.length) throw new Error(`zfec returned ${lines.length} results for ${jobs.length} jobs`);
  return lines.map((l) => {
    const o = JSON.parse(l) as { shares?: string[]; blocks?: string[] };
    return (o.shares ?? o.blocks ?? []).map((h) => new Uint8Array(Buffer.from(h, 'hex')));
  });
}
