// explain's estimate: a job waiting for room starts by the earliest moment enough running tasks must have ended.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeId, Resources } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG, explainJob, type SchedulerJob, type SchedulerNode } from '@dsg/scheduler';

const GiB = 1024 ** 3;
const r = (cpu: number): Resources => ({ cpuMillis: cpu * 1000, memoryBytes: GiB, gpus: 0, diskBytes: 0 });
const node = (id: string, releases?: SchedulerNode['releases']): SchedulerNode => ({
  id: id as NodeId, name: id, labels: {}, capacity: { cpuMillis: 4000, memoryBytes: 16 * GiB, gpus: 0, diskBytes: 0 }, allocated: { cpuMillis: 4000, memoryBytes: 4 * GiB, gpus: 0, diskBytes: 0 },
  facts: { hostname: id, os: 'linux', arch: 'x64', cpuModel: 'x', cores: 4, memoryBytes: 16 * GiB, diskBytes: 0, gpus: [], isolation: 'sandbox+cgroups' },
  ...(releases ? { releases } : {}),
});
const job: SchedulerJob = { jobId: 'job_w' as SchedulerJob['jobId'], resources: r(2), typicalRunMs: null, seq: 1, queued: 1, tasks: [] };

describe('explain: start by', () => {
  it('is the earliest node where enough running tasks end by their timeouts', () => {
    const a = node('a', [{ at: 5_000, resources: r(1) }, { at: 9_000, resources: r(1) }, { at: 20_000, resources: r(2) }]);
    const b = node('b', [{ at: 7_000, resources: r(2) }, { at: 30_000, resources: r(2) }]);
    const x = explainJob(job, [a, b], DEFAULT_SCHEDULER_CONFIG, undefined, 1_000);
    assert.equal(x.verdict, 'not_now');
    assert.equal(x.startBy, 7_000, 'b frees 2 cores at 7 s; a needs until 9 s');
  });
  it('is null without estimates, and for a job that is not waiting for room', () => {
    assert.equal(explainJob(job, [node('a')], DEFAULT_SCHEDULER_CONFIG, undefined, 1_000).startBy, null);
    const idle = { ...node('c'), allocated: { cpuMillis: 0, memoryBytes: 0, gpus: 0, diskBytes: 0 } };
    assert.equal(explainJob(job, [idle], DEFAULT_SCHEDULER_CONFIG, undefined, 1_000).startBy, null);
  });
});
