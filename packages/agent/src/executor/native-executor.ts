/**
 * NativeExecutor: each task is a child process in its own process group (`detached: true`), so the whole tree —
 * the shell, and everything it started — is signalled at once: SIGTERM, then SIGKILL after `killGraceMs`.
 *
 *   running ──exit──▶ done
 *   running ──kill(cancel|timeout)──▶ terminating (SIGTERM to the group) ──grace──▶ SIGKILL ──exit──▶ done
 *
 * After the leader exits, the group is SIGKILLed once more, so background children a script left behind do not
 * outlive their task. The spawn path avoids sync calls and uses no shell unless the task is a script.
 *
 * With isolation (see probe/isolation.ts) the task's argv is wrapped, outermost first: the cgroup join (`sh`
 * writing its pid to `cgroup.procs`, then `exec`), the sandbox (`bwrap … dsg-drop …`) or, without one, `dsg-drop`
 * (else `setpriv`) alone. Then a kill reaches the whole cgroup — `setsid` children included — the leader's exit
 * kills whatever is left in it, an out-of-memory kill is told apart (`oomKilled`), and the cgroup is removed before `done` settles.
 * The working directory is given to the task's user first, since it is the one place the task may write.
 *
 * Given a `capacity` and a starter that admits (the native one), the executor admits tasks itself: each waits in
 * the starter until the resources it declares fit, and starts there the moment a core frees (see dsg-spawn.c).
 * Its timeout counts from that start (or, for a start that hangs, from when it left the queue, told by the starter
 * after ~500 ms); a kill while it waits drops it unstarted, and one while it starts kills it before its exec.
 * Otherwise wrap it in an AdmissionExecutor (`admits` tells which).
 *
 *   waiting (in the starter) ──fits──▶ running ──exit──▶ done
 *   waiting ──kill──▶ done (cancelled or timed out, never started)
 */
import { chownSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecEvents, ExecHandle, ExecResources, ExecResult, ExecSpec, Executor } from './executor.js';
import { detectCgroups, type Cgroups, type TaskCgroup } from './cgroups.js';
import { sandboxArgv } from './sandbox.js';
import type { IsolationSettings } from '../probe/isolation.js';
import { nodeStarter, type ProcessStarter, type TaskProcess } from './process-starter.js';
import { ProgramLookup } from './program-lookup.js';
import { dropPrivilegesArgv } from './drop-privileges.js';

export interface NativeExecutorOptions {
  /** Time between SIGTERM and SIGKILL. Default 5000 ms. */
  readonly killGraceMs?: number;
  /** Sandbox, cgroup limits and task user (see probe/isolation.ts). Default: none, plain processes. */
  readonly isolation?: IsolationSettings;
  /** How processes are created: Node's spawn (default) or the native helper (see process-starter.ts). */
  readonly starter?: ProcessStarter;
  /** Admit tasks against this capacity inside the starter, when it can (`admits` then true). */
  readonly capacity?: ExecResources;
}

export class NativeExecutor implements Executor {
  private readonly killGraceMs: number;
  private readonly isolation: IsolationSettings | null;
  private readonly cgroups: Cgroups | null;
  private readonly starter: ProcessStarter;
  /** Whether tasks wait for room in the starter (a capacity was given and the starter admits). */
  readonly admits: boolean;
  /** Where isolated tasks' programs are (looked up before the sandbox hides how a missing one failed). */
  private readonly programs = new ProgramLookup();
  constructor(options: NativeExecutorOptions = {}) {
    this.killGraceMs = options.killGraceMs ?? 5000;
    this.starter = options.starter ?? nodeStarter;
    this.admits = options.capacity !== undefined && this.starter.admission !== undefined;
    this.isolation = options.isolation ?? null;
    let cgroups: Cgroups | null = null;
    if (this.isolation?.cgroups) {
      const d = detectCgroups();
      // The agent found them at start; if this process cannot, say so on every task rather than run unlimited.
      if (!d.ok) throw new Error(`per-task cgroups are not available to the executor: ${d.why}`);
      cgroups = d.cgroups;
      cgroups.sweepStale(); // what an executor that died (agent killed with SIGKILL) left behind
    }
    this.cgroups = cgroups;
    // Last: an executor that refused (no usable cgroups) has started no helper.
    if (this.admits) this.starter.admission!.setCapacity(options.capacity!);
  }

