#!/usr/bin/env node
// Where the grid's own time goes per task: N × `true` through `dsg up`, with the CPU time (user + system, from
// /proc/<pid>/stat) that each grid process — coordinator, agent, launcher, native starter — spent during the run, divided by N.
// CPU per task is far less sensitive to a busy machine than tasks/s, and it is what W2 (CPU-bound tasks) pays.
// Linux only. Not a test: asserts nothing.
//   Options: --tasks N (default 2000)  --isolation none|cgroups|sandbox  --cpu-prof DIR (V8 profiles of all three; --cpu-prof-interval µs, default 1000)
//            --fsyncs (count the coordinator's fsync/fdatasync calls during the run with strace: commits per task;
//            with DSG_STRACE_ALL=1 every system call of the coordinator is counted and printed, =agent the agent's)
//            --cpu-task MS (each task an awk loop of ~MS ms of CPU instead of `true`, as W2; prints makespan vs ideal)
//            --threads (also CPU per task of each thread of the coordinator and the agent: main thread, libuv's pool, V8)
//            --idle S (seconds of idle grid measured first, default 3)
//            --task-cpu C (each task declares C CPUs, default 1: with less, more run at once than there are cores)  --warmup N (tasks of `true` run first, default 50)  --json
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
const cpuTaskMs = argOf('--cpu-task') ? Number(argOf('--cpu-task')) : 0;
const say = (m) => process.stderr.write(`[bench-overhead] ${m}\n`);
const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** CPU ms of one process (user + system, or the one named), or null once it is gone. */
function cpuMs(pid, part) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const ticks = part === 'user' ? Number(f[11]) : part === 'sys' ? Number(f[12]) : Number(f[11]) + Number(f[12]);
    return (ticks * 1000) / TICK;
  } catch { return null; }
}
/** CPU ms of every thread of a process, keyed by thread name (threads of one name summed: libuv's pool, V8's workers). */
function threadCpuMs(pid) {
  const out = {};
  let tids = [];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const tid of tids) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim().replace(/\d+$/, '#');
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + ((Number(f[11]) + Number(f[12])) * 1000) / TICK;
    } catch { /* exited */ }
  }
  return out;
}
/** Busy CPU ms of the whole machine (all CPUs: everything but idle and iowait), from /proc/stat. */
function machineBusyMs() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return ((user + nice + system + irq + softirq + steal) * 1000) / TICK;
}
function childrenOf(pid) {
  try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
}
function cmdline(pid) {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { return []; }
}

// As bench.mjs's W2: an awk loop calibrated to ~cpuTaskMs of CPU on this machine.
const awkTask = (iters) => ['awk', `BEGIN { s = 0; for (i = 0; i < ${iters}; i++) s += i; }`];
function timeSerial(argv, n) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) if (spawnSync(argv[0], argv.slice(1), { stdio: 'ignore' }).status !== 0) throw new Error(`${argv.join(' ')} failed`);
  return (performance.now() - t0) / n;
}
let taskArgv = ['true'];
if (cpuTaskMs > 0) {
  let iters = 200_000;
  for (let round = 0; round < 4; round++) iters = Math.max(1000, Math.round((iters * cpuTaskMs) / Math.max(timeSerial(awkTask(iters), 3), 1)));
  taskArgv = awkTask(iters);
}

