import { defineConfig } from 'vitest/config';

// Unit tests run in parallel first; then integration tests, which start real nodes (btcd,
// ElectrumX) and measure latencies, run one file at a time on an otherwise idle machine.
export default defineConfig({
  test: {
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