  /** Tasks that wait in the starter for room (prefetched): while there are some, a freed core has its next task. */
  get waiting(): number {
    return this.admits ? this.starter.admission!.waiting : 0;
  }

  /** The argv, environment and cgroup of an isolated task; throws with what could not be set up. */
  private isolate(spec: ExecSpec, events: ExecEvents): { argv: string[]; env: Record<string, string>; cg: TaskCgroup | null; cgroupProcs?: string[] } {
    const iso = this.isolation!;
    let argv = [...spec.argv];
    let env: Record<string, string> = { ...spec.env };
    const owner = iso.sandbox && iso.sandbox.uid !== null ? { uid: iso.sandbox.uid, gid: iso.sandbox.gid ?? iso.sandbox.uid } : iso.user;
    if (owner) {
      // The drop looks the program up as the task's user but stops at the first match it may not reach (root's
      // ~/.pyenv/shims/python3 before /usr/bin/python3): look it up here, among what others may run.
      const found = this.programs.forOthers(argv[0] ?? '', spec.cwd, spec.env['PATH']);
      if (found) argv[0] = found;
      chownTree(spec.cwd, owner.uid, owner.gid);
      // The agent's home is not the task's (and not readable by it): its working dir is.
      env = { ...env, HOME: spec.cwd };
    }
    if (spec.network && !iso.allowNetwork) events.onStderr('[dsg] the job asked for network access, but this node does not allow it: the task runs without network\n');
    if (iso.sandbox) argv = sandboxArgv(iso.sandbox, spec.cwd, Boolean(spec.network) && iso.allowNetwork, argv, (spec.resources?.gpus ?? 0) > 0);
    else if (iso.user) argv = [...dropPrivilegesArgv(iso.user.drop, iso.user.uid, iso.user.gid), ...argv];
    let cg: TaskCgroup | null = null;
    if (this.cgroups) {
      cg = this.cgroups.create({ memoryBytes: spec.resources?.memoryBytes ?? 0, cpuMillis: spec.resources?.cpuMillis ?? 0, pids: iso.maxProcesses });
      // The native starter joins the cgroups between fork and exec; Node's spawn needs a joining `sh` in front.
      if (this.starter.joinsCgroups) return { argv, env, cg, cgroupProcs: cg.procsFiles };
      argv = cg.joinArgv(argv);
    }
    return { argv, env, cg };
  }

