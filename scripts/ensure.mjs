#!/usr/bin/env node
// Makes a checkout ready to run: installs npm packages when node_modules is missing or older than the lockfile,
// then builds the TypeScript (incremental, so a no-op build takes about a second). Uses only Node built-ins,
// because it runs before anything is installed. `npm start`, `npm test` and `npm run bench` call it first.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useSupportedNode } from './node-runtime.mjs';

await useSupportedNode(import.meta.url);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const say = (m) => { if (!quiet) process.stderr.write(`[dsg] ${m}\n`); };

const env = { ...process.env };
function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, env, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) {
    process.stderr.write(`[dsg] ${what} failed (exit ${r.status}). Fix the error above and run the command again.\n`);
    process.exit(r.status ?? 1);
  }
}

// The SQLite driver, better-sqlite3 13, ships prebuilt Node-API binaries for Linux (glibc and musl), macOS and
// Windows on x64 and arm64 inside its npm package: nothing compiles, and one install serves every Node ≥ 22.
const sqliteLoads = () => spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { cwd: root, encoding: 'utf8' });
const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
const needInstall = !existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000);
if (needInstall) {
  say('installing dependencies…');
  run('npm', existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'], 'npm install');
}
// DSG_SQLITE_DRIVER (packages/store/src/sqlite/driver.ts): better-sqlite3, node (the built-in node:sqlite, no native
// code) or auto (default: better-sqlite3 when it loads, else node:sqlite). The native module is checked only when
// the chosen driver may use it.
const sqliteDriver = process.env.DSG_SQLITE_DRIVER || 'auto';
const [vMajor, vMinor] = process.versions.node.split('.').map(Number);
const hasNodeSqlite = vMajor > 22 || (vMajor === 22 && vMinor >= 13);
if (!['auto', 'node', 'better-sqlite3'].includes(sqliteDriver)) {
  process.stderr.write(`[dsg] DSG_SQLITE_DRIVER=${sqliteDriver} is not a SQLite driver: use better-sqlite3, node or auto (or unset it).\n`);
  process.exit(1);
}
if (sqliteDriver === 'node' && !hasNodeSqlite) {
  process.stderr.write(`[dsg] DSG_SQLITE_DRIVER=node needs Node 22.13 or newer (node:sqlite); this is Node ${process.versions.node}. Use a newer Node, or unset DSG_SQLITE_DRIVER.\n`);
  process.exit(1);
}
const probe = sqliteDriver === 'node' ? { status: 0 } : sqliteLoads();
if (probe.status !== 0 && sqliteDriver === 'auto' && hasNodeSqlite)
  say(`better-sqlite3 does not load on ${process.platform}-${process.arch} (${probe.stderr.trim().split('\n')[0]}): the grid uses the built-in node:sqlite instead`);
else if (probe.status !== 0) {
  process.stderr.write(`[dsg] the SQLite driver (better-sqlite3) does not load on Node ${process.versions.node} ${process.platform}-${process.arch}:\n${probe.stderr.trim().split('\n').slice(0, 6).join('\n')}\n`
    + '[dsg] It ships prebuilt binaries for Linux, macOS and Windows on x64 and arm64. Try `rm -rf node_modules` and run the command again, or use the built-in driver (DSG_SQLITE_DRIVER=node, Node 22.13 or newer); if it still fails, please report the lines above.\n');
  process.exit(1);
}
say('building…');
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], 'TypeScript build');
// The dashboard (packages/web): one minified bundle the coordinator serves.
run(process.execPath, [join(root, 'scripts', 'build-web.mjs'), ...(quiet ? ['--quiet'] : [])], 'building the dashboard');
// The agent's optional native process starter (C): never fails the build; without it agents use Node's spawn.
run(process.execPath, [join(root, 'scripts', 'build-native.mjs'), ...(quiet ? ['--quiet'] : [])], 'building the native process starter');
// The `dsg` command runs from one bundle of the compiled code (fast start-up; the same files `npm i -g` installs).
run(process.execPath, [join(root, 'scripts', 'bundle-cli.mjs'), ...(quiet ? ['--quiet'] : [])], 'bundling the CLI');
