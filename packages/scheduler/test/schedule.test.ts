import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobId, NodeId, Resources, TaskId } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG, schedule, seededRng, type SchedulerNode, type SchedulerTask, type Snapshot } from '@dsg/scheduler';

const GiB = 1024 ** 3;
const res = (cpu: number, memGi: number, gpus = 0): Resources => ({ cpuMillis: cpu * 1000, memoryBytes: memGi * GiB, gpus, diskBytes: 0 });
const node = (id: string, cap: Resources, alloc: Resources = res(0, 0)): SchedulerNode => ({
  id: id as NodeId, name: id, capacity: cap, allocated: alloc, labels: {},
});
const task = (i: number, r: Resources): SchedulerTask => ({ taskId: `job_t.${i}` as TaskId, jobId: 'job_t' as JobId, resources: r, seq: i, typicalRunMs: null });
const ctx = () => ({ now: 0, rng: seededRng(42) });
const run = (s: Snapshot, strategy: 'spread' | 'binpack' = 'spread') => schedule(s, { ...DEFAULT_SCHEDULER_CONFIG, strategy }, ctx());

describe('schedule', () => {
  const cases: Array<{ name: string; snapshot: Snapshot; strategy?: 'spread' | 'binpack'; expect: Record<string, string>; pending?: Array<[number, boolean]> }> = [
    {
      name: 'fills cores: 2-core node takes two 1-core tasks, a third waits',
      snapshot: { nodes: [node('n1', res(2, 4))], queued: [task(0, res(1, 1)), task(1, res(1, 1)), task(2, res(1, 1))] },
      expect: { 'job_t.0': 'n1', 'job_t.1': 'n1' },
      pending: [[2, false]],
    },
    {
      name: 'memory limits too',
      snapshot: { nodes: [node('n1', res(8, 2))], queued: [task(0, res(1, 1.5)), task(1, res(1, 1))] },
      expect: { 'job_t.0': 'n1' },
      pending: [[1, false]],
    },
    {
      name: 'spread prefers the less loaded node',
      snapshot: { nodes: [node('n1', res(4, 8), res(3, 1)), node('n2', res(4, 8), res(1, 1))], queued: [task(0, res(1, 1))] },
      expect: { 'job_t.0': 'n2' },
    },
    {
      name: 'binpack prefers the fuller node',
      strategy: 'binpack',
      snapshot: { nodes: [node('n1', res(4, 8), res(2, 1)), node('n2', res(4, 8))], queued: [task(0, res(1, 1))] },
      expect: { 'job_t.0': 'n1' },
    },
    {
      name: 'a task bigger than every node is pending with never=true, and small tasks behind it still run (backfill)',
      snapshot: { nodes: [node('n1', res(2, 4))], queued: [task(0, res(16, 1)), task(1, res(1, 1))] },
      expect: { 'job_t.1': 'n1' },
      pending: [[0, true]],
    },
    {
      name: 'GPU tasks go only to GPU nodes',
      snapshot: { nodes: [node('cpu', res(16, 32)), node('gpu', res(4, 16, 1))], queued: [task(0, res(1, 1, 1)), task(1, res(1, 1, 1))] },
      expect: { 'job_t.0': 'gpu' },
      pending: [[1, false]],
    },
    {
      name: 'no nodes: never',
      snapshot: { nodes: [], queued: [task(0, res(1, 1))] },
      expect: {},
      pending: [[0, true]],
    },
    {
      name: 'fractional cpu packs four 0.5-core tasks on two cores',
      snapshot: { nodes: [node('n1', res(2, 8))], queued: [0, 1, 2, 3, 4].map((i) => task(i, { ...res(0, 1), cpuMillis: 500 })) },
      expect: { 'job_t.0': 'n1', 'job_t.1': 'n1', 'job_t.2': 'n1', 'job_t.3': 'n1' },
      pending: [[4, false]],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = run(c.snapshot, c.strategy);
      assert.deepEqual(Object.fromEntries(plan.assignments.map((a) => [a.taskId, a.nodeId])), c.expect);
      assert.deepEqual(plan.pending.map((p) => [Number(p.taskId.split('.')[1]), p.never]), c.pending ?? []);
    });
  }

  it('spread alternates between equal nodes', () => {
    const plan = run({ nodes: [node('n1', res(4, 8)), node('n2', res(4, 8))], queued: [0, 1, 2, 3].map((i) => task(i, res(1, 1))) });
    const on = plan.assignments.map((a) => a.nodeId);
    assert.equal(on.length, 4);
    assert.notEqual(on[0], on[1]);
    assert.notEqual(on[2], on[3]);
    assert.equal(on.filter((n) => n === 'n1').length, 2);
  });

  it('records a coded reason per node for a pending task', () => {
    const plan = run({ nodes: [node('small', res(1, 1)), node('busy', res(4, 8), res(4, 0))], queued: [task(0, res(2, 1))] });
    const p = plan.pending[0]!;
    assert.equal(p.never, false);
    assert.deepEqual(p.nodes.map((n) => [n.nodeId, n.code]), [['busy', 'insufficient_cpu'], ['small', 'exceeds_capacity']]);
    assert.match(p.nodes[1]!.message, /2 cores > 1/);
  });

  it('is deterministic: the same snapshot and seed give the same plan', () => {
    const nodes = Array.from({ length: 5 }, (_, i) => node(`n${i}`, res(4, 8)));
    const queued = Array.from({ length: 30 }, (_, i) => task(i, res(1, 1)));
    assert.deepEqual(run({ nodes, queued }), run({ nodes, queued }));
  });

  it('prefetches short tasks beyond capacity (about prefetchWindowMs of work per core), never long or unknown ones', () => {
    const short = (i: number): SchedulerTask => ({ ...task(i, res(1, 1)), typicalRunMs: 50 });
    const long = (i: number): SchedulerTask => ({ ...task(i, res(1, 1)), typicalRunMs: 60_000 });
    const nodes = [node('n1', res(2, 8))];
    const p1 = run({ nodes, queued: [0, 1, 2, 3, 4].map(short) });
    assert.deepEqual(p1.assignments.map((a) => a.prefetch), [false, false, true, true], '50 ms tasks: factor 2');
    assert.equal(p1.pending.length, 1);
    const tiny = run({ nodes, queued: Array.from({ length: 30 }, (_, i) => ({ ...task(i, res(1, 1)), typicalRunMs: 1 })) });
    assert.equal(tiny.assignments.length, 16, '1 ms tasks: capped at maxOvercommit 8');
    const p2 = run({ nodes, queued: [0, 1, 2].map(long) });
    assert.deepEqual(p2.assignments.map((a) => a.prefetch), [false, false]);
    const p3 = run({ nodes, queued: [0, 1, 2].map((i) => task(i, res(1, 1))) });
    assert.equal(p3.assignments.length, 2, 'unknown duration: no prefetch');
    const off = schedule({ nodes, queued: [0, 1, 2].map(short) }, { ...DEFAULT_SCHEDULER_CONFIG, maxOvercommit: 1 }, ctx());
    assert.equal(off.assignments.length, 2, 'maxOvercommit 1 turns prefetch off');
  });

  it('respects maxAssignments', () => {
    const plan = schedule({ nodes: [node('n1', res(100, 100))], queued: Array.from({ length: 50 }, (_, i) => task(i, res(1, 1))) }, { ...DEFAULT_SCHEDULER_CONFIG, maxAssignments: 7 }, ctx());
    assert.equal(plan.assignments.length, 7);
  });

  it('never over-commits a node, whatever the input (property check over random snapshots, prefetch off)', () => {
    const rng = seededRng(7);
    for (let round = 0; round < 200; round++) {
      const nodes = Array.from({ length: 1 + Math.floor(rng() * 4) }, (_, i) => node(`n${i}`, res(1 + Math.floor(rng() * 8), 1 + Math.floor(rng() * 16), Math.floor(rng() * 2))));
      const queued = Array.from({ length: Math.floor(rng() * 40) }, (_, i) => task(i, res(1 + Math.floor(rng() * 3), Math.floor(rng() * 4), rng() < 0.2 ? 1 : 0)));
      const plan = schedule({ nodes, queued }, { ...DEFAULT_SCHEDULER_CONFIG, maxOvercommit: 1 }, ctx());
      for (const n of nodes) {
        const mine = plan.assignments.filter((a) => a.nodeId === n.id).map((a) => queued.find((q) => q.taskId === a.taskId)!.resources);
        const cpu = mine.reduce((s, r) => s + r.cpuMillis, 0);
        const mem = mine.reduce((s, r) => s + r.memoryBytes, 0);
        const gpu = mine.reduce((s, r) => s + r.gpus, 0);
        assert.ok(cpu <= n.capacity.cpuMillis && mem <= n.capacity.memoryBytes && gpu <= n.capacity.gpus, `round ${round} over-commits ${n.id}`);
      }
      assert.equal(new Set(plan.assignments.map((a) => a.taskId)).size, plan.assignments.length);
    }
  });

  it('plans 10,000 queued tasks on 50 nodes quickly (shape skipping)', () => {
    const nodes = Array.from({ length: 50 }, (_, i) => node(`n${String(i).padStart(2, '0')}`, res(8, 32)));
    const queued = Array.from({ length: 10_000 }, (_, i) => task(i, res(1, 1)));
    const t0 = performance.now();
    const plan = run({ nodes, queued });
    const ms = performance.now() - t0;
    assert.equal(plan.assignments.length, 400);
    assert.equal(plan.pending.length, 1);
    assert.ok(ms < 1000, `took ${ms} ms`);
  });
});
