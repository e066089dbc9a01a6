// The authorization matrix: EVERY route the API registers (asked from fastify, so a new route without an entry
// here fails this test) × every kind of caller — admin, submitter of the resource's project, submitter of another
// project, reader, join token, node credential, an admin session cookie without the CSRF header, and no /
// malformed / wrong / revoked / expired token — each answer's status asserted. Real SQLite store in a temp dir,
// requests through fastify's inject. Also: revocation and expiry take effect on the very next request (nothing
// cached), and the per-token and per-IP rate limits answer 429 with Retry-After in the API's error format.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { pino } from 'pino';
import WebSocket from 'ws';
import { AGENT_WS_PATH, newNodeId, normalizeJoinCode, type NodeId } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteStore, type Store } from '@dsg/store';
import { Engine } from '@dsg/coordinator';
import { Authenticator, createToken } from '../src/auth.js';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { CoordinatorMetrics } from '../src/metrics.js';
import { JobCache } from '../src/engine/job-cache.js';
import { AgentHub } from '../src/agents/agent-hub.js';
import { assertAllDescribed, checkResponsesAgainstOpenApi } from './fixtures/openapi-check.js';
import { buildApi, registeredRoutes } from '../src/http/server.js';
import type { RateLimitSettings } from '../src/http/rate-limit.js';

const STATIC_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'web', 'dist', 'app'); // the built dashboard
const GiB = 1024 ** 3;

const KINDS = ['admin', 'subOwn', 'subOther', 'reader', 'join', 'cred', 'cookieNoCsrf', 'none', 'malformed', 'wrong', 'revoked', 'expired'] as const;
type Kind = (typeof KINDS)[number];
/** A status, or `hidden`: 404 because the job or workflow belongs to another project (not the thing asked for). */
type Expect = number | 'hidden';

interface Fixture {
  dir: string;
  store: Store;
  engine: Engine;
  app: FastifyInstance;
  clock: { t: number; now: () => number };
  secrets: Record<'admin' | 'subOwn' | 'subOther' | 'reader' | 'join' | 'cred' | 'revoked' | 'expired', string>;
  cookie: string;
  close(): Promise<void>;
}

async function fixture(rateLimits: RateLimitSettings = { perTokenPerSecond: 0, perTokenBurst: 1, failedAuthPerMinute: 0 }): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'dsg-authz-'));
  const clock = { t: Date.now(), now: () => clock.t };
  const store = openSqliteStore({ file: join(dir, 'db.sqlite') });
  await store.init();
  const blobs = new FileBlobStore(join(dir, 'blobs'));
  await blobs.init();
  const logs = new FileLogStore(join(dir, 'logs'));
  const log = pino({ level: 'silent' });
  const engine = new Engine(store, blobs, logs, clock, { heartbeatIntervalMs: 5000, nodeTimeoutMs: 30000, reconcileGraceMs: 10000, reportBatchMs: 0, policy: { maxSystemRetries: 3 }, scheduler: DEFAULT_SCHEDULER_CONFIG }, log);
  const auth = new Authenticator(store, clock.now);
  const now = clock.now();
  const mk = async (role: 'admin' | 'submitter' | 'reader' | 'node', name: string, opts = {}) => (await createToken(store, role, name, now, opts)).secret;
  const nodeId = await node(store, 'worker', now);
  const revoked = await createToken(store, 'admin', 'revoked admin', now);
  await store.revokeToken(revoked.record.id, now);
  const secrets = {
    admin: await mk('admin', 'admin'),
    subOwn: await mk('submitter', 'alice', { projects: ['climate'] }),
    subOther: await mk('submitter', 'bob', { projects: ['bio'] }),
    reader: await mk('reader', 'viewer'),
    join: await mk('node', 'join'),
    cred: await auth.issueNodeCredential(nodeId, 'worker', now),
    revoked: revoked.secret,
    expired: await mk('submitter', 'carol', { projects: ['climate'], expiresAt: now - 1 }),
  };
  const app = buildApi({
    store, engine, blobs, logs, auth, clock, log, staticDir: STATIC_DIR, startedAt: now, maxUploadBytes: 1 << 20,
    metrics: new CoordinatorMetrics(store), rateLimits,
  });
  const described = checkResponsesAgainstOpenApi(app);
  const s = await app.inject({ method: 'POST', url: '/api/v1/session', payload: { token: secrets.admin } });
  assert.equal(s.statusCode, 201, s.body);
  const cookie = String(s.headers['set-cookie']).split(';')[0]!;
  return {
    dir, store, engine, app, clock, secrets, cookie,
    close: async () => {
      await app.close();
      await engine.stop();
      await store.close();
      await rm(dir, { recursive: true, force: true });
      assertAllDescribed(described);
    },
  };
}

