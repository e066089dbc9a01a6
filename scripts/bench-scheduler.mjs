#!/usr/bin/env node
// `npm run bench -- --scheduler` (or `node scripts/bench-scheduler.mjs`): the pure scheduler alone, at grid scale.
// 1,000 nodes (mixed shapes: 4–64 cores, some with GPUs as devices, zone/tier labels) × 100,000 queued tasks in 1,000 jobs
// across 10 projects (some constrained, some preferring a label, some GPU — whole or shared by memory —, some throttled), with fair-share history and
// per-project limits on. Passes run as the dispatcher runs them (up to maxAssignments placements each, a snapshot
// holding each job's first few queued tasks), then a random 30 % of running tasks end, until the queue is empty.
// Measures placements/s, the cost per placement (pass time / placements, per pass: p50, p99), one placement alone
// (a pass with maxAssignments 1: the latency of placing the first task of a fresh snapshot), pass durations, and
// memory (RSS, heap). Not a test: it asserts nothing, but exits non-zero when a target is missed under --check.
//   Options: --nodes N (1000)  --tasks N (100000)  --projects N (10)  --json  --check
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { useSupportedNode } from './node-runtime.mjs';

await useSupportedNode(import.meta.url);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { schedule, seededRng, DEFAULT_SCHEDULER_CONFIG, tasksToRead, decayedUsage } = await import(pathToFileURL(join(root, 'packages/scheduler/dist/src/index.js')).href);
const { gpuDeviceUse } = await import(pathToFileURL(join(root, 'packages/core/dist/src/index.js')).href);
const arg = (name, def) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : def; };
const NODES = arg('--nodes', 1000);
const TASKS = arg('--tasks', 100_000);
const PROJECTS = arg('--projects', 10);
const asJson = process.argv.includes('--json');
const GiB = 1024 ** 3;
const rng = seededRng(42);
const pick = (xs) => xs[Math.floor(rng() * xs.length)];

// ── the grid ──
const shapes = [[4, 16, 0], [8, 32, 0], [16, 64, 0], [32, 128, 0], [64, 256, 0], [16, 64, 2], [32, 256, 4]];
const nodes = Array.from({ length: NODES }, (_, i) => {
  const [c, m, g] = shapes[i % 10 === 9 ? 5 + (i % 20 === 19 ? 1 : 0) : i % 5];
  return {
    id: `node-${String(i).padStart(5, '0')}`, name: `n${i}`,
    capacity: { cpuMillis: c * 1000, memoryBytes: m * GiB, gpus: g, diskBytes: 1000 * GiB },
    allocated: { cpuMillis: 0, memoryBytes: 0, gpus: 0, diskBytes: 0 },
    labels: { zone: `z${i % 4}`, tier: i % 3 === 0 ? 'fast' : 'std' },
    // Sandboxed nodes (a node without isolation runs only the operator's jobs), their GPUs as agents report them.
    facts: {
      hostname: `n${i}`, os: 'linux', arch: 'x64', cpuModel: 'bench', cores: c, memoryBytes: m * GiB, diskBytes: 1000 * GiB, isolation: 'sandbox+cgroups',
      gpus: Array.from({ length: g }, (_, k) => ({ index: k, model: g === 4 ? 'NVIDIA A100-SXM4-80GB' : 'NVIDIA GeForce RTX 4090', memoryBytes: (g === 4 ? 80 : 24) * GiB, uuid: `GPU-${i}-${k}` })),
    },
  };
});

// ── the queue: 1,000 jobs of 100 tasks (TASKS / 1000 each) ──
const JOBS = 1000;
const perJob = Math.ceil(TASKS / JOBS);
let seq = 0;
const jobs = Array.from({ length: JOBS }, (_, j) => {
  const kind = j % 20;
  const cpu = kind === 0 ? 8 : kind < 5 ? 2 : 1;
  const gpus = kind === 7 ? 1 : 0;
  const project = `proj${j % PROJECTS}`;
  return {
    jobId: `job-${String(j).padStart(5, '0')}`, project, priority: j % 50 === 0 ? 2 : 1,
    resources: { cpuMillis: cpu * 1000, memoryBytes: cpu * 2 * GiB, gpus, diskBytes: GiB },
    typicalRunMs: kind === 3 ? 20 : null,
    constraints: kind === 11 ? [{ key: 'zone', op: 'in', values: ['z1', 'z2'] }] : [],
    prefer: kind === 13 ? [{ key: 'tier', op: 'in', values: ['fast'] }] : [],
    parallelism: kind === 17 ? 20 : null,
    // Every other GPU job asks for a data-centre GPU (the gpu filter against each node's GPUs); some share a GPU
    // by memory (8Gi each: packed per device).
    ...(gpus > 0 && j % 40 === 7 ? { gpu: { memoryBytes: 40 * GiB, models: ['A100', 'H100'] } } : {}),
    ...(kind === 9 ? { gpu: { memoryBytes: 8 * GiB, models: null, shared: true, count: 1 } } : {}),
    total: perJob, next: 0, active: 0, firstSeq: (seq += perJob) - perJob,
  };
});
const weights = Object.fromEntries(Array.from({ length: PROJECTS }, (_, p) => [`proj${p}`, 1 + (p % 3)]));
const config = { ...DEFAULT_SCHEDULER_CONFIG, projectWeights: weights, projectLimits: { proj0: { maxRunningTasks: 2000 }, proj1: { maxGpus: 20 } } };

