#!/usr/bin/env node
// Compiles the agent's optional native helpers with the C compiler this machine has (`cc`, else `gcc`, else `clang`;
// $CC first when set), into packages/agent/dist/native/:
//   - dsg-spawn (packages/agent/native/dsg-spawn.c), the process starter; without it the agent starts tasks with
//     Node's spawn (slower per task, same behaviour);
//   - dsg-drop (dsg-drop.c, Linux only), which starts a task as an unprivileged user where util-linux setpriv was
//     used (without it, setpriv: slower per task, same behaviour).
// Optional by design: without a compiler, or on a platform one does not build on, it says so in one line and exits
// 0. Each is skipped when its binary is newer than its source. Usage: node scripts/build-native.mjs [--quiet]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const say = (m) => { if (!quiet) process.stderr.write(`[dsg] ${m}\n`); };
const outDir = join(root, 'packages', 'agent', 'dist', 'native');
const helpers = [
  { name: 'dsg-spawn', what: 'the native process starter', args: ['-pthread'], without: 'agents start tasks with Node (slower per task)' },
  ...(process.platform === 'linux' ? [{ name: 'dsg-drop', what: 'the privilege drop helper', args: [], without: 'agents start unprivileged tasks through setpriv (slower per task)' }] : []),
];

if (process.platform === 'win32') process.exit(0); // POSIX only; Windows agents use Node's spawn
const todo = helpers.filter((h) => {
  const src = join(root, 'packages', 'agent', 'native', `${h.name}.c`);
  const out = join(outDir, h.name);
  return !(existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs);
});
if (todo.length === 0) process.exit(0);
const compilers = [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean);
const cc = compilers.find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
if (!cc) {
  say(`no C compiler found: ${todo.map((h) => `${h.what} is not built (${h.without})`).join('; ')}`);
  process.exit(0);
}
mkdirSync(outDir, { recursive: true });
for (const h of todo) {
  const src = join(root, 'packages', 'agent', 'native', `${h.name}.c`);
  const out = join(outDir, h.name);
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync(cc, ['-O2', '-Wall', ...h.args, '-o', tmp, src], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    say(`${h.what} did not compile with ${cc} (${h.without}):\n${(r.stderr || '').trim().split('\n').slice(0, 8).join('\n')}`);
    continue;
  }
  renameSync(tmp, out);
  say(`built ${h.what} (${cc})`);
}
