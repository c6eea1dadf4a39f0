import type { FastifyError, FastifyInstance } from 'fastify';
import { DeaddropError, type ErrorCode } from '../util/errors.js';

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  BAD_INPUT: 400,
  BAD_ADDRESS: 400,
  FEE_TOO_HIGH: 400,
  INSUFFICIENT_FUNDS: 409,
  ALREADY_INITIALIZED: 409,
  CONFLICT: 409,
  NOT_FOUND: 404,
  NOT_INITIALIZED: 409,
  WRONG_PASSPHRASE: 403,
  UNSUPPORTED: 501,
  REJECTED: 422,
  BACKEND_UNREACHABLE: 503,
  // Only user input (an invite or address for another network) reaches the API with this code:
  // the backend's network is checked at start-up. Same status as BAD_ADDRESS on /wallet/send.
  WRONG_NETWORK: 400,
  TIMEOUT: 504,
  PROTOCOL: 502,
};

/** Where unexpected (500) errors are reported. */
export interface ErrorLogOptions {
  /** One line per 500; never given secrets (no message, body or header of the request). */
  readonly log?: (line: string) => void;
  /** Add the stack trace (the daemon's `--debug`). */
  readonly debug?: boolean;
}

/**
 * Maps errors to `{error, message}` bodies. Unexpected errors never leak their message or stack
 * to the client; each one is logged (route pattern and error name, the stack under `debug`).
 */
export function installErrorHandler(app: FastifyInstance, opts: ErrorLogOptions = {}): void {
  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    if (err instanceof DeaddropError) {
      const status = STATUS_BY_CODE[err.code] ?? 500;
      if (status >= 500) logInternal(opts, request.method, request.routeOptions.url, err);
      return reply.code(status).send({ error: err.code, message: err.message });
    }
    if ('validation' in err && err.validation) {
      return reply.code(400).send({ error: 'BAD_INPUT', message: err.message });
    }
    if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: 'BAD_REQUEST', message: err.message });
    }
    request.log.error({ err: { name: err.name } }, 'unexpected error');
    logInternal(opts, request.method, request.routeOptions.url, err);
    return reply.code(500).send({ error: 'INTERNAL', message: 'internal error' });
  });
}

/**
 * The route pattern (`/paypub/sales/:id`), never the raw URL: ids and query strings stay out of
 * the log. The stack carries the error's message, which our errors keep free of secrets.
 */
function logInternal(opts: ErrorLogOptions, method: string, route: string | undefined, err: Error): void {
  if (!opts.log) return;
  const code = err instanceof DeaddropError ? ` ${err.code}` : '';
  const head = `api: ${method} ${route ?? '(no route)'} failed with an unexpected ${err.name}${code} (answered 500)`;
  opts.log(opts.debug && err.stack ? `${head}\n${err.stack}` : head);
}
