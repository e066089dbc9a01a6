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

// The SQLite driver (packages/store/src/sqlite/driver.ts): DSG_SQLITE_DRIVER=node|better-sqlite3|auto (default
// auto: the built-in node:sqlite on Node >= 22.13, else the native better-sqlite3). Only better-sqlite3 compiles
// (an optional dependency: a failed compile does not fail the install); it is checked and rebuilt only when the
// chosen driver needs it, or under CI=true, where the store tests run on both drivers.
const sqliteDriver = process.env.DSG_SQLITE_DRIVER || 'auto';
if (!['auto', 'node', 'better-sqlite3'].includes(sqliteDriver)) {
  process.stderr.write(`[dsg] DSG_SQLITE_DRIVER=${sqliteDriver} is not a SQLite driver: use node, better-sqlite3 or auto (or unset it).\n`);
  process.exit(1);
}
const [vMajor, vMinor] = process.versions.node.split('.').map(Number);
const hasNodeSqlite = vMajor > 23 || (vMajor === 23 && vMinor >= 4) || (vMajor === 22 && vMinor >= 13);
if (sqliteDriver === 'node' && !hasNodeSqlite) {
  process.stderr.write(`[dsg] DSG_SQLITE_DRIVER=node needs Node 22.13 or newer (node:sqlite); this is Node ${process.versions.node}. Use a newer Node, or DSG_SQLITE_DRIVER=better-sqlite3.\n`);
  process.exit(1);
}
const needBetterSqlite3 = sqliteDriver === 'better-sqlite3' || (sqliteDriver === 'auto' && !hasNodeSqlite);
const wantBetterSqlite3 = needBetterSqlite3 || process.env.CI === 'true';
const betterSqlite3Dir = join(root, 'node_modules', 'better-sqlite3');

const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
const needInstall = !existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000)
  || (needBetterSqlite3 && !existsSync(join(betterSqlite3Dir, 'build', 'Release', 'better_sqlite3.node')));
if (needInstall) {
  say(needBetterSqlite3 ? 'installing dependencies (first run: about a minute, better-sqlite3 compiles from source)…' : 'installing dependencies…');
  run('npm', existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'], 'npm install');
}
// node_modules built under another Node version (nvm switch, upgrade) has a native module of the wrong ABI:
// rebuild it rather than fail later with NODE_MODULE_VERSION errors — when the driver needs it.
if (wantBetterSqlite3) {
  const probe = spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { cwd: root, encoding: 'utf8' });
  if (probe.status !== 0) {
    say(`${existsSync(betterSqlite3Dir) ? 'rebuilding' : 'installing'} better-sqlite3 for Node ${process.versions.node} (it compiles from source: about a minute and a half)…`);
    const r = spawnSync('npm', existsSync(betterSqlite3Dir) ? ['rebuild', 'better-sqlite3'] : ['install', '--no-save', '--no-audit', '--no-fund', 'better-sqlite3'],
      { cwd: root, env, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', shell: process.platform === 'win32' });
    if (r.status !== 0) {
      process.stderr.write(needBetterSqlite3
        ? `[dsg] better-sqlite3 could not be built (exit ${r.status}): it needs a C++ toolchain (Debian: apt-get install -y build-essential python3). ` +
          (hasNodeSqlite ? 'Or use the built-in driver: unset DSG_SQLITE_DRIVER or set it to node.\n' : 'Or use Node 22.13 or newer, whose built-in node:sqlite needs no compiling.\n')
        : `[dsg] better-sqlite3 could not be built (exit ${r.status}); CI=true runs the store tests on both drivers, so this fails here.\n`);
      process.exit(r.status ?? 1);
    }
  }
}
say('building…');
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], 'TypeScript build');
// The `dsg` command runs from one bundle of the compiled code (fast start-up; the same files `npm i -g` installs).
run(process.execPath, [join(root, 'scripts', 'bundle-cli.mjs'), ...(quiet ? ['--quiet'] : [])], 'bundling the CLI');
