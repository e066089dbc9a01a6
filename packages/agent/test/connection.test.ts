// The agent's connection against a test WebSocket server: hello, assignment, reports, and a finished report
// re-sent after a reconnect when it was not acked.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { startAgent, FakeExecutor, FakeProbe } from '@dsg/agent';

const facts = { hostname: 'fake', os: 'linux', arch: 'x64', cpuModel: 'c', cores: 2, memoryBytes: 4 * 1024 ** 3, diskBytes: 1e9, gpus: [] };

describe('agent connection', () => {
  let dir: string;
  let server: Server;
  let wss: WebSocketServer;
  let url: string;
  const frames: Array<{ conn: number; msg: Record<string, unknown> }> = [];
  const conns: WebSocket[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-agent-'));
    server = createServer();
    wss = new WebSocketServer({ server });
    wss.on('connection', (ws, req) => {
      if (req.headers.authorization !== 'Bearer good') return ws.close(4001);
      const conn = conns.push(ws) - 1;
      ws.on('message', (d) => {
        const parsed = JSON.parse(String(d)) as Record<string, unknown> | Array<Record<string, unknown>>;
        for (const msg of Array.isArray(parsed) ? parsed : [parsed]) {
          frames.push({ conn, msg });
          if (msg['type'] === 'hello') {
            ws.send(JSON.stringify({ type: 'welcome', nodeId: 'node_0000000000000000000000000a', heartbeatIntervalMs: 200, coordinatorVersion: 't' }));
            if (conn === 0)
              ws.send(JSON.stringify({ type: 'assign', attempts: [{ attemptId: 'att_0000000000000000000000000a', attemptNumber: 1, jobId: 'job_1', jobName: 'j', taskId: 'job_1.0', taskIndex: 0, taskCount: 1, arrayValue: null, run: { kind: 'command', argv: ['x'] }, env: {}, inputs: [], outputs: [], timeoutMs: 10_000, resources: { cpuMillis: 1000, memoryBytes: 1, gpus: 0, diskBytes: 0 } }] }));
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

  const waitFor = async (what: string, fn: () => boolean) => {
    for (let i = 0; i < 300 && !fn(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(fn(), `timed out waiting for ${what}`);
  };

  it('says hello, runs the assignment, re-sends an unacked result after reconnecting, keeps its node id', async () => {
    const agent = await startAgent(
      { coordinatorUrl: url, token: 'good', stateDir: join(dir, 'state'), name: 'n1' },
      { executor: new FakeExecutor(() => ({ stdout: 'hi\n', exitCode: 0 })), probe: new FakeProbe(facts) },
    );
    try {
      await agent.connected;
      const hello = frames.find((f) => f.msg['type'] === 'hello')!.msg;
      assert.equal(hello['nodeId'], null);
      assert.equal(hello['name'], 'n1');
      assert.deepEqual(hello['capacity'], { cpuMillis: 2000, memoryBytes: Math.round(4 * 1024 ** 3 * 0.9), gpus: 0, diskBytes: 1e9 });
      await waitFor('finished on conn 0', () => frames.some((f) => f.conn === 0 && f.msg['type'] === 'finished'));
      assert.ok(frames.some((f) => f.conn === 0 && f.msg['type'] === 'started'));
      assert.ok(frames.some((f) => f.conn === 0 && f.msg['type'] === 'log' && f.msg['data'] === 'hi\n'));
      await waitFor('a heartbeat', () => frames.some((f) => f.msg['type'] === 'heartbeat'));
      // No ack was sent: drop the connection; the agent must reconnect and send the result again.
      conns[0]!.terminate();
      await waitFor('second hello', () => frames.some((f) => f.conn === 1 && f.msg['type'] === 'hello'));
      assert.equal(frames.find((f) => f.conn === 1 && f.msg['type'] === 'hello')!.msg['nodeId'], 'node_0000000000000000000000000a');
      await waitFor('finished re-sent', () => frames.some((f) => f.conn === 1 && f.msg['type'] === 'finished' && f.msg['attemptId'] === 'att_0000000000000000000000000a'));
      // Acked: it must not be sent a third time.
      conns[1]!.send(JSON.stringify({ type: 'ack', attemptIds: ['att_0000000000000000000000000a'] }));
      await new Promise((r) => setTimeout(r, 100));
      conns[1]!.terminate();
      await waitFor('third hello', () => frames.some((f) => f.conn === 2 && f.msg['type'] === 'hello'));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(frames.filter((f) => f.conn === 2 && f.msg['type'] === 'finished').length, 0);
    } finally {
      await agent.stop();
    }
  });
});
