// The gpu filter: a job's GPU conditions (memory, model) against the GPUs a node offers. Table-driven; "never".
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GpuNeeds, NodeFacts, NodeId, Resources } from '@dsg/core';
import { explainJob, gpuFilter, DEFAULT_SCHEDULER_CONFIG, requestOf, schedule, seededRng, viewOf, type PlacementRequest, type SchedulerJob, type SchedulerNode } from '@dsg/scheduler';

const GiB = 1024 ** 3;
const gpu = (index: number, model: string, memGi: number): NodeFacts['gpus'][number] => ({ index, model, memoryBytes: memGi * GiB, uuid: `GPU-${index}` });
const node = (id: string, gpus: NodeFacts['gpus']): SchedulerNode => ({
  id: id as NodeId, name: id, labels: {},
  capacity: { cpuMillis: 8000, memoryBytes: 32 * GiB, gpus: gpus.length, diskBytes: 0 }, allocated: { cpuMillis: 0, memoryBytes: 0, gpus: 0, diskBytes: 0 },
  facts: { hostname: id, os: 'linux', arch: 'x64', cpuModel: 'x', cores: 8, memoryBytes: 32 * GiB, diskBytes: 0, gpus, isolation: 'sandbox+cgroups' },
});
const want = (count: number, needs?: GpuNeeds): PlacementRequest => ({
  resources: { cpuMillis: 1000, memoryBytes: GiB, gpus: count, diskBytes: 0 } as Resources, constraints: [], prefer: [], ...(needs ? { gpu: needs } : {}),
});

const workstation = node('ws', [gpu(0, 'NVIDIA GeForce RTX 4090', 24), gpu(1, 'NVIDIA GeForce RTX 3060', 12)]);
const server = node('srv', [gpu(0, 'NVIDIA A100-SXM4-80GB', 80), gpu(1, 'NVIDIA A100-SXM4-80GB', 80)]);
const none = node('cpu', []);

describe('gpu filter', () => {
  const table: Array<[string, SchedulerNode, PlacementRequest, string | null]> = [
    ['no GPUs asked: any node', none, want(0, { memoryBytes: 16 * GiB, models: null }), null],
    ['a count alone on a node without a GPU list is the capacity filter\'s to judge', none, want(1), null],
    ['more GPUs than the node has', workstation, want(3), 'gpu_count'],
    ['memory: one of two GPUs has 16Gi', workstation, want(1, { memoryBytes: 16 * GiB, models: null }), null],
    ['memory: two needed, one has it', workstation, want(2, { memoryBytes: 16 * GiB, models: null }), 'gpu_memory'],
    ['model by substring, any case', workstation, want(1, { memoryBytes: null, models: ['rtx 4090'] }), null],
    ['model alternatives', server, want(2, { memoryBytes: null, models: ['RTX 4090', 'A100'] }), null],
    ['model missing', workstation, want(1, { memoryBytes: null, models: ['A100', 'H100'] }), 'gpu_model'],
    ['model and memory together', workstation, want(1, { memoryBytes: 16 * GiB, models: ['3060'] }), 'gpu_memory'],
    ['no GPUs at all, a model asked', none, want(1, { memoryBytes: null, models: ['A100'] }), 'gpu_model'],
  ];
  for (const [name, n, r, code] of table) {
    it(name, () => {
      const got = gpuFilter.filter(requestOf({ jobId: 'j' as SchedulerJob['jobId'], resources: r.resources, typicalRunMs: null, seq: 0, queued: 1, tasks: [], ...(r.gpu ? { gpu: r.gpu } : {}) }), viewOf(n), n.allocated, 1);
      assert.equal(got?.code ?? null, code, JSON.stringify(got));
      if (got) assert.match(got.message, new RegExp(`^node ${n.id} (has \\d+ GPUs?.*, ${r.resources.gpus} needed \\(it has |reports no GPU devices)`));
    });
  }

  it('places a model-conditioned job only where the model is, and explains "never" elsewhere', () => {
    const job: SchedulerJob = {
      jobId: 'job_a' as SchedulerJob['jobId'], resources: { cpuMillis: 1000, memoryBytes: GiB, gpus: 1, diskBytes: 0 }, typicalRunMs: null, seq: 1, queued: 2,
      tasks: [{ taskId: 't1' as SchedulerJob['tasks'][number]['taskId'], seq: 1 }, { taskId: 't2' as SchedulerJob['tasks'][number]['taskId'], seq: 2 }],
      gpu: { memoryBytes: null, models: ['A100'] },
    };
    const plan = schedule({ nodes: [workstation, server, none], jobs: [job] }, DEFAULT_SCHEDULER_CONFIG, { now: 0, rng: seededRng(1) });
    assert.deepEqual(plan.assignments.map((a) => a.nodeId), ['srv', 'srv']);
    const x = explainJob({ ...job, gpu: { memoryBytes: null, models: ['H100'] } }, [workstation, server, none], DEFAULT_SCHEDULER_CONFIG);
    assert.equal(x.verdict, 'never');
    assert.deepEqual(x.filters.find((f) => f.filter === 'gpu')?.rejected, 2, 'the two GPU nodes; the CPU node fails capacity first');
  });

  it('two jobs that differ only in their GPU conditions are not taken for one shape', () => {
    const mk = (id: string, models: string[]): SchedulerJob => ({
      jobId: id as SchedulerJob['jobId'], resources: { cpuMillis: 1000, memoryBytes: GiB, gpus: 1, diskBytes: 0 }, typicalRunMs: null, seq: id === 'job_h' ? 1 : 2, queued: 1,
      tasks: [{ taskId: `${id}-t` as SchedulerJob['tasks'][number]['taskId'], seq: id === 'job_h' ? 1 : 2 }], gpu: { memoryBytes: null, models },
    });
    const plan = schedule({ nodes: [workstation], jobs: [mk('job_h', ['H100']), mk('job_r', ['4090'])] }, DEFAULT_SCHEDULER_CONFIG, { now: 0, rng: seededRng(1) });
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['job_r-t']);
    assert.equal(plan.pending.find((p) => p.jobId === 'job_h')?.never, true);
  });
});
