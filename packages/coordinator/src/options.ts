/**
 * Failure-detection defaults. With them a dead agent (closed connection) is offline at once and a frozen one
 * (silent, connection open) within 3 heartbeats + 1 s = 7 s; either one's tasks are requeued within nodeTimeout +
 * 1 s = 11 s of when it was last heard from. The CLI's settings (`heartbeatSeconds`, `nodeTimeoutSeconds`) use
 * the same values.
 */
export const COORDINATOR_DEFAULTS = {
  heartbeatIntervalSeconds: 2,
  nodeTimeoutSeconds: 10,
  /** Heartbeats a connected agent may miss before it is taken for frozen. */
  silentHeartbeats: 3,
  /** Least grace after a coordinator restart for agents to reconnect (their backoff tops out at 10 s). */
  restartGraceSeconds: 30,
  /** Offline or lost nodes holding no work are forgotten after this long (7 days). */
  offlineNodeRetentionSeconds: 7 * 24 * 3600,
  /** A node reporting this many system failures of its own ... */
  quarantineFailures: 3,
  /** ... within this window (10 min) ... */
  quarantineWindowSeconds: 600,
  /** ... gets no new work for this long (30 min), or until `dsg node uncordon`. */
  quarantineCoolDownSeconds: 1800,
} as const;

