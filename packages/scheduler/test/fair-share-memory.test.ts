import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { JobId, NodeId, Resources, TaskId } from '@dsg/core';
import {
  checkProjectLimits, decayedUsage, DEFAULT_SCHEDULER_CONFIG, dominantShare, normalizedHistory, schedule, seededRng,
  type SchedulerConfig, type SchedulerJob, type SchedulerNode, type Snapshot, type UsageRecord,
} from '@dsg/scheduler';

const GiB = 1024 ** 3;
const H = 3_600_000;
const res = (cpu: number, memGi = 1, gpus = 0): Resources => ({ cpuMillis: cpu * 1000, memoryBytes: memGi * GiB, gpus, diskBytes: 0 });
const node = (id: string, cores: number, alloc = res(0, 0), gpus = 0): SchedulerNode => ({ id: id as NodeId, name: id, capacity: res(cores, 64, gpus), allocated: alloc, labels: {} });
const job = (id: string, project: string, seq: number, n: number, r = res(1)): SchedulerJob => ({
  jobId: id as JobId, project, resources: r, typicalRunMs: null, seq, queued: n, operatorOwned: true, // nodes here report no isolation
  tasks: Array.from({ length: n }, (_, i) => ({ taskId: `${id}.${i}` as TaskId, seq: seq + i })),
});
const projectOf = (taskId: string): string => taskId.split('-')[0]!;
const ctx = (seed = 1) => ({ now: 0, rng: seededRng(seed) });

describe('decayed usage (fair share with memory)', () => {
  const one = res(1, 0);
  const cases: Array<[string, UsageRecord, number]> = [
    // ∫ 2^(-(now-t)/H) dt over [now-H, now] = H/ln2 × (1 − 1/2)
    ['ran for one half-life until now', { project: 'p', resources: one, startedAt: 10 * H - H, finishedAt: 10 * H }, (H / Math.LN2) * 0.5],
    ['still running, started one half-life ago', { project: 'p', resources: one, startedAt: 9 * H, finishedAt: null }, (H / Math.LN2) * 0.5],
    ['ran for one half-life, ended one half-life ago: counts half', { project: 'p', resources: one, startedAt: 8 * H, finishedAt: 9 * H }, (H / Math.LN2) * 0.25],
    ['a finish in the future (clock skew) is cut at now', { project: 'p', resources: one, startedAt: 9 * H, finishedAt: 11 * H }, (H / Math.LN2) * 0.5],
  ];
  for (const [name, rec, cpuMs] of cases)
    it(name, () => {
      const u = decayedUsage([rec], 10 * H, H).get('p')!;
      assert.ok(Math.abs(u.cpuMillis - 1000 * cpuMs) / (1000 * cpuMs) < 1e-9, `${u.cpuMillis} vs ${1000 * cpuMs}`);
    });

  it('an attempt that never ran (started = finished) is no use at all', () => {
    assert.equal(decayedUsage([{ project: 'p', resources: one, startedAt: 5, finishedAt: 5 }], 10, H).size, 0);
  });

  it('splitting a run into pieces gives the same usage (exact integral, not sampled)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 5 * H }), (pieces, len) => {
      const start = 10 * H - len - 1000;
      const whole = decayedUsage([{ project: 'p', resources: one, startedAt: start, finishedAt: start + len }], 10 * H, H).get('p')?.cpuMillis ?? 0;
      const step = len / pieces;
      const parts = Array.from({ length: pieces }, (_, i) => ({ project: 'p', resources: one, startedAt: start + i * step, finishedAt: start + (i + 1) * step }));
      const sum = decayedUsage(parts, 10 * H, H).get('p')?.cpuMillis ?? 0;
      return Math.abs(whole - sum) <= 1e-6 * Math.max(whole, 1);
    }));
  });

  it('dominant share takes the scarcest resource; history normalises to fractions summing to 1', () => {
    const total = res(100, 100, 4);
    assert.equal(dominantShare(res(10, 5, 1), total), 0.25);
    const h = normalizedHistory(new Map([['a', res(10, 0)], ['b', res(30, 0)]]), total);
    assert.deepEqual([...h].map(([p, f]) => [p, Number(f.toFixed(12))]), [['a', 0.25], ['b', 0.75]]);
    assert.equal(normalizedHistory(undefined, total).size, 0);
  });
});

