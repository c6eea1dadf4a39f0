/**
 * A loopback JSON-RPC translator that lets ElectrumX (1.20, written for Bitcoin Core) sync from
 * btcd. ElectrumX talks to the proxy as if it were bitcoind; the proxy rewrites the few calls
 * whose Core dialect btcd does not speak and forwards everything else unchanged (batches too).
 *
 * Rewrites (found by running ElectrumX 1.20.0 against btcd 0.26.0 and logging what failed):
 * - `getblock <hash> false|true` → integer verbosity (btcd rejects booleans).
 * - `getnetworkinfo` (missing in btcd) → built from btcd's `getinfo`; the version is raised to
 *   Core 28.0, the minimum ElectrumX accepts, and the subversion names btcd.
 * - `getindexinfo` (missing) → `txindex` reported synced at the current height. The node must run
 *   with `--txindex`, which the regtest harness always passes.
 * - `estimatesmartfee` (missing) → `estimatefee`; no estimate or an error becomes Core's
 *   "no estimate" shape `{errors, blocks}`, which ElectrumX turns into -1.
 * - `getmempoolinfo` → adds `mempoolminfee`, `minrelaytxfee`, `incrementalrelayfee` (btcd's relay fee).
 * - Every forwarded request gets a fresh numeric id (btcd does not answer requests without one);
 *   the caller's id is put back on the response.
 *
 * The proxy passes the caller's Authorization header through, so it grants nothing the caller
 * could not already do. It is for regtest tests only and listens on 127.0.0.1.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One JSON-RPC request as ElectrumX sends it. */
export interface RpcRequest {
  readonly method: string;
  readonly params?: unknown[];
  readonly id?: unknown;
  readonly jsonrpc?: string;
}

/** One JSON-RPC response. */
export interface RpcResponse {
  readonly result: unknown;
  readonly error: { code: number; message: string } | null;
  readonly id: unknown;
}

/** Post-processing of btcd's answer into the Core-shaped answer. */
export type ResponseMapper = (result: unknown, error: RpcResponse['error']) => Pick<RpcResponse, 'result' | 'error'>;

/** What to send btcd for one request, and how to map its answer back. */
export interface Translation {
  readonly forward: { readonly method: string; readonly params: unknown[] };
  readonly map?: ResponseMapper;
}

/** btcd's default minimum relay fee: 1 sat/vB, in BTC/kvB as Core reports fees. */
export const BTCD_RELAY_FEE_BTC_PER_KVB = 0.00001;
/** Lowest `getnetworkinfo.version` ElectrumX 1.20 accepts (Bitcoin Core 28.0). */
export const CORE_VERSION_FOR_ELECTRUMX = 280000;

const ok = (result: unknown): Pick<RpcResponse, 'result' | 'error'> => ({ result, error: null });
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** btcd's `getinfo` version (e.g. 260000) as a semantic version string ("0.26.0"). */
export function btcdVersionString(version: number): string {
  return `${Math.floor(version / 1_000_000)}.${Math.floor(version / 10_000) % 100}.${Math.floor(version / 100) % 100}`;
}

/** Core-shaped `getnetworkinfo` built from btcd's `getinfo`. */
export function networkInfoFromGetInfo(info: unknown): Record<string, unknown> {
  const i = isRecord(info) ? info : {};
  const relayfee = typeof i.relayfee === 'number' ? i.relayfee : BTCD_RELAY_FEE_BTC_PER_KVB;
  const version = typeof i.version === 'number' ? i.version : 0;
  return {
    version: CORE_VERSION_FOR_ELECTRUMX,
    subversion: `/btcd:${btcdVersionString(version)}/`,
    protocolversion: typeof i.protocolversion === 'number' ? i.protocolversion : 70002,
    localservices: '0000000000000000',
    localrelay: true,
    timeoffset: typeof i.timeoffset === 'number' ? i.timeoffset : 0,
    networkactive: true,
    connections: typeof i.connections === 'number' ? i.connections : 0,
    networks: [],
    relayfee,
    incrementalfee: relayfee,
    localaddresses: [],
    warnings: typeof i.errors === 'string' ? i.errors : '',
  };
}

/** Core-shaped `estimatesmartfee` from btcd's `estimatefee` answer (BTC/kvB, 0 or less: none). */
export function smartFeeFromEstimateFee(blocks: number, result: unknown, error: RpcResponse['error']): unknown {
  if (error === null && typeof result === 'number' && result > 0) return { feerate: result, blocks };
  return { errors: [error ? `btcd estimatefee: ${error.message}` : 'Insufficient data or no feerate found'], blocks };
}

