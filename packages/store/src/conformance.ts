/**
 * The Store conformance suite: the behaviour every Store implementation must have. SQLite runs it today
 * (test/sqlite-store.test.ts); PostgreSQL will run the same suite. Registered as node:test suites.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  AuditChainChecker,
  compileJobSpec,
  deriveJobState,
  newAttemptId,
  newJobId,
  newNodeId,
  newTokenId,
  taskIdOf,
  type AttemptId,
  type JobId,
  type NodeId,
} from '@dsg/core';
import type { FinishReport, Store } from './store.js';
import { runWorkflowConformance } from './conformance-workflows.js';
import { runNodeConformance } from './conformance-nodes.js';
import { runGpuConformance } from './conformance-gpus.js';

export interface StoreFactoryResult {
  readonly store: Store;
  /** Close and open the same database again (for durability checks); omit if the store cannot. */
  readonly reopen?: () => Promise<Store>;
  cleanup(): Promise<void>;
}

const POLICY = { maxSystemRetries: 2 };
const GiB = 1024 ** 3;
let clock = 1_700_000_000_000;
const tick = (): number => (clock += 1000);

export function runStoreConformance(name: string, make: () => Promise<StoreFactoryResult>): void {
  const withStore = (title: string, fn: (s: Store, f: StoreFactoryResult) => Promise<void>) =>
    it(title, async () => {
      const f = await make();
      try {
        await f.store.init();
        await fn(f.store, f);
      } finally {
        await f.cleanup();
      }
    });

  const job = async (s: Store, spec: Record<string, unknown>) => {
    const id = newJobId(tick());
    return s.createJob({ id, name: String(spec['name']), spec, compiled: compileJobSpec(spec), inputs: [], createdAt: clock, warnings: [] });
  };
  const node = async (s: Store, cores: number, name = 'n'): Promise<NodeId> => {
    const id = newNodeId(tick());
    await s.upsertNode({
      id, name, capacity: { cpuMillis: cores * 1000, memoryBytes: 8 * GiB, gpus: 0, diskBytes: 100 * GiB },
      facts: { hostname: name, os: 'linux', arch: 'x64', cpuModel: 'x', cores, memoryBytes: 8 * GiB, diskBytes: 100 * GiB, gpus: [] },
      labels: {}, agentVersion: 't', address: null, now: clock,
    });
    return id;
  };
  const assign = async (s: Store, jobId: JobId, index: number, nodeId: NodeId, prefetch = false) => {
    const r = await s.applyPlan([{ attemptId: newAttemptId(tick()), taskId: taskIdOf(jobId, index), nodeId, prefetch }], clock, { overcommit: 2 });
    return r;
  };
  const exited = (attemptId: AttemptId, exitCode: number): FinishReport => ({
    attemptId, end: { kind: 'exited', exitCode, signal: null }, startedAt: clock, finishedAt: tick(), outputs: [],
  });

  describe(`Store conformance: ${name}`, () => {
    withStore('ledger: one entry per finished attempt, in its finishing transaction, adding up exactly to the recorded run times', async (s) => {
      const owner = { tokenId: newTokenId(tick()), name: 'alice', role: 'submitter' as const };
      const specA = { name: 'a', command: ['x'], array: 2, retries: 1, project: 'physics', resources: { cpu: 2, memory: '1Gi', gpus: 1 } };
      const a = await s.createJob({ id: newJobId(tick()), name: 'a', spec: specA, compiled: compileJobSpec(specA), inputs: [], createdAt: clock, warnings: [], owner });
      const b = await job(s, { name: 'b', command: ['x'], array: 2, resources: { cpu: 0.5, memory: '512Mi' } });
      const gpuNode = async (name: string): Promise<NodeId> => {
        const id = newNodeId(tick());
        await s.upsertNode({
          id, name, capacity: { cpuMillis: 8000, memoryBytes: 8 * GiB, gpus: 2, diskBytes: 100 * GiB },
          facts: { hostname: name, os: 'linux', arch: 'x64', cpuModel: 'x', cores: 8, memoryBytes: 8 * GiB, diskBytes: 100 * GiB, gpus: [] },
          labels: {}, agentVersion: 't', address: null, now: clock,
        });
        return id;
      };
      const alpha = await gpuNode('alpha');
      const beta = await gpuNode('beta');

      const a0 = (await assign(s, a.id, 0, alpha)).created[0]!.id;
      const a1 = (await assign(s, a.id, 1, beta)).created[0]!.id;
      const b0 = (await assign(s, b.id, 0, beta)).created[0]!.id;
      const b1 = (await assign(s, b.id, 1, beta)).created[0]!.id;
      const t0 = tick();
      await s.recordReports([{ attemptId: b0, at: t0 }], [], clock, POLICY);
      // a0 succeeds with measured usage; a1 fails (retried); b0 is lost after starting; b1 is lost before starting.
      await s.recordReports([], [
        { attemptId: a0, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: t0, finishedAt: t0 + 4000, outputs: [], usage: { cpuMs: 7000, peakMemoryBytes: 100 * 1024 ** 2 } },
        { attemptId: a1, end: { kind: 'exited', exitCode: 1, signal: null }, startedAt: t0, finishedAt: t0 + 1500, outputs: [] },
      ], tick(), POLICY);
      // A duplicate report of a finished attempt is fenced off: no second entry.
      await s.recordReports([], [{ attemptId: a0, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: t0, finishedAt: t0 + 9000, outputs: [] }], tick(), POLICY);
      const lostAt = tick();
      await s.loseAttempts([b0, b1], 'node lost', lostAt, POLICY);
      const a1b = (await assign(s, a.id, 1, alpha)).created[0]!.id;
      await s.recordReports([], [{ attemptId: a1b, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: t0 + 10_000, finishedAt: t0 + 12_500, outputs: [] }], tick(), POLICY);

      // The recorded run times, from the attempts themselves.
      const attempts = [];
      for (const [j, i] of [[a.id, 0], [a.id, 1], [b.id, 0], [b.id, 1]] as const) attempts.push(...await s.listAttempts(taskIdOf(j, i)));
      assert.equal(attempts.length, 5);
      const runMs = attempts.reduce((sum, x) => sum + (x.startedAt === null ? 0 : x.finishedAt! - x.startedAt), 0);
      assert.equal(runMs, 4000 + 1500 + (lostAt - t0) + 0 + 2500);

      for (const by of ['node', 'project', 'user'] as const) {
        const rows = await s.ledger({ by });
        assert.equal(rows.reduce((n, r) => n + r.attempts, 0), 5, by);
        assert.equal(rows.reduce((n, r) => n + r.wallMs, 0), runMs, `${by}: the ledger adds up to the recorded run times`);
      }
      const byNode = Object.fromEntries((await s.ledger({ by: 'node' })).map((r) => [r.key, r]));
      assert.deepEqual(byNode['alpha'], {
        key: 'alpha', attempts: 2, succeededAttempts: 2, wallMs: 6500, succeededWallMs: 6500,
        cpuMs: 7000 + 2 * 2500, cpuMeasuredAttempts: 1, gpuMs: 4000 + 2500, memoryByteMs: 100 * 1024 ** 2 * 4000 + GiB * 2500,
      });
      assert.deepEqual(byNode['beta'], {
        key: 'beta', attempts: 3, succeededAttempts: 0, wallMs: 1500 + (lostAt - t0), succeededWallMs: 0,
        cpuMs: 2 * 1500 + 0.5 * (lostAt - t0), cpuMeasuredAttempts: 0, gpuMs: 1500, memoryByteMs: GiB * 1500 + 512 * 1024 ** 2 * (lostAt - t0),
      });
      assert.deepEqual((await s.ledger({ by: 'user' })).map((r) => [r.key, r.attempts]).sort(), [['admin', 2], ['alice', 3]]);
      assert.deepEqual((await s.ledger({ by: 'project' })).map((r) => [r.key, r.attempts]).sort(), [['default', 2], ['physics', 3]]);
      // Filters: by project, by node name, and by finishing time.
      assert.deepEqual((await s.ledger({ by: 'node', project: 'physics' })).map((r) => [r.key, r.attempts]).sort(), [['alpha', 2], ['beta', 1]]);
      assert.deepEqual((await s.ledger({ by: 'user', nodeName: 'beta', user: 'admin' })).map((r) => [r.key, r.attempts]), [['admin', 2]]);
      assert.deepEqual((await s.ledger({ by: 'node', since: lostAt })).map((r) => [r.key, r.attempts]).sort(), [['alpha', 2], ['beta', 2]]);
      assert.deepEqual((await s.ledger({ by: 'node', since: lostAt + 1 })).map((r) => [r.key, r.attempts]), [['alpha', 2]], 'since: the recorded finishing time, at or after');
      assert.deepEqual(await s.ledger({ by: 'node', until: t0 }), []);
    });

    withStore('creates a job with all its tasks queued, array values and counters', async (s) => {
      const j = await job(s, { name: 'sweep', command: ['x'], array: ['a', 'b', 'c'] });
      assert.equal(j.taskCount, 3);
      assert.equal(j.state, 'queued');
      assert.deepEqual(j.counts, { queued: 3, assigned: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 });
      const tasks = await s.listTasks(j.id, { limit: 10 });
      assert.deepEqual(tasks.items.map((t) => [t.index, t.arrayValue, t.state]), [[0, 'a', 'queued'], [1, 'b', 'queued'], [2, 'c', 'queued']]);
      assert.equal((await s.getJob(j.id))?.compiled.taskCount, 3);
    });

    withStore('sizes beyond 2^53 (memory: 9000Ti) are stored and read back exactly, alone and summed', async (s) => {
      // 9000Ti is an integer a double holds exactly but beyond Number.MAX_SAFE_INTEGER: SQLite stores it as an
      // INTEGER, and a driver that refuses unsafe integers (node:sqlite) must still read it back (src/sqlite/driver.ts).
      const huge = 9000 * 1024 ** 4;
      assert.ok(huge > Number.MAX_SAFE_INTEGER);
      const j = await job(s, { name: 'huge', command: ['x'], array: 2, resources: { memory: '9000Ti', disk: '9000Ti' } });
      assert.equal(j.compiled.resources.memoryBytes, huge);
      assert.equal((await s.getJob(j.id))?.compiled.resources.memoryBytes, huge);
      assert.deepEqual((await s.listJobs({ limit: 10 })).items.map((x) => x.id), [j.id]);
      assert.deepEqual((await s.listQueued(10)).map((q) => q.resources.memoryBytes), [huge, huge]);
      const n = newNodeId(tick());
      await s.upsertNode({
        id: n, name: 'huge', capacity: { cpuMillis: 8000, memoryBytes: 2 * huge, gpus: 0, diskBytes: 2 * huge },
        facts: { hostname: 'huge', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 8, memoryBytes: 2 * huge, diskBytes: 2 * huge, gpus: [] },
        labels: {}, agentVersion: 't', address: null, now: clock,
      });
      const r = await s.applyPlan([1, 0].map((i) => ({ attemptId: newAttemptId(tick()), taskId: taskIdOf(j.id, i), nodeId: n, prefetch: false })), clock, { overcommit: 1 });
      assert.equal(r.created.length, 2, JSON.stringify(r));
      // Two active attempts: the node's allocation sums to 2 × 9000Ti (SQLite adds the integers exactly).
      const usage = (await s.listNodeUsage()).find((x) => x.node.id === n);
      assert.equal(usage?.allocated.memoryBytes, 2 * huge);
      assert.equal(usage?.node.capacity.memoryBytes, 2 * huge);
    });

    withStore('inserts 2,000 tasks in one commit in well under a second, and pages through them', async (s) => {
      const t0 = performance.now();
      const j = await job(s, { name: 'big', command: ['true'], array: 2000 });
      assert.ok(performance.now() - t0 < 1000, `took ${performance.now() - t0} ms`);
      const queued = await s.listQueued(5000);
      assert.equal(queued.length, 2000);
      assert.deepEqual(queued.slice(0, 3).map((q) => q.index), [0, 1, 2]);
      const p1 = await s.listTasks(j.id, { limit: 1500 });
      assert.equal(p1.items.length, 1500);
      const p2 = await s.listTasks(j.id, { limit: 1500, cursor: p1.nextCursor! });
      assert.equal(p2.items.length, 500);
      assert.equal(p2.nextCursor, null);
      assert.equal(p2.items[0]!.index, 1500);
    });

    withStore('lists queued work per job: in queue order of each job\'s first queued task, with its shape, count and first tasks', async (s) => {
      const a = await job(s, { name: 'a', command: ['x'], array: 3, retries: 1, resources: { cpu: 2, memory: '1Gi' } });
      const b = await job(s, { name: 'b', command: ['x'], array: 2, resources: { cpu: 0.5, gpus: 1, memory: '512Mi' } });
      let jobs = await s.listQueuedJobs();
      assert.deepEqual(jobs.map((j) => [j.jobId, j.queued, j.typicalRunMs]), [[a.id, 3, null], [b.id, 2, null]]);
      assert.deepEqual(jobs[0]!.resources, { cpuMillis: 2000, memoryBytes: GiB, gpus: 0, diskBytes: 0 });
      assert.deepEqual(jobs[1]!.resources, { cpuMillis: 500, memoryBytes: 512 * 1024 ** 2, gpus: 1, diskBytes: 0 });
      assert.ok(jobs[0]!.first.seq < jobs[1]!.first.seq);
      assert.deepEqual([jobs[0]!.first.taskId, jobs[0]!.first.index, jobs[1]!.first.taskId], [taskIdOf(a.id, 0), 0, taskIdOf(b.id, 0)]);

      // The first `limit` tasks of each job asked for, jobs in the order asked, tasks in queue order.
      const heads = await s.listQueuedTasks([{ jobId: b.id, limit: 5 }, { jobId: a.id, limit: 2 }, { jobId: a.id, limit: 0 }]);
      assert.deepEqual(heads.map((t) => [t.jobId, t.index]), [[b.id, 0], [b.id, 1], [a.id, 0], [a.id, 1]]);
      assert.deepEqual(heads.map((t) => t.taskId), [taskIdOf(b.id, 0), taskIdOf(b.id, 1), taskIdOf(a.id, 0), taskIdOf(a.id, 1)]);
      assert.ok(heads[0]!.seq < heads[1]!.seq && heads[1]!.seq > heads[2]!.seq, 'each task keeps its global queue position');

      // A job with nothing queued is not listed; a retried task brings its job back at the task's old position.
      const n = await node(s, 8);
      const started: AttemptId[] = [];
      for (let i = 0; i < 3; i++) started.push((await assign(s, a.id, i, n)).created[0]!.id);
      jobs = await s.listQueuedJobs();
      assert.deepEqual(jobs.map((j) => j.jobId), [b.id]);
      await s.recordReports([], [exited(started[0]!, 0), exited(started[1]!, 1)], tick(), POLICY);
      jobs = await s.listQueuedJobs();
      assert.deepEqual(jobs.map((j) => [j.jobId, j.queued]), [[a.id, 1], [b.id, 2]], 'the retry goes ahead of the later job');
      assert.deepEqual([jobs[0]!.first.taskId, jobs[0]!.first.seq], [taskIdOf(a.id, 1), heads[3]!.seq], 'at task 1\'s original position');
      assert.ok(jobs[0]!.typicalRunMs !== null, 'finished attempts give the job a typical run time');
      assert.deepEqual((await s.listQueuedTasks([{ jobId: a.id, limit: 10 }])).map((t) => t.index), [1]);

      // A job leaves the list as soon as its cancel is requested, before its queued tasks are cancelled.
      await s.requestCancel(b.id, tick());
      assert.deepEqual((await s.listQueuedJobs()).map((j) => j.jobId), [a.id]);
      await s.cancelQueuedTasks(b.id, { from: 0, to: 3 }, tick());
      assert.deepEqual(await s.listQueuedTasks([{ jobId: b.id, limit: 10 }]), []);
    });

    withStore('per-job queue reads cost what they return, not the length of the queue (100,000 tasks queued)', async (s) => {
      const big = await job(s, { name: 'big', command: ['x'], array: 100_000, resources: { gpus: 1 } });
      const small = await job(s, { name: 'small', command: ['x'], array: 4 });
      // Warm up (statement preparation), then time.
      await s.listQueuedJobs();
      const t0 = performance.now();
      const jobs = await s.listQueuedJobs();
      const heads = await s.listQueuedTasks([{ jobId: big.id, limit: 1 }, { jobId: small.id, limit: 4 }]);
      const ms = performance.now() - t0;
      assert.deepEqual(jobs.map((j) => [j.jobId, j.queued, j.first.index]), [[big.id, 100_000, 0], [small.id, 4, 0]]);
      assert.deepEqual(heads.map((t) => t.taskId), [taskIdOf(big.id, 0), ...[0, 1, 2, 3].map((i) => taskIdOf(small.id, i))]);
      assert.ok(ms < 20, `reading 2 jobs and 5 tasks behind 100,000 queued took ${ms.toFixed(2)} ms`);
    });

    withStore('lists jobs newest first with cursors and filters by derived state and name', async (s) => {
      const a = await job(s, { name: 'alpha', command: ['x'] });
      const b = await job(s, { name: 'beta', command: ['x'] });
      const c = await job(s, { name: 'alpha-2', command: ['x'] });
      const n = await node(s, 4);
      const r = await assign(s, b.id, 0, n);
      await s.recordReports([], [exited(r.created[0]!.id, 0)], tick(), POLICY);
      const p1 = await s.listJobs({ limit: 2 });
      assert.deepEqual(p1.items.map((j) => j.id), [c.id, b.id]);
      const p2 = await s.listJobs({ limit: 2, cursor: p1.nextCursor! });
      assert.deepEqual(p2.items.map((j) => j.id), [a.id]);
      assert.equal(p2.nextCursor, null);
      assert.deepEqual((await s.listJobs({ limit: 10, state: 'succeeded' })).items.map((j) => j.id), [b.id]);
      assert.deepEqual((await s.listJobs({ limit: 10, state: 'queued' })).items.map((j) => j.id), [c.id, a.id]);
      assert.deepEqual((await s.listJobs({ limit: 10, name: 'alpha*' })).items.map((j) => j.name), ['alpha-2', 'alpha']);
      assert.deepEqual((await s.listJobs({ limit: 10, name: 'alpha' })).items.map((j) => j.name), ['alpha']);
      for (const j of (await s.listJobs({ limit: 10 })).items) assert.equal(j.state, deriveJobState(j.counts, j.cancelRequested));
    });

    withStore('applyPlan re-checks capacity, node state and task state; prefetch may use up to overcommit × capacity', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'], array: 6 });
      const n = await node(s, 2);
      assert.equal((await assign(s, j.id, 0, n)).created.length, 1);
      assert.equal((await assign(s, j.id, 1, n)).created.length, 1);
      assert.deepEqual((await assign(s, j.id, 2, n)).rejected.map((r) => r.why), ['no_capacity']);
      assert.equal((await assign(s, j.id, 2, n, true)).created.length, 1, 'prefetch fits in 2 × 2 cores');
      assert.equal((await assign(s, j.id, 3, n, true)).created.length, 1);
      assert.deepEqual((await assign(s, j.id, 4, n, true)).rejected.map((r) => r.why), ['no_capacity']);
      assert.deepEqual((await assign(s, j.id, 0, n)).rejected.map((r) => r.why), ['task_not_queued']);
      await s.setNodeState(n, 'offline', tick());
      const m = await node(s, 2, 'm');
      await s.setNodeState(m, 'offline', tick());
      assert.deepEqual((await assign(s, j.id, 5, m)).rejected.map((r) => r.why), ['node_unavailable']);
      const usage = (await s.listNodeUsage()).find((u) => u.node.id === n)!;
      assert.equal(usage.activeAttempts, 4);
      assert.equal(usage.allocated.cpuMillis, 4000);
      assert.equal(usage.runningAttempts, 0);
      const a = (await s.activeAttemptsOnNode(n))[0]!;
      await s.recordReports([{ attemptId: a.id, at: tick() }], [], clock, POLICY);
      const after = (await s.listNodeUsage(['offline'])).find((u) => u.node.id === n)!;
      assert.deepEqual([after.runningAttempts, after.running.cpuMillis], [1, 1000]);
      assert.equal((await s.getJob(j.id))?.counts.running, 1);
    });

    withStore('start then success: task and job finish, job finishedAt set once the last task ends', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'], array: 2 });
      const n = await node(s, 2);
      const [a0] = (await assign(s, j.id, 0, n)).created;
      const [a1] = (await assign(s, j.id, 1, n)).created;
      await s.recordReports([{ attemptId: a0!.id, at: tick() }], [], clock, POLICY);
      assert.equal((await s.getTask(taskIdOf(j.id, 0)))?.state, 'running');
      const r = await s.recordReports([], [exited(a0!.id, 0)], tick(), POLICY);
      assert.deepEqual(r.map((x) => [x.applied, x.taskState]), [[true, 'succeeded']]);
      assert.equal((await s.getJob(j.id))?.finishedAt, null);
      await s.recordReports([{ attemptId: a1!.id, at: tick() }], [exited(a1!.id, 0)], tick(), POLICY);
      const done = await s.getJob(j.id);
      assert.equal(done?.state, 'succeeded');
      assert.equal(done?.finishedAt, clock);
      assert.equal((await s.getAttempt(a1!.id))?.state, 'succeeded');
    });

    withStore('reports and the placements they make room for commit together; the placements are checked after the reports', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'], array: 5 });
      const n = await node(s, 1);
      const a0 = (await assign(s, j.id, 0, n)).created[0]!;
      const a1 = (await assign(s, j.id, 1, n, true)).created[0]!;
      const place = (index: number, prefetch = false) => ({ attemptId: newAttemptId(tick()), taskId: taskIdOf(j.id, index), nodeId: n, prefetch });
      // Node full (1 core, 1 running + 1 prefetched of 2): task 0 ends, task 1 starts, task 2 takes the freed place.
      const r = await s.recordReportsAndPlace([{ attemptId: a1.id, at: tick() }], [exited(a0.id, 0)], tick(), POLICY, { attempts: [place(2, true)], overcommit: 2 });
      assert.deepEqual(r.results.map((x) => [x.applied, x.taskState]), [[true, 'succeeded']]);
      assert.deepEqual(r.placed.created.map((c) => [c.taskId, c.state]), [[taskIdOf(j.id, 2), 'assigned']]);
      assert.deepEqual(r.placed.rejected, []);
      assert.deepEqual((await s.getJob(j.id))?.counts, { queued: 2, assigned: 1, running: 1, succeeded: 1, failed: 0, cancelled: 0 });
      // A finish fenced off (already recorded) frees nothing: the placement it was planned on is rejected, not forced.
      const again = await s.recordReportsAndPlace([], [exited(a0.id, 0)], tick(), POLICY, { attempts: [place(3, true)], overcommit: 2 });
      assert.deepEqual(again.results.map((x) => x.applied), [false]);
      assert.deepEqual(again.placed.rejected.map((x) => [x.taskId, x.why]), [[taskIdOf(j.id, 3), 'no_capacity']]);
      assert.equal((await s.getTask(taskIdOf(j.id, 3)))?.state, 'queued');
      // A placement of a task that is no longer queued is rejected; the rest of the plan still applies.
      const rr = await s.recordReportsAndPlace([], [exited(a1.id, 0)], tick(), POLICY, { attempts: [place(2), place(3, true)], overcommit: 2 });
      assert.deepEqual(rr.placed.rejected.map((x) => [x.taskId, x.why]), [[taskIdOf(j.id, 2), 'task_not_queued']]);
      assert.deepEqual(rr.placed.created.map((c) => c.taskId), [taskIdOf(j.id, 3)]);
      const usage = (await s.listNodeUsage()).find((u) => u.node.id === n)!;
      assert.deepEqual([usage.activeAttempts, usage.allocated.cpuMillis], [2, 2000]);
    });

    withStore('user failures are retried as the spec says; system failures up to the policy', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'], retries: 1 });
      const n = await node(s, 1);
      const t = taskIdOf(j.id, 0);
      let a = (await assign(s, j.id, 0, n)).created[0]!;
      let r = await s.recordReports([], [exited(a.id, 2)], tick(), POLICY);
      assert.deepEqual([r[0]!.taskState, r[0]!.retry], ['queued', true]);
      assert.equal((await s.getTask(t))?.userFailures, 1);
      // A lost node does not use up the user's retries.
      a = (await assign(s, j.id, 0, n)).created[0]!;
      assert.equal(a.number, 2);
      r = await s.loseAttempts([a.id], 'node lost', tick(), POLICY);
      assert.deepEqual([r[0]!.taskState, (await s.getAttempt(a.id))?.state], ['queued', 'lost']);
      a = (await assign(s, j.id, 0, n)).created[0]!;
      r = await s.recordReports([], [exited(a.id, 3)], tick(), POLICY);
      assert.equal(r[0]!.taskState, 'failed');
      const task = await s.getTask(t);
      assert.deepEqual([task?.state, task?.attempts, task?.userFailures, task?.systemFailures, task?.exitCode], ['failed', 3, 1, 1, 3]);
      assert.equal(task?.failure?.reason, 'exit_code');
      assert.equal((await s.getJob(j.id))?.state, 'failed');
      const attempts = await s.listAttempts(t);
      assert.deepEqual(attempts.map((x) => x.state), ['failed', 'lost', 'failed']);

      const k = await job(s, { name: 'k', command: ['x'] });
      for (let i = 0; i < 2; i++) {
        const b = (await assign(s, k.id, 0, n)).created[0]!;
        assert.equal((await s.loseAttempts([b.id], 'lost', tick(), POLICY))[0]!.taskState, 'queued');
      }
      const b = (await assign(s, k.id, 0, n)).created[0]!;
      assert.equal((await s.loseAttempts([b.id], 'lost', tick(), POLICY))[0]!.taskState, 'failed');
      assert.equal((await s.getTask(taskIdOf(k.id, 0)))?.failure?.kind, 'system');
    });

    withStore('fences stale and duplicate reports', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'], retries: 3 });
      const n = await node(s, 1);
      const a = (await assign(s, j.id, 0, n)).created[0]!;
      await s.loseAttempts([a.id], 'lost', tick(), POLICY);
      const b = (await assign(s, j.id, 0, n)).created[0]!;
      const r = await s.recordReports([{ attemptId: a.id, at: clock }], [exited(a.id, 0), exited(b.id, 0), exited(b.id, 1)], tick(), POLICY);
      assert.deepEqual(r.map((x) => x.applied), [false, true, false]);
      assert.equal((await s.getTask(taskIdOf(j.id, 0)))?.state, 'succeeded');
      assert.equal((await s.getAttempt(a.id))?.state, 'lost');
      const unknown = await s.recordReports([], [exited('att_0000000000000000000000zzzz' as AttemptId, 0)], tick(), POLICY);
      assert.equal(unknown[0]!.applied, false);
    });

    withStore('cancel: queued tasks end range by range, none is assigned meanwhile; active ones are returned to kill and never retried', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'], array: 3, retries: 5 });
      const n = await node(s, 2);
      const a = (await assign(s, j.id, 0, n)).created[0]!;
      assert.equal(await s.cancelQueuedTasks(j.id, { from: 0, to: 3 }, tick()), 0, 'nothing is cancelled before a cancel is requested');
      const c = await s.requestCancel(j.id, tick());
      assert.deepEqual(c?.toKill.map((x) => x.id), [a.id]);
      assert.equal(c?.alreadyFinished, false);
      assert.equal(c?.job.cancelRequested, true);
      assert.deepEqual(await s.listCancellingJobs(), [j.id]);
      // A queued task of a job being cancelled is never assigned, even by a plan made before the cancel.
      const stale = await assign(s, j.id, 2, n);
      assert.deepEqual([stale.created.length, stale.rejected[0]?.why], [0, 'job_cancelled']);
      assert.equal(await s.cancelQueuedTasks(j.id, { from: 0, to: 2 }, tick()), 1, 'only the range given');
      assert.deepEqual((await s.getJob(j.id))?.counts, { queued: 1, assigned: 1, running: 0, succeeded: 0, failed: 0, cancelled: 1 });
      assert.equal(await s.cancelQueuedTasks(j.id, { from: 2, to: 4 }, tick()), 1);
      assert.equal(await s.cancelQueuedTasks(j.id, { from: 0, to: 4 }, tick()), 0, 'idempotent');
      assert.deepEqual(await s.listCancellingJobs(), []);
      assert.equal((await s.getTask(taskIdOf(j.id, 1)))?.failure?.reason, 'cancelled');
      assert.deepEqual((await s.getJob(j.id))?.counts, { queued: 0, assigned: 1, running: 0, succeeded: 0, failed: 0, cancelled: 2 });
      assert.equal((await s.getJob(j.id))?.finishedAt, null);
      const r = await s.recordReports([], [exited(a.id, 137)], tick(), POLICY);
      assert.equal(r[0]!.taskState, 'cancelled');
      const done = await s.getJob(j.id);
      assert.deepEqual([done?.state, done?.finishedAt !== null], ['cancelled', true]);
      assert.equal((await s.requestCancel(j.id, tick()))?.job.state, 'cancelled', 'idempotent');
      assert.equal(await s.requestCancel('job_00000000000000000000000000' as JobId, tick()), null);
    });

    withStore('cancel: a finished job keeps its history; nothing changes, not even cancelRequested', async (s) => {
      const n = await node(s, 2);
      for (const [exitCode, state] of [[0, 'succeeded'], [3, 'failed']] as const) {
        const j = await job(s, { name: 'done', command: ['x'], array: 2 });
        const [a, b] = (await s.applyPlan([0, 1].map((i) => ({ attemptId: newAttemptId(tick()), taskId: taskIdOf(j.id, i), nodeId: n, prefetch: false })), clock, { overcommit: 1 })).created;
        await s.recordReports([], [exited(a!.id, 0), exited(b!.id, exitCode)], tick(), POLICY);
        const before = await s.getJob(j.id);
        assert.equal(before?.state, state);
        const c = await s.requestCancel(j.id, tick());
        assert.deepEqual([c?.alreadyFinished, c?.toKill.length, c?.job.state, c?.job.cancelRequested], [true, 0, state, false]);
        assert.deepEqual(await s.getJob(j.id), before);
        assert.equal(await s.cancelQueuedTasks(j.id, { from: 0, to: 2 }, tick()), 0);
        assert.deepEqual(await s.getJob(j.id), before);
      }
    });

    withStore('outputs: the latest attempt that reported outputs, by task then path', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'], array: 2, retries: 1, outputs: ['*.txt'] });
      const n = await node(s, 2);
      const sha = (c: string) => c.repeat(64);
      const a = (await assign(s, j.id, 0, n)).created[0]!;
      await s.recordReports([], [{ ...exited(a.id, 1), outputs: [{ path: 'old.txt', size: 1, sha256: sha('a') }] }], tick(), POLICY);
      const b = (await assign(s, j.id, 0, n)).created[0]!;
      const c = (await assign(s, j.id, 1, n)).created[0]!;
      await s.recordReports([], [
        { ...exited(b.id, 0), outputs: [{ path: 'z.txt', size: 2, sha256: sha('b') }, { path: 'a.txt', size: 3, sha256: sha('c') }] },
        { ...exited(c.id, 0), outputs: [{ path: 'a.txt', size: 4, sha256: sha('d') }] },
      ], tick(), POLICY);
      const outs = await s.listOutputs(j.id);
      assert.deepEqual(outs.map((o) => [o.taskIndex, o.path, o.size]), [[0, 'a.txt', 3], [0, 'z.txt', 2], [1, 'a.txt', 4]]);
    });

    withStore('nodes: upsert keeps the id and join time, refreshes the rest; states change', async (s) => {
      const id = await node(s, 2, 'first');
      const before = await s.getNode(id);
      await s.setNodeState(id, 'lost', tick());
      assert.equal((await s.getNode(id))?.state, 'lost');
      await s.upsertNode({ id, name: 'renamed', capacity: { cpuMillis: 4000, memoryBytes: GiB, gpus: 1, diskBytes: 0 }, facts: before!.facts, labels: { zone: 'a' }, agentVersion: '2', address: '10.0.0.2', now: tick() });
      const after = await s.getNode(id);
      assert.deepEqual([after?.name, after?.state, after?.capacity.cpuMillis, after?.labels['zone'], after?.joinedAt], ['renamed', 'online', 4000, 'a', before?.joinedAt]);
      assert.deepEqual((await s.listNodeUsage(['online'])).map((u) => u.node.id), [id]);
      assert.deepEqual(await s.listNodeUsage(['offline']), []);
    });

    withStore('tokens are found by hash only while not revoked', async (s) => {
      await s.createToken({ id: newTokenId(tick()), hash: 'h1', role: 'admin', name: 'a', createdAt: clock, revokedAt: null });
      await s.createToken({ id: newTokenId(tick()), hash: 'h2', role: 'node', name: 'b', createdAt: clock, revokedAt: clock });
      assert.equal((await s.findTokenByHash('h1'))?.role, 'admin');
      assert.equal(await s.findTokenByHash('h2'), null);
      assert.equal(await s.findTokenByHash('nope'), null);
      assert.equal((await s.listTokens()).length, 2);
    });

    withStore('a submitter token keeps its projects and expiry; revoking it deletes its sessions in the same commit', async (s) => {
      const id = newTokenId(tick());
      await s.createToken({ id, hash: 'sub', role: 'submitter', name: 'alice', createdAt: clock, revokedAt: null, projects: ['climate', 'bio'], expiresAt: clock + 5000 });
      const t = await s.findTokenByHash('sub');
      assert.deepEqual([t?.role, t?.projects, t?.expiresAt, t?.lastUsedAt], ['submitter', ['climate', 'bio'], clock + 5000, null]);
      await s.touchToken(id, clock + 1);
      assert.equal((await s.getToken(id))?.lastUsedAt, clock + 1);
      await s.createSession({ hash: 'sess1', tokenId: id, createdAt: clock, expiresAt: clock + 100 });
      await s.createSession({ hash: 'sess2', tokenId: id, createdAt: clock, expiresAt: clock + 10_000 });
      assert.equal((await s.findSession('sess1'))?.tokenId, id);
      assert.equal(await s.deleteExpiredSessions(clock + 100), 1);
      assert.equal(await s.findSession('sess1'), null);
      assert.equal(await s.revokeToken(id, tick()), true);
      assert.equal(await s.revokeToken(id, tick()), false, 'already revoked');
      assert.equal(await s.findSession('sess2'), null, 'revoking a token ends its sessions');
      await s.createSession({ hash: 'sess3', tokenId: id, createdAt: clock, expiresAt: clock + 10_000 });
      await s.deleteSession('sess3');
      assert.equal(await s.findSession('sess3'), null);
    });

    withStore('jobs and workflows keep who submitted them; lists filter by project', async (s) => {
      const owner = { tokenId: newTokenId(tick()), name: 'alice', role: 'submitter' as const };
      const a = await s.createJob({ id: newJobId(tick()), name: 'a', spec: {}, compiled: compileJobSpec({ name: 'a', script: 'true', project: 'climate' }), inputs: [], createdAt: clock, warnings: [], owner });
      const b = await job(s, { name: 'b', script: 'true', project: 'bio' });
      assert.deepEqual((await s.getJob(a.id))?.owner, owner);
      assert.equal(b.owner, null);
      assert.deepEqual((await s.listJobs({ limit: 10, projects: ['climate'] })).items.map((j) => j.id), [a.id]);
      assert.deepEqual((await s.listJobs({ limit: 10, projects: [] })).items, []);
      assert.equal((await s.listJobs({ limit: 10 })).items.length, 2);
    });

    withStore('a node credential keeps its node id; revoking a node revokes its credentials only, at once', async (s) => {
      const n1 = newNodeId(tick());
      const n2 = newNodeId(tick());
      await s.createToken({ id: newTokenId(tick()), hash: 'c1', role: 'node', name: 'n1', createdAt: clock, revokedAt: null, nodeId: n1 });
      await s.createToken({ id: newTokenId(tick()), hash: 'c2', role: 'node', name: 'n2', createdAt: clock, revokedAt: null, nodeId: n2 });
      await s.createToken({ id: newTokenId(tick()), hash: 'join', role: 'node', name: 'join', createdAt: clock, revokedAt: null });
      assert.equal((await s.findTokenByHash('c1'))?.nodeId, n1);
      assert.equal((await s.findTokenByHash('join'))?.nodeId ?? null, null);
      const at = tick();
      assert.equal(await s.revokeNodeTokens(n1, at), 1);
      assert.equal(await s.revokeNodeTokens(n1, tick()), 0, 'already revoked');
      assert.equal(await s.findTokenByHash('c1'), null);
      assert.equal((await s.findTokenByHash('c1', { includeRevoked: true }))?.revokedAt, at);
      assert.equal((await s.findTokenByHash('c2'))?.nodeId, n2);
      assert.notEqual(await s.findTokenByHash('join'), null);
    });

    withStore('the audit log: concurrent appends form one contiguous chain; filters and pages; survives reopening', async (s, f) => {
      const hash = (t: string) => createHash('sha256').update(t).digest('hex');
      const actor = { kind: 'token' as const, id: 'tok_1', name: 'alice', role: 'submitter' };
      await Promise.all(Array.from({ length: 40 }, (_, i) =>
        s.appendAudit({ at: 1000 + i, actor: i % 2 ? actor : { ...actor, name: 'bob' }, action: i % 4 ? 'job.submitted' : 'job.cancelled', target: `job_${i}`, detail: { i }, origin: '10.0.0.1' }, hash)));
      const all = await s.listAudit({ ascending: true, limit: 100 });
      assert.deepEqual(all.map((e) => e.seq), Array.from({ length: 40 }, (_, i) => i + 1));
      const checker = new AuditChainChecker(hash, null);
      for (const e of all) checker.check(e);
      assert.equal(checker.finish().ok, true);
      assert.deepEqual(await s.auditHead(), { seq: 40, hash: all[39]!.hash });
      assert.deepEqual((await s.listAudit({ limit: 3 })).map((e) => e.seq), [40, 39, 38]);
      assert.deepEqual((await s.listAudit({ limit: 3, beforeSeq: 38 })).map((e) => e.seq), [37, 36, 35]);
      assert.equal((await s.listAudit({ limit: 100, action: 'job.cancelled' })).length, 10);
      assert.equal((await s.listAudit({ limit: 100, actorName: 'bob' })).length, 20);
      assert.equal((await s.listAudit({ limit: 100, since: 1030 })).length, 10);
      if (f.reopen) {
        const again = await f.reopen();
        await again.init();
        assert.deepEqual(await again.auditHead(), { seq: 40, hash: all[39]!.hash });
      }
    });

    withStore('an illegal transition is refused and changes nothing', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'] });
      const n = await node(s, 1);
      const a = (await assign(s, j.id, 0, n)).created[0]!;
      await s.recordReports([], [exited(a.id, 0)], tick(), POLICY);
      // A start for an attempt that already ended is fenced, not applied.
      await s.recordReports([{ attemptId: a.id, at: tick() }], [], clock, POLICY);
      assert.equal((await s.getTask(taskIdOf(j.id, 0)))?.state, 'succeeded');
      assert.deepEqual((await s.getJob(j.id))?.counts, { queued: 0, assigned: 0, running: 0, succeeded: 1, failed: 0, cancelled: 0 });
    });

    withStore('everything committed survives closing and reopening the database', async (_s, f) => {
      if (!f.reopen) return;
      const s = f.store;
      const j = await job(s, { name: 'durable', command: ['x'], array: 3 });
      const n = await node(s, 2);
      const a = (await assign(s, j.id, 0, n)).created[0]!;
      await s.recordReports([{ attemptId: a.id, at: tick() }], [exited(a.id, 0)], tick(), POLICY);
      const b = (await assign(s, j.id, 1, n)).created[0]!;
      const s2 = await f.reopen();
      await s2.init();
      const again = await s2.getJob(j.id);
      assert.deepEqual(again?.counts, { queued: 1, assigned: 1, running: 0, succeeded: 1, failed: 0, cancelled: 0 });
      assert.equal((await s2.getAttempt(b.id))?.state, 'assigned');
      assert.equal((await s2.getTask(taskIdOf(j.id, 0)))?.state, 'succeeded');
      assert.equal((await s2.listQueued(10)).length, 1);
    });
  });
  runWorkflowConformance(name, make);
  runNodeConformance(name, make);
  runGpuConformance(name, make);
}
