// Reservation against starvation, through the real dispatcher: a 2-core job behind a steady stream of 1-core jobs on
// a 2-core node would never find both cores free; once it has waited reserveAfterMs the node is reserved for it and
// drains, short jobs whose timeout ends before the node frees still backfill, and the big job starts. The real Engine
// and a real SQLite store, a fake agent link and a fake clock.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { newNodeId, type HelloMessage, type JobId, type NodeId } from '@dsg/core';
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

describe('dispatch: reservation and backfill', { timeout: 60_000 }, () => {
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
      policy: { maxSystemRetries: 3 }, scheduler: { ...DEFAULT_SCHEDULER_CONFIG, maxOvercommit: 1, reserveAfterMs: 60_000 },
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
  const placedOf = (jobId: JobId): number => link.assignments().filter((a) => a.jobId === jobId).length;

  let done: Set<string>;
  /** The oldest running attempt ends (only one core frees at a time: the 2-core job never fits by chance). */
  let beforeFlush: Engine['lastPass'] | undefined;
  const finishOne = async (node: NodeId): Promise<boolean> => {
    const a = link.assignments().find((x) => !done.has(x.attemptId));
    if (!a) return false;
    beforeFlush = engine.lastPass;
    done.add(a.attemptId);
    engine.onFinished(node, { type: 'finished', attemptId: a.attemptId, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: now - 1000, finishedAt: now, outputs: [] });
    await engine.flush();
    return true;
  };
  const small = (name: string, timeout = '10m') => submit({ name, command: ['true'], timeout, resources: { cpu: 1, memory: '64Mi' } });

  it('a big job that waited 60 s gets the node: it drains, a job that ends in time backfills, then the big job starts', async () => {
    done = new Set();
    const node = await joinNode(2);
    const started = (jobId: JobId): boolean => placedOf(jobId) > 0;
    await small('s-a');
    await small('s-b');
    await onePass();
    const big = await submit({ name: 'big', command: ['true'], resources: { cpu: 2, memory: '64Mi' }, timeout: '10m' });
    // Before reserveAfterMs: each core that frees goes to the next 1-core job; the 2-core job never fits.
    for (let i = 0; i < 4; i++) {
      const next = await small(`s-${i}`);
      now += 10_000;
      await finishOne(node);
      await onePass(beforeFlush);
      assert.equal(placedOf(next.id), 1, `step ${i}: the next small job took the freed core`);
      assert.equal(started(big.id), false, `step ${i}: the big job still waits`);
    }
    // Explain: the big job waits for room and can say by when, at the latest (the last 10-minute task's timeout).
    const snap = await engine.snapshotNodes({ releases: true });
    const releases = snap[0]!.releases ?? [];
    assert.equal(releases.length, 2, 'both running tasks, each with its latest end');
    assert.ok(releases.every((r) => r.at > now && r.at <= now + 600_000), JSON.stringify(releases));
    // Past 60 s of waiting, the node is reserved for the big job: a 10-minute job may not take the freed core, a
    // 1-minute one may (it ends before the node's last 10-minute task must end: backfill).
    now += 60_000;
    const long = await small('long');
    const short = await small('short', '1m');
    await finishOne(node);
    await onePass(beforeFlush);
    assert.equal(placedOf(long.id), 0, `a 10-minute job may not delay the reserved node: ${engine.pendingReasons.get(long.id)?.summary}`);
    assert.match(engine.pendingReasons.get(big.id)?.summary ?? '', /reserved for it/);
    assert.equal(placedOf(short.id), 1, `a 1-minute job backfills: ${engine.pendingReasons.get(short.id)?.summary}`);
    // The node drains: the big job starts before the long one.
    while (!started(big.id) && (await finishOne(node))) await onePass(beforeFlush);
    assert.equal(started(big.id), true, 'the big job started once the node drained');
    assert.equal(placedOf(long.id), 0, 'and before the long job that came after it');
  });
});
