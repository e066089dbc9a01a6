// Head-of-line blocking in the dispatch pass: work that cannot be placed now — whatever its size or place in the
// queue — never keeps placeable work behind it from running on a free node. The real Engine and a real SQLite
// store in a temp dir, with a fake agent link (no processes: e2e/hol.test.ts does it with real ones).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { compileJobSpec, newJobId, newNodeId, type HelloMessage, type JobId, type NodeId } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteStore, type Store } from '@dsg/store';
import { Engine } from '@dsg/coordinator';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { submitJob } from '../src/engine/submit.js';
import { pino } from 'pino';
import { FakeLink } from './fixtures/fake-link.js';


const GiB = 1024 ** 3;
const hello = (cores: number): HelloMessage => ({
  type: 'hello', protocol: 1, nodeId: null, name: `cpu${cores}`, agentVersion: 'test',
  capacity: { cpuMillis: cores * 1000, memoryBytes: 8 * GiB, gpus: 0, diskBytes: 10 * GiB },
  facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'test', cores, memoryBytes: 8 * GiB, diskBytes: 10 * GiB, gpus: [] },
  labels: {}, running: [],
});

describe('dispatch: one job that cannot run now does not stop the grid', { timeout: 60_000 }, () => {
  let dir: string;
  let store: Store;
  let engine: Engine;
  let link: FakeLink;
  let now: number;
  const clock = { now: () => now };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-hol-'));
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

  /** Run one pass (the engine coalesces triggers into one) and wait until it and anything it asked for are done. */
  /**
   * The pass after `before` (default: now). A flush that commits finishes runs its pass in the same commit (the
   * dispatch folded into the report commit): give the pass seen before that flush to get the folded one.
   */
  async function onePass(before = engine.lastPass): Promise<NonNullable<Engine['lastPass']>> {
    engine.requestTick();
    for (let i = 0; i < 2000 && engine.lastPass === before; i++) await new Promise((r) => setTimeout(r, 1));
    assert.notEqual(engine.lastPass, before, 'a pass ran');
    const pass = engine.lastPass!;
    await settle();
    return pass;
  }
  async function settle(): Promise<void> {
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  async function joinNode(cores: number): Promise<NodeId> {
    const id = await engine.onHello(hello(cores), newNodeId(now), '127.0.0.1');
    link.live.add(id);
    return id;
  }
  const submit = (spec: Record<string, unknown>) => submitJob({ spec }, { store, blobs: new FileBlobStore(join(dir, 'blobs')), clock });
  /** A job of `taskCount` tasks straight through the Store API (as big as the spec's 1,000,000-task limit per job allows, without the HTTP round trip). */
  async function bigJob(spec: Record<string, unknown>, taskCount: number): Promise<JobId> {
    const compiled = { ...compileJobSpec(spec), taskCount };
    const id = newJobId((now += 1));
    await store.createJob({ id, name: compiled.name, spec, compiled, inputs: [], createdAt: now, warnings: [] });
    return id;
  }
  const placedOf = (jobId: JobId): number => link.assignments().filter((a) => a.jobId === jobId).length;

  for (const blocker of [
    { what: 'a GPU (no GPU node online)', resources: { gpus: 1 }, reason: /1 GPUs > 0/ },
    { what: 'more memory than any node has', resources: { memory: '64Gi' }, reason: /64 GiB memory > 8 GiB|memory > / },
  ]) {
    it(`5,000 tasks asking for ${blocker.what}, queued first: the 4-task CPU job behind them is placed in the first pass`, async () => {
      await joinNode(2);
      const blocked = await submit({ name: 'blocked', command: ['true'], array: 5000, resources: blocker.resources });
      const p0 = await onePass();
      assert.equal(p0.assigned, 0);
      assert.equal(engine.pendingReasons.get(blocked.id)?.never, true);
      assert.match(engine.pendingReasons.get(blocked.id)?.summary ?? '', blocker.reason);

      const small = await submit({ name: 'small', command: ['true'], array: 4, resources: { cpu: 0.5, memory: '64Mi' } });
      const p1 = await onePass();
      assert.equal(p1.assigned, 4, 'all four placed in the first pass after submission');
      assert.equal(placedOf(small.id), 4);
      assert.equal(placedOf(blocked.id), 0);
      assert.deepEqual([p1.jobsRead, p1.tasksRead], [2, 4], 'a row per job (with its first task: enough for the blocked job), the small job\'s four');
      assert.equal(engine.pendingReasons.get(blocked.id)?.never, true, '"never" is still reported for the blocked job');
      assert.equal(engine.pendingReasons.has(small.id), false);
    });
  }

  it('the same behind 1,000,000 queued GPU tasks in one job: a pass reads O(jobs + placeable tasks) rows and stays well under 100 ms', async () => {
    const t0 = performance.now();
    const blocked = await bigJob({ name: 'million', command: ['true'], resources: { gpus: 1 } }, 1_000_000);
    const insertMs = performance.now() - t0;
    await joinNode(2);
    const idle = await onePass();
    assert.equal(idle.assigned, 0);
    assert.equal(engine.pendingReasons.get(blocked)?.never, true);

    const small = await submit({ name: 'small', command: ['true'], array: 4, resources: { cpu: 0.5, memory: '64Mi' } });
    const first = await onePass();
    assert.equal(first.assigned, 4);
    assert.equal(placedOf(small.id), 4);
    // Rows read: the two jobs (each with its first task: all the blocked one needs) and the small job's four tasks.
    assert.deepEqual([first.jobsRead, first.tasksRead], [2, 4]);

    // Steady state behind the million: more small work arrives; tasks finish (in 5 ms, so prefetch starts) and
    // each pass fills the freed cores.
    const more = await submit({ name: 'more', command: ['true'], array: 1000, resources: { cpu: 0.5, memory: '64Mi' } });
    const passes = [idle, first];
    const finished = new Set<string>();
    for (let i = 0; i < 6; i++) {
      for (const a of link.assignments()) {
        if (finished.has(a.attemptId)) continue;
        finished.add(a.attemptId);
        engine.onFinished([...link.live][0]!, { type: 'finished', attemptId: a.attemptId, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: now, finishedAt: now + 5, outputs: [] });
      }
      const before = engine.lastPass;
      await engine.flush();
      passes.push(await onePass(before));
    }
    assert.ok(placedOf(more.id) > 8, `the job behind the million keeps running (${placedOf(more.id)} placed)`);
    assert.ok(passes.slice(2).some((p) => p.assigned > 4), 'prefetch: more than the cores once tasks are known to be short');
    const worst = Math.max(...passes.map((p) => p.ms));
    const rows = passes.map((p) => p.jobsRead + p.tasksRead);
    console.log(
      `1,000,000 queued GPU tasks (inserted in ${Math.round(insertMs)} ms): pass times ${passes.map((p) => p.ms.toFixed(2)).join(', ')} ms ` +
        `(reads and planning); rows read per pass ${rows.join(', ')}; tasks placed per pass ${passes.map((p) => p.assigned).join(', ')}`,
    );
    assert.ok(worst < 100, `a dispatch pass took ${worst.toFixed(1)} ms`);
    // At most: 3 jobs, and what 2 cores × the prefetch factor of 5 ms tasks (the window of work per core, within the
    // cap) of 0.5-core tasks take, plus one.
    const factor = Math.min(DEFAULT_SCHEDULER_CONFIG.maxOvercommit, 1 + DEFAULT_SCHEDULER_CONFIG.prefetchWindowMs / 5);
    assert.ok(Math.max(...rows) <= 3 + 2 * factor * 2 + 1, `a pass read ${Math.max(...rows)} rows`);
    assert.equal(engine.pendingReasons.get(blocked)?.never, true);
    assert.equal(engine.pendingReasons.get(more.id)?.never, false, '"not now" for the job waiting for cores');
  });

  it('keeps FIFO order among jobs that can all run, and sends tasks that fit nowhere no further', async () => {
    await joinNode(2);
    const a = await submit({ name: 'a', command: ['sleep', '9'], array: 3, resources: { memory: '64Mi' } });
    const b = await submit({ name: 'b', command: ['sleep', '9'], array: 3, resources: { memory: '64Mi' } });
    await onePass();
    assert.deepEqual(link.assignments().map((x) => [x.jobId, x.taskIndex]), [[a.id, 0], [a.id, 1]]);
    assert.equal(engine.pendingReasons.get(a.id)?.never, false);
    assert.equal(engine.pendingReasons.get(b.id)?.never, false, 'every waiting job has its reason, not only the first');
  });
});