async function node(store: Store, name: string, now: number): Promise<NodeId> {
  const id = newNodeId(now);
  await store.upsertNode({
    id, name, capacity: { cpuMillis: 8000, memoryBytes: 8 * GiB, gpus: 0, diskBytes: 100 * GiB },
    facts: { hostname: name, os: 'linux', arch: 'x64', cpuModel: 'x', cores: 8, memoryBytes: 8 * GiB, diskBytes: 100 * GiB, gpus: [] },
    labels: {}, agentVersion: 't', address: null, now,
  });
  return id;
}

/** Headers that present a kind of caller. */
function credentialsOf(f: Fixture, k: Kind): Record<string, string> {
  switch (k) {
    case 'none':
      return {};
    case 'malformed':
      return { authorization: 'Basic dXNlcjpwYXNz' };
    case 'wrong':
      return { authorization: 'Bearer dsg_admin_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };
    case 'cookieNoCsrf':
      return { cookie: f.cookie };
    default:
      return { authorization: `Bearer ${f.secrets[k]}` };
  }
}

const UNAUTHENTICATED: readonly Kind[] = ['none', 'malformed', 'wrong', 'revoked', 'expired'];

/**
 * Expected statuses per kind: `allowed` for the kinds that may, 401 for every unauthenticated kind, `denied` (403
 * unless said otherwise) for the rest. The admin session cookie without X-DSG-CSRF reads like the admin and is
 * refused (403) on every request that changes something.
 */
function rule(method: string, allowed: Partial<Record<Kind, Expect>>, denied: Partial<Record<Kind, Expect>> = {}): Record<Kind, Expect> {
  const out = {} as Record<Kind, Expect>;
  for (const k of KINDS) out[k] = UNAUTHENTICATED.includes(k) ? 401 : (allowed[k] ?? denied[k] ?? 403);
  if (allowed.cookieNoCsrf === undefined) out.cookieNoCsrf = method === 'GET' || method === 'HEAD' ? (allowed.admin ?? 403) : 403;
  return out;
}
const everyone = (status: number): Record<Kind, Expect> => Object.fromEntries(KINDS.map((k) => [k, status])) as Record<Kind, Expect>;

interface Case {
  /** Builds the request (ids of the fixture's objects in the URL, a body); the caller's headers are added. */
  readonly request: (kind: Kind) => Omit<InjectOptions, 'headers'> & { headers?: Record<string, string> };
  readonly expect: Record<Kind, Expect>;
}

const JOIN_FACTS = { os: 'linux', arch: 'x64', cpuModel: 'x', cores: 2, memoryBytes: 2 ** 30, gpus: [] };

describe('authorization matrix: every route × every kind of caller', () => {
  let f: Fixture;
  let ids: { job: string; wf: string; blob: string; node: string; spareNode: string; revokeNode: string; token: string; approve: string; reject: string };
  const results: string[] = [];

  before(async () => {
    f = await fixture();
    const auth = { authorization: `Bearer ${f.secrets.admin}` };
    const body = Buffer.from('input data');
    const blob = createHash('sha256').update(body).digest('hex');
    assert.equal((await f.app.inject({ method: 'PUT', url: `/api/v1/blobs/${blob}`, headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: body })).statusCode, 201);
    const job = (await f.app.inject({ method: 'POST', url: '/api/v1/jobs', headers: auth, payload: { spec: { name: 'c', project: 'climate', script: 'true', array: 2 } } })).json().job.id as string;
    const wf = (await f.app.inject({ method: 'POST', url: '/api/v1/workflows', headers: auth, payload: { spec: { name: 'w', project: 'climate', stages: { a: { script: 'true' } } } } })).json().workflow.id as string;
    const nodes = (await f.app.inject({ method: 'GET', url: '/api/v1/nodes', headers: auth })).json().items as Array<{ id: string }>;
    const spareNode = await node(f.store, 'spare', f.clock.now());
    const revokeNode = await node(f.store, 'to-revoke', f.clock.now());
    const tok = (await f.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: auth, payload: { role: 'reader', name: 'to-revoke' } })).json().token.id as string;
    const ask = async (name: string): Promise<string> =>
      (await f.app.inject({ method: 'POST', url: '/api/v1/join-requests', payload: { key: randomBytes(32).toString('base64url'), name, facts: JOIN_FACTS } })).json().request.id as string;
    ids = { job, wf, blob, node: nodes[0]!.id, spareNode, revokeNode, token: tok, approve: await ask('to-approve'), reject: await ask('to-reject') };
  });
  after(async () => {
    await f.close();
  });

  const cases = (): Record<string, Case> => {
    const j = ids.job;
    const w = ids.wf;
    const get = (url: string) => () => ({ method: 'GET' as const, url });
    const post = (url: string, payload?: object) => () => ({ method: 'POST' as const, url, ...(payload ? { payload } : {}) });
    const read = (method: string, ok: number) => rule(method, { admin: ok, subOwn: ok, reader: ok }, { subOther: 'hidden' });
    const change = (method: string, ok: number | 'hidden', opts: { subOther?: Expect } = {}) => rule(method, { admin: ok, subOwn: ok }, { subOther: opts.subOther ?? 'hidden' });
    const admin = (method: string, ok: number) => rule(method, { admin: ok });
    const gridRead = (ok: number) => rule('GET', { admin: ok, reader: ok });
    const nodesRead = (ok: number) => rule('GET', { admin: ok, subOwn: ok, subOther: ok, reader: ok });
    const sessionOwners = (method: string, ok: number) => rule(method, { admin: ok, subOwn: ok, subOther: ok, reader: ok });
    return {
      'GET /': { request: get('/'), expect: everyone(200) },
      'GET /healthz': { request: get('/healthz'), expect: everyone(200) },
      // The API's description is open to anyone (it is the same for every grid; clients fetch it before they have a token).
      'GET /api/v1/openapi.json': { request: get('/api/v1/openapi.json'), expect: everyone(200) },
      // The engine is not started in this test: not ready, for everyone alike (no token needed, nothing revealed).
      'GET /readyz': { request: get('/readyz'), expect: everyone(503) },
      'GET /api/v1/health': { request: get('/api/v1/health'), expect: nodesRead(200) },
      'GET /metrics': { request: get('/metrics'), expect: gridRead(200) },
      'GET /api/v1/status': { request: get('/api/v1/status'), expect: gridRead(200) },
      'POST /api/v1/gc': { request: post('/api/v1/gc', { dryRun: true }), expect: admin('POST', 200) },
      'GET /api/v1/audit': { request: get('/api/v1/audit?limit=5'), expect: gridRead(200) },
      'GET /api/v1/audit/verify': { request: get('/api/v1/audit/verify'), expect: gridRead(200) },
      'GET /api/v1/ledger': { request: get('/api/v1/ledger?by=project'), expect: gridRead(200) },
      'GET /assets/:file': { request: get('/assets/no-such-file.js'), expect: everyone(404) },
      // Events carry no data (the page refetches with its own permissions): every reading principal may listen.
      'GET /api/v1/events': { request: get('/api/v1/events?timeout=1'), expect: nodesRead(200) },
      'GET /api/v1/overview': { request: get('/api/v1/overview'), expect: nodesRead(200) },
      'GET /api/v1/nodes/:id/attempts': { request: get(`/api/v1/nodes/${ids.node}/attempts`), expect: nodesRead(200) },
      'HEAD /api/v1/blobs/:sha256': {
        request: () => ({ method: 'HEAD', url: `/api/v1/blobs/${ids.blob}` }),
        // A node credential may check only the inputs of its own attempts (it has none here).
        expect: rule('HEAD', { admin: 200, subOwn: 200, subOther: 200, reader: 200 }),
      },
      // Reading a blob: admin and reader read any; a node credential only its attempts' inputs; submitters none.
      'GET /api/v1/blobs/:sha256': { request: get(`/api/v1/blobs/${ids.blob}`), expect: rule('GET', { admin: 200, reader: 200 }) },
      'PUT /api/v1/blobs/:sha256': {
        request: () => {
          const data = Buffer.from(`upload ${Math.random()}`);
          return { method: 'PUT', url: `/api/v1/blobs/${createHash('sha256').update(data).digest('hex')}`, payload: data, headers: { 'content-type': 'application/octet-stream' } };
        },
        expect: rule('PUT', { admin: 201, subOwn: 201, subOther: 201 }),
      },
      'POST /api/v1/jobs': {
        request: post('/api/v1/jobs', { spec: { name: 'm', project: 'climate', script: 'true' } }),
        // Into another project: 403 naming the project.
        expect: change('POST', 201, { subOther: 403 }),
      },
      'GET /api/v1/jobs': { request: get('/api/v1/jobs'), expect: rule('GET', { admin: 200, subOwn: 200, subOther: 200, reader: 200 }) },
      'GET /api/v1/jobs/:id': { request: get(`/api/v1/jobs/${j}`), expect: read('GET', 200) },
      // A cancel of a job already cancelled answers 409 (past authorization); the first allowed caller gets 200.
      'POST /api/v1/jobs/:id/cancel': { request: post(`/api/v1/jobs/${j}/cancel`), expect: change('POST', 200) },
      'GET /api/v1/jobs/:id/explain': { request: get(`/api/v1/jobs/${j}/explain`), expect: read('GET', 200) },
      'POST /api/v1/jobs/:id/retry': { request: post(`/api/v1/jobs/${j}/retry`), expect: change('POST', 200) },
      'GET /api/v1/jobs/:id/tasks': { request: get(`/api/v1/jobs/${j}/tasks`), expect: read('GET', 200) },
      'GET /api/v1/jobs/:id/tasks/:index': { request: get(`/api/v1/jobs/${j}/tasks/1`), expect: read('GET', 200) },
      'GET /api/v1/jobs/:id/tasks/:index/attempts': { request: get(`/api/v1/jobs/${j}/tasks/1/attempts`), expect: read('GET', 200) },
      'GET /api/v1/jobs/:id/tasks/:index/logs': { request: get(`/api/v1/jobs/${j}/tasks/1/logs`), expect: read('GET', 200) },
      'GET /api/v1/jobs/:id/outputs': { request: get(`/api/v1/jobs/${j}/outputs`), expect: read('GET', 200) },
      // The job has no outputs: allowed callers learn "output … not found", a submitter of another project "job … not found".
      'GET /api/v1/jobs/:id/tasks/:index/outputs/*': { request: get(`/api/v1/jobs/${j}/tasks/0/outputs/out.txt`), expect: read('GET', 404) },
      // Only the node an attempt is assigned to may upload its outputs; here there is no such attempt (404 past authorization).
      'PUT /api/v1/attempts/:attemptId/outputs/*': {
        request: () => ({ method: 'PUT', url: '/api/v1/attempts/att_none/outputs/out.txt', payload: Buffer.from('x'), headers: { 'content-type': 'application/octet-stream', 'x-dsg-sha256': 'a'.repeat(64) } }),
        expect: rule('PUT', { admin: 404, cred: 404 }),
      },
      'GET /api/v1/security/refusals': { request: get('/api/v1/security/refusals'), expect: gridRead(200) },
      'POST /api/v1/workflows': {
        request: post('/api/v1/workflows', { spec: { name: 'w2', project: 'climate', stages: { a: { script: 'true' } } } }),
        expect: change('POST', 201, { subOther: 403 }),
      },
      'GET /api/v1/workflows': { request: get('/api/v1/workflows'), expect: rule('GET', { admin: 200, subOwn: 200, subOther: 200, reader: 200 }) },
      'GET /api/v1/workflows/:id': { request: get(`/api/v1/workflows/${w}`), expect: read('GET', 200) },
      'POST /api/v1/workflows/:id/cancel': { request: post(`/api/v1/workflows/${w}/cancel`), expect: change('POST', 200) },
      'POST /api/v1/workflows/:id/retry': { request: post(`/api/v1/workflows/${w}/retry`), expect: change('POST', 200) },
      'GET /api/v1/workflows/:id/outputs': { request: get(`/api/v1/workflows/${w}/outputs`), expect: read('GET', 200) },
      'POST /api/v1/tokens': { request: post('/api/v1/tokens', { role: 'reader' }), expect: admin('POST', 201) },
      'GET /api/v1/tokens': { request: get('/api/v1/tokens'), expect: admin('GET', 200) },
      'POST /api/v1/join-codes': { request: post('/api/v1/join-codes', {}), expect: admin('POST', 201) },
      // Open to anyone (a machine without a token asks to join); the same key polls the same request.
      'POST /api/v1/join-requests': { request: post('/api/v1/join-requests', { key: 'k'.repeat(43), name: 'asker', facts: JOIN_FACTS }), expect: everyone(202) },
      'GET /api/v1/join-requests': { request: get('/api/v1/join-requests'), expect: nodesRead(200) },
      'POST /api/v1/join-requests/:id/approve': { request: post(`/api/v1/join-requests/${ids.approve}/approve`, {}), expect: admin('POST', 200) },
      'POST /api/v1/join-requests/:id/reject': { request: post(`/api/v1/join-requests/${ids.reject}/reject`, { reason: 'no' }), expect: admin('POST', 200) },
      'DELETE /api/v1/tokens/:id': { request: () => ({ method: 'DELETE', url: `/api/v1/tokens/${ids.token}` }), expect: admin('DELETE', 200) },
      'POST /api/v1/session': {
        // Signing in takes the token in the body, not in a header: each kind signs in with its own secret.
        request: (k) => {
          const secret = k in f.secrets ? f.secrets[k as keyof Fixture['secrets']] : k === 'malformed' ? 'not a token' : k === 'wrong' ? 'dsg_admin_wrong' : undefined;
          return { method: 'POST', url: '/api/v1/session', ...(secret !== undefined ? { payload: { token: secret } } : {}) };
        },
        expect: { ...rule('POST', { admin: 201, subOwn: 201, subOther: 201, reader: 201 }), none: 400, cookieNoCsrf: 400 },
      },
      'GET /api/v1/session': { request: get('/api/v1/session'), expect: sessionOwners('GET', 200) },
      'DELETE /api/v1/session': { request: () => ({ method: 'DELETE', url: '/api/v1/session' }), expect: sessionOwners('DELETE', 204) },
      'POST /api/v1/nodes/:id/cordon': { request: post(`/api/v1/nodes/${ids.node}/cordon`), expect: admin('POST', 200) },
      'POST /api/v1/nodes/:id/drain': { request: post(`/api/v1/nodes/${ids.node}/drain`), expect: admin('POST', 200) },
      'POST /api/v1/nodes/:id/uncordon': { request: post(`/api/v1/nodes/${ids.node}/uncordon`), expect: admin('POST', 200) },
      'POST /api/v1/nodes/:id/remove': { request: post(`/api/v1/nodes/${ids.spareNode}/remove`, { force: true }), expect: admin('POST', 200) },
      'POST /api/v1/nodes/:id/revoke': { request: post(`/api/v1/nodes/${ids.revokeNode}/revoke`), expect: admin('POST', 200) },
      'GET /api/v1/nodes': { request: get('/api/v1/nodes'), expect: nodesRead(200) },
      'GET /api/v1/nodes/:id': { request: get(`/api/v1/nodes/${ids.node}`), expect: nodesRead(200) },
    };
  };

  it('has an entry for every registered route, and every answer is the expected one', async () => {
    const table = cases();
    const registered = registeredRoutes(f.app).map((r) => `${r.method} ${r.url}`);
    const missing = registered.filter((r) => !(r in table));
    assert.deepEqual(missing, [], `routes without an entry in the authorization matrix: ${missing.join(', ')}`);
    const stale = Object.keys(table).filter((r) => !registered.includes(r));
    assert.deepEqual(stale, [], `matrix entries for routes that do not exist: ${stale.join(', ')}`);

    const failures: string[] = [];
    for (const route of registered) {
      const c = table[route]!;
      // Refused callers first (they change nothing), then the allowed ones, admin last (cancel gets 200 once).
      const order = [...KINDS].sort((a, b) => rank(c.expect[a]) - rank(c.expect[b]) || (a === 'admin' ? 1 : b === 'admin' ? -1 : 0));
      for (const k of order) {
        const req = c.request(k);
        const r = await f.app.inject({ ...req, headers: { ...req.headers, ...credentialsOf(f, k) } } as InjectOptions);
        const want = c.expect[k];
        let got: Expect = r.statusCode;
        if (r.statusCode === 404 && r.body) {
          const what = (JSON.parse(r.body) as { error?: { details?: { what?: string } } }).error?.details?.what;
          if (want === 'hidden' && (what === 'job' || what === 'workflow')) got = 'hidden';
        }
        // A state change by an earlier allowed caller can turn a later 200 into a 409 (already cancelled): still past authorization.
        const ok = got === want || (typeof want === 'number' && want < 300 && got === 409 && /cancel/.test(route));
        results.push(`${route} ${k} → ${got}`);
        if (!ok) failures.push(`${route} as ${k}: expected ${want}, got ${r.statusCode} ${r.body.slice(0, 200)}`);
        // Every refusal in the API's error format (the readiness probe answers load balancers in its own short shape).
        if (typeof got === 'number' && got >= 400 && r.body && route !== 'GET /readyz') {
          const b = JSON.parse(r.body) as { error?: { code?: string; message?: string } };
          if (!b.error?.code || !b.error.message) failures.push(`${route} as ${k}: ${got} without the API's error format: ${r.body.slice(0, 200)}`);
        }
      }
    }
    assert.deepEqual(failures, [], failures.join('\n'));
    assert.ok(results.length >= registered.length * KINDS.length);
  });

  it('says which project a submitter may use when it submits into another', async () => {
    const r = await f.app.inject({ method: 'POST', url: '/api/v1/jobs', headers: { authorization: `Bearer ${f.secrets.subOther}` }, payload: { spec: { name: 'x', project: 'climate', script: 'true' } } });
    assert.equal(r.statusCode, 403);
    assert.match(r.json().error.message, /"bio", not to "climate"/);
  });

  it('lists only a submitter\'s own projects\' jobs and workflows, and records who submitted', async () => {
    const hdr = (k: 'subOwn' | 'subOther' | 'reader') => ({ authorization: `Bearer ${f.secrets[k]}` });
    const mine = await f.app.inject({ method: 'POST', url: '/api/v1/jobs', headers: hdr('subOther'), payload: { spec: { name: 'b', project: 'bio', script: 'true' } } });
    assert.equal(mine.statusCode, 201);
    assert.deepEqual(mine.json().job.submittedBy.name, 'bob');
    assert.equal(mine.json().job.submittedBy.role, 'submitter');
    const bobs = (await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: hdr('subOther') })).json().items as Array<{ project: string }>;
    assert.deepEqual([...new Set(bobs.map((x) => x.project))], ['bio']);
    const alices = (await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: hdr('subOwn') })).json().items as Array<{ project: string }>;
    assert.deepEqual([...new Set(alices.map((x) => x.project))], ['climate']);
    const all = (await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: hdr('reader') })).json().items as Array<{ project: string }>;
    assert.deepEqual([...new Set(all.map((x) => x.project))].sort(), ['bio', 'climate']);
    assert.deepEqual((await f.app.inject({ method: 'GET', url: '/api/v1/workflows', headers: hdr('subOther') })).json().items, []);
    const adminJob = (await f.app.inject({ method: 'POST', url: '/api/v1/jobs', headers: { authorization: `Bearer ${f.secrets.admin}` }, payload: { spec: { name: 'op', script: 'true' } } })).json().job;
    assert.equal(adminJob.submittedBy.role, 'admin');
    // The scheduler's view (operatorOwned): from the engine's cache as submitted, and as read back from the store.
    const fresh = new JobCache(f.store);
    for (const cache of [f.engine.jobs, fresh]) {
      assert.equal((await cache.get(mine.json().job.id))?.operatorOwned, false, 'a submitter\'s job is not the operator\'s');
      assert.equal((await cache.get(adminJob.id))?.operatorOwned, true, 'an admin\'s job is the operator\'s');
    }
  });
});

