/**
 * Which routes are public: served without the token, described with `security: []` in the
 * OpenAPI document, and the only ones the `--public-listen` listener serves. One definition,
 * so the token check, the document and the second listener cannot disagree.
 */

/**
 * Route prefixes that need no token: the public candidate index (`/index/...`) serves only
 * on-chain data, to light clients that hold no token.
 */
export const PUBLIC_ROUTE_PREFIXES: readonly string[] = ['/index/'];

/**
 * True for the route pattern `url` (never a raw request URL) when it is public: declared with
 * `config: { public: true }` (content meant for strangers, such as PayPub's encrypted chunks and
 * manifest) or under a public prefix. Matching the pattern fastify routed to means no encoding or
 * dot-segment trick can make another route public.
 */
export function isPublicRoute(url: string | undefined, config: unknown): boolean {
  if ((config as { public?: unknown } | undefined)?.public === true) return true;
  return url !== undefined && PUBLIC_ROUTE_PREFIXES.some((p) => url.startsWith(p));
}
