/**
 * PayPub routes, registered under `/paypub`.
 *
 * Behind the API token (the local user): `GET /sales`, `GET /sales/:id`, `POST /publish` (a file
 * under `<datadir>/paypub/outbox`), `POST /publish/upload` (the bytes themselves),
 * `GET /sales/:id/offer`, `POST /sales/:id/sample`, `POST /verify`, `POST /pledge`, `POST /buy`,
 * `POST /sales/:id/claim`, `POST /sales/:id/unlock`, `GET /sales/:id/unlocked`, `POST /sales/:id/refund`, `POST /fraud/check`.
 *
 * Public (`config.public`, no token: buyers are strangers), under `/content/:id`: the manifest,
 * the ciphertexts, the sample reveal, the anchor location, the pledge book, pledge announcements
 * and private-mode terms. They serve only what a seller publishes anyway; bad input from
 * strangers is a 4xx, never a crash. Amounts travel as decimal strings of satoshis.
 *
 * The token is not a filesystem key (files.ts): `out` names a file under
 * `<datadir>/paypub/unlocked`, and `path` a file under `<datadir>/paypub/outbox`.
 */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { DeaddropError } from '../util/errors.js';
import { MAX_PUBLISH_BYTES, outputPathUnder, readFileUnder } from './files.js';
import { PRESIG_ANNOUNCEMENT_BYTES } from './adaptor-pledges.js';
import { sourceKey } from './private-offers.js';
import { MAX_OFFER_LENGTH } from './link.js';
import type { PublishOptions } from './seller.js';
import type { PaypubService } from './service.js';
import { fromHex, toHex } from '../util/bytes.js';
import { PUBLIC_ROUTE } from '../feature/routes.js';

export interface PaypubRouteOptions {
  /** The service, or undefined while the daemon has no unlocked wallet. */
  readonly service: () => PaypubService | undefined;
  /** Called with the API's base URL once it listens (offer strings name it). */
  readonly onListen?: (url: string) => void;
}

const sats = { type: 'string', pattern: '^[0-9]{1,16}$' } as const;
const feeRate = { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 } as const;
const hexBytes = (max: number) => ({ type: 'string', pattern: '^([0-9a-f]{2})+$', maxLength: max }) as const;
const error = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;
const anyObject = { type: 'object', additionalProperties: true } as const;
const idParams = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', pattern: '^[0-9a-f]{8,64}$' } } } as const;
const contentParams = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', pattern: '^[0-9a-f]{64}$' } } } as const;
const offerText = { type: 'string', minLength: 8, maxLength: MAX_OFFER_LENGTH } as const;
const path = { type: 'string', minLength: 1, maxLength: 4096 } as const;
const outName = { type: 'string', minLength: 1, maxLength: 1024, description: 'a file name under <datadir>/paypub/unlocked (its directory must exist)' } as const;
const digits = (max: number) => ({ type: 'string', pattern: `^[0-9]{1,${max}}$` }) as const;
const replies = { 200: anyObject, 400: error, 404: error, 409: error, 422: error, 502: error, 503: error } as const;
const binary = { 200: { type: 'string', format: 'binary' }, 404: error } as const;

/** JSON-safe copy: bigints become decimal strings, bytes become hex. */
export function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return toHex(v);
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]));
  return v;
}

/** The publish options both publish routes take (amounts as decimal strings). */
interface PublishFields {
  price: string; threshold?: string; minPledge?: string; mode?: 'public' | 'private'; chunks?: number; sample?: number;
  beaconIn?: number; deadlineIn?: number; feeRate?: number; autoClaim?: boolean;
  /** `adaptor`: version 2 (docs/protocol/paypub.md §12); default `hashlock` (version 1). */
  claim?: 'hashlock' | 'adaptor';
}

const optional = <K extends string>(key: K, v: number | undefined): { [P in K]?: number } => (v === undefined ? {} : { [key]: v }) as { [P in K]?: number };

function publishOptions(b: PublishFields): Omit<PublishOptions, 'data'> {
  return {
    price: BigInt(b.price), ...(b.threshold ? { threshold: BigInt(b.threshold) } : {}), ...(b.minPledge ? { minPledge: BigInt(b.minPledge) } : {}),
    ...(b.mode ? { mode: b.mode } : {}), ...(b.chunks ? { chunks: b.chunks } : {}), ...(b.sample !== undefined ? { sampleSize: b.sample } : {}),
    ...(b.beaconIn ? { beaconIn: b.beaconIn } : {}), ...(b.deadlineIn ? { deadlineIn: b.deadlineIn } : {}), ...(b.feeRate ? { feeRate: b.feeRate } : {}),
    ...(b.autoClaim !== undefined ? { autoClaim: b.autoClaim } : {}),
  };
}


