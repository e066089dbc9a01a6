// Admission control at ingress through the REST API (fastify inject, real SQLite): a submit that would put more
// tasks waiting than the grid's or the project's limit is refused with 429, Retry-After and a message naming the
// limit, and nothing is queued; a bad spec over the limit still gets its 400; workflows count every stage.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteStore, type Store } from '@dsg/store';
import { Engine } from '@dsg/coordinator';
import { Authenticator, createToken } from '../src/auth.js';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { buildApi } from '../src/http/server.js';

describe('admission control', () => {
  let dir: string;
  let store: Store;
  let app: FastifyInstance;
  let engine: Engine;
  let admin: string;
  const clock = { now: () => Date.now() };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-admit-'));
    store = openSqliteStore({ file: join(dir, 'db.sqlite') });
    await store.init();
    const blobs = new FileBlobStore(join(dir, 'blobs'));
    await blobs.init();
    const logs = new FileLogStore(join(dir, 'logs'));
    const log = pino({ level: 'silent' });
    engine = new Engine(store, blobs, logs, clock, { heartbeatIntervalMs: 5000, nodeTimeoutMs: 30000, reconcileGraceMs: 10000, reportBatchMs: 0, policy: { maxSystemRetries: 3 }, scheduler: DEFAULT_SCHEDULER_CONFIG }, log);
    admin = (await createToken(store, 'admin', 'a', clock.now())).secret;
    app = buildApi({
      store, engine, blobs, logs, auth: new Authenticator(store), clock, log, staticDir: join(dir, 'static'), startedAt: clock.now(), maxUploadBytes: 1024,
      admission: { maxQueuedTasks: 20, maxQueuedTasksPerProject: 12 },
    });
  });
  after(async () => {
    await app.close();
    await engine.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (url: string, json: unknown) => app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${admin}` }, payload: json as object });
  const job = (name: string, array: number, project?: string) => ({ spec: { name, command: ['true'], array, ...(project ? { project } : {}) } });
  const count = async () => (await store.listJobs({ limit: 100 })).items.length;

  it('refuses over the project limit, then over the grid limit, with 429, Retry-After and the limit named; nothing is queued', async () => {
    assert.equal((await post('/api/v1/jobs', job('a', 10))).statusCode, 201);
    const before = await count();
    const r = await post('/api/v1/jobs', job('b', 3));
    assert.equal(r.statusCode, 429);
    assert.equal(r.headers['retry-after'], '30');
    const body = r.json() as { error: { code: string; message: string; details: Record<string, unknown> } };
    assert.equal(body.error.code, 'over_limit');
    assert.match(body.error.message, /project "default" has 10 tasks waiting to start and this adds 3, over its limit of 12 \(maxQueuedTasksPerProject\)/);
    assert.equal(await count(), before, 'nothing was queued');

    assert.equal((await post('/api/v1/jobs', job('c', 8, 'physics'))).statusCode, 201, 'another project has its own room');
    const g = await post('/api/v1/jobs', job('d', 3, 'chemistry'));
    assert.equal(g.statusCode, 429);
    assert.match((g.json() as { error: { message: string } }).error.message, /the grid's queue is full: 18 tasks wait to start and this adds 3, over the limit of 20 \(maxQueuedTasks\)/);
  });

  it('a bad spec over the limit still gets its 400; a workflow counts the tasks of every stage', async () => {
    assert.equal((await post('/api/v1/jobs', { spec: { name: 'bad', command: ['true'], array: 500, resources: { memory: 'lots' } } })).statusCode, 400);
    const wf = await post('/api/v1/workflows', { spec: { name: 'w', project: 'bio', stages: { a: { command: ['true'], array: 1 }, b: { command: ['true'], needs: ['a'], array: 2 } } } });
    assert.equal(wf.statusCode, 429, 'waiting stages count: 18 + 3 > 20');
    assert.match((wf.json() as { error: { message: string } }).error.message, /this adds 3/);
  });
});
