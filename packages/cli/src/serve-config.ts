/**
 * Configuration of `dsg up` and `dsg coordinator`, from one schema. Precedence, lowest first:
 * defaults < config file (`--config FILE` or DSG_CONFIG; YAML or JSON) < DSG_* env < flags.
 * `resolveServeConfig` is pure; every problem names where the bad value came from (`--port`, `DSG_PORT`,
 * `grid.yaml: port`), so users know which one to fix.
 */
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ValidationError } from '@dsg/core/base';
import type { Issue } from '@dsg/core';
import type { CoordinatorOptions } from '@dsg/coordinator';
import type { Env } from './config.js';

const FIELDS = {
  dataDir: { schema: z.string().min(1, { error: 'expected a directory' }), env: 'DSG_DATA_DIR', flag: '--data-dir', file: 'dataDir' },
  host: { schema: z.string().min(1, { error: 'expected an address like 0.0.0.0 or 127.0.0.1' }), env: 'DSG_HOST', flag: '--host', file: 'host' },
  port: { schema: z.coerce.number({ error: 'expected a port number' }).int({ error: 'expected a whole port number' }).min(0, { error: 'expected a port from 0 to 65535' }).max(65535, { error: 'expected a port from 0 to 65535' }), env: 'DSG_PORT', flag: '--port', file: 'port' },
  heartbeat: { schema: z.coerce.number({ error: 'expected a number of seconds' }).positive({ error: 'expected a number of seconds greater than 0' }), env: 'DSG_HEARTBEAT', flag: '--heartbeat', file: 'heartbeatSeconds' },
  nodeTimeout: { schema: z.coerce.number({ error: 'expected a number of seconds' }).positive({ error: 'expected a number of seconds greater than 0' }), env: 'DSG_NODE_TIMEOUT', flag: '--node-timeout', file: 'nodeTimeoutSeconds' },
  offlineNodeRetention: { schema: z.coerce.number({ error: 'expected a number of hours' }).positive({ error: 'expected a number of hours greater than 0' }), env: 'DSG_OFFLINE_NODE_RETENTION_HOURS', flag: '--offline-node-retention', file: 'offlineNodeRetentionHours' },
  quarantineFailures: { schema: z.coerce.number({ error: 'expected a whole number' }).int({ error: 'expected a whole number' }).min(0, { error: 'expected 0 (off) or more' }), env: 'DSG_QUARANTINE_FAILURES', flag: '--quarantine-failures', file: 'quarantineFailures' },
  quarantineWindow: { schema: z.coerce.number({ error: 'expected a number of minutes' }).positive({ error: 'expected a number of minutes greater than 0' }), env: 'DSG_QUARANTINE_WINDOW_MINUTES', flag: '--quarantine-window', file: 'quarantineWindowMinutes' },
  quarantineCoolDown: { schema: z.coerce.number({ error: 'expected a number of minutes' }).positive({ error: 'expected a number of minutes greater than 0' }), env: 'DSG_QUARANTINE_COOL_DOWN_MINUTES', flag: '--quarantine-cool-down', file: 'quarantineCoolDownMinutes' },
  retentionDays: { schema: z.coerce.number({ error: 'expected a number of days' }).min(0, { error: 'expected 0 (keep forever) or more days' }), env: 'DSG_RETENTION_DAYS', flag: '--retention-days', file: 'retentionDays' },
  retentionMaxGb: { schema: z.coerce.number({ error: 'expected a number of GB' }).min(0, { error: 'expected 0 (no limit) or more GB' }), env: 'DSG_RETENTION_MAX_GB', flag: '--retention-max-gb', file: 'retentionMaxGb' },
  gcInterval: { schema: z.coerce.number({ error: 'expected a number of minutes' }).positive({ error: 'expected a number of minutes greater than 0' }), env: 'DSG_GC_INTERVAL_MINUTES', flag: '--gc-interval', file: 'gcIntervalMinutes' },
  gcGrace: { schema: z.coerce.number({ error: 'expected a number of minutes' }).min(0, { error: 'expected 0 or more minutes' }), env: 'DSG_GC_GRACE_MINUTES', flag: '--gc-grace', file: 'gcGraceMinutes' },
  logLevel: { schema: z.enum(['debug', 'info', 'warn', 'error', 'silent'], { error: 'expected debug, info, warn, error or silent' }), env: 'DSG_LOG_LEVEL', flag: '--log-level', file: 'logLevel' },
  usageHalfLife: { schema: z.coerce.number({ error: 'expected a number of minutes' }).positive({ error: 'expected a number of minutes greater than 0' }), env: 'DSG_USAGE_HALF_LIFE_MINUTES', flag: '--usage-half-life', file: 'usageHalfLifeMinutes' },
  maxQueuedTasks: { schema: z.coerce.number({ error: 'expected a number of tasks' }).int({ error: 'expected a whole number of tasks' }).min(1, { error: 'expected at least 1 task' }), env: 'DSG_MAX_QUEUED_TASKS', flag: '--max-queued-tasks', file: 'maxQueuedTasks' },
  maxQueuedTasksPerProject: { schema: z.coerce.number({ error: 'expected a number of tasks' }).int({ error: 'expected a whole number of tasks' }).min(1, { error: 'expected at least 1 task' }), env: 'DSG_MAX_QUEUED_TASKS_PER_PROJECT', flag: '--max-queued-tasks-per-project', file: 'maxQueuedTasksPerProject' },
  rateLimit: { schema: z.coerce.number({ error: 'expected requests per second' }).min(0, { error: 'expected 0 (off) or more requests per second' }), env: 'DSG_RATE_LIMIT', flag: '--rate-limit', file: 'rateLimitPerSecond' },
  rateLimitBurst: { schema: z.coerce.number({ error: 'expected a number of requests' }).int({ error: 'expected a whole number of requests' }).min(1, { error: 'expected at least 1 request' }), env: 'DSG_RATE_LIMIT_BURST', flag: '--rate-limit-burst', file: 'rateLimitBurst' },
  failedAuthLimit: { schema: z.coerce.number({ error: 'expected attempts per minute' }).int({ error: 'expected a whole number' }).min(0, { error: 'expected 0 (off) or more attempts per minute' }), env: 'DSG_FAILED_AUTH_LIMIT', flag: '--failed-auth-limit', file: 'failedAuthPerMinute' },
  tls: { schema: z.enum(['auto', 'on', 'off'], { error: 'expected auto, on or off' }), env: 'DSG_TLS', flag: '--tls', file: 'tls' },
  tlsCert: { schema: z.string().min(1).optional(), env: 'DSG_TLS_CERT', flag: '--tls-cert', file: 'tlsCert' },
  tlsKey: { schema: z.string().min(1).optional(), env: 'DSG_TLS_KEY', flag: '--tls-key', file: 'tlsKey' },
  advertise: { schema: z.union([z.boolean(), z.enum(['true', 'false', 'on', 'off', '1', '0'], { error: 'expected true or false' })]).transform((v) => v === true || v === 'true' || v === 'on' || v === '1'), env: 'DSG_ADVERTISE', flag: '--no-advertise', file: 'advertise' },
  gridName: { schema: z.string().trim().min(1, { error: 'expected a name' }).max(40, { error: 'expected at most 40 characters (it goes in an mDNS record)' }).optional(), env: 'DSG_GRID_NAME', flag: '--grid-name', file: 'gridName' },
  maxPendingNodes: { schema: z.coerce.number({ error: 'expected a number of machines' }).int({ error: 'expected a whole number of machines' }).min(0, { error: 'expected 0 (nobody may ask) or more machines' }).max(100_000, { error: 'expected at most 100,000 machines' }), env: 'DSG_MAX_PENDING_NODES', flag: '--max-pending-nodes', file: 'maxPendingNodes' },
  pendingNodeTtl: { schema: z.coerce.number({ error: 'expected a number of hours' }).positive({ error: 'expected a number of hours greater than 0' }).max(24 * 365, { error: 'expected at most a year of hours' }), env: 'DSG_PENDING_NODE_TTL_HOURS', flag: '--pending-node-ttl', file: 'pendingNodeTtlHours' },
  sessionHours: { schema: z.coerce.number({ error: 'expected a number of hours' }).positive({ error: 'expected a number of hours greater than 0' }), env: 'DSG_SESSION_HOURS', flag: '--session-hours', file: 'sessionHours' },
  sqliteDriver: { schema: z.enum(['auto', 'node', 'better-sqlite3'], { error: 'expected auto, node (the built-in node:sqlite, Node 22.13+) or better-sqlite3' }), env: 'DSG_SQLITE_DRIVER', flag: '--sqlite-driver', file: 'sqliteDriver' },
} as const;
type Field = keyof typeof FIELDS;

