/**
 * REST API v1 (fastify). Every route under /api/v1 needs a bearer token; each handler asks for the capability it
 * needs. Request parts are validated with core's zod schemas, responses are built only by the mappers, and every
 * error goes through error-map.ts.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  API_PREFIX,
  ConflictError,
  DSG_VERSION,
  ForbiddenError,
  UnauthorizedError,
  isJobId,
  isNodeId,
  isTerminalAttempt,
  isTerminalJob,
  isTerminalTask,
  ExplainQueryV1Schema,
  ListJobsQueryV1Schema,
  ListTasksQueryV1Schema,
  LogQueryV1Schema,
  NotFoundError,
  SubmitJobRequestV1Schema,
  taskIdOf,
  GcRequestV1Schema,
  ValidationError,
  type HealthV1,
  type LogChunkV1,
} from '@dsg/core';
import { AttemptV1Schema, GcReportV1Schema, HealthV1Schema, itemsV1Schema, JobExplainV1Schema, JobV1Schema, LogChunkV1Schema, NodeV1Schema, OutputV1Schema, pageV1Schema, RetryResponseV1Schema, StatusV1Schema, TaskV1Schema } from '@dsg/core/wire-schemas';
import type { JobRecord, Store } from '@dsg/store';
import { projectFilter, requireCapability, seesProject, type Authenticator, type Capability, type Principal } from '../auth.js';
import { DEFAULT_RATE_LIMITS, RateLimiter, type RateLimitSettings } from './rate-limit.js';
import { tokenRoutes } from './routes/tokens.js';
import { joinRequestRoutes } from './routes/join-requests.js';
import { sessionRoutes } from './routes/session.js';
import type { Clock } from '../clock.js';
import type { Engine } from '../engine/engine.js';
import { WorkService } from '../service/work-service.js';
import type { CoordinatorMetrics } from '../metrics.js';
import { DataLifecycle, DEFAULT_RETENTION } from '../service/data-lifecycle.js';
import type { BlobStore } from '../files/blob-store.js';
import type { LogStore } from '../files/log-store.js';
import type { Logger } from '../logger.js';
import { toHttpError } from './error-map.js';
import { toAttemptV1, toJobV1, toNodeV1, toOutputV1, toTaskV1 } from './mappers.js';
import { parseIndex, parseOr400 } from './parse.js';
import { workflowRoutes } from './routes/workflows.js';
import { nodeRoutes } from './routes/nodes.js';
import { agentOutputRoutes } from './routes/agent-outputs.js';
import { nodeCredentialRoutes } from './routes/node-credentials.js';
import { auditRoutes } from './routes/audit.js';
import { ledgerRoutes } from './routes/ledger.js';
import { eventRoutes } from './routes/events.js';
import { overviewRoutes } from './routes/overview.js';
import { ChangeFeed } from '../events/change-feed.js';
import { ThroughputMeter } from '../events/throughput-meter.js';
import type { Audit } from './routes/authed.js';
import { actorOf, AuditLog, collectedDetail } from '../service/audit-log.js';
import { binary, buildOpenApi, noBody, routeSchema as S, schemaCompilers } from './openapi.js';

export interface ApiDeps {
  readonly store: Store;
  readonly engine: Engine;
  readonly blobs: BlobStore;
  readonly logs: LogStore;
  readonly auth: Authenticator;
  readonly clock: Clock;
  readonly log: Logger;
  readonly staticDir: string;
  readonly startedAt: number;
  /** Admission limits (HTTP 429 over them); defaults in WorkService. */
  readonly admission?: { readonly maxQueuedTasks?: number; readonly maxQueuedTasksPerProject?: number; readonly projectLimits?: Readonly<Record<string, { readonly maxQueuedTasks?: number }>> };
  /** Prometheus metrics served at /metrics; none in tests that do not need them. */
  readonly metrics?: CoordinatorMetrics;
  /** Largest input or output file accepted. */
  readonly maxUploadBytes: number;
  /** Retention and garbage collection (default: DEFAULT_RETENTION, database size not measured). */
  readonly lifecycle?: DataLifecycle;
  /** Per-token and per-IP request limits (default DEFAULT_RATE_LIMITS). */
  readonly rateLimits?: RateLimitSettings;
  /** Serve HTTPS (and WSS) with this certificate and key (PEM); plain HTTP without. */
  readonly https?: { readonly cert: string; readonly key: string };
  /** The audit log (default: one on the same store without an anchor file). */
  readonly auditLog?: AuditLog;
  /** The request limiter, shared with the agent hub so failed upgrades count too (default: one from `rateLimits`). */
  readonly limiter?: RateLimiter;
  /** Joining by approval: most pending nodes kept (default 64) and how long one not polled is kept (default 24 h). */
  readonly pendingNodes?: { readonly max?: number; readonly ttlMs?: number };
  /** The change feed behind /api/v1/events (default: one of its own, fed only by this API's write routes). */
  readonly feed?: ChangeFeed;
  /** Tasks finished per minute, for the overview (default: an empty one). */
  readonly throughput?: ThroughputMeter;
}

