// The volunteer policy filter: a node whose owner's policy holds it back gets no work ("not now", coded node_policy),
// whatever its free capacity; prefetch does not slip past it; a job too big for it is still told "never".
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobId, NodeId, NodePolicyStatus, Resources, TaskId } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG, policyFilter, schedule, seededRng, viewOf, type SchedulerJob, type SchedulerNode } from '@dsg/scheduler';

const GiB = 1024 ** 3;
const res = (cpu: number, memGi: number): Resources => ({ cpuMillis: cpu * 1000, memoryBytes: memGi * GiB, gpus: 0, diskBytes: 0 });
const node = (id: string, policy?: NodePolicyStatus['state'], allocated = res(0, 0)): SchedulerNode => ({
  id: id as NodeId, name: id, capacity: res(4, 8), allocated, labels: {},
  ...(policy ? { policy: { state: policy, reason: `because ${policy}`, since: 0 } } : {}),
});
const job = (id: string, r = res(1, 1), n = 2, typicalRunMs: number | null = null): SchedulerJob => ({
  jobId: id as JobId, resources: r, typicalRunMs, seq: 0, queued: n, operatorOwned: true, // nodes here report no isolation
  tasks: Array.from({ length: n }, (_, i) => ({ taskId: `task_${id}_${i}` as TaskId, seq: i })),
});
const req = { resources: res(1, 1), constraints: [], prefer: [] };

describe('policy filter', () => {
  const table: Array<[string, NodePolicyStatus['state'] | undefined, string | null]> = [
    ['no policy', undefined, null],
    ['working', 'working', null],
    ['owner active', 'suspended:owner-active', 'node n is suspended: owner active (because suspended:owner-active)'],
    ['outside its window', 'outside-window', 'node n is outside its time window (because outside-window)'],
    ['on battery', 'on-battery', 'node n is on battery (because on-battery)'],
    ['too hot', 'too-hot', 'node n is too hot (because too-hot)'],
  ];
  for (const [name, state, message] of table)
    it(name, () => {
      const r = policyFilter.filter(req, viewOf(node('n', state)), res(0, 0), 1);
      assert.equal(policyFilter.verdict, 'busy');
      if (message === null) assert.equal(r, null);
      else assert.deepEqual(r, { nodeId: 'n', code: 'node_policy', message });
    });

  it('in the chain: work goes to the working node only; all held back: the job waits, "not now", saying why', () => {
    const ctx = { now: 0, rng: seededRng(1) };
    const plan = schedule({ nodes: [node('busyowner', 'suspended:owner-active'), node('free')], jobs: [job('a', res(1, 1), 3)] }, DEFAULT_SCHEDULER_CONFIG, ctx);
    assert.deepEqual(plan.assignments.map((a) => a.nodeId), ['free', 'free', 'free']);
    const held = schedule({ nodes: [node('n1', 'on-battery'), node('n2', 'too-hot')], jobs: [job('b', res(1, 1), 1, 10)] }, DEFAULT_SCHEDULER_CONFIG, ctx);
    assert.deepEqual(held.assignments, [], 'not even prefetched');
    assert.equal(held.pending[0]!.never, false);
    assert.deepEqual(held.pending[0]!.nodes.map((n) => n.code), ['node_policy', 'node_policy']);
    assert.match(held.pending[0]!.summary, /2 of 2 node\(s\) are held back by their owners' volunteer policies \(node n1 is on battery/);
    // Too big for the node: "never" still, whatever its owner does.
    const big = schedule({ nodes: [node('n1', 'suspended:owner-active')], jobs: [job('c', res(64, 1), 1)] }, DEFAULT_SCHEDULER_CONFIG, ctx);
    assert.equal(big.pending[0]!.never, true);
  });
});
