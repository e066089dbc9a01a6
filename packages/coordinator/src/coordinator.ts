/**
 * startCoordinator: opens the store (SQLite in the data dir), makes sure an admin token and a node join token
 * exist (reusing the ones in credentials.json across restarts), starts the engine, the REST API and the agent
 * WebSocket endpoint on one port.
 *
 * Start-up order matters: the store is migrated before anything reads it; the engine marks previously-online
 * nodes offline (with a grace period) before the port opens, so a reconnecting agent finds a consistent view.
 * Shutdown is the reverse: stop accepting, close agent sockets, flush pending reports, close the store.
 */
import { chmod, mkdir, open, readdir, readFile, writeFile, rename } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MAX_SYSTEM_RETRIES, DsgError, LOCAL_API_SOCKET, ValidationError, type TokenId } from '@dsg/core';
import { DEFAULT_RESERVE_AFTER_MS, DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteStore, resolveSqliteDriver, type QuarantinePolicy, type Store } from '@dsg/store';
import { AgentHub } from './agents/agent-hub.js';
import { Authenticator, createToken, DEFAULT_SESSION_TTL_MS, hashToken } from './auth.js';
import { DEFAULT_RATE_LIMITS, RateLimiter } from './http/rate-limit.js';
import { systemClock, type Clock } from './clock.js';
import { Engine } from './engine/engine.js';
import { FileBlobStore } from './files/blob-store.js';
import { lockDataDir } from './files/data-dir-lock.js';
import { CoordinatorMetrics, type EngineMetrics } from './metrics.js';
import { ChangeFeed } from './events/change-feed.js';
import { ThroughputMeter } from './events/throughput-meter.js';
import { FileLogStore } from './files/log-store.js';
import { serveLocalSocket } from './http/local-socket.js';
import { buildApi } from './http/server.js';
import { refusePlainHttp, tlsMaterial, wantsTls } from './tls.js';
import { advertise, advertisableHost, type Advertisement } from './discovery/advertise.js';
import { AuditLog, collectedDetail, SYSTEM_ACTOR } from './service/audit-log.js';
import { DataLifecycle, DEFAULT_RETENTION, type RetentionSettings } from './service/data-lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { COORDINATOR_DEFAULTS, type CoordinatorOptions, type RunningCoordinator } from './options.js';

interface Credentials {
  url: string;
  adminToken: string;
  joinToken: string;
  /** Present when the coordinator serves TLS with its self-signed certificate: what clients pin. */
  tlsFingerprint?: string;
  /** This grid's id, advertised on the LAN so agents and `dsg discover` tell grids apart; kept across restarts. */
  gridId?: string;
  /** The API's local Unix socket, when served (http/local-socket.ts): `dsg` on this machine talks to it. */
  socket?: string;
}

/** Names of the tokens the coordinator mints for credentials.json (revoked when it mints new ones). */
const MINTED_ADMIN = 'admin (created by dsg up)';
const MINTED_JOIN = 'node join token';

/**
 * The dashboard's files (packages/web, built by scripts/build-web.mjs): `./web` next to this module when it runs
 * from the CLI's bundle (scripts/bundle-cli.mjs copies them there), else packages/web/dist/app in a built checkout.
 */
const HERE = dirname(fileURLToPath(import.meta.url));
const WEB_CANDIDATES = [join(HERE, 'web'), resolve(HERE, '..', '..', '..', 'web', 'dist', 'app')];
const STATIC_DIR = WEB_CANDIDATES.find((d) => existsSync(join(d, 'index.html'))) ?? WEB_CANDIDATES[1]!;

