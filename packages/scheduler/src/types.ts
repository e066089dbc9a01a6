import type { Constraint, GpuDeviceUse, GpuGrant, GpuNeeds, IsolationRequirement, JobId, NodeFacts, NodeId, NodePolicyStatus, Resources, TaskId } from '@dsg/core';
import type { ProjectActive, ProjectLimits } from './fair-share.js';

/** A node as the scheduler sees it: a frozen copy taken from the store, never a live object. */
export interface SchedulerNode {
  readonly id: NodeId;
  readonly name: string;
  /** What the node offers in total. */
  readonly capacity: Resources;
  /** What its active attempts hold now. */
  readonly allocated: Resources;
  readonly labels: Readonly<Record<string, string>>;
  /** Probed facts (os, arch, GPUs…), matched by constraints; absent in tests that do not need them. */
  readonly facts?: NodeFacts;
  /** Its volunteer policy state, as its agent reports it; absent: no policy (always working). */
  readonly policy?: NodePolicyStatus;
  /** When its running tasks must end at the latest (start + timeout) and what they free: reservation estimates. */
  readonly releases?: ReadonlyArray<{ readonly at: number; readonly resources: Resources }>;
  /**
   * Each of its GPUs with what its active attempts hold of it (held whole, or memory given to sharing tasks). Absent:
   * no per-device state (an older snapshot): exclusive GPUs are then counted only, and shared ones never placed here.
   */
  readonly gpuDevices?: readonly GpuDeviceUse[];
}

/** What a node holds in a pass: its resources and, when known, its GPU devices' state (both grow as tasks are placed). */
export type NodeAllocation = Resources & { readonly gpuDevices?: readonly GpuDeviceUse[] };

/** A node's starting allocation in a pass (or for explain): its attempts' resources plus its devices' state. */
export const allocationOf = (n: SchedulerNode): NodeAllocation => (n.gpuDevices ? { ...n.allocated, gpuDevices: n.gpuDevices } : n.allocated);

export interface SchedulerTask {
  readonly taskId: TaskId;
  /** Queue position; lower goes first. */
  readonly seq: number;
}

/**
 * A job with queued tasks. Every task of a job asks for the same resources, so one verdict on its first task
 * holds for the rest: when it cannot be placed, the pass moves on to the next job at once.
 */
export interface SchedulerJob {
  readonly jobId: JobId;
  /** What each of its tasks asks for. */
  readonly resources: Resources;
  /** Mean run time of the job's finished attempts, or null when none has finished yet (decides prefetch). */
  readonly typicalRunMs: number | null;
  /** Queue position of its first queued task: jobs are walked in this order (FIFO across jobs). */
  readonly seq: number;
  /** How many of its tasks are queued in all; `tasks` may hold only the first few (see `tasksToRead`). */
  readonly queued: number;
  /** Its first queued tasks, in queue order. */
  readonly tasks: readonly SchedulerTask[];
  /** Hard placement conditions on node labels and facts (none when absent). */
  readonly constraints?: readonly Constraint[];
  /** Soft preferences: among feasible nodes, those matching more of these rank first. */
  readonly prefer?: readonly Constraint[];
  /** The project it belongs to (fair share is between projects). Absent: `default`. */
  readonly project?: string;
  /** Priority class rank (core's PRIORITY_CLASSES: urgent 3 … low 0); higher goes first. Absent: normal (1). */
  readonly priority?: number;
  /** At most this many of its tasks on nodes at once (the spec's `parallelism`); null or absent: no cap. */
  readonly parallelism?: number | null;
  /** Its tasks on nodes now (assigned or running). */
  readonly active?: number;
  /**
   * The operator's job: submitted with an admin token (or before owners were recorded). Nodes without isolation run
   * only these unless their operator opts in. Absent: false.
   */
  readonly operatorOwned?: boolean;
  /** The least isolation a node must give its tasks (the spec's `isolation`); absent: any. */
  readonly isolation?: IsolationRequirement;
  /** Conditions on each of its GPUs (the spec's `resources.gpu` memory and model); absent: any GPU. */
  readonly gpu?: GpuNeeds;
  /** Epoch ms its first queued task has waited since (reservation after `reserveAfterMs`); absent: never reserved for. */
  readonly waitingSince?: number;
  /** Its tasks' timeout (ms), or null/absent when they have none: only jobs with one may backfill a reserved node. */
  readonly timeoutMs?: number | null;
}

