/**
 * Worker-thread side of the scan pool (./scan-pool.ts): runs ./block-scan.ts on the jobs the
 * watcher's thread posts and answers each with its id. A job that throws answers with the error
 * message (the pool rejects that job's promise); nothing a block contains can reach here as a
 * throw, since the scan functions are total over chain data.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { finishCandidates, scanBlock } from './block-scan.js';
import type { ScanJob, ScanReply, ScanWorkerData } from './scan-pool.js';

const port = parentPort;
if (port === null) throw new Error('scan-worker: must run in a worker thread');
const { identities } = workerData as ScanWorkerData;

port.on('message', (job: ScanJob) => {
  let reply: ScanReply;
  try {
    if (job.type === 'scan') {
      reply = { id: job.id, ok: true, value: scanBlock(job.raw) };
    } else {
      reply = { id: job.id, ok: true, value: finishCandidates(job.candidates, job.prevouts, identities) };
    }
  } catch (err) {
    reply = { id: job.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
port.postMessage({ id: 0, ok: true } satisfies ScanReply); // loaded: jobs run at once from now on
