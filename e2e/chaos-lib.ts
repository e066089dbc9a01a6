/**
 * Fault tolerance under load, on real hosts: a coordinator and three agents in network namespaces on a bridge run a
 * workload of tasks with outputs while one fault is injected; then every task must have succeeded exactly once
 * (fencing: no task with two successful attempts) and every output must be there with the right content.
 *
 *   faults: agent SIGKILL · agent cut off (nftables) then healed · agent SIGSTOP then SIGCONT ·
 *           coordinator SIGKILL and restart at once · node drained mid-run
 *
 * `runChaos()` builds the hosts, runs a driver process *inside* the coordinator's host (so it reaches the API over
 * the bridge like any client), and tears everything down. Used by `npm run chaos` (scripts/chaos.mjs: 2,000 tasks,
 * 30 s faults, twice) and by e2e/chaos.test.ts (a smaller workload, in CI). Needs root, iproute2 and nftables.
 */
import { coordinatorFetch, parseFingerprint } from '@dsg/client/tls';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DSG } from './harness.js';

export const FAULTS = ['agent-kill', 'agent-cut', 'agent-stop', 'coordinator-kill', 'drain'] as const;
export type Fault = (typeof FAULTS)[number];

export interface ChaosOptions {
  readonly tasks: number;
  /** How long a cut or a SIGSTOP lasts. */
  readonly faultSeconds: number;
  readonly faults?: readonly Fault[];
}

export interface FaultResult {
  readonly fault: Fault;
  readonly tasks: number;
  /** Seconds from the fault to its tasks being requeued elsewhere (or, for a coordinator kill, work resuming). */
  readonly requeueSeconds: number | null;
  readonly lost: number;
  readonly duplicated: number;
  readonly missingOutputs: number;
  readonly totalSeconds: number;
  readonly attemptsRetried: number;
}

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function chaosMissing(): string[] {
  return [
    process.getuid?.() !== 0 ? 'root' : null,
    spawnSync('ip', ['-V']).status !== 0 ? 'iproute2 (ip)' : null,
    spawnSync('nft', ['--version']).status !== 0 ? 'nftables (nft)' : null,
  ].filter((x): x is string => x !== null);
}