describe('fair share remembers recent use', () => {
  it('with nothing running, the project that used the grid recently waits behind the one that did not', () => {
    const history = new Map([['physics', res(1000, 0)]]);
    const plan = schedule({ nodes: [node('n', 2)], jobs: [job('physics-a', 'physics', 0, 5), job('bio-b', 'bio', 100, 5)], projectHistory: history }, DEFAULT_SCHEDULER_CONFIG, ctx());
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['bio-b.0', 'bio-b.1']);
  });

  it('historyWeight 0 ignores history (current allocation only): FIFO across projects again', () => {
    const history = new Map([['physics', res(1000, 0)]]);
    const plan = schedule({ nodes: [node('n', 2)], jobs: [job('physics-a', 'physics', 0, 5), job('bio-b', 'bio', 100, 5)], projectHistory: history }, { ...DEFAULT_SCHEDULER_CONFIG, historyWeight: 0 }, ctx());
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['physics-a.0', 'bio-b.0']);
  });

  it('a heavier weight outweighs the same history', () => {
    const history = new Map([['physics', res(10, 0)], ['bio', res(10, 0)]]);
    const cfg: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG, projectWeights: { bio: 3 } };
    const plan = schedule({ nodes: [node('n', 1)], jobs: [job('physics-a', 'physics', 0, 5), job('bio-b', 'bio', 100, 5)], projectHistory: history }, cfg, ctx());
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['bio-b.0']);
  });
});

describe('per-project limits', () => {
  const cases: Array<[string, Parameters<typeof checkProjectLimits>, RegExp | null]> = [
    ['no limits', ['p', res(1), { tasks: 99, gpus: 9 }, undefined], null],
    ['under maxRunningTasks', ['p', res(1), { tasks: 1, gpus: 0 }, { maxRunningTasks: 2 }], null],
    ['at maxRunningTasks', ['p', res(1), { tasks: 2, gpus: 0 }, { maxRunningTasks: 2 }], /has 2 tasks on nodes, its maxRunningTasks is 2/],
    ['maxRunningTasks 0 stops the project', ['p', res(1), { tasks: 0, gpus: 0 }, { maxRunningTasks: 0 }], /maxRunningTasks is 0/],
    ['GPUs over maxGpus', ['p', res(1, 1, 2), { tasks: 0, gpus: 3 }, { maxGpus: 4 }], /holds 3 GPUs and this task needs 2, over its maxGpus of 4/],
    ['CPU-only task ignores maxGpus', ['p', res(1), { tasks: 0, gpus: 4 }, { maxGpus: 4 }], null],
  ];
  for (const [name, args, want] of cases)
    it(name, () => {
      const r = checkProjectLimits(...args);
      if (want === null) assert.equal(r, null);
      else assert.match(r ?? '', want);
    });

  it('the pass stops a project at maxRunningTasks with a coded reason; others use the room', () => {
    const cfg: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG, projectLimits: { physics: { maxRunningTasks: 3 } } };
    const snap: Snapshot = { nodes: [node('n', 16, res(1, 1))], jobs: [job('physics-a', 'physics', 0, 10), job('bio-b', 'bio', 100, 4)], projectActive: new Map([['physics', { tasks: 1, gpus: 0 }]]) };
    const plan = schedule(snap, cfg, ctx());
    const by = (p: string) => plan.assignments.filter((a) => projectOf(a.taskId) === p).length;
    assert.equal(by('physics'), 2);
    assert.equal(by('bio'), 4);
    const reason = plan.pending.find((p) => p.jobId === 'physics-a')!;
    assert.equal(reason.code, 'project_limit');
    assert.equal(reason.never, false);
    assert.match(reason.summary, /maxRunningTasks is 3/);
  });

  it('maxGpus caps GPU tasks of a project, not its CPU tasks', () => {
    const cfg: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG, projectLimits: { ml: { maxGpus: 2 } } };
    const snap: Snapshot = { nodes: [node('g', 32, res(0, 0), 8)], jobs: [job('ml-gpu', 'ml', 0, 5, res(1, 1, 1)), job('ml-cpu', 'ml', 10, 3)] };
    const plan = schedule(snap, cfg, ctx());
    assert.equal(plan.assignments.filter((a) => a.taskId.startsWith('ml-gpu')).length, 2);
    assert.equal(plan.assignments.filter((a) => a.taskId.startsWith('ml-cpu')).length, 3);
  });
});

// ── properties (fast-check) ──
const arbSnapshot = fc.record({
  nodes: fc.array(fc.record({ cores: fc.integer({ min: 1, max: 16 }), gpus: fc.integer({ min: 0, max: 4 }), used: fc.integer({ min: 0, max: 16 }) }), { minLength: 0, maxLength: 12 }),
  jobs: fc.array(fc.record({ project: fc.constantFrom('a', 'b', 'c'), cores: fc.integer({ min: 1, max: 8 }), gpus: fc.integer({ min: 0, max: 2 }), n: fc.integer({ min: 1, max: 20 }), priority: fc.integer({ min: 0, max: 3 }) }), { maxLength: 15 }),
  history: fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 1e6 })), { maxLength: 3 }),
  maxRunning: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
}).map(({ nodes, jobs, history, maxRunning }) => ({
  snapshot: {
    nodes: nodes.map((n, i) => node(`n${String(i).padStart(2, '0')}`, n.cores, res(Math.min(n.used, n.cores), 0), n.gpus)),
    jobs: jobs.map((j, i) => ({ ...job(`${j.project}-j${i}`, j.project, i * 100, j.n, res(j.cores, 1, j.gpus)), priority: j.priority })),
    projectHistory: new Map(history.map(([p, c]) => [p, res(c, 0)])),
  } satisfies Snapshot,
  config: { ...DEFAULT_SCHEDULER_CONFIG, ...(maxRunning !== undefined ? { projectLimits: { a: { maxRunningTasks: maxRunning } } } : {}) } satisfies SchedulerConfig,
}));

