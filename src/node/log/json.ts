/**
 * JSON views of log entries for the CLI and the API. Bytes become lower-case hex; a body that is
 * valid UTF-8 is also given as text (and parsed, when it is JSON).
 */
import { ATTACH_KEY, type Attachment, parseAttachHeader } from './attachments.js';
import type { EntryHeader, HeaderValue, LogEntry } from './codec.js';
import { toHex } from '../../util/bytes.js';

/** JSON-safe header value: strings and numbers as is, bytes as `{ hex }`, hash lists as hex arrays. */
export type JsonHeaderValue = string | number | { hex: string } | string[];

/** A JSON-safe view of an entry. */
export interface EntryJson {
  author: string;
  seq: number;
  prev: string;
  timestamp: number;
  hash: string;
  header: Record<string, JsonHeaderValue>;
  /** Body as UTF-8 text, when it is valid UTF-8. */
  text?: string;
  /** Body parsed as JSON, when the text is JSON. */
  json?: unknown;
  /** Body as hex, always. */
  body: string;
  /** Files attached by capability (header `attach`, ./attachments.ts), when there are any. */
  attachments?: Attachment[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function headerValue(v: HeaderValue): JsonHeaderValue {
  if (typeof v === 'string' || typeof v === 'number') return v;
  if (v instanceof Uint8Array) return { hex: toHex(v) };
  return v.map(toHex);
}

/** JSON view of a header. */
export function headerToJson(h: EntryHeader): Record<string, JsonHeaderValue> {
  const out: Record<string, JsonHeaderValue> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) Object.defineProperty(out, k, { value: headerValue(v), enumerable: true });
  return out;
}

/** JSON view of an entry. */
export function entryToJson(e: LogEntry): EntryJson {
  const out: EntryJson = {
    author: toHex(e.author),
    seq: e.seq,
    prev: toHex(e.prev),
    timestamp: e.timestamp,
    hash: toHex(e.hash),
    header: headerToJson(e.header),
    body: toHex(e.body),
  };
  const attachments = parseAttachHeader(e.header[ATTACH_KEY]);
  if (attachments.length > 0) out.attachments = attachments;
  try {
    out.text = utf8.decode(e.body);
    out.json = JSON.parse(out.text) as unknown;
  } catch {
    // not text, or not JSON
  }
  return out;
}
