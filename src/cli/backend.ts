/** Opening the chain backend for a CLI command: resolve the URL, connect, check the network. */
import type { ChainSource } from '../chain/types.js';
import { openBackend } from '../chain/open.js';
import type { CliContext } from './context.js';
import { resolveBackendUrl } from './context.js';

/** Opens and readies the backend; WRONG_NETWORK / BACKEND_UNREACHABLE errors pass through as one line. */
export async function connectBackend(ctx: CliContext): Promise<ChainSource> {
  const url = await resolveBackendUrl(ctx);
  const source = await openBackend(url, { expectedNetwork: ctx.network });
  try {
    await source.ready();
  } catch (err) {
    await source.close();
    throw err;
  }
  return source;
}

/** Runs `fn` with a connected backend and always closes it. */
export async function withBackend<T>(ctx: CliContext, fn: (source: ChainSource) => Promise<T>): Promise<T> {
  const source = await connectBackend(ctx);
  try {
    return await fn(source);
  } finally {
    await source.close();
  }
}

/** The backend's tip height, or 0 when no backend is configured or reachable (used for wallet birthdays). */
export async function tryTipHeight(ctx: CliContext): Promise<number> {
  try {
    return await withBackend(ctx, async (s) => (await s.getTip()).height);
  } catch {
    return 0;
  }
}
