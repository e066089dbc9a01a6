import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobId, NodeId, Resources, TaskId } from '@dsg/core';
import {
  DEFAULT_SCHEDULER_CONFIG,
  schedule,
  seededRng,
  tasksToRead,
  type SchedulerJob,
  type SchedulerNode,
  type Snapshot,
} from '@dsg/scheduler';

const GiB = 1024 ** 3;
const res = (cpu: number, memGi: number, gpus = 0): Resources => ({ cpuMillis: cpu * 1000, memoryBytes: memGi * GiB, gpus, diskBytes: 0 });
const node = (id: string, cap: Resources, alloc: Resources = res(0, 0)): SchedulerNode => ({
  id: id as NodeId, name: id, capacity: cap, allocated: alloc, labels: {},
});
/** A job of `queued` tasks at queue positions seq, seq+1, …, of which the first `read` (default all) are given. */
const job = (id: string, seq: number, r: Resources, queued: number, opts: { read?: number; typicalRunMs?: number | null } = {}): SchedulerJob => ({
  jobId: id as JobId,
  operatorOwned: true, // nodes here report no isolation: the operator's jobs run on them
  resources: r,
  typicalRunMs: opts.typicalRunMs ?? null,
  seq,
  queued,
  tasks: Array.from({ length: Math.min(queued, opts.read ?? queued) }, (_, i) => ({ taskId: `${id}.${i}` as TaskId, seq: seq + i })),
});
/** The old flat queue, one single-task job per entry: task i is `t<i>.0` at position i. */
const one = (i: number, r: Resources, typicalRunMs: number | null = null): SchedulerJob => job(`t${i}`, i, r, 1, { typicalRunMs });
const ctx = () => ({ now: 0, rng: seededRng(42) });
const run = (s: Snapshot, strategy: 'spread' | 'binpack' = 'spread') => schedule(s, { ...DEFAULT_SCHEDULER_CONFIG, strategy }, ctx());
const idx = (taskId: string): number => Number(taskId.split('.')[0]!.slice(1));

