import { defineConfig } from 'vitest/config';

// Unit tests run in parallel first; then integration tests, which start real nodes (btcd,
// Bitcoin Core when available, ElectrumX) and measure latencies, run one file at a time on an
// otherwise idle machine. The verbose reporter lists every test, so a CI log shows which node
// each chain-facing test ran on ("… on btcd", "… on bitcoind").
export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['verbose'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.int.test.ts'],
          testTimeout: 30_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          sequence: { concurrent: false, groupOrder: 1 },
        },
      },
    ],
  },
});