export type ServeFlags = Partial<Record<Exclude<Field, 'advertise'>, string>> & { config?: string; advertise?: boolean | string };

export const SERVE_DEFAULTS: Partial<Record<Field, string | number>> = {
  // TLS beyond loopback (tls.ts in the coordinator); the certificate is made in the data dir unless given.
  tls: 'auto',
  dataDir: '.dsg',
  host: '0.0.0.0',
  port: 7070,
  // The coordinator's failure-detection defaults (COORDINATOR_DEFAULTS): a dead or frozen agent's tasks are requeued
  // within ~11 s.
  heartbeat: 2,
  nodeTimeout: 10,
  offlineNodeRetention: 7 * 24,
  quarantineFailures: 3,
  quarantineWindow: 10,
  quarantineCoolDown: 30,
  retentionDays: 30,
  retentionMaxGb: 0,
  gcInterval: 60,
  gcGrace: 60,
  logLevel: 'info',
  maxQueuedTasks: 1_000_000,
  // Fair share remembers a project's use with this half-life: an hour ago counts half, two hours ago a quarter.
  usageHalfLife: 60,
  maxQueuedTasksPerProject: 1_000_000,
  // Per-token request limits and failed sign-ins per IP (DEFAULT_RATE_LIMITS); dashboard sessions last 12 hours.
  rateLimit: 200,
  rateLimitBurst: 10_000,
  failedAuthLimit: 60,
  // Joining by approval: machines waiting at once, and how long one that stopped asking is remembered.
  maxPendingNodes: 64,
  pendingNodeTtl: 24,
  sessionHours: 12,
  // The SQLite driver: better-sqlite3 when it loads, else node:sqlite (docs/ARCHITECTURE.md, "SQLite driver").
  sqliteDriver: 'auto',
  // mDNS advertisement on the LAN (never on loopback-only binds: the coordinator checks).
  advertise: 'true',
};