describe('join codes', () => {
  it('a join code opens the agent channel like the join token until it expires or is revoked; it can do nothing else', async () => {
    const f = await fixture();
    const hub = new AgentHub(f.engine, new Authenticator(f.store, f.clock.now), f.clock, 5000, pino({ level: 'silent' }), { refusals: f.engine.refusals });
    hub.attach(f.app.server);
    try {
      await f.app.listen({ host: '127.0.0.1', port: 0 });
      const addr = f.app.server.address() as { port: number };
      const open = (code: string): Promise<number> =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${addr.port}${AGENT_WS_PATH}`, { headers: { authorization: `Bearer ${code}` } });
          ws.once('open', () => {
            ws.close();
            resolve(101);
          });
          ws.once('unexpected-response', (_req, res) => {
            resolve(res.statusCode ?? 0);
            ws.terminate();
          });
          ws.once('error', (e) => reject(e));
        });
      const admin = { authorization: `Bearer ${f.secrets.admin}` };
      const made = await f.app.inject({ method: 'POST', url: '/api/v1/join-codes', headers: admin, payload: { expiresInSeconds: 600, name: 'class' } });
      assert.equal(made.statusCode, 201);
      const { code, token } = made.json() as { code: string; token: { role: string; expiresAt: string; name: string } };
      assert.match(code, /^[a-z]+-[a-z]+-[a-z]+-[a-z]+$/);
      assert.equal(normalizeJoinCode(code), code, 'every word is in the list');
      assert.equal(token.role, 'node');
      assert.equal(Date.parse(token.expiresAt), f.clock.now() + 600_000);
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: admin })).body.includes(code), false, 'never listed');
      assert.equal(await open(code), 101);
      // A node token: no API beyond joining.
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: { authorization: `Bearer ${code}` } })).statusCode, 403);
      // Two codes made at once are different records with different names.
      const second = (await f.app.inject({ method: 'POST', url: '/api/v1/join-codes', headers: admin, payload: {} })).json() as { code: string; token: { name: string } };
      assert.notEqual(second.code, code);
      assert.notEqual(second.token.name, 'class');
      // Too long a life, and non-admins, are refused.
      assert.equal((await f.app.inject({ method: 'POST', url: '/api/v1/join-codes', headers: admin, payload: { expiresInSeconds: 8 * 86400 } })).statusCode, 400);
      // Expired: refused on the next attempt.
      f.clock.t += 600_000;
      assert.equal(await open(code), 401);
      f.clock.t -= 600_000;
      // Revoked: refused at once.
      assert.equal((await f.app.inject({ method: 'DELETE', url: '/api/v1/tokens/class', headers: admin })).statusCode, 200);
      assert.equal(await open(code), 401);
      const audit = (await f.app.inject({ method: 'GET', url: '/api/v1/audit', headers: admin })).json() as { items: Array<{ action: string }> };
      assert.ok(audit.items.some((e) => e.action === 'joincode.created'));
    } finally {
      await hub.close();
      await f.close();
    }
  });
});

describe('authorization of the agent channel (the WebSocket upgrade, not a fastify route)', () => {
  it('opens for the join token, a node credential and the admin; refuses submitter and reader (403) and bad tokens (401)', async () => {
    const f = await fixture();
    const hub = new AgentHub(f.engine, new Authenticator(f.store, f.clock.now), f.clock, 5000, pino({ level: 'silent' }), { refusals: f.engine.refusals });
    hub.attach(f.app.server);
    try {
      await f.app.listen({ host: '127.0.0.1', port: 0 });
      const addr = f.app.server.address() as { port: number };
      const open = (headers: Record<string, string>): Promise<number> =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${addr.port}${AGENT_WS_PATH}`, { headers });
          ws.once('open', () => {
            ws.close();
            resolve(101);
          });
          ws.once('unexpected-response', (_req, res) => {
            resolve(res.statusCode ?? 0);
            ws.terminate();
          });
          ws.once('error', (e) => reject(e));
        });
      const want: Partial<Record<Kind, number>> = { admin: 101, join: 101, cred: 101, subOwn: 403, subOther: 403, reader: 403, none: 401, malformed: 401, wrong: 401, revoked: 401, expired: 401 };
      const got: Partial<Record<Kind, number>> = {};
      for (const k of Object.keys(want) as Kind[]) got[k] = await open(credentialsOf(f, k));
      assert.deepEqual(got, want);
    } finally {
      await hub.close();
      await f.close();
    }
  });
});

