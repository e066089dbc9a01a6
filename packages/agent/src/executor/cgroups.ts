/**
 * Per-task control groups: the limits a task declared (memory, CPU), a process limit, and a kill that reaches
 * every process the task started — `setsid` and double-forked ones included, which a process-group kill misses.
 *
 *   (none) ──create──▶ limits written ──task joins (sh wrapper writes its pid)──▶ running
 *     ──leader exits / timeout / cancel──▶ killAll (v2 cgroup.kill; else SIGKILL every pid in rounds, and if it
 *        keeps forking: freeze, SIGKILL every pid, thaw)
 *     ──▶ oomKilled read ──▶ remove (rmdir, retried while the kernel still counts exiting processes)
 *
 * Both layouts are supported:
 * - **v2** (unified, most current distributions): one directory per task under the agent's own cgroup, with
 *   `memory.max`, `memory.swap.max` = 0, `pids.max`, `cpu.max`; `memory.events` `oom_kill` tells an out-of-memory
 *   kill from any other SIGKILL. The agent's cgroup must delegate the controllers (`cgroup.subtree_control`); a v2
 *   cgroup cannot both hold processes and hand controllers to children, so when it holds only the agent's own
 *   processes they are moved to a leaf `dsg-agent` first (systemd: `Delegate=yes` gives exactly that).
 * - **v1** (one hierarchy per controller): a directory per task under the agent's cgroup in `memory`, `pids`,
 *   `cpu` (and `freezer` when mounted, for an atomic kill); `memory.limit_in_bytes` (+ `memsw` when swap is
 *   accounted), `pids.max`, `cpu.cfs_quota_us`; `memory.oom_control` `oom_kill`.
 *
 * Node cannot start a child inside a cgroup, so the task's argv is prefixed by `joinArgv`: a tiny `sh` that writes
 * its own pid into each `cgroup.procs` and then `exec`s the task, so nothing the task forks can start outside.
 * File operations are synchronous: they run in the launcher helper, a handful of small writes per task.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Rounds of "SIGKILL every pid listed" before a task that keeps gaining processes is frozen (see killAll). */
const KILL_ROUNDS = 4;

export interface CgroupLimits {
  /** Memory limit in bytes (0: none). */
  readonly memoryBytes: number;
  /** CPU quota in thousandths of a core (0: none). */
  readonly cpuMillis: number;
  /** Most processes and threads at once (0: none). */
  readonly pids: number;
}

/** Where the cgroup file systems are; injectable so tests can use a fake directory tree. */
export interface CgroupEnvironment {
  /** Contents of /proc/self/cgroup. */
  readonly procSelfCgroup: string;
  /** Mount point of the cgroup file systems. Default /sys/fs/cgroup. */
  readonly root: string;
  /** This process's pid (moved to a leaf on v2 when needed). */
  readonly pid: number;
}

export type CgroupDetection = { readonly ok: true; readonly cgroups: Cgroups } | { readonly ok: false; readonly why: string };

const CPU_PERIOD_US = 100_000;
const V1_CONTROLLERS = ['memory', 'pids', 'cpu'] as const;
/** On v2, the leaf the agent moves itself to so that its own group can delegate controllers to task groups. */
export const V2_AGENT_LEAF = 'dsg-agent';

export function systemCgroupEnvironment(): CgroupEnvironment {
  let text = '';
  try {
    text = readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    /* not Linux */
  }
  return { procSelfCgroup: text, root: '/sys/fs/cgroup', pid: process.pid };
}

