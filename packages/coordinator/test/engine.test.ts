// The engine with a fake agent link, a fake clock and a real SQLite store in a temp dir.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { newNodeId, type HelloMessage, type NodeId } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteStore, type Store } from '@dsg/store';
import { Engine } from '@dsg/coordinator';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { submitJob } from '../src/engine/submit.js';
import { pino } from 'pino';
import { FakeLink } from './fixtures/fake-link.js';


const hello = (cores: number, nodeId: string | null = null): HelloMessage => ({
  type: 'hello', protocol: 1, nodeId, name: `n${cores}`, agentVersion: 'test',
  capacity: { cpuMillis: cores * 1000, memoryBytes: 8 * 1024 ** 3, gpus: 0, diskBytes: 10 * 1024 ** 3 },
  facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'test', cores, memoryBytes: 8 * 1024 ** 3, diskBytes: 10 * 1024 ** 3, gpus: [] },
  labels: {}, running: [],
});

/** Let setImmediate-scheduled ticks and flushes run to completion. */
async function settle(engine: Engine): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 2));
  }
  await engine.flush();
}

describe('engine', () => {
  let dir: string;
  let store: Store;
  let engine: Engine;
  let link: FakeLink;
  let now: number;
  const clock = { now: () => now };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-engine-'));
    store = openSqliteStore({ file: join(dir, 'db.sqlite') });
    await store.init();
    const blobs = new FileBlobStore(join(dir, 'blobs'));
    await blobs.init();
    now = 1_700_000_000_000;
    link = new FakeLink();
    engine = new Engine(store, blobs, new FileLogStore(join(dir, 'logs')), clock, {
      heartbeatIntervalMs: 5000, nodeTimeoutMs: 30_000, reconcileGraceMs: 10_000, reportBatchMs: 0,
      policy: { maxSystemRetries: 3 }, scheduler: DEFAULT_SCHEDULER_CONFIG,
    }, pino({ level: 'silent' }));
    await engine.start(link);
  });
  afterEach(async () => {
    await engine.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function join_(cores: number): Promise<NodeId> {
    const id = await engine.onHello(hello(cores), newNodeId(now), '127.0.0.1');
    link.live.add(id);
    engine.onNodeReady();
    return id;
  }
  const submit = async (spec: Record<string, unknown>) => {
    const blobs = new FileBlobStore(join(dir, 'blobs'));
    const job = await submitJob({ spec }, { store, blobs, clock });
    engine.requestTick();
    return job;
  };

  it('dispatches no more tasks to a node than its cores, then the next ones as tasks finish', async () => {
    const node = await join_(2);
    const job = await submit({ name: 'j', command: ['true'], array: 5 });
    await settle(engine);
    const first = link.assignments(node);
    assert.equal(first.length, 2);
    assert.deepEqual(first.map((a) => a.taskIndex), [0, 1]);
    assert.equal(first[0]!.jobId, job.id);
    assert.deepEqual(first[0]!.run, { kind: 'command', argv: ['true'] });

    engine.onStarted(node, first[0]!.attemptId, now);
    engine.onFinished(node, { type: 'finished', attemptId: first[0]!.attemptId, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: now, finishedAt: now + 5, outputs: [] });
    await settle(engine);
    // The freed core gets the next task; and since this job's tasks are now known to be short (5 ms), the rest are
    // prefetched to wait in the agent's queue (factor 1 + 50/5 = 11, capped at 8: up to 16 held on 2 cores).
    assert.equal(link.assignments(node).length, 5);
    assert.equal((await store.listNodeUsage(['online']))[0]!.activeAttempts, 4);
    assert.deepEqual(link.of('ack').flatMap((a) => a.attemptIds), [first[0]!.attemptId]);
    const t0 = await store.getTask(`${job.id}.0` as never);
    assert.equal(t0?.state, 'succeeded');
  });

  it('commits a finish and the dispatch it makes room for together: one commit per cycle, the ack and the next task sent at once', async () => {
    const node = await join_(1);
    const job = await submit({ name: 'j', command: ['true'], array: 4, retries: 1 });
    await settle(engine);
    const calls: string[] = [];
    for (const m of ['applyPlan', 'recordReports', 'recordReportsAndPlace'] as const) {
      const orig = (store[m] as (...a: unknown[]) => unknown).bind(store);
      (store as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => { calls.push(m); return orig(...a); };
    }
    for (let i = 0; i < 3; i++) {
      const a = link.assignments(node).at(-1)!;
      const sentBefore = link.sent.length;
      // Task 1 fails once (exit 3, one retry allowed): requeued in that commit, at its old place in the queue.
      const exitCode = a.taskIndex === 1 ? 3 : 0;
      engine.onFinished(node, { type: 'finished', attemptId: a.attemptId, end: { kind: 'exited', exitCode, signal: null }, startedAt: now, finishedAt: now + 2000, outputs: [] });
      await engine.flush();
      // Within the flush, with no turn of the event loop for a pass: the ack, then the next task.
      assert.deepEqual(link.sent.slice(sentBefore).map((x) => x.msg.type), ['ack', 'assign'], `cycle ${i}`);
      await settle(engine);
    }
    // The retry asked for a pass of its own (its task was requeued after the plan was made): it found the node full.
    assert.deepEqual(calls, ['recordReportsAndPlace', 'recordReportsAndPlace', 'recordReportsAndPlace'], 'dispatch has no commit of its own');
    assert.deepEqual(link.assignments(node).map((x) => [x.taskIndex, x.attemptNumber]), [[0, 1], [1, 1], [2, 1], [1, 2]]);
    const counts = (await store.getJob(job.id))!.counts;
    assert.deepEqual([counts.succeeded, counts.assigned, counts.queued], [2, 1, 1]);
  });

  it('a folded dispatch counts the attempts ending with it: a job at its parallelism cap gets its next task at once', async () => {
    const node = await join_(4);
    await submit({ name: 'p', command: ['true'], array: 3, parallelism: 1 });
    await settle(engine);
    for (let i = 0; i < 2; i++) {
      const a = link.assignments(node).at(-1)!;
      assert.equal(link.assignments(node).length, i + 1, 'one at a time');
      engine.onFinished(node, { type: 'finished', attemptId: a.attemptId, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: now, finishedAt: now + 5, outputs: [] });
      await engine.flush();
      // In the flush itself (no pass of its own follows: none is needed).
      assert.equal(link.assignments(node).length, i + 2, `task ${i + 1} was placed with the finish of task ${i}`);
      await settle(engine);
    }
  });

  it('fences a stale report: a finish for an attempt that was lost is acked but not applied', async () => {
    const node = await join_(1);
    const job = await submit({ name: 'j', command: ['true'] });
    await settle(engine);
    const [a] = link.assignments(node);
    assert.ok(a);
    // The node disappears; after the timeout its attempt is lost and the task requeued.
    link.live.delete(node);
    await engine.onDisconnect(node);
    now += 31_000;
    await engine.checkLiveness();
    await settle(engine);
    let task = await store.getTask(`${job.id}.0` as never);
    assert.equal(task?.state, 'queued');
    assert.equal(task?.systemFailures, 1);
    // Its late report changes nothing.
    engine.onFinished(node, { type: 'finished', attemptId: a.attemptId, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: now, finishedAt: now, outputs: [] });
    await settle(engine);
    task = await store.getTask(`${job.id}.0` as never);
    assert.equal(task?.state, 'queued');
    assert.ok(link.of('ack').some((m) => m.attemptIds.includes(a.attemptId)));
    // A new node picks the task up as attempt 2.
    const node2 = await join_(1);
    await settle(engine);
    const [b] = link.assignments(node2);
    assert.equal(b?.attemptNumber, 2);
  });

  it('reconciles on heartbeat: an attempt the agent does not know is lost and retried; an unknown running one is cancelled', async () => {
    const node = await join_(1);
    const job = await submit({ name: 'j', command: ['true'] });
    await settle(engine);
    const [a] = link.assignments(node);
    assert.ok(a);
    now += 11_000; // past the reconcile grace
    engine.onHeartbeat(node, ['att_00000000000000000000000000']);
    await settle(engine);
    const attempts = await store.listAttempts(`${job.id}.0` as never);
    assert.equal(attempts[0]?.state, 'lost');
    assert.ok(link.of('cancel').some((m) => m.attemptIds.includes('att_00000000000000000000000000')));
    assert.equal(link.assignments(node).length, 2, 'the task was dispatched again');
  });

  it('does not reconcile away an attempt assigned moments ago (still in flight)', async () => {
    const node = await join_(1);
    const job = await submit({ name: 'j', command: ['true'] });
    await settle(engine);
    engine.onHeartbeat(node, []);
    await settle(engine);
    const attempts = await store.listAttempts(`${job.id}.0` as never);
    assert.equal(attempts[0]?.state, 'assigned');
  });

  it('groups many finishes into one flush and writes logs before the end is committed', async () => {
    const node = await join_(8);
    const job = await submit({ name: 'j', command: ['true'], array: 8 });
    await settle(engine);
    const as = link.assignments(node);
    assert.equal(as.length, 8);
    for (const a of as) {
      engine.onLog(node, a.attemptId, `hello from ${a.taskIndex}\n`);
      engine.onFinished(node, { type: 'finished', attemptId: a.attemptId, end: { kind: 'exited', exitCode: a.taskIndex === 3 ? 1 : 0, signal: null }, startedAt: now, finishedAt: now, outputs: [] });
    }
    await settle(engine);
    const j = await store.getJob(job.id);
    assert.equal(j?.state, 'failed');
    assert.equal(j?.counts.succeeded, 7);
    assert.equal(j?.counts.failed, 1);
    const log = await new FileLogStore(join(dir, 'logs')).read(job.id, as[2]!.attemptId, 0, 1000);
    assert.equal(log.data, 'hello from 2\n');
  });

  it('keeps reports whose commit failed and commits them on the next flush; acks only after the commit', async () => {
    const node = await join_(1);
    const job = await submit({ name: 'j', command: ['true'] });
    await settle(engine);
    const [a] = link.assignments(node);
    const real = store.recordReports.bind(store);
    let failures = 1;
    (store as { recordReports: Store['recordReports'] }).recordReports = async (...args) => {
      if (failures-- > 0) throw new Error('disk full (simulated)');
      return real(...args);
    };
    engine.onFinished(node, { type: 'finished', attemptId: a!.attemptId, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: now, finishedAt: now, outputs: [] });
    await assert.rejects(engine.flush(), /disk full/);
    assert.equal(link.of('ack').length, 0, 'nothing acked before it is committed');
    assert.equal((await store.getTask(`${job.id}.0` as never))?.state, 'assigned');
    await engine.flush();
    assert.equal((await store.getTask(`${job.id}.0` as never))?.state, 'succeeded');
    assert.deepEqual(link.of('ack').flatMap((m) => m.attemptIds), [a!.attemptId]);
  });

  it('keeps a reason for every waiting job: "never" for a task no node can hold, "not now" when nodes are busy', async () => {
    await join_(2);
    const busy = await submit({ name: 'busy', command: ['sleep', '9'], array: 5 });
    const huge = await submit({ name: 'huge', command: ['true'], resources: { cpu: 64 } });
    await settle(engine);
    const b = engine.pendingReasons.get(busy.id);
    assert.equal(b?.never, false);
    assert.match(b?.summary ?? '', /busy/);
    const h = engine.pendingReasons.get(huge.id);
    assert.equal(h?.never, true);
    assert.match(h?.summary ?? '', /no node in the grid is big enough .*64 cores > 2/);
  });

  it('declares a silent connected node lost after the timeout (frozen agent)', async () => {
    const node = await join_(1);
    const job = await submit({ name: 'j', command: ['sleep', '100'] });
    await settle(engine);
    now += 31_000;
    await engine.checkLiveness();
    await settle(engine);
    assert.equal(link.live.has(node), false, 'the socket was closed');
    assert.equal((await store.getNode(node))?.state, 'lost');
    assert.equal((await store.getTask(`${job.id}.0` as never))?.state, 'queued');
  });
});
