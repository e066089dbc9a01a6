/**
 * Task and attempt lifecycles as transition tables.
 *
 * A task is one element of a job's array. It runs as one or more attempts; each attempt has its own id, and every
 * report from an agent names the attempt, so a report about an attempt that is no longer the task's current one
 * (a node that came back after being declared lost, a duplicate after a reconnect) is recognised and ignored.
 *
 *   task:     queued ──assign──▶ assigned ──start──▶ running ──▶ succeeded | failed | cancelled
 *               ▲                   │                  │
 *               └──── requeue ──────┴──────────────────┘   (retry after a failure, or node lost)
 *             queued/assigned ──▶ cancelled | failed         (cancel; or fail before start, e.g. inputs missing)
 *
 *   attempt:  assigned ──▶ running ──▶ succeeded | failed | cancelled | lost
 *             assigned ──▶ succeeded | failed | cancelled | lost   (a fast task may report its end with its start)
 *
 * Terminal states have no way out. Every change goes through `assertTaskTransition` / `assertAttemptTransition`.
 */
import { IllegalTransitionError } from './errors.js';

export const TaskState = {
  queued: 'queued',
  assigned: 'assigned',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];
export const TASK_STATES: readonly TaskState[] = Object.values(TaskState);

export const AttemptState = {
  assigned: 'assigned',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  lost: 'lost',
} as const;
export type AttemptState = (typeof AttemptState)[keyof typeof AttemptState];
export const ATTEMPT_STATES: readonly AttemptState[] = Object.values(AttemptState);

export const TASK_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  queued: ['assigned', 'cancelled', 'failed'],
  assigned: ['running', 'queued', 'succeeded', 'failed', 'cancelled'],
  running: ['succeeded', 'failed', 'cancelled', 'queued'],
  succeeded: [],
  failed: [],
  cancelled: [],
};

export const ATTEMPT_TRANSITIONS: Readonly<Record<AttemptState, readonly AttemptState[]>> = {
  assigned: ['running', 'succeeded', 'failed', 'cancelled', 'lost'],
  running: ['succeeded', 'failed', 'cancelled', 'lost'],
  succeeded: [],
  failed: [],
  cancelled: [],
  lost: [],
};

/**
 * The only ways out of a terminal task state: an explicit `dsg retry` puts failed and cancelled tasks back in the
 * queue (a succeeded task is never run again). Kept apart from TASK_TRANSITIONS so no ordinary path can do it.
 */
export const TASK_RETRY_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  queued: [], assigned: [], running: [], succeeded: [], failed: ['queued'], cancelled: ['queued'],
};
export function assertTaskRetry(from: TaskState, to: TaskState): void {
  if (!TASK_RETRY_TRANSITIONS[from].includes(to)) throw new IllegalTransitionError('task retry', from, to);
}

export const canTaskTransition = (from: TaskState, to: TaskState): boolean => TASK_TRANSITIONS[from].includes(to);
export const canAttemptTransition = (from: AttemptState, to: AttemptState): boolean =>
  ATTEMPT_TRANSITIONS[from].includes(to);

export function assertTaskTransition(from: TaskState, to: TaskState): void {
  if (!canTaskTransition(from, to)) throw new IllegalTransitionError('task', from, to);
}
export function assertAttemptTransition(from: AttemptState, to: AttemptState): void {
  if (!canAttemptTransition(from, to)) throw new IllegalTransitionError('attempt', from, to);
}

export const isTerminalTask = (s: TaskState): boolean => TASK_TRANSITIONS[s].length === 0;
export const isTerminalAttempt = (s: AttemptState): boolean => ATTEMPT_TRANSITIONS[s].length === 0;
/** Attempts that hold resources on a node. */
export const isActiveAttempt = (s: AttemptState): boolean => s === 'assigned' || s === 'running';

/**
 * A job's state is derived from its tasks' counts (and, for a workflow stage, from its release); it is never
 * stored. `waiting`: a stage whose tasks are not (all) created yet because what it needs has not succeeded;
 * `skipped`: a stage (or some of its tasks) that will never run because something it needs did not succeed.
 */
export const JobState = {
  waiting: 'waiting',
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  skipped: 'skipped',
  cancelled: 'cancelled',
} as const;
export type JobState = (typeof JobState)[keyof typeof JobState];
export const JOB_STATES: readonly JobState[] = Object.values(JobState);

export type TaskCounts = Record<TaskState, number>;
export const emptyTaskCounts = (): TaskCounts => ({
  queued: 0, assigned: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0,
});
export const createdTasks = (c: TaskCounts): number => c.queued + c.assigned + c.running + c.succeeded + c.failed + c.cancelled;

/** How far a workflow stage has been released. A plain job: released, no skip reason, every task created. */
export interface JobGate {
  /** Its tasks are created (whole stage), or are being created item by item. */
  readonly released: boolean;
  /** Why some or all of its tasks will never be created. */
  readonly skipReason: string | null;
  /** Tasks it will have in all; 0 before a fan-out over files is resolved. */
  readonly taskCount: number;
}

/**
 * A job whose cancel was requested reads `cancelled` once all its tasks have ended. The SQL twin of this function
 * (store/src/sqlite/rows.ts JOB_STATE_SQL) must agree with it; a conformance test checks both.
 */
export function deriveJobState(counts: TaskCounts, cancelRequested = false, gate?: JobGate): JobState {
  const created = createdTasks(counts);
  const g = gate ?? { released: true, skipReason: null, taskCount: created };
  if (!g.released) {
    if (cancelRequested) return 'cancelled';
    return g.skipReason ? 'skipped' : 'waiting';
  }
  const active = counts.queued + counts.assigned + counts.running;
  if (active > 0) return created - counts.queued > 0 ? 'running' : 'queued';
  const held = Math.max(0, g.taskCount - created);
  if ((held > 0 || (g.taskCount === 0 && created === 0)) && !g.skipReason && !cancelRequested) return created > 0 ? 'running' : 'waiting';
  if (cancelRequested) return 'cancelled';
  if (counts.failed > 0) return 'failed';
  if (held > 0 || (g.skipReason && created === 0)) return 'skipped';
  if (counts.cancelled > 0) return 'cancelled';
  return 'succeeded';
}

export const isTerminalJob = (s: JobState): boolean => s === 'succeeded' || s === 'failed' || s === 'cancelled' || s === 'skipped';
