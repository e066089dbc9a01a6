// The REST API through fastify's inject (no sockets), with a real SQLite store in a temp dir: auth, validation
// errors with paths, not-found, pagination, blob upload with hash check, and job submission with inputs.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { MAX_REPORTED_ISSUES, ValidationError } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteStore, type Store } from '@dsg/store';
import { Engine } from '@dsg/coordinator';
import { Authenticator, createToken } from '../src/auth.js';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { assertAllDescribed, checkResponsesAgainstOpenApi } from './fixtures/openapi-check.js';
import { buildApi } from '../src/http/server.js';

describe('REST API v1', () => {
  let dir: string;
  let store: Store;
  let app: FastifyInstance;
  let engine: Engine;
  let admin: string;
  let nodeToken: string;
  let described: ReturnType<typeof checkResponsesAgainstOpenApi>;
  const clock = { now: () => Date.now() };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-api-'));
    store = openSqliteStore({ file: join(dir, 'db.sqlite') });
    await store.init();
    const blobs = new FileBlobStore(join(dir, 'blobs'));
    await blobs.init();
    const logs = new FileLogStore(join(dir, 'logs'));
    const log = pino({ level: 'silent' });
    engine = new Engine(store, blobs, logs, clock, { heartbeatIntervalMs: 5000, nodeTimeoutMs: 30000, reconcileGraceMs: 10000, reportBatchMs: 0, policy: { maxSystemRetries: 3 }, scheduler: DEFAULT_SCHEDULER_CONFIG }, log);
    admin = (await createToken(store, 'admin', 'a', clock.now())).secret;
    nodeToken = (await createToken(store, 'node', 'n', clock.now())).secret;
    app = buildApi({ store, engine, blobs, logs, auth: new Authenticator(store), clock, log, staticDir: join(dir, 'static'), startedAt: clock.now(), maxUploadBytes: 1024 });
    described = checkResponsesAgainstOpenApi(app);
  });
  after(async () => {
    await app.close();
    await engine.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
    assertAllDescribed(described);
  });

  const call = (method: 'GET' | 'POST' | 'PUT' | 'HEAD', url: string, opts: { token?: string | null; json?: unknown; body?: Buffer } = {}) =>
    app.inject({
      method,
      url,
      headers: {
        ...(opts.token === null ? {} : { authorization: `Bearer ${opts.token ?? admin}` }),
        ...(opts.body ? { 'content-type': 'application/octet-stream' } : {}),
      },
      ...(opts.json !== undefined ? { payload: opts.json as object } : {}),
      ...(opts.body ? { payload: opts.body } : {}),
    });

  it('requires a token on every route, and says how to send one', async () => {
    const r = await call('GET', '/api/v1/jobs', { token: null });
    assert.equal(r.statusCode, 401);
    assert.match(r.json().error.message, /Authorization: Bearer/);
    assert.equal((await call('GET', '/api/v1/health', { token: 'dsg_admin_wrong' })).statusCode, 401);
  });

  it('a node token cannot submit or read jobs', async () => {
    const r = await call('GET', '/api/v1/jobs', { token: nodeToken });
    assert.equal(r.statusCode, 403);
    assert.equal(r.json().error.code, 'forbidden');
  });

  it('rejects a bad spec with every problem and its path, and queues nothing', async () => {
    const r = await call('POST', '/api/v1/jobs', { json: { spec: { name: 'x', script: 'true', resources: { memory: '12 parsecs' }, timeout: 5 } } });
    assert.equal(r.statusCode, 400);
    const body = r.json();
    assert.equal(body.error.code, 'validation');
    const paths = (body.error.details.issues as Array<{ path: string }>).map((i) => i.path).sort();
    assert.deepEqual(paths, ['resources.memory', 'timeout']);
    assert.equal((await call('GET', '/api/v1/jobs')).json().items.length, 0);
  });

  it('answers 100,000 bad list values with a small error: the first problems and a count', async () => {
    const bad = Array.from({ length: 100_000 }, (_, i) => ({ value: i }));
    for (const spec of [{ name: 'x', command: ['true'], array: bad }, { name: 'x', command: ['true'], matrix: { seed: bad } }, { name: 'x', script: 'true', array: bad.map((_, i) => `v${i}\0`) }]) {
      const r = await call('POST', '/api/v1/jobs', { json: { spec } });
      assert.equal(r.statusCode, 400);
      assert.ok(r.payload.length < 64 * 1024, `the error is ${r.payload.length} bytes`);
      const err = r.json().error;
      assert.equal(err.code, 'validation');
      assert.equal(err.details.issues.length, MAX_REPORTED_ISSUES);
      assert.equal(err.details.issueCount, 100_000);
      assert.match(err.details.issues[0].path, /^(array|matrix\.seed)\[0\]$/);
      assert.match(err.message, /and 99980 more problems \(100000 in all\)/);
    }
    // Through the client, the count survives: a CLI user sees it too.
    const e = new ValidationError([{ path: 'a', message: 'm' }], undefined, { issueCount: 7 });
    assert.equal(e.issueCount, 7);
    assert.match(e.message, /and 6 more problems/);
    assert.equal((await call('GET', '/api/v1/jobs')).json().items.length, 0);
  });

  it('rejects unknown body fields and bad query parameters by name', async () => {
    const r = await call('POST', '/api/v1/jobs', { json: { spec: { name: 'x', script: 'true' }, extra: 1 } });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().error.message, /body: .*extra/);
    const q = await call('GET', '/api/v1/jobs?limit=9999');
    assert.equal(q.statusCode, 400);
    assert.match(q.json().error.message, /query.limit/);
  });

  it('refuses a job whose declared inputs were not uploaded', async () => {
    const r = await call('POST', '/api/v1/jobs', { json: { spec: { name: 'x', script: 'cat a.txt', inputs: ['a.txt'] } } });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().error.message, /spec.inputs\[0\]: no file was uploaded for "a.txt"/);
    const sha = createHash('sha256').update('hi').digest('hex');
    const r2 = await call('POST', '/api/v1/jobs', { json: { spec: { name: 'x', script: 'cat a.txt', inputs: ['a.txt'] }, inputs: [{ path: 'a.txt', sha256: sha, size: 2 }] } });
    assert.equal(r2.statusCode, 400);
    assert.match(r2.json().error.message, /has not been uploaded/);
  });

  it('stores a blob only if it hashes right and fits the limit, then accepts a job using it', async () => {
    const body = Buffer.from('hello input');
    const sha = createHash('sha256').update(body).digest('hex');
    const wrong = await call('PUT', `/api/v1/blobs/${'0'.repeat(64)}`, { body });
    assert.equal(wrong.statusCode, 400);
    assert.match(wrong.json().error.message, /hashes to/);
    const big = Buffer.alloc(2048, 1);
    const tooBig = await call('PUT', `/api/v1/blobs/${createHash('sha256').update(big).digest('hex')}`, { body: big });
    assert.equal(tooBig.statusCode, 413);
    assert.equal((await call('HEAD', `/api/v1/blobs/${sha}`)).statusCode, 404);
    assert.equal((await call('PUT', `/api/v1/blobs/${sha}`, { body })).statusCode, 201);
    assert.equal((await call('HEAD', `/api/v1/blobs/${sha}`)).statusCode, 200);
    const sub = await call('POST', '/api/v1/jobs', { json: { spec: { name: 'with-input', script: 'cat data/in.txt', inputs: ['data/'], array: 3 }, inputs: [{ path: 'data/in.txt', sha256: sha, size: body.length }] } });
    assert.equal(sub.statusCode, 201, sub.body);
    const job = sub.json().job;
    assert.equal(job.state, 'queued');
    assert.equal(job.taskCount, 3);
    assert.match(job.id, /^job_/);
    const got = await call('GET', `/api/v1/jobs/${job.id}`);
    assert.deepEqual(got.json().counts, { queued: 3, assigned: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 });
    const tasks = await call('GET', `/api/v1/jobs/${job.id}/tasks?limit=2`);
    assert.deepEqual(tasks.json().items.map((t: { index: number }) => t.index), [0, 1]);
    assert.equal(tasks.json().nextCursor, '1');
    const logs = await call('GET', `/api/v1/jobs/${job.id}/tasks/1/logs`);
    assert.deepEqual(logs.json(), { data: '', offset: 0, nextOffset: 0, complete: false, attemptId: null });
    const cancelled = await call('POST', `/api/v1/jobs/${job.id}/cancel`);
    assert.equal(cancelled.json().state, 'cancelled');
  });

  it('answers unknown things with 404 and a message', async () => {
    const r = await call('GET', '/api/v1/jobs/job_00000000000000000000000000');
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().error.message, 'job job_00000000000000000000000000 not found');
    assert.equal((await call('GET', '/api/v1/nope')).statusCode, 404);
    const t = await call('GET', `/api/v1/jobs/${(await call('GET', '/api/v1/jobs')).json().items[0].id}/tasks/99`);
    assert.equal(t.statusCode, 404);
    assert.match(t.json().error.message, /numbered from 0/);
  });

  it('warns at submit when no node could ever run the tasks', async () => {
    await store.upsertNode({ id: 'node_0000000000000000000000000a' as never, name: 'small', capacity: { cpuMillis: 2000, memoryBytes: 1024 ** 3, gpus: 0, diskBytes: 0 }, facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 2, memoryBytes: 1024 ** 3, diskBytes: 0, gpus: [] }, labels: {}, agentVersion: 't', address: null, now: clock.now() });
    const r = await call('POST', '/api/v1/jobs', { json: { spec: { name: 'huge', script: 'true', resources: { cpu: 64 } } } });
    assert.equal(r.statusCode, 201);
    assert.match(r.json().job.warnings[0], /no node in the grid can run these tasks: each needs 64 cores/);
  });
});
