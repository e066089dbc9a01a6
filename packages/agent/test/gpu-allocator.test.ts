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

describe('gpuEnv', () => {
  it('hands over the devices by uuid, and none to a task without GPUs', () => {
    assert.deepEqual(gpuEnv([g(1), g(3)]), { CUDA_VISIBLE_DEVICES: 'GPU-1,GPU-3', NVIDIA_VISIBLE_DEVICES: 'GPU-1,GPU-3', ROCR_VISIBLE_DEVICES: '', DSG_GPUS: '1,3' });
    assert.deepEqual(gpuEnv([]), { CUDA_VISIBLE_DEVICES: '', NVIDIA_VISIBLE_DEVICES: 'void', ROCR_VISIBLE_DEVICES: '', DSG_GPUS: '' });
    assert.deepEqual(gpuEnv([g(0, 'MI210', 64, 'amd')]), { CUDA_VISIBLE_DEVICES: '', NVIDIA_VISIBLE_DEVICES: 'void', ROCR_VISIBLE_DEVICES: 'GPU-0', DSG_GPUS: '0' });
  });
});
