// Cancelling in chunks: a real SQLite store in a temp dir, the engine with a fake agent link and a fake clock.
// While a big job's queued tasks are being cancelled, chunk by chunk, a node joins and a dispatch pass runs: it
// must start none of that job's tasks, and the job queued behind it runs once the cancel is done.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { newNodeId, type HelloMessage } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteStore, type Store } from '@dsg/store';
import { Engine } from '@dsg/coordinator';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { submitJob } from '../src/engine/submit.js';
import { FakeLink } from './fixtures/fake-link.js';


const hello: HelloMessage = {
  type: 'hello', protocol: 1, nodeId: null, name: 'n', agentVersion: 'test',
  capacity: { cpuMillis: 2000, memoryBytes: 8 * 1024 ** 3, gpus: 0, diskBytes: 10 * 1024 ** 3 },
  facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'test', cores: 2, memoryBytes: 8 * 1024 ** 3, diskBytes: 10 * 1024 ** 3, gpus: [] },
  labels: {}, running: [],
};

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('job canceller', () => {
  it('cancels a big job chunk by chunk; a dispatch pass meanwhile starts none of its tasks; the next job runs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-canceller-'));
    const store: Store = openSqliteStore({ file: join(dir, 'db.sqlite') });
    await store.init();
    const blobs = new FileBlobStore(join(dir, 'blobs'));
    await blobs.init();
    const now = 1_700_000_000_000;
    const clock = { now: () => now };
    const link = new FakeLink();
    const engine = new Engine(store, blobs, new FileLogStore(join(dir, 'logs')), clock, {
      heartbeatIntervalMs: 5000, nodeTimeoutMs: 30_000, reconcileGraceMs: 10_000, reportBatchMs: 0,
      policy: { maxSystemRetries: 3 }, scheduler: DEFAULT_SCHEDULER_CONFIG,
    }, pino({ level: 'silent' }));
    try {
      await engine.start(link);
      const big = await submitJob({ spec: { name: 'big', command: ['true'], array: 7000 } }, { store, blobs, clock });
      const next = await submitJob({ spec: { name: 'next', command: ['true'], array: 2 } }, { store, blobs, clock });

      // After the first chunk, a node joins and the engine runs a dispatch pass before the next chunk.
      const real = store.cancelQueuedTasks.bind(store);
      let chunks = 0;
      let dispatchedMidCancel = -1;
      (store as { cancelQueuedTasks: Store['cancelQueuedTasks'] }).cancelQueuedTasks = async (...args) => {
        const n = await real(...args);
        if (++chunks === 1) {
          const id = await engine.onHello(hello, newNodeId(now), '127.0.0.1');
          link.live.add(id);
          engine.onNodeReady();
          await turns(20);
          dispatchedMidCancel = link.assigned.filter((a) => a.jobId === big.id).length;
        }
        return n;
      };
      const r = await engine.cancels.cancel(big.id);
      assert.equal(chunks, 4, '7,000 tasks in chunks of 2,000');
      assert.equal(dispatchedMidCancel, 0, 'none of its tasks was dispatched while the job was being cancelled');
      assert.deepEqual([r?.alreadyFinished, r?.job.state, r?.job.counts.cancelled], [false, 'cancelled', 7000]);
      await turns(20);
      // The job behind it is not held up by the cancel (dispatch reads the queue per job), and only it runs.
      assert.deepEqual(link.assigned.map((a) => a.jobId), [next.id, next.id], 'the job behind it runs, and only it');
      assert.equal((await store.getJob(big.id))?.counts.assigned, 0);

      // Cancelling it again, now that it has finished, changes nothing.
      const again = await engine.cancels.cancel(big.id);
      assert.equal(again?.alreadyFinished, true);
    } finally {
      await engine.stop();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
