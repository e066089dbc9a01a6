// Admission control at ingress through the REST API (fastify inject, real SQLite): a submit that would put more
// tasks waiting than the grid's or the project's limit is refused with 429, Retry-After and a message naming the
// limit, and nothing is queued; a bad spec over the limit still gets its 400; workflows count every stage.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '@dsg/store';
import { startTestApi, type TestApi } from './fixtures/api-app.js';

describe('admission control', () => {
  let t: TestApi;
  let store: Store;
  before(async () => {
    t = await startTestApi({ admission: { maxQueuedTasks: 20, maxQueuedTasksPerProject: 12 }, maxUploadBytes: 1024 });
    store = t.store;
  });
  after(async () => t.close());

  const post = (url: string, json: unknown) => t.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${t.admin}` }, payload: json as object });
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

describe('admission control: a project\'s own limit (projectLimits.<project>.maxQueuedTasks)', () => {
  let t: TestApi;
  before(async () => {
    t = await startTestApi({ admission: { maxQueuedTasks: 100, maxQueuedTasksPerProject: 50, projectLimits: { small: { maxQueuedTasks: 5 } } }, maxUploadBytes: 1024 });
  });
  after(async () => t.close());
  const post = (json: unknown) => t.app.inject({ method: 'POST', url: '/api/v1/jobs', headers: { authorization: `Bearer ${t.admin}` }, payload: json as object });

  it('overrides the default for that project only, and the message names the setting to change', async () => {
    assert.equal((await post({ spec: { name: 'a', command: ['true'], array: 4, project: 'small' } })).statusCode, 201);
    const r = await post({ spec: { name: 'b', command: ['true'], array: 2, project: 'small' } });
    assert.equal(r.statusCode, 429);
    assert.match((r.json() as { error: { message: string } }).error.message, /project "small" has 4 tasks waiting to start and this adds 2, over its limit of 5 \(projectLimits\.small\.maxQueuedTasks\)/);
    assert.equal((await post({ spec: { name: 'c', command: ['true'], array: 30, project: 'big' } })).statusCode, 201, 'other projects keep the default');
  });
});
