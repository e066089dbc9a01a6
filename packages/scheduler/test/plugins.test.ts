import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileConstraints, type Constraint, type Issue, type JobId, type NodeFacts, type NodeId, type Resources, type TaskId } from '@dsg/core';
import {
  capacityFilter,
  constraintsFilter,
  DEFAULT_SCHEDULER_CONFIG,
  freeFilter,
  preferScorer,
  schedule,
  seededRng,
  explainJob,
  viewOf,
  type PlacementRequest,
  type SchedulerJob,
  type SchedulerNode,
} from '@dsg/scheduler';

const GiB = 1024 ** 3;
const res = (cpu: number, memGi: number, gpus = 0): Resources => ({ cpuMillis: cpu * 1000, memoryBytes: memGi * GiB, gpus, diskBytes: 0 });
const facts = (over: Partial<NodeFacts> = {}): NodeFacts => ({
  hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'Xeon', cores: 8, memoryBytes: 32 * GiB, diskBytes: 100 * GiB, gpus: [], ...over,
});
const node = (id: string, labels: Record<string, string> = {}, f: NodeFacts = facts(), cap = res(8, 32)): SchedulerNode => ({
  id: id as NodeId, name: id, capacity: cap, allocated: res(0, 0), labels, facts: f,
});
const cons = (raw: Record<string, unknown>): Constraint[] => {
  const issues: Issue[] = [];
  const c = compileConstraints(raw, 'constraints', issues);
  assert.deepEqual(issues, []);
  return c;
};
const req = (constraints: Record<string, unknown> = {}, prefer: Record<string, unknown> = {}, r = res(1, 1)): PlacementRequest => ({
  resources: r, constraints: cons(constraints), prefer: cons(prefer),
});

describe('constraints: the language', () => {
  it('rejects bad conditions with their path', () => {
    const issues: Issue[] = [];
    compileConstraints({ 'bad key!': 'x', gpus: [], memory: '>= lots', os: { a: 1 } }, 'stages.a.constraints', issues);
    assert.deepEqual(issues.map((i) => i.path), ['stages.a.constraints.bad key!', 'stages.a.constraints.gpus', 'stages.a.constraints.memory', 'stages.a.constraints.os']);
  });
});

describe('constraints filter (never)', () => {
  const gpuNode = node('g', { room: 'lab2', 'software.lammps': '2024' }, facts({ arch: 'x64', gpus: [{ index: 0, model: 'RTX 4090', memoryBytes: 24 * GiB, uuid: null }, { index: 1, model: 'A100', memoryBytes: 80 * GiB, uuid: null }] }));
  const plain = node('p', { room: 'lab1' }, facts({ arch: 'arm64', os: 'darwin', memoryBytes: 8 * GiB }));
  const cases: Array<[string, Record<string, unknown>, boolean, boolean]> = [
    // [name, constraints, passes on gpuNode, passes on plain]
    ['equals a label', { room: 'lab2' }, true, false],
    ['one of', { room: ['lab1', 'lab3'] }, false, true],
    ['not equal', { os: '!darwin' }, true, false],
    ['label set', { 'software.lammps': '*' }, true, false],
    ['label not set', { 'software.lammps': '!*' }, false, true],
    ['fact arch', { arch: 'arm64' }, false, true],
    ['numeric ≥ on a fact', { 'gpu.count': '>= 2' }, true, false],
    ['size comparison', { memory: '>= 16Gi' }, true, false],
    ['less than', { 'cpu.cores': '< 16' }, true, true],
    ['gpu model: any of its GPUs', { 'gpu.model': 'A100' }, true, false],
    ['gpu memory (the largest)', { 'gpu.memory': '> 40Gi' }, true, false],
    ['a missing label never equals', { rack: '7' }, false, false],
    ['all must hold', { room: 'lab2', arch: 'arm64' }, false, false],
  ];
  for (const [name, c, onGpu, onPlain] of cases) {
    it(name, () => {
      assert.equal(constraintsFilter.filter(req(c), viewOf(gpuNode), res(0, 0), 1) === null, onGpu, 'gpu node');
      assert.equal(constraintsFilter.filter(req(c), viewOf(plain), res(0, 0), 1) === null, onPlain, 'plain node');
    });
  }
  it('says which condition failed and what the node has', () => {
    const r = constraintsFilter.filter(req({ room: 'lab2', arch: 'x64' }), viewOf(plain), res(0, 0), 1);
    assert.equal(r?.code, 'constraint_mismatch');
    assert.equal(r?.message, 'node p does not match room=lab2 (it has room=lab1), arch=x64 (it has arch=arm64)');
  });
  it('is a never-verdict, capacity too; free capacity is not-now', () => {
    assert.deepEqual([constraintsFilter.verdict, capacityFilter.verdict, freeFilter.verdict], ['never', 'never', 'busy']);
  });
});

