/**
 * The one way the tests assert an error code.
 */
import { DeaddropError, type ErrorCode } from '../../src/util/errors.js';

/** Fails unless `err` is a DeaddropError with `code` (and a message matching `message`, if given). */
function check(err: unknown, threw: boolean, code: ErrorCode, message: RegExp | string | undefined): DeaddropError {
  if (!threw) throw new Error(`expected ${code}, but nothing was thrown`);
  if (!(err instanceof DeaddropError)) throw new Error(`expected ${code}, got a non-DeaddropError: ${String(err)}`);
  if (err.code !== code) throw new Error(`expected ${code}, got ${err.code}: ${err.message}`);
  if (message !== undefined && !(typeof message === 'string' ? err.message.includes(message) : message.test(err.message))) {
    throw new Error(`expected ${code} with a message matching ${String(message)}, got: ${err.message}`);
  }
  return err;
}

async function settle(p: Promise<unknown>, code: ErrorCode, message: RegExp | string | undefined): Promise<DeaddropError> {
  try {
    await p;
  } catch (err) {
    return check(err, true, code, message);
  }
  return check(undefined, false, code, message);
}

/**
 * Asserts that `target` fails with the DeaddropError `code` and returns that error (for further
 * checks on its message or details). `target` is a promise, a function returning a promise
 * (both give a promise to await), or a synchronous function (checked at once). Fails when
 * nothing is thrown, when something other than a DeaddropError is thrown, when the code
 * differs, or when `message` (a substring or a pattern) does not match.
 */
export function expectCode(target: Promise<unknown> | (() => Promise<unknown>), code: ErrorCode, message?: RegExp | string): Promise<DeaddropError>;
export function expectCode(target: () => unknown, code: ErrorCode, message?: RegExp | string): DeaddropError;
export function expectCode(
  target: Promise<unknown> | (() => unknown),
  code: ErrorCode,
  message?: RegExp | string,
): DeaddropError | Promise<DeaddropError> {
  if (typeof target !== 'function') return settle(target, code, message);
  let result: unknown;
  try {
    result = target();
  } catch (err) {
    return check(err, true, code, message);
  }
  if (result instanceof Promise) return settle(result, code, message);
  return check(undefined, false, code, message);
}