/** Options for one coordinator process. The CLI's config module builds these (defaults < file < DSG_* env < flags). */
export interface CoordinatorOptions {
  /** Directory for the SQLite database, blobs, logs, outputs and credentials (created if missing). */
  readonly dataDir: string;
  /**
   * The SQLite driver (store package, sqlite/driver.ts): `better-sqlite3` (the native add-on, prebuilt), `node`
   * (the built-in node:sqlite, Node ≥ 22.13), or `auto`: better-sqlite3 when it loads, else node:sqlite.
   * Default `auto`.
   */
  readonly sqliteDriver?: 'auto' | 'node' | 'better-sqlite3';
  /** Address to listen on. Default `0.0.0.0` (reachable on the LAN; every route needs a token). */
  readonly host?: string;
  /** Port. Default 7070; 0 picks a free port. */
  readonly port?: number;
  /**
   * Also serve the API on `<dataDir>/api.sock` (mode 0600), for `dsg` commands on this machine run by this user
   * (http/local-socket.ts). Default true; false: only the port.
   */
  readonly localSocket?: boolean;
  /**
   * TLS (HTTPS + WSS on the same port): `auto` (default) serves it when `host` is beyond loopback, `on` always,
   * `off` never. See tls.ts.
   */
  readonly tls?: 'auto' | 'on' | 'off';
  /** The operator's certificate and key (PEM files) instead of the self-signed one made in `<dataDir>/tls/`. */
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
  /**
   * Seconds between agent heartbeats. Default 2. A connected agent silent for 3 heartbeats (6 s) is taken for
   * frozen: disconnected and shown offline.
   */
  readonly heartbeatIntervalSeconds?: number;
  /**
   * Seconds a node may be out of reach — disconnected, or silent — counted from when it was last heard from, before
   * it is declared lost and its tasks requeued. Default 10. (After a coordinator restart, agents get at least 30 s.)
   */
  readonly nodeTimeoutSeconds?: number;
  /**
   * Admission control: the most tasks waiting to start (queued, or in stages not started yet) in the whole grid, and
   * in one project. A submit that would go over is refused with HTTP 429 and Retry-After, and nothing is queued.
   * Defaults: 1,000,000 in all, no cap per project beyond that.
   */
  readonly maxQueuedTasks?: number;
  readonly maxQueuedTasksPerProject?: number;
  /**
   * Fair share between projects: weights (default 1 each), per-project limits (tasks and GPUs on nodes, queued
   * tasks), and the half-life of recent use that counts against a project (default 60 minutes).
   */
  readonly fairShare?: {
    readonly projectWeights?: Readonly<Record<string, number>>;
    readonly projectLimits?: Readonly<Record<string, { readonly maxRunningTasks?: number; readonly maxGpus?: number; readonly maxQueuedTasks?: number }>>;
    readonly usageHalfLifeMinutes?: number;
  };
  /** Seconds after which an offline or lost node that holds no work is forgotten. Default 7 days. */
  readonly offlineNodeRetentionSeconds?: number;
  /**
   * Quarantine: a node with `failures` system failures of its own (it could not start a process, fetch inputs or
   * send outputs; never a task's own exit code) within `windowSeconds` gets no new work for `coolDownSeconds` or
   * until `dsg node uncordon`. Defaults 3 in 600 s, 1800 s; `failures: 0` turns quarantine off.
   */
  readonly quarantine?: { readonly failures?: number; readonly windowSeconds?: number; readonly coolDownSeconds?: number };
  /**
   * Retention of finished work (jobs, workflows, their logs and outputs) and garbage collection of blobs nothing
   * refers to. Nothing a queued or running job or an unfinished workflow needs is ever removed.
   */
  readonly retention?: {
    /** Finished work older than this many days is removed. Default 30; 0 keeps it forever. */
    readonly maxAgeDays?: number;
    /** While blobs and logs take more than this many bytes, the oldest finished work is removed. Default: no limit. */
    readonly maxBytes?: number;
    /** Minutes between periodic collections. Default 60. */
    readonly intervalMinutes?: number;
    /** Unreferenced blobs and logs younger than this many minutes are kept (uploads in flight). Default 60. */
    readonly graceMinutes?: number;
  };
  /**
   * Advertise this coordinator on the LAN with mDNS/DNS-SD (`_dsg._tcp`) so agents find it without an address.
   * Default true; never when listening on loopback only.
   */
  readonly advertise?: boolean;
  /** The grid's name in the advertisement and `dsg discover` (default: the host name). */
  readonly gridName?: string;
  /** New nodes one join token may register per minute (agents reconnecting with their own credential do not count). Default 60. */
  readonly maxJoinsPerMinute?: number;
  /** Most machines waiting for approval at once (joining without a token); more are told to ask later. Default 64. */
  readonly maxPendingNodes?: number;
  /** Hours a machine waiting for approval is remembered after its last poll (its agent stopped asking). Default 24. */
  readonly pendingNodeTtlHours?: number;
  /** Seconds past its timeout a node may hold an attempt (heartbeating it as running) before the coordinator ends it. Default 30. */
  readonly timeoutGraceSeconds?: number;
  /** Most log bytes the coordinator keeps per attempt. Default 16 MiB. */
  readonly logQuotaBytes?: number;
  /** Most bytes of outputs one attempt may upload, all files together. Default 16 GiB. */
  readonly outputQuotaBytes?: number;
  /**
   * Request limits: each token may make `perTokenPerSecond` requests a second sustained, in bursts of up to
   * `perTokenBurst`; each client IP may fail authentication `failedAuthPerMinute` times a minute. Over a limit:
   * HTTP 429 with Retry-After; all addresses together may fail `failedAuthGlobalPerMinute` times (agent socket
   * included: guessing join codes). Defaults 200/s, 10,000, 60/min, 600/min (node credentials: 10 times the per-token values);
   * 0 turns a limit off.
   */
  readonly rateLimits?: { readonly perTokenPerSecond?: number; readonly perTokenBurst?: number; readonly failedAuthPerMinute?: number; readonly failedAuthGlobalPerMinute?: number };
  /** Hours a dashboard sign-in (session cookie) lasts, never past its token's expiry. Default 12. */
  readonly sessionHours?: number;
  /** Log level. Default `info`. */
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
}

export interface RunningCoordinator {
  /** Base URL reachable from this machine, e.g. `http://127.0.0.1:7070`. */
  readonly url: string;
  readonly port: number;
  /** Admin token (also written to `credentialsFile`). */
  readonly adminToken: string;
  /** Token agents use to join. */
  readonly joinToken: string;
  /** `<dataDir>/credentials.json`, mode 0600: { url, adminToken, joinToken, tlsFingerprint? }. */
  readonly credentialsFile: string;
  /** The certificate's fingerprint (`sha256:…`) when serving TLS, else null. */
  readonly tlsFingerprint: string | null;
  /** Whether clients must pin `tlsFingerprint` (a self-signed certificate) rather than verify it the usual way. */
  readonly tlsSelfSigned: boolean;
  /** This grid's id and name as advertised on the LAN (`dsg discover`). */
  readonly gridId: string;
  readonly gridName: string;
  /** Whether the coordinator advertises itself with mDNS (off with `advertise: false` or on loopback-only binds). */
  readonly advertised: boolean;
  /** The API's local Unix socket (`<dataDir>/api.sock`), or null when it is not served (see `localSocket`). */
  readonly localSocket: string | null;
  close(): Promise<void>;
}
