/**
 * Store conformance, workflows: release in the same commit as the change that triggers it, per-item chaining,
 * skips, retry (never re-running a succeeded task), cancel, fan-out over files, artifact inputs, and the SQL twin
 * of the derived job state. Part of `runStoreConformance` (conformance.ts); every Store must pass it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compileWorkflowSpec,
  deriveJobState,
  isTerminalJob,
  JOB_STATES,
  newAttemptId,
  newJobId,
  newTokenId,
  newNodeId,
  newWorkflowId,
  taskIdOf,
  type AttemptId,
  type JobId,
  type NodeId,
  type OutputFile,
  type TaskId,
  type WorkflowId,
} from '@dsg/core';
import type { StoreFactoryResult } from './conformance.js';
import type { CreatedAttempt, FinishReport, JobRecord, Store, WorkflowRecord } from './store.js';

const POLICY = { maxSystemRetries: 2 };
const GiB = 1024 ** 3;
let clock = 1_750_000_000_000;
const tick = (): number => (clock += 1000);
const sha = (c: string): string => c.repeat(64);

/**
 * Cancel as the coordinator does: mark (one short commit), then cancel the queued tasks range by range. The
 * returned attempts to kill are those of the mark.
 */
async function cancelJob(s: Store, id: JobId, now: number): Promise<Awaited<ReturnType<Store['requestCancel']>>> {
  const r = await s.requestCancel(id, now);
  if (r && !r.alreadyFinished) {
    for (let from = 0; from < Math.max(1, r.job.taskCount); from += 2000) await s.cancelQueuedTasks(id, { from, to: from + 2000 }, now);
    return { ...r, job: (await s.getJob(id))! };
  }
  return r;
}
async function cancelWorkflow(s: Store, id: WorkflowId, now: number): Promise<Awaited<ReturnType<Store['requestWorkflowCancel']>>> {
  const r = await s.requestWorkflowCancel(id, now);
  if (!r || r.alreadyFinished) return r;
  for (const st of r.workflow.stages) if (st.job.finishedAt === null && st.job.released) await cancelJob(s, st.job.id, now);
  return { ...r, workflow: (await s.getWorkflow(id))! };
}
const file = (path: string, c: string): OutputFile => ({ path, size: path.length, sha256: sha(c) });
/** Random runs per store (each a random workflow driven through failures, cancels and retries). */
const RANDOM_RUNS = Number(process.env['DSG_PROPERTY_RUNS'] ?? 150);

/** mulberry32, seeded: a failing run can be replayed from its seed. */
function rngOf(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!, chance: (p: number) => next() < p };
}

