// Retention and garbage collection on a real SQLite store and real blob and log directories, with a settable
// clock: the size limit removes the oldest finished work first; unreferenced files within the grace are kept and
// older ones swept (with the logs of jobs that no longer exist); a dry run changes nothing. And a real coordinator
// collects on its own, on its interval.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { compileJobSpec, newAttemptId, newJobId, newNodeId, taskIdOf, type JobId } from '@dsg/core';
import { openSqliteStore, type Store } from '@dsg/store';
import { startCoordinator } from '@dsg/coordinator';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { DataLifecycle } from '../src/service/data-lifecycle.js';

const GiB = 1024 ** 3;
const HOUR = 3_600_000;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('data lifecycle', () => {
  let dir: string;
  let store: Store;
  let blobs: FileBlobStore;
  let logs: FileLogStore;
  let now = Date.now();
  const clock = { now: () => now };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-gc-'));
    store = openSqliteStore({ file: join(dir, 'db.sqlite') });
    await store.init();
    blobs = new FileBlobStore(join(dir, 'blobs'));
    await blobs.init();
    logs = new FileLogStore(join(dir, 'logs'));
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const nodeId = newNodeId(Date.now());
  /** A job that succeeded at `at`, with one output of `size` bytes and a log line. */
  const finishedJob = async (name: string, size: number, at: number): Promise<{ id: JobId; output: string }> => {
    if (!(await store.getNode(nodeId)))
      await store.upsertNode({
        id: nodeId, name: 'n', capacity: { cpuMillis: 8000, memoryBytes: 8 * GiB, gpus: 0, diskBytes: 100 * GiB },
        facts: { hostname: 'n', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 8, memoryBytes: 8 * GiB, diskBytes: 100 * GiB, gpus: [] },
        labels: {}, agentVersion: 't', address: null, now: at,
      });
    const id = newJobId(at);
    await store.createJob({ id, name, spec: {}, compiled: compileJobSpec({ name, command: ['x'] }), inputs: [], createdAt: at, warnings: [] });
    const [a] = (await store.applyPlan([{ attemptId: newAttemptId(at), taskId: taskIdOf(id, 0), nodeId, prefetch: false }], at, { overcommit: 1 })).created;
    const body = Buffer.alloc(size, name);
    await blobs.put(sha(body), Readable.from([body]), 10 * 1024 * 1024);
    await logs.append(new Map([[a!.id, { jobId: id, text: `log of ${name}\n` }]]));
    await store.recordReports([], [{ attemptId: a!.id, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: at, finishedAt: at, outputs: [{ path: 'o', size, sha256: sha(body) }] }], at, { maxSystemRetries: 3 });
    return { id, output: sha(body) };
  };

  it('over the size limit, the oldest finished work goes first, then nothing once under it; a dry run changes nothing', async () => {
    const t = Date.now() - 10 * HOUR;
    const oldest = await finishedJob('oldest', 4000, t);
    const middle = await finishedJob('middle', 3000, t + HOUR);
    const newest = await finishedJob('newest', 2000, t + 2 * HOUR);
    now = Date.now() + 2 * HOUR; // past the grace for every file written above
    // Room for everything but the oldest job's output.
    const lc = new DataLifecycle({ store, blobs, logs, clock, log: pino({ level: 'silent' }), settings: { maxAgeMs: null, maxBytes: 5500, intervalMs: HOUR, graceMs: HOUR }, databaseFiles: [join(dir, 'db.sqlite')] });
    const dry = await lc.collect({ dryRun: true });
    assert.deepEqual(dry.removed.map((w) => [w.id, w.why]), [[oldest.id, 'size']]);
    assert.deepEqual([dry.blobs.count, dry.blobs.bytes, dry.logs.jobs], [1, 4000, 1]);
    assert.ok(await store.getJob(oldest.id));
    assert.equal(lc.lastGc, null, 'a dry run is not recorded as the last collection');

    const real = await lc.collect({ dryRun: false });
    assert.deepEqual(real.removed.map((w) => w.id), [oldest.id]);
    assert.equal(real.bytesFreed, 4000 + real.logs.bytes);
    assert.equal(await store.getJob(oldest.id), null);
    assert.equal(await blobs.has(oldest.output), false);
    assert.deepEqual([await blobs.has(middle.output), await blobs.has(newest.output)], [true, true]);
    assert.equal(existsSync(join(dir, 'logs', oldest.id)), false);
    assert.equal(lc.lastGc, real);
    const again = await lc.collect({ dryRun: false });
    assert.deepEqual([again.jobs, again.blobs.count, again.logs.jobs], [0, 0, 0]);
  });

  it('unreferenced files are swept only past the grace; logs of jobs that no longer exist go too', async () => {
    now = Date.now();
    const stray = Buffer.from('uploaded for a submit still on its way');
    await blobs.put(sha(stray), Readable.from([stray]), 1024);
    const orphan = join(dir, 'logs', 'job_orphan');
    await mkdir(orphan, { recursive: true });
    await writeFile(join(orphan, 'att_x.log'), 'left by a crash between rows and files\n');
    const lc = new DataLifecycle({ store, blobs, logs, clock, log: pino({ level: 'silent' }), settings: { maxAgeMs: null, maxBytes: null, intervalMs: HOUR, graceMs: HOUR }, databaseFiles: [join(dir, 'db.sqlite'), join(dir, 'db.sqlite-wal')] });
    let r = await lc.collect({ dryRun: false });
    assert.deepEqual([r.blobs.count, r.logs.jobs], [0, 0], 'within the grace: kept');
    assert.ok(await blobs.has(sha(stray)));
    now = Date.now() + 2 * HOUR;
    r = await lc.collect({ dryRun: false });
    assert.deepEqual([r.blobs.count, r.logs.jobs], [1, 1]);
    assert.equal(await blobs.has(sha(stray)), false);
    assert.equal(existsSync(orphan), false);
    // Disk use as `dsg status` shows it.
    const s = await lc.status();
    assert.ok(s.disk.databaseBytes > 0);
    assert.deepEqual(s.disk.blobs.count, 2);
    assert.deepEqual(s.jobs, { succeeded: 2 });
    assert.deepEqual(s.nodes, { online: 1 });
  });

  it('deletes in commits of at most 20,000 tasks (so the event loop is never held long), oldest first', async () => {
    now = Date.now();
    const ids: JobId[] = [];
    for (let k = 0; k < 12; k++) {
      const id = newJobId(now + k);
      ids.push(id);
      await store.createJob({ id, name: `sweep-${k}`, spec: {}, compiled: compileJobSpec({ name: 'sweep', command: ['x'], array: 5000 }), inputs: [], createdAt: now, warnings: [] });
      await store.requestCancel(id, now + k);
      await store.cancelQueuedTasks(id, { from: 0, to: 5000 }, now + k);
    }
    const commits: number[] = [];
    const spy = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'deleteFinishedWork')
          return async (items: Parameters<Store['deleteFinishedWork']>[0]) => {
            let tasks = 0;
            for (const it of items) tasks += (await target.getJob(it.id as JobId))?.taskCount ?? 0;
            commits.push(tasks);
            return target.deleteFinishedWork(items);
          };
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    now += 2 * HOUR;
    const lc = new DataLifecycle({ store: spy, blobs, logs, clock, log: pino({ level: 'silent' }), settings: { maxAgeMs: HOUR, maxBytes: null, intervalMs: HOUR, graceMs: HOUR }, databaseFiles: [] });
    const r = await lc.collect({ dryRun: false });
    assert.deepEqual(r.removed.filter((w) => w.name.startsWith('sweep-')).map((w) => w.id), ids);
    assert.ok(commits.length >= 3 && commits.every((n) => n <= 20_000), `commits of ${commits.join(', ')} tasks`);
    for (const id of ids) assert.equal(await store.getJob(id), null);
  });

  it('a real coordinator collects on its own, on its interval', async () => {
    const data = await mkdtemp(join(tmpdir(), 'dsg-gc-coord-'));
    // Finished work is kept 0.5 s; a collection every 0.6 s.
    const c = await startCoordinator({ dataDir: data, port: 0, host: '127.0.0.1', logLevel: 'silent', retention: { maxAgeDays: 0.5 / 86_400, intervalMinutes: 0.01, graceMinutes: 0 } });
    try {
      const call = async (method: string, path: string, body?: unknown) =>
        fetch(`${c.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${c.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
      // No agent: a job cancelled before it ran is finished work.
      const { job } = (await (await call('POST', '/jobs', { spec: { name: 'cancelled', command: ['true'] } })).json()) as { job: { id: string } };
      assert.equal((await call('POST', `/jobs/${job.id}/cancel`)).status, 200);
      const t0 = Date.now();
      while ((await call('GET', `/jobs/${job.id}`)).status !== 404) {
        assert.ok(Date.now() - t0 < 10_000, 'collected within 10 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      const status = (await (await call('GET', '/status')).json()) as { lastGc: { jobs: number } | null };
      assert.ok(status.lastGc);
    } finally {
      await c.close();
      await rm(data, { recursive: true, force: true });
    }
  });
});