export interface Snapshot {
  readonly nodes: readonly SchedulerNode[];
  /** Every job with queued tasks (any order: the pass sorts them by `seq`). */
  readonly jobs: readonly SchedulerJob[];
  /** What each project's active attempts hold now (fair share); absent: nothing. */
  readonly projectUsage?: ReadonlyMap<string, Resources>;
  /** Each project's recent use in resource·ms, decayed by `usageHalfLifeMs` (fair-share.ts `decayedUsage`); absent: none. */
  readonly projectHistory?: ReadonlyMap<string, Resources>;
  /** Tasks and GPUs each project holds on nodes now (per-project limits); absent: nothing. */
  readonly projectActive?: ReadonlyMap<string, ProjectActive>;
}

export const Strategy = { spread: 'spread', binpack: 'binpack' } as const;
export type Strategy = (typeof Strategy)[keyof typeof Strategy];

export interface SchedulerConfig {
  /**
   * `spread` (default) puts each task on the least-loaded node that fits, so work runs on as many machines as
   * possible; `binpack` fills the busiest node that fits first, keeping other machines free for big tasks.
   */
  readonly strategy: Strategy;
  /** Most assignments in one plan, so one tick stays short. Default 5,000. */
  readonly maxAssignments: number;
  /**
   * Prefetch: a full node may be sent extra short tasks to wait in its agent's local queue, so a core that frees
   * starts the next task at once instead of waiting for a round trip to the coordinator. A task of a job whose
   * finished attempts ran `typicalRunMs` on average may be sent while the node holds less than
   * `1 + prefetchWindowMs / typicalRunMs` times its capacity (capped at `maxOvercommit`): about `prefetchWindowMs`
   * of queued work per core — and at least one task per core when tasks take under `prefetchShortTaskMs` (see
   * there). Tasks of unknown or long duration are never prefetched, so a long task cannot sit in one agent's
   * queue while another node is idle. Default 100 ms (was 50): with ~50 ms tasks two wait per core instead of one.
   * Measured with reports that keep company (agent.ts, *Delivery*), W2 on 2 cores: the grid's CPU per task 3.7 ms
   * on average over 8 runs against 4.8 over 5 at 50 ms, and no run past 1.2× the ideal (one at 50 ms took 1.6×).
   * Commits per task stayed at 0.66–0.82 (held ends leave on the 50 ms timer, about two per frame, either way), so
   * the gain is not fewer commits; the agent's queue empties less often, and a core less often waits on the
   * coordinator.
   */
  readonly prefetchWindowMs: number;
  /**
   * Tasks that typically run shorter than this get at least one task waiting per core (factor ≥ 2), however long
   * they are next to `prefetchWindowMs`. Why: with under one waiting per core, a core that frees waits for the
   * round trip (report commit, pass, dispatch commit, frame, working dir: 5–30 ms on a busy 2-core machine) — for
   * tasks of ~50 ms that cost W2 a fifth of its makespan. Past this bound the round trip is a few per cent of a task
   * and a held task would wait a whole task's time on a busy node while another is idle. Default 1,000 ms.
   */
  readonly prefetchShortTaskMs?: number;
  /**
   * Upper bound of the prefetch factor (the store enforces it too); 1 turns prefetch off. Default 32 (was 8): with
   * 1 ms tasks (`true`) 8 let 14 wait on a 2-core node, ~15 ms of work, less than an agent's report-and-refill round
   * trip on a busy machine, and its cores idled a fifth of the time. At 32 (62 waiting) 2,000 × `true` ran at
   * 1,318–1,383 tasks/s against 1,029–1,076 at 8 (bench-overhead, the same build otherwise). Only tasks under
   * ~3 ms reach it: longer ones are bounded by the window.
   */
  readonly maxOvercommit: number;
  /** Fair-share weight per project (default 1): a project of weight 2 gets twice the share of one of weight 1. */
  readonly projectWeights?: Readonly<Record<string, number>>;
  /** Per-project caps on tasks and GPUs on nodes (the pass) and queued tasks (admission). */
  readonly projectLimits?: Readonly<Record<string, ProjectLimits>>;
  /**
   * How much recent use (`snapshot.projectHistory`) counts against what a project holds now when ordering projects:
   * 0 = current allocation only, 1 = history only. Default 0.5.
   */
  readonly historyWeight?: number;
  /** Half-life of recent use (the coordinator derives `snapshot.projectHistory` with it). Default 1 h. */
  readonly usageHalfLifeMs?: number;
  /** A job that has waited this long reserves the node closest to fitting it (reservation.ts). Off (Infinity) unless set; the coordinator sets DEFAULT_RESERVE_AFTER_MS (60 s). */
  readonly reserveAfterMs?: number;
}