// ── simulation state ──
const byTask = new Map(); // taskId → { job, node }
const running = []; // taskIds on nodes
const alloc = new Map(nodes.map((n) => [n.id, { cpuMillis: 0, memoryBytes: 0, gpus: 0, diskBytes: 0 }]));
const held = new Map(); // nodeId → taskId → GPU devices it holds
const add = (a, b, s) => ({ cpuMillis: a.cpuMillis + s * b.cpuMillis, memoryBytes: a.memoryBytes + s * b.memoryBytes, gpus: a.gpus + s * b.gpus, diskBytes: a.diskBytes + s * b.diskBytes });
const history = [];
let now = 0;

function snapshot() {
  const live = jobs.filter((j) => j.next < j.total);
  // Each GPU node's devices with what its tasks hold (the dispatcher derives the same from active attempts).
  const snapNodes = nodes.map((n) => ({ ...n, allocated: alloc.get(n.id), ...(n.facts.gpus.length > 0 ? { gpuDevices: gpuDeviceUse(n.facts.gpus, held.get(n.id)?.values() ?? []) } : {}) }));
  // Read as the dispatcher reads: tasksToRead decides how many tasks of each job the snapshot holds.
  const limits = tasksToRead(live.map((j) => ({ resources: j.resources, typicalRunMs: j.typicalRunMs, queued: j.total - j.next })), snapNodes, config);
  const usage = new Map(); const active = new Map();
  for (const t of running) {
    const { job } = byTask.get(t);
    usage.set(job.project, add(usage.get(job.project) ?? { cpuMillis: 0, memoryBytes: 0, gpus: 0, diskBytes: 0 }, job.resources, 1));
    const a = active.get(job.project) ?? { tasks: 0, gpus: 0 };
    active.set(job.project, { tasks: a.tasks + 1, gpus: a.gpus + job.resources.gpus });
  }
  return {
    nodes: snapNodes,
    jobs: live.map((j, i) => ({
      jobId: j.jobId, project: j.project, priority: j.priority, resources: j.resources, typicalRunMs: j.typicalRunMs,
      constraints: j.constraints, prefer: j.prefer, parallelism: j.parallelism, active: j.active, ...(j.gpu ? { gpu: j.gpu } : {}),
      seq: j.firstSeq + j.next, queued: j.total - j.next,
      tasks: Array.from({ length: Math.min(limits[i], j.total - j.next) }, (_, k) => ({ taskId: `${j.jobId}.${j.next + k}`, seq: j.firstSeq + j.next + k })),
    })),
    projectUsage: usage, projectActive: active, projectHistory: decayedUsage(history, now, 3_600_000),
  };
}

const jobOf = new Map(jobs.map((j) => [j.jobId, j]));
const passes = [];
const perPlacementUs = [];
let placed = 0;
let schedMs = 0;
let maxRss = 0, maxHeap = 0;
const t0 = performance.now();
for (let pass = 0; pass < 10_000; pass++) {
  const snap = snapshot();
  if (snap.jobs.length === 0) break;
  const s = performance.now();
  const plan = schedule(snap, config, { now, rng: seededRng(pass) });
  const ms = performance.now() - s;
  schedMs += ms;
  passes.push({ ms, placed: plan.assignments.length, jobs: snap.jobs.length });
  if (plan.assignments.length > 0) perPlacementUs.push((ms * 1000) / plan.assignments.length);
  for (const a of plan.assignments) {
    const jobId = a.taskId.slice(0, a.taskId.lastIndexOf('.'));
    const job = jobOf.get(jobId);
    job.next++; job.active++;
    byTask.set(a.taskId, { job, node: a.nodeId, start: now });
    running.push(a.taskId);
    alloc.set(a.nodeId, add(alloc.get(a.nodeId), job.resources, 1));
    if (a.gpus) {
      if (!held.has(a.nodeId)) held.set(a.nodeId, new Map());
      held.get(a.nodeId).set(a.taskId, a.gpus);
    }
  }
  placed += plan.assignments.length;
  const m = process.memoryUsage();
  maxRss = Math.max(maxRss, m.rss); maxHeap = Math.max(maxHeap, m.heapUsed);
  // Time moves 10 s a pass; 30 % of running tasks end.
  now += 10_000;
  for (let i = running.length - 1; i >= 0; i--) {
    if (rng() >= 0.3) continue;
    const t = running[i];
    const r = byTask.get(t);
    r.job.active--;
    alloc.set(r.node, add(alloc.get(r.node), r.job.resources, -1));
    held.get(r.node)?.delete(t);
    history.push({ project: r.job.project, resources: r.job.resources, startedAt: r.start, finishedAt: now });
    byTask.delete(t);
    running[i] = running[running.length - 1]; running.pop();
  }
  if (plan.assignments.length === 0 && running.length === 0) break; // nothing can ever place: stop
}
const wall = performance.now() - t0;

