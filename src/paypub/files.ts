/**
 * Where PayPub reads content from and writes unlocked files to, when asked over the API.
 *
 * The API token lets a program act as the user; it must not turn into a key to the user's whole
 * filesystem (read `/etc/passwd` into a public sale, write a file anywhere). So requests that
 * come through the API name files only inside two directories of the datadir:
 *
 * - `<datadir>/paypub/outbox/`: files the user put there to publish (or the API takes the
 *   bytes themselves, see the upload route);
 * - `<datadir>/paypub/unlocked/`: where unlocked files are written.
 *
 * Paths are checked after resolving symbolic links, so a link inside the directory cannot lead
 * out of it. Writing never creates a parent directory and never replaces a file unless `force`
 * is given; the CLI, which runs as the user, writes where the user says under the same rules.
 */
import { existsSync, linkSync, lstatSync, mkdirSync, openSync, closeSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DeaddropError } from '../util/errors.js';

/** Largest file the API publishes (upload body or outbox file), bytes. */
export const MAX_PUBLISH_BYTES = 64 * 1024 * 1024;

/** The API's content directory: files under it may be published by path. */
export function outboxDir(datadir: string): string {
  return join(datadir, 'paypub', 'outbox');
}

/** The API's output directory: unlocked files are written only under it. */
export function unlockedDir(datadir: string): string {
  return join(datadir, 'paypub', 'unlocked');
}

/** Creates the two directories (0700) if missing; the daemon does this at start. */
export function ensurePaypubDirs(datadir: string): void {
  for (const d of [outboxDir(datadir), unlockedDir(datadir)]) mkdirSync(d, { recursive: true, mode: 0o700 });
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/**
 * Reads a file named relative to (or absolutely inside) `dir`, refusing anything that resolves
 * outside it, that is not a regular file, or that is larger than MAX_PUBLISH_BYTES.
 */
export function readFileUnder(dir: string, name: string): { data: Uint8Array; fileName: string } {
  const outside = DeaddropError.badInput(`the API publishes only files under ${dir} (or upload the bytes to /paypub/publish/upload)`);
  let root: string;
  let real: string;
  try {
    root = realpathSync(dir);
    real = realpathSync(resolve(dir, name));
  } catch {
    throw DeaddropError.badInput(`no such file under ${dir}`);
  }
  if (!inside(root, real)) throw outside;
  const st = statSync(real);
  if (!st.isFile()) throw DeaddropError.badInput('not a regular file');
  if (st.size > MAX_PUBLISH_BYTES) throw DeaddropError.badInput(`the file is larger than ${MAX_PUBLISH_BYTES} bytes`);
  return { data: new Uint8Array(readFileSync(real)), fileName: basename(real) };
}

/**
 * The absolute path for an output named by an API client: a relative name under `dir`
 * (`report.pdf`, `2026/report.pdf` when `2026/` exists), or an absolute path inside it.
 * Its directory must already exist, inside `dir` after resolving links.
 */
export function outputPathUnder(dir: string, name: string): string {
  const target = resolve(dir, name);
  const root = realpathSync(mkdirIfMissing(dir));
  let parent: string;
  try {
    parent = realpathSync(dirname(target));
  } catch {
    throw DeaddropError.badInput(`the directory of ${name} does not exist under ${dir} (directories are not created)`);
  }
  if (parent !== root && !inside(root, parent)) throw DeaddropError.badInput(`the API writes unlocked files only under ${dir}`);
  const path = join(parent, basename(target));
  if (!inside(root, path) || basename(target) === '' || basename(target) === '.' || basename(target) === '..') {
    throw DeaddropError.badInput(`the API writes unlocked files only under ${dir}`);
  }
  return path;
}

function mkdirIfMissing(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Writes `bytes` to `path` (mode 0600) all at once: a temporary file in the same directory, then
 * a hard link (fails if `path` exists) or, with `force`, a rename over it. The directory must
 * exist. CONFLICT when the file exists and `force` is not given; BAD_INPUT for a missing
 * directory or a path that is a directory.
 */
export function writeNewFile(path: string, bytes: Uint8Array, o: { force?: boolean } = {}): void {
  const dir = dirname(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw DeaddropError.badInput(`the directory ${dir} does not exist (it is not created)`);
  let existing: ReturnType<typeof lstatSync> | undefined;
  try {
    existing = lstatSync(path);
  } catch {
    existing = undefined;
  }
  if (existing?.isDirectory()) throw DeaddropError.badInput(`${path} is a directory`);
  if (existing && !o.force) throw new DeaddropError('CONFLICT', `${path} exists: pass --force (API: "force": true) to replace it`);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
  } finally {
    closeSync(fd);
  }
  try {
    if (o.force) {
      renameSync(tmp, path);
      return;
    }
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new DeaddropError('CONFLICT', `${path} exists: pass --force (API: "force": true) to replace it`);
      throw err;
    }
  } finally {
    if (existsSync(tmp)) unlinkSync(tmp);
  }
}