export async function startCoordinator(options: CoordinatorOptions, clock: Clock = systemClock): Promise<RunningCoordinator> {
  const dataDir = resolve(options.dataDir);
  const host = options.host ?? '0.0.0.0';
  const port = options.port ?? 7070;
  const heartbeatIntervalMs = (options.heartbeatIntervalSeconds ?? COORDINATOR_DEFAULTS.heartbeatIntervalSeconds) * 1000;
  const nodeTimeoutMs = (options.nodeTimeoutSeconds ?? COORDINATOR_DEFAULTS.nodeTimeoutSeconds) * 1000;
  const log = createLogger(options.logLevel ?? 'info');

  // The data dir holds every token, input and result: only the coordinator's user may enter it (0700), and its files
  // are 0600. SQLite gives its -wal and -shm files the mode of the database file, so those are created 0600 first.
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  for (const f of ['dsg.sqlite', 'coordinator.lock']) await createPrivate(join(dataDir, f));
  // Resolved once (auto → better-sqlite3 when it loads, else node:sqlite): the lock and the store load the same one.
  const driver = resolveSqliteDriver(options.sqliteDriver ?? 'auto');
  const lock = lockDataDir(dataDir, driver);
  const store: Store = openSqliteStore({ file: join(dataDir, 'dsg.sqlite'), driver, onUpgrade: (m) => log.info(m) });
  await store.init();
  const blobs = new FileBlobStore(join(dataDir, 'blobs'));
  await blobs.init();
  const logs = new FileLogStore(join(dataDir, 'logs'));
  await tightenDataDir(dataDir);

  const credentialsFile = join(dataDir, 'credentials.json');
  const creds = await ensureCredentials(store, credentialsFile, clock.now(), log);

  const tlsMode = options.tls ?? 'auto';
  if (tlsMode === 'off' && (options.tlsCertFile || options.tlsKeyFile))
    throw new ValidationError([{ path: '--tls', message: '--tls off with --tls-cert/--tls-key: drop one of them' }]);
  const tls = options.tlsCertFile || options.tlsKeyFile || wantsTls(tlsMode, host)
    ? await tlsMaterial({ dataDir, host, certFile: options.tlsCertFile, keyFile: options.tlsKeyFile })
    : null;

  const metrics = new CoordinatorMetrics(store);
  // The dashboard's live feed and throughput chart hear what the engine reports (events/).
  const feed = new ChangeFeed();
  const throughput = new ThroughputMeter(() => clock.now());
  const engineMetrics: EngineMetrics = {
    observePass: (seconds, placed) => {
      metrics.observePass(seconds, placed);
      if (placed > 0) feed.publish('jobs', 'workflows', 'nodes');
    },
    countOutcome: (outcome, n = 1) => {
      metrics.countOutcome(outcome, n);
      if (outcome === 'succeeded' || outcome === 'failed') throughput.add(outcome, n);
      feed.publish('jobs', 'workflows', 'nodes');
    },
  };
  const engine = new Engine(store, blobs, logs, clock, {
    heartbeatIntervalMs,
    nodeTimeoutMs,
    silenceTimeoutMs: Math.min(nodeTimeoutMs, COORDINATOR_DEFAULTS.silentHeartbeats * heartbeatIntervalMs),
    restartGraceMs: Math.max(nodeTimeoutMs, COORDINATOR_DEFAULTS.restartGraceSeconds * 1000),
    reconcileGraceMs: Math.max(2 * heartbeatIntervalMs, 5000),
    reportBatchMs: 2,
    policy: { maxSystemRetries: DEFAULT_MAX_SYSTEM_RETRIES, ...quarantinePolicy(options) },
    scheduler: {
      ...DEFAULT_SCHEDULER_CONFIG,
      ...(options.fairShare?.projectWeights ? { projectWeights: options.fairShare.projectWeights } : {}),
      ...(options.fairShare?.projectLimits ? { projectLimits: options.fairShare.projectLimits } : {}),
      ...(options.fairShare?.usageHalfLifeMinutes !== undefined ? { usageHalfLifeMs: options.fairShare.usageHalfLifeMinutes * 60_000 } : {}),
      // Against starvation: a job that has waited this long with nothing on a node reserves the node closest to
      // fitting it (scheduler/src/reservation.ts).
      reserveAfterMs: DEFAULT_RESERVE_AFTER_MS,
    },
    metrics: engineMetrics,
    changes: (...topics) => feed.publish(...topics),
    ...(options.outputQuotaBytes !== undefined ? { outputQuotaBytes: options.outputQuotaBytes } : {}),
    ...(options.logQuotaBytes !== undefined ? { logQuotaBytes: options.logQuotaBytes } : {}),
    ...(options.timeoutGraceSeconds !== undefined ? { timeoutGraceMs: options.timeoutGraceSeconds * 1000 } : {}),
  }, log);
  const auth = new Authenticator(store, () => clock.now(), (options.sessionHours ?? DEFAULT_SESSION_TTL_MS / 3600_000) * 3600_000);
  const auditLog = new AuditLog({ store, clock, log, anchorFile: join(dataDir, 'audit-head.json') });
  // One limiter for the API and the agent socket: a failed upgrade (a guessed join code) counts like a failed request.
  const limiter = new RateLimiter({ ...DEFAULT_RATE_LIMITS, ...options.rateLimits }, () => clock.now());
  const hub = new AgentHub(engine, auth, clock, heartbeatIntervalMs, log, {
    refusals: engine.refusals,
    audit: auditLog,
    onFailedAuth: (ip) => limiter.failedAuth(ip),
    useToken: (id) => store.useToken(id as TokenId),
    ...(options.maxJoinsPerMinute !== undefined ? { maxJoinsPerMinute: options.maxJoinsPerMinute } : {}),
  });
  const startedAt = clock.now();
  const retention = retentionSettings(options);
  const dbFile = join(dataDir, 'dsg.sqlite');
  const lifecycle = new DataLifecycle({ store, blobs, logs, clock, log, settings: retention, databaseFiles: [dbFile, `${dbFile}-wal`, `${dbFile}-shm`] });
  const app = buildApi({ store, engine, blobs, logs, auth, clock, log, staticDir: STATIC_DIR, startedAt, feed, throughput, maxUploadBytes: 4 * 1024 ** 3, lifecycle, metrics, auditLog,
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
    rateLimits: { ...DEFAULT_RATE_LIMITS, ...options.rateLimits },
    limiter,
    pendingNodes: {
      ...(options.maxPendingNodes !== undefined ? { max: options.maxPendingNodes } : {}),
      ...(options.pendingNodeTtlHours !== undefined ? { ttlMs: options.pendingNodeTtlHours * 3600_000 } : {}),
    },
    admission: {
      ...(options.maxQueuedTasks !== undefined ? { maxQueuedTasks: options.maxQueuedTasks } : {}),
      ...(options.maxQueuedTasksPerProject !== undefined ? { maxQueuedTasksPerProject: options.maxQueuedTasksPerProject } : {}),
      ...(options.fairShare?.projectLimits ? { projectLimits: options.fairShare.projectLimits } : {}),
    },
  });
  hub.attach(app.server);
  // Plain HTTP on the TLS port gets a readable 400 ("use https://"), not a dropped connection.
  if (tls) refusePlainHttp(app.server, tls.selfSigned ? tls.fingerprint : null);
  await engine.start(hub);

  try {
    await app.listen({ host, port });
  } catch (e) {
    await engine.stop();
    await store.close();
    lock.release();
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new DsgError('unavailable', `port ${port} on ${host} is already in use: is a grid already running? Stop it, or pick another port with --port`);
    throw e;
  }
  const addr = app.server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const reachableHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `${tls ? 'https' : 'http'}://${reachableHost}:${actualPort}`;
  // The same API on a Unix socket in the data dir, for `dsg` commands on this machine (no TCP, no TLS).
  const localSocket = options.localSocket === false ? null
    : await serveLocalSocket({ path: join(dataDir, LOCAL_API_SOCKET), handler: app.routing, like: app.server, log });
  const gridId = await readGridId(credentialsFile);
  await writeCredentials(credentialsFile, { ...creds, url, gridId, ...(tls?.selfSigned ? { tlsFingerprint: tls.fingerprint } : {}), ...(localSocket ? { socket: localSocket.path } : {}) });
  log.info({ url, dataDir, ...(localSocket ? { localSocket: localSocket.path } : {}), sqliteDriver: driver, ...(tls ? { tlsFingerprint: tls.fingerprint, certificate: tls.selfSigned ? 'self-signed' : tls.certFile } : {}) }, 'coordinator listening');

  // LAN advertisement (mDNS/DNS-SD), best-effort: a network without multicast still works with --coordinator URL.
  const gridName = options.gridName ?? hostname();
  let advertisement: Advertisement | null = null;
  if (options.advertise === false) log.info('not advertising on the LAN (--no-advertise): agents need --coordinator');
  else if (!advertisableHost(host)) log.info({ host }, 'not advertising on the LAN: listening on loopback only');
  else {
    advertisement = advertise({ gridId, gridName, port: actualPort, tls: tls !== null, tlsFingerprint: tls?.fingerprint ?? null,
      onError: (e) => log.warn({ err: e }, 'mDNS advertisement failed; agents can still join with --coordinator URL') });
    log.info({ service: '_dsg._tcp', gridName, gridId }, 'advertising on the LAN');
  }

  // Housekeeping, off the request path: forget nodes gone for longer than the retention.
  const nodeRetentionMs = (options.offlineNodeRetentionSeconds ?? COORDINATOR_DEFAULTS.offlineNodeRetentionSeconds) * 1000;
  const housekeeping = async (): Promise<void> => {
    const pruned = await engine.pruneNodes(nodeRetentionMs);
    if (pruned.length > 0) await auditLog.record(SYSTEM_ACTOR, 'nodes.pruned', '', { names: pruned.slice(0, 100), count: pruned.length, offlineForMoreThanSeconds: nodeRetentionMs / 1000 });
  };
  const housekeepingTimer = setInterval(() => void housekeeping().catch((e: unknown) => log.error({ err: e }, 'housekeeping failed')), Math.min(60_000, Math.max(1000, nodeRetentionMs / 4)));
  housekeepingTimer.unref();
  void housekeeping().catch((e: unknown) => log.error({ err: e }, 'housekeeping failed'));

  // Periodic garbage collection (retention), off the request path: the first one a minute after start.
  const collect = (): void => void lifecycle.collect({ dryRun: false })
    .then((r) => (r.jobs + r.workflows > 0 || r.bytesFreed > 0 ? auditLog.record(SYSTEM_ACTOR, 'data.collected', '', collectedDetail(r)) : null))
    .catch((e: unknown) => log.error({ err: e }, 'garbage collection failed'));
  const gcFirst = setTimeout(collect, Math.min(60_000, retention.intervalMs));
  gcFirst.unref();
  const gcTimer = setInterval(collect, retention.intervalMs);
  gcTimer.unref();

  let closing: Promise<void> | null = null;
  return {
    url,
    port: actualPort,
    adminToken: creds.adminToken,
    joinToken: creds.joinToken,
    credentialsFile,
    tlsFingerprint: tls?.fingerprint ?? null,
    tlsSelfSigned: tls?.selfSigned ?? false,
    gridId,
    gridName,
    advertised: advertisement !== null,
    localSocket: localSocket?.path ?? null,
    close: () =>
      (closing ??= (async () => {
        await advertisement?.stop();
        clearInterval(housekeepingTimer);
        clearTimeout(gcFirst);
        clearInterval(gcTimer);
        // The engine first, so agents' disconnects during shutdown are not taken for lost nodes.
        await engine.stop();
        await hub.close();
        await app.close();
        await localSocket?.close();
        await auditLog.flush();
        await store.close();
        lock.release();
        log.info('coordinator stopped');
      })()),
  };
}

