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
  WRONG_NETWORK: 503,
  TIMEOUT: 504,
  PROTOCOL: 502,
};

/** Maps errors to `{error, message}` bodies. Unexpected errors never leak their message or stack. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    if (err instanceof DeaddropError) {
      return reply.code(STATUS_BY_CODE[err.code] ?? 500).send({ error: err.code, message: err.message });
    }
    if ('validation' in err && err.validation) {
      return reply.code(400).send({ error: 'BAD_INPUT', message: err.message });
    }
    if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: 'BAD_REQUEST', message: err.message });
    }
    request.log.error({ err: { name: err.name } }, 'unexpected error');
    return reply.code(500).send({ error: 'INTERNAL', message: 'internal error' });
  });
}
