// The workflow routes through fastify's inject, with a real SQLite store and blob store in a temp dir: submit
// (with a fan-out over the lines of an uploaded file feeding a per-item chain), the stage graph, inputs claimed
// per stage, every refusal with its path, cancel and retry (of the workflow, and of one stage's job), outputs by
// stage. Agents are played by calling the store, as an engine would after their reports.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { newAttemptId, taskIdOf, type JobId, type NodeId, type StageV1, type WorkflowV1 } from '@dsg/core';
import type { Store } from '@dsg/store';
import { startTestApi, type TestApi } from './fixtures/api-app.js';

const NODE = 'node_0000000000000000000000000w' as NodeId;

describe('REST API v1: workflows', () => {
  let store: Store;
  let app: FastifyInstance;
  let admin: string;
  let nodeToken: string;
  const clock = { now: () => Date.now() };

  let t: TestApi;
  before(async () => {
    t = await startTestApi();
    ({ store, app, admin, nodeToken } = t);
    await store.upsertNode({
      id: NODE, name: 'w', capacity: { cpuMillis: 64_000, memoryBytes: 64 * 1024 ** 3, gpus: 0, diskBytes: 0 },
      facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 64, memoryBytes: 64 * 1024 ** 3, diskBytes: 0, gpus: [] },
      labels: {}, agentVersion: 't', address: null, now: clock.now(),
    });
  });
  after(async () => t.close());

  const call = (method: 'GET' | 'POST' | 'PUT', url: string, opts: { token?: string; json?: unknown; body?: Buffer } = {}) =>
    app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${opts.token ?? admin}`, ...(opts.body ? { 'content-type': 'application/octet-stream' } : {}) },
      ...(opts.json !== undefined ? { payload: opts.json as object } : {}),
      ...(opts.body ? { payload: opts.body } : {}),
    });
  const upload = async (text: string): Promise<{ sha256: string; size: number }> => {
    const body = Buffer.from(text);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const r = await call('PUT', `/api/v1/blobs/${sha256}`, { body });
    assert.ok(r.statusCode === 201 || r.statusCode === 200, r.body);
    return { sha256, size: body.length };
  };
  const issuesOf = (r: { statusCode: number; json: () => { error: { code: string; details: { issues: Array<{ path: string; message: string }> } } } }) => {
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().error.code, 'validation');
    return r.json().error.details.issues;
  };
  /** Run task `index` of a job to the end, as an agent's reports would. */
  const runTask = async (jobId: string, index: number, exitCode: number, outputs: Array<{ path: string; size: number; sha256: string }> = []) => {
    const now = clock.now();
    const plan = await store.applyPlan([{ attemptId: newAttemptId(now), taskId: taskIdOf(jobId as JobId, index), nodeId: NODE, prefetch: false }], now, { overcommit: 1 });
    assert.equal(plan.created.length, 1, JSON.stringify(plan.rejected));
    await store.recordReports([], [{ attemptId: plan.created[0]!.id, end: { kind: 'exited', exitCode, signal: null }, startedAt: now, finishedAt: now, outputs }], now, { maxSystemRetries: 3 });
  };
  const stageOf = (wf: WorkflowV1, name: string): StageV1 => wf.stages.find((s) => s.name === name)!;

  it('submits a workflow whose head fans out over the lines of an uploaded file; per-item stages take its count and values', async () => {
    const list = await upload('# stations\noslo\n\n  lima  \ncairo\n');
    const spec = {
      name: 'lines',
      params: { YEARS: 40 },
      stages: {
        gen: { script: 'gen', array: { lines: 'stations.txt' }, outputs: ['raw/*'] },
        clean: { script: 'clean', needs: ['gen'], each: 'gen', inputs: [{ from: 'gen', path: 'raw/${DSG_ARRAY_VALUE}.csv' }], outputs: ['c/*'] },
        plot: { script: 'plot', needs: ['clean'], each: 'clean' },
        all: { script: 'all', needs: ['clean'], inputs: [{ from: 'clean' }] },
      },
    };
    const r = await call('POST', '/api/v1/workflows', { json: { spec, inputs: [{ path: 'stations.txt', ...list }], params: { YEARS: '10' } } });
    assert.equal(r.statusCode, 201, r.body);
    const wf = r.json().workflow as WorkflowV1;
    assert.match(wf.id, /^wf_/);
    assert.deepEqual(wf.params, { YEARS: '10' });
    assert.deepEqual(wf.stages.map((s) => [s.name, s.state, s.taskCount, s.heldTasks, s.counts.queued]), [
      ['gen', 'queued', 3, 0, 3],
      ['clean', 'waiting', 3, 3, 0],
      ['plot', 'waiting', 3, 3, 0],
      ['all', 'waiting', 1, 1, 0],
    ]);
    assert.deepEqual(wf.edges, [
      { from: 'gen', to: 'clean', kind: 'item', artifacts: true },
      { from: 'clean', to: 'plot', kind: 'item', artifacts: false },
      { from: 'clean', to: 'all', kind: 'stage', artifacts: true },
    ]);
    assert.deepEqual([wf.taskCount, wf.state], [10, 'queued']);
    const gen = stageOf(wf, 'gen');
    const tasks = (await call('GET', `/api/v1/jobs/${gen.jobId}/tasks`)).json().items as Array<{ arrayValue: string }>;
    assert.deepEqual(tasks.map((t) => t.arrayValue), ['oslo', 'lima', 'cairo']);
    const job = (await call('GET', `/api/v1/jobs/${stageOf(wf, 'clean').jobId}`)).json();
    assert.deepEqual([job.workflowId, job.stage, job.name], [wf.id, 'clean', 'lines/clean']);

    // lima's raw file moves on to clean[1] alone, with its own file as input.
    const raw = { path: 'raw/lima.csv', size: 3, sha256: 'b'.repeat(64) };
    await runTask(gen.jobId, 1, 0, [raw]);
    const clean = (await call('GET', `/api/v1/workflows/${wf.id}`)).json().stages[1] as StageV1;
    assert.deepEqual([clean.state, clean.counts.queued, clean.heldTasks], ['queued', 1, 2]);
    const cleanTasks = (await call('GET', `/api/v1/jobs/${clean.jobId}/tasks`)).json().items as Array<{ index: number; arrayValue: string }>;
    assert.deepEqual(cleanTasks.map((t) => [t.index, t.arrayValue]), [[1, 'lima']]);
    const outs = (await call('GET', `/api/v1/workflows/${wf.id}/outputs`)).json().items as Array<Record<string, unknown>>;
    assert.deepEqual(outs.map(({ attemptId, ...o }) => (assert.match(String(attemptId), /^att_/), o)), [
      { stage: 'gen', jobId: gen.jobId, taskIndex: 1, path: 'raw/lima.csv', size: 3, sha256: 'b'.repeat(64) },
    ]);
    const listed = (await call('GET', '/api/v1/workflows?limit=10')).json();
    assert.deepEqual(listed.items.map((w: WorkflowV1) => w.id), [wf.id]);
  });

  it('refuses inputs no stage declares, stage inputs never uploaded, an empty lines file, and bad specs, each with its path', async () => {
    const data = await upload('a,b\n');
    const empty = await upload('# nothing here\n\n');
    const spec = {
      name: 'inputs',
      stages: { a: { script: 'x', inputs: ['data.csv', 'lib/'], array: { lines: 'list.txt' } }, b: { script: 'x', needs: ['a'], inputs: ['b.py'] } },
    };
    const r = await call('POST', '/api/v1/workflows', { json: { spec, inputs: [{ path: 'data.csv', ...data }, { path: 'stray.txt', ...data }, { path: 'list.txt', ...empty }] } });
    assert.deepEqual(issuesOf(r), [
      { path: 'spec.stages.a.inputs[1]', message: 'no file was uploaded for "lib/" (submit with `dsg submit`, which uploads inputs)' },
      { path: 'spec.stages.b.inputs[0]', message: 'no file was uploaded for "b.py" (submit with `dsg submit`, which uploads inputs)' },
      { path: 'inputs[1].path', message: '"stray.txt" is not under any stage\'s inputs' },
    ]);
    const lines = await call('POST', '/api/v1/workflows', { json: { spec: { name: 'e', stages: { a: { script: 'x', array: { lines: 'list.txt' } } } }, inputs: [{ path: 'list.txt', ...empty }] } });
    assert.deepEqual(issuesOf(lines), [{ path: 'spec.stages.a.array.lines', message: '"list.txt" has no lines (blank lines and lines starting with # are skipped)' }]);
    const set = await call('POST', '/api/v1/workflows', { json: { spec: { name: 'p', params: { N: 1 }, stages: { a: { script: 'x' } } }, params: { M: '2' } } });
    assert.deepEqual(issuesOf(set), [{ path: '--set M', message: 'no such parameter; the spec declares N' }]);
    const each = await call('POST', '/api/v1/workflows', { json: { spec: { name: 'e', stages: { a: { script: 'x', array: 2 }, b: { script: 'x', each: 'a' } } } } });
    assert.deepEqual(issuesOf(each), [{ path: 'stages.b.each', message: '"a" must also be listed in stages.b.needs' }]);
    const job = await call('POST', '/api/v1/jobs', { json: { spec: { name: 'j', stages: { a: { script: 'x' } } } } });
    assert.match(job.json().error.message, /this is a workflow/);
    assert.equal((await call('GET', '/api/v1/workflows?limit=100')).json().items.length, 1, 'nothing new was created');
  });

  it('answers unknown and malformed workflow ids with 404, and a node token with 403', async () => {
    for (const path of ['/api/v1/workflows/wf_00000000000000000000000000', '/api/v1/workflows/job_00000000000000000000000000', '/api/v1/workflows/nope/outputs']) {
      const r = await call('GET', path);
      assert.equal(r.statusCode, 404, path);
      assert.match(r.json().error.message, /^workflow .* not found$/);
    }
    for (const verb of ['cancel', 'retry']) assert.equal((await call('POST', `/api/v1/workflows/wf_00000000000000000000000000/${verb}`)).statusCode, 404);
    assert.equal((await call('GET', '/api/v1/workflows', { token: nodeToken })).statusCode, 403);
    assert.equal((await call('POST', '/api/v1/workflows', { token: nodeToken, json: { spec: { name: 'x', stages: { a: { script: 'x' } } } } })).statusCode, 403);
  });

  it('retrying one failed stage by its job id re-runs it and lifts the skip it caused; cancel and retry of the workflow', async () => {
    const r = await call('POST', '/api/v1/workflows', { json: { spec: { name: 'rt', stages: { a: { script: 'x', array: 2 }, b: { script: 'x', needs: ['a'] }, c: { script: 'x', needs: ['b'] } } } } });
    assert.equal(r.statusCode, 201, r.body);
    const wf = r.json().workflow as WorkflowV1;
    const a = stageOf(wf, 'a').jobId;
    await runTask(a, 0, 0);
    await runTask(a, 1, 2);
    const failed = (await call('GET', `/api/v1/workflows/${wf.id}`)).json() as WorkflowV1;
    assert.deepEqual(failed.stages.map((s) => [s.name, s.state, s.skipReason]), [['a', 'failed', null], ['b', 'skipped', 'it needs "a", which failed'], ['c', 'skipped', 'it needs "b", which was skipped']]);
    assert.equal(failed.state, 'failed');
    assert.notEqual(failed.finishedAt, null);

    const retried = await call('POST', `/api/v1/jobs/${a}/retry`);
    assert.equal(retried.statusCode, 200, retried.body);
    assert.deepEqual([retried.json().requeued, retried.json().unskipped, retried.json().job.state], [1, 2, 'running']);
    const now = (await call('GET', `/api/v1/workflows/${wf.id}`)).json() as WorkflowV1;
    assert.deepEqual(now.stages.map((s) => s.state), ['running', 'waiting', 'waiting']);
    assert.deepEqual([now.state, now.finishedAt], ['running', null]);
    const attempts = (await call('GET', `/api/v1/jobs/${a}/tasks/0/attempts`)).json().items;
    assert.equal(attempts.length, 1, 'the succeeded task is not run again');

    const c = await call('POST', `/api/v1/workflows/${wf.id}/cancel`);
    assert.equal(c.statusCode, 200, c.body);
    assert.deepEqual([c.json().state, c.json().cancelRequested, c.json().stages.map((s: StageV1) => s.state)], ['cancelled', true, ['cancelled', 'cancelled', 'cancelled']]);
    const again = await call('POST', `/api/v1/workflows/${wf.id}/retry`);
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual([again.json().requeued, again.json().unskipped, again.json().workflow.state, again.json().workflow.cancelRequested], [1, 2, 'running', false]);
    await runTask(a, 1, 0);
    await runTask(stageOf(wf, 'b').jobId, 0, 0);
    await runTask(stageOf(wf, 'c').jobId, 0, 0);
    const done = (await call('GET', `/api/v1/workflows/${wf.id}`)).json() as WorkflowV1;
    assert.deepEqual([done.state, done.counts.succeeded, done.taskCount], ['succeeded', 4, 4]);
  });
});