/** Create `file` empty with mode 0600 if it does not exist; make it 0600 if it does. */
async function createPrivate(file: string): Promise<void> {
  const fh = await open(file, 'a', 0o600);
  await fh.close();
  await chmod(file, 0o600);
}

/** Files of a data dir made by an older version (0644): every file at its top 0600, its subdirectories 0700. */
async function tightenDataDir(dataDir: string): Promise<void> {
  for (const e of await readdir(dataDir, { withFileTypes: true })) {
    if (e.isFile()) await chmod(join(dataDir, e.name), 0o600);
    else if (e.isDirectory()) await chmod(join(dataDir, e.name), 0o700);
  }
}

async function ensureCredentials(store: Store, file: string, now: number, log: Logger): Promise<Omit<Credentials, 'url'>> {
  try {
    const c = JSON.parse(await readFile(file, 'utf8')) as Partial<Credentials>;
    if (c.adminToken && c.joinToken) {
      const [a, j] = await Promise.all([store.findTokenByHash(hashToken(c.adminToken)), store.findTokenByHash(hashToken(c.joinToken))]);
      if (a?.role === 'admin' && j?.role === 'node') return { adminToken: c.adminToken, joinToken: c.joinToken };
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && !(e instanceof SyntaxError)) throw e;
  }
  // New credentials (first start, or credentials.json deleted, damaged or holding revoked tokens): the tokens minted
  // for an earlier credentials.json stop working now, so deleting the file is how an operator rotates them (nodes
  // that joined keep their own credentials; tokens made with `dsg token create` are untouched).
  const old = (await store.listTokens()).filter((t) => t.revokedAt === null && !t.nodeId && (t.name === MINTED_ADMIN || t.name === MINTED_JOIN));
  for (const t of old) await store.revokeToken(t.id, now);
  if (old.length > 0) log.warn({ revoked: old.map((t) => t.id) }, `credentials.json was missing or stale: made new admin and join tokens and revoked the ${old.length} made before`);
  const admin = await createToken(store, 'admin', MINTED_ADMIN, now);
  const join_ = await createToken(store, 'node', MINTED_JOIN, now);
  return { adminToken: admin.secret, joinToken: join_.secret };
}

