/**
 * CLI output: with `--json`, exactly one JSON document on stdout; otherwise short human text.
 * Errors are one line on stderr (the stack only with `--debug`), exit code non-zero.
 */
import { DeaddropError } from '../util/errors.js';
import { toHex } from '../util/bytes.js';

export interface OutputOptions {
  readonly json: boolean;
  readonly debug: boolean;
}

export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return toHex(value);
  return value;
}

/** Prints `data` as JSON (`--json`) or via `human` (a string or lines). */
export function print(opts: OutputOptions, data: unknown, human?: string | string[] | ((d: unknown) => string)): void {
  if (opts.json || human === undefined) {
    process.stdout.write(JSON.stringify(data, jsonReplacer, opts.json ? 2 : 2) + '\n');
    return;
  }
  const text = typeof human === 'function' ? human(data) : Array.isArray(human) ? human.join('\n') : human;
  process.stdout.write(text + '\n');
}

/** One line describing `err` for stderr. Unknown errors show their message, never data. */
export function errorLine(err: unknown): string {
  if (err instanceof DeaddropError) return `error: ${err.message}`;
  if (err instanceof TypeError || err instanceof RangeError) return `error: ${err.message}`;
  if (err instanceof Error) return `error: ${err.message.split('\n')[0]}`;
  return `error: ${String(err)}`;
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof DeaddropError) {
    switch (err.code) {
      case 'BAD_INPUT':
      case 'BAD_ADDRESS':
        return 2;
      case 'BACKEND_UNREACHABLE':
      case 'WRONG_NETWORK':
        return 3;
      default:
        return 1;
    }
  }
  return err instanceof TypeError || err instanceof RangeError ? 2 : 1;
}
