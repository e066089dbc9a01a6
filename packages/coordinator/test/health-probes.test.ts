// /healthz and /readyz: open to anyone (no token), revealing only ok / ready or a short reason. /readyz is ready
// only while the engine takes work and the store commits a real write: before start, after stop, and with a
// closed store it answers 503 with why.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteDatabase, openSqliteStore, type Store } from '@dsg/store';
import { Engine, type AgentLink } from '@dsg/coordinator';
import { Authenticator } from '../src/auth.js';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { buildApi } from '../src/http/server.js';

const link: AgentLink = { send: () => true, connectedNodes: () => new Set(), disconnect: () => {} };

describe('health probes', () => {
  let dir: string;
  let store: Store;
  let app: FastifyInstance;
  let engine: Engine;
  const clock = { now: () => Date.now() };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-probes-'));
    store = openSqliteStore({ file: join(dir, 'db.sqlite') });
    await store.init();
    const blobs = new FileBlobStore(join(dir, 'blobs'));
    await blobs.init();
    const log = pino({ level: 'silent' });
    engine = new Engine(store, blobs, new FileLogStore(join(dir, 'logs')), clock, { heartbeatIntervalMs: 5000, nodeTimeoutMs: 30000, reconcileGraceMs: 10000, reportBatchMs: 0, policy: { maxSystemRetries: 3 }, scheduler: DEFAULT_SCHEDULER_CONFIG }, log);
    app = buildApi({ store, engine, blobs, logs: new FileLogStore(join(dir, 'logs')), auth: new Authenticator(store), clock, log, staticDir: dir, startedAt: clock.now(), maxUploadBytes: 1024 });
  });
  after(async () => {
    await app.close();
    await engine.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (url: string) => {
    const r = await app.inject({ method: 'GET', url });
    return { status: r.statusCode, body: r.json() as Record<string, unknown> };
  };

  it('/healthz answers 200 {status: ok} without a token, and nothing else', async () => {
    assert.deepEqual(await get('/healthz'), { status: 200, body: { status: 'ok' } });
  });

  it('/readyz is 503 until the engine takes work, then 200 {status: ready} without a token', async () => {
    assert.deepEqual(await get('/readyz'), { status: 503, body: { status: 'unavailable', reason: 'not accepting work (starting or stopping)' } });
    await engine.start(link);
    assert.deepEqual(await get('/readyz'), { status: 200, body: { status: 'ready' } });
  });

  it('/readyz really writes: the probe commits a row that a second connection sees', async () => {
    const before_ = Date.now();
    assert.equal((await get('/readyz')).status, 200);
    const other = openSqliteDatabase(join(dir, 'db.sqlite'), { readonly: true }) // the driver the store uses (never two in one process);
    try {
      const row = other.prepare("SELECT value FROM meta WHERE key = 'ready_probe'").get() as { value: number } | undefined;
      assert.ok(row && row.value >= before_, 'the probe committed its write');
    } finally {
      other.close();
    }
  });

  it('/readyz is 503 "store not writable" when the store cannot commit, revealing no error details', async () => {
    await store.close();
    const r = await get('/readyz');
    assert.deepEqual(r, { status: 503, body: { status: 'unavailable', reason: 'store not writable' } });
    assert.deepEqual(await get('/healthz'), { status: 200, body: { status: 'ok' } }, 'the process is still alive');
  });
});
