#!/usr/bin/env node
// Bundles the compiled CLI (packages/cli/dist/src/main.js and everything it imports, the coordinator and agent
// included) into packages/cli/bundle/ with esbuild. Why:
//  - start-up: Node resolves and reads hundreds of small files for zod, yaml, commander and our packages; one file
//    per command loads in half the time (`dsg --version` 0.22 s → ~0.11 s on the 2-core CI machine);
//  - installing without the repository: the workspace packages (@dsg/core, …) are private, so `npm i -g` of the
//    CLI package needs them inside it. The bundle is that package's code; third-party packages with native code
//    (better-sqlite3) or optional native add-ons stay external and are the package's real dependencies.
// Code splitting keeps `up`, `coordinator` and `agent` (fastify, the SQLite driver, …) out of what client commands
// load: they sit behind dynamic import() in the CLI and become chunks of their own.
// Files other code spawns or reads by path become entry points or copies next to the bundle:
//  - launcher-main.js (the agent's process launcher, spawned by path);
//  - the dashboard's static files (the coordinator looks for ./web next to its code first);
//  - the native helpers dsg-spawn and dsg-drop when they were built (the agent looks for them next to itself).
// Usage: node scripts/bundle-cli.mjs [--quiet]. scripts/ensure.mjs runs it after every build.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'packages', 'cli');
const out = join(cli, 'bundle');

/** Packages loaded at run time from node_modules, never bundled: native add-ons and their loaders. */
export const EXTERNAL = ['better-sqlite3', 'bufferutil', 'utf-8-validate'];

const entries = {
  dsg: join(cli, 'dist', 'src', 'main.js'),
  'launcher-main': join(root, 'packages', 'agent', 'dist', 'src', 'executor', 'launcher-main.js'),
};
for (const [name, file] of Object.entries(entries)) {
  if (!existsSync(file)) {
    process.stderr.write(`[dsg] bundle: ${file} is missing (${name}); run the TypeScript build first (npm run build)\n`);
    process.exit(1);
  }
}

/**
 * Node's built-in modules are taken with require(), not `import`. Why: an ES import of a built-in makes Node build an
 * ES module facade that reads every one of its exports once, and many are getters that load more: `node:process`
 * creates stdin and loads the diagnostic report, `node:util` its argument parser and diff, `node:fs` its promises
 * API, `node:crypto` WebCrypto, `node:http` undici (Node 22+). Profiled on Node 24, `dsg jobs` loaded 116 internal
 * modules, most of them only for those facades. esbuild wraps a required module in getters that read on use.
 */
/**
 * Built-ins behind a Proxy that answers esbuild's descriptor reads itself. `node:util`: its exports are lazy data
 * properties that load their module when even their descriptor is read (33 internal modules, ~4 ms); util itself is
 * loaded (Node's own code uses it). `node:child_process`: loaded on first use, not at import — commander imports it
 * at start for executable subcommands DSG has none of, and it brings `dgram` and the child-process internals (~5 ms
 * of every `dsg` command); its export names are read here, at bundle time. Only modules whose exports do not care
 * about `this` (plain functions and classes): a method called through the Proxy gets the Proxy as `this`.
 */
const PROXIED = {
  'node:util': { eager: true },
  'node:child_process': { eager: false, keys: Object.keys(await import('node:child_process')).filter((k) => k !== 'default') },
};
function proxied(id, { eager, keys }) {
  const load = eager ? `const m = require(${JSON.stringify(id)}); const load = () => m;` : `let m; const load = () => (m ??= require(${JSON.stringify(id)}));`;
  const ownKeys = eager ? 'Reflect.ownKeys(m)' : JSON.stringify(keys);
  // The names once, as a Set: esbuild's __toESM reads a descriptor per name (a list searched per read was O(n²)).
  return `${load}
let names;
const has = (k) => (names ??= new Set(${ownKeys})).has(k);
module.exports = new Proxy({}, {
  ownKeys: () => [...(names ??= new Set(${ownKeys}))],
  getOwnPropertyDescriptor: (_, k) => (has(k) ? { value: undefined, writable: true, enumerable: true, configurable: true } : undefined),
  get: (_, k) => load()[k],
  set: (_, k, v) => { load()[k] = v; return true; },
  has: (_, k) => k in load(),
});`;
}
/**
 * One such module per importing module and import kind (its path carries both), not one per built-in. Why: a module
 * that several entry points reach becomes a chunk file of its own, and one shared `node:fs` module reached from
 * every command made a 400-byte chunk per built-in — 8 of the 20 files `dsg jobs` loaded, at ~0.4 ms each for
 * Node's ES module loader (resolve, read, compile, link). Per importer, each lands in its importer's chunk.
 *
 * And where the importer names what it takes (`import { readFileSync, promises } from 'node:fs'`, which is all of
 * our compiled code), the shim is an object with a getter for just those names that loads the built-in on first
 * use: esbuild's `__toESM` then copies 2 properties instead of all ~100 of `node:fs` (its copies were ~150 KB of
 * a `dsg jobs` heap that Node scavenges twice at start), a getter export (`tls.rootCertificates`) is still read
 * only when used, and a built-in nobody calls (`node:child_process` for commander) is never loaded. Anything else
 * (a namespace or default import, a re-export, `import()`) gets the whole module as above.
 */
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const SHIM_SEPARATOR = '|';
/**
 * How `importer` takes `specifier`: `{ names }` when every import of it there is `import { a, b as c } from`,
 * `{ default: true }` when every one is `import x from`, null for anything else (or when it cannot tell).
 */
