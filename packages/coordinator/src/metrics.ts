/**
 * Prometheus metrics (prom-client), served at `GET /metrics` (bearer token, like every route but health). Names
 * follow the Prometheus conventions (`dsg_` prefix, base units, `_total` for counters); `promtool check metrics`
 * checks them in a test. Gauges of the grid's state are read from the store when scraped; counters and the pass
 * histogram are fed by the engine as things happen. One registry per coordinator (tests run several in a process).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Store } from '@dsg/store';

/** What the engine reports as it works. */
export interface EngineMetrics {
  /** A dispatch pass planned `placed` tasks in `seconds` (reads and scheduling). */
  observePass(seconds: number, placed: number): void;
  /** Tasks reached a state after an attempt ended: succeeded, failed, cancelled, or requeued for a retry. */
  countOutcome(outcome: 'succeeded' | 'failed' | 'cancelled' | 'retried', n?: number): void;
}

export class CoordinatorMetrics implements EngineMetrics {
  readonly registry = new Registry();
  private readonly passSeconds: Histogram;
  private readonly placements: Counter;
  private readonly outcomes: Counter<'outcome'>;

  constructor(store: Store) {
    const registers = [this.registry];
    this.passSeconds = new Histogram({
      name: 'dsg_scheduler_pass_duration_seconds',
      help: 'Time a dispatch pass took to read the queue and plan (before applying the plan).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.placements = new Counter({ name: 'dsg_placements_total', help: 'Tasks placed on nodes by dispatch passes.', registers });
    this.outcomes = new Counter({
      name: 'dsg_task_outcomes_total',
      help: 'Task outcomes after an attempt ended: succeeded, failed, cancelled, or retried (back to the queue).',
      labelNames: ['outcome'],
      registers,
    });
    new Gauge({
      name: 'dsg_tasks',
      help: 'Tasks of unfinished jobs by state (queued, assigned, running) and project.',
      labelNames: ['state', 'project'],
      registers,
      async collect() {
        const c = await store.activeTaskCounts();
        for (const state of ['queued', 'assigned', 'running'] as const) this.set({ state, project: 'default' }, c[state]);
      },
    });
    // The node and resource gauges share one store read per scrape (prom-client collects all metrics at once).
    let pending: Promise<NodeSummary> | null = null;
    const read = (): Promise<NodeSummary> => {
      if (!pending) {
        pending = summarizeNodes(store);
        void pending.finally(() => setImmediate(() => (pending = null))).catch(() => undefined);
      }
      return pending;
    };
    new Gauge({
      name: 'dsg_nodes',
      help: 'Nodes by state.',
      labelNames: ['state'],
      registers,
      async collect() {
        for (const [state, n] of Object.entries((await read()).byState)) this.set({ state }, n);
      },
    });
    const resource = (name: string, help: string, key: 'cpu' | 'mem' | 'gpus'): void => {
      new Gauge({
        name, help, labelNames: ['kind'], registers,
        async collect() {
          const r = await read();
          this.set({ kind: 'total' }, r.total[key]);
          this.set({ kind: 'allocated' }, r.used[key]);
        },
      });
    };
    resource('dsg_cpu_cores', 'CPU cores of online nodes: total, and allocated to tasks.', 'cpu');
    resource('dsg_memory_bytes', 'Memory of online nodes: total, and allocated to tasks.', 'mem');
    resource('dsg_gpus', 'GPUs of online nodes: total, and allocated to tasks.', 'gpus');
  }

  observePass(seconds: number, placed: number): void {
    this.passSeconds.observe(seconds);
    if (placed > 0) this.placements.inc(placed);
  }

  countOutcome(outcome: 'succeeded' | 'failed' | 'cancelled' | 'retried', n = 1): void {
    this.outcomes.inc({ outcome }, n);
  }

  /** The exposition text, and its content type. */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}

interface NodeSummary {
  readonly byState: Record<string, number>;
  readonly total: { cpu: number; mem: number; gpus: number };
  readonly used: { cpu: number; mem: number; gpus: number };
}

async function summarizeNodes(store: Store): Promise<NodeSummary> {
  const byState: Record<string, number> = { online: 0, offline: 0, lost: 0 };
  const total = { cpu: 0, mem: 0, gpus: 0 };
  const used = { cpu: 0, mem: 0, gpus: 0 };
  for (const u of await store.listNodeUsage()) {
    byState[u.node.state] = (byState[u.node.state] ?? 0) + 1;
    if (u.node.state !== 'online') continue;
    total.cpu += u.node.capacity.cpuMillis / 1000;
    total.mem += u.node.capacity.memoryBytes;
    total.gpus += u.node.capacity.gpus;
    used.cpu += u.allocated.cpuMillis / 1000;
    used.mem += u.allocated.memoryBytes;
    used.gpus += u.allocated.gpus;
  }
  return { byState, total, used };
}
