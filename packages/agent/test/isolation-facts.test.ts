// The agent probes its isolation and reports it in its hello facts: `none` when asked for none, and on this
// machine (root, cgroup v1 controllers, bubblewrap) `sandbox+cgroups` by default.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NodeFacts } from '@dsg/core';
import { FakeProbe, startAgent } from '@dsg/agent';
import { probeIsolation } from '../src/probe/isolation.js';
import { startFakeCoordinator, type FakeCoordinator } from './fake-coordinator.js';

const facts: NodeFacts = { hostname: 'h', os: 'linux test', arch: 'x64', cpuModel: 't', cores: 2, memoryBytes: 4 * 1024 ** 3, diskBytes: 1e9, gpus: [] };

describe('agent: isolation level in the hello facts', () => {
  let dir: string;
  let coordinator: FakeCoordinator;
  let url: string;
  const hellos: Array<Record<string, unknown>> = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-agent-iso-'));
    coordinator = await startFakeCoordinator({ nodeId: 'node_0000000000000000000000000b', heartbeatIntervalMs: 1000, onMessage: (m) => m['type'] === 'hello' && hellos.push(m) });
    url = coordinator.url;
  });
  after(async () => {
    await coordinator.close();
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
