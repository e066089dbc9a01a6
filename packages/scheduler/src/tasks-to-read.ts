/**
 * How many queued tasks of each job the dispatch pass should read from the store: enough to fill what the free
 * capacity could take, plus one — so a pass reads O(jobs + placeable tasks) rows, never the whole queue.
 *
 * Jobs are taken in queue order and each is given, greedily, as many tasks as still fit on the nodes big enough
 * for it (up to `prefetchFactor ×` capacity, as the pass itself allows), out of a budget of `maxAssignments`.
 * The extra task lets the pass see the first task that does not fit, which gives the job its "not now" reason.
 * A job that fits nowhere (a GPU job with no GPU node, a task bigger than every node) gets one task: enough for its
 * "never" reason. The estimate need not be exact: the pass reports `more` when a job placed every task it was
 * given, and the coordinator runs another pass.
 */
import type { Resources } from '@dsg/core';
import { checkCapacity } from './filters.js';
import { prefetchFactor, type SchedulerConfig, type SchedulerNode } from './types.js';

/** A job as the store summarises it before any of its tasks are read. */
export interface QueuedJobSummary {
  readonly resources: Resources;
  readonly typicalRunMs: number | null;
  /** How many of its tasks are queued. */
  readonly queued: number;
  /** Queue position of its first queued task. */
  readonly seq: number;
  /** Priority class rank (higher first); absent: normal (1). */
  readonly priority?: number;
}

/** For each job (same order as given), how many of its first queued tasks to read; at least 1 per job. */
export function tasksToRead(jobs: readonly QueuedJobSummary[], nodes: readonly SchedulerNode[], config: SchedulerConfig): number[] {
  const alloc = nodes.map((n) => ({ ...n.allocated }));
  const limits = new Array<number>(jobs.length).fill(1);
  let budget = config.maxAssignments;
  // Queue order, as the pass walks them (the store lists them so already; sorting keeps this pure and safe).
  const order = jobs.map((job, i) => ({ job, i })).sort((a, b) => (b.job.priority ?? 1) - (a.job.priority ?? 1) || a.job.seq - b.job.seq || a.i - b.i);
  for (const { job, i } of order) {
    const f = prefetchFactor(config, job.typicalRunMs);
    const want = job.resources;
    let k = 0;
    for (let n = 0; n < nodes.length && k < job.queued && k < budget; n++) {
      const node = nodes[n]!;
      if (checkCapacity(want, node)) continue;
      const m = Math.min(fitCount(want, node.capacity, alloc[n]!, f), job.queued - k, budget - k);
      if (m <= 0) continue;
      const a = alloc[n]!;
      a.cpuMillis += m * want.cpuMillis;
      a.memoryBytes += m * want.memoryBytes;
      a.gpus += m * want.gpus;
      a.diskBytes += m * want.diskBytes;
      k += m;
    }
    budget -= k;
    limits[i] = Math.max(1, Math.min(job.queued, k + 1));
  }
  return limits;
}

/** How many more tasks of shape `want` fit in `factor ×` capacity beyond `allocated` (Infinity if it asks for nothing). */
function fitCount(want: Resources, capacity: Resources, allocated: Resources, factor: number): number {
  let n = Infinity;
  const dims: Array<keyof Resources> = ['cpuMillis', 'memoryBytes', 'gpus', 'diskBytes'];
  for (const d of dims) {
    if (want[d] <= 0) continue;
    n = Math.min(n, Math.floor((capacity[d] * factor - allocated[d]) / want[d]));
  }
  return Math.max(0, n);
}
