// GPUs as devices in the scheduler: the device chooser (exclusive, shared best fit), the gpu / gpu-free filters
// ("never" vs "not now"), plans that carry their devices, and properties (fast-check): no device's memory is ever
// given out twice, no device held whole is given again, and no node is over-committed in cores, memory or GPUs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { addGpuGrants, checkGpuGrants, gpuDeviceUse, gpuRequestOf, type GpuDeviceUse, type GpuGrant, type GpuNeeds, type GpuRequest, type JobId, type NodeId, type Resources, type TaskId } from '@dsg/core';
import { chooseGpus, DEFAULT_SCHEDULER_CONFIG, explainJob, gpuFilter, gpuFreeFilter, requestOf, schedule, seededRng, viewOf, type SchedulerJob, type SchedulerNode } from '@dsg/scheduler';

const GiB = 1024 ** 3;
const dev = (index: number, memGi: number, model = 'NVIDIA GeForce RTX 4090'): { index: number; model: string; memoryBytes: number; uuid: string } => ({ index, model, memoryBytes: memGi * GiB, uuid: `GPU-${index}` });
const excl = (count: number, extra: Partial<GpuRequest> = {}): GpuRequest => ({ count, shared: false, memoryBytes: null, models: null, ...extra });
const shared = (count: number, memGi: number, extra: Partial<GpuRequest> = {}): GpuRequest => ({ count, shared: true, memoryBytes: memGi * GiB, models: null, ...extra });
const use = (gpus: ReturnType<typeof dev>[], held: GpuGrant[][] = []): GpuDeviceUse[] => gpuDeviceUse(gpus, held);

const res = (cores: number, gpus = 0): Resources => ({ cpuMillis: cores * 1000, memoryBytes: GiB, gpus, diskBytes: 0 });
const node = (id: string, gpus: ReturnType<typeof dev>[], held: GpuGrant[][] = [], allocated = res(0, held.filter((g) => g.some((x) => x.memoryBytes === null)).length)): SchedulerNode => ({
  id: id as NodeId, name: id, labels: {},
  capacity: { cpuMillis: 16000, memoryBytes: 64 * GiB, gpus: gpus.length, diskBytes: 0 }, allocated,
  facts: { hostname: id, os: 'linux', arch: 'x64', cpuModel: 'x', cores: 16, memoryBytes: 64 * GiB, diskBytes: 0, gpus, isolation: 'sandbox+cgroups' },
  gpuDevices: use(gpus, held),
});
const job = (id: string, n: number, r: Resources, gpu?: GpuNeeds, seq = 0): SchedulerJob => ({
  jobId: id as JobId, resources: r, typicalRunMs: null, seq, queued: n,
  tasks: Array.from({ length: n }, (_, i) => ({ taskId: `${id}-t${i}` as TaskId, seq: seq + i })), ...(gpu ? { gpu } : {}),
});
const ctx = (seed = 1) => ({ now: 0, rng: seededRng(seed) });

describe('chooseGpus', () => {
  const table: Array<[string, GpuDeviceUse[], GpuRequest, number[] | null]> = [
    ['exclusive: lowest free index', use([dev(0, 24), dev(1, 24)]), excl(1), [0]],
    ['exclusive: skips a device held whole', use([dev(0, 24), dev(1, 24)], [[{ index: 0, memoryBytes: null }]]), excl(1), [1]],
    ['exclusive: skips a shared device', use([dev(0, 24), dev(1, 24)], [[{ index: 1, memoryBytes: 8 * GiB }]]), excl(1), [0]],
    ['exclusive: none free', use([dev(0, 24)], [[{ index: 0, memoryBytes: 2 * GiB }]]), excl(1), null],
    ['exclusive: the smallest qualifying device first', use([dev(0, 80, 'A100'), dev(1, 24)]), excl(1), [1]],
    ['exclusive: memory condition', use([dev(0, 12), dev(1, 24)]), excl(1, { memoryBytes: 16 * GiB }), [1]],
    ['exclusive: model condition', use([dev(0, 24), dev(1, 80, 'NVIDIA A100-SXM4-80GB')]), excl(1, { models: ['a100'] }), [1]],
    ['exclusive: two of three', use([dev(0, 24), dev(1, 24), dev(2, 24)], [[{ index: 1, memoryBytes: null }]]), excl(2), [0, 2]],
    ['shared: best fit by free memory', use([dev(0, 24), dev(1, 24)], [[{ index: 1, memoryBytes: 8 * GiB }]]), shared(1, 8), [1]],
    ['shared: exactly full is allowed', use([dev(0, 24)], [[{ index: 0, memoryBytes: 16 * GiB }]]), shared(1, 8), [0]],
    ['shared: never beyond the memory', use([dev(0, 24)], [[{ index: 0, memoryBytes: 20 * GiB }]]), shared(1, 8), null],
    ['shared: never on a device held whole', use([dev(0, 24)], [[{ index: 0, memoryBytes: null }]]), shared(1, 1), null],
    ['shared: bigger than any device', use([dev(0, 24)]), shared(1, 30), null],
    ['shared: two devices', use([dev(0, 24), dev(1, 24), dev(2, 48)], [[{ index: 2, memoryBytes: 40 * GiB }]]), shared(2, 8), [2, 0]],
  ];
  for (const [name, devices, req, want] of table) {
    it(name, () => {
      const got = chooseGpus(devices, req);
      assert.deepEqual(got?.map((g) => g.index) ?? null, want);
      if (got) {
        assert.equal(checkGpuGrants(devices, got, req), null, 'what it chooses passes the check the store and agent make');
        for (const g of got) assert.equal(g.memoryBytes, req.shared ? req.memoryBytes : null);
      }
    });
  }
});

