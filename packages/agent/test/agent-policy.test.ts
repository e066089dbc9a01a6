// The agent with a volunteer policy, against a test WebSocket server: the share limits cap what its hello offers
// (cores, memory, only the shared GPU, in capacity and facts) and tasks see only the shared GPU; its policy state
// is in the hello and every change goes out at once as a `policy` message (readings from FakePolicyReaders).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { compilePolicy, FakePolicyReaders, FakeProbe, NativeExecutor, startAgent } from '@dsg/agent';

const GiB = 1024 ** 3;
const facts = {
  hostname: 'desk', os: 'linux', arch: 'x64', cpuModel: 'c', cores: 8, memoryBytes: 16 * GiB, diskBytes: 1e9,
  gpus: [{ index: 0, model: 'A', memoryBytes: GiB, uuid: 'GPU-a' }, { index: 1, model: 'B', memoryBytes: GiB, uuid: 'GPU-b' }],
};

describe('agent with a volunteer policy', () => {
  let dir: string;
  let server: Server;
  let wss: WebSocketServer;
  let url: string;
  const frames: Array<Record<string, unknown>> = [];
  const conns: WebSocket[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-agent-policy-'));
    server = createServer();
    wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => {
      conns.push(ws);
      ws.on('message', (d) => {
        const parsed = JSON.parse(String(d)) as Record<string, unknown> | Array<Record<string, unknown>>;
        for (const msg of Array.isArray(parsed) ? parsed : [parsed]) {
          frames.push(msg);
          if (msg['type'] === 'hello') {
            ws.send(JSON.stringify({ type: 'welcome', nodeId: 'node_0000000000000000000000000b', heartbeatIntervalMs: 1000, coordinatorVersion: 't' }));
            ws.send(JSON.stringify({ type: 'assign', attempts: [{ attemptId: 'att_0000000000000000000000000b', attemptNumber: 1, jobId: 'job_1', jobName: 'j', taskId: 'job_1.0', taskIndex: 0, taskCount: 1, arrayValue: null, run: { kind: 'script', script: 'echo "gpu=$CUDA_VISIBLE_DEVICES $DSG_GPUS"' }, env: {}, inputs: [], outputs: [], timeoutMs: 10_000, resources: { cpuMillis: 1000, memoryBytes: 1, gpus: 1, diskBytes: 0 } }] }));
          }
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    for (const c of conns) c.terminate();
    await new Promise((r) => wss.close(r));
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });
  const waitFor = async (what: string, fn: () => boolean): Promise<void> => {
    for (let i = 0; i < 300 && !fn(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(fn(), `timed out waiting for ${what}: ${JSON.stringify(frames.map((f) => f['type']))}`);
  };

  it('offers only its share, reports its state in the hello and each change at once', async () => {
    const policy = compilePolicy({
      share: { cpus: 2, memory: '4Gi', gpus: ['GPU-b'] },
      idle: { minutes: 1, ownerCpuPercent: null },
      resumeAfterSeconds: 0, checkEverySeconds: 0.05,
    });
    const readers = new FakePolicyReaders();
    const agent = await startAgent(
      { coordinatorUrl: url, token: 't', stateDir: join(dir, 'state'), name: 'desk', cpus: 6, policy, baseEnv: { PATH: process.env['PATH']! } },
      { probe: new FakeProbe(facts), policyReaders: readers, executor: new NativeExecutor() },
    );
    try {
      await waitFor('hello', () => frames.some((f) => f['type'] === 'hello'));
      const hello = frames.find((f) => f['type'] === 'hello') as { capacity: { cpuMillis: number; memoryBytes: number; gpus: number }; facts: { gpus: Array<{ uuid: string }> }; policy: { state: string } };
      assert.deepEqual([hello.capacity.cpuMillis, hello.capacity.memoryBytes, hello.capacity.gpus], [2000, 4 * GiB, 1], 'the smaller of --cpus 6 and share.cpus 2; share.memory; one GPU');
      assert.deepEqual(hello.facts.gpus.map((g) => g.uuid), ['GPU-b'], 'only the shared GPU is this node\'s');
      assert.equal(hello.policy.state, 'working');
      await waitFor('the task\'s output', () => frames.some((f) => f['type'] === 'log' || f['type'] === 'finished'));
      await waitFor('finished', () => frames.some((f) => f['type'] === 'finished'));
      const out = frames.filter((f) => f['type'] === 'log').map((f) => f['data']).join('');
      assert.equal(out, 'gpu=GPU-b 1\n', 'the task is given the shared GPU (index 1), by uuid');

      readers.current = { ...readers.current, idleMs: 300 };
      await waitFor('policy: owner active', () => frames.some((f) => f['type'] === 'policy' && (f['policy'] as { state: string }).state === 'suspended:owner-active'));
      const p = frames.find((f) => f['type'] === 'policy')!['policy'] as { reason: string };
      assert.match(p.reason, /keyboard or mouse used 0s ago/);
      readers.current = { ...readers.current, idleMs: 120_000 };
      await waitFor('policy: working', () => frames.some((f) => f['type'] === 'policy' && (f['policy'] as { state: string }).state === 'working'));
      assert.equal(frames.filter((f) => f['type'] === 'policy').length, 2, 'one message per change, not per reading');
    } finally {
      await agent.stop();
    }
  });
});