/**
 * Settings that are maps keyed by project: file only (a flag or env variable per project would not scale).
 *   projectWeights: { physics: 2, bio: 1 }
 *   projectLimits:  { physics: { maxRunningTasks: 200, maxGpus: 4, maxQueuedTasks: 100000 } }
 */
const PROJECT_NAME = z.string().min(1).max(100);
const MAP_FIELDS = {
  projectWeights: z.record(PROJECT_NAME, z.number({ error: 'expected a weight (a number greater than 0)' }).positive({ error: 'expected a weight greater than 0' })),
  projectLimits: z.record(PROJECT_NAME, z.strictObject({
    maxRunningTasks: z.number().int({ error: 'expected a whole number of tasks' }).min(0, { error: 'expected 0 or more tasks' }).optional(),
    maxGpus: z.number().int({ error: 'expected a whole number of GPUs' }).min(0, { error: 'expected 0 or more GPUs' }).optional(),
    maxQueuedTasks: z.number().int({ error: 'expected a whole number of tasks' }).min(1, { error: 'expected at least 1 task' }).optional(),
  }, { error: 'expected { maxRunningTasks?, maxGpus?, maxQueuedTasks? }' })),
} as const;

export const FILE_KEYS: readonly string[] = [...Object.values(FIELDS).map((f) => f.file), ...Object.keys(MAP_FIELDS)];

