// The agent probes its isolation and reports it in its hello facts: `none` when asked for none, and on this
// machine (root, cgroup v1 controllers, bubblewrap) `sandbox+cgroups` by default.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import type { NodeFacts } from '@dsg/core';
import { FakeProbe, startAgent } from '@dsg/agent';
import { probeIsolation } from '../src/probe/isolation.js';

const facts: NodeFacts = { hostname: 'h', os: 'linux test', arch: 'x64', cpuModel: 't', cores: 2, memoryBytes: 4 * 1024 ** 3, diskBytes: 1e9, gpus: [] };

describe('agent: isolation level in the hello facts', () => {
  let dir: string;
  let server: Server;
  let wss: WebSocketServer;
  let url: string;
  const hellos: Array<Record<string, unknown>> = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-agent-iso-'));
    server = createServer();
    wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => {
      ws.on('message', (d) => {
        const parsed = JSON.parse(String(d)) as Record<string, unknown> | Array<Record<string, unknown>>;
        for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
          if (m['type'] !== 'hello') continue;
          hellos.push(m);
          ws.send(JSON.stringify({ type: 'welcome', nodeId: 'node_0000000000000000000000000b', heartbeatIntervalMs: 1000, coordinatorVersion: 't' }));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
    await new Promise((r) => server.close(r));
    // A stopped agent's helper may still be removing its working dirs: retry while the tree is still changing.
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  const helloWith = async (options: { isolation?: 'none' | 'cgroups' | 'sandbox' }, name: string): Promise<Record<string, unknown>> => {
    const logs: string[] = [];
    const agent = await startAgent({ coordinatorUrl: url, token: 't', stateDir: join(dir, name), name, ...options, log: (_l, m) => logs.push(m) }, { probe: new FakeProbe(facts) });
    try {
      await agent.connected;
      const h = hellos.find((x) => x['name'] === name)!;
      assert.ok(logs.some((l) => l.startsWith('task isolation: ')), 'the level is logged at start');
      return (h['facts'] as Record<string, unknown>);
    } finally {
      await agent.stop();
    }
  };

  it('--isolation none is reported as none', async () => {
    assert.equal((await helloWith({ isolation: 'none' }, 'plain'))['isolation'], 'none');
  });

  it('by default, the strongest this machine offers is reported (what probeIsolation finds)', async () => {
    const expected = probeIsolation({ hide: [] }).level;
    if (process.env['CI'] === 'true' && process.getuid?.() === 0) assert.equal(expected, 'sandbox+cgroups', 'this CI machine is root with cgroups and bubblewrap');
    assert.equal((await helloWith({}, 'strong'))['isolation'], expected);
  });
});
