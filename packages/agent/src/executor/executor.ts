/**
 * The Executor port: run one process and report how it ended. Native processes today; sandboxed (cgroups,
 * bubblewrap), container, Slurm and Kubernetes executors plug in behind the same port.
 *
 * An executor may hold a task back until the resources it declares are free (see AdmissionExecutor); `onStart`
 * fires when its process really starts, and its timeout counts from then.
 */
export interface ExecSpec {
  /** Program and arguments (a script is run as ['/bin/sh', '-c', script]). */
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** Wall-clock limit from the start; the executor kills the process tree when it is reached. */
  readonly timeoutMs: number;
  /** What the task declared it needs; executors that admit by capacity wait until it is free. */
  readonly resources?: ExecResources;
  /** The job asked for network access (a sandboxed task has none otherwise, and only if the node allows it). */
  readonly network?: boolean;
}

export interface ExecResources {
  readonly cpuMillis: number;
  readonly memoryBytes: number;
  readonly gpus: number;
}

export interface ExecEvents {
  onStdout(chunk: string): void;
  onStderr(chunk: string): void;
  /** The process has started (after any wait for resources). */
  onStart?(at: number, pid: number | undefined): void;
}

export interface ExecResult {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly cancelled: boolean;
  /** Set when the process could not be started at all (e.g. the program does not exist). */
  readonly spawnError: string | null;
  /** The kernel killed a process of the task for exceeding its memory limit (cgroup OOM kill). */
  readonly oomKilled?: boolean;
  /** What the executor measured (per-task cgroup), for the contribution ledger; absent without a cgroup. */
  readonly usage?: { readonly cpuMs?: number; readonly peakMemoryBytes?: number };
  readonly startedAt: number;
  readonly finishedAt: number;
}

export interface ExecHandle {
  /** The process (group) id once started, if the executor knows it. */
  readonly pid: number | undefined;
  /** Kill the whole process tree. Idempotent. A suspended task is resumed after its SIGTERM, so it can act on it. */
  kill(reason: 'cancel' | 'timeout'): void;
  /**
   * Pause every process of the task at once (cgroup freezer, else SIGSTOP to its process group) and stop its
   * timeout clock; idempotent. Absent: the executor cannot (the agent then only stops such tasks).
   */
  suspend?(): void;
  /** Undo `suspend` (thaw, or SIGCONT); the timeout clock runs again. Idempotent. */
  resume?(): void;
  readonly done: Promise<ExecResult>;
}

export interface Executor {
  start(spec: ExecSpec, events: ExecEvents): ExecHandle;
  /** Tasks held back for room (prefetched), when the executor admits by capacity. */
  readonly waiting?: number;
}
