// Offline nodes are forgotten after the configured retention: a real coordinator, a real WebSocket agent that joins
// and leaves; `GET /nodes` shows it offline, then no more once the retention has passed (housekeeping runs on
// its own). A node that is still connected is never pruned.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import WebSocket from 'ws';
import { AGENT_WS_PATH, type CoordinatorMessage, type HelloMessage, type NodeV1 } from '@dsg/core';
import { startCoordinator } from '@dsg/coordinator';

const hello = (name: string): HelloMessage => ({
  type: 'hello', protocol: 1, nodeId: null, name, agentVersion: 'test',
  capacity: { cpuMillis: 2000, memoryBytes: 8 * 1024 ** 3, gpus: 0, diskBytes: 10 * 1024 ** 3 },
  facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'test', cores: 2, memoryBytes: 8 * 1024 ** 3, diskBytes: 10 * 1024 ** 3, gpus: [] },
  labels: {}, running: [],
});

it('an offline node is pruned once the retention has passed; a connected one stays', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dsg-prune-'));
  const c = await startCoordinator({ dataDir: dir, port: 0, host: '127.0.0.1', logLevel: 'silent', offlineNodeRetentionSeconds: 2 });
  const sockets: WebSocket[] = [];
  try {
    const join_ = async (name: string): Promise<WebSocket> => {
      const ws = new WebSocket(`${c.url.replace('http', 'ws')}${AGENT_WS_PATH}`, { headers: { authorization: `Bearer ${c.joinToken}` } });
      sockets.push(ws);
      const first = await new Promise<CoordinatorMessage>((resolve, reject) => {
        ws.on('open', () => ws.send(JSON.stringify(hello(name))));
        ws.once('message', (data) => resolve(JSON.parse(String(data)) as CoordinatorMessage));
        ws.on('error', reject);
      });
      assert.equal(first.type, 'welcome');
      return ws;
    };
    const nodes = async () => ((await (await fetch(`${c.url}/api/v1/nodes`, { headers: { authorization: `Bearer ${c.adminToken}` } })).json()) as { items: NodeV1[] }).items;
    const gone = await join_('gone');
    const stays = await join_('stays');
    // Keep "stays" heard from, so it is not taken for frozen.
    const beat = setInterval(() => stays.send(JSON.stringify({ type: 'heartbeat', running: [] })), 500);
    try {
      gone.close();
      const t0 = Date.now();
      let seenOffline = false;
      for (;;) {
        const list = await nodes();
        const g = list.find((n) => n.name === 'gone');
        if (g) seenOffline ||= g.state === 'offline';
        else break;
        assert.ok(Date.now() - t0 < 15_000, 'pruned within 15 s');
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(seenOffline, 'shown offline before it was pruned');
      assert.ok(Date.now() - t0 >= 1500, 'not before the retention');
      assert.deepEqual((await nodes()).map((n) => [n.name, n.state]), [['stays', 'online']]);
    } finally {
      clearInterval(beat);
    }
  } finally {
    for (const s of sockets) s.terminate();
    await c.close();
    await rm(dir, { recursive: true, force: true });
  }
});
