/**
 * Backend URLs → ChainSource.
 *
 * | URL                                                          | backend                      |
 * |--------------------------------------------------------------|------------------------------|
 * | `bitcoind://user:pass@127.0.0.1:18443[?rest=0]`              | Bitcoin Core, user/password  |
 * | `bitcoind://127.0.0.1:18443?cookie=/path/.cookie[&rest=1]`   | Bitcoin Core, cookie file    |
 * | `bitcoind://u:p@host:18443?zmq=tcp://127.0.0.1:28332`         | Bitcoin Core with ZMQ push   |
 * | `btcd://user:pass@127.0.0.1:18334`                           | btcd (`--notls`)             |
 * | `electrum+tcp://host:port`, `electrum+ssl://host:port`       | Electrum server              |
 * | `esplora+http://host/path`, `esplora+https://host/path`      | Esplora REST API             |
 *
 * Add `tls=1` to a bitcoind/btcd URL to speak HTTPS (the certificate must be trusted).
 * bitcoind ZMQ: `zmq=<endpoint>` is where Core publishes `sequence` (and `rawtx`, unless
 * `zmqrawtx=<endpoint>` names another socket); `zmq=0` turns ZMQ off. Without `zmq=` the node is
 * asked (`getzmqnotifications`). Endpoints are `tcp://host:port` or `ipc://path`.
 * Errors are BAD_INPUT and never repeat the password.
 */
import type { BackendOptions, ChainSource } from './types.js';
import { BitcoindSource } from './backends/bitcoind.js';
import { BtcdSource } from './backends/btcd.js';
import { EsploraSource } from './backends/esplora.js';
import { parseZmqEndpoint, type ZmqEndpoints } from './backends/zmq-wire.js';
import { DeaddropError } from '../util/errors.js';

/** Extra knobs for tests and embedding. */
export interface OpenOptions extends BackendOptions {
  /** Transport for the HTTP backends (bitcoind, btcd, esplora). */
  readonly fetch?: typeof fetch;
}

/** A parsed backend URL, without secrets in any string meant for display. */
export type BackendSpec =
  | {
      readonly kind: 'bitcoind';
      readonly rpcUrl: string;
      readonly auth: { user: string; pass: string } | { cookieFile: string };
      readonly rest: boolean;
      /** ZMQ endpoints, or false for none; absent means "ask the node". */
      readonly zmq?: ZmqEndpoints | false;
    }
  | { readonly kind: 'btcd'; readonly rpcUrl: string; readonly auth: { user: string; pass: string } }
  | { readonly kind: 'electrum'; readonly host: string; readonly port: number; readonly tls: boolean }
  | { readonly kind: 'esplora'; readonly baseUrl: string };

/** `scheme://host:port` with any password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i, (_m, scheme: string, userinfo: string) => {
    const user = userinfo.split(':')[0] ?? '';
    return `${scheme}${user ? `${user}:***` : '***'}@`;
  });
}

function bad(url: string, why: string): DeaddropError {
  return DeaddropError.badInput(`bad backend URL ${JSON.stringify(redactUrl(url))}: ${why}`);
}

function flag(u: URL, name: string, def: boolean): boolean {
  const v = u.searchParams.get(name);
  if (v === null) return def;
  return v === '1' || v === 'true' || v === 'yes';
}

function hostPort(url: string, u: URL): { host: string; port: number } {
  if (!u.hostname) throw bad(url, 'missing host');
  const port = u.port ? Number(u.port) : undefined;
  if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) throw bad(url, 'missing or invalid port');
  // IPv6 hosts come bracketed from URL; keep the bare address.
  return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port };
}

function credentials(url: string, u: URL): { user: string; pass: string } | undefined {
  if (!u.username && !u.password) return undefined;
  try {
    return { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
  } catch {
    throw bad(url, 'credentials are not valid percent-encoding');
  }
}

/** `zmq=` / `zmqrawtx=` of a bitcoind URL: endpoints, false (`zmq=0`), or undefined (not given). */
function zmqParams(url: string, u: URL): ZmqEndpoints | false | undefined {
  const seq = u.searchParams.get('zmq');
  const raw = u.searchParams.get('zmqrawtx');
  if (seq === null || /^(0|false|no|off)$/i.test(seq)) {
    if (raw !== null) throw bad(url, 'zmqrawtx= needs zmq=<endpoint> too');
    return seq === null ? undefined : false;
  }
  const sequence = parseZmqEndpoint(seq);
  if (sequence === undefined) throw bad(url, 'zmq= must be tcp://host:port or ipc://path (or 0 for no ZMQ)');
  if (raw === null) return { sequence };
  const rawTx = parseZmqEndpoint(raw);
  if (rawTx === undefined) throw bad(url, 'zmqrawtx= must be tcp://host:port or ipc://path');
  return { sequence, rawTx };
}

