/**
 * LauncherExecutor: runs tasks through a long-lived helper process (launcher-main.ts) instead of forking the agent
 * itself. Same contract as NativeExecutor (it uses NativeExecutor inside the helper): own process group per task,
 * tree kill on cancel/timeout, exit code or signal.
 *
 *   helper: (none) ──first start──▶ up ──exit/crash──▶ (none)   in-flight tasks end with an executor error;
 *                                                            the next start launches a new helper.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ExecEvents, ExecHandle, ExecResources, ExecResult, ExecSpec, Executor } from './executor.js';
import type { IsolationSettings } from '../probe/isolation.js';

const MAIN = fileURLToPath(new URL('./launcher-main.js', import.meta.url));

interface Pending {
  /** The task's process group, once the helper has reported it. */
  pid?: number;
  readonly events: ExecEvents;
  readonly resolve: (r: ExecResult) => void;
  readonly startedAt: number;
}

export class LauncherExecutor implements Executor {
  private helper: ChildProcess | null = null;
  private readonly inflight = new Map<string, Pending>();
  private seq = 0;
  private buffer: string[] = [];
  private flushQueued = false;

  /**
   * @param options.capacity when given, the helper admits tasks against it (see AdmissionExecutor), so a waiting
   * task starts there the moment another ends. Default: start every task at once.
   * @param options.isolation sandbox, cgroup limits and task user applied in the helper. Default: none.
   * @param options.starter how the helper creates processes: `auto` (default: the native starter dsg-spawn when it
   * was built and runs here, else Node's spawn) or `node`.
   * @param options.onStarter told which starter each new helper uses (and why not the native one). Default: none.
   */
  constructor(private readonly options: { killGraceMs?: number; capacity?: ExecResources; isolation?: IsolationSettings; starter?: 'auto' | 'node'; onStarter?: (s: { starter: 'native' | 'node'; why?: string }) => void } = {}) {}

  /** Which process starter the helper uses, once it has said so (after the first start). */
  starterInUse: { starter: 'native' | 'node'; why?: string } | null = null;

  private ensureHelper(): ChildProcess {
    if (this.helper) return this.helper;
    const args = [MAIN, String(this.options.killGraceMs ?? 5000), this.options.capacity ? JSON.stringify(this.options.capacity) : '-', this.options.isolation ? JSON.stringify(this.options.isolation) : '-', this.options.starter ?? 'auto'];
    const h = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.helper = h;
    createInterface({ input: h.stdout! }).on('line', (line) => this.onLine(line));
    h.on('exit', (code, signal) => {
      if (this.helper === h) this.helper = null;
      for (const [id, p] of this.inflight) {
        this.inflight.delete(id);
        // Its tasks must not outlive it unsupervised: kill their process groups.
        if (p.pid !== undefined) {
          try {
            process.kill(-p.pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
        p.resolve({ exitCode: null, signal: null, timedOut: false, cancelled: false, spawnError: `the process launcher exited (${signal ?? code}) while the task ran`, startedAt: p.startedAt, finishedAt: Date.now() });
      }
    });
    h.stdin!.on('error', () => undefined); // a dead helper is handled by 'exit'
    return h;
  }

  private send(msg: unknown): void {
    this.buffer.push(JSON.stringify(msg));
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      const text = `${this.buffer.join('\n')}\n`;
      this.buffer = [];
      this.ensureHelper().stdin!.write(text);
    });
  }

  private onLine(line: string): void {
    let m:
      | { id?: undefined; ev: 'hello'; starter: 'native' | 'node'; why?: string }
      | { id: string; ev: 'start'; pid: number | undefined; at: number }
      | { id: string; ev: 'out'; stream: 'stdout' | 'stderr'; data: string }
      | { id: string; ev: 'done'; result: ExecResult };
    try {
      m = JSON.parse(line) as typeof m;
    } catch {
      return;
    }
    if (m.ev === 'hello') {
      const first = this.starterInUse === null;
      this.starterInUse = { starter: m.starter, ...(m.why ? { why: m.why } : {}) };
      if (first) this.options.onStarter?.(this.starterInUse);
      return;
    }
    const p = this.inflight.get(m.id);
    if (!p) return;
    if (m.ev === 'start') {
      if (m.pid !== undefined) p.pid = m.pid;
      p.events.onStart?.(m.at, m.pid);
    } else if (m.ev === 'out') {
      if (m.stream === 'stdout') p.events.onStdout(m.data);
      else p.events.onStderr(m.data);
    } else {
      this.inflight.delete(m.id);
      p.resolve(m.result);
    }
  }

  start(spec: ExecSpec, events: ExecEvents): ExecHandle {
    const id = String(++this.seq);
    this.ensureHelper();
    const done = new Promise<ExecResult>((resolve) => this.inflight.set(id, { events, resolve, startedAt: Date.now() }));
    this.send({ op: 'start', id, argv: spec.argv, cwd: spec.cwd, env: spec.env, timeoutMs: spec.timeoutMs, ...(spec.resources ? { resources: spec.resources } : {}), ...(spec.network ? { network: true } : {}) });
    return {
      pid: undefined,
      kill: (reason) => {
        if (this.inflight.has(id)) this.send({ op: 'kill', id, reason });
      },
      suspend: () => {
        if (this.inflight.has(id)) this.send({ op: 'suspend', id });
      },
      resume: () => {
        if (this.inflight.has(id)) this.send({ op: 'resume', id });
      },
      done,
    };
  }

  /** Stop the helper (it kills whatever still runs). */
  close(): void {
    this.helper?.stdin?.end();
    this.helper = null;
  }
}
