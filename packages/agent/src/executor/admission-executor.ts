/**
 * AdmissionExecutor: starts tasks only while the resources they declare fit in a capacity, holding the rest in
 * arrival order (the coordinator prefetches short tasks to the agent; they wait here). Wraps any executor.
 *
 *   queued ──fits──▶ started (inner executor) ──exit──▶ done, and the head of the queue is started
 *   queued ──kill──▶ done (cancelled, never started)
 *
 * A task bigger than the whole capacity would never fit; it is started when nothing else runs rather than block
 * the queue forever (the agent refuses such tasks before they get here, so this is only a guard).
 */
import type { ExecEvents, ExecHandle, ExecResources, ExecResult, ExecSpec, Executor } from './executor.js';
import { failedToStart, NativeExecutor } from './native-executor.js';

interface Waiting {
  readonly spec: ExecSpec;
  readonly events: ExecEvents;
  readonly begin: () => void;
  readonly cancel: (reason: 'cancel' | 'timeout') => void;
}

const NONE: ExecResources = { cpuMillis: 0, memoryBytes: 0, gpus: 0 };

export class AdmissionExecutor implements Executor {
  private used = { cpuMillis: 0, memoryBytes: 0, gpus: 0 };
  private running = 0;
  private readonly queue: Waiting[] = [];

  constructor(private readonly inner: Executor, private readonly capacity: ExecResources) {}

  /** Tasks held for room (prefetched): while there are some, a core that frees has its next task already here. */
  get waiting(): number {
    return this.queue.length;
  }

  private fits(r: ExecResources): boolean {
    if (this.running === 0) return true;
    const c = this.capacity;
    return this.used.cpuMillis + r.cpuMillis <= c.cpuMillis && this.used.memoryBytes + r.memoryBytes <= c.memoryBytes && this.used.gpus + r.gpus <= c.gpus;
  }

  private take(r: ExecResources, sign: 1 | -1): void {
    this.used = {
      cpuMillis: this.used.cpuMillis + sign * r.cpuMillis,
      memoryBytes: this.used.memoryBytes + sign * r.memoryBytes,
      gpus: this.used.gpus + sign * r.gpus,
    };
    this.running += sign;
  }

  private pump(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.spec.resources ?? NONE)) this.queue.shift()!.begin();
  }

  start(spec: ExecSpec, events: ExecEvents): ExecHandle {
    const r = spec.resources ?? NONE;
    let inner: ExecHandle | null = null;
    let settle!: (res: ExecResult) => void;
    const done = new Promise<ExecResult>((res) => (settle = res));
    const begin = (): void => {
      this.take(r, 1);
      try {
        inner = this.inner.start(spec, events);
      } catch (e) {
        // An executor that throws instead of reporting a spawn error: fail this task alone, free its share.
        inner = failedToStart(spec.argv[0] ?? '', e, Date.now());
      }
      void inner.done.then((res) => {
        this.take(r, -1);
        settle(res);
        this.pump();
      });
    };
    const waiting: Waiting = {
      spec,
      events,
      begin,
      cancel: (reason) => {
        const i = this.queue.indexOf(waiting);
        if (i >= 0) this.queue.splice(i, 1);
        const now = Date.now();
        settle({ exitCode: null, signal: null, timedOut: reason === 'timeout', cancelled: reason === 'cancel', spawnError: null, startedAt: now, finishedAt: now });
      },
    };
    if (this.queue.length === 0 && this.fits(r)) begin();
    else this.queue.push(waiting);
    return {
      get pid() {
        return inner?.pid;
      },
      kill: (reason) => {
        if (inner) inner.kill(reason);
        else waiting.cancel(reason);
      },
      // A task still waiting for room has nothing to pause: it starts as usual (the agent suspends it then).
      suspend: () => (inner as ExecHandle | null)?.suspend?.(),
      resume: () => (inner as ExecHandle | null)?.resume?.(),
      done,
    };
  }
}

/** `executor` as is when it admits tasks itself (a NativeExecutor admitting in its starter), else behind an AdmissionExecutor. */
export function admitting(executor: Executor, capacity: ExecResources): Executor {
  return executor instanceof NativeExecutor && executor.admits ? executor : new AdmissionExecutor(executor, capacity);
}
