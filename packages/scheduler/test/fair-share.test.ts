import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobId, NodeId, Resources, TaskId } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG, schedule, seededRng, type SchedulerJob, type SchedulerNode } from '@dsg/scheduler';

const GiB = 1024 ** 3;
const res = (cpu: number, memGi = 1): Resources => ({ cpuMillis: cpu * 1000, memoryBytes: memGi * GiB, gpus: 0, diskBytes: 0 });
const node = (id: string, cores: number, alloc = res(0, 0)): SchedulerNode => ({ id: id as NodeId, name: id, capacity: res(cores, 64), allocated: alloc, labels: {} });
const job = (id: string, project: string, seq: number, n: number, r = res(1)): SchedulerJob => ({
  // The operator's jobs (nodes in these tests report no isolation; see the isolation filter's own tests).
  jobId: id as JobId, project, resources: r, typicalRunMs: null, seq, queued: n, operatorOwned: true,
  tasks: Array.from({ length: n }, (_, i) => ({ taskId: `${id}.${i}` as TaskId, seq: seq + i })),
});
const projectOf = (taskId: string): string => taskId.split('-')[0]!;

describe('fair share between projects', () => {
  it('a project that submitted later is not starved behind a big sweep: placements alternate', () => {
    const plan = schedule({ nodes: [node('n', 4)], jobs: [job('physics-sweep', 'physics', 0, 100), job('bio-small', 'bio', 1000, 2)] }, DEFAULT_SCHEDULER_CONFIG, { now: 0, rng: seededRng(1) });
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['physics-sweep.0', 'bio-small.0', 'physics-sweep.1', 'bio-small.1']);
  });

  it('counts what projects already hold: the one holding less goes first', () => {
    const usage = new Map([['physics', res(3)]]);
    const plan = schedule({ nodes: [node('n', 4, res(3))], jobs: [job('physics-sweep', 'physics', 0, 10), job('bio-x', 'bio', 50, 10)], projectUsage: usage }, DEFAULT_SCHEDULER_CONFIG, { now: 0, rng: seededRng(1) });
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['bio-x.0']);
  });

  it('a higher priority class still goes first across projects', () => {
    const j = { ...job('bio-urgent', 'bio', 50, 3), priority: 3 };
    const plan = schedule({ nodes: [node('n', 3)], jobs: [job('physics-sweep', 'physics', 0, 10), j] }, DEFAULT_SCHEDULER_CONFIG, { now: 0, rng: seededRng(1) });
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['bio-urgent.0', 'bio-urgent.1', 'bio-urgent.2']);
  });

  for (const weights of [{}, { physics: 2 }, { physics: 1, bio: 3 }] as Array<Record<string, number>>) {
    it(`property: over a long simulated run each project's share converges to its weight (${JSON.stringify(weights)})`, () => {
      const rng = seededRng(7);
      const cores = 24;
      const running = new Map<string, number>([['physics', 0], ['bio', 0], ['chem', 0]]);
      const config = { ...DEFAULT_SCHEDULER_CONFIG, projectWeights: weights };
      const samples: Array<Map<string, number>> = [];
      for (let round = 0; round < 300; round++) {
        const busy = [...running.values()].reduce((a, b) => a + b, 0);
        const jobs = [...running.keys()].map((p, k) => job(`${p}-j${round}`, p, k * 10_000 + round, 40));
        const usage = new Map([...running].map(([p, n]) => [p, res(n, n)]));
        const plan = schedule({ nodes: [node('grid', cores, res(busy, busy))], jobs, projectUsage: usage }, config, { now: 0, rng: seededRng(round) });
        for (const a of plan.assignments) running.set(projectOf(a.taskId), running.get(projectOf(a.taskId))! + 1);
        assert.ok([...running.values()].reduce((a, b) => a + b, 0) <= cores, 'never over-committed');
        if (round > 50) samples.push(new Map(running));
        // Tasks end at random: each running task ends with probability 0.3 per round.
        for (const [p, n] of running) {
          let left = n;
          for (let i = 0; i < n; i++) if (rng() < 0.3) left--;
          running.set(p, left);
        }
      }
      const w = (p: string) => weights[p] ?? 1;
      const wsum = [...running.keys()].reduce((a, p) => a + w(p), 0);
      for (const p of running.keys()) {
        const mean = samples.reduce((a, m) => a + m.get(p)!, 0) / samples.length;
        const busy = samples.reduce((a, m) => a + [...m.values()].reduce((x, y) => x + y, 0), 0) / samples.length;
        const share = mean / busy;
        assert.ok(Math.abs(share - w(p) / wsum) < 0.05, `${p}: share ${share.toFixed(3)}, expected ${(w(p) / wsum).toFixed(3)}`);
      }
    });
  }
});
