#!/usr/bin/env node
// `npm run bench:scale`: the scale and stall targets of issue 12, each against a real coordinator process on a real
// SQLite file (under the system temp dir, deleted at the end), with the measured value next to its target.
//
//   bulk     an array of 1,000,000 tasks accepted (POST /api/v1/jobs → 201), and a submit of 100,000 bad list
//            values answered with a small error, fast
//   depth    queued tasks across 1,000 jobs at 1,000 / 1,000,000 / --depth (default 10,000,000): coordinator RSS,
//            database size, GET /api/v1/jobs p99, `dsg jobs` p99 (a whole CLI process), the scheduling pass's mean
//            time (dsg_scheduler_pass_duration_seconds): passes that only read the queue (no node connected, one
//            per submit: the flat-with-depth measure) and passes placing tasks for one simulated agent that takes
//            and finishes 100 tasks; and the restart time (SIGTERM → /readyz answering) with that queue
//   stalls   GET /api/v1/health polled back to back while: a job of 100,000 queued tasks is cancelled; a node
//            holding 10,000 attempts is lost (its agent vanishes; node timeout 8 s) and they are requeued;
//            retention removes 400,000 finished tasks (POST /api/v1/gc)
//
// Options: --only bulk,depth,stalls   --depth N (largest queue; default 10000000)   --bulk N (default 1000000)
//          --json (one JSON line at the end)
// Time and disk (2-core VM): the 10,000,000 level fills in ~2.5 min and takes 2.5 GB; the whole run ~12 min.
// `--depth 1000000` skips the 10M level (~1 min in all). Exits 1 when a target is missed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { useSupportedNode } from './node-runtime.mjs';

