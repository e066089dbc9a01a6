#!/usr/bin/env node
// `npm run pack`: builds the `dsg` command as one installable npm package, so a machine without the repository
// (a volunteer's desktop, a classroom PC) gets the whole grid — CLI, coordinator, agent, dashboard — with
//   npm install -g ./dsg-grid-<version>.tgz
// The package holds the CLI's bundle (scripts/bundle-cli.mjs: our workspace packages are private and inside it)
// and depends only on what cannot be bundled: better-sqlite3, a native add-on built for the installing machine.
// Usage: node scripts/pack-cli.mjs [--out DIR]   (default: the repository root). Prints the tarball's path.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useSupportedNode } from './node-runtime.mjs';

await useSupportedNode(import.meta.url);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outIdx = process.argv.indexOf('--out');
const outDir = resolve(outIdx > 0 ? process.argv[outIdx + 1] : root);
const say = (m) => process.stderr.write(`[dsg] ${m}\n`);

// Build (installs first when needed) and bundle: the same steps as `npm test` and `npm start`.
const ensure = spawnSync(process.execPath, [join(root, 'scripts', 'ensure.mjs'), '--quiet'], { stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);

const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
/** The version of a dependency as the repository has it locked: the package gets exactly what was tested. */
const locked = (name) => {
  const v = lock.packages?.[`node_modules/${name}`]?.version;
  if (!v) throw new Error(`${name} is not in package-lock.json`);
  return v;
};

const stage = mkdtempSync(join(tmpdir(), 'dsg-pack-'));
try {
  cpSync(join(root, 'packages', 'cli', 'bin'), join(stage, 'bin'), { recursive: true });
  cpSync(join(root, 'packages', 'cli', 'bundle'), join(stage, 'bundle'), { recursive: true });
  cpSync(join(root, 'README.md'), join(stage, 'README.md'));
  const pkg = {
    name: 'dsg-grid',
    version: rootPkg.version,
    description: rootPkg.description,
    license: rootPkg.license,
    type: 'module',
    bin: { dsg: './bin/dsg.js' },
    // Source maps stay in the repository (they double the size); the licences of bundled code ship.
    files: ['bin', 'bundle/*.js', 'bundle/*.LEGAL.txt', 'bundle/package.json', 'bundle/web', 'README.md'],
    engines: rootPkg.engines,
    dependencies: { 'better-sqlite3': locked('better-sqlite3') },
    // Optional speed-ups the WebSocket library loads when present; never required.
    peerDependenciesMeta: { bufferutil: { optional: true }, 'utf-8-validate': { optional: true } },
  };
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  mkdirSync(outDir, { recursive: true });
  const r = spawnSync('npm', ['pack', '--pack-destination', outDir, '--json'], { cwd: stage, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) {
    say('npm pack failed (see above)');
    process.exit(r.status ?? 1);
  }
  const [info] = JSON.parse(r.stdout);
  const file = join(outDir, info.filename);
  say(`packed ${info.filename}: ${(info.size / 1024 / 1024).toFixed(1)} MiB, ${info.entryCount} files`);
  say(`install it anywhere with Node ${rootPkg.engines.node}: npm install -g ${file}`);
  process.stdout.write(`${file}\n`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