export function runWorkflowConformance(name: string, make: () => Promise<StoreFactoryResult>): void {
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

  const createWorkflow = async (s: Store, spec: Record<string, unknown>): Promise<WorkflowRecord> => {
    const compiled = compileWorkflowSpec(spec);
    const id = newWorkflowId(tick());
    return s.createWorkflow({
      id, name: compiled.name, spec, compiled, createdAt: clock,
      stages: compiled.stages.map(() => ({ jobId: newJobId(clock), inputs: [], warnings: [] })),
    });
  };
  const node = async (s: Store, cores = 8): Promise<NodeId> => {
    const id = newNodeId(tick());
    await s.upsertNode({
      id, name: 'n', capacity: { cpuMillis: cores * 1000, memoryBytes: 64 * GiB, gpus: 0, diskBytes: 100 * GiB },
      facts: { hostname: 'n', os: 'linux', arch: 'x64', cpuModel: 'x', cores, memoryBytes: 64 * GiB, diskBytes: 100 * GiB, gpus: [] },
      labels: {}, agentVersion: 't', address: null, now: clock,
    });
    return id;
  };
  /** The stage's job as stored now. */
  const stage = async (s: Store, wfId: WorkflowId, name: string): Promise<JobRecord> => {
    const wf = await s.getWorkflow(wfId);
    const st = wf?.stages.find((x) => x.name === name);
    assert.ok(st, `stage ${name}`);
    return st.job;
  };
  const assign = async (s: Store, jobId: JobId, index: number, nodeId: NodeId): Promise<CreatedAttempt> => {
    const r = await s.applyPlan([{ attemptId: newAttemptId(tick()), taskId: taskIdOf(jobId, index), nodeId, prefetch: false }], clock, { overcommit: 1 });
    assert.equal(r.created.length, 1, `assign ${jobId}.${index}: ${JSON.stringify(r.rejected)}`);
    return r.created[0]!;
  };
  const exited = (attemptId: AttemptId, exitCode: number, outputs: readonly OutputFile[] = []): FinishReport => ({
    attemptId, end: { kind: 'exited', exitCode, signal: null }, startedAt: clock, finishedAt: tick(), outputs,
  });
  /** Assign task `index` of a stage, and end it with `exitCode` (and these outputs). */
  const run = async (s: Store, wfId: WorkflowId, name: string, index: number, n: NodeId, exitCode = 0, outputs: readonly OutputFile[] = []): Promise<CreatedAttempt> => {
    const job = await stage(s, wfId, name);
    const a = await assign(s, job.id, index, n);
    const [r] = await s.recordReports([{ attemptId: a.id, at: clock }], [exited(a.id, exitCode, outputs)], tick(), POLICY);
    assert.equal(r!.applied, true);
    return a;
  };
  const taskIndices = async (s: Store, jobId: JobId): Promise<number[]> => (await s.listTasks(jobId, { limit: 1000 })).items.map((t) => t.index);
  const states = async (s: Store, wfId: WorkflowId): Promise<Record<string, string>> =>
    Object.fromEntries((await s.getWorkflow(wfId))!.stages.map((x) => [x.name, x.job.state]));

  describe(`Store conformance: ${name}: workflows`, () => {
    withStore('a workflow keeps its project and who submitted it (its stages too); lists filter by project', async (s) => {
      const spec = { name: 'owned', project: 'climate', stages: { a: { script: 'x' } } };
      const compiled = compileWorkflowSpec(spec);
      const owner = { tokenId: newTokenId(tick()), name: 'alice', role: 'submitter' as const };
      const wf = await s.createWorkflow({
        id: newWorkflowId(tick()), name: compiled.name, spec, compiled, createdAt: clock, owner,
        stages: compiled.stages.map(() => ({ jobId: newJobId(clock), inputs: [], warnings: [] })),
      });
      const other = await createWorkflow(s, { name: 'other', stages: { a: { script: 'x' } } });
      assert.deepEqual([wf.project, wf.owner, wf.stages[0]!.job.owner], ['climate', owner, owner]);
      assert.deepEqual([other.project, other.owner], ['default', null]);
      assert.deepEqual((await s.listWorkflows({ limit: 10, projects: ['climate'] })).items.map((w) => w.id), [wf.id]);
      assert.equal((await s.listWorkflows({ limit: 10 })).items.length, 2);
    });

    withStore('creating a workflow releases only the stages that need nothing; the others have no tasks and read waiting', async (s) => {
      const wf = await createWorkflow(s, {
        name: 'pipe',
        stages: { a: { script: 'x', array: 2 }, b: { script: 'x', needs: ['a'] }, c: { script: 'x', needs: ['b'] }, d: { script: 'x' } },
      });
      assert.deepEqual(wf.stages.map((x) => x.name), ['a', 'b', 'c', 'd']);
      assert.deepEqual(wf.stages.map((x) => [x.job.state, x.job.released, x.job.counts.queued]), [['queued', true, 2], ['waiting', false, 0], ['waiting', false, 0], ['queued', true, 1]]);
      assert.deepEqual(wf.stages.map((x) => x.job.name), ['pipe/a', 'pipe/b', 'pipe/c', 'pipe/d']);
      assert.deepEqual(wf.stages.map((x) => [x.job.workflowId, x.job.stage]), wf.stages.map((x) => [wf.id, x.name]));
      assert.deepEqual(await taskIndices(s, wf.stages[1]!.job.id), []);
      assert.equal(wf.state, 'queued');
      assert.equal(wf.finishedAt, null);
      const queued = await s.listQueued(100);
      assert.deepEqual(queued.map((q) => [q.jobId, q.index]), [[wf.stages[0]!.job.id, 0], [wf.stages[0]!.job.id, 1], [wf.stages[3]!.job.id, 0]]);
      assert.deepEqual((await s.listWorkflows({ limit: 10 })).items.map((w) => w.id), [wf.id]);
    });

    withStore('finishing the last task of a stage releases its dependents in the same commit, durably', async (s, f) => {
      const wf = await createWorkflow(s, {
        name: 'pipe', stages: { a: { script: 'x', array: 2 }, b: { script: 'x', array: 3, needs: ['a'] }, c: { script: 'x', needs: ['a', 'b'] } },
      });
      const n = await node(s);
      await run(s, wf.id, 'a', 0, n);
      assert.deepEqual(await states(s, wf.id), { a: 'running', b: 'waiting', c: 'waiting' });
      assert.equal((await s.getWorkflow(wf.id))?.state, 'running');
      const b = await stage(s, wf.id, 'b');
      const last = await assign(s, (await stage(s, wf.id, 'a')).id, 1, n);
      await s.recordReports([], [exited(last.id, 0)], tick(), POLICY);
      // The report's commit holds the release: reopen the database and the tasks are there.
      const s2 = f.reopen ? await f.reopen() : s;
      if (f.reopen) await s2.init();
      assert.deepEqual(await states(s2, wf.id), { a: 'succeeded', b: 'queued', c: 'waiting' });
      assert.deepEqual(await taskIndices(s2, b.id), [0, 1, 2]);
      assert.equal((await s2.listQueued(10)).filter((q) => q.jobId === b.id).length, 3);
      for (const i of [0, 1, 2]) await run(s2, wf.id, 'b', i, n);
      assert.deepEqual(await states(s2, wf.id), { a: 'succeeded', b: 'succeeded', c: 'queued' });
      await run(s2, wf.id, 'c', 0, n);
      const done = await s2.getWorkflow(wf.id);
      assert.deepEqual([done?.state, done?.finishedAt], ['succeeded', clock]);
    });

    withStore('per-item chaining: task k of the next stage is created when task k succeeds, and not before', async (s) => {
      const wf = await createWorkflow(s, {
        name: 'chain',
        stages: {
          gen: { script: 'x', array: ['oslo', 'lima', 'cairo'] },
          clean: { script: 'x', needs: ['gen'], each: 'gen' },
          trend: { script: 'x', needs: ['clean'], each: 'clean' },
        },
      });
      const clean = await stage(s, wf.id, 'clean');
      const trend = await stage(s, wf.id, 'trend');
      assert.deepEqual([clean.state, clean.released, clean.taskCount], ['waiting', true, 3]);
      const n = await node(s);
      await run(s, wf.id, 'gen', 1, n);
      assert.deepEqual(await taskIndices(s, clean.id), [1]);
      assert.equal((await s.getTask(taskIdOf(clean.id, 1)))?.arrayValue, 'lima', 'the item keeps its array value');
      assert.deepEqual(await taskIndices(s, trend.id), []);
      // A failed attempt that is retried does not release anything.
      const gen = await stage(s, wf.id, 'gen');
      const a = await assign(s, gen.id, 0, n);
      await s.loseAttempts([a.id], 'node lost', tick(), POLICY);
      assert.deepEqual(await taskIndices(s, clean.id), [1]);
      await run(s, wf.id, 'clean', 1, n);
      assert.deepEqual(await taskIndices(s, trend.id), [1], 'item 1 moves on without waiting for the others');
      assert.deepEqual(await states(s, wf.id), { gen: 'running', clean: 'running', trend: 'queued' });
      await run(s, wf.id, 'gen', 0, n);
      await run(s, wf.id, 'gen', 2, n);
      assert.deepEqual(await taskIndices(s, clean.id), [0, 1, 2]);
      for (const i of [0, 2]) await run(s, wf.id, 'clean', i, n);
      for (const i of [0, 1, 2]) await run(s, wf.id, 'trend', i, n);
      assert.equal((await s.getWorkflow(wf.id))?.state, 'succeeded');
    });

    withStore('a failed stage skips its dependents with the reason, and the workflow reads failed', async (s) => {
      const wf = await createWorkflow(s, {
        name: 'pipe', stages: { a: { script: 'x' }, b: { script: 'x', needs: ['a'] }, c: { script: 'x', needs: ['b'] }, d: { script: 'x' } },
      });
      const n = await node(s);
      await run(s, wf.id, 'd', 0, n);
      await run(s, wf.id, 'a', 0, n, 3);
      const after = (await s.getWorkflow(wf.id))!;
      assert.deepEqual(after.stages.map((x) => [x.name, x.job.state, x.job.skipReason]), [
        ['a', 'failed', null],
        ['b', 'skipped', 'it needs "a", which failed'],
        ['c', 'skipped', 'it needs "b", which was skipped'],
        ['d', 'succeeded', null],
      ]);
      assert.equal(after.state, 'failed');
      assert.equal(after.finishedAt, clock);
      for (const x of after.stages) assert.notEqual(x.job.finishedAt, null, `${x.name} has ended`);
      assert.deepEqual(await s.listQueued(10), []);
    });

    withStore('retry requeues only failed tasks, lifts skips and never runs a succeeded task again', async (s) => {
      const wf = await createWorkflow(s, {
        name: 'retry',
        stages: {
          a: { script: 'x', array: 3 },
          b: { script: 'x', needs: ['a'], each: 'a' },
          c: { script: 'x', needs: ['a'] },
          d: { script: 'x', needs: ['c'] },
        },
      });
      const n = await node(s);
      const a = await stage(s, wf.id, 'a');
      const b = await stage(s, wf.id, 'b');
      await run(s, wf.id, 'a', 0, n);
      await run(s, wf.id, 'a', 2, n);
      await run(s, wf.id, 'b', 0, n);
      await run(s, wf.id, 'a', 1, n, 1);
      await run(s, wf.id, 'b', 2, n);
      assert.deepEqual(await states(s, wf.id), { a: 'failed', b: 'skipped', c: 'skipped', d: 'skipped' });
      assert.match((await stage(s, wf.id, 'b')).skipReason ?? '', /"a" failed/);
      const kept = [taskIdOf(a.id, 0), taskIdOf(a.id, 2), taskIdOf(b.id, 0), taskIdOf(b.id, 2)];
      const attemptsOf = async () => Promise.all(kept.map(async (t) => [(await s.getTask(t))?.state, (await s.listAttempts(t)).length]));
      assert.deepEqual(await attemptsOf(), kept.map(() => ['succeeded', 1]));

      // First retry: a[1] fails again; second retry: it succeeds and everything downstream runs.
      for (const [round, exitCode] of [[1, 2], [2, 0]] as const) {
        const r = await s.retryWorkflow(wf.id, tick());
        assert.deepEqual(r?.result, { requeued: 1, unskipped: 3 }, `retry ${round}`);
        assert.deepEqual(await states(s, wf.id), { a: 'running', b: 'running', c: 'waiting', d: 'waiting' });
        assert.equal(r?.workflow.finishedAt, null);
        const t = (await s.getTask(taskIdOf(a.id, 1)))!;
        assert.deepEqual([t.state, t.userFailures, t.failure], ['queued', 0, null], 'a fresh retry budget');
        assert.deepEqual((await s.listQueued(10)).map((q) => q.taskId), [taskIdOf(a.id, 1)], 'only the failed task is queued');
        await run(s, wf.id, 'a', 1, n, exitCode);
        assert.deepEqual(await attemptsOf(), kept.map(() => ['succeeded', 1]), `retry ${round}: succeeded tasks were not run again`);
      }
      assert.deepEqual(await taskIndices(s, b.id), [0, 1, 2]);
      assert.equal((await s.listAttempts(taskIdOf(a.id, 1))).length, 3);
      await run(s, wf.id, 'b', 1, n);
      await run(s, wf.id, 'c', 0, n);
      await run(s, wf.id, 'd', 0, n);
      assert.equal((await s.getWorkflow(wf.id))?.state, 'succeeded');
      assert.deepEqual(await attemptsOf(), kept.map(() => ['succeeded', 1]));
      assert.equal(await s.retryWorkflow('wf_00000000000000000000000000' as WorkflowId, tick()), null);
    });

    withStore('retrying one failed stage (retryJob) also releases what its failure had skipped', async (s) => {
      const wf = await createWorkflow(s, { name: 'rj', stages: { a: { script: 'x', array: 2 }, b: { script: 'x', needs: ['a'] } } });
      const n = await node(s);
      await run(s, wf.id, 'a', 0, n);
      await run(s, wf.id, 'a', 1, n, 1);
      assert.deepEqual(await states(s, wf.id), { a: 'failed', b: 'skipped' });
      const a = await stage(s, wf.id, 'a');
      const r = await s.retryJob(a.id, tick());
      assert.deepEqual(r?.result, { requeued: 1, unskipped: 1 });
      assert.deepEqual(await states(s, wf.id), { a: 'running', b: 'waiting' });
      await run(s, wf.id, 'a', 1, n);
      assert.deepEqual(await states(s, wf.id), { a: 'succeeded', b: 'queued' });
      assert.equal((await s.listAttempts(taskIdOf(a.id, 0))).length, 1);
    });

    withStore('cancel: queued tasks cancelled, running attempts returned to kill, waiting stages cancelled, finished stages untouched', async (s) => {
      const wf = await createWorkflow(s, {
        name: 'cancel',
        stages: {
          done: { script: 'x' },
          bad: { script: 'x' },
          after_bad: { script: 'x', needs: ['bad'] },
          a: { script: 'x', array: 3 },
          per: { script: 'x', needs: ['a'], each: 'a' },
          later: { script: 'x', needs: ['a', 'done'] },
        },
      });
      const n = await node(s);
      await run(s, wf.id, 'done', 0, n);
      await run(s, wf.id, 'bad', 0, n, 1);
      const a = await stage(s, wf.id, 'a');
      const per = await stage(s, wf.id, 'per');
      const running = await assign(s, a.id, 0, n);
      await s.recordReports([{ attemptId: running.id, at: tick() }], [], clock, POLICY);
      const endingWell = await assign(s, a.id, 1, n);
      const before = (await s.getWorkflow(wf.id))!;
      const finished = before.stages.filter((x) => ['done', 'bad', 'after_bad'].includes(x.name)).map((x) => x.job);

      const c = await cancelWorkflow(s, wf.id, tick());
      assert.deepEqual(c?.toKill.map((x) => x.id).sort(), [running.id, endingWell.id].sort());
      assert.equal(c?.workflow.cancelRequested, true);
      assert.deepEqual(Object.fromEntries(c!.workflow.stages.map((x) => [x.name, x.job.state])), {
        done: 'succeeded', bad: 'failed', after_bad: 'skipped', a: 'running', per: 'cancelled', later: 'cancelled',
      });
      assert.equal((await s.getTask(taskIdOf(a.id, 2)))?.state, 'cancelled');
      assert.equal((await stage(s, wf.id, 'later')).skipReason, 'the workflow was cancelled');
      assert.equal(c?.workflow.state, 'running', 'until the running attempts have ended');
      // Finished stages keep their history: state, counts, reason, end time.
      for (const j of finished) {
        const now = (await s.getJob(j.id))!;
        assert.deepEqual([now.state, now.counts, now.skipReason, now.finishedAt, now.cancelRequested], [j.state, j.counts, j.skipReason, j.finishedAt, false], j.name);
      }
      // One attempt was killed; the other ended well just before its kill arrived: it succeeded, but its
      // per-item successor is not created in a cancelled workflow.
      await s.recordReports([], [exited(endingWell.id, 0), exited(running.id, 137)], tick(), POLICY);
      assert.deepEqual(await taskIndices(s, per.id), []);
      assert.equal((await s.getTask(taskIdOf(a.id, 1)))?.state, 'succeeded');
      assert.equal((await s.getTask(taskIdOf(a.id, 0)))?.state, 'cancelled');
      assert.deepEqual(await s.listQueued(10), []);
      const end = (await s.getWorkflow(wf.id))!;
      assert.deepEqual([end.state, end.finishedAt], ['cancelled', clock]);
      assert.equal((await cancelWorkflow(s, wf.id, tick()))?.toKill.length, 0, 'idempotent');
    });

    withStore('retry after a cancel resumes per-item chaining, including items whose upstream task succeeded after the cancel', async (s) => {
      const wf = await createWorkflow(s, {
        name: 'resume',
        stages: { a: { script: 'x', array: 3 }, per: { script: 'x', needs: ['a'], each: 'a' }, tail: { script: 'x', needs: ['per'] } },
      });
      const n = await node(s);
      await run(s, wf.id, 'a', 0, n);
      const a = await stage(s, wf.id, 'a');
      const per = await stage(s, wf.id, 'per');
      const late = await assign(s, a.id, 1, n);
      await cancelWorkflow(s, wf.id, tick());
      await s.recordReports([], [exited(late.id, 0)], tick(), POLICY); // ended well before the kill arrived
      assert.deepEqual(await states(s, wf.id), { a: 'cancelled', per: 'cancelled', tail: 'cancelled' });
      assert.deepEqual(await taskIndices(s, per.id), [0]);

      const r = await s.retryWorkflow(wf.id, tick());
      assert.deepEqual(r?.result, { requeued: 2, unskipped: 2 }, 'a[2] and per[0] requeued; per and tail no longer skipped');
      assert.deepEqual(await taskIndices(s, per.id), [0, 1], 'per[1] is created now that its a-task is known to have succeeded');
      await run(s, wf.id, 'a', 2, n);
      for (const i of [0, 1, 2]) await run(s, wf.id, 'per', i, n);
      await run(s, wf.id, 'tail', 0, n);
      assert.equal((await s.getWorkflow(wf.id))?.state, 'succeeded');
      for (const i of [0, 1]) assert.equal((await s.listAttempts(taskIdOf(a.id, i))).length, 1, `a[${i}] ran once`);
    });

    withStore('retry while a cancelled attempt is still being killed: the kill that lands after the retry requeues the task', async (s) => {
      const wf = await createWorkflow(s, { name: 'race', stages: { a: { script: 'x', array: 2 }, b: { script: 'x', needs: ['a'] } } });
      const n = await node(s);
      const a = await stage(s, wf.id, 'a');
      const killed = await assign(s, a.id, 0, n);
      await s.recordReports([{ attemptId: killed.id, at: tick() }], [], clock, POLICY);
      assert.deepEqual((await cancelWorkflow(s, wf.id, tick()))?.toKill.map((x) => x.id), [killed.id]);
      const r = await s.retryWorkflow(wf.id, tick()); // `dsg cancel`, then at once `dsg retry`
      assert.deepEqual(r?.result, { requeued: 1, unskipped: 1 });
      const [res] = await s.recordReports([], [{ attemptId: killed.id, end: { kind: 'cancelled' }, startedAt: clock, finishedAt: tick(), outputs: [] }], tick(), POLICY);
      assert.deepEqual([res!.taskState, res!.retry], ['queued', true]);
      assert.equal((await s.getTask(taskIdOf(a.id, 0)))?.failure?.kind, 'system');
      for (const i of [0, 1]) await run(s, wf.id, 'a', i, n);
      await run(s, wf.id, 'b', 0, n);
      assert.equal((await s.getWorkflow(wf.id))?.state, 'succeeded');
    });

    withStore('a task stopped by its agent without any cancel (the agent shutting down) runs again elsewhere', async (s) => {
      const wf = await createWorkflow(s, { name: 'stop', stages: { a: { script: 'x' }, b: { script: 'x', needs: ['a'] } } });
      const n = await node(s);
      const a = await stage(s, wf.id, 'a');
      const first = await assign(s, a.id, 0, n);
      const [res] = await s.recordReports([], [{ attemptId: first.id, end: { kind: 'cancelled' }, startedAt: clock, finishedAt: tick(), outputs: [] }], tick(), POLICY);
      assert.deepEqual([res!.taskState, (await s.getAttempt(first.id))?.state], ['queued', 'lost']);
      assert.deepEqual(await states(s, wf.id), { a: 'queued', b: 'waiting' }, 'nothing downstream is skipped');
      await run(s, wf.id, 'a', 0, n);
      assert.deepEqual(await states(s, wf.id), { a: 'succeeded', b: 'queued' });
    });

    withStore('cancelling one waiting stage: it is never released, and what needs it is skipped', async (s) => {
      const wf = await createWorkflow(s, { name: 'c1', stages: { a: { script: 'x' }, b: { script: 'x', needs: ['a'] }, c: { script: 'x', needs: ['b'] } } });
      const n = await node(s);
      const b = await stage(s, wf.id, 'b');
      const r = await cancelJob(s, b.id, tick());
      assert.deepEqual([r?.job.state, r?.toKill.length], ['cancelled', 0]);
      await run(s, wf.id, 'a', 0, n);
      assert.deepEqual(await taskIndices(s, b.id), [], 'no tasks for a cancelled stage');
      assert.deepEqual(await states(s, wf.id), { a: 'succeeded', b: 'cancelled', c: 'skipped' });
      assert.equal((await stage(s, wf.id, 'c')).skipReason, 'it needs "b", which was cancelled');
      assert.equal((await s.getWorkflow(wf.id))?.finishedAt, clock);
    });

    withStore('a fan-out over output files makes one task per file, with that file as its input', async (s) => {
      const wf = await createWorkflow(s, {
        name: 'fan',
        stages: {
          split: { script: 'x', array: 2, outputs: ['parts/*', 'log.txt'] },
          count: { script: 'x', needs: ['split'], array: { from: 'split', path: 'parts/*.txt' }, outputs: ['n.txt'] },
        },
      });
      const n = await node(s);
      await run(s, wf.id, 'split', 0, n, 0, [file('parts/b.txt', 'b'), file('parts/a.txt', 'a'), file('log.txt', 'l')]);
      const count = await stage(s, wf.id, 'count');
      assert.deepEqual([count.state, count.taskCount], ['waiting', 0]);
      await run(s, wf.id, 'split', 1, n, 0, [file('parts/c.txt', 'c'), file('parts/skip.csv', 's'), file('log.txt', 'm')]);
      const released = await stage(s, wf.id, 'count');
      assert.deepEqual([released.state, released.taskCount], ['queued', 3]);
      const tasks = (await s.listTasks(released.id, { limit: 10 })).items;
      assert.deepEqual(tasks.map((t) => [t.index, t.arrayValue]), [[0, 'parts/a.txt'], [1, 'parts/b.txt'], [2, 'parts/c.txt']]);
      const plan = await s.applyPlan(tasks.map((t) => ({ attemptId: newAttemptId(tick()), taskId: t.id, nodeId: n, prefetch: false })), clock, { overcommit: 1 });
      assert.deepEqual(plan.created.map((a) => [a.arrayValue, a.taskCount, a.taskInputs]), [
        ['parts/a.txt', 3, [{ path: 'parts/a.txt', sha256: sha('a'), size: 11, mode: 0o644 }]],
        ['parts/b.txt', 3, [{ path: 'parts/b.txt', sha256: sha('b'), size: 11, mode: 0o644 }]],
        ['parts/c.txt', 3, [{ path: 'parts/c.txt', sha256: sha('c'), size: 11, mode: 0o644 }]],
      ]);
    });

    withStore('a fan-out over files that match nothing skips the stage, saying so', async (s) => {
      const wf = await createWorkflow(s, {
        name: 'fan0',
        stages: {
          split: { script: 'x', outputs: [{ path: 'parts/*', optional: true }] },
          count: { script: 'x', needs: ['split'], array: { from: 'split' } },
        },
      });
      await run(s, wf.id, 'split', 0, await node(s), 0, []);
      const count = await stage(s, wf.id, 'count');
      assert.deepEqual([count.state, count.skipReason], ['skipped', 'nothing to fan out over: no output of stage "split"']);
      assert.equal((await s.getWorkflow(wf.id))?.state, 'failed');
    });

    withStore('artifact inputs { from, path with ${DSG_TASK_INDEX} } are resolved into each task\'s inputs', async (s) => {
      const wf = await createWorkflow(s, {
        name: 'art',
        stages: {
          sim: { script: 'x', array: 2, outputs: ['o/*.json'] },
          plot: { script: 'x', needs: ['sim'], each: 'sim', inputs: [{ from: 'sim', path: 'o/${DSG_TASK_INDEX}.json' }] },
          reduce: { script: 'x', needs: ['sim'], inputs: [{ from: 'sim' }] },
        },
      });
      const n = await node(s);
      await run(s, wf.id, 'sim', 1, n, 0, [file('o/1.json', '1')]);
      // A first attempt's outputs do not count once a later attempt of the task succeeds.
      await run(s, wf.id, 'sim', 0, n, 1, [file('o/old.json', 'x')]);
      await s.retryWorkflow(wf.id, tick());
      await run(s, wf.id, 'sim', 0, n, 0, [file('o/0.json', '0')]);
      const plot = await stage(s, wf.id, 'plot');
      const reduce = await stage(s, wf.id, 'reduce');
      const created = (await s.applyPlan([0, 1].map((i) => ({ attemptId: newAttemptId(tick()), taskId: taskIdOf(plot.id, i), nodeId: n, prefetch: false })), clock, { overcommit: 1 })).created;
      assert.deepEqual(created.map((a) => [a.taskIndex, a.taskInputs.map((f) => [f.path, f.sha256])]), [[0, [['o/0.json', sha('0')]]], [1, [['o/1.json', sha('1')]]]]);
      const [r] = (await s.applyPlan([{ attemptId: newAttemptId(tick()), taskId: taskIdOf(reduce.id, 0), nodeId: n, prefetch: false }], clock, { overcommit: 1 })).created;
      assert.deepEqual(r!.taskInputs.map((f) => f.path), ['o/0.json', 'o/1.json']);
    });

    withStore('two tasks producing the same path fail the consuming task with a message saying which and what to do', async (s) => {
      const wf = await createWorkflow(s, {
        name: 'clash',
        stages: { sim: { script: 'x', array: 2, outputs: ['out.txt'] }, reduce: { script: 'x', needs: ['sim'], inputs: [{ from: 'sim' }] } },
      });
      const n = await node(s);
      await run(s, wf.id, 'sim', 0, n, 0, [file('out.txt', 'a')]);
      await run(s, wf.id, 'sim', 1, n, 0, [file('out.txt', 'b')]);
      const reduce = await stage(s, wf.id, 'reduce');
      const t = (await s.getTask(taskIdOf(reduce.id, 0)))!;
      assert.equal(t.state, 'failed');
      assert.deepEqual(t.failure, {
        kind: 'user', reason: 'inputs_unavailable',
        message: 'inputs[0] (from sim): tasks 0 and 1 of stage "sim" both produced "out.txt"; give each task its own file name (e.g. with $DSG_TASK_INDEX) or pick one with path:',
      });
      assert.deepEqual([reduce.state, (await s.getWorkflow(wf.id))?.state], ['failed', 'failed']);
      assert.deepEqual(await s.listQueued(10), [], 'nothing runs with the wrong input');
    });

    withStore(`random workflows through random failures, cancels and retries: the rules hold at every step, retries end in success (${RANDOM_RUNS} runs)`, async (s) => {
      const n = await node(s, 1000);
      for (let seed = 1; seed <= RANDOM_RUNS; seed++) await randomRun(s, n, seed);
    });

    /**
     * One random workflow driven to success: tasks start and end in a random order, some fail on their first
     * attempt, the workflow may be cancelled (running attempts then end killed or, racing the kill, by
     * themselves) and even retried before the kills have landed, and whenever it has ended without succeeding it
     * is retried (whole, or one stage's job).
     */
    const randomRun = async (s: Store, nodeId: NodeId, seed: number): Promise<void> => {
      const rng = rngOf(seed);
      const count = rng.int(2, 6);
      const names = Array.from({ length: count }, (_, i) => `s${i}`);
      const stages: Record<string, Record<string, unknown>> = {};
      const sizes = new Map<string, number>();
      const failFirst = new Set<string>();
      for (let i = 0; i < count; i++) {
        const needs = names.slice(0, i).filter(() => rng.chance(0.45));
        const each = needs.length > 0 && rng.chance(0.4) ? rng.pick(needs) : null;
        const k = each ? sizes.get(each)! : rng.int(1, 3);
        sizes.set(names[i]!, k);
        stages[names[i]!] = { script: 'x', ...(needs.length ? { needs } : {}), ...(each ? { each } : k > 1 ? { array: k } : {}) };
        for (let t = 0; t < k; t++) if (rng.chance(0.2)) failFirst.add(`${names[i]}.${t}`);
      }
      const wf = await createWorkflow(s, { name: `rand-${seed}`, stages });
      const ctx = (what: string) => `seed ${seed}: ${what}\n${JSON.stringify(stages)} failing first: ${[...failFirst].join(' ')}`;
      const compiled = wf.compiled;
      const jobOf = new Map(wf.stages.map((x) => [x.name, x.job.id]));
      const stageOf = new Map(wf.stages.map((x) => [x.job.id as string, x.name]));
      const running: CreatedAttempt[] = [];
      const succeededWith = new Map<TaskId, number>(); // attempts a task had when it succeeded
      const killing = new Set<string>(); // attempts a cancel asked agents to kill
      let cancels = 0;

      const check = async (): Promise<WorkflowRecord> => {
        const cur = (await s.getWorkflow(wf.id))!;
        const state = new Map(cur.stages.map((x) => [x.name, x.job.state]));
        assert.equal(cur.finishedAt !== null, isTerminalJob(cur.state), ctx(`workflow ${cur.state} with finishedAt ${cur.finishedAt}`));
        for (const st of compiled.stages) {
          const job = cur.stages.find((x) => x.name === st.name)!.job;
          assert.equal(job.finishedAt !== null, isTerminalJob(job.state), ctx(`${st.name} ${job.state} with finishedAt ${job.finishedAt}`));
          const list = (await s.listTasks(job.id, { limit: 100 })).items;
          if (list.length > 0) for (const d of st.needs) if (d !== st.each) assert.equal(state.get(d), 'succeeded', ctx(`${st.name} has tasks while its need ${d} is ${state.get(d)}`));
          for (const t of list) {
            if (st.each) assert.equal((await s.getTask(taskIdOf(jobOf.get(st.each)!, t.index)))?.state, 'succeeded', ctx(`${st.name}[${t.index}] exists before ${st.each}[${t.index}] succeeded`));
            if (job.cancelRequested) assert.notEqual(t.state, 'queued', ctx(`${st.name}[${t.index}] queued in a cancelled stage`));
            const was = succeededWith.get(t.id);
            if (was !== undefined) assert.deepEqual([t.state, t.attempts], ['succeeded', was], ctx(`${st.name}[${t.index}] ran again after it succeeded`));
            else if (t.state === 'succeeded') succeededWith.set(t.id, t.attempts);
          }
        }
        return cur;
      };

      for (let step = 0; ; step++) {
        assert.ok(step < 400, ctx('does not finish'));
        const cur = await check();
        const queued = (await s.listQueued(10_000)).filter((q) => stageOf.has(q.jobId));
        if (queued.length === 0 && running.length === 0) {
          if (cur.state === 'succeeded') break;
          assert.ok(cur.finishedAt !== null, ctx(`nothing queued or running, yet the workflow is ${cur.state}: ${JSON.stringify(cur.stages.map((x) => [x.name, x.job.state, x.job.counts]))}`));
          const broken = cur.stages.filter((x) => x.job.state === 'failed' || x.job.state === 'cancelled');
          if (broken.length > 0 && rng.chance(0.3)) await s.retryJob(rng.pick(broken).job.id, tick());
          else await s.retryWorkflow(wf.id, tick());
          continue;
        }
        const r = rng.next();
        if (r < 0.05 && cancels < 2) {
          cancels++;
          const c = await cancelWorkflow(s, wf.id, tick());
          assert.deepEqual(c!.toKill.map((a) => a.id).sort(), running.map((a) => a.id).sort(), ctx('the attempts to kill are the running ones'));
          for (const a of c!.toKill) killing.add(a.id);
        } else if (r < 0.08 && cur.cancelRequested && running.length > 0) {
          await s.retryWorkflow(wf.id, tick()); // `dsg retry` while the kills are still on their way
        } else if (queued.length > 0 && (running.length === 0 || r < 0.55)) {
          const q = rng.pick(queued);
          running.push(await assign(s, q.jobId, q.index, nodeId));
        } else {
          const a = running.splice(rng.int(0, running.length - 1), 1)[0]!;
          const key = `${stageOf.get(a.jobId)}.${a.taskIndex}`;
          const report = killing.has(a.id) && rng.chance(0.6)
            ? { ...exited(a.id, 0), end: { kind: 'cancelled' as const } } // the kill landed
            : exited(a.id, failFirst.has(key) && a.number === 1 ? 1 : 0); // it ended by itself first
          const [res] = await s.recordReports([], [report], tick(), POLICY);
          assert.equal(res!.applied, true, ctx(`report of ${key}`));
        }
      }
      // Each task succeeded exactly once, with its last attempt.
      for (const st of compiled.stages) {
        for (let k = 0; k < sizes.get(st.name)!; k++) {
          const list = await s.listAttempts(taskIdOf(jobOf.get(st.name)!, k));
          assert.deepEqual(list.map((x) => x.state).filter((x) => x === 'succeeded'), ['succeeded'], ctx(`${st.name}[${k}] attempts ${list.map((x) => x.state).join(',')}`));
          assert.equal(list[list.length - 1]!.state, 'succeeded', ctx(`${st.name}[${k}]`));
        }
      }
    };

    withStore('JOB_STATE_SQL agrees with deriveJobState for stage jobs in every state', async (s) => {
      const n = await node(s, 2);
      // waiting (not released) · waiting (released per-item, nothing yet) · queued · skipped
      await createWorkflow(s, { name: 'w1', stages: { a: { script: 'x', array: 2 }, per: { script: 'x', needs: ['a'], each: 'a' }, after: { script: 'x', needs: ['a'] } } });
      // running (per-item, some held) · succeeded · failed · skipped (whole and partial)
      const w2 = await createWorkflow(s, {
        name: 'w2', stages: { a: { script: 'x', array: 2 }, per: { script: 'x', needs: ['a'], each: 'a' }, after: { script: 'x', needs: ['a'] }, ok: { script: 'x' } },
      });
      await run(s, w2.id, 'ok', 0, n);
      await run(s, w2.id, 'a', 0, n);
      await run(s, w2.id, 'per', 0, n);
      const w2mid = await states(s, w2.id);
      await run(s, w2.id, 'a', 1, n, 1);
      // running (assigned) · cancelled (waiting stage of a cancelled workflow)
      const w3 = await createWorkflow(s, { name: 'w3', stages: { a: { script: 'x' }, b: { script: 'x', needs: ['a'] } } });
      await assign(s, (await stage(s, w3.id, 'a')).id, 0, n);
      const w4 = await createWorkflow(s, { name: 'w4', stages: { a: { script: 'x' }, b: { script: 'x', needs: ['a'] } } });
      await cancelWorkflow(s, w4.id, tick());
      // a skipped fan-out over zero files (released, task_count 0)
      const w5 = await createWorkflow(s, { name: 'w5', stages: { a: { script: 'x', outputs: [{ path: 'p/*', optional: true }] }, f: { script: 'x', needs: ['a'], array: { from: 'a' } } } });
      await run(s, w5.id, 'a', 0, n);

      const all = (await s.listJobs({ limit: 1000 })).items;
      assert.deepEqual(w2mid, { a: 'running', per: 'running', after: 'waiting', ok: 'succeeded' });
      for (const j of all) assert.equal(j.state, deriveJobState(j.counts, j.cancelRequested, { released: j.released, skipReason: j.skipReason, taskCount: j.taskCount }));
      const seen = new Set(all.map((j) => j.state));
      assert.deepEqual(JOB_STATES.filter((x) => !seen.has(x)), [], 'every state is represented');
      for (const state of JOB_STATES) {
        const bySql = (await s.listJobs({ limit: 1000, state })).items.map((j) => j.id).sort();
        const byCore = all.filter((j) => j.state === state).map((j) => j.id).sort();
        assert.deepEqual(bySql, byCore, `state ${state}`);
      }
    });
  });
}
