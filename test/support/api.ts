/**
 * Calls a running daemon's API as its owner: bearer token, JSON body; a non-2xx answer fails the
 * test with the daemon's name, the route and the body it answered.
 */

/** What a test knows of a daemon it started. */
export interface ApiTarget {
  readonly name: string;
  readonly token: string;
  readonly daemon: { readonly apiUrl: string };
}

export async function callApi<T = Record<string, unknown>>(p: ApiTarget, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${p.daemon.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${p.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${p.name} ${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
