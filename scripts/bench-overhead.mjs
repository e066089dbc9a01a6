#!/usr/bin/env node
// Where the grid's own time goes per task: N × `true` through `dsg up`, with the CPU time (user + system, from
// /proc/<pid>/stat) that each grid process — coordinator, agent, launcher, native starter — spent during the run, divided by N.
// CPU per task is far less sensitive to a busy machine than tasks/s, and it is what W2 (CPU-bound tasks) pays.
// Linux only. Not a test: asserts nothing.
//   Options: --tasks N (default 2000)  --isolation none|cgroups|sandbox  --cpu-prof DIR (V8 profiles of all three)
//            --fsyncs (count the coordinator's fsync/fdatasync calls during the run with strace: commits per task)
//            --json
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useSupportedNode } from './node-runtime.mjs';
import { benchApi } from './bench-api.mjs';

await useSupportedNode(import.meta.url);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argOf = (name) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const N = Number(argOf('--tasks') ?? 2000);
const isolation = argOf('--isolation');
const profDir = argOf('--cpu-prof');
const cores = availableParallelism();
const say = (m) => process.stderr.write(`[bench-overhead] ${m}\n`);
const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** CPU ms (user + system) of one process, or null once it is gone. */
function cpuMs(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICK;
  } catch { return null; }
}
function childrenOf(pid) {
  try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
}
function cmdline(pid) {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { return []; }
}

function xargs(n, parallel) {
  const t0 = performance.now();
  const input = Array.from({ length: n }, (_, i) => String(i)).join('\n');
  const r = spawnSync('xargs', ['-P', String(parallel), '-n1', 'true'], { input, stdio: ['pipe', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error('xargs failed');
  return (performance.now() - t0) / 1000;
}

const dataDir = mkdtempSync(join(tmpdir(), 'dsg-bench-ovh-'));
const home = join(dataDir, 'home');
let grid;
const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), DSG_LOG_LEVEL: 'warn' };
if (profDir) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${profDir}`.trim();
const { api, waitJob } = benchApi(root);
async function startGrid() {
  grid = spawn(process.execPath, [join(root, 'packages', 'cli', 'bin', 'dsg.js'), 'up', '--data-dir', join(dataDir, 'data'), '--port', '0', ...(isolation ? ['--isolation', isolation] : [])], {
    env, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
  });
  let errText = '';
  grid.stderr.on('data', (d) => { errText += d; if (errText.length > 20000) errText = errText.slice(-10000); });
  const credFile = join(dataDir, 'data', 'credentials.json');
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (grid.exitCode !== null) throw new Error(`dsg up exited (${grid.exitCode}):\n${errText}`);
    if (existsSync(credFile)) {
      try {
        const c = JSON.parse(readFileSync(credFile, 'utf8'));
        if (c.url && !c.url.endsWith(':0')) {
          const nodes = await api(c, 'GET', '/nodes').catch(() => null);
          if (nodes && nodes.items.some((n) => n.state === 'online')) return c;
        }
      } catch { /* not yet */ }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`grid did not come up within 60 s:\n${errText}`);
}

const out = { tasks: N, cores, isolation: isolation ?? 'default' };
try {
  out.xargs = N / xargs(N, cores);
  const c = await startGrid();
  await waitJob(c, (await api(c, 'POST', '/jobs', { spec: { name: 'warmup', command: ['true'], array: 50, resources: { cpu: 1, memory: '16Mi' } } })).job.id, 50);
  // The process tree: dsg up (coordinator) → agent → launcher (→ tasks).
  const coord = grid.pid;
  const agent = childrenOf(coord).find((p) => cmdline(p).some((a) => a === 'agent' || a.endsWith('agent-main.js')) ) ?? childrenOf(coord)[0];
  const launcher = agent ? childrenOf(agent).find((p) => cmdline(p).some((a) => a.endsWith('launcher-main.js'))) : undefined;
  const spawner = launcher ? childrenOf(launcher).find((p) => (cmdline(p)[0] ?? '').endsWith('dsg-spawn')) : undefined;
  const procs = { coordinator: coord, agent, launcher, 'dsg-spawn': spawner };
  say(`processes: ${JSON.stringify(procs)}`);
  let tracer = null;
  let traced = '';
  if (process.argv.includes('--fsyncs')) {
    tracer = spawn('strace', ['-f', '-c', '-e', 'trace=fsync,fdatasync', '-p', String(coord)], { stdio: ['ignore', 'ignore', 'pipe'] });
    tracer.stderr.on('data', (d) => (traced += d));
    await new Promise((r) => setTimeout(r, 500));
  }
  const before = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p ? cpuMs(p) : null]));
  const t0 = performance.now();
  const sub = await api(c, 'POST', '/jobs', { spec: { name: 'bench', command: ['true'], array: N, resources: { cpu: 1, memory: '16Mi' } } });
  const job = await waitJob(c, sub.job.id, 20);
  const secs = (performance.now() - t0) / 1000;
  if (job.counts.succeeded !== N) throw new Error(`grid run: ${job.counts.succeeded}/${N} succeeded`);
  out.dsg = N / secs;
  if (tracer) {
    tracer.kill('SIGINT');
    await new Promise((r) => tracer.on('exit', r));
    const calls = [...traced.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    out.fsyncsPerTask = calls / N;
  }
  out.cpuUsPerTask = {};
  for (const [k, p] of Object.entries(procs)) {
    const a = before[k]; const b = p ? cpuMs(p) : null;
    out.cpuUsPerTask[k] = a !== null && b !== null ? ((b - a) * 1000) / N : null;
  }
} finally {
  if (grid && grid.exitCode === null) {
    try { process.kill(-grid.pid, 'SIGTERM'); } catch { /* gone */ }
    await new Promise((r) => setTimeout(r, 6000));
    try { process.kill(-grid.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  rmSync(dataDir, { recursive: true, force: true });
}
if (process.argv.includes('--json')) console.log(JSON.stringify(out));
else {
  console.log(`${N} × true, ${cores} cores, isolation ${out.isolation}: xargs ${out.xargs.toFixed(0)}/s, DSG ${out.dsg.toFixed(0)}/s (${(out.dsg / out.xargs).toFixed(2)}×)`);
  if (out.fsyncsPerTask !== undefined) console.log(`  coordinator fsync/fdatasync calls per task: ${out.fsyncsPerTask.toFixed(3)}`);
  for (const [k, v] of Object.entries(out.cpuUsPerTask)) console.log(`  ${k.padEnd(12)} ${v === null ? '   —' : `${v.toFixed(0).padStart(5)} µs CPU per task`}`);
  if (profDir) console.log(`  CPU profiles: ${readdirSync(profDir).length} file(s) in ${profDir}`);
}
