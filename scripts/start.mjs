#!/usr/bin/env node
// `npm start`: install and build when needed, then `dsg up` — a whole grid on this machine (coordinator,
// dashboard and a local agent) with its data in ./.dsg. Extra arguments go to `dsg up`:
//   npm start -- --port 8080 --cpus 2
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useSupportedNode } from './node-runtime.mjs';

await useSupportedNode(import.meta.url);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ensure = spawnSync(process.execPath, [join(root, 'scripts', 'ensure.mjs')], { stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);

const child = spawn(process.execPath, [join(root, 'packages', 'cli', 'bin', 'dsg.js'), 'up', ...process.argv.slice(2)], { stdio: 'inherit', cwd: root });
// The grid handles Ctrl-C itself; forward termination signals so `kill <npm pid>` stops it cleanly too.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig === 'SIGHUP' ? 'SIGTERM' : sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
