/**
 * The API's JSON body parser. Fastify's default parser is kept for the parsing itself (it refuses
 * `__proto__` and `constructor.prototype` poisoning); before it runs, the raw bytes are checked:
 *
 * - they must be well-formed UTF-8 (a decoder that substitutes U+FFFD would have the daemon
 *   store, sign or send text the client never wrote), and no string may hold a lone UTF-16
 *   surrogate written as a `\uD800` escape (it becomes U+FFFD the moment it is encoded);
 * - arrays and objects may nest at most MAX_JSON_DEPTH deep: no route takes more than a few
 *   levels, and deep nesting otherwise ends in "Maximum call stack size exceeded" somewhere
 *   between the parser, the schema validator and the handler.
 *
 * Each refusal is a BAD_INPUT (400) with a message saying which rule the body broke.
 */
import type { FastifyInstance } from 'fastify';
import { DeaddropError } from '../util/errors.js';

/** Deepest array/object nesting a JSON body may have. */
export const MAX_JSON_DEPTH = 32;

const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The deepest array/object nesting in a JSON text, counted over its bytes (strings skipped).
 * Stops counting once `limit` is passed. Malformed JSON is left for the parser to refuse.
 */
export function jsonDepth(bytes: Uint8Array, limit = Number.MAX_SAFE_INTEGER): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) {
      inString = true;
    } else if (b === OPEN_BRACKET || b === OPEN_BRACE) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (b === CLOSE_BRACKET || b === CLOSE_BRACE) {
      depth--;
    }
  }
  return max;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when some string (key or value) in a parsed JSON value holds a lone surrogate. */
function hasLoneSurrogate(v: unknown): boolean {
  if (typeof v === 'string') return LONE_SURROGATE.test(v);
  if (Array.isArray(v)) return v.some(hasLoneSurrogate);
  if (v !== null && typeof v === 'object') return Object.entries(v).some(([k, x]) => LONE_SURROGATE.test(k) || hasLoneSurrogate(x));
  return false;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Replaces the app's `application/json` parser with the checked one described above. */
export function installJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      done(DeaddropError.badInput('the body is not valid UTF-8'), undefined);
      return;
    }
    if (jsonDepth(bytes, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
      done(DeaddropError.badInput(`the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    parseJson(request, text, (err, value) => {
      if (err) return done(err, undefined);
      if (hasLoneSurrogate(value)) return done(DeaddropError.badInput('a string in the body holds an unpaired UTF-16 surrogate (not valid Unicode text)'), undefined);
      done(null, value);
    });
  });
}
