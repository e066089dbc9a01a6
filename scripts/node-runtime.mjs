// Which Node runs the repository's scripts (`npm start`, `npm test`, `npm run bench`, …).
//
// DSG supports Node 22 and newer (package.json `engines`). On an older Node the scripts do not fail: they say so,
// fetch Node 24 LTS from the npm registry once (the official binaries, published there as the package
// `node-<platform>-<arch>`, into `.dsg-node/` at the repository root) and run themselves again on it. Set
// DSG_NO_NODE_DOWNLOAD=1 to be refused instead. `npm test` also uses `nodeBinary()` to run the suite on a second
// supported Node (CI runs it on 24 and 22). Uses only Node built-ins: it runs before anything is installed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MIN_NODE_MAJOR = 22;
export const LTS_NODE_MAJOR = 24;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const nodeCacheDir = join(root, '.dsg-node');

export function nodeMajor(version = process.versions.node) {
  return Number(version.split('.')[0]);
}

/** The npm package holding the official Node binary for this machine, or null where none is published. */
function binaryPackage() {
  const os = { linux: 'linux', darwin: 'darwin' }[process.platform];
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  return os && arch ? `node-${os}-${arch}` : null;
}

/** Path of the fetched Node `major` if it is there and runs, else null. */
export function cachedNode(major) {
  const pkg = binaryPackage();
  if (!pkg) return null;
  const bin = join(nodeCacheDir, String(major), 'node_modules', pkg, 'bin', 'node');
  if (!existsSync(bin)) return null;
  const r = spawnSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  return r.status === 0 && nodeMajor(r.stdout.trim()) === major ? bin : null;
}

/**
 * A Node binary of this major version: the running one if it matches, or one
 * fetched from the npm registry into .dsg-node/<major>. Exits with a message saying what to do when none can be had.
 */
export function nodeBinary(major, why) {
  if (nodeMajor() === major) return process.execPath;
  const cached = cachedNode(major);
  if (cached) return cached;
  const pkg = binaryPackage();
  if (!pkg) {
    fail(`no Node ${major} binary is published on the npm registry for ${process.platform}-${process.arch}; install Node ${major} from https://nodejs.org`);
  }
  if (process.env.DSG_NO_NODE_DOWNLOAD === '1') {
    fail(`${why}, and DSG_NO_NODE_DOWNLOAD=1 forbids fetching one. Install Node ${MIN_NODE_MAJOR} or newer (https://nodejs.org, or \`nvm install ${LTS_NODE_MAJOR}\`) and run the command again.`);
  }
  const dir = join(nodeCacheDir, String(major));
  process.stderr.write(`[dsg] ${why}: fetching Node ${major} from the npm registry (${pkg}@${major}, about 30 MB, once) into ${dir} …\n`);
  const r = spawnSync('npm', ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', `${pkg}@${major}`],
    { stdio: ['ignore', 'ignore', 'inherit'], shell: process.platform === 'win32' });
  const bin = r.status === 0 ? cachedNode(major) : null;
  if (!bin) fail(`could not fetch Node ${major} (npm exit ${r.status}). Install Node ${MIN_NODE_MAJOR} or newer yourself (https://nodejs.org, or \`nvm install ${LTS_NODE_MAJOR}\`) and run the command again.`);
  return bin;
}

function fail(message) {
  process.stderr.write(`[dsg] ${message}\n`);
  process.exit(1);
}

/** Environment for a child running on `bin`: its folder first on PATH, so `node` and `npm` in subprocesses match. */
export function envFor(bin, env = process.env) {
  if (bin === process.execPath && nodeMajor() >= MIN_NODE_MAJOR) return env;
  return { ...env, PATH: `${dirname(bin)}${delimiter}${env.PATH ?? ''}` };
}

/**
 * Call first in a top-level script (`await useSupportedNode(import.meta.url)`). On a supported Node it returns; on
 * an older one it says so, runs this same script on Node 24 LTS (fetched once) with the same arguments, forwards
 * termination signals to it, and exits with its status (the returned promise then never settles).
 */
export function useSupportedNode(scriptUrl) {
  if (nodeMajor() >= MIN_NODE_MAJOR) return Promise.resolve();
  const why = `this machine's Node is ${process.versions.node}; DSG needs Node ${MIN_NODE_MAJOR} or newer (Node ${nodeMajor()} is past its end of life)`;
  const bin = nodeBinary(LTS_NODE_MAJOR, why);
  process.stderr.write(`[dsg] running on Node ${LTS_NODE_MAJOR} from ${dirname(bin)} (install Node ${MIN_NODE_MAJOR}+ to use your own)\n`);
  const env = { ...envFor(bin), DSG_MACHINE_NODE: process.env.DSG_MACHINE_NODE ?? process.versions.node };
  const child = spawn(bin, [fileURLToPath(scriptUrl), ...process.argv.slice(2)], { stdio: 'inherit', env });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  return new Promise(() => {
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
    child.on('error', (err) => fail(`could not start ${bin}: ${err.message}`));
  });
}
