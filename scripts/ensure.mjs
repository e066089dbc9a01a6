#!/usr/bin/env node
// Makes a checkout ready to run: installs npm packages when node_modules is missing or older than the lockfile,
// then builds the TypeScript (incremental, so a no-op build takes about a second). Uses only Node built-ins,
// because it runs before anything is installed. `npm start`, `npm test` and `npm run bench` call it first.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const say = (m) => { if (!quiet) process.stderr.write(`[dsg] ${m}\n`); };

// better-sqlite3 compiles against Node's headers. Node installations ship them next to the binary
// (<prefix>/include/node); point node-gyp there so the build works offline instead of downloading them.
const env = { ...process.env };
const prefix = join(dirname(process.execPath), '..');
if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node.h'))) env.npm_config_nodedir = prefix;

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, env, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) {
    process.stderr.write(`[dsg] ${what} failed (exit ${r.status}). Fix the error above and run the command again.\n`);
    process.exit(r.status ?? 1);
  }
}

const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  process.stderr.write(`[dsg] Node ${process.versions.node} is too old: DSG needs Node 20 or newer.\n`);
  process.exit(1);
}

const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
const needInstall = !existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000)
  || !existsSync(join(root, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'));
if (needInstall) {
  say('installing dependencies (first run: about a minute, better-sqlite3 compiles from source)…');
  run('npm', existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'], 'npm install');
}
// node_modules built under another Node version (nvm switch, upgrade) has a native module of the wrong ABI:
// rebuild it rather than fail later with NODE_MODULE_VERSION errors.
const probe = spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { cwd: root, encoding: 'utf8' });
if (probe.status !== 0) {
  say(`rebuilding better-sqlite3 for Node ${process.versions.node}…`);
  run('npm', ['rebuild', 'better-sqlite3'], 'rebuilding better-sqlite3');
}
say('building…');
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], 'TypeScript build');
// The `dsg` command runs from one bundle of the compiled code (fast start-up; the same files `npm i -g` installs).
run(process.execPath, [join(root, 'scripts', 'bundle-cli.mjs'), ...(quiet ? ['--quiet'] : [])], 'bundling the CLI');
