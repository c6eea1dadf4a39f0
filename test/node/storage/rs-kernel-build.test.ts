import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildKernel, bytesModuleText } from '../../../src/node/storage/rs/build-kernel.js';

describe('committed SIMD kernel', () => {
  it('equals a fresh wabt build of kernel-wat.ts (run `npm run build:rs-kernel` after editing it)', async () => {
    const committed = readFileSync(fileURLToPath(new URL('../../../src/node/storage/rs/kernel-wasm-bytes.ts', import.meta.url)), 'utf8');
    expect(committed).toBe(bytesModuleText(await buildKernel()));
  });
});
