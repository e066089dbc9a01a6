#!/usr/bin/env node
// `npm test`: install and build when needed, then run every compiled test file with Node's test runner.
// Usage: npm test [-- <filter>]   e.g. `npm test -- store` runs only test files whose path contains "store".
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ensure = spawnSync(process.execPath, [join(root, 'scripts', 'ensure.mjs')], { stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);

function walk(dir, out) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const filters = process.argv.slice(2);
const files = [];
for (const pkg of readdirSync(join(root, 'packages'))) {
  const d = join(root, 'packages', pkg, 'dist', 'test');
  try { if (statSync(d).isDirectory()) walk(d, files); } catch { /* package without tests */ }
}
try { walk(join(root, 'e2e', 'dist'), files); } catch { /* no e2e build */ }
const selected = files.filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x))).sort();
if (selected.length === 0) {
  process.stderr.write('[dsg] no test files matched\n');
  process.exit(1);
}
process.stderr.write(`[dsg] running ${selected.length} test files\n`);
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...selected], { stdio: 'inherit', cwd: root });

// Leak check: every process a test started (their arguments name a dsg-e2e- temp dir) must be gone by now.
const leaked = [];
if (process.platform === 'linux') {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes('dsg-e2e-')) leaked.push(`${pid} ${cmd.slice(0, 160)}`);
    } catch { /* gone */ }
  }
}
if (leaked.length > 0) {
  process.stderr.write(`[dsg] tests leaked ${leaked.length} process(es):\n  ${leaked.join('\n  ')}\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