/** Build the hosts, run the driver inside host 1, tear down. */
export function runChaos(o: ChaosOptions): FaultResult[] {
  const run = `${process.pid % 10000}`;
  const sw = `dsgcsw${run}`;
  const host = (i: number) => `dsgc${run}-${i}`;
  const dir = mkdtempSync(join(tmpdir(), 'dsg-e2e-chaos-'));
  try {
    sh('ip', ['netns', 'add', sw]);
    sh('ip', ['-n', sw, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', sw, 'link', 'set', 'br0', 'up']);
    for (const i of [1, 2, 3, 4]) {
      sh('ip', ['netns', 'add', host(i)]);
      sh('ip', ['-n', host(i), 'link', 'set', 'lo', 'up']);
      sh('ip', ['link', 'add', 'eth0', 'netns', host(i), 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', sw]);
      sh('ip', ['-n', sw, 'link', 'set', `p${i}`, 'master', 'br0']);
      sh('ip', ['-n', sw, 'link', 'set', `p${i}`, 'up']);
      sh('ip', ['-n', host(i), 'addr', 'add', `10.78.0.${10 + i}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', host(i), 'link', 'set', 'eth0', 'up']);
    }
    const args = [fileURLToPath(import.meta.url), '--driver', JSON.stringify({ ...o, run, sw, dir, hosts: [1, 2, 3, 4].map(host) })];
    // The driver's progress lines go straight to our stderr, live (a fault takes half a minute).
    const r = spawnSync('ip', ['netns', 'exec', host(1), process.execPath, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`chaos driver exited ${r.status} (its output is above)`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as FaultResult[];
  } finally {
    spawnSync('ip', ['netns', 'exec', sw, 'nft', 'delete', 'table', 'bridge', 'chaos']);
    for (const ns of [1, 2, 3, 4].map(host).concat(sw)) {
      for (const pid of spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

// ─── the driver (runs inside host 1) ─────────────────────────────────────────────────────────────────────────
interface DriverArgs extends ChaosOptions {
  readonly run: string;
  readonly sw: string;
  readonly dir: string;
  readonly hosts: readonly string[];
}
interface NodeV { id: string; name: string; state: string; runningTasks: number; assignedTasks: number }
interface TaskV { index: number; state: string; attempts: number }

async function driver(a: DriverArgs): Promise<FaultResult[]> {
  const say = (m: string): void => void process.stderr.write(`[chaos] ${m}\n`);
  // Beyond loopback the coordinator serves TLS (self-signed): the driver and the agents pin its fingerprint.
  const url = 'https://10.78.0.11:7070';
  const results: FaultResult[] = [];
  for (const fault of a.faults ?? FAULTS) {
    const data = join(a.dir, `data-${fault}`);
    const procs: ChildProcess[] = [];
    const start = (argv: string[], hostNs: string | null): ChildProcess => {
      const cmd = hostNs ? 'ip' : process.execPath;
      const full = hostNs ? ['netns', 'exec', hostNs, process.execPath, DSG, ...argv] : [DSG, ...argv];
      const p = spawn(cmd, full, { stdio: ['ignore', 'ignore', 'ignore'], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: join(a.dir, 'home'), DSG_LOG_LEVEL: 'warn' } });
      procs.push(p);
      return p;
    };
    const coordArgs = ['coordinator', '--data-dir', data, '--host', '10.78.0.11', '--port', '7070'];
    let coord = start(coordArgs, null);
    const credFile = join(data, 'credentials.json');
    for (let i = 0; i < 300 && !existsSync(credFile); i++) await sleep(100);
    let creds = JSON.parse(readFileSync(credFile, 'utf8')) as { adminToken: string; joinToken: string; url?: string; tlsFingerprint?: string };
    for (let i = 0; i < 300 && !creds.url?.startsWith('https'); i++) {
      await sleep(100);
      creds = JSON.parse(readFileSync(credFile, 'utf8')) as typeof creds;
    }
    const pinned = coordinatorFetch(url, parseFingerprint(creds.tlsFingerprint ?? ''));
    const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const r = await pinned(`${url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${creds.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as T;
    };
    const poll = async <T>(what: string, fn: () => Promise<T | null | false | undefined>, ms: number): Promise<T> => {
      const end = Date.now() + ms;
      for (;;) {
        try {
          const v = await fn();
          if (v) return v;
        } catch {
          /* not reachable yet */
        }
        if (Date.now() > end) throw new Error(`${fault}: timed out waiting for ${what}`);
        await sleep(100);
      }
    };
    const agents = [2, 3, 4].map((i) => start(['agent', '--coordinator', url, '--tls-fingerprint', creds.tlsFingerprint!, '--token', creds.joinToken, '--state-dir', join(a.dir, `agent-${fault}-${i}`), '--name', `h${i}`, '--cpus', '1'], a.hosts[i - 1]!));
    await poll('three agents online', async () => (await api<{ items: NodeV[] }>('GET', '/nodes')).items.filter((n) => n.state === 'online').length === 3, 60_000);

    const t0 = Date.now();
    const { job } = await api<{ job: { id: string } }>('POST', '/jobs', {
      spec: {
        name: `chaos-${fault}`,
        script: 'mkdir -p out && echo "task $DSG_TASK_INDEX" > "out/$DSG_TASK_INDEX.txt" && sleep 0.05',
        array: a.tasks,
        outputs: ['out/*.txt'],
        resources: { cpu: 1, memory: '16Mi' },
      },
    });
    await poll('a fifth of the work done', async () => (await api<{ counts: Record<string, number> }>('GET', `/jobs/${job.id}`)).counts['succeeded']! >= a.tasks / 5, 120_000);
    // The victim: an agent that holds work right now.
    const nodes = (await api<{ items: NodeV[] }>('GET', '/nodes')).items;
    const victim = nodes.find((n) => n.runningTasks + n.assignedTasks > 0) ?? nodes[0]!;
    const vi = Number(victim.name.slice(1));
    const vproc = agents[vi - 2]!;
    const tf = Date.now();
    say(`${fault}: fault at ${((tf - t0) / 1000).toFixed(1)} s on ${fault === 'coordinator-kill' ? 'the coordinator' : victim.name}`);
    let requeueSeconds: number | null = null;
    const heldByVictim = async (): Promise<boolean> => {
      const v = (await api<{ items: NodeV[] }>('GET', '/nodes')).items.find((n) => n.id === victim.id);
      return !!v && v.runningTasks + v.assignedTasks === 0 && v.state !== 'online';
    };
    switch (fault) {
      case 'agent-kill':
        // The agent alone: its launcher helper notices and its tasks' process groups are killed with it.
        vproc.kill('SIGKILL');
        await poll('its tasks requeued', heldByVictim, 60_000);
        requeueSeconds = (Date.now() - tf) / 1000;
        break;
      case 'agent-cut':
      case 'agent-stop': {
        if (fault === 'agent-cut') {
          sh('ip', ['netns', 'exec', a.sw, 'nft', 'add', 'table', 'bridge', 'chaos']);
          sh('ip', ['netns', 'exec', a.sw, 'nft', 'add chain bridge chaos cut { type filter hook forward priority 0; policy accept; }']);
          sh('ip', ['netns', 'exec', a.sw, 'nft', 'add', 'rule', 'bridge', 'chaos', 'cut', 'iifname', `p${vi}`, 'drop']);
          sh('ip', ['netns', 'exec', a.sw, 'nft', 'add', 'rule', 'bridge', 'chaos', 'cut', 'oifname', `p${vi}`, 'drop']);
        } else signalHost(a.hosts[vi - 1]!, 'SIGSTOP');
        const until = tf + a.faultSeconds * 1000;
        while (Date.now() < until) {
          if (requeueSeconds === null && (await heldByVictim().catch(() => false))) requeueSeconds = (Date.now() - tf) / 1000;
          await sleep(200);
        }
        if (fault === 'agent-cut') sh('ip', ['netns', 'exec', a.sw, 'nft', 'delete', 'table', 'bridge', 'chaos']);
        else signalHost(a.hosts[vi - 1]!, 'SIGCONT');
        say(`${fault}: healed after ${a.faultSeconds} s`);
        break;
      }
      case 'coordinator-kill': {
        const before = (await api<{ counts: Record<string, number> }>('GET', `/jobs/${job.id}`)).counts['succeeded']!;
        coord.kill('SIGKILL');
        await new Promise((r) => coord.once('exit', r));
        coord = start(coordArgs, null);
        await poll('work resuming after the restart', async () => (await api<{ counts: Record<string, number> }>('GET', `/jobs/${job.id}`)).counts['succeeded']! > before, 120_000);
        requeueSeconds = (Date.now() - tf) / 1000;
        break;
      }
      case 'drain':
        await api('POST', `/nodes/${victim.id}/drain`, {});
        await poll('the node drained', async () => {
          const v = (await api<{ items: NodeV[] }>('GET', '/nodes')).items.find((n) => n.id === victim.id);
          return !!v && v.runningTasks + v.assignedTasks === 0;
        }, 60_000);
        requeueSeconds = (Date.now() - tf) / 1000;
        break;
    }
    const done = await poll('the job finished', async () => {
      const j = await api<{ finishedAt: string | null; state: string }>('GET', `/jobs/${job.id}`);
      return j.finishedAt ? j : null;
    }, 300_000);
    const totalSeconds = (Date.now() - t0) / 1000;
    const tasks = (await api<{ items: TaskV[] }>('GET', `/jobs/${job.id}/tasks?limit=5000`)).items;
    const lost = tasks.filter((t) => t.state !== 'succeeded').length + Math.max(0, a.tasks - tasks.length);
    let duplicated = 0;
    const retried = tasks.filter((t) => t.attempts > 1);
    for (const t of retried) {
      const at = (await api<{ items: Array<{ state: string }> }>('GET', `/jobs/${job.id}/tasks/${t.index}/attempts`)).items;
      if (at.filter((x) => x.state === 'succeeded').length > 1) duplicated++;
    }
    const outputs = (await api<{ items: Array<{ taskIndex: number; path: string; size: number }> }>('GET', `/jobs/${job.id}/outputs`)).items;
    const good = new Set(outputs.filter((x) => x.path === `out/${x.taskIndex}.txt` && x.size === `task ${x.taskIndex}\n`.length).map((x) => x.taskIndex));
    const missingOutputs = a.tasks - good.size;
    say(`${fault}: job ${done.state} in ${totalSeconds.toFixed(1)} s; requeue ${requeueSeconds?.toFixed(1) ?? '-'} s; lost ${lost}, duplicated ${duplicated}, missing ${missingOutputs}; ${retried.length} tasks retried`);
    results.push({ fault, tasks: a.tasks, requeueSeconds, lost, duplicated, missingOutputs, totalSeconds, attemptsRetried: retried.length });
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    // Everything left on the agents' hosts (`ip netns pids` lists exactly the processes in that namespace).
    for (const h of a.hosts.slice(1)) for (const pid of spawnSync('ip', ['netns', 'pids', h], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(300);
  }
  return results;
}

if (process.argv[2] === '--driver') {
  driver(JSON.parse(process.argv[3]!) as DriverArgs).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}

/**
 * Every process of a host (network namespace) gets `sig`. A process listed that has exited since (a task ending
 * between `ip netns pids` and the kill) is skipped: ESRCH is not a failure of the fault.
 */
function signalHost(host: string, sig: NodeJS.Signals): void {
  for (const pid of spawnSync('ip', ['netns', 'pids', host], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }
}