describe('schedule', () => {
  const cases: Array<{ name: string; snapshot: Snapshot; strategy?: 'spread' | 'binpack'; expect: Record<string, string>; pending?: Array<[number, boolean]> }> = [
    {
      name: 'fills cores: 2-core node takes two 1-core tasks, a third waits',
      snapshot: { nodes: [node('n1', res(2, 4))], jobs: [one(0, res(1, 1)), one(1, res(1, 1)), one(2, res(1, 1))] },
      expect: { 't0.0': 'n1', 't1.0': 'n1' },
      pending: [[2, false]],
    },
    {
      name: 'memory limits too',
      snapshot: { nodes: [node('n1', res(8, 2))], jobs: [one(0, res(1, 1.5)), one(1, res(1, 1))] },
      expect: { 't0.0': 'n1' },
      pending: [[1, false]],
    },
    {
      name: 'spread prefers the less loaded node',
      snapshot: { nodes: [node('n1', res(4, 8), res(3, 1)), node('n2', res(4, 8), res(1, 1))], jobs: [one(0, res(1, 1))] },
      expect: { 't0.0': 'n2' },
    },
    {
      name: 'binpack prefers the fuller node',
      strategy: 'binpack',
      snapshot: { nodes: [node('n1', res(4, 8), res(2, 1)), node('n2', res(4, 8))], jobs: [one(0, res(1, 1))] },
      expect: { 't0.0': 'n1' },
    },
    {
      name: 'a task bigger than every node is pending with never=true, and small tasks behind it still run (backfill)',
      snapshot: { nodes: [node('n1', res(2, 4))], jobs: [one(0, res(16, 1)), one(1, res(1, 1))] },
      expect: { 't1.0': 'n1' },
      pending: [[0, true]],
    },
    {
      name: 'GPU tasks go only to GPU nodes',
      snapshot: { nodes: [node('cpu', res(16, 32)), node('gpu', res(4, 16, 1))], jobs: [one(0, res(1, 1, 1)), one(1, res(1, 1, 1))] },
      expect: { 't0.0': 'gpu' },
      pending: [[1, false]],
    },
    {
      name: 'no nodes: never',
      snapshot: { nodes: [], jobs: [one(0, res(1, 1))] },
      expect: {},
      pending: [[0, true]],
    },
    {
      name: 'fractional cpu packs four 0.5-core tasks on two cores',
      snapshot: { nodes: [node('n1', res(2, 8))], jobs: [0, 1, 2, 3, 4].map((i) => one(i, { ...res(0, 1), cpuMillis: 500 })) },
      expect: { 't0.0': 'n1', 't1.0': 'n1', 't2.0': 'n1', 't3.0': 'n1' },
      pending: [[4, false]],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = run(c.snapshot, c.strategy);
      assert.deepEqual(Object.fromEntries(plan.assignments.map((a) => [a.taskId, a.nodeId])), c.expect);
      assert.deepEqual(plan.pending.map((p) => [idx(p.taskId), p.never]), c.pending ?? []);
    });
  }

  it('spread alternates between equal nodes', () => {
    const plan = run({ nodes: [node('n1', res(4, 8)), node('n2', res(4, 8))], jobs: [job('a', 0, res(1, 1), 4)] });
    const on = plan.assignments.map((a) => a.nodeId);
    assert.equal(on.length, 4);
    assert.notEqual(on[0], on[1]);
    assert.notEqual(on[2], on[3]);
    assert.equal(on.filter((n) => n === 'n1').length, 2);
  });

  it('records a coded reason per node for a pending job', () => {
    const plan = run({ nodes: [node('small', res(1, 1)), node('busy', res(4, 8), res(4, 0))], jobs: [job('a', 0, res(2, 1), 3)] });
    assert.equal(plan.pending.length, 1);
    const p = plan.pending[0]!;
    assert.deepEqual([p.jobId, p.taskId, p.never], ['a', 'a.0', false]);
    assert.deepEqual(p.nodes.map((n) => [n.nodeId, n.code]), [['busy', 'insufficient_cpu'], ['small', 'exceeds_capacity']]);
    assert.match(p.nodes[1]!.message, /2 cores > 1/);
  });

  it('is deterministic: the same snapshot and seed give the same plan', () => {
    const nodes = Array.from({ length: 5 }, (_, i) => node(`n${i}`, res(4, 8)));
    const jobs = [job('a', 0, res(1, 1), 30), job('b', 30, res(2, 1), 5)];
    assert.deepEqual(run({ nodes, jobs }), run({ nodes, jobs }));
  });

  it('prefetches short tasks beyond capacity (about prefetchWindowMs of work per core), never long or unknown ones', () => {
    const nodes = [node('n1', res(2, 8))];
    const p1 = run({ nodes, jobs: [job('a', 0, res(1, 1), 7, { typicalRunMs: 50 })] });
    assert.deepEqual(p1.assignments.map((a) => a.prefetch), [false, false, true, true, true, true], '50 ms tasks: factor 3 (100 ms of work per core)');
    assert.equal(p1.pending.length, 1);
    const tiny = run({ nodes, jobs: [job('a', 0, res(1, 1), 100, { typicalRunMs: 1 })] });
    assert.equal(tiny.assignments.length, 64, '1 ms tasks: capped at maxOvercommit 32');
    const tenth = run({ nodes, jobs: [job('a', 0, res(1, 1), 100, { typicalRunMs: 10 })] });
    assert.equal(tenth.assignments.length, 22, '10 ms tasks: factor 11, the window (100 ms of work per core)');
    const p2 = run({ nodes, jobs: [job('a', 0, res(1, 1), 3, { typicalRunMs: 60_000 })] });
    assert.deepEqual(p2.assignments.map((a) => a.prefetch), [false, false]);
    // Past the window but under prefetchShortTaskMs (1 s): one waiting per core, so a freed core never waits for
    // the round trip to the coordinator; at or over it, none.
    const mid = run({ nodes, jobs: [job('a', 0, res(1, 1), 9, { typicalRunMs: 400 })] });
    assert.deepEqual(mid.assignments.map((a) => a.prefetch), [false, false, true, true], '400 ms tasks: one waiting per core');
    const second = run({ nodes, jobs: [job('a', 0, res(1, 1), 9, { typicalRunMs: 1000 })] });
    assert.deepEqual(second.assignments.map((a) => a.prefetch), [false, false], '1 s tasks: only the window (factor 1.1: no third core)');
    const p3 = run({ nodes, jobs: [job('a', 0, res(1, 1), 3)] });
    assert.equal(p3.assignments.length, 2, 'unknown duration: no prefetch');
    const off = schedule({ nodes, jobs: [job('a', 0, res(1, 1), 3, { typicalRunMs: 50 })] }, { ...DEFAULT_SCHEDULER_CONFIG, maxOvercommit: 1 }, ctx());
    assert.equal(off.assignments.length, 2, 'maxOvercommit 1 turns prefetch off');
  });

  it('respects maxAssignments, and says another pass may place more', () => {
    const plan = schedule({ nodes: [node('n1', res(100, 100))], jobs: [job('a', 0, res(1, 1), 50)] }, { ...DEFAULT_SCHEDULER_CONFIG, maxAssignments: 7 }, ctx());
    assert.equal(plan.assignments.length, 7);
    assert.equal(plan.more, true);
  });

  it('never over-commits a node, whatever the input (property check over random snapshots, prefetch off)', () => {
    const rng = seededRng(7);
    for (let round = 0; round < 200; round++) {
      const nodes = Array.from({ length: 1 + Math.floor(rng() * 4) }, (_, i) => node(`n${i}`, res(1 + Math.floor(rng() * 8), 1 + Math.floor(rng() * 16), Math.floor(rng() * 2))));
      let seq = 0;
      const jobs = Array.from({ length: Math.floor(rng() * 10) }, (_, j) => {
        const n = 1 + Math.floor(rng() * 8);
        const jb = job(`j${j}`, seq, res(1 + Math.floor(rng() * 3), Math.floor(rng() * 4), rng() < 0.2 ? 1 : 0), n);
        seq += n;
        return jb;
      });
      const plan = schedule({ nodes, jobs }, { ...DEFAULT_SCHEDULER_CONFIG, maxOvercommit: 1 }, ctx());
      const want = new Map(jobs.flatMap((j) => j.tasks.map((t) => [t.taskId, j.resources] as const)));
      for (const n of nodes) {
        const mine = plan.assignments.filter((a) => a.nodeId === n.id).map((a) => want.get(a.taskId)!);
        const cpu = mine.reduce((s, r) => s + r.cpuMillis, 0);
        const mem = mine.reduce((s, r) => s + r.memoryBytes, 0);
        const gpu = mine.reduce((s, r) => s + r.gpus, 0);
        assert.ok(cpu <= n.capacity.cpuMillis && mem <= n.capacity.memoryBytes && gpu <= n.capacity.gpus, `round ${round} over-commits ${n.id}`);
      }
      assert.equal(new Set(plan.assignments.map((a) => a.taskId)).size, plan.assignments.length);
      // Every job left with queued tasks has exactly one reason.
      const placed = new Set(plan.assignments.map((a) => a.taskId));
      const waiting = jobs.filter((j) => j.tasks.some((t) => !placed.has(t.taskId))).map((j) => j.jobId).sort();
      assert.deepEqual(plan.pending.map((p) => p.jobId).sort(), waiting, `round ${round}`);
    }
  });

  it('plans 10,000 queued tasks on 50 nodes quickly (shape skipping)', () => {
    const nodes = Array.from({ length: 50 }, (_, i) => node(`n${String(i).padStart(2, '0')}`, res(8, 32)));
    const t0 = performance.now();
    const plan = run({ nodes, jobs: [job('a', 0, res(1, 1), 10_000)] });
    const ms = performance.now() - t0;
    assert.equal(plan.assignments.length, 400);
    assert.equal(plan.pending.length, 1);
    assert.ok(ms < 1000, `took ${ms} ms`);
  });
});

