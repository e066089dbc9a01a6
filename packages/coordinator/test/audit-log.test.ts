// The audit log on a real SQLite file through the real API (fastify inject): every state-changing action is
// recorded with who, what, when and from where; reads are not; the chain verifies; and tampering with the file —
// an edited, deleted, inserted or reordered row, a cut tail, a history rewritten with fresh hashes — is caught by
// verify, naming the entry. The schema itself refuses UPDATE and DELETE.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { AUDIT_GENESIS, auditHash, newNodeId, type AuditEntryV1, type AuditVerifyV1 } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteDatabase, openSqliteStore, type SqlDatabase, type Store } from '@dsg/store';
import { Engine } from '@dsg/coordinator';
import { Authenticator, createToken } from '../src/auth.js';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { assertAllDescribed, checkResponsesAgainstOpenApi } from './fixtures/openapi-check.js';
import { buildApi } from '../src/http/server.js';
import { AuditLog, sha256Hex } from '../src/service/audit-log.js';

const STATIC_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'web', 'dist', 'app'); // the built dashboard
const GiB = 1024 ** 3;

interface Grid {
  store: Store;
  engine: Engine;
  app: FastifyInstance;
  auditLog: AuditLog;
  close(): Promise<void>;
}

/** A coordinator's API over the database and anchor in `dir`. */
async function open(dir: string): Promise<Grid> {
  const clock = { now: () => Date.now() };
  const store = openSqliteStore({ file: join(dir, 'db.sqlite') });
  await store.init();
  const blobs = new FileBlobStore(join(dir, 'blobs'));
  await blobs.init();
  const logs = new FileLogStore(join(dir, 'logs'));
  const log = pino({ level: 'silent' });
  const engine = new Engine(store, blobs, logs, clock, { heartbeatIntervalMs: 5000, nodeTimeoutMs: 30000, reconcileGraceMs: 10000, reportBatchMs: 0, policy: { maxSystemRetries: 3 }, scheduler: DEFAULT_SCHEDULER_CONFIG }, log);
  const auth = new Authenticator(store, clock.now);
  const auditLog = new AuditLog({ store, clock, log, anchorFile: join(dir, 'audit-head.json') });
  const app = buildApi({ store, engine, blobs, logs, auth, clock, log, staticDir: STATIC_DIR, startedAt: clock.now(), maxUploadBytes: 1 << 20, auditLog });
  const described = checkResponsesAgainstOpenApi(app);
  return {
    store, engine, app, auditLog,
    close: async () => {
      await app.close();
      await engine.stop();
      await auditLog.flush();
      await store.close();
      assertAllDescribed(described);
    },
  };
}

const verifyOf = async (g: Grid, head?: string): Promise<AuditVerifyV1> =>
  (await g.app.inject({ method: 'GET', url: `/api/v1/audit/verify${head ? `?head=${head}` : ''}`, headers: { authorization: `Bearer ${admin}` } })).json();
let admin = '';