function importsOf(importer, specifier) {
  let source;
  try {
    source = readFileSync(importer, 'utf8');
  } catch {
    return null;
  }
  const re = new RegExp(`(?:^|[;}\\n])\\s*(import|export)\\b\\s*([^;]*?)\\s*from\\s*(['"])${specifier}\\3`, 'g');
  const names = new Set();
  let defaults = 0;
  let named = 0;
  for (const m of source.matchAll(re)) {
    if (m[1] !== 'import') return null;
    const clause = m[2].trim();
    if (/^[A-Za-z_$][\w$]*$/.test(clause)) {
      defaults++;
      continue;
    }
    const list = /^\{([^{}]*)\}$/.exec(clause);
    if (!list) return null;
    named++;
    for (const part of list[1].split(',')) {
      const name = part.trim().split(/\s+as\s+/)[0];
      if (!name) continue;
      if (!/^[A-Za-z_$][\w$]*$/.test(name) || name === 'default') return null;
      names.add(name);
    }
  }
  if (named > 0 && defaults === 0) return { names: [...names] };
  if (defaults > 0 && named === 0) return { default: true };
  return null;
}
const builtinsByRequire = {
  name: 'builtins-by-require',
  setup(b) {
    b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
      if (!builtins.has(args.path) && !args.path.startsWith('node:')) return undefined;
      if (args.kind === 'require-call') return { path: args.path, external: true };
      // `<importer>|<kind>|<built-in>` (a path ending in .mjs would make esbuild read the shim as an ES module).
      return { path: [relative(root, args.importer), args.kind, args.path].join(SHIM_SEPARATOR), namespace: 'builtin-cjs' };
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin-cjs' }, (args) => {
      const [importer, kind, specifier] = args.path.split(SHIM_SEPARATOR);
      const id = specifier.startsWith('node:') ? specifier : `node:${specifier}`;
      const how = kind === 'import-statement' ? importsOf(join(root, importer), specifier) : null;
      if (how?.names) {
        const getters = how.names.map((n) => `  get ${n}() { return load().${n}; },`).join('\n');
        return { contents: `let m;\nconst load = () => (m ??= require(${JSON.stringify(id)}));\nmodule.exports = {\n${getters}\n};`, loader: 'js' };
      }
      // An ES module whose default export is the built-in: `import fs from` then reads it directly, where a CommonJS
      // shim would make __toESM copy every export of it (commander's `fs`, `path` and `process`: ~60 KB of heap).
      if (how?.default && !PROXIED[id]) return { contents: `export default require(${JSON.stringify(id)});`, loader: 'js' };
      const contents = PROXIED[id] ? proxied(id, PROXIED[id]) : `module.exports = require(${JSON.stringify(id)});`;
      return { contents, loader: 'js' };
    });
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const started = Date.now();
await build({
  entryPoints: entries,
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  chunkNames: 'chunk-[hash]',
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
  plugins: [builtinsByRequire],
  // CommonJS packages inside an ES module bundle call require() for Node built-ins: give them a real one.
  banner: { js: "import { createRequire as __dsgCreateRequire } from 'node:module'; const require = __dsgCreateRequire(import.meta.url);" },
});
// The chunks are ES modules whatever the package.json above says.
writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');

// Dashboard assets: the built web app (scripts/build-web.mjs runs before this).
const web = join(root, 'packages', 'web', 'dist', 'app');
if (!existsSync(join(web, 'index.html'))) {
  process.stderr.write(`[dsg] bundle: the dashboard is not built (${web}); run node scripts/build-web.mjs first (npm run build does)\n`);
  process.exit(1);
}
cpSync(web, join(out, 'web'), { recursive: true });
for (const helper of ['dsg-spawn', 'dsg-drop']) {
  const built = join(root, 'packages', 'agent', 'dist', 'native', helper);
  if (existsSync(built)) cpSync(built, join(out, helper));
  else rmSync(join(out, helper), { force: true });
}

if (!process.argv.includes('--quiet')) {
  const size = readdirSync(out).filter((f) => f.endsWith('.js')).reduce((n, f) => n + statSync(join(out, f)).size, 0);
  process.stderr.write(`[dsg] bundled the CLI in ${Date.now() - started} ms (${(size / 1024 / 1024).toFixed(1)} MiB of JavaScript)\n`);
}