describe('checkGpuGrants (the store\'s and the agent\'s re-check)', () => {
  const d = use([dev(0, 24), dev(1, 24)], [[{ index: 0, memoryBytes: 20 * GiB }]]);
  const table: Array<[string, GpuGrant[], GpuRequest, RegExp | null]> = [
    ['a fitting share', [{ index: 1, memoryBytes: 8 * GiB }], shared(1, 8), null],
    ['too many grants', [{ index: 1, memoryBytes: null }, { index: 0, memoryBytes: null }], excl(1), /2 GPUs given, 1 asked for/],
    ['one device twice', [{ index: 1, memoryBytes: null }, { index: 1, memoryBytes: null }], excl(2), /given twice/],
    ['an unknown device', [{ index: 7, memoryBytes: null }], excl(1), /not one of this node's GPUs \(0, 1\)/],
    ['whole given for a share', [{ index: 1, memoryBytes: null }], shared(1, 8), /given whole, the task asked for a share/],
    ['a share of another size', [{ index: 1, memoryBytes: 1 }], shared(1, 8), /declared/],
    ['exclusive on a shared device', [{ index: 0, memoryBytes: null }], excl(1), /shared by 1 task/],
    ['a share beyond the memory', [{ index: 0, memoryBytes: 8 * GiB }], shared(1, 8), /bytes of memory free/],
  ];
  for (const [name, grants, req, err] of table) it(name, () => {
    const got = checkGpuGrants(d, grants, req);
    if (err === null) assert.equal(got, null);
    else assert.match(got ?? '', err);
  });
  it('a device held whole takes nothing more', () => {
    const held = use([dev(0, 24)], [[{ index: 0, memoryBytes: null }]]);
    assert.match(checkGpuGrants(held, [{ index: 0, memoryBytes: GiB }], shared(1, 1)) ?? '', /held whole/);
    assert.match(checkGpuGrants(held, [{ index: 0, memoryBytes: null }], excl(1)) ?? '', /held whole/);
  });
});

describe('gpu and gpu-free filters: never vs not now', () => {
  const req = (r: Resources, gpu?: GpuNeeds) => requestOf(job('j', 1, r, gpu));
  const table: Array<[string, SchedulerNode, ReturnType<typeof req>, string | null, string | null]> = [
    ['shared fits', node('a', [dev(0, 24)]), req(res(1), { memoryBytes: 8 * GiB, models: null, shared: true, count: 1 }), null, null],
    ['shared: no device has the memory (never)', node('a', [dev(0, 24)]), req(res(1), { memoryBytes: 30 * GiB, models: null, shared: true, count: 1 }), 'gpu_memory', null],
    ['shared: the device is full now (not now)', node('a', [dev(0, 24)], [[{ index: 0, memoryBytes: 20 * GiB }]]), req(res(1), { memoryBytes: 8 * GiB, models: null, shared: true, count: 1 }), null, 'gpu_busy'],
    ['shared: held whole now (not now)', node('a', [dev(0, 24)], [[{ index: 0, memoryBytes: null }]]), req(res(1), { memoryBytes: 8 * GiB, models: null, shared: true, count: 1 }), null, 'gpu_busy'],
    ['exclusive: the model is missing (never)', node('a', [dev(0, 24)]), req(res(1, 1), { memoryBytes: null, models: ['H100'] }), 'gpu_model', null],
    ['exclusive: too few GPUs (never)', node('a', [dev(0, 24)]), req(res(1, 2)), 'gpu_count', null],
    ['exclusive: the only device is shared now (not now)', node('a', [dev(0, 24)], [[{ index: 0, memoryBytes: GiB }]], res(0)), req(res(1, 1)), null, 'gpu_busy'],
    ['shared on a node without per-device state (never)', { ...node('a', [dev(0, 24)]), gpuDevices: undefined } as SchedulerNode, req(res(1), { memoryBytes: GiB, models: null, shared: true, count: 1 }), 'gpu_count', null],
  ];
  for (const [name, n, r, never, busy] of table) it(name, () => {
    const alloc = n.gpuDevices ? { ...n.allocated, gpuDevices: n.gpuDevices } : n.allocated;
    assert.equal(gpuFilter.filter(r, viewOf(n), alloc, 1)?.code ?? null, never);
    if (never === null) {
      assert.equal(gpuFreeFilter.filter(r, viewOf(n), alloc, 1)?.code ?? null, busy);
      assert.equal(gpuFreeFilter.fits!(r, viewOf(n), alloc, 1), busy === null, 'the fast path agrees');
    }
  });

  it('explains a model the grid lacks as never, a full device as not now', () => {
    const n = node('ws', [dev(0, 24), dev(1, 24)], [[{ index: 0, memoryBytes: null }], [{ index: 1, memoryBytes: null }]]);
    assert.equal(explainJob(job('m', 1, res(1, 1), { memoryBytes: null, models: ['A100'] }), [n], DEFAULT_SCHEDULER_CONFIG).verdict, 'never');
    const busy = explainJob(job('b', 1, res(1), { memoryBytes: 8 * GiB, models: null, shared: true, count: 1 }), [n], DEFAULT_SCHEDULER_CONFIG);
    assert.equal(busy.verdict, 'not_now');
    assert.match(busy.nodes[0]!.message ?? '', /has 0 of the 1 GPUs it needs free now .*0: held whole; 1: held whole/);
  });
});

describe('plans carry their devices', () => {
  it('packs shared tasks by memory (3 × 8Gi per 24Gi device), then waits, never beyond', () => {
    const n = node('ws', [dev(0, 24), dev(1, 24)]);
    const plan = schedule({ nodes: [n], jobs: [job('s', 8, res(1), { memoryBytes: 8 * GiB, models: null, shared: true, count: 1 })] }, DEFAULT_SCHEDULER_CONFIG, ctx());
    assert.equal(plan.assignments.length, 6);
    const per = new Map<number, number>();
    for (const a of plan.assignments) for (const g of a.gpus!) per.set(g.index, (per.get(g.index) ?? 0) + 1);
    assert.deepEqual([...per].sort(), [[0, 3], [1, 3]]);
    assert.equal(plan.assignments[0]!.gpus![0]!.index, plan.assignments[1]!.gpus![0]!.index, 'best fit: fills one device before the next');
    assert.equal(plan.pending[0]?.never, false);
    assert.match(plan.pending[0]!.summary, /busy/);
  });

  it('exclusive tasks get distinct devices; a shared job then finds none free', () => {
    const n = node('ws', [dev(0, 24), dev(1, 24)]);
    const plan = schedule({ nodes: [n], jobs: [job('x', 2, res(1, 1), undefined, 0), job('s', 1, res(1), { memoryBytes: GiB, models: null, shared: true, count: 1 }, 10)] }, DEFAULT_SCHEDULER_CONFIG, ctx());
    assert.deepEqual(plan.assignments.map((a) => [a.taskId, a.gpus?.map((g) => g.index)]), [['x-t0', [0]], ['x-t1', [1]]]);
    assert.equal(plan.pending.find((p) => p.jobId === 's')?.nodes[0]?.code, 'gpu_busy');
  });

  it('shared and exclusive jobs of otherwise equal shape are different shapes', () => {
    const n = node('ws', [dev(0, 24)], [[{ index: 0, memoryBytes: 4 * GiB }]], res(0));
    const plan = schedule({ nodes: [n], jobs: [job('x', 1, res(1, 1), undefined, 0), job('s', 1, res(1, 0), { memoryBytes: 4 * GiB, models: null, shared: true, count: 1 }, 10)] }, DEFAULT_SCHEDULER_CONFIG, ctx());
    assert.deepEqual(plan.assignments.map((a) => a.taskId), ['s-t0']);
  });
});

// ── properties (fast-check) ──
const arbGrid = fc.record({
  nodes: fc.array(fc.record({
    cores: fc.integer({ min: 1, max: 16 }),
    devices: fc.array(fc.constantFrom(12, 24, 48, 80), { maxLength: 4 }),
    held: fc.array(fc.tuple(fc.nat(3), fc.option(fc.integer({ min: 1, max: 30 }), { nil: null })), { maxLength: 4 }),
  }), { maxLength: 6 }),
  jobs: fc.array(fc.record({
    cores: fc.integer({ min: 1, max: 4 }),
    kind: fc.constantFrom('none', 'exclusive', 'shared'),
    count: fc.integer({ min: 1, max: 3 }),
    memGi: fc.integer({ min: 1, max: 40 }),
    model: fc.option(fc.constantFrom('4090', 'A100'), { nil: null }),
    n: fc.integer({ min: 1, max: 12 }),
  }), { maxLength: 8 }),
}).map(({ nodes, jobs }) => {
  const models = ['NVIDIA GeForce RTX 4090', 'NVIDIA A100-SXM4-80GB'];
  const snapNodes = nodes.map((spec, i) => {
    const gpus = spec.devices.map((m, k) => dev(k, m, models[(i + k) % 2]));
    // Start from a consistent state: keep only the held grants that fit (as the store would have).
    let devices = use(gpus);
    const held: GpuGrant[][] = [];
    for (const [idx, memGi] of spec.held) {
      const g: GpuGrant = { index: idx, memoryBytes: memGi === null ? null : memGi * GiB };
      const r: GpuRequest = g.memoryBytes === null ? excl(1) : shared(1, memGi!);
      if (checkGpuGrants(devices, [g], r) !== null) continue;
      devices = addGpuGrants(devices, [g]);
      held.push([g]);
    }
    const whole = held.filter((h) => h[0]!.memoryBytes === null).length;
    return node(`n${i}`, gpus, held, { cpuMillis: 0, memoryBytes: 0, gpus: whole, diskBytes: 0 });
  });
  const snapJobs = jobs.map((j, i) => {
    const gpu: GpuNeeds | undefined = j.kind === 'shared' ? { memoryBytes: j.memGi * GiB, models: j.model ? [j.model] : null, shared: true, count: j.count }
      : j.kind === 'exclusive' && j.model ? { memoryBytes: null, models: [j.model] } : undefined;
    return job(`j${i}`, j.n, { cpuMillis: j.cores * 1000, memoryBytes: GiB, gpus: j.kind === 'exclusive' ? j.count : 0, diskBytes: 0 }, gpu, i * 100);
  });
  return { nodes: snapNodes, jobs: snapJobs };
});

describe('properties', () => {
  it('no device memory is over-committed, no device held whole is given twice, no node over its cores, memory or GPUs', () => {
    fc.assert(fc.property(arbGrid, fc.integer(), (snap, seed) => {
      const plan = schedule(snap, DEFAULT_SCHEDULER_CONFIG, ctx(seed));
      const jobOf = new Map(snap.jobs.flatMap((j) => j.tasks.map((t) => [t.taskId, j] as const)));
      for (const n of snap.nodes) {
        let devices = n.gpuDevices!;
        let cpu = n.allocated.cpuMillis;
        let mem = n.allocated.memoryBytes;
        let gpus = n.allocated.gpus;
        for (const a of plan.assignments) {
          if (a.nodeId !== n.id) continue;
          const j = jobOf.get(a.taskId)!;
          const req = gpuRequestOf(j.resources, j.gpu);
          cpu += j.resources.cpuMillis;
          mem += j.resources.memoryBytes;
          gpus += j.resources.gpus;
          if (req === null) {
            assert.equal(a.gpus, undefined, 'a task without GPUs gets no device');
            continue;
          }
          assert.ok(a.gpus, `${a.taskId} asked for GPUs and got no devices`);
          // Each grant, in plan order, must pass the same check the store applies: this is "never twice".
          assert.equal(checkGpuGrants(devices, a.gpus, req), null, `${a.taskId} on ${n.id}`);
          devices = addGpuGrants(devices, a.gpus);
        }
        assert.ok(cpu <= n.capacity.cpuMillis && mem <= n.capacity.memoryBytes && gpus <= n.capacity.gpus, `node ${n.id} over-committed`);
        for (const d of devices) {
          assert.ok(d.sharedBytes <= d.memoryBytes, `GPU ${d.index} of ${n.id}: ${d.sharedBytes} > ${d.memoryBytes}`);
          assert.ok(!(d.exclusive && d.sharedTasks > 0), `GPU ${d.index} of ${n.id} is both held whole and shared`);
        }
      }
    }), { numRuns: 400 });
  });

  it('the same snapshot and seed give the same devices', () => {
    fc.assert(fc.property(arbGrid, fc.integer(), (snap, seed) => {
      assert.deepEqual(schedule(snap, DEFAULT_SCHEDULER_CONFIG, ctx(seed)), schedule(snap, DEFAULT_SCHEDULER_CONFIG, ctx(seed)));
    }), { numRuns: 100 });
  });
});
