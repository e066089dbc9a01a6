import type { CompiledPolicy } from './policy/policy-file.js';
import type { LinuxReaderOptions } from './policy/readers.js';

/** Options for one agent process. The CLI's config module builds these (defaults < file < DSG_* env < flags). */
export interface AgentOptions {
  /**
   * Report these GPUs instead of probing nvidia-smi / rocm-smi (`DSG_FAKE_GPUS`, see probe.ts parseFakeGpus): for
   * tests and demos of GPU scheduling on machines without one. Tasks get device ids as on a real machine. Default:
   * none (probe the real GPUs).
   */
  readonly fakeGpus?: string;
  /** Coordinator base URL, e.g. `http://192.168.1.10:7070`. */
  readonly coordinatorUrl: string;
  /**
   * Node join token (or an admin token): used only for this node's first contact. The coordinator then issues the
   * node its own credential, kept in `<stateDir>/node.json` (mode 0600) and used from then on.
   */
  readonly token?: string;
  /**
   * The coordinator certificate's fingerprint (`sha256:…`) to pin for an `https://` coordinator with a self-signed
   * certificate (from the join command `dsg up` prints). Saved in node.json after the first connection, so later
   * starts need not repeat it. Without one (and none saved), the certificate is verified the usual way.
   */
  readonly tlsFingerprint?: string;
  /** Where the agent keeps its node id and caches (created if missing). */
  readonly stateDir: string;
  /** Where task working directories go. Default `<stateDir>/work`. */
  readonly workDir?: string;
  /** Node name shown in `dsg nodes`. Default: the hostname. */
  readonly name?: string;
  /** Cores offered to the grid. Default: all cores. */
  readonly cpus?: number;
  /** Memory offered, in bytes. Default: total memory minus 10% (at least 256 MiB kept back). */
  readonly memoryBytes?: number;
  /** Labels for scheduling constraints. Default: none. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Keep working directories of finished attempts (for debugging). Default false. */
  readonly keepWorkDirs?: boolean;
  /** Environment every task inherits (PATH, HOME, LANG, …) before the spec's env and DSG_* vars. Default: PATH only. */
  readonly baseEnv?: Readonly<Record<string, string>>;
  /** Time between SIGTERM and SIGKILL when a task is cancelled or times out. Default 5000 ms. */
  readonly killGraceMs?: number;
  /**
   * How tasks are started. `auto` (default): through the native process starter `dsg-spawn`, driven by the agent
   * itself, when it was built and runs here (a small C helper that forks without copying Node; no process or JSON
   * hop between the agent and the fork), else through a small launcher helper process using Node's spawn (which
   * keeps forking Node off the agent). `launcher`: always the helper (it uses `dsg-spawn` when it can). `native`:
   * Node's spawn from the agent itself.
   */
  readonly executor?: 'auto' | 'launcher' | 'native';
  /**
   * The strongest isolation to give tasks: `sandbox` (default: bubblewrap plus per-task cgroups, each as available),
   * `cgroups` (limits and whole-task kill, no sandbox) or `none` (plain processes). What the node really does is
   * reported in its facts (`dsg nodes`) and logged at start with the reason for any step down.
   */
  readonly isolation?: 'none' | 'cgroups' | 'sandbox';
  /** Most processes and threads one task may have at once (cgroup `pids.max`). Default 1024. */
  readonly maxProcesses?: number;
  /** Give network access to jobs that ask for it (`network: true`). Default true; sandboxed tasks never get it otherwise. */
  readonly allowNetwork?: boolean;
  /**
   * Run jobs of anyone (not only the grid operator's) even when this node has no task isolation. Default false:
   * a node without isolation would give a stranger's code this machine's user account.
   */
  readonly allowUnisolatedJobs?: boolean;
  /** User id tasks run as when the agent runs as root (group id the same). Default 65534 (nobody). */
  readonly taskUid?: number;
  /**
   * More directories sandboxed tasks must not see (a coordinator's data directory on the same machine). The agent's
   * state and work directories are always hidden. Default none.
   */
  readonly hidePaths?: readonly string[];
  /**
   * The volunteer policy (see policy/policy-file.ts): share limits (capping `cpus`, `memoryBytes` and the GPUs
   * offered), idle-only, time windows, AC power, temperature ceiling, grace period. Default: none — the agent
   * offers what `cpus` / `memoryBytes` say, at all times.
   */
  readonly policy?: CompiledPolicy;
  /** Where the Linux policy readers look (tests point them at fake trees) and the X display for `xprintidle`. */
  readonly policyReaders?: LinuxReaderOptions;
  /** Log sink; default writes nothing. */
  readonly log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
}

export interface RunningAgent {
  /** Resolves once the agent has been welcomed the first time (rejects never; use with a timeout). */
  readonly connected: Promise<void>;
  /** The node id once the coordinator has welcomed this agent. */
  nodeId(): string | null;
  /**
   * Stop: tell the coordinator, interrupt every attempt held (killed, reported as `agent_stopped` — a system
   * failure the coordinator requeues at once, never `cancelled`), wait briefly for the acks, close the connection.
   */
  stop(): Promise<void>;
}
