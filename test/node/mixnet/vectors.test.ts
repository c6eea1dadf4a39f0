/**
 * The committed Sphinx vectors (test/vectors/mixnet/sphinx-v1.json): our implementation reproduces
 * them byte for byte, and a second implementation written from docs/protocol/mixnet.md alone, in
 * Python with PyPI `cryptography` (test/interop/sphinx_check.py, run in the project venv that
 * regtest/install-pytools.sh fills), processes them hop by hop to the same outputs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildVectors } from '../../support/mixnet-vectors.js';
import type { HopOutput, Vector } from '../../support/mixnet-vectors.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const VECTORS = join(ROOT, 'test/vectors/mixnet/sphinx-v1.json');
const PYTHON = join(ROOT, '.tools/electrumx/bin/python');
const CHECKER = join(ROOT, 'test/interop/sphinx_check.py');

interface Committed {
  format: string;
  packetBytes: number;
  vectors: Vector[];
}

interface PyResult {
  name: string;
  processing: HopOutput[];
  replayRefused: boolean[];
  publicKeysMatch: boolean;
  surbFirstHopMatches?: boolean;
  surbPacketMatches?: boolean;
  openedBody?: string;
}

const committed = JSON.parse(readFileSync(VECTORS, 'utf8')) as Committed;

describe('Sphinx vectors', () => {
  it('are reproduced byte for byte by src/node/mixnet (creation and every hop)', () => {
    expect(buildVectors()).toEqual(committed);
  });

  it('cover forward and reply routes of 1 to 5 hops and every rejection at a hop', () => {
    const ends = committed.vectors.map((v) => v.processing.at(-1)!);
    expect(committed.vectors.filter((v) => v.kind === 'forward').map((v) => v.hops.length).sort()).toEqual([1, 3, 5]);
    expect(ends.map((e) => (e.result === 'reject' ? e.reason : e.result)).sort()).toEqual(
      ['deliver', 'deliver', 'deliver', 'mac', 'mac', 'payload', 'point', 'reply', 'reply', 'size'],
    );
  });

  it('are processed to the same outputs by the independent Python implementation', () => {
    if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run bash regtest/ensure-tools.sh`);
    const out = execFileSync(PYTHON, [CHECKER, VECTORS], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const py = (JSON.parse(out) as { vectors: PyResult[] }).vectors;
    expect(py.map((r) => r.name)).toEqual(committed.vectors.map((v) => v.name));
    for (const [i, v] of committed.vectors.entries()) {
      const r = py[i]!;
      expect(r.processing, v.name).toEqual(v.processing);
      expect(r.publicKeysMatch, v.name).toBe(true);
      const accepted = v.processing.filter((p) => p.result !== 'reject').length;
      expect(r.replayRefused, v.name).toEqual(Array.from({ length: accepted }, () => true));
      if (v.kind === 'reply') {
        expect(r.surbFirstHopMatches, v.name).toBe(true);
        expect(r.surbPacketMatches, v.name).toBe(true);
        expect(r.openedBody, v.name).toBe(v.openedBody);
        expect(Buffer.from(v.openedBody!, 'hex').subarray(0, v.body!.length / 2).toString('hex')).toBe(v.body);
      }
    }
  });
});
