/**
 * Hostile, slow clients on real sockets, held by a separate Python process (so their sockets
 * cost the process under test nothing but what the server does with them). See slow-clients.py.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const SCRIPT = fileURLToPath(new URL('./slow-clients.py', import.meta.url));

export type SlowMode = 'stalled-ws' | 'slowloris' | 'half-open';

export interface SlowClients {
  /** Connections open once the process reported ready. */
  readonly opened: number;
  /** Connections the server has closed so far (slowloris and half-open modes only). */
  readonly closed: number;
  stop(): Promise<void>;
}

/** Opens `count` connections of `mode` to `base` (http:// or ws:// URL); resolves once all are open. */
export function startSlowClients(mode: SlowMode, base: string, count: number, opts: { path?: string; token?: string; source?: string } = {}): Promise<SlowClients> {
  const u = new URL(base);
  const args = [SCRIPT, mode, u.hostname, u.port, String(count), opts.path ?? '/', opts.token ?? '', opts.source ?? ''];
  const child: ChildProcess = spawn('python3', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let opened = -1;
  let closed = 0;
  const handle: SlowClients = {
    get opened() {
      return opened;
    },
    get closed() {
      return closed;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void handle.stop();
      reject(new Error(`slow clients (${mode}) did not report ready`));
    }, 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (opened < 0) reject(new Error(`slow clients (${mode}) exited ${code}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const [word, n] = line.split(' ');
      if (word === 'ready') {
        opened = Number(n);
        clearTimeout(timer);
        resolve(handle);
      } else if (word === 'closed') closed = Number(n);
    });
  });
}
