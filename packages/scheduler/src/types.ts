import type { JobId, NodeId, Resources, TaskId } from '@dsg/core';

/** A node as the scheduler sees it: a frozen copy taken from the store, never a live object. */
export interface SchedulerNode {
  readonly id: NodeId;
  readonly name: string;
  /** What the node offers in total. */
  readonly capacity: Resources;
  /** What its active attempts hold now. */
  readonly allocated: Resources;
  readonly labels: Readonly<Record<string, string>>;
}

export interface SchedulerTask {
  readonly taskId: TaskId;
  readonly jobId: JobId;
  readonly resources: Resources;
  /** Queue position; lower goes first. */
  readonly seq: number;
  /** Mean run time of the job's finished attempts, or null when none has finished yet. */
  readonly typicalRunMs: number | null;
}

export interface Snapshot {
  readonly nodes: readonly SchedulerNode[];
  /** Queued tasks in queue order. */
  readonly queued: readonly SchedulerTask[];
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
   * Prefetch: a node may be sent up to `overcommit ×` its capacity; the agent queues the excess and starts each as
   * soon as a core frees, hiding the round trip to the coordinator between short tasks. Default 2; 1 turns it off.
   */
  readonly overcommit: number;
  /**
   * Only tasks of jobs whose finished attempts took less than this on average are prefetched, so a long task never
   * waits in one agent's queue while another node is idle. Default 1,000 ms.
   */
  readonly prefetchBelowMs: number;
}

export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = { strategy: 'spread', maxAssignments: 5000, overcommit: 2, prefetchBelowMs: 1000 };

/** Why a node was rejected for a task. */
export const RejectCode = {
  /** The node is too small for this task even when idle: a "never" on this node. */
  exceedsCapacity: 'exceeds_capacity',
  insufficientCpu: 'insufficient_cpu',
  insufficientMemory: 'insufficient_memory',
  insufficientGpus: 'insufficient_gpus',
  insufficientDisk: 'insufficient_disk',
} as const;
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode];

export interface NodeRejection {
  readonly nodeId: NodeId;
  readonly code: RejectCode;
  readonly message: string;
}

/** Why a task stays queued after this pass. */
export interface PendingReason {
  readonly taskId: TaskId;
  /**
   * `true` when no node in the grid could ever run it (it is bigger than every node, or there are no nodes):
   * waiting will not help unless a bigger node joins. `false` means "not now": nodes are busy.
   */
  readonly never: boolean;
  readonly summary: string;
  readonly nodes: readonly NodeRejection[];
}

export interface Assignment {
  readonly taskId: TaskId;
  readonly nodeId: NodeId;
  /** Sent ahead to wait in the agent's queue (the node is full now). */
  readonly prefetch: boolean;
}

export interface Plan {
  readonly assignments: readonly Assignment[];
  /** One entry per distinct reason group examined (tasks with the same shape share the reason of the first). */
  readonly pending: readonly PendingReason[];
}

export interface ScheduleContext {
  /** Epoch ms; unused by the first version but part of the contract (ageing, windows). */
  readonly now: number;
  /** Seeded random in [0, 1), used only to break ties. */
  readonly rng: () => number;
}
