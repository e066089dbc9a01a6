/**
 * Fair share with memory (Slurm's fair-share factor, by dominant resource like DRF), and per-project limits. Pure.
 *
 * A project's place in line is decided by a mix of
 *   - what it holds now: its active attempts' dominant share of the grid (cores, memory or GPUs, whichever is the
 *     largest fraction), and
 *   - what it used recently: the same dominant share integrated over time with exponential decay (half-life
 *     `usageHalfLifeMs`, default 1 h), as a fraction of every project's recent use,
 * divided by its weight (`projectWeights`). Lower goes first. Without the history term a project that ran a big sweep
 * an hour ago and one that never ran look alike the moment the sweep ends; with it, the one that waited goes first
 * until use evens out — which is what scientists sharing a grid expect ("we had it all morning, they get it now").
 *
 * The decayed usage is derived from the attempts the store already keeps (start, finish, resources), so a restart
 * keeps it without a table of its own: see `decayedUsage`.
 */
import type { Resources } from '@dsg/core';

/** Per-project limits from the coordinator's settings (`projectLimits: { physics: { maxRunningTasks: 100 } }`). */
export interface ProjectLimits {
  /** At most this many of the project's tasks on nodes at once (assigned or running). */
  readonly maxRunningTasks?: number;
  /** At most this many GPUs held by the project's tasks at once. */
  readonly maxGpus?: number;
  /** At most this many of its tasks queued (enforced at admission by the coordinator, HTTP 429). */
  readonly maxQueuedTasks?: number;
}

/** What a project's attempts hold on nodes now. */
export interface ProjectActive {
  readonly tasks: number;
  readonly gpus: number;
}

export const DEFAULT_USAGE_HALF_LIFE_MS = 60 * 60 * 1000;
/** How much the decayed history counts against the current allocation (0: current only, 1: history only). */
export const DEFAULT_HISTORY_WEIGHT = 0.5;

/** The largest fraction of the grid's cores, memory or GPUs that `u` is (DRF's dominant share). */
export function dominantShare(u: Resources, total: Resources): number {
  return Math.max(
    total.cpuMillis > 0 ? u.cpuMillis / total.cpuMillis : 0,
    total.memoryBytes > 0 ? u.memoryBytes / total.memoryBytes : 0,
    total.gpus > 0 ? u.gpus / total.gpus : 0,
  );
}

/** An attempt as usage history sees it: who, how much, from when to when (null: still running). */
export interface UsageRecord {
  readonly project: string;
  readonly resources: Resources;
  readonly startedAt: number;
  readonly finishedAt: number | null;
}

/**
 * Each project's usage in resource·milliseconds, decayed: a unit held at time t counts 2^(-(now - t) / halfLife).
 * The integral over an attempt's run is exact (not sampled), so the answer does not depend on how often it is asked.
 */
export function decayedUsage(records: Iterable<UsageRecord>, now: number, halfLifeMs: number): Map<string, Resources> {
  const out = new Map<string, Resources>();
  const k = Math.LN2 / halfLifeMs;
  for (const r of records) {
    const end = Math.min(r.finishedAt ?? now, now);
    const start = Math.min(r.startedAt, end);
    // ∫_start^end 2^(-(now-t)/H) dt = (e^{-k(now-end)} − e^{-k(now-start)}) / k
    const w = (Math.exp(-k * (now - end)) - Math.exp(-k * (now - start))) / k;
    if (!(w > 0)) continue;
    const u = out.get(r.project) ?? { cpuMillis: 0, memoryBytes: 0, gpus: 0, diskBytes: 0 };
    out.set(r.project, {
      cpuMillis: u.cpuMillis + r.resources.cpuMillis * w,
      memoryBytes: u.memoryBytes + r.resources.memoryBytes * w,
      gpus: u.gpus + r.resources.gpus * w,
      diskBytes: u.diskBytes + r.resources.diskBytes * w,
    });
  }
  return out;
}

/** Each project's fraction (0…1) of all projects' recent dominant-share use (Slurm's normalised usage U). */
export function normalizedHistory(history: ReadonlyMap<string, Resources> | undefined, total: Resources): Map<string, number> {
  const out = new Map<string, number>();
  if (!history) return out;
  let sum = 0;
  for (const [p, u] of history) {
    const d = dominantShare(u, total);
    out.set(p, d);
    sum += d;
  }
  if (sum > 0) for (const [p, d] of out) out.set(p, d / sum);
  else out.clear();
  return out;
}

/**
 * Why a project may not start another task of this size now, or null. Node-independent, so the pass checks it once
 * per placement instead of once per node (it is a "busy" verdict: the next task starts when one of the project's ends).
 */
export function checkProjectLimits(project: string, want: Resources, active: ProjectActive, limits: ProjectLimits | undefined): string | null {
  if (!limits) return null;
  if (limits.maxRunningTasks !== undefined && active.tasks + 1 > limits.maxRunningTasks)
    return `project limit: "${project}" has ${active.tasks} tasks on nodes, its maxRunningTasks is ${limits.maxRunningTasks}; the next starts when one ends`;
  if (limits.maxGpus !== undefined && want.gpus > 0 && active.gpus + want.gpus > limits.maxGpus)
    return `project limit: "${project}" holds ${active.gpus} GPUs and this task needs ${want.gpus}, over its maxGpus of ${limits.maxGpus}; it starts when GPUs of the project free up`;
  return null;
}
