/**
 * What happens to a task when one of its attempts ends. Pure, shared by every Store implementation so that
 * SQLite and PostgreSQL make the same decision.
 *
 * Failures are classified: `user` failures come from the job itself (non-zero exit, killed by a signal, timeout,
 * a required output that the program did not write, more memory than declared) and are retried only as often as the spec's `retries` says;
 * `system` failures come from the grid (node lost, inputs could not be fetched, the executor could not start the
 * process, the agent was stopped) and are retried up to
 * `maxSystemRetries` times whatever the spec says, because another node may well succeed.
 */
import type { AttemptState, TaskState } from './states.js';

export const FailureKind = { user: 'user', system: 'system' } as const;
export type FailureKind = (typeof FailureKind)[keyof typeof FailureKind];

export const FailureReason = {
  exitCode: 'exit_code',
  signal: 'signal',
  timeout: 'timeout',
  nodeLost: 'node_lost',
  executorError: 'executor_error',
  inputsUnavailable: 'inputs_unavailable',
  outputsFailed: 'outputs_failed',
  outputsMissing: 'outputs_missing',
  /** The agent was stopped (SIGTERM, Ctrl-C) while the attempt ran or waited: requeued for another node. */
  agentStopped: 'agent_stopped',
  /** The task used more memory than it declared and the node's limit killed it: a user failure. */
  memoryLimit: 'memory_limit',
  /**
   * A volunteer node's owner came back and stayed past the policy's grace period: the agent stopped the task so it
   * runs elsewhere. A system failure that never counts against any retry budget: nothing went wrong.
   */
  preempted: 'preempted',
  cancelled: 'cancelled',
} as const;
export type FailureReason = (typeof FailureReason)[keyof typeof FailureReason];

export interface Failure {
  readonly kind: FailureKind;
  readonly reason: FailureReason;
  readonly message: string;
}

/** How an attempt ended, as the agent (or the coordinator, for `lost`) observed it. */
export type AttemptEnd =
  | { readonly kind: 'exited'; readonly exitCode: number | null; readonly signal: string | null }
  | { readonly kind: 'timeout'; readonly timeoutMs: number }
  | { readonly kind: 'cancelled' }
  | { readonly kind: 'lost'; readonly message: string }
  | { readonly kind: 'error'; readonly reason: 'executor_error' | 'inputs_unavailable' | 'outputs_failed' | 'outputs_missing' | 'agent_stopped' | 'memory_limit' | 'preempted'; readonly message: string };

export interface AttemptHistory {
  /** User-caused failures of this task before this attempt. */
  readonly userFailures: number;
  /** System-caused failures of this task before this attempt. */
  readonly systemFailures: number;
}

export interface AttemptDecision {
  readonly attemptState: AttemptState;
  readonly taskState: TaskState;
  readonly failure: Failure | null;
  /** True when the task goes back to the queue for another attempt. */
  readonly retry: boolean;
  /**
   * Whether this end counts against the task's retry budget (its user or system failure counter goes up). False
   * for successes, cancels and `preempted` (a volunteer's owner took the machine back: requeued, never counted).
   */
  readonly counted: boolean;
}

export const DEFAULT_MAX_SYSTEM_RETRIES = 3;

export function classifyEnd(end: AttemptEnd): Failure | null {
  switch (end.kind) {
    case 'exited':
      if (end.exitCode === 0) return null;
      if (end.signal)
        return { kind: 'user', reason: 'signal', message: `killed by signal ${end.signal}` };
      return { kind: 'user', reason: 'exit_code', message: `exited with code ${end.exitCode}` };
    case 'timeout':
      return { kind: 'user', reason: 'timeout', message: `timed out after ${Math.round(end.timeoutMs / 1000)}s` };
    case 'cancelled':
      return { kind: 'user', reason: 'cancelled', message: 'cancelled' };
    case 'lost':
      return { kind: 'system', reason: 'node_lost', message: end.message };
    case 'error':
      // `outputs_missing`: the program exited 0 without writing a required output. That is the job's doing, and
      // another node would most likely do the same, so it is a user failure; so is `memory_limit` (the task used more
      // memory than it declared). Every other error is the grid's.
      return { kind: end.reason === 'outputs_missing' || end.reason === 'memory_limit' ? 'user' : 'system', reason: end.reason, message: end.message };
  }
}

export function decideAfterAttempt(
  end: AttemptEnd,
  history: AttemptHistory,
  policy: { readonly retries: number; readonly maxSystemRetries: number },
): AttemptDecision {
  const failure = classifyEnd(end);
  if (failure === null) return { attemptState: 'succeeded', taskState: 'succeeded', failure: null, retry: false, counted: false };
  if (end.kind === 'cancelled') return { attemptState: 'cancelled', taskState: 'cancelled', failure, retry: false, counted: false };
  const attemptState: AttemptState = end.kind === 'lost' ? 'lost' : 'failed';
  // Preempted by the machine's owner: always requeued and not counted, so a job on volunteer machines cannot run out
  // of retries because their owners came back (each such attempt still records its wasted time).
  if (failure.reason === 'preempted') return { attemptState, taskState: 'queued', failure, retry: true, counted: false };
  const retry =
    failure.kind === 'user'
      ? history.userFailures < policy.retries
      : history.systemFailures < policy.maxSystemRetries;
  return { attemptState, taskState: retry ? 'queued' : 'failed', failure, retry, counted: true };
}