describe('prefer scorer', () => {
  it('scores the fraction of preferences met', () => {
    const n = viewOf(node('a', { room: 'lab1', rack: '3' }));
    assert.equal(preferScorer.score(req({}, { room: 'lab1', rack: '4' }), n, res(0, 0)), 0.5);
    assert.equal(preferScorer.score(req({}, { room: 'lab1' }), n, res(0, 0)), 1);
    assert.equal(preferScorer.score(req({}, {}), n, res(0, 0)), 0);
  });
});

const job = (id: string, seq: number, n: number, opts: { constraints?: Record<string, unknown>; prefer?: Record<string, unknown>; r?: Resources } = {}): SchedulerJob => ({
  jobId: id as JobId, resources: opts.r ?? res(1, 1), typicalRunMs: null, seq, queued: n, operatorOwned: true,
  tasks: Array.from({ length: n }, (_, i) => ({ taskId: `${id}.${i}` as TaskId, seq: seq + i })),
  constraints: cons(opts.constraints ?? {}), prefer: cons(opts.prefer ?? {}),
});
const ctx = (seed = 1) => ({ now: 0, rng: seededRng(seed) });

describe('schedule with constraints and preferences', () => {
  it('places constrained tasks only on matching nodes; a job no node matches is "never", and does not block the next', () => {
    const nodes = [node('a', { room: 'lab1' }, facts(), res(2, 8)), node('b', { room: 'lab2' }, facts(), res(2, 8))];
    const plan = schedule({ nodes, jobs: [job('x', 0, 3, { constraints: { room: 'lab3' } }), job('y', 10, 3, { constraints: { room: 'lab2' } }), job('z', 20, 1)] }, DEFAULT_SCHEDULER_CONFIG, ctx());
    assert.deepEqual(plan.assignments.map((a) => [a.taskId, a.nodeId]), [['y.0', 'b'], ['y.1', 'b'], ['z.0', 'a']]);
    const x = plan.pending.find((p) => p.jobId === 'x');
    assert.equal(x?.never, true);
    assert.match(x!.summary, /no node in the grid matches its constraints .*room=lab3 \(it has room=lab1\)/);
    const y = plan.pending.find((p) => p.jobId === 'y');
    assert.equal(y?.never, false, 'y waits for room on b: not now');
  });
  it('two jobs of one shape but different constraints are judged apart (the skip cache keys on constraints)', () => {
    const nodes = [node('a', { room: 'lab1' }, facts(), res(1, 8))];
    const plan = schedule({ nodes, jobs: [job('x', 0, 1, { constraints: { room: 'lab2' } }), job('y', 1, 1, { constraints: { room: 'lab1' } })] }, DEFAULT_SCHEDULER_CONFIG, ctx());
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['y.0']);
  });
  it('prefers matching nodes while they have room, then uses the others', () => {
    const nodes = [node('a', { room: 'lab1' }, facts(), res(2, 8)), node('b', { room: 'lab2' }, facts(), res(2, 8))];
    const plan = schedule({ nodes, jobs: [job('x', 0, 4, { prefer: { room: 'lab2' } })] }, DEFAULT_SCHEDULER_CONFIG, ctx());
    assert.deepEqual(plan.assignments.map((a) => a.nodeId), ['b', 'b', 'a', 'a']);
  });
  it('parallelism caps a job\'s tasks on nodes, counting those already there; the rest wait "not now", and other jobs run', () => {
    const nodes = [node('a', {}, facts(), res(8, 32))];
    const capped: SchedulerJob = { ...job('x', 0, 6), parallelism: 3, active: 1 };
    const plan = schedule({ nodes, jobs: [capped, job('y', 10, 2)] }, DEFAULT_SCHEDULER_CONFIG, ctx());
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['x.0', 'x.1', 'y.0', 'y.1']);
    const x = plan.pending.find((p) => p.jobId === 'x');
    assert.equal(x?.never, false);
    assert.match(x!.summary, /throttled: parallelism 3 reached/);
    const full = schedule({ nodes, jobs: [{ ...job('x', 0, 6), parallelism: 2, active: 2 }] }, DEFAULT_SCHEDULER_CONFIG, ctx());
    assert.deepEqual(full.assignments, []);
    assert.match(full.pending[0]!.summary, /throttled: parallelism 2 reached \(2 of its tasks on nodes\)/);
  });
  it('a higher priority class goes first, whatever its queue position; within a class, first come first served', () => {
    const nodes = [node('a', {}, facts(), res(2, 8))];
    const plan = schedule({ nodes, jobs: [job('sweep', 0, 16), { ...job('small', 100, 1), priority: 2 }, { ...job('later', 200, 1), priority: 2 }] }, DEFAULT_SCHEDULER_CONFIG, ctx());
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['small.0', 'later.0']);
  });
  it('property: every placement satisfies its constraints, and no node is over-committed (500 random rounds)', () => {
    const rooms = ['lab1', 'lab2', 'lab3'];
    for (let round = 0; round < 500; round++) {
      const rnd = seededRng(round + 1);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const nodes = Array.from({ length: 1 + Math.floor(rnd() * 5) }, (_, i) =>
        node(`n${i}`, { room: pick(rooms) }, facts({ arch: pick(['x64', 'arm64']) }), res(1 + Math.floor(rnd() * 4), 4)));
      const jobs = Array.from({ length: 1 + Math.floor(rnd() * 6) }, (_, j) => {
        const c: Record<string, unknown> = {};
        if (rnd() < 0.5) c['room'] = pick(rooms);
        if (rnd() < 0.3) c['arch'] = pick(['x64', 'arm64', '!x64']);
        return job(`j${j}`, j * 100, 1 + Math.floor(rnd() * 5), { constraints: c, r: res(pick([0.5, 1, 2]), 1) });
      });
      const plan = schedule({ nodes, jobs }, DEFAULT_SCHEDULER_CONFIG, ctx(round));
      const used = new Map<string, number>();
      for (const a of plan.assignments) {
        const j = jobs.find((x) => a.taskId.startsWith(`${x.jobId}.`))!;
        const n = nodes.find((x) => x.id === a.nodeId)!;
        assert.equal(constraintsFilter.filter({ resources: j.resources, constraints: j.constraints!, prefer: [] }, viewOf(n), res(0, 0), 1), null, `round ${round}: ${a.taskId} on ${n.name}`);
        used.set(n.id, (used.get(n.id) ?? 0) + j.resources.cpuMillis);
      }
      for (const n of nodes) assert.ok((used.get(n.id) ?? 0) <= n.capacity.cpuMillis, `round ${round}: ${n.name} over-committed`);
      // Same snapshot, same seed → same plan.
      assert.deepEqual(schedule({ nodes, jobs }, DEFAULT_SCHEDULER_CONFIG, ctx(round)), plan);
    }
  });
});

