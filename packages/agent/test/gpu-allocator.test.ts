// The agent's GPU allocator: whole devices, never one to two tasks, waiting in arrival order, conditions honoured.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GpuAllocator, gpuEnv, type Gpu } from '@dsg/agent';

const GiB = 1024 ** 3;
const g = (index: number, model = 'NVIDIA GeForce RTX 4090', memGi = 24, vendor: 'nvidia' | 'amd' = 'nvidia'): Gpu => ({ index, model, memoryBytes: memGi * GiB, uuid: `GPU-${index}`, vendor });

describe('GpuAllocator', () => {
  it('gives each task whole GPUs no other task holds, lowest indexes first, and frees them on release', async () => {
    const a = new GpuAllocator([g(0), g(1), g(2)]);
    assert.deepEqual((await a.acquire('t1', 2)).map((x) => x.index), [0, 1]);
    assert.deepEqual((await a.acquire('t2', 1)).map((x) => x.index), [2]);
    let third: number[] | null = null;
    const waiting = a.acquire('t3', 2).then((x) => (third = x.map((y) => y.index)));
    await new Promise((r) => setImmediate(r));
    assert.equal(third, null, 'waits: only none free');
    a.release('t2');
    await new Promise((r) => setImmediate(r));
    assert.equal(third, null, 'one free is not two');
    a.release('t1');
    await waiting;
    assert.deepEqual(third, [0, 1]);
    assert.deepEqual(a.holding('t3').map((x) => x.index), [0, 1]);
  });

  it('serves waiters in arrival order: a small request does not overtake a big one', async () => {
    const a = new GpuAllocator([g(0), g(1)]);
    await a.acquire('hold', 1);
    const order: string[] = [];
    const big = a.acquire('big', 2).then(() => order.push('big'));
    const small = a.acquire('small', 1).then(() => order.push('small'));
    a.release('hold');
    await big;
    a.release('big');
    await small;
    assert.deepEqual(order, ['big', 'small']);
  });

  it('honours memory and model, and refuses at once what this node can never give', async () => {
    const a = new GpuAllocator([g(0, 'NVIDIA GeForce RTX 3060', 12), g(1, 'NVIDIA GeForce RTX 4090', 24)]);
    assert.deepEqual((await a.acquire('m', 1, { memoryBytes: 16 * GiB, models: null })).map((x) => x.index), [1]);
    await assert.rejects(a.acquire('x', 1, { memoryBytes: null, models: ['A100'] }), /this node has 0 GPUs with A100 it may share, 1 needed/);
    await assert.rejects(a.acquire('y', 3), /has 2 GPUs .* 3 needed/);
  });

  it('a cancelled waiter is dropped and holds nothing', async () => {
    const a = new GpuAllocator([g(0)]);
    await a.acquire('hold', 1);
    const w = a.acquire('w', 1);
    a.abandon('w', 'cancelled');
    await assert.rejects(w, /cancelled/);
    a.release('hold');
    assert.deepEqual((await a.acquire('next', 1)).map((x) => x.index), [0]);
  });
});

describe('GpuAllocator.claim: the coordinator\'s devices, checked (a rogue plan must not double-book)', () => {
  it('gives the named devices whole, and refuses a device another live task holds whole', async () => {
    const a = new GpuAllocator([g(0), g(1)]);
    assert.deepEqual((await a.claim('t1', [{ index: 1, memoryBytes: null }])).map((x) => x.index), [1]);
    await assert.rejects(a.claim('t2', [{ index: 1, memoryBytes: null }]), /refused GPU devices from the coordinator: GPU 1 is held whole by another task/);
    await assert.rejects(a.claim('t3', [{ index: 1, memoryBytes: GiB }]), /held whole/, 'no share of a device held whole');
    assert.deepEqual(a.holding('t2'), [], 'a refused claim holds nothing');
  });

  it('packs shares by memory and refuses one beyond the device\'s memory, or a whole device under shares', async () => {
    const a = new GpuAllocator([g(0)]);
    for (const k of ['s1', 's2', 's3']) await a.claim(k, [{ index: 0, memoryBytes: 8 * GiB }]);
    await assert.rejects(a.claim('s4', [{ index: 0, memoryBytes: 8 * GiB }]), /has 0 bytes of memory free/);
    await assert.rejects(a.claim('x', [{ index: 0, memoryBytes: null }]), /shared by 3 tasks/);
    a.release('s2');
    assert.deepEqual((await a.claim('s4', [{ index: 0, memoryBytes: 8 * GiB }])).map((x) => x.index), [0]);
  });

  it('refuses malformed or unknown devices, naming what was wrong', async () => {
    const a = new GpuAllocator([g(0), g(1)]);
    for (const [bad, why] of [
      [[], /1 to 64 devices/], [[{ index: -1, memoryBytes: null }], /bad device index -1/], [[{ index: 0, memoryBytes: 0 }], /bad GPU memory 0/],
      [[{ index: 0, memoryBytes: null }, { index: 1, memoryBytes: GiB }], /mixed whole and shared/], [[{ index: 5, memoryBytes: null }], /GPU 5 is not one of this node's GPUs \(0, 1\)/],
      [[{ index: 0, memoryBytes: null }, { index: 0, memoryBytes: null }], /given twice/], [[{ index: 0, memoryBytes: 100 * GiB }], /does not have at least 100Gi of memory/],
    ] as const) await assert.rejects(a.claim('k', bad as never), why, JSON.stringify(bad));
  });

  it('waits for a holder that is being stopped (the coordinator already counted its end), then takes the device', async () => {
    const a = new GpuAllocator([g(0)]);
    await a.claim('old', [{ index: 0, memoryBytes: null }]);
    a.abandon('old', 'cancelled'); // its process is being killed
    let got: number[] | null = null;
    const next = a.claim('new', [{ index: 0, memoryBytes: null }]).then((x) => (got = x.map((y) => y.index)));
    await new Promise((r) => setImmediate(r));
    assert.equal(got, null, 'waits while the old process lives');
    a.release('old');
    await next;
    assert.deepEqual(got, [0]);
  });

  it('legacy acquire does not take a shared device', async () => {
    const a = new GpuAllocator([g(0), g(1)]);
    await a.claim('s', [{ index: 0, memoryBytes: GiB }]);
    assert.deepEqual((await a.acquire('x', 1)).map((x) => x.index), [1]);
  });
});

describe('gpuEnv', () => {
  it('hands over the devices by uuid, and none to a task without GPUs', () => {
    assert.deepEqual(gpuEnv([g(1), g(3)]), { CUDA_VISIBLE_DEVICES: 'GPU-1,GPU-3', NVIDIA_VISIBLE_DEVICES: 'GPU-1,GPU-3', ROCR_VISIBLE_DEVICES: '', DSG_GPUS: '1,3' });
    assert.deepEqual(gpuEnv([]), { CUDA_VISIBLE_DEVICES: '', NVIDIA_VISIBLE_DEVICES: 'void', ROCR_VISIBLE_DEVICES: '', DSG_GPUS: '' });
    assert.deepEqual(gpuEnv([g(0, 'MI210', 64, 'amd')]), { CUDA_VISIBLE_DEVICES: '', NVIDIA_VISIBLE_DEVICES: 'void', ROCR_VISIBLE_DEVICES: 'GPU-0', DSG_GPUS: '0' });
    assert.equal(gpuEnv([g(2)], 8 * GiB).DSG_GPU_MEMORY_BYTES, String(8 * GiB), 'a shared GPU tells the task its declared memory');
  });
});
