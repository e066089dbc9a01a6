/**
 * The Executor port: run one process and report how it ended. Native processes today; sandboxed (cgroups,
 * bubblewrap), container, Slurm and Kubernetes executors plug in behind the same port.
 */
export interface ExecSpec {
  /** Program and arguments (a script is run as ['/bin/sh', '-c', script]). */
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** Wall-clock limit; the executor kills the process tree when it is reached. */
  readonly timeoutMs: number;
}

export interface ExecEvents {
  onStdout(chunk: string): void;
  onStderr(chunk: string): void;
}

export interface ExecResult {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly cancelled: boolean;
  /** Set when the process could not be started at all (e.g. the program does not exist). */
  readonly spawnError: string | null;
  readonly startedAt: number;
  readonly finishedAt: number;
}

export interface ExecHandle {
  readonly pid: number | undefined;
  /** Kill the whole process tree. Idempotent. */
  kill(reason: 'cancel' | 'timeout'): void;
  readonly done: Promise<ExecResult>;
}

export interface Executor {
  start(spec: ExecSpec, events: ExecEvents): ExecHandle;
}