/** Which of the agent's cgroups tasks can be placed under, or why none can. Tries v1 (where the controllers are on a hybrid machine), then v2. */
export function detectCgroups(env: CgroupEnvironment = systemCgroupEnvironment(), prefix = `dsg-${process.pid}`): CgroupDetection {
  if (process.platform !== 'linux' && env.root === '/sys/fs/cgroup') return { ok: false, why: `cgroups are a Linux feature; this is ${process.platform}` };
  if (!env.procSelfCgroup) return { ok: false, why: 'cannot read /proc/self/cgroup' };
  const lines = env.procSelfCgroup.split('\n').filter(Boolean).map((l) => {
    const [, , ctl, path] = /^(\d+):([^:]*):(.*)$/.exec(l) ?? [];
    return { controllers: (ctl ?? '').split(',').filter(Boolean), path: path ?? '/' };
  });
  const reasons: string[] = [];
  // v1: every controller we need mounted as its own hierarchy and writable by us.
  const v1: Record<string, string> = {};
  // Optional: freezer (suspend a task), cpuacct (measured CPU for the ledger) when mounted apart from cpu (on many
  // machines it is co-mounted as cpu,cpuacct, and the cpu group already has cpuacct.usage).
  for (const c of [...V1_CONTROLLERS, 'freezer', 'cpuacct']) {
    const line = lines.find((l) => l.controllers.includes(c));
    if (!line) continue;
    const mount = [join(env.root, c), join(env.root, line.controllers.join(','))].find((d) => existsSync(join(d, 'cgroup.procs')));
    if (mount && !Object.values(v1).includes(join(mount, line.path))) v1[c] = join(mount, line.path);
  }
  if (V1_CONTROLLERS.every((c) => v1[c])) {
    const probe = tryWritable(Object.values(v1), prefix);
    if (probe === null) return { ok: true, cgroups: new Cgroups({ version: 1, dirs: v1 }, prefix) };
    reasons.push(`cgroup v1: ${probe}`);
  }
  // v2: the unified hierarchy, at the root (pure v2) or at <root>/unified (hybrid), with the controllers we need.
  const unified = lines.find((l) => l.controllers.length === 0 && !/^name=/.test(l.path));
  if (unified) {
    const mount = [env.root, join(env.root, 'unified')].find((d) => existsSync(join(d, 'cgroup.controllers')));
    if (mount) {
      // A process started by an agent already moved to its leaf (the launcher) uses the agent's group.
      const path = unified.path.endsWith(`/${V2_AGENT_LEAF}`) ? unified.path.slice(0, -V2_AGENT_LEAF.length - 1) || '/' : unified.path;
      const base = join(mount, path);
      const got = enableV2Controllers(base, env.pid);
      if (got === null) return { ok: true, cgroups: new Cgroups({ version: 2, base }, prefix) };
      reasons.push(`cgroup v2: ${got}`);
    }
  }
  return { ok: false, why: reasons.length > 0 ? reasons.join('; ') : 'no cgroup file system with the memory, pids and cpu controllers was found' };
}

function tryWritable(dirs: readonly string[], prefix: string): string | null {
  for (const d of dirs) {
    const test = join(d, `${prefix}-probe`);
    try {
      mkdirSync(test);
      rmdirSync(test);
    } catch (e) {
      return `cannot create a cgroup in ${d} (${(e as NodeJS.ErrnoException).code ?? String(e)}); run the agent as root or delegate the cgroup to it`;
    }
  }
  return null;
}

