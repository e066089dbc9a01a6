/**
 * Reservation against starvation (Slurm's and Maui's backfill, simplified). Pure.
 *
 * A big task (8 cores on one node) behind a steady stream of small ones may never find a node with 8 cores free:
 * each core that frees is taken by the next small task. So once a job has waited `reserveAfterMs`, the pass picks
 * the node that is closest to fitting it (smallest shortfall) and reserves it: no new work is placed there, so the
 * node drains until the big task fits. **Backfill**: a task may still use the reserved node if its job's `timeoutMs`
 * proves it ends before the reserved job could start anyway (`now + timeout ≤ estimated start`, the estimate coming
 * from when the node's running tasks must end: `SchedulerNode.releases`). Without an estimate nothing backfills.
 */
import type { Resources } from '@dsg/core';
import type { SchedulerNode } from './types.js';

export const DEFAULT_RESERVE_AFTER_MS = 60_000;

export interface Reservation {
  readonly jobId: string;
  readonly nodeIndex: number;
  /** Epoch ms by which the reserved job's task fits on the node at the latest, or null when unknown. */
  readonly startAt: number | null;
}

/** How far `free` is from `want`, as the largest missing fraction of the node's capacity (0: it fits). */
export function shortfall(want: Resources, capacity: Resources, allocated: Resources): number {
  const miss = (w: number, c: number, a: number): number => (w <= c - a ? 0 : c > 0 ? (w - (c - a)) / c : Infinity);
  return Math.max(miss(want.cpuMillis, capacity.cpuMillis, allocated.cpuMillis), miss(want.memoryBytes, capacity.memoryBytes, allocated.memoryBytes), miss(want.gpus, capacity.gpus, allocated.gpus), miss(want.diskBytes, capacity.diskBytes, allocated.diskBytes));
}

/**
 * When `want` fits on the node at the latest: walk its running tasks' latest ends (`releases`, from their timeouts)
 * in time order, freeing each, until it fits. Null when the node gives no estimate or it never fits by then.
 */
export function estimatedStart(want: Resources, node: SchedulerNode, allocated: Resources, now: number): number | null {
  if (shortfall(want, node.capacity, allocated) === 0) return now;
  const rel = node.releases;
  if (!rel || rel.length === 0) return null;
  let a = allocated;
  for (const r of [...rel].sort((x, y) => x.at - y.at)) {
    a = { cpuMillis: a.cpuMillis - r.resources.cpuMillis, memoryBytes: a.memoryBytes - r.resources.memoryBytes, gpus: a.gpus - r.resources.gpus, diskBytes: a.diskBytes - r.resources.diskBytes };
    if (shortfall(want, node.capacity, a) === 0) return Math.max(r.at, now);
  }
  return null;
}

/** The eligible node closest to fitting `want` (smallest shortfall; lowest index on ties: deterministic). */
export function pickReservedNode(want: Resources, eligible: readonly number[], nodes: readonly SchedulerNode[], allocated: readonly Resources[]): number | null {
  let best: number | null = null;
  let bestMiss = Infinity;
  for (const i of eligible) {
    const m = shortfall(want, nodes[i]!.capacity, allocated[i]!);
    if (m < bestMiss) {
      best = i;
      bestMiss = m;
    }
  }
  return best;
}

/** May a task of a job with this timeout go on a node reserved until `startAt`? Only if it surely ends before. */
export const mayBackfill = (r: Reservation, timeoutMs: number | null | undefined, now: number): boolean =>
  r.startAt !== null && timeoutMs !== null && timeoutMs !== undefined && now + timeoutMs <= r.startAt;