/** Method, URL pattern and schema of every route registered on the API (the authorization matrix test walks them all; the OpenAPI description is made from them). */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly schema?: Record<string, unknown> | undefined;
}
const ROUTES = Symbol('dsg.routes');
export const registeredRoutes = (app: FastifyInstance): readonly RegisteredRoute[] => (app as unknown as { [ROUTES]: RegisteredRoute[] })[ROUTES];

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const SHA = /^[0-9a-f]{64}$/;
// Path parameters. Ids are checked by the handlers (an id of the wrong form is "not found", like an unknown one).
const JobParams = z.strictObject({ id: z.string().meta({ description: 'A job id (`job_…`).' }) });
const TaskIndex = z.string().regex(/^\d+$/).meta({ description: 'The task\'s index in its job, from 0.' });
const TaskParams = z.strictObject({ id: JobParams.shape.id, index: TaskIndex });
const NodeParams = z.strictObject({ id: z.string().meta({ description: 'A node id (`node_…`).' }) });
const BlobParams = z.strictObject({ sha256: z.string({ error: 'expected a lowercase hex sha256' }).regex(SHA, { error: 'expected a lowercase hex sha256' }).meta({ description: 'The content\'s sha256, lowercase hex.' }) });
const BlobPutResponse = z.strictObject({ sha256: z.string(), size: z.number() });

