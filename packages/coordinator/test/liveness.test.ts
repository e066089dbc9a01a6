// Node liveness: the default timings (checked on a real coordinator: what it tells a real WebSocket client), and
// the engine's rules with a fake clock and a real SQLite store — a silent node is disconnected and offline after
// 3 heartbeats and lost `nodeTimeout` after it was last heard from; a node that says it is stopping gets no more
// work and what it still holds is requeued the moment its connection closes, without waiting for any timeout.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import WebSocket from 'ws';
import { AGENT_WS_PATH, newNodeId, type CoordinatorMessage, type HelloMessage, type NodeId } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteStore, type Store } from '@dsg/store';
import { COORDINATOR_DEFAULTS, Engine, startCoordinator } from '@dsg/coordinator';
import { LOSE_CHUNK } from '../src/engine/report-committer.js';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { submitJob } from '../src/engine/submit.js';
import { FakeLink } from './fixtures/fake-link.js';

const hello = (nodeId: string | null = null, cores = 2): HelloMessage => ({
  type: 'hello', protocol: 1, nodeId, name: 'n', agentVersion: 'test',
  capacity: { cpuMillis: cores * 1000, memoryBytes: 8 * 1024 ** 3, gpus: 0, diskBytes: 10 * 1024 ** 3 },
  facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'test', cores: 2, memoryBytes: 8 * 1024 ** 3, diskBytes: 10 * 1024 ** 3, gpus: [] },
  labels: {}, running: [],
});