function rank(e: Expect): number {
  return e === 'hidden' || (typeof e === 'number' && e >= 400) ? 0 : 1;
}

describe('revocation, expiry and rate limits take effect at once', () => {
  it('a token revoked or expired is refused on the very next request, and its session with it', async () => {
    const f = await fixture();
    try {
      const admin = { authorization: `Bearer ${f.secrets.admin}` };
      const t = (await f.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: admin, payload: { role: 'submitter', projects: ['climate'], name: 'short', expiresInSeconds: 3600 } })).json();
      const bearer = { authorization: `Bearer ${t.secret}` };
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: bearer })).statusCode, 200);
      const s = await f.app.inject({ method: 'POST', url: '/api/v1/session', payload: { token: t.secret } });
      assert.match(String(s.headers['set-cookie']), /HttpOnly; SameSite=Strict; Max-Age=3600/, 'the session ends with the token');
      const cookie = { cookie: String(s.headers['set-cookie']).split(';')[0]! };
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/session', headers: cookie })).json().name, 'short');
      // Expiry: the clock passes it; the next request is refused (bearer and cookie alike).
      f.clock.t += 3600_000;
      const exp = await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: bearer });
      assert.equal(exp.statusCode, 401);
      assert.match(exp.json().error.message, /expired/);
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: cookie })).statusCode, 401);
      f.clock.t -= 3600_000;
      // Revocation: the next request is refused, and the session is gone.
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: cookie })).statusCode, 200);
      const rv = await f.app.inject({ method: 'DELETE', url: '/api/v1/tokens/short', headers: admin });
      assert.equal(rv.statusCode, 200);
      assert.equal(rv.json().token.status, 'revoked');
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: bearer })).statusCode, 401);
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: cookie })).statusCode, 401);
      // The list never shows a secret.
      const list = (await f.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: admin })).body;
      assert.equal(list.includes(t.secret), false);
      assert.equal(list.includes(f.secrets.admin), false);
    } finally {
      await f.close();
    }
  });

  it('answers 429 with Retry-After in the API\'s error format over a token\'s limit, and over an IP\'s failed attempts', async () => {
    const f = await fixture({ perTokenPerSecond: 1, perTokenBurst: 5, failedAuthPerMinute: 3 });
    try {
      const h = { authorization: `Bearer ${f.secrets.reader}` };
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: h })).statusCode);
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
      const r = await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: h });
      assert.equal(r.statusCode, 429);
      assert.equal(r.headers['retry-after'], '1');
      assert.equal(r.json().error.code, 'over_limit');
      // A node credential gets 10 times the allowance (an agent is never slowed by the limits meant for people).
      const node = { authorization: `Bearer ${f.secrets.cred}` };
      const nodeStatuses = new Set<number>();
      for (let i = 0; i < 20; i++) nodeStatuses.add((await f.app.inject({ method: 'GET', url: `/api/v1/blobs/${'0'.repeat(64)}`, headers: node })).statusCode);
      assert.deepEqual([...nodeStatuses], [403], 'refused for what it asks, never for its rate');
      // Another token is not held back by this one.
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: { authorization: `Bearer ${f.secrets.admin}` } })).statusCode, 200);
      // A second later, one more request fits.
      f.clock.t += 1000;
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: h })).statusCode, 200);
      // Failed authentications from one IP: 3 a minute, then 429 (a valid token from there still works).
      const bad = { authorization: 'Bearer dsg_admin_nope' };
      const fails: number[] = [];
      for (let i = 0; i < 4; i++) fails.push((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: bad })).statusCode);
      assert.deepEqual(fails, [401, 401, 401, 429]);
      const over = await f.app.inject({ method: 'POST', url: '/api/v1/session', payload: { token: 'dsg_admin_nope' } });
      assert.equal(over.statusCode, 429);
      assert.ok(Number(over.headers['retry-after']) >= 1);
      assert.equal((await f.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: { authorization: `Bearer ${f.secrets.admin}` } })).statusCode, 200);
    } finally {
      await f.close();
    }
  });
});