describe('explain', () => {
  const nodes = [
    node('a', { room: 'lab1' }, facts(), res(2, 8)),
    { ...node('b', { room: 'lab2' }, facts(), res(2, 8)), allocated: res(2, 1) },
    node('c', { room: 'lab2' }, facts(), res(1, 8)),
  ];
  it('counts rejections per filter, each node at its first rejecting filter, and gives a verdict', () => {
    const x = explainJob(job('j', 0, 5, { constraints: { room: 'lab2' }, r: res(2, 1) }), nodes, DEFAULT_SCHEDULER_CONFIG);
    assert.equal(x.verdict, 'not_now');
    assert.deepEqual(x.filters.map((f) => [f.filter, f.rejected]), [['constraints', 1], ['isolation', 0], ['capacity', 1], ['gpu', 0], ['policy', 0], ['free', 1], ['gpu-free', 0]]);
    assert.deepEqual(x.nodes.map((n) => [n.name, n.verdict, n.filter]), [['a', 'never', 'constraints'], ['b', 'busy', 'free'], ['c', 'never', 'capacity']]);
  });
  it('never, placeable, throttled and no nodes', () => {
    assert.equal(explainJob(job('j', 0, 1, { constraints: { room: 'lab9' } }), nodes, DEFAULT_SCHEDULER_CONFIG).verdict, 'never');
    assert.equal(explainJob(job('j', 0, 1), nodes, DEFAULT_SCHEDULER_CONFIG).verdict, 'placeable');
    assert.equal(explainJob({ ...job('j', 0, 1), parallelism: 1, active: 1 }, nodes, DEFAULT_SCHEDULER_CONFIG).verdict, 'throttled');
    assert.equal(explainJob(job('j', 0, 1), [], DEFAULT_SCHEDULER_CONFIG).verdict, 'no_nodes');
  });
});