describe('schedule: one job that cannot run now never holds up the jobs behind it', () => {
  const cpuNode = node('cpu', res(2, 4));

  it('a 5,000-task GPU job with no GPU node online, queued first: the 4-task CPU job behind it is placed in the first pass', () => {
    const gpu = job('gpu', 0, res(1, 1, 1), 5000);
    const cpu = job('cpu', 5000, res(0.5, 0.25), 4);
    const plan = run({ nodes: [cpuNode], jobs: [gpu, cpu] });
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['cpu.0', 'cpu.1', 'cpu.2', 'cpu.3']);
    assert.deepEqual(plan.pending.map((p) => [p.jobId, p.never]), [['gpu', true]]);
    assert.match(plan.pending[0]!.summary, /no node in the grid is big enough .*1 GPUs > 0/);
  });

  it('the same behind 5,000 tasks asking for more memory than any node has', () => {
    const plan = run({ nodes: [cpuNode], jobs: [job('huge', 0, res(1, 64), 5000), job('cpu', 5000, res(1, 1), 4)] });
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['cpu.0', 'cpu.1']);
    assert.deepEqual(plan.pending.map((p) => [p.jobId, p.never]), [['huge', true], ['cpu', false]]);
  });

  it('the blocked job is judged by its first task: the rest of it is skipped at once', () => {
    // All 1,000,000 tasks given: the pass must still stop at the first one, not try them all.
    const big = job('gpu', 0, res(1, 1, 1), 1_000_000);
    const t0 = performance.now();
    const plan = run({ nodes: [cpuNode], jobs: [big, job('cpu', 1_000_000, res(1, 1), 4)] });
    const ms = performance.now() - t0;
    assert.equal(plan.assignments.length, 2);
    assert.ok(ms < 50, `a pass over a 1,000,000-task blocked job took ${ms.toFixed(1)} ms`);
  });

  it('a GPU job whose GPU node is busy waits "not now", while CPU work runs on the free cores', () => {
    const gpuNode = node('gpu', res(4, 16, 1), res(1, 1, 1));
    const plan = run({ nodes: [cpuNode, gpuNode], jobs: [job('g', 0, res(1, 1, 1), 10), job('c', 10, res(1, 1), 3)] });
    assert.deepEqual(plan.pending.map((p) => [p.jobId, p.never]), [['g', false]]);
    assert.equal(plan.assignments.filter((a) => a.taskId.startsWith('c.')).length, 3);
  });

  it('jobs of a shape that already failed in this pass are skipped with the same reason, each under its own id', () => {
    const plan = run({ nodes: [cpuNode], jobs: [job('g1', 0, res(1, 1, 1), 100), job('g2', 100, res(1, 1, 1), 100), job('c', 200, res(1, 1), 1)] });
    assert.deepEqual(plan.pending.map((p) => [p.jobId, p.taskId, p.never]), [['g1', 'g1.0', true], ['g2', 'g2.0', true]]);
    assert.equal(plan.pending[0]!.summary, plan.pending[1]!.summary);
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['c.0']);
  });

  it('keeps FIFO order among jobs that can all run: the job queued first gets the free cores, whatever order they are given in', () => {
    const early = job('early', 3, res(1, 1), 3);
    const late = job('late', 6, res(1, 1), 3);
    const plan = run({ nodes: [cpuNode], jobs: [late, early] });
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['early.0', 'early.1']);
    assert.deepEqual(plan.pending.map((p) => p.jobId), ['early', 'late']);
    // A retried task keeps its old position: its job's first queued seq is low, so it goes first.
    const retried = job('old', 0, res(1, 1), 1);
    const p2 = run({ nodes: [cpuNode], jobs: [early, late, retried] });
    assert.equal(p2.assignments[0]!.taskId, 'old.0');
  });

  it('says when another pass may place more: a job placed every task it was given but has more queued', () => {
    const big = node('big', res(64, 256));
    assert.equal(run({ nodes: [big], jobs: [job('a', 0, res(1, 1), 100, { read: 10 })] }).more, true);
    assert.equal(run({ nodes: [big], jobs: [job('a', 0, res(1, 1), 10)] }).more, false, 'all of it placed');
    assert.equal(run({ nodes: [cpuNode], jobs: [job('a', 0, res(1, 1), 100, { read: 3 })] }).more, false, 'its third task did not fit');
  });
});

