/**
 * The one error type deaddrop throws for expected failures. Each carries a stable `code`
 * so the CLI and API can map it to a one-line message or an HTTP status.
 * Messages never contain secrets (keys, seeds, passphrases, tokens).
 */
export type ErrorCode =
  | 'BAD_INPUT'
  | 'BAD_ADDRESS'
  | 'WRONG_NETWORK'
  | 'WRONG_PASSPHRASE'
  | 'ALREADY_INITIALIZED'
  | 'NOT_INITIALIZED'
  | 'INSUFFICIENT_FUNDS'
  | 'FEE_TOO_HIGH'
  | 'BACKEND_UNREACHABLE'
  | 'BACKEND_ERROR'
  | 'UNSUPPORTED'
  | 'NOT_FOUND'
  | 'REJECTED'
  | 'CLOSED'
  | 'TIMEOUT'
  | 'PROTOCOL'
  | 'CONFLICT';

export class DeaddropError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'DeaddropError';
    this.code = code;
    this.details = details;
  }

  static badInput(message: string, details?: Record<string, unknown>): DeaddropError {
    return new DeaddropError('BAD_INPUT', message, details);
  }
  static badAddress(message: string): DeaddropError {
    return new DeaddropError('BAD_ADDRESS', message);
  }
  static wrongNetwork(expected: string, got: string): DeaddropError {
    return new DeaddropError('WRONG_NETWORK', `backend is on ${got}, expected ${expected}`, { expected, got });
  }
  static wrongPassphrase(): DeaddropError {
    return new DeaddropError('WRONG_PASSPHRASE', 'wrong passphrase: the keystore could not be decrypted');
  }
  static insufficientFunds(needed: bigint, available: bigint): DeaddropError {
    return new DeaddropError('INSUFFICIENT_FUNDS', `insufficient funds: need ${needed} sat, have ${available} sat spendable`, {
      needed: needed.toString(),
      available: available.toString(),
    });
  }
  static feeTooHigh(rate: number, cap: number): DeaddropError {
    return new DeaddropError('FEE_TOO_HIGH', `fee rate ${rate} sat/vB is above the cap of ${cap} sat/vB`, { rate, cap });
  }
  static unreachable(what: string, cause?: string): DeaddropError {
    return new DeaddropError('BACKEND_UNREACHABLE', `cannot reach ${what}${cause ? `: ${cause}` : ''}`);
  }
  static unsupported(message: string): DeaddropError {
    return new DeaddropError('UNSUPPORTED', message);
  }
  static notFound(message: string): DeaddropError {
    return new DeaddropError('NOT_FOUND', message);
  }
  static closed(what: string): DeaddropError {
    return new DeaddropError('CLOSED', `${what} is closed`);
  }
  static protocol(message: string): DeaddropError {
    return new DeaddropError('PROTOCOL', message);
  }
}

export function isDeaddropError(err: unknown, code?: ErrorCode): err is DeaddropError {
  return err instanceof DeaddropError && (code === undefined || err.code === code);
}