await useSupportedNode(import.meta.url);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const arg = (name, def) => { const i = argv.indexOf(name); return i >= 0 ? Number(argv[i + 1]) : def; };
const DEPTH = arg('--depth', 10_000_000);
const BULK = arg('--bulk', 1_000_000);
const onlyAt = argv.indexOf('--only');
const only = new Set(onlyAt >= 0 ? argv[onlyAt + 1].split(',') : ['bulk', 'depth', 'stalls']);
const asJson = argv.includes('--json');
for (const [k, v] of [['--depth', DEPTH], ['--bulk', BULK]]) {
  if (!Number.isInteger(v) || v < 1000 || v > 50_000_000) { console.error(`${k}: expected a whole number from 1000 to 50000000, got ${v}`); process.exit(2); }
}
const say = (m) => process.stderr.write(`[bench:scale] ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => { if (xs.length === 0) return NaN; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const ms = (x) => `${x.toFixed(1)} ms`;
const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;

const ensure = spawnSync(process.execPath, [join(root, 'scripts', 'ensure.mjs'), '--quiet'], { stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);
const { default: WebSocket } = await import(pathToFileURL(join(root, 'node_modules', 'ws', 'wrapper.mjs')).href);
const coordMain = pathToFileURL(join(root, 'packages', 'coordinator', 'dist', 'src', 'index.js')).href;
const dsgBin = join(root, 'packages', 'cli', 'bin', 'dsg.js');

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

// ── a coordinator in its own process (its RSS read from /proc), restartable on the same data dir ──
class Coordinator {
  constructor(dir, extra = {}) {
    this.dir = dir;
    this.options = {
      dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0, logLevel: 'error', advertise: false,
      maxQueuedTasks: 100_000_000, maxQueuedTasksPerProject: 100_000_000, rateLimits: { perTokenPerSecond: 0 },
      ...extra,
    };
  }
  async start() {
    if (!this.options.port) this.options.port = await freePort();
    const t0 = performance.now();
    this.proc = spawn(process.execPath, ['--max-old-space-size=4096', '--input-type=module', '-e',
      `const m = await import(${JSON.stringify(coordMain)}); const c = await m.startCoordinator(${JSON.stringify(this.options)}); process.on('SIGTERM', async () => { await c.close(); process.exit(0); });`,
    ], { stdio: ['ignore', 'inherit', 'inherit'] });
    this.base = `http://127.0.0.1:${this.options.port}`;
    const credFile = join(this.options.dataDir, 'credentials.json');
    for (let i = 0; ; i++) {
      if (this.proc.exitCode !== null) throw new Error(`the coordinator exited (${this.proc.exitCode})`);
      if (i > 6000) throw new Error('the coordinator did not get ready within 60 s');
      if (!this.creds && existsSync(credFile)) try { this.creds = JSON.parse(readFileSync(credFile, 'utf8')); } catch { /* being written */ }
      if (this.creds) {
        const r = await fetch(`${this.base}/readyz`).catch(() => null);
        if (r?.ok) break;
      }
      await sleep(10);
    }
    return performance.now() - t0;
  }
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000)]);
    if (this.proc.exitCode === null) { this.proc.kill('SIGKILL'); await exited; }
  }
  rss() { return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.proc.pid}/status`, 'utf8'))[1]) * 1024; }
  dbBytes() {
    let n = 0;
    for (const f of readdirSync(this.options.dataDir)) if (/\.(db|sqlite)(-wal|-shm)?$/.test(f)) n += statSync(join(this.options.dataDir, f)).size;
    return n;
  }
  async api(method, path, body) {
    const r = await fetch(`${this.base}${path.startsWith('/') && !path.startsWith('/api') && !path.startsWith('/metrics') ? `/api/v1${path}` : path}`, {
      method, headers: { authorization: `Bearer ${this.creds.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, bytes: text.length, json: text.startsWith('{') ? JSON.parse(text) : text };
  }
  async ok(method, path, body) {
    const r = await this.api(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json).slice(0, 500)}`);
    return r.json;
  }
  /** The scheduling pass histogram's sum (s) and count. */
  async passes() {
    const text = (await this.api('GET', '/metrics')).json;
    const num = (name) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? 0);
    return { sum: num('dsg_scheduler_pass_duration_seconds_sum'), count: num('dsg_scheduler_pass_duration_seconds_count') };
  }
}

/** GET /api/v1/health back to back until `stop()`; latencies in ms. */
function pollHealth(c) {
  const lat = [];
  let on = true;
  const done = (async () => {
    while (on) {
      const t = performance.now();
      const r = await c.api('GET', '/health');
      if (r.status !== 200) throw new Error(`health: ${r.status}`);
      lat.push(performance.now() - t);
      await sleep(2);
    }
  })();
  return { lat, stop: async () => { on = false; await done; return lat; } };
}

/**
 * One simulated agent (the agent protocol over a WebSocket; runs nothing). `finish`: report each task done at once,
 * the first `limit` of them (the rest it keeps, as running).
 */
function simAgent(c, { cores, finish, limit = Infinity }) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${c.base.replace('http', 'ws')}/api/v1/agent/connect`, { headers: { authorization: `Bearer ${c.creds.joinToken}` } });
    const a = { ws, assigned: 0, finished: 0, heartbeat: null, running: new Set() };
    const send = (m) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m)); };
    ws.on('open', () => send({
      type: 'hello', protocol: 1, nodeId: null, name: `sim-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, agentVersion: 'bench', running: [], labels: {},
      capacity: { cpuMillis: cores * 1000, memoryBytes: 2 ** 50, gpus: 0, diskBytes: 0 },
      facts: { hostname: 'sim', os: 'linux', arch: 'x64', cpuModel: 'simulated', cores, memoryBytes: 2 ** 50, diskBytes: 0, gpus: [], isolation: 'sandbox+cgroups' },
    }));
    // A frame holds one message or an array of them (the coordinator sends a turn's messages together).
    ws.on('message', (raw) => { const f = JSON.parse(String(raw)); for (const m of Array.isArray(f) ? f : [f]) onMessage(m); });
    const onMessage = (m) => {
      if (m.type === 'welcome') {
        a.heartbeat = setInterval(() => send({ type: 'heartbeat', running: [...a.running] }), m.heartbeatIntervalMs);
        resolve(a);
      } else if (m.type === 'assign') {
        const now = Date.now();
        a.assigned += m.attempts.length;
        send(m.attempts.map((at) => ({ type: 'started', attemptId: at.attemptId, at: now })));
        for (const at of m.attempts) {
          if (finish && a.finished < limit) { a.finished++; send({ type: 'finished', attemptId: at.attemptId, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: now, finishedAt: now, outputs: [] }); }
          else a.running.add(at.attemptId);
        }
      } else if (m.type === 'cancel') for (const id of m.attemptIds) a.running.delete(id);
    };
    ws.on('error', reject);
  });
}
const dropAgent = (a) => { clearInterval(a.heartbeat); a.ws.terminate(); };

const rows = [];
let missed = 0;
/** A table row: `ok` true/false decides PASS/MISS; null: printed only. */
function row(name, value, target, ok) {
  rows.push({ name, value, target, verdict: ok === null ? '' : ok ? 'PASS' : 'MISS' });
  if (ok === false) missed++;
  say(`${name}: ${value} (target ${target})${ok === null ? '' : ok ? ' PASS' : ' MISS'}`);
}
const spec = (name, array, extra = {}) => ({ spec: { name, command: ['true'], array, resources: { cpu: 1, memory: '1Mi' }, ...extra } });
const dirs = [];
const coordinators = [];
async function freshCoordinator(extra) {
  const dir = mkdtempSync(join(tmpdir(), 'dsg-bench-scale-'));
  dirs.push(dir);
  const c = new Coordinator(dir, extra);
  coordinators.push(c);
  await c.start();
  return c;
}

try {
  // ── bulk submit ──
  if (only.has('bulk')) {
    const c = await freshCoordinator();
    const t0 = performance.now();
    const r = await c.api('POST', '/jobs', spec('bulk', BULK));
    const took = performance.now() - t0;
    if (r.status !== 201) throw new Error(`bulk submit: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
    row(`bulk submit: array of ${BULK.toLocaleString('en')} tasks accepted`, `${(took / 1000).toFixed(2)} s`, '≤ 3 s', took <= 3000);
    const bad = Array.from({ length: 100_000 }, (_, i) => ({ value: i }));
    const t1 = performance.now();
    const e = await c.api('POST', '/jobs', { spec: { name: 'bad', command: ['true'], array: bad } });
    const errMs = performance.now() - t1;
    if (e.status !== 400) throw new Error(`bad submit: expected 400, got ${e.status}`);
    row('invalid submit, 100,000 bad list values: error size', `${(e.bytes / 1024).toFixed(1)} KiB`, '≤ 64 KiB', e.bytes <= 64 * 1024);
    row('invalid submit, 100,000 bad list values: answered in', ms(errMs), '≤ 500 ms', errMs <= 500);
    await c.stop();
  }

  // ── queue depth ──
  if (only.has('depth')) {
    const levels = [...new Set([1000, 1_000_000, DEPTH].filter((n) => n <= DEPTH))];
    for (const level of levels) {
      const jobs = Math.min(1000, level);
      const per = Math.floor(level / jobs);
      const c = await freshCoordinator();
      const label = level.toLocaleString('en');
      const t0 = performance.now();
      for (let j = 0; j < jobs; j++) {
        await c.ok('POST', '/jobs', spec(`depth-${j}`, per));
        if (j % 100 === 99) say(`${label}: ${((j + 1) * per).toLocaleString('en')} tasks queued in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      }
      const fillS = (performance.now() - t0) / 1000;
      row(`${label} queued (${jobs} jobs): filled in`, `${fillS.toFixed(1)} s (${Math.round((jobs * per) / fillS).toLocaleString('en')}/s)`, 'printed', null);
      await sleep(500);
      const rss = c.rss();
      row(`${label} queued: coordinator RSS / database`, `${mib(rss)} / ${mib(c.dbBytes())}`, '≤ 1 GiB RSS', rss <= 2 ** 30);

      const lat = [];
      for (let i = 0; i < 200; i++) { const t = performance.now(); await c.ok('GET', '/jobs'); lat.push(performance.now() - t); }
      row(`${label} queued: GET /api/v1/jobs p50 / p99`, `${ms(pct(lat, 50))} / ${ms(pct(lat, 99))}`, 'p99 < 50 ms', pct(lat, 99) < 50);
      const cli = [];
      const env = { ...process.env, DSG_COORDINATOR: c.base, DSG_TOKEN: c.creds.adminToken, HOME: c.dir, XDG_CONFIG_HOME: join(c.dir, 'cfg') };
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        const r = spawnSync(process.execPath, [dsgBin, 'jobs'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
        if (r.status !== 0) throw new Error(`dsg jobs: ${r.stderr}`);
        cli.push(performance.now() - t);
      }
      // The whole CLI process: Node's own start-up is most of it (see `npm run bench`, CLI start-up).
      row(`${label} queued: \`dsg jobs\` (whole process) p50 / p99`, `${ms(pct(cli, 50))} / ${ms(pct(cli, 99))}`, 'printed (API p99 above)', null);

      // The queue's part of a pass, alone: with no node connected, each submit of a one-task job triggers a pass
      // that reads every job with queued tasks (a row each), schedules, and places nothing — the same work at
      // every depth but the depth itself, so this is the "flat with depth" measure.
      const q0 = await c.passes();
      for (let i = 0; i < 50; i++) { await c.ok('POST', '/jobs', spec(`probe-${i}`, 1)); await sleep(20); }
      const q1 = await c.passes();
      const qn = q1.count - q0.count;
      const qMean = qn > 0 ? ((q1.sum - q0.sum) / qn) * 1000 : NaN;
      rows.push({ passMean: qMean, level });
      row(`${label} queued: scheduling pass reading the queue (no node), mean of ${qn}`, ms(qMean), 'flat with depth', null);

      // Passes that place: one agent with one core takes a task, finishes it at once, takes the next: a pass each.
      // The first 100 tasks only, at every depth: at 1,000 queued in 1,000 one-task jobs, finishing more would empty
      // jobs and make its passes cheaper than the depth alone would (a pass reads a row per job with queued tasks).
      // Printed, not compared: jobs of many tasks learn their run time and get prefetch (several placements per
      // pass), one-task jobs cannot.
      const before = await c.passes();
      const agent = await simAgent(c, { cores: 1, finish: true, limit: 100 });
      for (const t0 = performance.now(); agent.finished < 100 && performance.now() - t0 < 10_000;) await sleep(50);
      await sleep(200);
      dropAgent(agent);
      const after = await c.passes();
      const n = after.count - before.count;
      const mean = n > 0 ? ((after.sum - before.sum) / n) * 1000 : NaN;
      row(`${label} queued: scheduling pass placing tasks for one agent, mean of ${n}`, ms(mean), 'printed', null);

      await c.stop();
      const restartMs = await c.start();
      row(`${label} queued: restart (SIGTERM → /readyz)`, `${(restartMs / 1000).toFixed(2)} s`, 'printed', null);
      row(`${label} queued: RSS after restart`, mib(c.rss()), '≤ 1 GiB', c.rss() <= 2 ** 30);
      await c.stop();
      rmSync(c.dir, { recursive: true, force: true });
    }
    const passes = rows.filter((r) => r.passMean !== undefined);
    if (passes.length >= 2) {
      const first = passes[0].passMean;
      const last = passes[passes.length - 1].passMean;
      const ratio = last / first;
      row(`scheduling pass reading the queue at ${passes[passes.length - 1].level.toLocaleString('en')} vs ${passes[0].level.toLocaleString('en')} queued`, `${ratio.toFixed(2)}×`, '≤ 2× (flat)', ratio <= 2);
    }
  }

  // ── no long stalls ──
  if (only.has('stalls')) {
    const c = await freshCoordinator({ nodeTimeoutSeconds: 8, retention: { maxAgeDays: 1 / 86_400, intervalMinutes: 600, graceMinutes: 1 } });
    // Cancel a job of 100,000 queued tasks.
    const big = (await c.ok('POST', '/jobs', spec('cancel-me', 100_000))).job;
    await sleep(200);
    let h = pollHealth(c);
    await sleep(100);
    const t0 = performance.now();
    await c.ok('POST', `/jobs/${big.id}/cancel`);
    const cancelMs = performance.now() - t0;
    let lat = await h.stop();
    row(`cancel 100,000 queued tasks (${(cancelMs / 1000).toFixed(2)} s): health p99 / max`, `${ms(pct(lat, 99))} / ${ms(Math.max(...lat))}`, 'p99 ≤ 100 ms', pct(lat, 99) <= 100);

    // A node holding 10,000 attempts is lost.
    const agent = await simAgent(c, { cores: 10_000, finish: false });
    // Two jobs of 5,000: a dispatch pass places at most 5,000 tasks (maxAssignments).
    const heldJobs = [];
    for (let k = 1; k <= 2; k++) {
      heldJobs.push((await c.ok('POST', '/jobs', spec(`held-${k}`, 5_000))).job);
      for (let i = 0; agent.assigned < k * 5_000; i++) {
        if (i > 600) throw new Error(`only ${agent.assigned} of ${k * 5_000} tasks reached the simulated agent in 60 s`);
        await sleep(100);
      }
    }
    await sleep(1500); // the started reports committed
    h = pollHealth(c);
    await sleep(100);
    const t1 = performance.now();
    dropAgent(agent);
    for (let i = 0; ; i++) {
      const js = await Promise.all(heldJobs.map((j) => c.ok('GET', `/jobs/${j.id}`)));
      if (js.every((j) => j.counts.queued === 5_000)) break;
      if (i > 300) throw new Error(`the lost node's attempts were not requeued within 30 s (${JSON.stringify(js.map((j) => j.counts))})`);
      await sleep(100);
    }
    const lostMs = performance.now() - t1;
    lat = await h.stop();
    row(`lost node with 10,000 attempts (requeued ${(lostMs / 1000).toFixed(1)} s after): health p99 / max`, `${ms(pct(lat, 99))} / ${ms(Math.max(...lat))}`, 'p99 ≤ 100 ms', pct(lat, 99) <= 100);
    for (const j of heldJobs) await c.ok('POST', `/jobs/${j.id}/cancel`);

    // Retention: 400,000 finished (cancelled) tasks removed.
    for (let i = 0; i < 3; i++) {
      const j = (await c.ok('POST', '/jobs', spec(`old-${i}`, 100_000))).job;
      await c.ok('POST', `/jobs/${j.id}/cancel`);
    }
    await sleep(1500); // older than maxAge (1 s)
    h = pollHealth(c);
    await sleep(100);
    const t2 = performance.now();
    const gc = await c.ok('POST', '/gc', { dryRun: false });
    const gcMs = performance.now() - t2;
    lat = await h.stop();
    if (gc.jobs < 6) throw new Error(`retention removed ${gc.jobs} jobs, expected 6`);
    row(`retention: ${gc.jobs} jobs, 410,000 tasks removed (${(gcMs / 1000).toFixed(2)} s): health p99 / max`, `${ms(pct(lat, 99))} / ${ms(Math.max(...lat))}`, 'p99 ≤ 100 ms', pct(lat, 99) <= 100);
    await c.stop();
  }
} finally {
  for (const c of coordinators) await c.stop().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

const table = rows.filter((r) => r.name);
if (asJson) console.log(JSON.stringify(table));
else {
  const w = Math.max(...table.map((r) => r.name.length));
  const v = Math.max(...table.map((r) => r.value.length));
  const t = Math.max(...table.map((r) => r.target.length));
  console.log(`\nScale and stall targets (npm run bench:scale), ${new Date().toISOString()}, depth ${DEPTH.toLocaleString('en')}`);
  console.log(`| ${'measure'.padEnd(w)} | ${'value'.padStart(v)} | ${'target'.padEnd(t)} |      |`);
  console.log(`|${'-'.repeat(w + 2)}|${'-'.repeat(v + 2)}|${'-'.repeat(t + 2)}|------|`);
  for (const r of table) console.log(`| ${r.name.padEnd(w)} | ${r.value.padStart(v)} | ${r.target.padEnd(t)} | ${r.verdict.padEnd(4)} |`);
}
process.exitCode = missed > 0 ? 1 : 0;
