// A real agent (fake GPU probe, real task processes) against a fake coordinator that plans wrongly: it sends two
// tasks the same whole GPU, and a share beyond a GPU's memory. The agent gives a device out once, refuses the rest
// as a system failure naming the device, and every task sees only its own devices (a CPU task none).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Assignment, NodeFacts } from '@dsg/core';
import { FakeProbe, parseFakeGpus, startAgent, type RunningAgent } from '@dsg/agent';
import { startFakeCoordinator, type FakeCoordinator } from './fake-coordinator.js';

const GiB = 1024 ** 3;
const facts: NodeFacts = {
  hostname: 'h', os: 'linux test', arch: 'x64', cpuModel: 't', cores: 4, memoryBytes: 4 * GiB, diskBytes: 1e9,
  gpus: parseFakeGpus('2x24Gi:NVIDIA GeForce RTX 4090'),
};

describe('agent: GPU devices from the coordinator, checked', { timeout: 60_000 }, () => {
  let dir: string;
  let coordinator: FakeCoordinator;
  let agent: RunningAgent;
  const logs = new Map<string, string>();
  const ends = new Map<string, { kind: string; reason?: string; message?: string }>();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-agent-gpu-'));
    coordinator = await startFakeCoordinator({
      nodeId: 'node_0000000000000000000000000g',
      heartbeatIntervalMs: 1000,
      onMessage: (m) => {
        if (m['type'] === 'log') logs.set(String(m['attemptId']), (logs.get(String(m['attemptId'])) ?? '') + String(m['data']));
        else if (m['type'] === 'finished') ends.set(String(m['attemptId']), m['end'] as never);
      },
    });
    agent = await startAgent({ coordinatorUrl: coordinator.url, token: 't', stateDir: join(dir, 'state'), name: 'gpu', isolation: 'none' }, { probe: new FakeProbe(facts) });
    await agent.connected;
  });
  after(async () => {
    await agent.stop();
    await coordinator.close();
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  let n = 0;
  const assignment = (script: string, gpuDevices?: Assignment['gpuDevices'], gpus = 0): Assignment => {
    n++;
    return {
      attemptId: `att_${String(n).padStart(26, '0')}`, attemptNumber: 1, jobId: 'job_x', jobName: 'x', taskId: `task_${n}`, taskIndex: n, taskCount: 99,
      arrayValue: null, run: { kind: 'script', script }, env: {}, inputs: [], outputs: [], timeoutMs: 30_000,
      resources: { cpuMillis: 100, memoryBytes: 16 * 1024 ** 2, gpus, diskBytes: 0 }, ...(gpuDevices ? { gpuDevices } : {}),
    };
  };
  const done = async (id: string) => {
    const t0 = Date.now();
    while (!ends.has(id)) {
      if (Date.now() - t0 > 20_000) throw new Error(`${id} never finished`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return ends.get(id)!;
  };
  const show = 'echo "[$CUDA_VISIBLE_DEVICES][$DSG_GPUS][${DSG_GPU_MEMORY_BYTES:-}]"';

  it('gives a whole device once and refuses it to a second task while the first runs', async () => {
    const a = assignment(`sleep 1; ${show}`, [{ index: 0, memoryBytes: null }], 1);
    const b = assignment(show, [{ index: 0, memoryBytes: null }], 1);
    const c = assignment(show, [{ index: 1, memoryBytes: null }], 1);
    const cpu = assignment(show);
    coordinator.send({ type: 'assign', attempts: [a, b, c, cpu] });
    // a and b ask for the same whole device: whichever claims it first (their preparation is asynchronous) runs,
    // the other is refused and never runs.
    const [ea, eb] = [await done(a.attemptId), await done(b.attemptId)];
    const [ran, refused] = ea.kind === 'exited' ? [a, eb] : [b, ea];
    assert.deepEqual(ends.get(ran.attemptId), { kind: 'exited', exitCode: 0, signal: null });
    assert.equal(refused.kind, 'error');
    assert.match(refused.message ?? '', /refused GPU devices from the coordinator: GPU 0 is held whole by another task/);
    await done(c.attemptId);
    await done(cpu.attemptId);
    assert.equal(logs.get(ran.attemptId)?.trim(), '[GPU-fake-0][0][]');
    assert.equal(logs.get(c.attemptId)?.trim(), '[GPU-fake-1][1][]');
    assert.equal(logs.get(cpu.attemptId)?.trim(), '[][][]', 'a CPU task sees no GPU');
    assert.equal(logs.get((ran === a ? b : a).attemptId), undefined, 'the refused task never ran');
  });

  it('packs shares within a device\'s memory and refuses one beyond it, or a whole device under shares', async () => {
    const s = [1, 2, 3].map(() => assignment(`sleep 1; ${show}`, [{ index: 0, memoryBytes: 8 * GiB }]));
    const over = assignment(show, [{ index: 0, memoryBytes: 8 * GiB }]);
    const whole = assignment(show, [{ index: 0, memoryBytes: null }], 1);
    coordinator.send({ type: 'assign', attempts: [...s, over, whole] });
    // Four 8Gi shares of a 24Gi device: whichever three claim first (preparation is asynchronous) run together, the
    // fourth is refused; a whole-device claim under the shares is refused too.
    const shares = [...s, over];
    const endsOf = await Promise.all(shares.map((x) => done(x.attemptId)));
    const ran = shares.filter((_, i) => endsOf[i]!.kind === 'exited');
    const refused = endsOf.filter((e) => e.kind !== 'exited');
    assert.equal(ran.length, 3, JSON.stringify(endsOf));
    assert.equal(refused.length, 1);
    assert.match(refused[0]!.message ?? '', /GPU 0 has 0 bytes of memory free/);
    assert.match((await done(whole.attemptId)).message ?? '', /GPU 0 is shared by \d tasks/);
    for (const x of ran) assert.equal(logs.get(x.attemptId)?.trim(), `[GPU-fake-0][0][${8 * GiB}]`);
  });
});