export function buildApi(deps: ApiDeps): FastifyInstance {
  const { store, engine, blobs, clock } = deps;
  const app = Fastify({
    bodyLimit: 32 * 1024 * 1024, logger: false, return503OnClosing: true,
    ...(deps.https ? { https: { cert: deps.https.cert, key: deps.https.key } } : {}),
    // Errors fastify raises before a route runs (a path parameter over maxParamLength, a malformed URL) are answered
    // in the API's own error format too (found by the API fuzzer: they came back as fastify's { error, code }).
    frameworkErrors: (err: { statusCode?: number; message: string }, _req: unknown, res: unknown) => {
      const reply = res as { status(n: number): { send(b: unknown): unknown } };
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      void reply.status(status).send({ error: { code: status === 414 || status === 413 ? 'too_large' : 'validation', message: `bad request: ${err.message}` } });
    },
  }) as unknown as FastifyInstance;
  const routes: RegisteredRoute[] = [];
  (app as unknown as { [ROUTES]: RegisteredRoute[] })[ROUTES] = routes;
  app.addHook('onRoute', (r) => {
    // Fastify adds a HEAD route after each GET; only HEAD routes registered on purpose are listed.
    for (const m of [r.method].flat())
      if (m !== 'HEAD' || !routes.some((x) => x.method === 'GET' && x.url === r.url)) routes.push({ method: m, url: r.url, schema: r.schema as Record<string, unknown> | undefined });
  });
  // Route schemas are zod (see openapi.ts): they document; the handlers validate with the same objects.
  app.setValidatorCompiler(schemaCompilers.validator);
  app.setSerializerCompiler(schemaCompilers.serializer);

  // ── the API's description (OpenAPI 3.1), made once from the registered routes; open like the probes: it tells
  // the shape of the API, which is public (the source is), and nothing about this grid ──
  let openapi: string | undefined;
  app.get(`${API_PREFIX}/openapi.json`, {
    schema: S({ summary: 'This description of the API (OpenAPI 3.1)', tags: ['meta'], auth: 'none', response: { 200: z.record(z.string(), z.unknown()).meta({ description: 'The OpenAPI 3.1 document.' }) } }),
  }, async (_req, reply) => {
    openapi ??= JSON.stringify(buildOpenApi(routes));
    return reply.type('application/json; charset=utf-8').header('cache-control', 'no-cache').send(openapi);
  });

  // Uploads stream straight to disk; the handler gets the raw stream.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.setErrorHandler((err, req, reply) => {
    const { status, body } = toHttpError(err);
    if (status >= 500) deps.log.error({ err, url: req.url }, 'request failed');
    const retryAfter = body.error.details?.['retryAfterSeconds'];
    if (status === 429 && typeof retryAfter === 'number') void reply.header('retry-after', String(Math.ceil(retryAfter)));
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  const feed = deps.feed ?? new ChangeFeed();
  // A write through the API (submit, cancel, retry, node operations, approvals) changes what pages show.
  app.addHook('onResponse', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD' || reply.statusCode >= 400 || !req.url.startsWith(API_PREFIX)) return;
    const path = req.url.slice(API_PREFIX.length);
    if (path.startsWith('/blobs') || path.startsWith('/session') || path.startsWith('/agent')) return;
    feed.publish(...(path.startsWith('/join') ? (['joins', 'nodes'] as const) : (['jobs', 'workflows', 'nodes'] as const)));
  });


  // Every API request is authenticated here: a bearer token, or the dashboard's session cookie. A failed attempt
  // counts against the client's IP (429 once over), a successful one against its token.
  const limiter = deps.limiter ?? new RateLimiter(deps.rateLimits ?? DEFAULT_RATE_LIMITS, () => clock.now());
  const authed = async (req: FastifyRequest, cap: Capability): Promise<Principal> => {
    let p: Principal;
    try {
      p = await deps.auth.authenticateRequest({
        authorization: req.headers.authorization, cookie: req.headers.cookie, method: req.method, csrf: header(req, 'x-dsg-csrf'),
      });
    } catch (e) {
      if (e instanceof UnauthorizedError) limiter.failedAuth(req.ip);
      throw e;
    }
    limiter.takeToken(p.tokenId, p.nodeId !== null);
    requireCapability(p, cap);
    req.principal = p;
    return p;
  };

  const auditLog = deps.auditLog ?? new AuditLog({ store, clock, log: deps.log, anchorFile: null });
  const audit: Audit = (req, action, target, detail = {}, as) => {
    const p = as ?? req.principal;
    return auditLog.record(p ? actorOf(p) : { kind: 'token', id: '', name: 'anonymous', role: 'none' }, action, target, detail, req.ip);
  };

  /** The job, if the principal may see it: another project's job is "not found" to a submitter (see auth.ts). */
  const jobOr404 = async (id: string, p: Principal): Promise<JobRecord> => {
    const job = isJobId(id) ? await store.getJob(id) : null;
    if (!job || !seesProject(p, job.compiled.project)) throw new NotFoundError('job', id);
    return job;
  };
  const pendingOf = (j: JobRecord) => (isTerminalJobState(j) || j.counts.queued === 0 ? undefined : engine.pendingReasons.get(j.id));
  const jobV1 = (j: JobRecord) => toJobV1(j, pendingOf(j));
  const work = new WorkService({ store, engine, blobs, clock, log: deps.log, ...(deps.admission ? { admission: deps.admission } : {}) });
  workflowRoutes(app, { work, store, authed, audit, pendingOf });
  tokenRoutes(app, { store, auth: deps.auth, clock, authed, audit });
  sessionRoutes(app, { auth: deps.auth, clock, authed, audit, onFailedAuth: (ip) => limiter.failedAuth(ip) });
  nodeRoutes(app, { store, engine, clock, authed, audit });
  joinRequestRoutes(app, {
    store, auth: deps.auth, clock, authed, audit,
    ...(deps.pendingNodes?.max !== undefined ? { maxPending: deps.pendingNodes.max } : {}),
    ...(deps.pendingNodes?.ttlMs !== undefined ? { staleMs: deps.pendingNodes.ttlMs } : {}),
  });
  auditRoutes(app, { auditLog, authed });
  ledgerRoutes(app, { store, authed });

  // ── live change feed and the dashboard's read models ──
  eventRoutes(app, { feed, authed, now: () => clock.now() });
  overviewRoutes(app, { store, engine, throughput: deps.throughput ?? new ThroughputMeter(() => clock.now()), authed, now: () => clock.now() });
  // ── dashboard (packages/web's built app; see scripts/build-web.mjs) ──
  const sendIndex = async (_req: FastifyRequest, reply: import('fastify').FastifyReply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(await readFile(join(deps.staticDir, 'index.html')));
  app.get('/', sendIndex);
  // Hashed file names (app-XXXX.js): cached for a year; anything not in the folder is a 404, never a path outside it.
  app.get('/assets/:file', {
    schema: { params: { type: 'object', required: ['file'], properties: { file: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,100}$' } } } },
  }, async (req, reply) => {
    const { file } = req.params as { file: string };
    if (file.startsWith('.')) throw new NotFoundError('asset', file);
    const type = ASSET_TYPES[file.slice(file.lastIndexOf('.'))];
    if (!type) throw new NotFoundError('asset', file);
    let body: Buffer;
    try {
      body = await readFile(join(deps.staticDir, 'assets', file));
    } catch {
      throw new NotFoundError('asset', file);
    }
    return reply.type(type).header('cache-control', /-[A-Z0-9]{8}\./.test(file) ? 'public, max-age=31536000, immutable' : 'no-cache').send(body);
  });

  // ── probes for supervisors and load balancers: no token, and nothing revealed but ok / not ready and why ──
  // /healthz: the process answers. /readyz: the store commits a real write and the engine takes work; 503 with a
  // short reason otherwise (no version, counts or error details: these routes are open to anyone who can connect).
  app.get('/healthz', async (_req, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    void reply.header('cache-control', 'no-store');
    if (!engine.accepting) return reply.status(503).send({ status: 'unavailable', reason: 'not accepting work (starting or stopping)' });
    try {
      await store.probeWrite(clock.now());
    } catch (e) {
      deps.log.error({ err: e }, 'readiness: the store cannot commit');
      return reply.status(503).send({ status: 'unavailable', reason: 'store not writable' });
    }
    return reply.send({ status: 'ready' });
  });

  // ── health ──
  app.get(`${API_PREFIX}/health`, { schema: S({ summary: 'Coordinator version, store and nodes online', tags: ['grid'], response: { 200: HealthV1Schema } }) }, async (req) => {
    await authed(req, 'nodes:read');
    const nodes = await store.listNodeUsage(['online']);
    const body: HealthV1 = {
      status: 'ok',
      version: DSG_VERSION,
      store: store.kind,
      uptimeSeconds: Math.round((clock.now() - deps.startedAt) / 1000),
      nodesOnline: nodes.length,
    };
    return body;
  });

  // ── metrics (Prometheus text format; scrape with a bearer token) ──
  app.get('/metrics', async (req, reply) => {
    await authed(req, 'grid:read');
    if (!deps.metrics) throw new NotFoundError('route', '/metrics');
    const m = await deps.metrics.render();
    return reply.type(m.contentType).send(m.body);
  });

  // ── status and garbage collection ──
  const lifecycle = deps.lifecycle ?? new DataLifecycle({ store, blobs, logs: deps.logs, clock, log: deps.log, settings: DEFAULT_RETENTION, databaseFiles: [] });
  app.get(`${API_PREFIX}/status`, { schema: S({ summary: 'What the grid holds and the disk it uses', tags: ['grid'], response: { 200: StatusV1Schema } }) }, async (req) => {
    await authed(req, 'grid:read');
    return lifecycle.status();
  });
  app.post(`${API_PREFIX}/gc`, { schema: S({ summary: 'Collect garbage now (finished work past retention); dryRun to only see', tags: ['grid'], body: GcRequestV1Schema, response: { 200: GcReportV1Schema } }) }, async (req) => {
    await authed(req, 'nodes:write');
    const body = parseOr400(GcRequestV1Schema, req.body ?? undefined, 'body');
    const report = await lifecycle.collect({ dryRun: body?.dryRun ?? false });
    if (!report.dryRun) await audit(req, 'data.collected', '', collectedDetail(report));
    return report;
  });

  // ── blobs (job inputs) ──
  // A node credential may read only the inputs of attempts assigned to its node; an admin token reads any blob.
  const mayRead = async (p: Principal, sha256: string): Promise<void> => {
    if (!p.nodeId || engine.inputGrants.allowed(p.nodeId, sha256)) return;
    // After a restart the grants are gone: the job inputs of the node's active attempts still count.
    for (const a of await store.activeAttemptsOnNode(p.nodeId)) {
      const job = await engine.jobs.get(a.jobId);
      if (job?.inputs.some((i) => i.sha256 === sha256)) return;
    }
    const msg = `blob ${sha256} is not an input of any attempt assigned to this node`;
    engine.refusals.refuse(p.nodeId, 'blob', null, msg);
    throw new ForbiddenError(msg);
  };
  app.head(`${API_PREFIX}/blobs/:sha256`, { schema: S({ summary: 'Whether the coordinator has a file (then a submit may name it without uploading it)', tags: ['files'], params: BlobParams, response: { 200: noBody('It has it; `Content-Length` is its size.'), 404: noBody('It does not have it: upload it.') } }) }, async (req, reply) => {
    const p = await authed(req, 'blobs:check');
    const { sha256 } = req.params as { sha256: string };
    await mayRead(p, sha256);
    const size = SHA.test(sha256) ? await blobs.size(sha256) : null;
    if (size === null) return reply.status(404).send();
    // Found: the client will name it in a submit instead of uploading it; keep it safe from a sweep meanwhile.
    await blobs.touch(sha256);
    return reply.header('content-length', size).status(200).send();
  });
  app.get(`${API_PREFIX}/blobs/:sha256`, { schema: S({ summary: 'Download a file by its sha256', tags: ['files'], params: BlobParams, response: { 200: binary('The file.') }, errors: [404] }) }, async (req, reply) => {
    const p = await authed(req, 'blobs:read');
    const { sha256 } = req.params as { sha256: string };
    await mayRead(p, sha256);
    const size = SHA.test(sha256) ? await blobs.size(sha256) : null;
    if (size === null) throw new NotFoundError('blob', sha256);
    return reply.type('application/octet-stream').header('content-length', size).send(blobs.open(sha256));
  });
  app.put(`${API_PREFIX}/blobs/:sha256`, { schema: S({ summary: 'Upload a job input file (its sha256 is checked)', tags: ['files'], params: BlobParams, body: binary('The file.'), response: { 201: BlobPutResponse }, errors: [413, 415] }) }, async (req, reply) => {
    await authed(req, 'blobs:write');
    const { sha256 } = parseOr400(BlobParams, req.params, 'params');
    const body = requireStream(req);
    const { size } = await blobs.put(sha256, body, deps.maxUploadBytes);
    return reply.status(201).send({ sha256, size });
  });

  // ── jobs ──
  app.post(`${API_PREFIX}/jobs`, { schema: S({ summary: 'Submit a job', tags: ['jobs'], body: SubmitJobRequestV1Schema, response: { 201: z.strictObject({ job: JobV1Schema }) }, errors: [404, 409, 413] }) }, async (req, reply) => {
    const p = await authed(req, 'jobs:write');
    const body = parseOr400(SubmitJobRequestV1Schema, req.body, 'body');
    const job = await work.submitJob(body, p);
    await audit(req, 'job.submitted', job.id, { name: job.name, project: job.compiled.project, tasks: job.taskCount });
    return reply.status(201).send({ job: jobV1(job) });
  });
  app.get(`${API_PREFIX}/jobs`, { schema: S({ summary: 'List jobs, newest first', tags: ['jobs'], querystring: ListJobsQueryV1Schema, response: { 200: pageV1Schema(JobV1Schema) } }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    const q = parseOr400(ListJobsQueryV1Schema, req.query, 'query');
    const scoped = projectFilter(p);
    const projects = q.project ? (scoped && !scoped.includes(q.project) ? [] : [q.project]) : scoped;
    const page = await store.listJobs({
      limit: q.limit ?? 50, ...(q.state ? { state: q.state } : {}), ...(q.name ? { name: q.name } : {}), ...(q.cursor ? { cursor: q.cursor } : {}), ...(q.order ? { order: q.order } : {}), ...(projects ? { projects } : {}),
    });
    return { items: page.items.map(jobV1), nextCursor: page.nextCursor };
  });
  app.get(`${API_PREFIX}/jobs/:id`, { schema: S({ summary: 'A job', tags: ['jobs'], params: JobParams, response: { 200: JobV1Schema }, errors: [404] }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    return jobV1(await jobOr404((req.params as { id: string }).id, p));
  });
  // Cancel: 200 with the job (queued tasks cancelled, running ones being killed). A job that has already finished
  // is left as it is: 409 `conflict`, "job … already succeeded; there is nothing to cancel", with the unchanged job
  // in `error.details.job`.
  app.post(`${API_PREFIX}/jobs/:id/cancel`, { schema: S({ summary: 'Cancel a job (409 with the unchanged job in `details.job` when it had finished)', tags: ['jobs'], params: JobParams, response: { 200: JobV1Schema }, errors: [404, 409] }) }, async (req) => {
    const p = await authed(req, 'jobs:write');
    const { id } = req.params as { id: string };
    const r = await work.cancelJob(id, p);
    if (r.alreadyFinished) throw new ConflictError(`job ${id} already ${r.job.state}; there is nothing to cancel`, { job: jobV1(r.job), state: r.job.state });
    await audit(req, 'job.cancelled', r.job.id, { name: r.job.name, project: r.job.compiled.project });
    return jobV1(r.job);
  });
  app.get(`${API_PREFIX}/jobs/:id/explain`, { schema: S({ summary: 'Why a job\'s tasks wait, node by node', tags: ['jobs'], params: JobParams, querystring: ExplainQueryV1Schema, response: { 200: JobExplainV1Schema }, errors: [404] }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    const q = parseOr400(ExplainQueryV1Schema, req.query, 'query');
    return work.explainJob((req.params as { id: string }).id, q.task ?? null, p);
  });
  app.post(`${API_PREFIX}/jobs/:id/retry`, { schema: S({ summary: 'Put a job\'s failed and cancelled tasks back in the queue', tags: ['jobs'], params: JobParams, response: { 200: RetryResponseV1Schema.extend({ job: JobV1Schema }) }, errors: [404, 409] }) }, async (req) => {
    const p = await authed(req, 'jobs:write');
    const r = await work.retryJob((req.params as { id: string }).id, p);
    await audit(req, 'job.retried', r.job.id, { name: r.job.name, project: r.job.compiled.project, ...r.result });
    return { ...r.result, job: jobV1(r.job) };
  });
  app.get(`${API_PREFIX}/jobs/:id/tasks`, { schema: S({ summary: 'A job\'s tasks', tags: ['jobs'], params: JobParams, querystring: ListTasksQueryV1Schema, response: { 200: pageV1Schema(TaskV1Schema) }, errors: [404] }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    const job = await jobOr404((req.params as { id: string }).id, p);
    const q = parseOr400(ListTasksQueryV1Schema, req.query, 'query');
    const page = await store.listTasks(job.id, { limit: q.limit ?? 1000, ...(q.state ? { state: q.state } : {}), ...(q.cursor ? { cursor: q.cursor } : {}) });
    return { items: page.items.map(toTaskV1), nextCursor: page.nextCursor };
  });
  const taskOr404 = async (id: string, indexText: string, p: Principal) => {
    const job = await jobOr404(id, p);
    const index = parseIndex(indexText);
    const task = index < job.taskCount ? await store.getTask(taskIdOf(job.id, index)) : null;
    if (!task) throw new NotFoundError('task', `${id}.${indexText} (the job has ${job.taskCount} tasks, numbered from 0)`);
    return { job, task };
  };
  app.get(`${API_PREFIX}/jobs/:id/tasks/:index`, { schema: S({ summary: 'A task', tags: ['jobs'], params: TaskParams, response: { 200: TaskV1Schema }, errors: [404] }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    const { id, index } = req.params as { id: string; index: string };
    return toTaskV1((await taskOr404(id, index, p)).task);
  });
  app.get(`${API_PREFIX}/jobs/:id/tasks/:index/attempts`, { schema: S({ summary: 'A task\'s attempts, first to last', tags: ['jobs'], params: TaskParams, response: { 200: itemsV1Schema(AttemptV1Schema) }, errors: [404] }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    const { id, index } = req.params as { id: string; index: string };
    const { task } = await taskOr404(id, index, p);
    return { items: (await store.listAttempts(task.id)).map(toAttemptV1) };
  });
  app.get(`${API_PREFIX}/jobs/:id/tasks/:index/logs`, { schema: S({ summary: 'A piece of a task\'s log (its latest attempt, or `attempt`), from `offset`', tags: ['jobs'], params: TaskParams, querystring: LogQueryV1Schema, response: { 200: LogChunkV1Schema }, errors: [404] }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    const { id, index } = req.params as { id: string; index: string };
    const q = parseOr400(LogQueryV1Schema, req.query, 'query');
    const { job, task } = await taskOr404(id, index, p);
    const attempts = await store.listAttempts(task.id);
    const attempt = q.attempt ? attempts.find((a) => a.id === q.attempt || String(a.number) === q.attempt) : attempts[attempts.length - 1];
    if (q.attempt && !attempt) throw new NotFoundError('attempt', q.attempt);
    const offset = q.offset ?? 0;
    if (!attempt) {
      const chunk: LogChunkV1 = { data: '', offset, nextOffset: offset, complete: isTerminalTask(task.state), attemptId: null };
      return chunk;
    }
    const r = await deps.logs.read(job.id, attempt.id, offset, q.limit ?? 1024 * 1024);
    const chunk: LogChunkV1 = {
      data: r.data,
      offset,
      nextOffset: r.nextOffset,
      complete: isTerminalAttempt(attempt.state) && r.nextOffset >= r.size,
      attemptId: attempt.id,
    };
    return chunk;
  });
  app.get(`${API_PREFIX}/jobs/:id/outputs`, { schema: S({ summary: 'A job\'s output files', tags: ['jobs'], params: JobParams, response: { 200: itemsV1Schema(OutputV1Schema) }, errors: [404] }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    const job = await jobOr404((req.params as { id: string }).id, p);
    return { items: (await store.listOutputs(job.id)).map(toOutputV1) };
  });
  app.get(`${API_PREFIX}/jobs/:id/tasks/:index/outputs/*`, {
    schema: S({
      summary: 'Download an output file of a task', description: '`path` is the file\'s path in the task\'s directory; it may contain slashes. `X-DSG-SHA256` is its sha256.',
      tags: ['jobs'], params: TaskParams.extend({ '*': z.string().meta({ description: 'The output\'s path (slashes allowed).' }) }), response: { 200: binary('The file.') }, errors: [404],
    }),
  }, async (req, reply) => {
    const p = await authed(req, 'jobs:read');
    const { id, index, '*': path } = req.params as { id: string; index: string; '*': string };
    const job = await jobOr404(id, p);
    const i = parseIndex(index);
    const out = (await store.listOutputs(job.id)).find((o) => o.taskIndex === i && o.path === path);
    if (!out) throw new NotFoundError('output', `${path} of task ${index}`);
    return reply.type('application/octet-stream').header('content-length', out.size).header('x-dsg-sha256', out.sha256).send(blobs.open(out.sha256));
  });

  // ── outputs from agents (only the attempt's node, declared paths, within a quota) ──
  agentOutputRoutes(app, { store, engine, blobs, authed, maxUploadBytes: deps.maxUploadBytes, requireStream });
  nodeCredentialRoutes(app, { store, engine, auth: deps.auth, clock, log: deps.log, authed, audit });

  // ── nodes ──
  app.get(`${API_PREFIX}/nodes`, { schema: S({ summary: 'Every node, with what it holds', tags: ['nodes'], response: { 200: itemsV1Schema(NodeV1Schema) } }) }, async (req) => {
    await authed(req, 'nodes:read');
    return { items: (await store.listNodeUsage()).map((u) => toNodeV1(u, clock.now(), engine.nodePolicy(u.node.id), engine.nodeHostUsage(u.node.id))) };
  });
  app.get(`${API_PREFIX}/nodes/:id`, { schema: S({ summary: 'A node', tags: ['nodes'], params: NodeParams, response: { 200: NodeV1Schema }, errors: [404] }) }, async (req) => {
    await authed(req, 'nodes:read');
    const { id } = req.params as { id: string };
    const u = isNodeId(id) ? (await store.listNodeUsage()).find((n) => n.node.id === id) : undefined;
    if (!u) throw new NotFoundError('node', id);
    return toNodeV1(u, clock.now(), engine.nodePolicy(u.node.id), engine.nodeHostUsage(u.node.id));
  });

  return app;
}

const ASSET_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.map': 'application/json', '.txt': 'text/plain; charset=utf-8',
};

function requireStream(req: FastifyRequest): Readable {
  const body = req.body as Readable | undefined;
  if (!body || typeof (body as Readable).pipe !== 'function')
    throw new ValidationError([{ path: 'headers.content-type', message: 'expected content-type: application/octet-stream with the file as the body' }]);
  return body;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function isTerminalJobState(j: JobRecord): boolean {
  return isTerminalJob(j.state);
}