/** Parses a backend URL (see the module table). BAD_INPUT for anything malformed. */
export function parseBackendUrl(url: string): BackendSpec {
  if (typeof url !== 'string' || url.length === 0) throw DeaddropError.badInput('backend URL must be a non-empty string');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad(url, 'not a URL');
  }
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  switch (scheme) {
    case 'bitcoind':
    case 'btcd': {
      const { host, port } = hostPort(url, u);
      const rpcUrl = `${flag(u, 'tls', false) ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}/`;
      const cred = credentials(url, u);
      if (scheme === 'btcd') {
        if (!cred || !cred.user) throw bad(url, 'btcd needs user:pass@ (btcd has no cookie auth)');
        return { kind: 'btcd', rpcUrl, auth: cred };
      }
      const cookie = u.searchParams.get('cookie');
      if (cookie && cred) throw bad(url, 'give either user:pass@ or ?cookie=, not both');
      if (!cookie && !cred?.user) throw bad(url, 'bitcoind needs user:pass@ or ?cookie=/path/.cookie');
      const zmq = zmqParams(url, u);
      return {
        kind: 'bitcoind',
        rpcUrl,
        auth: cookie ? { cookieFile: cookie } : (cred as { user: string; pass: string }),
        rest: flag(u, 'rest', true),
        ...(zmq === undefined ? {} : { zmq }),
      };
    }
    case 'electrum+tcp':
    case 'electrum+ssl': {
      const { host, port } = hostPort(url, u);
      return { kind: 'electrum', host, port, tls: scheme === 'electrum+ssl' };
    }
    case 'esplora+http':
    case 'esplora+https': {
      if (!u.hostname) throw bad(url, 'missing host');
      if (u.username || u.password) throw bad(url, 'esplora URLs take no credentials');
      const base = `${scheme.slice('esplora+'.length)}://${u.host}${u.pathname === '/' ? '' : u.pathname}${u.search}`;
      return { kind: 'esplora', baseUrl: base };
    }
    default:
      throw bad(url, `unknown scheme ${JSON.stringify(scheme)} (use bitcoind, btcd, electrum+tcp, electrum+ssl, esplora+http or esplora+https)`);
  }
}

/**
 * Opens the backend a URL names. The source is not connected yet: call `ready()`, which
 * checks the network and reports BACKEND_UNREACHABLE or WRONG_NETWORK.
 * @example
 * const chain = await openBackend('btcd://u:p@127.0.0.1:18334', { expectedNetwork: 'regtest' });
 * await chain.ready();
 */
export async function openBackend(url: string, opts: OpenOptions): Promise<ChainSource> {
  const spec = parseBackendUrl(url);
  switch (spec.kind) {
    case 'bitcoind':
      return new BitcoindSource({ url: spec.rpcUrl, auth: spec.auth, rest: spec.rest, zmq: spec.zmq, fetch: opts.fetch }, opts);
    case 'btcd':
      return new BtcdSource({ url: spec.rpcUrl, auth: spec.auth, fetch: opts.fetch }, opts);
    case 'esplora':
      return new EsploraSource({ baseUrl: spec.baseUrl, fetch: opts.fetch }, opts);
    case 'electrum': {
      // Loaded on demand: the Electrum client is only needed when an Electrum URL is used.
      const { ElectrumSource } = await import('./backends/electrum.js');
      return new ElectrumSource(spec.host, spec.port, spec.tls, opts);
    }
  }
}