describe('tasksToRead', () => {
  const cfg = DEFAULT_SCHEDULER_CONFIG;
  const summary = (seq: number, r: Resources, queued: number, typicalRunMs: number | null = null) => ({ seq, resources: r, queued, typicalRunMs });

  it('reads one task of a job that fits nowhere, however many it has queued', () => {
    const nodes = [node('cpu', res(2, 4))];
    assert.deepEqual(tasksToRead([summary(0, res(1, 1, 1), 1_000_000), summary(1_000_000, res(1, 1), 4)], nodes, cfg), [1, 3]);
    assert.deepEqual(tasksToRead([summary(0, res(1, 64), 1_000_000)], nodes, cfg), [1]);
    assert.deepEqual(tasksToRead([summary(0, res(1, 1), 10)], [], cfg), [1], 'no nodes: one, for the reason');
  });

  it('reads what the free capacity could take plus one, counting prefetch, and never more than is queued', () => {
    const nodes = [node('a', res(4, 64), res(1, 0)), node('b', res(2, 64))];
    assert.deepEqual(tasksToRead([summary(0, res(1, 1), 100)], nodes, cfg), [6], '3 + 2 free cores, plus one');
    assert.deepEqual(tasksToRead([summary(0, res(1, 1), 100, 50)], nodes, cfg), [18], 'factor 3 (100 ms window, 50 ms tasks): 11 + 6, plus one');
    assert.deepEqual(tasksToRead([summary(0, res(1, 1), 1000, 0.01)], nodes, cfg), [192], 'factor capped at 32: 127 + 64, plus one');
    assert.deepEqual(tasksToRead([summary(0, res(1, 1), 3)], nodes, cfg), [3]);
    assert.deepEqual(tasksToRead([summary(0, res(1, 40), 100)], nodes, cfg), [3], 'memory bounds it: one per node, plus one');
  });

  it('shares the free capacity among jobs in queue order, and the budget of maxAssignments', () => {
    const nodes = [node('a', res(4, 64))];
    assert.deepEqual(tasksToRead([summary(10, res(1, 1), 100), summary(0, res(1, 1), 3)], nodes, cfg), [2, 3], 'the earlier job takes 3 cores');
    assert.deepEqual(tasksToRead([summary(0, res(1, 1), 100), summary(100, res(1, 1), 100)], [node('big', res(1000, 4000))], { ...cfg, maxAssignments: 10 }), [11, 1]);
  });
});