export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = { strategy: 'spread', maxAssignments: 5000, prefetchWindowMs: 100, maxOvercommit: 32 };

export const DEFAULT_PREFETCH_SHORT_TASK_MS = 1000;

/** How far beyond its capacity a node may be filled with tasks of this typical duration (1 = not at all). */
export function prefetchFactor(config: SchedulerConfig, typicalRunMs: number | null): number {
  if (typicalRunMs === null || config.maxOvercommit <= 1) return 1;
  const window = 1 + config.prefetchWindowMs / Math.max(typicalRunMs, 0.1);
  const onePerCore = typicalRunMs < (config.prefetchShortTaskMs ?? DEFAULT_PREFETCH_SHORT_TASK_MS) ? 2 : 1;
  return Math.min(config.maxOvercommit, Math.max(window, onePerCore));
}


/** Why a node was rejected for a task. */
export const RejectCode = {
  /** The node is too small for this task even when idle: a "never" on this node. */
  exceedsCapacity: 'exceeds_capacity',
  insufficientCpu: 'insufficient_cpu',
  insufficientMemory: 'insufficient_memory',
  insufficientGpus: 'insufficient_gpus',
  insufficientDisk: 'insufficient_disk',
  /** The node does not satisfy the job's constraints (labels, facts): a "never" on this node. */
  constraintMismatch: 'constraint_mismatch',
  /** The node does not give the isolation the job requires: never. */
  isolationTooWeak: 'isolation_too_weak',
  /** The node has no isolation and runs only the operator's jobs (unless opted in): never. */
  unisolatedNode: 'unisolated_node',
  /** The node has fewer GPUs than each task asks for: never. */
  gpuCount: 'gpu_count',
  /** The node has too few GPUs of the asked model: never. */
  gpuModel: 'gpu_model',
  /** The node has too few GPUs (of the model) with the asked memory: never. */
  gpuMemory: 'gpu_memory',
  /** Enough such GPUs, but too few free now (held whole, or too little memory left to share): "not now". */
  gpuBusy: 'gpu_busy',
  /** The node's volunteer policy holds it back now (owner active, outside its window, on battery, too hot): "not now". */
  nodePolicy: 'node_policy',
} as const;
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode];

export interface NodeRejection {
  readonly nodeId: NodeId;
  readonly code: RejectCode;
  readonly message: string;
}

/** Why a job's queued tasks stay queued after this pass. */
export interface PendingReason {
  readonly jobId: JobId;
  /** The job's first task that could not be placed (the one the reason was computed for). */
  readonly taskId: TaskId;
  /**
   * `true` when no node in the grid could ever run it (it is bigger than every node, or there are no nodes):
   * waiting will not help unless a bigger node joins. `false` means "not now": nodes are busy.
   */
  readonly never: boolean;
  /** Set when the job waits for a reason that is not about nodes: `project_limit` (a per-project cap). */
  readonly code?: 'project_limit';
  readonly summary: string;
  readonly nodes: readonly NodeRejection[];
}

export interface Assignment {
  readonly taskId: TaskId;
  readonly nodeId: NodeId;
  /** Sent ahead to wait in the agent's queue (the node is full now). */
  readonly prefetch: boolean;
  /** The GPU devices chosen for it (`choose-gpus.ts`); absent: no GPU, or a node without per-device state. */
  readonly gpus?: readonly GpuGrant[];
}

export interface Plan {
  readonly assignments: readonly Assignment[];
  /**
   * One entry per job left with queued tasks it examined (jobs with the same shape share the reason of the
   * first). Jobs not reached (the pass stopped at `maxAssignments`) have none.
   */
  readonly pending: readonly PendingReason[];
  /**
   * True when another pass may place more now: the pass stopped at `maxAssignments`, or a job had every task it
   * was given placed while it has more queued.
   */
  readonly more: boolean;
}

export interface ScheduleContext {
  /** Epoch ms; unused by the first version but part of the contract (ageing, windows). */
  readonly now: number;
  /** Seeded random in [0, 1), used only to break ties. */
  readonly rng: () => number;
}