describe('properties', () => {
  it('the same snapshot and seed give the same plan', () => {
    fc.assert(fc.property(arbSnapshot, fc.integer(), ({ snapshot, config }, seed) => {
      assert.deepEqual(schedule(snapshot, config, ctx(seed)), schedule(snapshot, config, ctx(seed)));
    }), { numRuns: 200 });
  });

  it('no plan over-commits a node, and no project exceeds its maxRunningTasks', () => {
    fc.assert(fc.property(arbSnapshot, fc.integer(), ({ snapshot, config }, seed) => {
      const plan = schedule(snapshot, config, ctx(seed));
      const want = new Map(snapshot.jobs.flatMap((j) => j.tasks.map((t) => [t.taskId, j.resources] as const)));
      for (const n of snapshot.nodes) {
        let cpu = n.allocated.cpuMillis;
        let gpus = n.allocated.gpus;
        for (const a of plan.assignments) if (a.nodeId === n.id) { cpu += want.get(a.taskId)!.cpuMillis; gpus += want.get(a.taskId)!.gpus; }
        assert.ok(cpu <= n.capacity.cpuMillis && gpus <= n.capacity.gpus, `node ${n.id} over-committed`);
      }
      const lim = config.projectLimits?.['a']?.maxRunningTasks;
      if (lim !== undefined) assert.ok(plan.assignments.filter((a) => projectOf(a.taskId) === 'a').length <= lim);
    }), { numRuns: 300 });
  });

  it('over a long simulated run with decaying history, each project\'s use converges to its weight (±5 %)', () => {
    // 3 projects always have work; 24 cores; tasks end at random. Use is integrated over the run (what the history
    // term measures), so the projects' shares of core·rounds must approach weight / Σ weights.
    fc.assert(fc.property(fc.record({ a: fc.integer({ min: 1, max: 4 }), b: fc.integer({ min: 1, max: 4 }), c: fc.integer({ min: 1, max: 4 }) }), fc.integer(), (weights, seed) => {
      const rng = seededRng(seed);
      const cores = 24;
      const halfLife = 20; // rounds
      const config: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG, projectWeights: weights };
      const running = new Map<string, number>([['a', 0], ['b', 0], ['c', 0]]);
      const records: UsageRecord[] = [];
      const used = new Map<string, number>([['a', 0], ['b', 0], ['c', 0]]);
      for (let round = 0; round < 400; round++) {
        const busy = [...running.values()].reduce((x, y) => x + y, 0);
        const jobs = [...running.keys()].map((p, k) => job(`${p}-j${round}`, p, k * 10_000 + round, 30));
        const usage = new Map([...running].map(([p, n]) => [p, res(n, 0)]));
        const plan = schedule({ nodes: [node('grid', cores, res(busy, 0))], jobs, projectUsage: usage, projectHistory: decayedUsage(records, round, halfLife) }, config, { now: round, rng: seededRng(round) });
        for (const a of plan.assignments) running.set(projectOf(a.taskId), running.get(projectOf(a.taskId))! + 1);
        assert.ok([...running.values()].reduce((x, y) => x + y, 0) <= cores);
        for (const [p, n] of running) {
          if (n > 0) records.push({ project: p, resources: res(n, 0), startedAt: round, finishedAt: round + 1 });
          if (round >= 100) used.set(p, used.get(p)! + n);
          let left = n;
          for (let i = 0; i < n; i++) if (rng() < 0.3) left--;
          running.set(p, left);
        }
      }
      const wsum = weights.a + weights.b + weights.c;
      const total = [...used.values()].reduce((x, y) => x + y, 0);
      for (const p of ['a', 'b', 'c'] as const) {
        const share = used.get(p)! / total;
        assert.ok(Math.abs(share - weights[p] / wsum) < 0.05, `${p}: share ${share.toFixed(3)}, expected ${(weights[p] / wsum).toFixed(3)} (weights ${JSON.stringify(weights)})`);
      }
    }), { numRuns: 8 });
  });
});
