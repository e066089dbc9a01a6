// The isolation filter, table-driven: what a job requires against what a node gives, and the rule that a node
// without isolation runs only the operator's jobs unless its operator opted in. Then through a whole pass: a
// submitter's job is placed on the sandboxed node only, and explain says why the others were refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isolationSatisfies, type IsolationRequirement, type JobId, type NodeFacts, type NodeId, type Resources, type TaskId } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG, explainJob, isolationFilter, schedule, seededRng, viewOf, type SchedulerJob, type SchedulerNode } from '@dsg/scheduler';

const GiB = 1024 ** 3;
const res = (cpu: number, mem = GiB): Resources => ({ cpuMillis: cpu * 1000, memoryBytes: mem, gpus: 0, diskBytes: 0 });
type Level = NonNullable<NodeFacts['isolation']>;
const node = (id: string, isolation: Level | undefined, allowUnisolatedJobs = false): SchedulerNode => ({
  id: id as NodeId, name: id, capacity: res(4, 8 * GiB), allocated: res(0, 0), labels: {},
  facts: { hostname: id, os: 'linux', arch: 'x64', cpuModel: 'x', cores: 4, memoryBytes: 8 * GiB, diskBytes: 0, gpus: [], ...(isolation ? { isolation } : {}), ...(allowUnisolatedJobs ? { allowUnisolatedJobs } : {}) },
});
const req = (isolation: IsolationRequirement | undefined, operatorOwned: boolean) => ({ resources: res(1), constraints: [], prefer: [], ...(isolation ? { isolation } : {}), operatorOwned });

describe('isolation filter', () => {
  const rows: Array<[string, Level | undefined, boolean, IsolationRequirement | undefined, boolean, string | null]> = [
    // name, node level, node opted in, job requires, operator's job, expected code
    ['any job on a sandboxed node', 'sandbox+cgroups', false, undefined, false, null],
    ['sandbox required, node has both', 'sandbox+cgroups', false, 'sandbox', false, null],
    ['cgroups required, node has both', 'sandbox+cgroups', false, 'cgroups', false, null],
    ['both required, node has both', 'sandbox+cgroups', false, 'sandbox+cgroups', false, null],
    ['sandbox required, node has cgroups only', 'cgroups', false, 'sandbox', false, 'isolation_too_weak'],
    ['cgroups required, node has sandbox only', 'sandbox', false, 'cgroups', true, 'isolation_too_weak'],
    ['both required, node has sandbox only', 'sandbox', false, 'sandbox+cgroups', false, 'isolation_too_weak'],
    ['sandbox required, node has none (even the operator)', 'none', true, 'sandbox', true, 'isolation_too_weak'],
    ['none required is no requirement', 'cgroups', false, 'none', false, null],
    ["a submitter's job on a node without isolation", 'none', false, undefined, false, 'unisolated_node'],
    ["a submitter's job on an older agent that reports nothing", undefined, false, undefined, false, 'unisolated_node'],
    ["the operator's job on a node without isolation", 'none', false, undefined, true, null],
    ["a submitter's job on a node without isolation whose operator opted in", 'none', true, undefined, false, null],
    ["a submitter's job on a cgroups-only node (limits enforced, no sandbox)", 'cgroups', false, undefined, false, null],
  ];
  for (const [name, level, optIn, required, operator, code] of rows) {
    it(name, () => {
      const r = isolationFilter.filter(req(required, operator), viewOf(node('n1', level, optIn)), res(0), 1);
      assert.equal(r?.code ?? null, code, r?.message);
      if (r) assert.match(r.message, /n1/);
    });
  }

  it('isolationSatisfies treats levels as sets of features, not a ladder', () => {
    assert.equal(isolationSatisfies('sandbox', 'cgroups'), false);
    assert.equal(isolationSatisfies('cgroups', 'sandbox'), false);
    assert.equal(isolationSatisfies('sandbox+cgroups', 'sandbox+cgroups'), true);
    assert.equal(isolationSatisfies(undefined, 'cgroups'), false);
    assert.equal(isolationSatisfies(undefined, undefined), true);
  });

  it("in a pass: a submitter's job goes only where it may, and explain names the filter", () => {
    const nodes = [node('bare', 'none'), node('limits', 'cgroups'), node('boxed', 'sandbox+cgroups')];
    const job: SchedulerJob = {
      jobId: 'job_s' as JobId, resources: res(1), typicalRunMs: null, seq: 1, queued: 6, operatorOwned: false, isolation: 'sandbox',
      tasks: Array.from({ length: 6 }, (_, i) => ({ taskId: `job_s.${i}` as TaskId, seq: 1 + i })),
    };
    const plan = schedule({ nodes, jobs: [job] }, DEFAULT_SCHEDULER_CONFIG, { now: 0, rng: seededRng(1) });
    assert.deepEqual(new Set(plan.assignments.map((a) => a.nodeId)), new Set(['boxed']));
    assert.equal(plan.assignments.length, 4, 'all four cores of the sandboxed node, none elsewhere');
    const x = explainJob(job, nodes, DEFAULT_SCHEDULER_CONFIG);
    assert.deepEqual(x.filters.find((f) => f.filter === 'isolation')?.rejected, 2);
    const bare = x.nodes.find((n) => n.name === 'bare');
    assert.equal(bare?.filter, 'isolation');
    assert.equal(bare?.verdict, 'never');
    assert.match(bare?.message ?? '', /isolates tasks with nothing; the job requires sandbox/);
  });
});
