// Reports that keep company (agent.ts, Delivery): a `finished` waits while prefetched tasks still wait for a core
// (until half of those seen waiting have started),
// a `started` while another attempt is in progress, each at most HOLD_MS; a lone task's reports go out at once.
// Against a test WebSocket server that records every frame and when it arrived.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { HOLD_MS, startAgent, FakeExecutor, FakeProbe } from '@dsg/agent';

const facts = { hostname: 'fake', os: 'linux', arch: 'x64', cpuModel: 'c', cores: 2, memoryBytes: 4 * 1024 ** 3, diskBytes: 1e9, gpus: [] };
const attemptId = (n: number): string => `att_${String(n).padStart(26, '0')}`;
const assignment = (n: number) => ({
  attemptId: attemptId(n), attemptNumber: 1, jobId: 'job_1', jobName: 'j', taskId: `job_1.${n}`, taskIndex: n, taskCount: 8, arrayValue: null,
  run: { kind: 'command', argv: ['x'] }, env: {}, inputs: [], outputs: [], timeoutMs: 60_000,
  resources: { cpuMillis: 1000, memoryBytes: 1, gpus: 0, diskBytes: 0 },
});

interface Frame { readonly at: number; readonly msgs: Array<Record<string, unknown>> }

describe('reports that keep company', () => {
  let dir: string;
  let server: Server;
  let wss: WebSocketServer;
  let url: string;
  let frames: Frame[] = [];
  let onHello: (ws: WebSocket) => void = () => undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-agent-hold-'));
    server = createServer();
    wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => {
      ws.on('message', (d) => {
        const parsed = JSON.parse(String(d)) as Record<string, unknown> | Array<Record<string, unknown>>;
        const msgs = Array.isArray(parsed) ? parsed : [parsed];
        frames.push({ at: Date.now(), msgs });
        if (msgs.some((m) => m['type'] === 'hello')) {
          ws.send(JSON.stringify({ type: 'welcome', nodeId: 'node_0000000000000000000000000a', heartbeatIntervalMs: 60_000, coordinatorVersion: 't' }));
          onHello(ws);
        }
        // Acks, as the coordinator sends them once a report is committed.
        const ended = msgs.filter((m) => m['type'] === 'finished').map((m) => m['attemptId']);
        if (ended.length > 0) ws.send(JSON.stringify({ type: 'ack', attemptIds: ended }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    await new Promise((r) => wss.close(r));
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  const waitFor = async (what: string, fn: () => boolean): Promise<void> => {
    for (let i = 0; i < 300 && !fn(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(fn(), `timed out waiting for ${what}: ${JSON.stringify(frames.map((f) => f.msgs.map((m) => `${String(m['type'])}:${String(m['attemptId'] ?? '').slice(-1)}`)))}`);
  };
  const frameOf = (type: string, n: number): Frame | undefined => frames.find((f) => f.msgs.some((m) => m['type'] === type && m['attemptId'] === attemptId(n)));

  /** An agent with 2 cores given `n` one-core assignments at once; `durations[i]` is task i's run time. */
  async function run(durations: number[], name: string): Promise<{ ended: Map<string, number>; stop: () => Promise<void> }> {
    frames = [];
    const ended = new Map<string, number>();
    const executor = new FakeExecutor((spec) => {
      const id = spec.env['DSG_ATTEMPT_ID']!;
      const ms = durations[Number(spec.env['DSG_TASK_INDEX'])]!;
      setTimeout(() => ended.set(id, Date.now()), ms);
      return { durationMs: ms };
    });
    onHello = (ws) => ws.send(JSON.stringify({ type: 'assign', attempts: durations.map((_, i) => assignment(i)) }));
    const agent = await startAgent({ coordinatorUrl: url, token: 'good', stateDir: join(dir, name), name }, { executor, probe: new FakeProbe(facts) });
    await agent.connected;
    return { ended, stop: () => agent.stop() };
  }

  it('holds a finished report while prefetched tasks wait, and sends it with the one that empties the queue', async () => {
    // Tasks 0 and 1 run; 2 and 3 wait for a core. 0 ends first: 2 takes its core, 3 still waits, so 0's report
    // waits too. 1 ends: 3 starts, nothing waits any more, and both reports leave in one frame.
    const g = await run([120, 145, 2000, 2000], 'a');
    try {
      await waitFor('finished 1', () => frameOf('finished', 1) !== undefined);
      const f0 = frameOf('finished', 0)!;
      assert.equal(f0, frameOf('finished', 1), 'the two ends went out in one frame');
      assert.ok(f0.at - g.ended.get(attemptId(0))! >= 15, `task 0's end waited for company (${f0.at - g.ended.get(attemptId(0))!} ms)`);
      assert.ok(f0.at - g.ended.get(attemptId(0))! <= HOLD_MS + 40, 'at most HOLD_MS');
      // Starts of tasks that began while others ran rode along in frames with other reports.
      assert.ok(frameOf('started', 2), 'task 2 was reported started');
      assert.ok(frames.every((f) => f.msgs.length > 1 || f.msgs[0]!['type'] !== 'started' || f.at - frames[0]!.at >= HOLD_MS - 5), 'no start went out alone before HOLD_MS');
    } finally {
      await g.stop();
    }
  });

  it('sends held ends once half of the tasks that waited have started, so the refill comes before the queue empties', async () => {
    // 0 and 1 run, 2–7 wait (6). 0 ends: 2 starts (5 wait). 2, 3 and 4 end within a few ms: 5 starts and 2 wait,
    // a third of the most seen: the four ends leave together then, well before HOLD_MS, while 6 and 7 still wait.
    const g = await run([100, 3000, 2, 2, 2, 3000, 3000, 3000], 'w');
    try {
      await waitFor('finished 4', () => frameOf('finished', 4) !== undefined);
      const f = frameOf('finished', 4)!;
      assert.deepEqual([0, 2, 3].map((n) => frameOf('finished', n) === f), [true, true, true], 'the four ends went out in one frame');
      const waited = f.at - g.ended.get(attemptId(0))!;
      assert.ok(waited < HOLD_MS - 15, `sent when half had started, not on the timer (${waited} ms after the first end)`);
      assert.equal(frameOf('started', 6), undefined, 'tasks still waited for a core');
    } finally {
      await g.stop();
    }
  });

  it('sends a held report after HOLD_MS when the queue does not empty', async () => {
    // 0 ends (after the first starts went out); 1 runs on for seconds and 2, 3 wait: nothing empties the queue, so
    // 0's end goes out on the timer.
    const g = await run([150, 3000, 3000, 3000], 'b');
    try {
      await waitFor('finished 0', () => frameOf('finished', 0) !== undefined);
      const waited = frameOf('finished', 0)!.at - g.ended.get(attemptId(0))!;
      assert.ok(waited >= HOLD_MS - 15 && waited <= HOLD_MS + 60, `task 0's end was sent ~HOLD_MS after it (${waited} ms)`);
    } finally {
      await g.stop();
    }
  });

  it('sends a lone task\'s start and end at once', async () => {
    const g = await run([300], 'c');
    try {
      await waitFor('finished 0', () => frameOf('finished', 0) !== undefined);
      const started = frameOf('started', 0);
      assert.ok(started, 'its start was reported on its own');
      assert.ok(started.at - frames[0]!.at < HOLD_MS, `the start went out at once (${started.at - frames[0]!.at} ms after the hello)`);
      assert.ok(frameOf('finished', 0)!.at - g.ended.get(attemptId(0))! < HOLD_MS / 2, 'the end went out at once');
    } finally {
      await g.stop();
    }
  });
});
