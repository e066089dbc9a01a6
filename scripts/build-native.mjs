#!/usr/bin/env node
// Compiles the agent's optional native process starter (packages/agent/native/dsg-spawn.c) into
// packages/agent/dist/native/dsg-spawn with the C compiler this machine has (`cc`, else `gcc`, else `clang`;
// $CC first when set). Optional by design: without a compiler, or on a platform it does not build on, it says so
// in one line and exits 0 — the agent then starts tasks with Node's spawn (slower per task, same behaviour).
// Skipped when the binary is newer than its source. Usage: node scripts/build-native.mjs [--quiet]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const say = (m) => { if (!quiet) process.stderr.write(`[dsg] ${m}\n`); };
const src = join(root, 'packages', 'agent', 'native', 'dsg-spawn.c');
const outDir = join(root, 'packages', 'agent', 'dist', 'native');
const out = join(outDir, 'dsg-spawn');

if (process.platform === 'win32') process.exit(0); // POSIX only; Windows agents use Node's spawn
if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) process.exit(0);
const compilers = [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean);
const cc = compilers.find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
if (!cc) {
  say('no C compiler found: the native process starter is not built; agents start tasks with Node (slower per task)');
  process.exit(0);
}
mkdirSync(outDir, { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const r = spawnSync(cc, ['-O2', '-Wall', '-pthread', '-o', tmp, src], { encoding: 'utf8' });
if (r.status !== 0) {
  rmSync(tmp, { force: true });
  say(`the native process starter did not compile with ${cc} (agents start tasks with Node instead):\n${(r.stderr || '').trim().split('\n').slice(0, 8).join('\n')}`);
  process.exit(0);
}
renameSync(tmp, out);
say(`built the native process starter (${cc})`);