function xargs(n, parallel) {
  const t0 = performance.now();
  const input = Array.from({ length: n }, (_, i) => String(i)).join('\n');
  const r = spawnSync('xargs', ['-P', String(parallel), '-I{}', ...taskArgv], { input, stdio: ['pipe', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error('xargs failed');
  return (performance.now() - t0) / 1000;
}

const dataDir = mkdtempSync(join(tmpdir(), 'dsg-bench-ovh-'));
const home = join(dataDir, 'home');
let grid;
const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), DSG_LOG_LEVEL: 'warn' };
if (profDir) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${profDir} --cpu-prof-interval=${argOf('--cpu-prof-interval') ?? 1000}`.trim();
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
  if (cpuTaskMs > 0) {
    out.taskMs = timeSerial(taskArgv, 10);
    out.ideal = (out.taskMs * N) / cores / 1000;
  }
  out.xargs = N / xargs(N, cores);
  const c = await startGrid();
  await waitJob(c, (await api(c, 'POST', '/jobs', { spec: { name: 'warmup', command: ['true'], array: Number(argOf('--warmup') ?? 50), resources: { cpu: 1, memory: '16Mi' } } })).job.id, 50);
  // The process tree: dsg up (coordinator) → agent → launcher (→ tasks).
  const coord = grid.pid;
  const agent = childrenOf(coord).find((p) => cmdline(p).some((a) => a === 'agent' || a.endsWith('agent-main.js')) ) ?? childrenOf(coord)[0];
  const launcher = agent ? childrenOf(agent).find((p) => cmdline(p).some((a) => a.endsWith('launcher-main.js'))) : undefined;
  // dsg-spawn is the launcher's child, or the agent's own when the agent starts tasks in-process.
  const spawner = [launcher, agent].flatMap((parent) => (parent ? childrenOf(parent) : [])).find((p) => (cmdline(p)[0] ?? '').endsWith('dsg-spawn'));
  const procs = { coordinator: coord, agent, launcher, 'dsg-spawn': spawner };
  say(`processes: ${JSON.stringify(procs)}`);
  let tracer = null;
  let traced = '';
  if (process.argv.includes('--fsyncs')) {
    tracer = spawn('strace', ['-f', '-c', ...(process.env.DSG_STRACE_ALL ? [] : ['-e', 'trace=fsync,fdatasync']), '-p', String(process.env.DSG_STRACE_ALL === 'agent' ? procs.agent : coord)], { stdio: ['ignore', 'ignore', 'pipe'] });
    tracer.stderr.on('data', (d) => (traced += d));
    await new Promise((r) => setTimeout(r, 500));
  }
  // What the grid spends with nothing to do (heartbeats, probes, timers): per second, over a few idle seconds.
  const idleSecs = Number(argOf('--idle') ?? 3);
  const idle0 = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p ? cpuMs(p) : null]));
  await new Promise((r) => setTimeout(r, idleSecs * 1000));
  out.idleMsPerSec = {};
  for (const [k, p] of Object.entries(procs)) { const a = idle0[k]; const b = p ? cpuMs(p) : null; out.idleMsPerSec[k] = a !== null && b !== null ? (b - a) / idleSecs : null; }
  const before = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p ? cpuMs(p) : null]));
  const beforeThreads = Object.fromEntries(['coordinator', 'agent'].map((k) => [k, procs[k] ? threadCpuMs(procs[k]) : {}]));
  const beforeSys = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p ? cpuMs(p, 'sys') : null]));
  const busy0 = machineBusyMs();
  const t0 = performance.now();
  const sub = await api(c, 'POST', '/jobs', { spec: { name: 'bench', command: taskArgv, array: N, resources: { cpu: Number(argOf('--task-cpu') ?? 1), memory: '16Mi' } } });
  const job = await waitJob(c, sub.job.id, cpuTaskMs > 0 ? 5 : 20);
  const secs = (performance.now() - t0) / 1000;
  if (job.counts.succeeded !== N) throw new Error(`grid run: ${job.counts.succeeded}/${N} succeeded`);
  out.dsg = N / secs;
  out.machineMsPerTask = (machineBusyMs() - busy0) / N;
  if (tracer) {
    tracer.kill('SIGINT');
    await new Promise((r) => tracer.on('exit', r));
    const calls = [...traced.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    out.fsyncsPerTask = calls / N;
    if (process.env.DSG_STRACE_ALL) process.stderr.write(traced);
  }
  if (process.argv.includes('--threads')) {
    out.threadUsPerTask = {};
    for (const k of ['coordinator', 'agent']) {
      const after = procs[k] ? threadCpuMs(procs[k]) : {};
      out.threadUsPerTask[k] = Object.fromEntries(Object.entries(after).map(([t, ms]) => [t, ((ms - (beforeThreads[k][t] ?? 0)) * 1000) / N]).filter(([, us]) => us > 0));
    }
  }
  out.cpuUsPerTask = {};
  out.sysUsPerTask = {};
  for (const [k, p] of Object.entries(procs)) {
    const a = before[k]; const b = p ? cpuMs(p) : null;
    out.cpuUsPerTask[k] = a !== null && b !== null ? ((b - a) * 1000) / N : null;
    const as = beforeSys[k]; const bs = p ? cpuMs(p, 'sys') : null;
    out.sysUsPerTask[k] = as !== null && bs !== null ? ((bs - as) * 1000) / N : null;
  }
} finally {
  // With --cpu-prof, stop the agent alone first: a profile is written only by a process that exits by itself.
  const agentPid = profDir && grid ? childrenOf(grid.pid)[0] : undefined;
  if (agentPid) {
    try { process.kill(agentPid, 'SIGTERM'); } catch { /* gone */ }
    for (let i = 0; i < 100 && existsSync(`/proc/${agentPid}`); i++) await new Promise((r) => setTimeout(r, 100));
  }
  if (grid && grid.exitCode === null) {
    try { process.kill(-grid.pid, 'SIGTERM'); } catch { /* gone */ }
    await new Promise((r) => setTimeout(r, 6000));
    try { process.kill(-grid.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  rmSync(dataDir, { recursive: true, force: true });
}
if (process.argv.includes('--json')) console.log(JSON.stringify(out));
else {
  console.log(`${N} × ${cpuTaskMs > 0 ? `~${out.taskMs.toFixed(1)} ms of CPU (awk)` : 'true'}, ${cores} cores, isolation ${out.isolation}: xargs ${out.xargs.toFixed(0)}/s, DSG ${out.dsg.toFixed(0)}/s (${(out.dsg / out.xargs).toFixed(2)}×)`);
  if (cpuTaskMs > 0) console.log(`  makespan vs ideal (${out.ideal.toFixed(2)} s): xargs ${(N / out.xargs / out.ideal).toFixed(3)}×, DSG ${(N / out.dsg / out.ideal).toFixed(3)}×`);
  console.log(`  whole machine: ${out.machineMsPerTask.toFixed(2)} ms of busy CPU per task${cpuTaskMs > 0 ? ` (${(out.machineMsPerTask - out.taskMs).toFixed(2)} ms beyond the serial task time; this includes the kernel's own threads: journal commits, softirqs)` : ''}`);
  if (out.fsyncsPerTask !== undefined) console.log(`  coordinator fsync/fdatasync calls per task: ${out.fsyncsPerTask.toFixed(3)}`);
  for (const [k, v] of Object.entries(out.cpuUsPerTask)) {
    const sys = out.sysUsPerTask[k]; const idle = out.idleMsPerSec[k];
    console.log(`  ${k.padEnd(12)} ${v === null ? '   —' : `${v.toFixed(0).padStart(5)} µs CPU per task (${sys === null ? '—' : sys.toFixed(0)} µs system); idle ${idle === null ? '—' : idle.toFixed(1)} ms CPU/s`}`);
  }
  for (const [k, threads] of Object.entries(out.threadUsPerTask ?? {})) {
    console.log(`  ${k} by thread: ${Object.entries(threads).sort((a, b) => b[1] - a[1]).map(([t, us]) => `${t} ${us.toFixed(0)} µs`).join(', ')}`);
  }
  if (profDir) console.log(`  CPU profiles: ${readdirSync(profDir).length} file(s) in ${profDir}`);
}
