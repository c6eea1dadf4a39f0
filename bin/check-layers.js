#!/usr/bin/env node
/**
 * The layer check behind `npm run layers`: the folder map of src/ is the import graph.
 *
 *   node bin/check-layers.js [root]     check <root>/src (default: this repository)
 *
 * Every `.ts` file under src/ belongs to the layer of its top folder (src/chain/follow/x.ts is
 * in `chain`). Each relative `import … from '…'`, `export … from '…'`, side-effect
 * `import '…'` and dynamic `import('…')` is checked, type-only imports included (a type
 * import is still a dependency of the design). An import may point down (to a lower layer) or
 * stay in its folder; an import that points up, or sideways between two folders of the same
 * layer, fails unless it is one of the documented sideways directions below. Imports of
 * packages are not checked. Plain Node, no dependency, so it runs before anything is built.
 *
 * Exit 0 when every import points down; exit 1 listing each offending import as
 * `file:line: from -> to ('specifier') …`; exit 2 when the root has no src/.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The layers, bottom to top. A folder may import its own folder and any folder of a lower
 * layer. Folders that share a layer may not import one another (see SIDEWAYS).
 * - `feature` is the contract between the host and the features (DaemonFeature, FeatureContext,
 *   route groups, the public-route flag): features implement it, api and daemon consume it.
 * - `regtest` (the test-network harness) only needs chain and util, but sits just below the CLI
 *   so that no production layer (daemon included) can import it: the CLI resolves the node.
 */
export const LAYERS = [
  ['util'],
  ['chain'],
  ['wallet'],
  ['feature'],
  ['deaddrop', 'paypub', 'node'],
  ['api'],
  ['dashboard'],
  ['daemon'],
  ['regtest'],
  ['cli'],
];

/** The only allowed imports between folders of one layer, each with its reason. */
export const SIDEWAYS = [
  { from: 'node', to: 'deaddrop', why: 'the peer node accepts introductions carried in drops and dials drop endpoints; deaddrop gets the node\'s issuer injected instead' },
];

const RANK = new Map(LAYERS.flatMap((folders, rank) => folders.map((f) => [f, rank])));

/** Every .ts file under `dir`. */
function tsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.isFile() && e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative specifiers of `source` with the line each appears on. */
export function importsOf(source) {
  const found = [];
  const patterns = [
    // import x from '…', import { a, type B } from '…', import type …, export { … } from '…', export * from '…', import '…'
    /^[ \t]*(?:import|export)\s+(?:type\s+)?(?:[\w$*{}\s,]*?\s*from\s*)?(['"])([^'"\n]+)\1/gm,
    // import('…')
    /\bimport\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of source.matchAll(re)) {
      const spec = m[2];
      if (!spec.startsWith('./') && !spec.startsWith('../')) continue;
      const at = m.index + m[0].lastIndexOf(spec);
      found.push({ spec, line: source.slice(0, at).split('\n').length });
    }
  }
  return found;
}

/** The top folder of `path` under `src`, or null for a file directly in src/ or outside it. */
function folderOf(src, path) {
  const rel = relative(src, path);
  if (rel.startsWith('..')) return null;
  const parts = rel.split(sep);
  return parts.length > 1 ? parts[0] : null;
}

/** Why `from` may not import `to`, or null when it may. */
function violation(from, to) {
  if (from === to) return null;
  const a = RANK.get(from);
  const b = RANK.get(to);
  if (b === undefined) return `${to}/ is in no layer`;
  if (b < a) return null;
  if (b > a) return 'points up';
  return SIDEWAYS.some((s) => s.from === from && s.to === to) ? null : 'points sideways (features may not import one another)';
}

/** Checks `<root>/src`; returns the offending imports and how much was read. */
export function checkLayers(root) {
  const src = join(root, 'src');
  const problems = [];
  let imports = 0;
  const files = tsFiles(src).sort();
  for (const file of files) {
    const name = relative(root, file);
    const from = folderOf(src, file);
    if (from === null || !RANK.has(from)) {
      problems.push(`${name}:1: ${from === null ? 'a file directly in src/' : `${from}/`} is in no layer (add its folder to LAYERS in bin/check-layers.js)`);
      continue;
    }
    for (const { spec, line } of importsOf(readFileSync(file, 'utf8'))) {
      imports++;
      const to = folderOf(src, resolve(dirname(file), spec));
      const why = to === null ? 'leaves the layered folders of src/' : violation(from, to);
      if (why) problems.push(`${name}:${line}: ${from} -> ${to ?? '?'} ('${spec}') ${why}`);
    }
  }
  return { files: files.length, imports, problems };
}

function main() {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  if (!existsSync(join(root, 'src')) || !statSync(join(root, 'src')).isDirectory()) {
    process.stderr.write(`layers: no src/ folder under ${root}\n`);
    return 2;
  }
  const { files, imports, problems } = checkLayers(root);
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`${p}\n`);
    process.stderr.write(`layers: ${problems.length} import(s) against the layers (bottom to top: ${LAYERS.map((l) => l.join(' | ')).join(' -> ')})\n`);
    return 1;
  }
  process.stdout.write(`layers: ${files} files, ${imports} relative imports, all pointing down\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main();