// One placement alone: a pass allowed one assignment, on the initial (empty) grid, full queue.
for (const j of jobs) { j.next = 0; j.active = 0; }
for (const n of nodes) alloc.set(n.id, { cpuMillis: 0, memoryBytes: 0, gpus: 0, diskBytes: 0 });
running.length = 0; history.length = 0;
const fresh = snapshot();
const single = [];
for (let i = 0; i < 50; i++) {
  const s = performance.now();
  schedule(fresh, { ...config, maxAssignments: 1 }, { now, rng: seededRng(i) });
  single.push(performance.now() - s);
}

const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN; };
const passMs = passes.map((p) => p.ms);
const result = {
  nodes: NODES, tasks: jobs.reduce((a, j) => a + j.total, 0), projects: PROJECTS, passes: passes.length, placed,
  placementsPerSecond: (placed / schedMs) * 1000,
  perPlacementUsP50: q(perPlacementUs, 0.5), perPlacementUsP99: q(perPlacementUs, 0.99),
  passMsP50: q(passMs, 0.5), passMsP99: q(passMs, 0.99), passMsMax: Math.max(...passMs),
  singlePlacementMsP50: q(single, 0.5), singlePlacementMsP99: q(single, 0.99),
  maxRssMiB: maxRss / 2 ** 20, maxHeapMiB: maxHeap / 2 ** 20, wallSeconds: wall / 1000,
};
if (asJson) console.log(JSON.stringify(result));
else {
  const r = (x, d = 1) => x.toFixed(d);
  console.log(`\nScheduler alone: ${NODES} nodes × ${result.tasks} queued tasks (${JOBS} jobs, ${PROJECTS} projects), node ${process.version}, ${new Date().toISOString()}`);
  console.log('| measure                                   |        value |');
  console.log('|-------------------------------------------|-------------:|');
  console.log(`| placements (all tasks placed)             | ${String(placed).padStart(12)} |`);
  console.log(`| passes                                    | ${String(passes.length).padStart(12)} |`);
  console.log(`| placements/s (in schedule())              | ${r(result.placementsPerSecond, 0).padStart(12)} |`);
  console.log(`| per placement, p50 (pass ms / placed)     | ${(r(result.perPlacementUsP50) + ' µs').padStart(12)} |`);
  console.log(`| per placement, p99                        | ${(r(result.perPlacementUsP99) + ' µs').padStart(12)} |`);
  console.log(`| one placement alone (fresh pass), p50     | ${(r(result.singlePlacementMsP50, 2) + ' ms').padStart(12)} |`);
  console.log(`| one placement alone, p99                  | ${(r(result.singlePlacementMsP99, 2) + ' ms').padStart(12)} |`);
  console.log(`| pass duration p50 / p99 / max             | ${`${r(result.passMsP50, 0)}/${r(result.passMsP99, 0)}/${r(result.passMsMax, 0)} ms`.padStart(12)} |`);
  console.log(`| max RSS / heap used                       | ${`${r(result.maxRssMiB, 0)}/${r(result.maxHeapMiB, 0)} MiB`.padStart(12)} |`);
  console.log(`| wall (incl. simulation)                   | ${(r(result.wallSeconds) + ' s').padStart(12)} |`);
}
if (process.argv.includes('--check') && (result.placementsPerSecond < 1000 || result.perPlacementUsP99 > 1000)) {
  console.error('[bench] scheduler target missed: want ≥ 1,000 placements/s and p99 ≤ 1 ms per placement');
  process.exit(1);
}
