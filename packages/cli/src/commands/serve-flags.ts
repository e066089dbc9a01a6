/** Flags shared by `dsg up` and `dsg coordinator`, turned into CoordinatorOptions through serve-config.ts. */
import type { Command } from 'commander';
import type { CoordinatorOptions } from '@dsg/coordinator';
import { processEnv, type LogLevel } from '../config.js';
import { readServeConfigFile, resolveServeConfig, SERVE_DEFAULTS, type ServeFlags } from '../serve-config.js';

export type { ServeFlags };

export function addServeFlags(cmd: Command, defaultLevel: LogLevel): Command {
  return cmd
    .option('--config <file>', 'settings file, YAML or JSON: dataDir, host, port, heartbeatSeconds, nodeTimeoutSeconds, offlineNodeRetentionHours, quarantineFailures, quarantineWindowMinutes, quarantineCoolDownMinutes, retentionDays, retentionMaxGb, gcIntervalMinutes, gcGraceMinutes, logLevel, maxQueuedTasks, maxQueuedTasksPerProject, projectWeights, projectLimits, usageHalfLifeMinutes, rateLimitPerSecond, rateLimitBurst, failedAuthPerMinute, maxPendingNodes, pendingNodeTtlHours, sessionHours, sqliteDriver, tls, tlsCert, tlsKey, advertise, gridName (env DSG_CONFIG)')
    .option('--data-dir <dir>', 'where the database, logs, blobs and credentials live (env DSG_DATA_DIR; default .dsg)')
    .option('-p, --port <port>', 'port for the API, dashboard and agents (env DSG_PORT; default 7070; 0 = any free port)')
    .option('--host <address>', 'address to listen on (env DSG_HOST; default 0.0.0.0)')
    .option('--heartbeat <seconds>', 'seconds between agent heartbeats; an agent silent for 3 of them is disconnected (env DSG_HEARTBEAT; default 2)')
    .option('--node-timeout <seconds>', 'seconds a node may be out of reach (disconnected or silent) before it is declared lost and its tasks requeued (env DSG_NODE_TIMEOUT; default 10)')
    .option('--max-queued-tasks <n>', 'admission: most tasks waiting to start in the grid; a submit over it gets HTTP 429 (env DSG_MAX_QUEUED_TASKS; default 1000000)')
    .option('--max-queued-tasks-per-project <n>', 'admission: most tasks waiting to start per project (env DSG_MAX_QUEUED_TASKS_PER_PROJECT; default 1000000)')
    .option('--usage-half-life <minutes>', 'fair share: a project\'s use this long ago counts half against it, twice as long ago a quarter (env DSG_USAGE_HALF_LIFE_MINUTES; default 60). Weights and per-project limits: projectWeights, projectLimits in --config')
    .option('--offline-node-retention <hours>', 'offline nodes holding no work are forgotten after this many hours (env DSG_OFFLINE_NODE_RETENTION_HOURS; default 168, a week)')
    .option('--quarantine-failures <n>', 'a node with this many system failures of its own (not exit codes) within the window gets no new work; 0 = off (env DSG_QUARANTINE_FAILURES; default 3)')
    .option('--quarantine-window <minutes>', 'window for --quarantine-failures (env DSG_QUARANTINE_WINDOW_MINUTES; default 10)')
    .option('--quarantine-cool-down <minutes>', 'a quarantined node takes work again after this long, or at `dsg node uncordon` (env DSG_QUARANTINE_COOL_DOWN_MINUTES; default 30)')
    .option('--retention-days <days>', 'finished jobs and workflows, their logs and outputs are removed after this many days; 0 = keep forever (env DSG_RETENTION_DAYS; default 30)')
    .option('--retention-max-gb <GB>', 'while blobs and logs take more than this, the oldest finished work is removed; 0 = no limit (env DSG_RETENTION_MAX_GB; default 0)')
    .option('--gc-interval <minutes>', 'minutes between garbage collections (env DSG_GC_INTERVAL_MINUTES; default 60); `dsg gc` runs one now')
    .option('--gc-grace <minutes>', 'files nothing refers to yet are kept this long (uploads in flight) (env DSG_GC_GRACE_MINUTES; default 60)')
    .option('--rate-limit <n>', 'requests per second each token may make, sustained; over it gets HTTP 429 with Retry-After; 0 = off (env DSG_RATE_LIMIT; default 200; node credentials get 10 times it)')
    .option('--rate-limit-burst <n>', 'requests a token may make at once before --rate-limit applies (env DSG_RATE_LIMIT_BURST; default 10000)')
    .option('--failed-auth-limit <n>', 'requests with no, a wrong, revoked or expired token allowed per minute per client IP before HTTP 429; 0 = off (env DSG_FAILED_AUTH_LIMIT; default 60)')
    .option('--max-pending-nodes <n>', 'most machines waiting for approval at once (agents started without a token or join code); more are told to ask later; 0 = nobody may ask (env DSG_MAX_PENDING_NODES; default 64)')
    .option('--pending-node-ttl <hours>', 'a machine waiting for approval that stopped asking is forgotten after this many hours (env DSG_PENDING_NODE_TTL_HOURS; default 24)')
    .option('--session-hours <hours>', 'a dashboard sign-in lasts this long, never past its token\'s expiry (env DSG_SESSION_HOURS; default 12)')
    .option('--sqlite-driver <driver>', 'the SQLite driver: auto (better-sqlite3 when it loads, else the built-in node:sqlite), better-sqlite3, or node (env DSG_SQLITE_DRIVER; default auto)')
    .option('--tls <mode>', 'HTTPS and WSS: auto (beyond loopback: a self-signed certificate made in the data dir, pinned by its fingerprint), on, off (env DSG_TLS; default auto)')
    .option('--tls-cert <file>', 'your own certificate (PEM) instead of the self-signed one; with --tls-key (env DSG_TLS_CERT)')
    .option('--tls-key <file>', 'the key of --tls-cert (PEM) (env DSG_TLS_KEY)')
    .option('--no-advertise', 'do not advertise this grid on the LAN with mDNS (_dsg._tcp); agents then need --coordinator URL. Never advertised on loopback-only binds (env DSG_ADVERTISE=false)')
    .option('--grid-name <name>', 'the grid\'s name as `dsg discover` and agents show it (env DSG_GRID_NAME; default the host name)')
    .option('--log-level <level>', `debug, info, warn, error or silent (env DSG_LOG_LEVEL; default ${defaultLevel})`);
}

export function coordinatorOptions(flags: ServeFlags, defaultLevel: LogLevel): CoordinatorOptions {
  const { file, fileName } = readServeConfigFile(flags, processEnv);
  // commander sets advertise: true unless --no-advertise: only the "no" is a flag, so env and file still apply.
  flags = { ...flags, advertise: flags.advertise === false ? false : undefined };
  return resolveServeConfig({ flags, env: processEnv, file, fileName, defaults: { ...SERVE_DEFAULTS, logLevel: defaultLevel }, cwd: process.cwd() });
}