export async function paypubRoutes(app: FastifyInstance, opts: PaypubRouteOptions): Promise<void> {
  const need = (): PaypubService => {
    const s = opts.service();
    if (!s) throw new DeaddropError('NOT_INITIALIZED', 'PayPub needs an unlocked wallet: start the daemon with DEADDROP_PASSPHRASE set');
    return s;
  };
  if (opts.onListen) {
    app.addHook('onListen', async function onListen() {
      const addr = app.server.address();
      if (addr && typeof addr === 'object') opts.onListen?.(`http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`);
    });
  }
  registerOwnerRoutes(app, need);
  registerContentRoutes(app, need);
}

function registerOwnerRoutes(app: FastifyInstance, need: () => PaypubService): void {
  app.get('/sales', { schema: { summary: 'PayPub sales in this datadir', response: { 200: anyObject, 409: error } } }, async () => ({ sales: need().list() }));

  app.get('/sales/:id', { schema: { summary: 'State of one sale', params: idParams, response: replies } }, async (req) => {
    return jsonSafe(await need().status((req.params as { id: string }).id));
  });

  const publishProps = {
    price: sats, threshold: sats, minPledge: sats, mode: { type: 'string', enum: ['public', 'private'] },
    chunks: { type: 'integer', minimum: 1, maximum: 256 }, sample: { type: 'integer', minimum: 0, maximum: 255 },
    beaconIn: { type: 'integer', minimum: 1, maximum: 100_000 }, deadlineIn: { type: 'integer', minimum: 1, maximum: 1_000_000 }, feeRate, autoClaim: { type: 'boolean' },
    claim: { type: 'string', enum: ['hashlock', 'adaptor'], description: 'adaptor: version 2, one-scalar claims (public mode only); default hashlock' },
  } as const;

  app.post('/publish', {
    schema: {
      summary: 'Encrypt a file under <datadir>/paypub/outbox, sign its manifest and anchor the manifest hash',
      body: {
        type: 'object', required: ['path', 'price'], additionalProperties: false,
        properties: { path: { ...path, description: 'relative to <datadir>/paypub/outbox (or an absolute path inside it)' }, ...publishProps },
      },
      response: replies,
    },
  }, async (req) => {
    const b = req.body as PublishFields & { path: string };
    const s = need();
    const file = readFileUnder(s.outboxDir, b.path);
    const o = { data: file.data, fileName: file.fileName, ...publishOptions(b) };
    return jsonSafe(await (b.claim === 'adaptor' ? s.publishAdaptor(o) : s.publish(o)));
  });

  // The bytes themselves, streamed in the body: what a client that is not the user's shell sends.
  app.register(async (upload) => {
    upload.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: MAX_PUBLISH_BYTES }, (_req, body, done) => done(null, body));
    upload.post('/publish/upload', {
      bodyLimit: MAX_PUBLISH_BYTES,
      schema: {
        summary: 'Encrypt the uploaded bytes (application/octet-stream, at most 64 MiB), sign the manifest and anchor its hash; options in the query string',
        querystring: {
          type: 'object', required: ['price'], additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^/\\\\]+$' }, price: sats, threshold: sats, minPledge: sats,
            mode: { type: 'string', enum: ['public', 'private'] }, chunks: digits(3), sample: digits(3), beaconIn: digits(6), deadlineIn: digits(7),
            feeRate: { type: 'string', pattern: '^[0-9]{1,7}(\\.[0-9]{1,3})?$' }, autoClaim: { type: 'string', enum: ['0', '1', 'true', 'false'] },
            claim: publishProps.claim,
          },
        },
        response: replies,
      },
    }, async (req) => {
      const body = req.body;
      if (!(body instanceof Uint8Array) || body.length === 0) throw DeaddropError.badInput('send the file as a non-empty application/octet-stream body');
      const q = req.query as Record<string, string | undefined>;
      const int = (v: string | undefined, what: string, min: number, max: number): number | undefined => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!(n >= min && n <= max)) throw DeaddropError.badInput(`${what} must be between ${min} and ${max}`);
        return n;
      };
      const fields: PublishFields = {
        price: q.price as string, ...(q.threshold ? { threshold: q.threshold } : {}), ...(q.minPledge ? { minPledge: q.minPledge } : {}),
        ...(q.mode ? { mode: q.mode as 'public' | 'private' } : {}),
        ...optional('chunks', int(q.chunks, 'chunks', 1, 256)), ...optional('sample', int(q.sample, 'sample', 0, 255)),
        ...optional('beaconIn', int(q.beaconIn, 'beaconIn', 1, 100_000)), ...optional('deadlineIn', int(q.deadlineIn, 'deadlineIn', 1, 1_000_000)),
        ...(q.feeRate ? { feeRate: Number(q.feeRate) } : {}), ...(q.autoClaim ? { autoClaim: q.autoClaim === '1' || q.autoClaim === 'true' } : {}),
      };
      const o = { data: new Uint8Array(body.buffer, body.byteOffset, body.length), ...(q.name ? { fileName: q.name } : {}), ...publishOptions(fields) };
      const s = need();
      return jsonSafe(await (q.claim === 'adaptor' ? s.publishAdaptor(o) : s.publish(o)));
    });
  });

  app.get('/sales/:id/offer', {
    schema: { summary: 'The offer string buyers use', params: idParams, querystring: { type: 'object', additionalProperties: false, properties: { url: { type: 'string', maxLength: 512 } } }, response: replies },
  }, async (req) => need().offer((req.params as { id: string }).id, (req.query as { url?: string }).url));

  app.get('/v2/sales/:id', { schema: { summary: 'State of one version 2 (adaptor-claim) sale', params: contentParams, response: replies } }, async (req) => {
    return jsonSafe(need().adaptorStatus((req.params as { id: string }).id));
  });

  app.get('/v2/mail', {
    schema: {
      summary: 'Version 2 announcements taken from this node\'s mixnet mailbox: accepted (checked and kept, or known) and dropped (malformed, forged, not placeable)',
      response: { 200: { type: 'object', required: ['accepted', 'dropped'], additionalProperties: false, properties: { accepted: { type: 'integer' }, dropped: { type: 'integer' } } }, 409: error, 503: error },
    },
  }, async () => ({ ...need().mailCounters }));

  app.get('/v2/sales/:id/offer', {
    schema: { summary: 'The offer string of a version 2 sale (paypub2:<id>[@<url>][~store:<capability and servers>][~mix:<mailbox>])', params: contentParams, querystring: { type: 'object', additionalProperties: false, properties: { url: { type: 'string', maxLength: 512 } } }, response: replies },
  }, async (req) => need().adaptorOffer((req.params as { id: string }).id, (req.query as { url?: string }).url));

  app.post('/v2/sales/:id/claim', {
    schema: { summary: 'Seller: claim the counted pledges of a version 2 sale, or bump its claim (RBF) to feeRate', params: contentParams, body: { type: 'object', additionalProperties: false, properties: { feeRate } }, response: replies },
  }, async (req) => {
    const b = (req.body ?? {}) as { feeRate?: number };
    return jsonSafe(await need().claimAdaptor((req.params as { id: string }).id, b.feeRate ? { feeRate: b.feeRate } : {}));
  });

  app.post('/v2/pledge', {
    schema: {
      summary: 'Buyer: verify a version 2 sale, pledge, and announce the pre-signature of the claim',
      body: { type: 'object', required: ['offer', 'sats'], additionalProperties: false, properties: { offer: { type: 'string', minLength: 8, maxLength: 16_384 }, sats, feeRate, out: outName } }, response: replies,
    },
  }, async (req) => {
    const b = req.body as { offer: string; sats: string; feeRate?: number; out?: string };
    const s = need();
    return jsonSafe(await s.pledgeAdaptor(b.offer, BigInt(b.sats), { ...(b.feeRate ? { feeRate: b.feeRate } : {}), ...(b.out ? { out: outputPathUnder(s.unlockedDir, b.out) } : {}) }));
  });

  app.post('/sales/:id/sample', { schema: { summary: 'Reveal the sampled keys (after the beacon is final)', params: idParams, response: replies } }, async (req) => {
    return jsonSafe(await need().sample((req.params as { id: string }).id));
  });

  app.post('/verify', {
    schema: { summary: 'Buyer: fetch and check an offer (anchor, beacon, sample, chunks)', body: { type: 'object', required: ['offer'], additionalProperties: false, properties: { offer: offerText, out: outName } }, response: replies },
  }, async (req) => {
    const b = req.body as { offer: string; out?: string };
    const s = need();
    return jsonSafe(await s.verify(b.offer, b.out ? { out: outputPathUnder(s.unlockedDir, b.out) } : {}));
  });

  app.post('/pledge', {
    schema: {
      summary: 'Buyer: pledge into an own output built from the manifest (public mode)',
      body: { type: 'object', required: ['offer', 'sats'], additionalProperties: false, properties: { offer: offerText, sats, feeRate, out: outName } }, response: replies,
    },
  }, async (req) => {
    const b = req.body as { offer: string; sats: string; feeRate?: number; out?: string };
    const s = need();
    return jsonSafe(await s.pledge(b.offer, BigInt(b.sats), { ...(b.feeRate ? { feeRate: b.feeRate } : {}), ...(b.out ? { out: outputPathUnder(s.unlockedDir, b.out) } : {}) }));
  });

  app.post('/buy', {
    schema: { summary: 'Buyer: fund an HTLC for private terms (private mode)', body: { type: 'object', required: ['offer'], additionalProperties: false, properties: { offer: offerText, feeRate, out: outName } }, response: replies },
  }, async (req) => {
    const b = req.body as { offer: string; feeRate?: number; out?: string };
    const s = need();
    return jsonSafe(await s.buy(b.offer, { ...(b.feeRate ? { feeRate: b.feeRate } : {}), ...(b.out ? { out: outputPathUnder(s.unlockedDir, b.out) } : {}) }));
  });

  const feeBody = { type: 'object', additionalProperties: false, properties: { feeRate } } as const;
  app.post('/sales/:id/claim', { schema: { summary: 'Seller: claim counted pledges (or bump the claim)', params: idParams, body: feeBody, response: replies } }, async (req) => {
    const b = (req.body ?? {}) as { feeRate?: number };
    return jsonSafe(await need().claim((req.params as { id: string }).id, b.feeRate ? { feeRate: b.feeRate } : {}));
  });

  app.post('/sales/:id/unlock', {
    schema: {
      summary: 'Decrypt with the published keys and write the file under <datadir>/paypub/unlocked (never over an existing one unless force)',
      params: idParams, body: { type: 'object', additionalProperties: false, properties: { out: outName, force: { type: 'boolean' } } }, response: replies,
    },
  }, async (req) => {
    const b = (req.body ?? {}) as { out?: string; force?: boolean };
    const s = need();
    const out = b.out === undefined ? undefined : outputPathUnder(s.unlockedDir, b.out);
    return jsonSafe(await s.unlock((req.params as { id: string }).id, out, { force: b.force === true }));
  });

  app.get('/sales/:id/unlocked', {
    schema: { summary: 'The file this daemon unlocked for a sale (what the dashboard downloads)', params: idParams, response: binary },
  }, async (req, reply) => {
    const st = await need().status((req.params as { id: string }).id);
    if (!st.unlocked) throw DeaddropError.notFound('this sale is not unlocked here yet');
    // The path is the daemon's own record of the file it wrote under <datadir>/paypub/unlocked.
    const data = await readFile(st.unlocked.path);
    return reply.type('application/octet-stream').header('content-disposition', 'attachment').send(data);
  });

  app.post('/sales/:id/refund', { schema: { summary: 'Buyer: refund own pledges after the deadline', params: idParams, body: feeBody, response: replies } }, async (req) => {
    const b = (req.body ?? {}) as { feeRate?: number };
    return jsonSafe(await need().refund((req.params as { id: string }).id, b.feeRate ? { feeRate: b.feeRate } : {}));
  });

  app.post('/fraud/check', {
    schema: { summary: 'Check a private-mode fraud proof', body: { type: 'object', required: ['proof'], additionalProperties: false, properties: { proof: hexBytes(400_000) } }, response: replies },
  }, async (req) => need().checkFraud(fromHex((req.body as { proof: string }).proof)));
}

