#!/usr/bin/env node
// `npm test`: install and build when needed, then run every compiled test file with Node's test runner.
// Usage: npm test [-- <filter>…]   e.g. `npm test -- store` runs only test files whose path contains "store".
//
// Which Node: the one running this script (Node 24 LTS, fetched once, when the machine's Node is older than the
// supported 22 — see scripts/node-runtime.mjs). DSG_TEST_NODES=24,22 runs the suite once per listed major version,
// in that order (each fetched from the npm registry when it is not the running one); CI sets it so the whole suite
// runs on both supported LTS lines, whole. With CI=true and no DSG_TEST_NODES, the whole suite runs on Node 24 LTS,
// then again on this machine's Node (or on Node 22, the oldest supported, when the machine's is older) without the
// longest end-to-end files (SECOND_RUN_LEAVES_OUT: network namespaces, a browser, Snakemake; ~5 minutes),
// which exercise the network, the browser and Snakemake more than Node itself: .ci/run took 20.5 of its 30 minutes.
// The exit status is the first failing run's.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LTS_NODE_MAJOR, MIN_NODE_MAJOR, envFor, nodeBinary, nodeMajor, useSupportedNode } from './node-runtime.mjs';

await useSupportedNode(import.meta.url);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2);

function defaultNodes() {
  if (process.env.CI !== 'true') return [nodeMajor()];
  const machine = nodeMajor(process.env.DSG_MACHINE_NODE ?? process.versions.node);
  return [...new Set([LTS_NODE_MAJOR, machine >= MIN_NODE_MAJOR ? machine : MIN_NODE_MAJOR])];
}

/** Left out of CI's second run (named loudly); every one of them runs in the first. */
const SECOND_RUN_LEAVES_OUT = ['e2e/dist/chaos.test.js', 'e2e/dist/snakemake.test.js', 'e2e/dist/dashboard.test.js',
  'e2e/dist/approval.test.js', 'e2e/dist/join-approval.test.js', 'e2e/dist/discovery.test.js', 'e2e/dist/multihost.test.js'];
const trimSecondRun = process.env.CI === 'true' && !process.env.DSG_TEST_NODES;

function parseNodes(text) {
  if (!text) return defaultNodes();
  const majors = text.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  for (const m of majors) {
    if (!Number.isInteger(m) || m < MIN_NODE_MAJOR || m > 99) {
      process.stderr.write(`[dsg] DSG_TEST_NODES=${text}: each entry must be a Node major version ≥ ${MIN_NODE_MAJOR}, e.g. DSG_TEST_NODES=24,22\n`);
      process.exit(2);
    }
  }
  return majors.length > 0 ? majors : [nodeMajor()];
}

function walk(dir, out) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

function testFiles() {
  const files = [];
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const d = join(root, 'packages', pkg, 'dist', 'test');
    try { if (statSync(d).isDirectory()) walk(d, files); } catch { /* package without tests */ }
  }
  try { walk(join(root, 'e2e', 'dist'), files); } catch { /* no e2e build */ }
  return files.filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x))).sort();
}

// Leak check: every process a test started (their arguments name a dsg-e2e- temp dir) must be gone by now.
function leakedProcesses() {
  const leaked = [];
  if (process.platform !== 'linux') return leaked;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes('dsg-e2e-')) leaked.push(`${pid} ${cmd.slice(0, 160)}`);
    } catch { /* gone */ }
  }
  return leaked;
}

/** One whole run on one Node binary: build for it (the native SQLite module follows the Node ABI), test, leak check. */
function runOn(bin, label, leaveOut = []) {
  const env = envFor(bin);
  const ensure = spawnSync(bin, [join(root, 'scripts', 'ensure.mjs')], { stdio: 'inherit', env });
  if (ensure.status !== 0) return ensure.status ?? 1;
  const all = testFiles();
  const selected = all.filter((f) => !leaveOut.includes(relative(root, f)));
  if (selected.length < all.length) {
    process.stderr.write(`[dsg] ${label}: leaving out ${all.length - selected.length} long end-to-end file(s) that ran on the first Node: ${all.filter((f) => !selected.includes(f)).map((f) => relative(root, f)).join(', ')}\n`);
  }
  if (selected.length === 0) {
    process.stderr.write('[dsg] no test files matched\n');
    return 1;
  }
  process.stderr.write(`[dsg] running ${selected.length} test files on ${label}\n`);
  const started = Date.now();
  const r = spawnSync(bin, ['--test', '--test-concurrency=1', ...selected], { stdio: 'inherit', cwd: root, env });
  process.stderr.write(`[dsg] ${label}: ${r.status === 0 ? 'passed' : `FAILED (exit ${r.status ?? r.signal})`} in ${Math.round((Date.now() - started) / 1000)} s\n`);
  const leaked = leakedProcesses();
  if (leaked.length > 0) {
    process.stderr.write(`[dsg] tests leaked ${leaked.length} process(es):\n  ${leaked.join('\n  ')}\n`);
    return 1;
  }
  return r.status ?? 1;
}

const majors = parseNodes(process.env.DSG_TEST_NODES);
const results = [];
for (const major of majors) {
  const bin = nodeBinary(major, `DSG_TEST_NODES asks for Node ${major}`);
  const version = spawnSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  const leaveOut = trimSecondRun && results.length > 0 ? SECOND_RUN_LEAVES_OUT : [];
  results.push({ label: `Node ${version}`, status: runOn(bin, `Node ${version}`, leaveOut) });
}
if (results.length > 1) {
  for (const r of results) process.stderr.write(`[dsg] ${r.label}: ${r.status === 0 ? 'passed' : `FAILED (exit ${r.status})`}\n`);
}
process.exit(results.find((r) => r.status !== 0)?.status ?? 0);
