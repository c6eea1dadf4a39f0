/**
 * A scan worker that fails the way a real one could (for test/deaddrop/watch/scan-pool.test.ts):
 * a `scan` job makes the thread exit with code 3, a `finish` job throws outside any handler.
 */
import { parentPort } from 'node:worker_threads';
import type { ScanJob } from '../../src/deaddrop/watch/scan-pool.js';

parentPort!.on('message', (job: ScanJob) => {
  if (job.type === 'scan') process.exit(3);
  setImmediate(() => {
    throw new Error('scan worker blew up');
  });
});
