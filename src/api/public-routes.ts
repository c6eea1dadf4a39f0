/**
 * Which routes are public: served without the token, described with `security: []` in the
 * OpenAPI document, and the only ones the `--public-listen` listener serves. One definition,
 * so the token check, the document and the second listener cannot disagree.
 *
 * A route is public when it is declared with `config: PUBLIC_ROUTE` (`{ public: true }`, see
 * src/feature/routes.ts): PayPub's content routes and the candidate index. There is no other
 * way (no path prefix), so a route is public only where it says so.
 */

/**
 * True for a route declared with `config: { public: true }`. Reading the config of the route
 * fastify matched (never the raw request URL) means no encoding or dot-segment trick can make
 * another route public.
 */
export function isPublicRoute(config: unknown): boolean {
  return (config as { public?: unknown } | undefined)?.public === true;
}

/**
 * Route config marking a route that needs neither token nor cookie but is still served on
 * loopback only (the dashboard's page and sign-in routes; read by the auth plugin).
 */
export const SIGN_IN_ROUTE = { signIn: true } as const;

/** True for routes declared with {@link SIGN_IN_ROUTE}. */
export function isSignInRoute(config: unknown): boolean {
  return (config as { signIn?: unknown } | undefined)?.signIn === true;
}
