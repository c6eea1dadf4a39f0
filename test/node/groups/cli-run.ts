/**
 * Runs `deaddrop group …` in this process against a datadir whose api.url and api.token point at
 * a test's routes, and returns what it printed (src/cli/main.ts runs on import, so the program is
 * put together here the same way).
 */
import { Command } from 'commander';
import { vi } from 'vitest';
import { registerGroupCommands } from '../../../src/cli/commands/group.js';
import { resolveContext, type GlobalFlags } from '../../../src/cli/context.js';

export async function cli(datadir: string, ...args: string[]): Promise<string> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    const program = new Command('deaddrop').option('--datadir <path>').option('--json').exitOverride();
    registerGroupCommands(program, () => resolveContext(program.opts<GlobalFlags>()));
    await program.parseAsync(['node', 'deaddrop', '--datadir', datadir, ...args]);
  } finally {
    spy.mockRestore();
  }
  return out.trim();
}