/** Makes `base` hand memory, pids and cpu to its children; null when done, else why not. */
export function enableV2Controllers(base: string, pid: number): string | null {
  const need = ['memory', 'pids', 'cpu'];
  let available: string[];
  try {
    available = readFileSync(join(base, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch (e) {
    return `cannot read ${join(base, 'cgroup.controllers')} (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  const missing = need.filter((c) => !available.includes(c));
  if (missing.length > 0) return `the controllers ${missing.join(', ')} are not delegated to ${base}`;
  const enabled = (): boolean => {
    try {
      const on = readFileSync(join(base, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
      return need.every((c) => on.includes(c));
    } catch {
      return false;
    }
  };
  const enable = (): string | null => {
    try {
      writeFileSync(join(base, 'cgroup.subtree_control'), need.map((c) => `+${c}`).join(' '));
      return null;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code ?? String(e);
    }
  };
  if (enabled()) return null;
  let err = enable();
  if (err === 'EBUSY') {
    // "No internal processes": move this process to a leaf of its own, then try again. Only this process is
    // moved: if others share the group (a login shell), the controllers stay off and the reason is reported.
    try {
      const leaf = join(base, V2_AGENT_LEAF);
      if (!existsSync(leaf)) mkdirSync(leaf);
      writeFileSync(join(leaf, 'cgroup.procs'), String(pid));
    } catch {
      /* reported below */
    }
    err = enable();
  }
  if (err) return `cannot enable the memory, pids and cpu controllers in ${base} (${err}); run the agent in a cgroup of its own with the controllers delegated (systemd: Delegate=yes)`;
  return null;
}

type Layout = { readonly version: 1; readonly dirs: Readonly<Record<string, string>> } | { readonly version: 2; readonly base: string };

/** The agent's parent cgroup(s); makes one `TaskCgroup` per task. */
export class Cgroups {
  private seq = 0;
  constructor(readonly layout: Layout, private readonly prefix: string) {}

  get version(): 1 | 2 {
    return this.layout.version;
  }

  /**
   * Removes task cgroups left by an executor process that is gone (an agent killed with SIGKILL, a crashed
   * launcher), killing what still runs in them. Returns how many were removed.
   */
  sweepStale(): number {
    const parents = this.layout.version === 2 ? { unified: this.layout.base } : this.layout.dirs;
    const stale = new Map<string, Record<string, string>>();
    for (const [c, parent] of Object.entries(parents)) {
      let names: string[] = [];
      try {
        names = readdirSync(parent);
      } catch {
        continue;
      }
      for (const n of names) {
        const m = /^dsg-(\d+)-(\d+|probe)$/.exec(n);
        if (!m || pidAlive(Number(m[1]))) continue;
        stale.set(n, { ...(stale.get(n) ?? {}), [c]: join(parent, n) });
      }
    }
    let removed = 0;
    for (const dirs of stale.values()) {
      const cg = new TaskCgroup(this.layout.version, dirs);
      cg.killAll();
      if (cg.removeNow()) removed++;
    }
    return removed;
  }

  /** Creates the task's cgroup with its limits written. Throws with the file that could not be written. */
  create(limits: CgroupLimits): TaskCgroup {
    const name = `${this.prefix}-${++this.seq}`;
    if (this.layout.version === 2) {
      const dir = join(this.layout.base, name);
      mkdirSync(dir);
      const cg = new TaskCgroup(2, { unified: dir });
      try {
        if (limits.memoryBytes > 0) {
          write(dir, 'memory.max', String(limits.memoryBytes));
          // Without this, a task over its limit would swap instead of being stopped.
          if (existsSync(join(dir, 'memory.swap.max'))) write(dir, 'memory.swap.max', '0');
        }
        if (limits.pids > 0) write(dir, 'pids.max', String(limits.pids));
        if (limits.cpuMillis > 0) write(dir, 'cpu.max', `${cpuQuotaUs(limits.cpuMillis)} ${CPU_PERIOD_US}`);
      } catch (e) {
        cg.removeNow();
        throw e;
      }
      return cg;
    }
    const dirs: Record<string, string> = {};
    for (const [c, parent] of Object.entries(this.layout.dirs)) dirs[c] = join(parent, name);
    const cg = new TaskCgroup(1, dirs);
    try {
      for (const d of Object.values(dirs)) mkdirSync(d);
      if (limits.memoryBytes > 0) {
        write(dirs['memory']!, 'memory.limit_in_bytes', String(limits.memoryBytes));
        if (existsSync(join(dirs['memory']!, 'memory.memsw.limit_in_bytes'))) write(dirs['memory']!, 'memory.memsw.limit_in_bytes', String(limits.memoryBytes));
      }
      if (limits.pids > 0) write(dirs['pids']!, 'pids.max', String(limits.pids));
      if (limits.cpuMillis > 0) {
        write(dirs['cpu']!, 'cpu.cfs_period_us', String(CPU_PERIOD_US));
        write(dirs['cpu']!, 'cpu.cfs_quota_us', String(cpuQuotaUs(limits.cpuMillis)));
      }
    } catch (e) {
      cg.removeNow();
      throw e;
    }
    return cg;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The kernel's smallest quota is 1 ms per period. */
const cpuQuotaUs = (cpuMillis: number): number => Math.max(1000, Math.round((cpuMillis / 1000) * CPU_PERIOD_US));

function write(dir: string, file: string, value: string): void {
  try {
    writeFileSync(join(dir, file), value);
  } catch (e) {
    throw new Error(`cannot set ${file} to ${value} in ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** One task's cgroup (one directory on v2, one per controller on v1). */
export class TaskCgroup {
  constructor(readonly version: 1 | 2, readonly dirs: Readonly<Record<string, string>>) {}

  /** The `cgroup.procs` files the task's first process must join. */
  get procsFiles(): string[] {
    return Object.values(this.dirs).map((d) => join(d, 'cgroup.procs'));
  }

  /**
   * `sh` that joins the cgroup(s) and then becomes the task: `sh -c SCRIPT sh N file… argv…`. Exits 125 with a
   * message if it cannot join (the executor reports that as a failure to start).
   */
  joinArgv(argv: readonly string[]): string[] {
    const files = this.procsFiles;
    const script = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || { echo "dsg: cannot join the task cgroup $1" >&2; exit 125; }; shift; n=$((n-1)); done; exec "$@"';
    return ['/bin/sh', '-c', script, 'sh', String(files.length), ...files, ...argv];
  }

  /** The pids now in the task's cgroup. */
  pids(): number[] {
    const dir = this.version === 2 ? this.dirs['unified']! : this.dirs['pids'] ?? Object.values(this.dirs)[0]!;
    try {
      return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** Sends a signal to every process of the task (not atomic: use `killAll` to be sure none is left). */
  signalAll(sig: NodeJS.Signals): void {
    for (const p of this.pids()) {
      try {
        process.kill(p, sig);
      } catch {
        /* gone */
      }
    }
  }

  /**
   * SIGKILL every process of the task, including ones forking right now: v2 `cgroup.kill` where the kernel has it.
   * Otherwise in rounds first: every pid listed is killed, then the list is read again, until it holds no pid not
   * killed yet (what is left is exiting, or a zombie not reaped yet). A process with a SIGKILL pending can fork no
   * more (the kernel abandons a fork in progress on a fatal signal), so the rounds end as soon as the task stops
   * gaining processes. Only a task that still gains some after KILL_ROUNDS rounds (a fork bomb, held in by
   * `pids.max`) is frozen, killed and thawed. Freezing first, always, cost two writes of ~2.5 ms each on v1
   * (measured on the 2-core VM, with the event loop blocked), at the end of nearly every sandboxed task: its leader
   * (bwrap) exits while the sandbox's init is still exiting. A child whose fork was past that check when its parent
   * was killed, and not listed yet at the next read, is caught by `remove`, which kills again until the directory
   * can go. Returns how (for tests and logs).
   */
  killAll(): 'nothing left' | 'cgroup.kill' | 'rounds' | 'frozen' | 'signals' {
    let pids = this.pids();
    if (pids.length === 0) return 'nothing left'; // the usual case at a task's end
    if (this.version === 2) {
      const dir = this.dirs['unified']!;
      if (existsSync(join(dir, 'cgroup.kill'))) {
        try {
          writeFileSync(join(dir, 'cgroup.kill'), '1');
          return 'cgroup.kill';
        } catch {
          /* fall back below */
        }
      }
    }
    const killed = new Set<number>();
    for (let round = 0; round < KILL_ROUNDS; round++) {
      const fresh = pids.filter((p) => !killed.has(p));
      if (fresh.length === 0) return 'rounds';
      for (const p of fresh) {
        killed.add(p);
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      pids = this.pids();
    }
    if (pids.every((p) => killed.has(p))) return 'rounds';
    if (this.version === 2) return this.freezeKill(join(this.dirs['unified']!, 'cgroup.freeze'), '1', '0');
    if (this.dirs['freezer']) return this.freezeKill(join(this.dirs['freezer'], 'freezer.state'), 'FROZEN', 'THAWED');
    for (let i = 0; i < 10 && this.pids().length > 0; i++) this.signalAll('SIGKILL');
    return 'signals';
  }

  private freezeKill(file: string, freeze: string, thaw: string): 'frozen' | 'signals' {
    let frozen = false;
    try {
      writeFileSync(file, freeze);
      frozen = true;
    } catch {
      /* no freezer: kill in rounds */
    }
    for (let i = 0; i < (frozen ? 1 : 10) && this.pids().length > 0; i++) this.signalAll('SIGKILL');
    if (frozen) {
      try {
        writeFileSync(file, thaw); // a frozen process dies of its SIGKILL only once thawed
      } catch {
        /* gone */
      }
    }
    return frozen ? 'frozen' : 'signals';
  }

  /**
   * Freeze (true) or thaw (false) every process of the task at once: v2 `cgroup.freeze`, v1 `freezer.state`.
   * False when this cgroup has no freezer (v1 without the freezer hierarchy): the caller falls back to SIGSTOP.
   */
  setFrozen(frozen: boolean): boolean {
    const [file, value] = this.version === 2
      ? [join(this.dirs['unified']!, 'cgroup.freeze'), frozen ? '1' : '0']
      : this.dirs['freezer'] ? [join(this.dirs['freezer'], 'freezer.state'), frozen ? 'FROZEN' : 'THAWED'] : [null, ''];
    if (!file) return false;
    try {
      writeFileSync(file, value);
      return true;
    } catch {
      return false;
    }
  }

  /** True when the kernel's OOM killer killed a process of this task for its memory limit. */
  oomKilled(): boolean {
    const [dir, file] = this.version === 2 ? [this.dirs['unified']!, 'memory.events'] : [this.dirs['memory']!, 'memory.oom_control'];
    try {
      const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(dir, file), 'utf8'));
      return m !== null && Number(m[1]) > 0;
    } catch {
      return false;
    }
  }

  /**
   * What the task's processes used so far, for the contribution ledger: CPU time (v1 `cpuacct.usage`, ns; v2
   * `cpu.stat` usage_usec) and peak memory (v1 `memory.max_usage_in_bytes`; v2 `memory.peak`, kernel 5.19+). A
   * figure the kernel does not offer is left out (the ledger then charges the declared amount).
   */
  usage(): { cpuMs?: number; peakMemoryBytes?: number } {
    const read = (dir: string | undefined, file: string): string | null => {
      if (!dir) return null;
      try {
        return readFileSync(join(dir, file), 'utf8');
      } catch {
        return null;
      }
    };
    const out: { cpuMs?: number; peakMemoryBytes?: number } = {};
    if (this.version === 2) {
      const m = /^usage_usec (\d+)$/m.exec(read(this.dirs['unified'], 'cpu.stat') ?? '');
      if (m) out.cpuMs = Math.round(Number(m[1]) / 1000);
      const peak = read(this.dirs['unified'], 'memory.peak');
      if (peak !== null && /^\d+\s*$/.test(peak)) out.peakMemoryBytes = Number(peak);
    } else {
      const ns = read(this.dirs['cpuacct'], 'cpuacct.usage') ?? read(this.dirs['cpu'], 'cpuacct.usage');
      if (ns !== null && /^\d+\s*$/.test(ns)) out.cpuMs = Math.round(Number(ns) / 1e6);
      const peak = read(this.dirs['memory'], 'memory.max_usage_in_bytes');
      if (peak !== null && /^\d+\s*$/.test(peak)) out.peakMemoryBytes = Number(peak);
    }
    return out;
  }

  /** Removes the cgroup directories now; false if one is still busy (processes still exiting). */
  removeNow(): boolean {
    let all = true;
    for (const d of Object.values(this.dirs)) {
      try {
        rmdirSync(d);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') all = false;
      }
    }
    return all;
  }

  /** Kills what is left and removes the directories, retrying for up to `withinMs` while processes exit. */
  async remove(withinMs = 2000): Promise<void> {
    const until = Date.now() + withinMs;
    for (;;) {
      if (this.pids().length > 0) this.killAll();
      if (this.removeNow() || Date.now() > until) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