describe('liveness defaults', () => {
  it('detect a dead or frozen agent within 10 s and requeue its tasks within 15 s; a real coordinator uses them', async () => {
    const d = COORDINATOR_DEFAULTS;
    assert.deepEqual([d.heartbeatIntervalSeconds, d.nodeTimeoutSeconds, d.silentHeartbeats], [2, 10, 3]);
    const check = 1; // the liveness check runs every second
    const frozenDetected = d.silentHeartbeats * d.heartbeatIntervalSeconds + check;
    const requeued = d.nodeTimeoutSeconds + check; // counted from when it was last heard from
    assert.ok(frozenDetected <= 10, `a frozen agent is noticed after at most ${frozenDetected} s`);
    assert.ok(requeued <= 15, `tasks are requeued after at most ${requeued} s`);
    console.log(`defaults: heartbeat ${d.heartbeatIntervalSeconds} s; frozen agent offline ≤ ${frozenDetected} s; tasks of a dead or frozen agent requeued ≤ ${requeued} s after it was last heard from`);

    const dir = await mkdtemp(join(tmpdir(), 'dsg-live-'));
    const c = await startCoordinator({ dataDir: dir, port: 0, host: '127.0.0.1', logLevel: 'silent' });
    try {
      const ws = new WebSocket(`${c.url.replace('http', 'ws')}${AGENT_WS_PATH}`, { headers: { authorization: `Bearer ${c.joinToken}` } });
      const welcome = await new Promise<CoordinatorMessage>((resolve, reject) => {
        ws.on('open', () => ws.send(JSON.stringify(hello())));
        ws.on('message', (data) => resolve(JSON.parse(String(data)) as CoordinatorMessage));
        ws.on('error', reject);
      });
      ws.close();
      assert.equal(welcome.type, 'welcome');
      assert.equal(welcome.type === 'welcome' && welcome.heartbeatIntervalMs, 2000);
    } finally {
      await c.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});


describe('engine liveness', () => {
  let dir: string;
  let store: Store;
  let engine: Engine;
  let link: FakeLink;
  let now: number;
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    await engine.flush();
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-live-'));
    store = openSqliteStore({ file: join(dir, 'db.sqlite') });
    await store.init();
    now = 1_700_000_000_000;
    link = new FakeLink();
    engine = new Engine(store, new FileBlobStore(join(dir, 'blobs')), new FileLogStore(join(dir, 'logs')), { now: () => now }, {
      heartbeatIntervalMs: 2000, nodeTimeoutMs: 10_000, silenceTimeoutMs: 6000, reconcileGraceMs: 5000, reportBatchMs: 0,
      policy: { maxSystemRetries: 3 }, scheduler: DEFAULT_SCHEDULER_CONFIG,
    }, pino({ level: 'silent' }));
    await engine.start(link);
  });
  afterEach(async () => {
    await engine.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const join_ = async (cores = 2): Promise<NodeId> => {
    const id = await engine.onHello(hello(null, cores), newNodeId(now), '127.0.0.1');
    link.live.add(id);
    engine.onNodeReady();
    return id;
  };
  const submit = (spec: Record<string, unknown>) => submitJob({ spec }, { store, blobs: new FileBlobStore(join(dir, 'blobs')), clock: { now: () => now } }).then((j) => (engine.requestTick(), j));

  it('a silent node is disconnected and offline after the silence timeout, lost at nodeTimeout after it was last heard', async () => {
    const node = await join_();
    const job = await submit({ name: 'j', command: ['sleep', '100'] });
    await settle();
    assert.equal(link.assigned.length, 1);
    now += 5000;
    engine.onHeartbeat(node, [link.assigned[0]!.attemptId]); // last heard from at +5 s
    await settle();
    now += 6000; // +11 s: silent for 6 s, not more
    await engine.checkLiveness();
    assert.equal(link.live.has(node), true);
    now += 500; // silent for 6.5 s: frozen, as far as anyone can tell
    await engine.checkLiveness();
    assert.equal(link.live.has(node), false, 'its socket was closed');
    assert.equal((await store.getNode(node))?.state, 'offline');
    assert.equal((await store.getTask(`${job.id}.0` as never))?.state, 'assigned', 'not requeued yet: it may come back');
    now += 3000; // 9.5 s since last heard
    await engine.checkLiveness();
    assert.equal((await store.getNode(node))?.state, 'offline');
    now += 600; // 10.1 s
    await engine.checkLiveness();
    await settle();
    assert.equal((await store.getNode(node))?.state, 'lost');
    const task = await store.getTask(`${job.id}.0` as never);
    assert.deepEqual([task?.state, task?.failure?.reason], ['queued', 'node_lost']);
  });

  it('a node that says it is stopping gets no more work; what it still holds is requeued as soon as it disconnects, and it stays offline', async () => {
    const node = await join_();
    const job = await submit({ name: 'j', command: ['sleep', '100'], array: 4 });
    await settle();
    assert.equal(link.assigned.length, 2);
    const [a, b] = link.assigned;
    await engine.onStopping(node, 'the agent is stopping');
    // One attempt reported as interrupted by the stop; the other is never reported.
    engine.onFinished(node, { type: 'finished', attemptId: a!.attemptId, end: { kind: 'error', reason: 'agent_stopped', message: 'stopped' }, startedAt: now, finishedAt: now, outputs: [] });
    await settle();
    assert.equal(link.assigned.length, 2, 'no new work for a stopping node, though a core is free');
    link.live.delete(node);
    await engine.onDisconnect(node); // no time passes: no timeout is involved
    await settle();
    const attempts = await Promise.all([a, b].map((x) => store.getAttempt(x!.attemptId as never)));
    assert.deepEqual(attempts.map((x) => [x?.state, x?.failure?.kind, x?.failure?.reason]), [['failed', 'system', 'agent_stopped'], ['lost', 'system', 'node_lost']]);
    assert.equal((await store.getJob(job.id))?.counts.queued, 4, 'both back in the queue');
    assert.equal((await store.getNode(node))?.state, 'offline');
    now += 60_000;
    await engine.checkLiveness();
    assert.equal((await store.getNode(node))?.state, 'offline', 'a stopped node is not "lost"');
  });
  it(`a lost node's attempts are ended ${LOSE_CHUNK} per commit with the event loop free between; a crash midway is finished at the next start`, async () => {
    const node = await join_(3000);
    const job = await submit({ name: 'many', command: ['sleep', '100'], array: 3000, resources: { cpu: 1, memory: '1Mi' } });
    for (let i = 0; i < 20 && link.assigned.length < 3000; i++) await settle();
    const held = link.assigned.length;
    assert.ok(held > 2 * LOSE_CHUNK, `the node holds ${held} attempts`);

    // Count the commits and the event-loop turns between them; the third commit "crashes" the coordinator.
    const chunks: number[] = [];
    let turns = 0;
    let spinning = true;
    const spin = (): void => { turns++; if (spinning) setImmediate(spin); };
    setImmediate(spin);
    const lose = store.loseAttempts.bind(store);
    let turnsAtCommit: number[] = [];
    (store as { loseAttempts: Store['loseAttempts'] }).loseAttempts = async (ids, ...rest) => {
      if (chunks.length === 2) throw new Error('simulated crash between two slices');
      chunks.push(ids.length);
      turnsAtCommit.push(turns);
      return lose(ids, ...rest);
    };
    link.live.delete(node);
    await engine.onDisconnect(node);
    now += 10_001;
    await assert.rejects(engine.checkLiveness(), /simulated crash/);
    spinning = false;
    assert.deepEqual(chunks, [LOSE_CHUNK, LOSE_CHUNK], 'two slices committed before the crash');
    assert.ok(turnsAtCommit[1]! > turnsAtCommit[0]!, 'the event loop ran between the two slices');
    assert.equal((await store.getNode(node))?.state, 'lost');
    assert.equal((await store.getJob(job.id))?.counts.queued, 3000 - held + 2 * LOSE_CHUNK, 'only the committed slices are requeued');

    // Restart: a new engine on the same store finishes the requeue at its first liveness check.
    (store as { loseAttempts: Store['loseAttempts'] }).loseAttempts = lose;
    await engine.stop();
    link = new FakeLink();
    engine = new Engine(store, new FileBlobStore(join(dir, 'blobs')), new FileLogStore(join(dir, 'logs')), { now: () => now }, {
      heartbeatIntervalMs: 2000, nodeTimeoutMs: 10_000, silenceTimeoutMs: 6000, reconcileGraceMs: 5000, reportBatchMs: 0,
      policy: { maxSystemRetries: 3 }, scheduler: DEFAULT_SCHEDULER_CONFIG,
    }, pino({ level: 'silent' }));
    await engine.start(link);
    await engine.checkLiveness();
    await settle();
    assert.equal((await store.getJob(job.id))?.counts.queued, 3000, 'every attempt of the lost node requeued after the restart');
    assert.equal((await store.activeAttemptsOnNode(node)).length, 0);
  });
});
