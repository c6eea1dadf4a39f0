/**
 * Reading the keystore passphrase: from DEADDROP_PASSPHRASE when set (scripts, services, tests),
 * else from a prompt on the terminal with echo off. Without either, a clear BAD_INPUT error
 * rather than a hang on a closed stdin.
 */
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { DeaddropError } from '../util/errors.js';

/** Environment variable holding the passphrase for non-interactive use. */
export const PASSPHRASE_ENV = 'DEADDROP_PASSPHRASE';
/**
 * Environment variable naming a file (keep it 0600) whose first line is the passphrase: for a
 * long-running daemon, whose initial environment stays readable in `/proc/<pid>/environ` for
 * its whole life, this keeps the passphrase itself out of the process metadata.
 */
export const PASSPHRASE_FILE_ENV = 'DEADDROP_PASSPHRASE_FILE';

export interface ReadPassphraseOptions {
  /** Ask twice and require both entries to match (keystore creation). */
  readonly confirm?: boolean;
  readonly prompt?: string;
  /** Defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Defaults to process.stdin; must be a TTY for prompting. */
  readonly input?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Defaults to process.stderr, so stdout stays clean for --json output. */
  readonly output?: NodeJS.WritableStream;
}

/**
 * The passphrase from DEADDROP_PASSPHRASE, or typed on the terminal (not echoed).
 * @example
 * const pass = await readPassphrase({ confirm: true });
 */
export async function readPassphrase(opts: ReadPassphraseOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const fromEnv = env[PASSPHRASE_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const file = env[PASSPHRASE_FILE_ENV];
  if (file !== undefined && file !== '') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw DeaddropError.badInput(`cannot read ${PASSPHRASE_FILE_ENV} (${file}): ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line === '') throw DeaddropError.badInput(`${PASSPHRASE_FILE_ENV} (${file}) holds an empty passphrase`);
    return line;
  }
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stderr;
  if (!input.isTTY) {
    throw DeaddropError.badInput(`no passphrase: set ${PASSPHRASE_ENV} (or ${PASSPHRASE_FILE_ENV}) or run deaddrop on a terminal to be prompted`);
  }
  const first = await promptHidden(opts.prompt ?? 'Passphrase: ', input, output);
  if (first === '') throw DeaddropError.badInput('passphrase must not be empty');
  if (opts.confirm) {
    const second = await promptHidden('Repeat passphrase: ', input, output);
    if (first !== second) throw DeaddropError.badInput('the two passphrases do not match');
  }
  return first;
}

/** One line from a terminal with echo off. Ctrl-C or end of input cancels. */
function promptHidden(prompt: string, input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input, output, terminal: true });
    // readline echoes typed characters through _writeToOutput; muting it hides them.
    const internals = rl as unknown as { _writeToOutput: (s: string) => void };
    let done = false;
    output.write(prompt);
    internals._writeToOutput = () => undefined;
    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      output.write('\n');
      rl.close();
      fn();
    };
    rl.once('line', (line) => finish(() => resolve(line)));
    rl.once('SIGINT', () => finish(() => reject(DeaddropError.badInput('passphrase entry cancelled'))));
    rl.once('close', () => finish(() => reject(DeaddropError.badInput('passphrase entry cancelled'))));
  });
}