/** Translates one Core-dialect request into what btcd understands. Pure. */
export function translateRequest(req: RpcRequest, relayFee = BTCD_RELAY_FEE_BTC_PER_KVB): Translation {
  const params = Array.isArray(req.params) ? req.params : [];
  switch (req.method) {
    case 'getblock': {
      const [hash, verbosity, ...rest] = params;
      const v = typeof verbosity === 'boolean' ? (verbosity ? 1 : 0) : verbosity;
      return { forward: { method: 'getblock', params: v === undefined ? [hash] : [hash, v, ...rest] } };
    }
    case 'getnetworkinfo':
      return { forward: { method: 'getinfo', params: [] }, map: (r, e) => (e ? { result: null, error: e } : ok(networkInfoFromGetInfo(r))) };
    case 'getindexinfo':
      return {
        forward: { method: 'getblockcount', params: [] },
        map: (r, e) => (e ? { result: null, error: e } : ok({ txindex: { synced: true, best_block_height: r } })),
      };
    case 'estimatesmartfee': {
      const blocks = typeof params[0] === 'number' ? params[0] : 1;
      return { forward: { method: 'estimatefee', params: [blocks] }, map: (r, e) => ok(smartFeeFromEstimateFee(blocks, r, e)) };
    }
    case 'getmempoolinfo':
      return {
        forward: { method: 'getmempoolinfo', params: [] },
        map: (r, e) =>
          e || !isRecord(r)
            ? { result: r, error: e }
            : ok({ mempoolminfee: relayFee, minrelaytxfee: relayFee, incrementalrelayfee: relayFee, loaded: true, ...r }),
      };
    default:
      return { forward: { method: req.method, params } };
  }
}

export interface BtcdRpcProxyOptions {
  /** btcd's RPC URL, e.g. `http://127.0.0.1:18334/` (credentials come from the caller's request). */
  readonly target: string;
  /** Called with `method: code message` for every call that btcd answered with an error. */
  readonly onError?: (line: string) => void;
  readonly relayFeeBtcPerKvB?: number;
}

export interface BtcdRpcProxy {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

interface Pending {
  readonly request: RpcRequest;
  readonly translation: Translation;
  readonly proxyId: number;
}

/** Starts the proxy on a free loopback port. */
export async function startBtcdRpcProxy(opts: BtcdRpcProxyOptions): Promise<BtcdRpcProxy> {
  let nextId = 1;
  const relayFee = opts.relayFeeBtcPerKvB ?? BTCD_RELAY_FEE_BTC_PER_KVB;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return reply(res, 200, { result: null, error: { code: -32700, message: 'Parse error' }, id: null });
    }
    const batch = Array.isArray(parsed);
    const items = (batch ? parsed : [parsed]) as unknown[];
    const pending: Pending[] = items.map((item) => {
      const request: RpcRequest = isRecord(item) && typeof item.method === 'string' ? (item as unknown as RpcRequest) : { method: '' };
      return { request, translation: translateRequest(request, relayFee), proxyId: nextId++ };
    });
    if (pending.length === 0) return reply(res, 200, []);
    const out = pending.map((p) => ({ jsonrpc: '1.0', id: p.proxyId, ...p.translation.forward }));
    const upstream = await fetch(opts.target, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) },
      body: JSON.stringify(batch ? out : out[0]),
    });
    const text = await upstream.text();
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      // Not JSON (e.g. 401 from btcd): pass status and text through untouched.
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' });
      res.end(text);
      return;
    }
    const byId = new Map<unknown, RpcResponse>();
    for (const r of Array.isArray(answer) ? answer : [answer]) if (isRecord(r)) byId.set(r.id, r as unknown as RpcResponse);
    const mapped = pending.map((p) => mapOne(p, byId.get(p.proxyId), opts.onError));
    reply(res, 200, batch ? mapped : mapped[0]);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) reply(res, 502, { result: null, error: { code: -1, message: `proxy: ${String(err)}` }, id: null });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

function mapOne(p: Pending, r: RpcResponse | undefined, onError?: (line: string) => void): RpcResponse {
  const raw = r ?? { result: null, error: { code: -32603, message: 'no answer from btcd' }, id: p.proxyId };
  const error = raw.error ?? null;
  if (error) onError?.(`${p.request.method}: ${error.code} ${error.message}`);
  const m = p.translation.map ? p.translation.map(raw.result, error) : { result: raw.result ?? null, error };
  return { result: m.result, error: m.error, id: p.request.id ?? null };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