/** The grid id from an earlier start's credentials.json, or a new one (12 hex digits: unique enough on one LAN). */
async function readGridId(file: string): Promise<string> {
  try {
    const c = JSON.parse(await readFile(file, 'utf8')) as Partial<Credentials>;
    if (typeof c.gridId === 'string' && /^[0-9a-f]{12}$/.test(c.gridId)) return c.gridId;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && !(e instanceof SyntaxError)) throw e;
  }
  return randomBytes(6).toString('hex');
}

async function writeCredentials(file: string, c: Credentials): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

function quarantinePolicy(options: CoordinatorOptions): { quarantine?: QuarantinePolicy } {
  const q = options.quarantine ?? {};
  const failures = q.failures ?? COORDINATOR_DEFAULTS.quarantineFailures;
  if (failures <= 0) return {};
  return {
    quarantine: {
      failures,
      windowMs: (q.windowSeconds ?? COORDINATOR_DEFAULTS.quarantineWindowSeconds) * 1000,
      coolDownMs: (q.coolDownSeconds ?? COORDINATOR_DEFAULTS.quarantineCoolDownSeconds) * 1000,
    },
  };
}

function retentionSettings(options: CoordinatorOptions): RetentionSettings {
  const r = options.retention ?? {};
  const days = r.maxAgeDays === undefined ? DEFAULT_RETENTION.maxAgeMs : r.maxAgeDays > 0 ? r.maxAgeDays * 86_400_000 : null;
  return {
    maxAgeMs: days,
    maxBytes: r.maxBytes !== undefined && r.maxBytes > 0 ? r.maxBytes : DEFAULT_RETENTION.maxBytes,
    intervalMs: r.intervalMinutes !== undefined ? r.intervalMinutes * 60_000 : DEFAULT_RETENTION.intervalMs,
    graceMs: r.graceMinutes !== undefined ? r.graceMinutes * 60_000 : DEFAULT_RETENTION.graceMs,
  };
}
