/**
 * Store conformance for GPU devices: applyPlan re-checks the devices a plan chose against what the node's active
 * attempts hold (a device held whole is never given twice, a device's memory never given out beyond its size, a
 * GPU job's plan must name devices), the node's device state survives a reopen (it is derived from the attempts),
 * finishing frees the devices, and the ledger charges devices (whole = 1, shared = its share of the memory).
 * Called by runStoreConformance.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileJobSpec, gpuDeviceUse, newAttemptId, newJobId, newNodeId, taskIdOf, type GpuGrant, type JobId, type NodeId } from '@dsg/core';
import type { Store, StorePolicy } from './store.js';
import type { StoreFactoryResult } from './conformance.js';

const GiB = 1024 ** 3;
const POLICY: StorePolicy = { maxSystemRetries: 2 };

export function runGpuConformance(name: string, make: () => Promise<StoreFactoryResult>): void {
  let clock = 1_900_000_000_000;
  const tick = (ms = 1000): number => (clock += ms);
  const job = async (s: Store, spec: Record<string, unknown>) => {
    const id = newJobId(tick());
    return s.createJob({ id, name: String(spec['name']), spec, compiled: compileJobSpec(spec), inputs: [], createdAt: clock, warnings: [] });
  };
  const gpuNode = async (s: Store): Promise<NodeId> => {
    const id = newNodeId(tick());
    const gpus = [0, 1].map((index) => ({ index, model: 'NVIDIA GeForce RTX 4090', memoryBytes: 24 * GiB, uuid: `GPU-${index}`, vendor: 'nvidia' as const }));
    await s.upsertNode({
      id, name: 'ws', capacity: { cpuMillis: 16000, memoryBytes: 64 * GiB, gpus: 2, diskBytes: 100 * GiB },
      facts: { hostname: 'ws', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 16, memoryBytes: 64 * GiB, diskBytes: 100 * GiB, gpus },
      labels: {}, agentVersion: 't', address: null, now: clock,
    });
    return id;
  };
  const plan = (s: Store, jobId: JobId, index: number, nodeId: NodeId, gpus?: GpuGrant[]) =>
    s.applyPlan([{ attemptId: newAttemptId(tick()), taskId: taskIdOf(jobId, index), nodeId, prefetch: false, ...(gpus ? { gpus } : {}) }], clock, { overcommit: 1 });

  describe(`Store conformance (GPU devices): ${name}`, () => {
    it('re-checks chosen devices, keeps the device state across a reopen, frees it on finish, charges devices', async () => {
      const f = await make();
      try {
        let s = f.store;
        await s.init();
        const n = await gpuNode(s);
        const excl = await job(s, { name: 'x', script: 'true', array: 3, resources: { gpus: 1 } });
        const shared = await job(s, { name: 's', script: 'true', array: 5, resources: { gpu: { memory: '8Gi', shared: true } } });
        const cpu = await job(s, { name: 'c', script: 'true' });

        // A GPU job's plan must name its devices; a CPU job's may not.
        assert.deepEqual((await plan(s, excl.id, 0, n)).rejected.map((r) => r.why), ['gpu_devices']);
        assert.deepEqual((await plan(s, cpu.id, 0, n, [{ index: 0, memoryBytes: null }])).rejected.map((r) => r.why), ['gpu_devices']);
        // An exclusive device is given once.
        const x0 = await plan(s, excl.id, 0, n, [{ index: 0, memoryBytes: null }]);
        assert.deepEqual(x0.created[0]!.gpuDevices, [{ index: 0, memoryBytes: null }]);
        assert.deepEqual((await plan(s, excl.id, 1, n, [{ index: 0, memoryBytes: null }])).rejected.map((r) => r.why), ['gpu_devices'], 'a stale plan naming a held device is dropped');
        assert.deepEqual((await plan(s, shared.id, 0, n, [{ index: 0, memoryBytes: 8 * GiB }])).rejected.map((r) => r.why), ['gpu_devices'], 'no share of a device held whole');
        assert.deepEqual((await plan(s, excl.id, 1, n, [{ index: 9, memoryBytes: null }])).rejected.map((r) => r.why), ['gpu_devices'], 'no unknown device');
        // Shares pack by memory: three 8Gi shares fit a 24Gi device, a fourth does not.
        const sh: string[] = [];
        for (let i = 0; i < 3; i++) {
          const r = await plan(s, shared.id, i, n, [{ index: 1, memoryBytes: 8 * GiB }]);
          assert.equal(r.created.length, 1, JSON.stringify(r.rejected));
          sh.push(r.created[0]!.id);
        }
        assert.deepEqual((await plan(s, shared.id, 3, n, [{ index: 1, memoryBytes: 8 * GiB }])).rejected.map((r) => r.why), ['gpu_devices'], 'never beyond the memory');
        assert.deepEqual((await plan(s, shared.id, 3, n, [{ index: 1, memoryBytes: GiB }])).rejected.map((r) => r.why), ['gpu_devices'], 'a share of another size than declared');
        // Two in one plan, on the same device: the second sees the first.
        const both = await s.applyPlan([1, 2].map((i) => ({ attemptId: newAttemptId(tick()), taskId: taskIdOf(excl.id, i), nodeId: n, prefetch: false, gpus: [{ index: 0, memoryBytes: null }] })), clock, { overcommit: 1 });
        assert.deepEqual(both.rejected.map((r) => r.why), ['gpu_devices', 'gpu_devices'], 'device 0 is held by x0');

        // The device state is derived from the attempts: the same after a reopen.
        const stateOf = async (st: Store) => {
          const u = (await st.listNodeUsage()).find((x) => x.node.id === n)!;
          return gpuDeviceUse(u.node.facts.gpus, u.gpuHeld);
        };
        const before = await stateOf(s);
        assert.deepEqual(before.map((d) => [d.index, d.exclusive, d.sharedBytes / GiB, d.sharedTasks]), [[0, true, 0, 0], [1, false, 24, 3]]);
        if (f.reopen) {
          s = await f.reopen();
          assert.deepEqual(await stateOf(s), before);
          assert.deepEqual((await s.listAttempts(taskIdOf(shared.id, 0)))[0]!.gpuDevices, [{ index: 1, memoryBytes: 8 * GiB }]);
        }

        // Finishing frees: x0 ends, device 0 can be given again. Ledger: x0 ran 10 s whole (10 GPU-s), a share 10 s (8/24 of it).
        const t0 = tick();
        await s.recordReports([{ attemptId: x0.created[0]!.id, at: t0 }, { attemptId: sh[0]! as never, at: t0 }], [], clock, POLICY);
        await s.recordReports([], [
          { attemptId: x0.created[0]!.id, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: t0, finishedAt: t0 + 10_000, outputs: [] },
          { attemptId: sh[0]! as never, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: t0, finishedAt: t0 + 10_000, outputs: [] },
        ], tick(), POLICY);
        assert.equal((await plan(s, excl.id, 1, n, [{ index: 0, memoryBytes: null }])).created.length, 1);
        const [row] = await s.ledger({ by: 'node' });
        assert.ok(Math.abs(row!.gpuMs - (10_000 + 10_000 * 8 / 24)) < 2, `GPU-ms ${row!.gpuMs}`);
      } finally {
        await f.cleanup();
      }
    });
  });
}