/** Pure: merge the layers and validate. `file` is the parsed config file, `fileName` how to name it in errors. */
export function resolveServeConfig(input: {
  flags: ServeFlags;
  env: Env;
  file: Record<string, unknown> | null;
  fileName: string;
  defaults: Partial<Record<Field, string | number>>;
  cwd: string;
}): CoordinatorOptions {
  const issues: Issue[] = [];
  if (input.file) {
    for (const k of Object.keys(input.file))
      if (!FILE_KEYS.includes(k)) issues.push({ path: `${input.fileName}: ${k}`, message: `unknown setting (known: ${FILE_KEYS.join(', ')})` });
  }
  const out: Partial<Record<Field, unknown>> = {};
  for (const [name, f] of Object.entries(FIELDS) as Array<[Field, (typeof FIELDS)[Field]]>) {
    const layers: Array<[unknown, string]> = [
      [input.flags[name], f.flag],
      [input.env[f.env], f.env],
      [input.file?.[f.file], `${input.fileName}: ${f.file}`],
      [input.defaults[name], `default ${name}`],
    ];
    const [value, source] = layers.find(([v]) => v !== undefined && v !== '') ?? [undefined, name];
    const r = (f.schema as z.ZodType).safeParse(value);
    if (r.success) out[name] = r.data;
    else issues.push({ path: source, message: `${r.error.issues[0]?.message.replace(/^Invalid input: /, '') ?? 'invalid'}, got ${JSON.stringify(value)}` });
  }
  const maps: { projectWeights?: Record<string, number>; projectLimits?: Record<string, { maxRunningTasks?: number; maxGpus?: number; maxQueuedTasks?: number }> } = {};
  for (const [key, schema] of Object.entries(MAP_FIELDS)) {
    const value = input.file?.[key];
    if (value === undefined) continue;
    const r = (schema as z.ZodType).safeParse(value);
    if (r.success) (maps as Record<string, unknown>)[key] = r.data;
    else for (const i of r.error.issues) issues.push({ path: `${input.fileName}: ${[key, ...i.path.map(String)].join('.')}`, message: i.message.replace(/^Invalid input: /, '') });
  }
  if (issues.length === 0 && (out.nodeTimeout as number) <= (out.heartbeat as number))
    issues.push({ path: FIELDS.nodeTimeout.flag, message: `must be longer than the heartbeat (${String(out.heartbeat)}s)` });
  if (issues.length > 0) throw new ValidationError(issues, 'invalid coordinator settings');
  return {
    dataDir: resolve(input.cwd, out.dataDir as string),
    host: out.host as string,
    port: out.port as number,
    heartbeatIntervalSeconds: out.heartbeat as number,
    nodeTimeoutSeconds: out.nodeTimeout as number,
    offlineNodeRetentionSeconds: (out.offlineNodeRetention as number) * 3600,
    quarantine: { failures: out.quarantineFailures as number, windowSeconds: (out.quarantineWindow as number) * 60, coolDownSeconds: (out.quarantineCoolDown as number) * 60 },
    retention: { maxAgeDays: out.retentionDays as number, maxBytes: Math.round((out.retentionMaxGb as number) * 1e9), intervalMinutes: out.gcInterval as number, graceMinutes: out.gcGrace as number },
    logLevel: out.logLevel as CoordinatorOptions['logLevel'] & string,
    maxQueuedTasks: out.maxQueuedTasks as number,
    maxQueuedTasksPerProject: out.maxQueuedTasksPerProject as number,
    fairShare: { usageHalfLifeMinutes: out.usageHalfLife as number, ...maps },
    rateLimits: { perTokenPerSecond: out.rateLimit as number, perTokenBurst: out.rateLimitBurst as number, failedAuthPerMinute: out.failedAuthLimit as number },
    sessionHours: out.sessionHours as number,
    sqliteDriver: out.sqliteDriver as 'auto' | 'node' | 'better-sqlite3',
    maxPendingNodes: out.maxPendingNodes as number,
    pendingNodeTtlHours: out.pendingNodeTtl as number,
    tls: out.tls as 'auto' | 'on' | 'off',
    advertise: out.advertise as boolean,
    ...(out.gridName ? { gridName: out.gridName as string } : {}),
    ...(out.tlsCert ? { tlsCertFile: resolve(input.cwd, out.tlsCert as string) } : {}),
    ...(out.tlsKey ? { tlsKeyFile: resolve(input.cwd, out.tlsKey as string) } : {}),
  };
}

/** Read the config file named by --config or DSG_CONFIG (YAML or JSON), or null when none is given. */
export function readServeConfigFile(flags: ServeFlags, env: Env): { file: Record<string, unknown> | null; fileName: string } {
  const path = flags.config ?? env['DSG_CONFIG'];
  if (!path) return { file: null, fileName: 'config file' };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ValidationError([{ path: flags.config ? '--config' : 'DSG_CONFIG', message: `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
  let parsed: unknown;
  try {
    parsed = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ValidationError([{ path, message: `not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}` }]);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ValidationError([{ path, message: 'expected a mapping of settings (port: 7070, dataDir: …)' }]);
  return { file: parsed as Record<string, unknown>, fileName: path };
}
