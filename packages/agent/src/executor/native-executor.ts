/**
 * NativeExecutor: each task is a child process in its own process group (`detached: true`), so the whole tree —
 * the shell, and everything it started — is signalled at once: SIGTERM, then SIGKILL after `killGraceMs`.
 *
 *   running ──exit──▶ done
 *   running ──kill(cancel|timeout)──▶ terminating (SIGTERM to the group) ──grace──▶ SIGKILL ──exit──▶ done
 *
 * After the leader exits, the group is SIGKILLed once more, so background children a script left behind do not
 * outlive their task. The spawn path avoids sync calls and uses no shell unless the task is a script.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { ExecEvents, ExecHandle, ExecResult, ExecSpec, Executor } from './executor.js';

export interface NativeExecutorOptions {
  /** Time between SIGTERM and SIGKILL. Default 5000 ms. */
  readonly killGraceMs?: number;
}

export class NativeExecutor implements Executor {
  private readonly killGraceMs: number;
  constructor(options: NativeExecutorOptions = {}) {
    this.killGraceMs = options.killGraceMs ?? 5000;
  }

  start(spec: ExecSpec, events: ExecEvents): ExecHandle {
    const startedAt = Date.now();
    const [program, ...args] = spec.argv;
    let timedOut = false;
    let cancelled = false;
    let killTimer: NodeJS.Timeout | null = null;
    let exited = false;
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(program!, args, { cwd: spec.cwd, env: spec.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      // spawn() throws, rather than emitting 'error', for what can never start: arguments or environment too big
      // for the kernel (E2BIG), a NUL byte in either. Only this task fails; the caller goes on with the others.
      return failedToStart(program ?? '', e, startedAt);
    }
    const pid = child.pid;
    if (pid !== undefined) events.onStart?.(startedAt, pid);

    const signalGroup = (sig: NodeJS.Signals): void => {
      if (pid === undefined) return;
      try {
        process.kill(-pid, sig);
      } catch {
        /* group already gone */
      }
    };
    const kill = (reason: 'cancel' | 'timeout'): void => {
      if (exited || killTimer) return;
      if (reason === 'timeout') timedOut = true;
      else cancelled = true;
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), this.killGraceMs);
    };
    const timeout = setTimeout(() => kill('timeout'), spec.timeoutMs);

    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => events.onStdout(d));
    child.stderr.on('data', (d: string) => events.onStderr(d));

    const done = new Promise<ExecResult>((resolve) => {
      let spawnError: string | null = null;
      child.on('error', (e: NodeJS.ErrnoException) => {
        spawnError = e.code === 'ENOENT' ? `cannot run "${program}": no such program (is it installed and on PATH?)` : `cannot run "${program}": ${e.message}`;
        if (pid === undefined) finish(null, null);
      });
      child.on('close', (code, signal) => finish(code, signal));
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (exited) return;
        exited = true;
        clearTimeout(timeout);
        if (killTimer) clearTimeout(killTimer);
        // Leftover background processes of the task die with it.
        signalGroup('SIGKILL');
        resolve({ exitCode: code, signal: signal ?? null, timedOut, cancelled, spawnError, startedAt, finishedAt: Date.now() });
      };
    });
    return { pid, kill, done };
  }
}

/** A handle for a task whose process could not be created at all. */
export function failedToStart(program: string, e: unknown, at: number): ExecHandle {
  const err = e as NodeJS.ErrnoException;
  const why =
    err.code === 'E2BIG'
      ? 'its arguments and environment are larger than the operating system allows (E2BIG)'
      : err.code === 'ERR_INVALID_ARG_VALUE'
        ? `${err.message.split('. Received')[0]}`
        : (err.message ?? String(e));
  const result: ExecResult = { exitCode: null, signal: null, timedOut: false, cancelled: false, spawnError: `cannot run "${program}": ${why}`, startedAt: at, finishedAt: Date.now() };
  return { pid: undefined, kill: () => undefined, done: Promise.resolve(result) };
}