function registerContentRoutes(app: FastifyInstance, need: () => PaypubService): void {
  const pub = PUBLIC_ROUTE;
  const id = (req: { params: unknown }): string => (req.params as { id: string }).id;
  const octets = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);

  app.get('/content/:id/manifest', { config: pub, schema: { summary: 'Public: the signed manifest', params: contentParams, response: binary } }, async (req, reply) => {
    return reply.type('application/octet-stream').send(octets(need().contentManifest(id(req))));
  });

  app.get('/content/:id/chunks/:index', {
    config: pub,
    schema: {
      summary: 'Public: one encrypted chunk',
      params: { type: 'object', required: ['id', 'index'], additionalProperties: false, properties: { id: contentParams.properties.id, index: { type: 'string', pattern: '^[0-9]{1,3}$' } } },
      response: binary,
    },
  }, async (req, reply) => {
    const index = Number((req.params as { index: string }).index);
    return reply.type('application/octet-stream').send(octets(need().contentChunk(id(req), index)));
  });

  app.get('/content/:id/reveal', { config: pub, schema: { summary: 'Public: the signed sample reveal', params: contentParams, response: binary } }, async (req, reply) => {
    return reply.type('application/octet-stream').send(octets(need().contentReveal(id(req))));
  });

  app.get('/content/:id/anchor', { config: pub, schema: { summary: 'Public: where the anchor is', params: contentParams, response: { 200: anyObject, 404: error } } }, async (req) => {
    return need().contentAnchor(id(req));
  });

  app.get('/content/:id/pledges', { config: pub, schema: { summary: 'Public: announced pledges and the sum counted', params: contentParams, response: { 200: anyObject, 404: error } } }, async (req) => {
    return need().contentPledges(id(req));
  });

  app.post('/content/:id/pledges', {
    config: pub,
    schema: {
      summary: 'Public: announce a pledge (or a funded HTLC)',
      params: contentParams,
      body: {
        type: 'object', required: ['tx', 'vout'], additionalProperties: false,
        properties: {
          tx: hexBytes(200_000), vout: { type: 'integer', minimum: 0, maximum: 10_000 }, buyerKey: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          r: { type: 'string', pattern: '^[0-9a-f]{64}$' }, blockHash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        },
      },
      response: replies,
    },
  }, async (req) => {
    const b = req.body as { tx: string; vout: number; buyerKey?: string; r?: string; blockHash?: string };
    const r = await need().contentAnnounce(id(req), {
      tx: fromHex(b.tx), vout: b.vout, ...(b.buyerKey ? { buyerKey: fromHex(b.buyerKey) } : {}), ...(b.r ? { r: fromHex(b.r) } : {}),
      ...(b.blockHash ? { blockHash: b.blockHash } : {}),
    });
    return jsonSafe(r);
  });

  app.get('/v2/content/:id', { config: pub, schema: { summary: 'Public: a version 2 sale (manifest, anchor, reveal, ciphertexts; hex)', params: contentParams, response: { 200: anyObject, 404: error } } }, async (req) => {
    return need().adaptorBundle(id(req));
  });

  app.post('/v2/presig', {
    config: pub,
    schema: {
      summary: 'Public: a buyer\'s pre-signature announcement (166 bytes, hex) for a version 2 pledge',
      body: { type: 'object', required: ['announcement'], additionalProperties: false, properties: {
          announcement: { type: 'string', pattern: `^[0-9a-f]{${PRESIG_ANNOUNCEMENT_BYTES * 2}}$` },
          blockHash: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'the block holding the pledge, once it is mined (the seller looks it up there)' },
        },
      },
      response: replies,
    },
  }, async (req) => {
    const b = req.body as { announcement: string; blockHash?: string };
    return jsonSafe(await need().adaptorAnnounce(fromHex(b.announcement), b.blockHash));
  });

  app.post('/content/:id/private', {
    config: pub,
    schema: {
      summary: 'Public: private-mode terms for a buyer key',
      params: contentParams,
      body: { type: 'object', required: ['buyerKey'], additionalProperties: false, properties: { buyerKey: { type: 'string', pattern: '^[0-9a-f]{64}$' } } },
      response: replies,
    },
  }, async (req) => {
    // The TCP peer, never a forwarded-for header a stranger could write.
    const r = await need().contentPrivateTerms(id(req), fromHex((req.body as { buyerKey: string }).buyerKey), sourceKey(req.socket.remoteAddress));
    return jsonSafe(r);
  });
}
