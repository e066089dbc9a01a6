#!/usr/bin/env node
// `npm run bench:agents`: many agents against one coordinator on this machine. The agents are simulated — this
// process speaks the agent protocol over one WebSocket per agent (hello, heartbeats, started, finished) and runs
// nothing — so what is measured is the coordinator: can heartbeats, dispatch and report commits keep up with
// 1,000 agents holding 10,000 running tasks, at what CPU and memory? The coordinator is a separate process (its
// CPU and RSS are read from /proc), on a real SQLite file, with the default heartbeat (2 s) and node timeout (10 s).
//   Options: --agents N (1000)  --running N (10000: cores offered in all, one task per core)
//            --task-ms N (20000: how long each simulated task "runs")  --seconds N (60: the measured window)  --json
// Prints a table: the share of core-time kept busy (≥ 99%, else exit 1), throughput against what the agents could
// do at most (running / task time), dispatch latency (a
// finished task's core gets its next task), report-commit latency (finished → ack), coordinator CPU and RSS, and
// whether any agent was taken for lost (a heartbeat the coordinator did not keep up with).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { useSupportedNode } from './node-runtime.mjs';

await useSupportedNode(import.meta.url);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : def; };
const AGENTS = arg('--agents', 1000);
const RUNNING = arg('--running', 10_000);
const TASK_MS = arg('--task-ms', 20_000);
const SECONDS = arg('--seconds', 60);
const asJson = process.argv.includes('--json');
const say = (m) => process.stderr.write(`[bench:agents] ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => { if (xs.length === 0) return NaN; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };

const ensure = spawnSync(process.execPath, [join(root, 'scripts', 'ensure.mjs'), '--quiet'], { stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);
const { default: WebSocket } = await import(pathToFileURL(join(root, 'node_modules', 'ws', 'wrapper.mjs')).href);

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

const dir = mkdtempSync(join(tmpdir(), 'dsg-bench-agents-'));
const port = await freePort();
const coordMain = pathToFileURL(join(root, 'packages', 'coordinator', 'dist', 'src', 'index.js')).href;
const options = {
  dataDir: join(dir, 'data'), host: '127.0.0.1', port, logLevel: 'error', advertise: false,
  // Every simulated agent joins with the one join token: lift the per-token join rate for this run only.
  maxJoinsPerMinute: AGENTS + 100,
};
const coord = spawn(process.execPath, ['--input-type=module', '-e',
  `const m = await import(${JSON.stringify(coordMain)}); const c = await m.startCoordinator(${JSON.stringify(options)}); process.on('SIGTERM', async () => { await c.close(); process.exit(0); });`,
], { stdio: ['ignore', 'inherit', 'inherit'] });

const ticksPerSecond = 100; // USER_HZ on Linux
function coordUsage() {
  const stat = readFileSync(`/proc/${coord.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(f[11]) + Number(f[12])) / ticksPerSecond;
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${coord.pid}/status`, 'utf8'))[1]) * 1024;
  return { cpuSeconds, rss };
}

let creds = null;
const agents = [];
try {
  const credFile = join(options.dataDir, 'credentials.json');
  for (let i = 0; !creds; i++) {
    if (i > 300) throw new Error('the coordinator did not start within 30 s');
    if (coord.exitCode !== null) throw new Error(`the coordinator exited (${coord.exitCode})`);
    if (existsSync(credFile)) try { creds = JSON.parse(readFileSync(credFile, 'utf8')); } catch { /* being written */ }
    await sleep(100);
  }
  const base = `http://127.0.0.1:${port}`;
  const api = async (method, path, body) => {
    const r = await fetch(`${base}/api/v1${path}`, { method, headers: { authorization: `Bearer ${creds.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return r.json();
  };

  // ── the simulated agents ──
  const cores = Math.max(1, Math.round(RUNNING / AGENTS));
  const stats = { assigned: 0, finished: 0, dispatchMs: [], ackMs: [], closed: 0, errors: [] };
  let measuring = false;
  // Cores busy, integrated over time: the share of core-time the coordinator kept occupied. Unlike the finish rate,
  // it does not depend on where the window falls in the waves of tasks that started together.
  const busy = { now: 0, coreMs: 0, since: 0 };
  const busyChange = (delta) => {
    const t = performance.now();
    if (measuring) busy.coreMs += busy.now * (t - busy.since);
    busy.since = t;
    busy.now += delta;
  };
  function simAgent(i) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/agent/connect`, { headers: { authorization: `Bearer ${creds.joinToken}` } });
      const a = { ws, running: new Map(), freedAt: [], sentFinish: new Map(), heartbeat: null };
      const send = (m) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m)); };
      ws.on('open', () => send({
        type: 'hello', protocol: 1, nodeId: null, name: `sim-${String(i).padStart(4, '0')}`, agentVersion: 'bench', running: [], labels: {},
        capacity: { cpuMillis: cores * 1000, memoryBytes: 64 * 2 ** 30, gpus: 0, diskBytes: 0 },
        facts: { hostname: `sim-${i}`, os: 'linux', arch: 'x64', cpuModel: 'simulated', cores, memoryBytes: 64 * 2 ** 30, diskBytes: 0, gpus: [], isolation: 'sandbox+cgroups' },
      }));
      // A frame holds one message or an array of them (the coordinator sends a turn's messages together).
      ws.on('message', (raw) => { const f = JSON.parse(String(raw)); for (const m of Array.isArray(f) ? f : [f]) onMessage(m); });
      const onMessage = (m) => {
        if (m.type === 'welcome') {
          a.heartbeat = setInterval(() => send({ type: 'heartbeat', running: [...a.running.keys()] }), m.heartbeatIntervalMs);
          agents.push(a);
          resolve(a);
        } else if (m.type === 'assign') {
          const now = Date.now();
          const started = [];
          for (const at of m.attempts) {
            stats.assigned++;
            const freed = a.freedAt.shift();
            if (measuring && freed !== undefined) stats.dispatchMs.push(now - freed);
            started.push({ type: 'started', attemptId: at.attemptId, at: now });
            const t = setTimeout(() => {
              const was = Math.min(cores, a.running.size);
              a.running.delete(at.attemptId);
              busyChange(Math.min(cores, a.running.size) - was);
              const end = Date.now();
              a.freedAt.push(end);
              a.sentFinish.set(at.attemptId, end);
              send({ type: 'finished', attemptId: at.attemptId, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: now, finishedAt: end, outputs: [] });
            }, TASK_MS * (0.9 + 0.2 * Math.random()));
            const was = Math.min(cores, a.running.size);
            a.running.set(at.attemptId, t);
            busyChange(Math.min(cores, a.running.size) - was); // more than its cores at once counts as full
          }
          if (started.length > 0) ws.send(JSON.stringify(started));
        } else if (m.type === 'ack') {
          const now = Date.now();
          for (const id of m.attemptIds) {
            const sent = a.sentFinish.get(id);
            if (sent === undefined) continue;
            a.sentFinish.delete(id);
            stats.finished++;
            if (measuring) stats.ackMs.push(now - sent);
          }
        } else if (m.type === 'cancel') {
          const was = Math.min(cores, a.running.size);
          for (const id of m.attemptIds) { clearTimeout(a.running.get(id)); a.running.delete(id); }
          busyChange(Math.min(cores, a.running.size) - was);
        } else if (m.type === 'error') stats.errors.push(m.message);
      };
      ws.on('close', () => { stats.closed++; clearInterval(a.heartbeat); });
      ws.on('error', reject);
    });
  }

  say(`connecting ${AGENTS} simulated agents (${cores} cores each)`);
  const t0 = Date.now();
  for (let i = 0; i < AGENTS; i += 50) await Promise.all(Array.from({ length: Math.min(50, AGENTS - i) }, (_, k) => simAgent(i + k)));
  const joinSeconds = (Date.now() - t0) / 1000;
  const capacity = cores * AGENTS;
  const total = Math.ceil(capacity * ((SECONDS * 1000 + 30_000) / TASK_MS + 2));
  say(`${AGENTS} agents joined in ${joinSeconds.toFixed(1)} s; submitting ${total} tasks of ~${TASK_MS / 1000} s`);
  const job = (await api('POST', '/jobs', { spec: { name: 'many-agents', command: ['true'], array: total, resources: { cpu: 1, memory: '16Mi' }, timeout: '1h' } })).job;

  // Fill every core, then measure a steady window.
  for (let i = 0; stats.assigned < capacity; i++) {
    if (i > 600) throw new Error(`only ${stats.assigned} of ${capacity} cores got work within 60 s`);
    await sleep(100);
  }
  say(`all ${capacity} cores busy after ${((Date.now() - t0) / 1000 - joinSeconds).toFixed(1)} s; measuring ${SECONDS} s`);
  await sleep(TASK_MS); // one task generation in: finishes are spread out
  const before = { ...coordUsage(), at: Date.now(), finished: stats.finished };
  busyChange(0);
  measuring = true;
  const busyFrom = performance.now();
  let peakRss = before.rss;
  const health = [];
  const until = Date.now() + SECONDS * 1000;
  while (Date.now() < until) {
    const t = performance.now();
    await api('GET', '/health');
    health.push(performance.now() - t);
    peakRss = Math.max(peakRss, coordUsage().rss);
    await sleep(250);
  }
  busyChange(0);
  measuring = false;
  const busyShare = busy.coreMs / ((performance.now() - busyFrom) * (cores * AGENTS));
  const after = { ...coordUsage(), at: Date.now(), finished: stats.finished };
  const nodes = (await api('GET', '/nodes')).items;
  const offline = nodes.filter((n) => n.state !== 'online').length;
  const wall = (after.at - before.at) / 1000;
  const r = {
    agents: AGENTS, runningTasks: capacity, taskMs: TASK_MS, seconds: wall, joinSeconds,
    finishedPerSecond: (after.finished - before.finished) / wall, coresBusy: busyShare,
    idealPerSecond: capacity / (TASK_MS / 1000),
    dispatchP50: pct(stats.dispatchMs, 50), dispatchP99: pct(stats.dispatchMs, 99),
    ackP50: pct(stats.ackMs, 50), ackP99: pct(stats.ackMs, 99),
    healthP99: pct(health, 99),
    coordinatorCpu: (after.cpuSeconds - before.cpuSeconds) / wall, coordinatorRssMiB: after.rss / 2 ** 20, coordinatorPeakRssMiB: peakRss / 2 ** 20,
    nodesNotOnline: offline, socketsClosed: stats.closed, errors: stats.errors.slice(0, 5), jobId: job.id,
  };
  if (asJson) console.log(JSON.stringify(r));
  else {
    const row = (name, value, target) => console.log(`| ${name.padEnd(44)} | ${String(value).padStart(14)} | ${target.padEnd(28)} |`);
    console.log(`\n${AGENTS} simulated agents, ${capacity} tasks running (~${TASK_MS / 1000} s each), ${wall.toFixed(0)} s measured, ${new Date().toISOString()}`);
    console.log(`| ${'measure'.padEnd(44)} | ${'value'.padStart(14)} | ${'target'.padEnd(28)} |`);
    console.log(`|${'-'.repeat(46)}|${'-'.repeat(16)}|${'-'.repeat(30)}|`);
    row('cores kept busy (share of core-time)', `${(100 * r.coresBusy).toFixed(1)}%`, 'keeps up: ≥ 99%');
    row('tasks finished per second (vs agents\' most)', `${r.finishedPerSecond.toFixed(0)} (${(r.finishedPerSecond / r.idealPerSecond).toFixed(2)}×)`, 'printed (waves: see below)');
    row('dispatch: core freed → next task, p50 / p99', `${r.dispatchP50} / ${r.dispatchP99} ms`, 'keeps up');
    row('report commit: finished → ack, p50 / p99', `${r.ackP50} / ${r.ackP99} ms`, 'keeps up');
    row('GET /health p99 during the run', `${r.healthP99.toFixed(1)} ms`, '≤ 100 ms');
    row('coordinator CPU (cores)', r.coordinatorCpu.toFixed(2), 'printed');
    row('coordinator RSS now / peak', `${r.coordinatorRssMiB.toFixed(0)} / ${r.coordinatorPeakRssMiB.toFixed(0)} MiB`, 'printed');
    row('agents not online at the end (heartbeats kept up)', r.nodesNotOnline, '0');
    row(`${AGENTS} agents joined in`, `${r.joinSeconds.toFixed(1)} s`, 'printed');
    console.log('The finish rate depends on where the window falls: tasks that started together end in waves (each ~20 s ± 10%).');
    console.log('The share of core-time kept busy does not: below 100% only while a freed core waits for its next task.');
    if (r.errors.length > 0) console.log(`errors from the coordinator: ${r.errors.join(' | ')}`);
  }
  if (offline > 0 || stats.closed > 0 || busyShare < 0.99) process.exitCode = 1;
} finally {
  for (const a of agents) { clearInterval(a.heartbeat); for (const t of a.running.values()) clearTimeout(t); a.ws.terminate(); }
  coord.kill('SIGTERM');
  await new Promise((r) => { coord.once('exit', r); setTimeout(r, 5000).unref(); });
  if (coord.exitCode === null) coord.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
