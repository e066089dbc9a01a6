import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { JobId, NodeId, Resources, TaskId } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG, estimatedStart, mayBackfill, schedule, seededRng, shortfall, type SchedulerJob, type SchedulerNode } from '@dsg/scheduler';

const GiB = 1024 ** 3;
const res = (cpu: number, memGi = 1): Resources => ({ cpuMillis: cpu * 1000, memoryBytes: memGi * GiB, gpus: 0, diskBytes: 0 });
const NOW = 1_000_000_000;
const node = (id: string, cores: number, used: number, releases?: SchedulerNode['releases']): SchedulerNode => ({
  id: id as NodeId, name: id, capacity: res(cores, 64), allocated: res(used, used), labels: {}, ...(releases ? { releases } : {}),
});
const job = (id: string, seq: number, n: number, r: Resources, extra: Partial<SchedulerJob> = {}): SchedulerJob => ({
  jobId: id as JobId, resources: r, typicalRunMs: null, seq, queued: n, operatorOwned: true, // nodes here report no isolation
  tasks: Array.from({ length: n }, (_, i) => ({ taskId: `${id}.${i}` as TaskId, seq: seq + i })), ...extra,
});
const ctx = { now: NOW, rng: seededRng(1) };
const CFG = { ...DEFAULT_SCHEDULER_CONFIG, reserveAfterMs: 60_000 };

describe('reservation helpers', () => {
  it('shortfall: 0 when it fits, else the largest missing fraction of capacity', () => {
    assert.equal(shortfall(res(2), res(8, 64), res(6, 6)), 0);
    assert.equal(shortfall(res(8), res(8, 64), res(6, 6)), 6 / 8);
    assert.equal(shortfall(res(16), res(8, 64), res(0, 0)), 1);
  });
  it('estimatedStart walks the running tasks\' latest ends until the task fits; null without them', () => {
    const n = node('n', 8, 7, [{ at: NOW + 50_000, resources: res(4, 4) }, { at: NOW + 20_000, resources: res(3, 3) }]);
    assert.equal(estimatedStart(res(4), n, n.allocated, NOW), NOW + 20_000);
    assert.equal(estimatedStart(res(8), n, n.allocated, NOW), NOW + 50_000);
    assert.equal(estimatedStart(res(8), node('m', 8, 7), res(7, 7), NOW), null);
    assert.equal(estimatedStart(res(1), node('m', 8, 7), res(7, 7), NOW), NOW);
  });
  it('mayBackfill only with a timeout that surely ends before the reserved start', () => {
    const r = { jobId: 'big', nodeIndex: 0, startAt: NOW + 60_000 };
    assert.equal(mayBackfill(r, 30_000, NOW), true);
    assert.equal(mayBackfill(r, 60_000, NOW), true);
    assert.equal(mayBackfill(r, 60_001, NOW), false);
    assert.equal(mayBackfill(r, null, NOW), false);
    assert.equal(mayBackfill({ ...r, startAt: null }, 1, NOW), false);
  });
});

describe('reservation in the pass', () => {
  const big = (waited: number) => job('big', 0, 1, res(8), { waitingSince: NOW - waited });
  const small = (extra: Partial<SchedulerJob> = {}) => job('small', 10, 5, res(1), extra);

  it('before the bounded wait, small work takes the free core (no reservation yet)', () => {
    const plan = schedule({ nodes: [node('n', 8, 7)], jobs: [big(30_000), small()] }, CFG, ctx);
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['small.0']);
  });

  it('after it, the node is reserved: small work without a proving timeout waits, and the big job says why', () => {
    const plan = schedule({ nodes: [node('n', 8, 7)], jobs: [big(120_000), small()] }, CFG, ctx);
    assert.deepEqual(plan.assignments, []);
    const r = plan.pending.find((p) => p.jobId === 'big')!;
    assert.match(r.summary, /waited 120 s: node n is reserved for it/);
  });

  it('backfill: a short job whose timeout ends before the reserved start may use the gap; a longer one may not', () => {
    const n = node('n', 8, 7, [{ at: NOW + 60_000, resources: res(7, 7) }]);
    const ok = schedule({ nodes: [n], jobs: [big(120_000), small({ timeoutMs: 30_000 })] }, CFG, ctx);
    assert.deepEqual(ok.assignments.map((a) => a.taskId), ['small.0']);
    const no = schedule({ nodes: [n], jobs: [big(120_000), small({ timeoutMs: 120_000 })] }, CFG, ctx);
    assert.deepEqual(no.assignments, []);
  });

  it('only the node closest to fitting is reserved: small work still uses the others', () => {
    const plan = schedule({ nodes: [node('a', 8, 7), node('b', 8, 2)], jobs: [big(120_000), small()] }, CFG, ctx);
    assert.ok(plan.assignments.length > 0 && plan.assignments.every((a) => a.nodeId === 'a'), JSON.stringify(plan.assignments));
  });

  it('property: a starving big job is eventually placed under a steady stream of small work; no over-commit', () => {
    fc.assert(fc.property(fc.integer(), (seed) => {
      const rng = seededRng(seed);
      let used = 0; // 1-core small tasks on one 8-core node
      const running: number[] = [];
      for (let round = 0; round < 200; round++) {
        const now = NOW + round * 10_000;
        const plan = schedule({ nodes: [node('n', 8, used)], jobs: [job('big', 0, 1, res(8), { waitingSince: NOW }), job('small', 10 + round, 20, res(1))] }, CFG, { now, rng: seededRng(round) });
        for (const a of plan.assignments) {
          if (a.taskId === 'big.0') return used === 0;
          used++; running.push(round);
        }
        if (used > 8) return false;
        for (let i = running.length - 1; i >= 0; i--) if (rng() < 0.3) { running.splice(i, 1); used--; }
      }
      return false; // starved
    }), { numRuns: 50 });
  });
});