  start(spec: ExecSpec, events: ExecEvents): ExecHandle {
    // When the process started: the starter's clock once it tells (an admitted task may wait first).
    let startedAt = Date.now();
    let [program, ...args] = spec.argv;
    const taskProgram = spec.argv[0] ?? '';
    let env = spec.env;
    let cg: TaskCgroup | null = null;
    let cgroupProcs: string[] | undefined;
    let timedOut = false;
    let cancelled = false;
    let killTimer: NodeJS.Timeout | null = null;
    let exited = false;
    let child: TaskProcess;
    if (this.isolation) {
      // Wrapped, a missing program would end as the wrapper's exit code: tell it as a failure to start, as without.
      const missing = this.programs.missing(program ?? '', spec.cwd, spec.env['PATH']);
      if (missing) return failedToStart(taskProgram, Object.assign(new Error(missing), { code: 'ENOENT' }), startedAt);
      try {
        const w = this.isolate(spec, events);
        [program, ...args] = w.argv;
        env = w.env;
        cg = w.cg;
        cgroupProcs = w.cgroupProcs;
      } catch (e) {
        return failedToStart(taskProgram, new Error(`the task's isolation could not be set up: ${(e as Error).message}`), startedAt);
      }
    }
    const queued = this.admits;
    try {
      child = this.starter.start(program!, args, {
        cwd: spec.cwd, env, ...(cgroupProcs ? { cgroupProcs } : {}), ...(queued ? { resources: spec.resources ?? { cpuMillis: 0, memoryBytes: 0, gpus: 0 } } : {}),
      });
    } catch (e) {
      cg?.removeNow();
      // spawn() throws, rather than emitting 'error', for what can never start: arguments or environment too big
      // for the kernel (E2BIG), a NUL byte in either. Only this task fails; the caller goes on with the others.
      return failedToStart(taskProgram, e, startedAt);
    }
    // Node's spawn knows the pid at once; the native starter tells it a moment later ('spawn'). A kill asked for
    // meanwhile is applied the moment the pid is known.
    let pid = child.pid;
    if (pid !== undefined) events.onStart?.(startedAt, pid);
    else {
      child.on('spawn', () => {
        pid = child.pid;
        if (pid === undefined || exited) return;
        if (child.startedAt !== undefined) startedAt = child.startedAt;
        // A task that waited for room: its time limit starts now (unless a slow start started it already).
        if (queued && !timedOut && !cancelled && timeout === undefined) {
          clockFrom = startedAt;
          timeout = setTimeout(() => kill('timeout'), Math.max(0, spec.timeoutMs - (Date.now() - startedAt)));
        }
        events.onStart?.(startedAt, pid);
        if (timedOut || cancelled) {
          // Killed before its start was known here (or while it waited, as it started): end it now, with the same
          // grace as any kill.
          signalGroup('SIGTERM');
          killTimer ??= setTimeout(() => signalGroup('SIGKILL'), this.killGraceMs);
        }
      });
      // Admitted, and its start is taking long (an exec that hangs: a program on an NFS mount that stopped
      // answering): its time limit counts from when it left the queue, so it still times out, killed in the starter.
      child.on('starting', (since) => {
        if (!queued || exited || timedOut || cancelled || timeout !== undefined) return;
        clockFrom = since;
        timeout = setTimeout(() => kill('timeout'), Math.max(0, spec.timeoutMs - (Date.now() - since)));
      });
    }

    const signalGroup = (sig: NodeJS.Signals, groupAlreadyKilled = false): void => {
      if (pid !== undefined && !groupAlreadyKilled) {
        try {
          process.kill(-pid, sig);
        } catch {
          /* group already gone */
        }
      }
      // The cgroup holds what the process group misses: `setsid` and double-forked children.
      if (cg) {
        if (sig === 'SIGKILL') cg.killAll();
        else cg.signalAll(sig);
      }
    };
    // Suspension (volunteer policy: the machine's owner came back). The timeout counts running time only, so it is
    // paused with the task. `pausedBy` remembers how, to undo it the same way.
    let pausedBy: 'cgroup' | 'signal' | null = null;
    let timeLeft = spec.timeoutMs;
    let clockFrom = startedAt;
    const resume = (): void => {
      if (!pausedBy) return;
      if (pausedBy === 'cgroup') cg?.setFrozen(false);
      else signalGroup('SIGCONT');
      pausedBy = null;
      if (!exited && !killTimer) {
        clockFrom = Date.now();
        timeout = setTimeout(() => kill('timeout'), timeLeft);
      }
    };
    const suspend = (): void => {
      if (pausedBy || exited || killTimer || pid === undefined) return;
      clearTimeout(timeout);
      timeLeft = Math.max(0, timeLeft - (Date.now() - clockFrom));
      pausedBy = cg?.setFrozen(true) ? 'cgroup' : 'signal';
      if (pausedBy === 'signal') signalGroup('SIGSTOP');
    };
    const kill = (reason: 'cancel' | 'timeout'): void => {
      if (exited || killTimer) return;
      if (reason === 'timeout') timedOut = true;
      else cancelled = true;
      // Still waiting for room, or still on its way to exec: dropped or killed in the starter, never started (it
      // then ends with ECANCELED).
      if (pid === undefined && this.starter.admission?.cancel(child)) return;
      signalGroup('SIGTERM');
      // A frozen or stopped process gets its SIGTERM only once running again: let it act on it now.
      if (pausedBy) {
        if (pausedBy === 'cgroup') cg?.setFrozen(false);
        else signalGroup('SIGCONT');
        pausedBy = null;
      }
      killTimer = setTimeout(() => signalGroup('SIGKILL'), this.killGraceMs);
    };
    // An admitted task's clock starts when its process does (on 'spawn').
    let timeout: NodeJS.Timeout | undefined = queued ? undefined : setTimeout(() => kill('timeout'), spec.timeoutMs);

    child.onOutput((d) => events.onStdout(d), (d) => events.onStderr(d));

    const done = new Promise<ExecResult>((resolve) => {
      let spawnError: string | null = null;
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ECANCELED' && pid === undefined && (cancelled || timedOut)) {
          // Dropped while it waited for room, as asked: not a failure to start.
          startedAt = Date.now();
          finish(null, null);
          return;
        }
        spawnError =
          e.syscall === 'cgroup'
            ? `the task could not join its cgroup (${e.code})`
            : e.code === 'ENOENT'
              ? `cannot run "${taskProgram}": no such program (is it installed and on PATH?)`
              : `cannot run "${taskProgram}": ${e.message}`;
        if (pid === undefined) finish(null, null);
      });
      // With a cgroup, the leader's exit ends the task at once: what it left behind is killed, so its pipes close
      // (without one, 'close' waits for background children that still hold them, as before).
      if (cg) child.on('exit', () => cg!.killAll());
      child.on('close', (code, signal) => finish(code, signal));
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (exited) return;
        exited = true;
        clearTimeout(timeout);
        if (killTimer) clearTimeout(killTimer);
        // Leftover background processes of the task die with it (dsg-spawn kills the group itself before 'close').
        const oomKilled = cg?.oomKilled() ?? false;
        const usage = cg?.usage();
        signalGroup('SIGKILL', child.groupKilled === true);
        const result = (): ExecResult => ({
          exitCode: code, signal: signal ?? null, timedOut, cancelled, spawnError, ...(oomKilled ? { oomKilled } : {}), ...(usage ? { usage } : {}), startedAt, finishedAt: Date.now(),
        });
        if (cg) void cg.remove().then(() => resolve(result()));
        else resolve(result());
      };
    });
    return {
      get pid() {
        return pid;
      },
      kill,
      suspend,
      resume,
      done,
    };
  }
}

/** Gives the working directory (and what inputs it holds) to the task's user. */
function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else if (!e.isSymbolicLink()) chownSync(p, uid, gid);
  }
}

/** A handle for a task whose process could not be created at all. */
export function failedToStart(program: string, e: unknown, at: number): ExecHandle {
  const err = e as NodeJS.ErrnoException;
  const why =
    err.code === 'ENOENT'
      ? 'no such program (is it installed and on PATH?)'
      : err.code === 'E2BIG'
      ? 'its arguments and environment are larger than the operating system allows (E2BIG)'
      : err.code === 'ERR_INVALID_ARG_VALUE'
        ? `${err.message.split('. Received')[0]}`
        : (err.message ?? String(e));
  const result: ExecResult = { exitCode: null, signal: null, timedOut: false, cancelled: false, spawnError: `cannot run "${program}": ${why}`, startedAt: at, finishedAt: Date.now() };
  return { pid: undefined, kill: () => undefined, done: Promise.resolve(result) };
}