describe('audit log: recorded actions and tamper detection on a real SQLite file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dsg-audit-'));
  const pristine = join(dir, 'pristine');
  let entries: AuditEntryV1[] = [];

  before(async () => {
    const g = await open(dir);
    try {
      const now = Date.now();
      admin = (await createToken(g.store, 'admin', 'operator', now)).secret;
      const alice = (await createToken(g.store, 'submitter', 'alice', now, { projects: ['climate'] })).secret;
      const reader = (await createToken(g.store, 'reader', 'viewer', now)).secret;
      const nodeId = newNodeId(now);
      await g.store.upsertNode({
        id: nodeId, name: 'w1', capacity: { cpuMillis: 4000, memoryBytes: 4 * GiB, gpus: 0, diskBytes: 10 * GiB },
        facts: { hostname: 'w1', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 4, memoryBytes: 4 * GiB, diskBytes: 10 * GiB, gpus: [] },
        labels: {}, agentVersion: 't', address: null, now,
      });
      const as = (t: string) => ({ authorization: `Bearer ${t}` });
      const call = async (method: 'GET' | 'POST' | 'DELETE', url: string, token: string, payload?: unknown, status = 200) => {
        const r = await g.app.inject({ method, url, headers: as(token), ...(payload !== undefined ? { payload: payload as object } : {}), remoteAddress: '10.1.2.3' });
        assert.equal(r.statusCode, status, `${method} ${url}: ${r.body}`);
        return r.json();
      };
      const job = (await call('POST', '/api/v1/jobs', alice, { spec: { name: 'sweep', project: 'climate', script: 'true', array: 3 } }, 201)).job.id as string;
      await call('GET', `/api/v1/jobs/${job}`, reader); // a read: not recorded
      await call('POST', `/api/v1/jobs/${job}/cancel`, alice);
      await call('POST', `/api/v1/jobs/${job}/retry`, admin);
      const wf = (await call('POST', '/api/v1/workflows', admin, { spec: { name: 'pipe', stages: { a: { script: 'true' }, b: { script: 'true', needs: ['a'] } } } }, 201)).workflow.id as string;
      await call('POST', `/api/v1/workflows/${wf}/cancel`, admin);
      const tok = (await call('POST', '/api/v1/tokens', admin, { role: 'reader', name: 'wall' }, 201)).token.id as string;
      await call('DELETE', `/api/v1/tokens/${tok}`, admin);
      await call('POST', '/api/v1/nodes/w1/cordon', admin);
      await call('POST', '/api/v1/nodes/w1/uncordon', admin);
      await call('POST', '/api/v1/nodes/w1/drain', admin);
      await call('POST', '/api/v1/nodes/w1/remove', admin);
      const signIn = await g.app.inject({ method: 'POST', url: '/api/v1/session', payload: { token: reader }, remoteAddress: '10.9.9.9' });
      assert.equal(signIn.statusCode, 201, signIn.body);
      await call('POST', '/api/v1/gc', admin, {});
      await call('POST', '/api/v1/gc', admin, { dryRun: true }); // a dry run changes nothing: not recorded
      const page = await call('GET', '/api/v1/audit?limit=100', reader);
      entries = (page.items as AuditEntryV1[]).reverse();
    } finally {
      await g.close();
    }
    copyFileSync(join(dir, 'db.sqlite'), pristine);
    copyFileSync(join(dir, 'audit-head.json'), `${pristine}.head`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('records every state-changing action, in order, with who, what and from where', () => {
    assert.deepEqual(entries.map((e) => e.action), [
      'job.submitted', 'job.cancelled', 'job.retried', 'workflow.submitted', 'workflow.cancelled', 'token.created', 'token.revoked',
      'node.cordoned', 'node.uncordoned', 'node.drained', 'node.removed', 'session.signed-in', 'data.collected',
    ]);
    assert.deepEqual(entries.map((e) => e.seq), entries.map((_, i) => i + 1));
    const [submitted, cancelled, retried] = entries;
    assert.deepEqual(submitted!.actor, { kind: 'token', id: submitted!.actor.id, name: 'alice', role: 'submitter' });
    assert.equal(submitted!.origin, '10.1.2.3');
    assert.deepEqual({ name: submitted!.detail['name'], project: submitted!.detail['project'], tasks: submitted!.detail['tasks'] }, { name: 'sweep', project: 'climate', tasks: 3 });
    assert.equal(cancelled!.actor.name, 'alice');
    assert.equal(retried!.actor.name, 'operator');
    assert.equal(retried!.target, submitted!.target);
    const signIn = entries.find((e) => e.action === 'session.signed-in')!;
    assert.equal(signIn.actor.name, 'viewer');
    assert.equal(signIn.origin, '10.9.9.9');
    assert.equal(entries[0]!.prevHash, AUDIT_GENESIS);
    for (let i = 1; i < entries.length; i++) assert.equal(entries[i]!.prevHash, entries[i - 1]!.hash);
  });

  it('filters by action and actor, and pages newest first', async () => {
    const g = await open(dir);
    try {
      const get = async (q: string) => (await g.app.inject({ method: 'GET', url: `/api/v1/audit?${q}`, headers: { authorization: `Bearer ${admin}` } })).json();
      assert.deepEqual((await get('action=node.drained')).items.map((e: AuditEntryV1) => e.action), ['node.drained']);
      assert.deepEqual((await get('actor=alice')).items.map((e: AuditEntryV1) => e.action), ['job.cancelled', 'job.submitted']);
      const p1 = await get('limit=5');
      assert.deepEqual(p1.items.map((e: AuditEntryV1) => e.seq), [13, 12, 11, 10, 9]);
      assert.deepEqual((await get(`limit=5&before=${p1.nextBefore}`)).items.map((e: AuditEntryV1) => e.seq), [8, 7, 6, 5, 4]);
      const bad = await g.app.inject({ method: 'GET', url: '/api/v1/audit?limit=0&since=yesterday', headers: { authorization: `Bearer ${admin}` } });
      assert.equal(bad.statusCode, 400);
      assert.match(bad.body, /query\.limit/);
    } finally {
      await g.close();
    }
  });

  it('an intact log verifies, against the anchor and a head kept elsewhere', async () => {
    const g = await open(dir);
    try {
      const v = await verifyOf(g);
      assert.equal(v.ok, true, JSON.stringify(v.problems));
      assert.equal(v.entries, 13);
      assert.equal(v.anchor, 'match');
      const kept = `${v.head.seq}:${v.head.hash}`;
      assert.equal((await verifyOf(g, kept)).expectedHeadFound, true);
      assert.equal((await verifyOf(g, `3:${'a'.repeat(64)}`)).ok, false);
    } finally {
      await g.close();
    }
  });

  it('the schema refuses UPDATE and DELETE on the log', () => {
    const db = openSqliteDatabase(join(dir, 'db.sqlite'));
    try {
      assert.throws(() => db.prepare("UPDATE audit_log SET target = 'x' WHERE seq = 1").run(), /append-only/);
      assert.throws(() => db.prepare('DELETE FROM audit_log WHERE seq = 1').run(), /append-only/);
    } finally {
      db.close();
    }
  });

  /** Restore the pristine file, tamper with it as an attacker with the file would (triggers dropped), verify. */
  const tamper = async (how: (db: SqlDatabase) => void, opts: { keepAnchor?: boolean } = {}): Promise<AuditVerifyV1> => {
    copyFileSync(pristine, join(dir, 'db.sqlite'));
    rmSync(join(dir, 'db.sqlite-wal'), { force: true });
    rmSync(join(dir, 'db.sqlite-shm'), { force: true });
    if (opts.keepAnchor !== false) copyFileSync(`${pristine}.head`, join(dir, 'audit-head.json'));
    const db = openSqliteDatabase(join(dir, 'db.sqlite'));
    db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;');
    how(db);
    db.close();
    const g = await open(dir);
    try {
      return await verifyOf(g);
    } finally {
      await g.close();
    }
  };
  const rehashAll = (db: SqlDatabase): void => {
    const rows = db.prepare('SELECT * FROM audit_log ORDER BY seq').all() as Array<Record<string, string | number>>;
    let prev = AUDIT_GENESIS;
    for (const r of rows) {
      const input = {
        at: r['at'] as number, actor: { kind: r['actor_kind'] as 'token', id: r['actor_id'] as string, name: r['actor_name'] as string, role: r['actor_role'] as string },
        action: r['action'] as string, target: r['target'] as string, detail: JSON.parse(r['detail_json'] as string) as Record<string, unknown>, origin: r['origin'] as string,
      };
      const hash = auditHash(sha256Hex, prev, r['seq'] as number, input);
      db.prepare('UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?').run(prev, hash, r['seq']);
      prev = hash;
    }
  };

  it('detects an edited entry and names it', async () => {
    const v = await tamper((db) => db.prepare(`UPDATE audit_log SET actor_name = 'operator' WHERE seq = 2`).run());
    assert.equal(v.ok, false);
    assert.deepEqual(v.problems.map((p) => p.seq), [2]);
    assert.match(v.problems[0]!.reason, /entry 2 was edited/);
  });

  it('detects a deleted entry', async () => {
    const v = await tamper((db) => db.prepare('DELETE FROM audit_log WHERE seq = 5').run());
    assert.equal(v.ok, false);
    assert.equal(v.problems[0]!.seq, 5);
    assert.match(v.problems[0]!.reason, /entry 5 is missing/);
  });

  it('detects an inserted entry', async () => {
    const v = await tamper((db) => {
      // Make room at seq 4 and forge an entry there that links to entry 3 correctly.
      db.prepare('UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 4').run();
      db.prepare('UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1004').run();
      const three = db.prepare('SELECT hash FROM audit_log WHERE seq = 3').get() as { hash: string };
      const input = { at: Date.now(), actor: { kind: 'token' as const, id: 'tok_x', name: 'operator', role: 'admin' }, action: 'token.created', target: 'tok_forged', detail: {}, origin: '127.0.0.1' };
      db.prepare(`INSERT INTO audit_log (seq, at, actor_kind, actor_id, actor_name, actor_role, action, target, detail_json, origin, prev_hash, hash)
                  VALUES (4, ?, 'token', 'tok_x', 'operator', 'admin', 'token.created', 'tok_forged', '{}', '127.0.0.1', ?, ?)`)
        .run(input.at, three.hash, auditHash(sha256Hex, three.hash, 4, input));
    });
    assert.equal(v.ok, false);
    assert.equal(v.problems[0]!.seq, 5, 'the entry after the forged one no longer links');
  });

  it('detects reordered entries', async () => {
    const v = await tamper((db) => {
      db.prepare('UPDATE audit_log SET seq = 100 WHERE seq = 6').run();
      db.prepare('UPDATE audit_log SET seq = 6 WHERE seq = 7').run();
      db.prepare('UPDATE audit_log SET seq = 7 WHERE seq = 100').run();
    });
    assert.equal(v.ok, false);
    assert.equal(v.problems[0]!.seq, 6);
  });

  it('detects a cut tail through the anchor', async () => {
    const v = await tamper((db) => db.prepare('DELETE FROM audit_log WHERE seq > 10').run());
    assert.equal(v.ok, false);
    assert.equal(v.anchor, 'behind');
    assert.equal(v.problems[0]!.seq, 11);
  });

  it('detects a history rewritten with fresh hashes through the anchor', async () => {
    const v = await tamper((db) => {
      db.prepare(`UPDATE audit_log SET actor_name = 'nobody' WHERE seq = 1`).run();
      rehashAll(db);
    });
    assert.equal(v.ok, false);
    assert.equal(v.anchor, 'mismatch');
  });

  it('a rewrite that also replaces the anchor passes here, and is caught by a head kept elsewhere', async () => {
    const kept = `${entries[12]!.seq}:${entries[12]!.hash}`;
    copyFileSync(pristine, join(dir, 'db.sqlite'));
    rmSync(join(dir, 'audit-head.json'), { force: true });
    const db = openSqliteDatabase(join(dir, 'db.sqlite'));
    db.exec('DROP TRIGGER audit_log_no_update;');
    db.prepare(`UPDATE audit_log SET actor_name = 'nobody' WHERE seq = 1`).run();
    rehashAll(db);
    db.close();
    const g = await open(dir);
    try {
      const v = await verifyOf(g);
      assert.equal(v.ok, true, 'documented limit: with the file and the anchor both rewritten, this machine alone cannot tell');
      assert.equal(v.anchor, 'none');
      const w = await verifyOf(g, kept);
      assert.equal(w.ok, false);
      assert.equal(w.expectedHeadFound, false);
    } finally {
      await g.close();
    }
  });
});
