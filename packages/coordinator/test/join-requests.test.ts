// Joining by approval and join-code limits, against a real SQLite store in a temp dir: the HTTP routes through
// fastify's inject, the agent socket through a real WebSocket to the AgentHub on a listening server.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import WebSocket from 'ws';
import { AGENT_WS_PATH, pendingNodeIdOf, PROTOCOL_VERSION, type PendingNodeV1 } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteStore, type Store } from '@dsg/store';
import { Engine } from '@dsg/coordinator';
import { Authenticator, createToken } from '../src/auth.js';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { AgentHub } from '../src/agents/agent-hub.js';
import { buildApi } from '../src/http/server.js';
import { RateLimiter } from '../src/http/rate-limit.js';

const STATIC_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'static');
const GiB = 1024 ** 3;
const FACTS = { hostname: 'lab-pc', os: 'Linux 6.1', arch: 'x64', cpuModel: 'Xeon', cores: 4, memoryBytes: 8 * GiB, gpus: [] as string[] };
const newKey = (): string => randomBytes(32).toString('base64url');
const idOf = (key: string): string => pendingNodeIdOf(createHash('sha256').update(key).digest('hex'));

interface Grid {
  dir: string;
  store: Store;
  app: FastifyInstance;
  hub: AgentHub;
  clock: { t: number; now: () => number };
  admin: { authorization: string };
  reader: { authorization: string };
  url: string;
  close(keepDir?: boolean): Promise<void>;
}

async function grid(opts: { dir?: string; maxPending?: number; failedAuthPerMinute?: number; failedAuthGlobalPerMinute?: number } = {}): Promise<Grid> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'dsg-join-')));
  const clock = { t: Date.now(), now: () => clock.t };
  const store = openSqliteStore({ file: join(dir, 'db.sqlite') });
  await store.init();
  const blobs = new FileBlobStore(join(dir, 'blobs'));
  await blobs.init();
  const logs = new FileLogStore(join(dir, 'logs'));
  const log = pino({ level: 'silent' });
  const engine = new Engine(store, blobs, logs, clock, { heartbeatIntervalMs: 5000, nodeTimeoutMs: 30000, reconcileGraceMs: 10000, reportBatchMs: 0, policy: { maxSystemRetries: 3 }, scheduler: DEFAULT_SCHEDULER_CONFIG }, log);
  const auth = new Authenticator(store, clock.now);
  const rateLimits = { perTokenPerSecond: 0, perTokenBurst: 1, failedAuthPerMinute: opts.failedAuthPerMinute ?? 0, failedAuthGlobalPerMinute: opts.failedAuthGlobalPerMinute ?? 0 };
  const limiter = new RateLimiter(rateLimits, clock.now);
  const now = clock.now();
  const admin = (await createToken(store, 'admin', `admin ${randomBytes(3).toString('hex')}`, now)).secret;
  const reader = (await createToken(store, 'reader', `reader ${randomBytes(3).toString('hex')}`, now)).secret;
  const app = buildApi({ store, engine, blobs, logs, auth, clock, log, staticDir: STATIC_DIR, startedAt: now, maxUploadBytes: 1 << 20, rateLimits, limiter, pendingNodes: { max: opts.maxPending ?? 64 } });
  const hub = new AgentHub(engine, auth, clock, 5000, log, {
    onFailedAuth: (ip) => limiter.failedAuth(ip),
    useToken: (id) => store.useToken(id as never),
    isReservedNode: async (id) => (await store.listJoinRequests('approved')).some((r) => r.nodeId === id),
  });
  hub.attach(app.server);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return {
    dir, store, app, hub, clock, admin: { authorization: `Bearer ${admin}` }, reader: { authorization: `Bearer ${reader}` }, url: `ws://127.0.0.1:${port}${AGENT_WS_PATH}`,
    close: async (keepDir = false) => {
      await hub.close();
      await app.close();
      await engine.stop();
      await store.close();
      if (!keepDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

const ask = (g: Grid, key: string, name = 'lab-pc', extra: Record<string, unknown> = {}) =>
  g.app.inject({ method: 'POST', url: '/api/v1/join-requests', payload: { key, name, facts: FACTS, ...extra } });

/** Open the agent socket with a token and send a hello; resolves to the welcome (or the refusal). */
function join_(g: Grid, token: string, name: string): Promise<{ status: number; body?: string; welcome?: { nodeId: string; credential?: string }; error?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(g.url, { headers: { authorization: `Bearer ${token}` } });
    ws.once('open', () => {
      ws.send(JSON.stringify({
        type: 'hello', protocol: PROTOCOL_VERSION, nodeId: null, name, agentVersion: 'test', running: [], labels: {},
        capacity: { cpuMillis: 4000, memoryBytes: 8 * GiB, gpus: 0, diskBytes: 10 * GiB },
        facts: { hostname: name, os: 'linux', arch: 'x64', cpuModel: 'x', cores: 4, memoryBytes: 8 * GiB, diskBytes: 10 * GiB, gpus: [] },
      }));
    });
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as { type: string; nodeId: string; credential?: string; message?: string };
      if (m.type === 'welcome') resolve({ status: 101, welcome: m });
      else if (m.type === 'error') resolve({ status: 101, error: m.message! });
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += String(c)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', (e) => reject(e));
  });
}

describe('joining by approval', () => {
  it('a machine without a token waits as a pending node; only the admin lists and decides; approval hands the credential to the key holder alone', async () => {
    const g = await grid();
    try {
      const key = newKey();
      const first = await ask(g, key);
      assert.equal(first.statusCode, 202, first.body);
      const req = (first.json() as { request: PendingNodeV1; pollAfterSeconds: number }).request;
      assert.equal(req.id, idOf(key), 'the id the agent prints itself');
      assert.match(req.id, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
      assert.equal(req.state, 'pending');
      assert.deepEqual(req.claimedFacts, FACTS);

      // Listing pending nodes is the admin's: a reader is refused, a wrong state named.
      const list = await g.app.inject({ method: 'GET', url: '/api/v1/nodes?state=pending', headers: g.admin });
      assert.equal(list.statusCode, 200);
      assert.deepEqual((list.json() as { items: PendingNodeV1[] }).items.map((p) => p.id), [req.id]);
      assert.equal((await g.app.inject({ method: 'GET', url: '/api/v1/nodes?state=pending', headers: g.reader })).statusCode, 403);
      const bad = await g.app.inject({ method: 'GET', url: '/api/v1/nodes?state=waiting', headers: g.admin });
      assert.equal(bad.statusCode, 400);
      assert.match((bad.json() as { error: { message: string } }).error.message, /expected "pending"/);
      // A pending node is not a node: no work, nothing in /nodes.
      assert.deepEqual((await g.app.inject({ method: 'GET', url: '/api/v1/nodes', headers: g.admin })).json().items, []);

      // Another machine claims the same name with its own key: a second pending node, another id.
      const otherKey = newKey();
      assert.equal((await ask(g, otherKey)).statusCode, 202);
      const ambiguous = await g.app.inject({ method: 'POST', url: '/api/v1/nodes/lab-pc/approve', headers: g.admin, payload: {} });
      assert.equal(ambiguous.statusCode, 400);
      assert.match(ambiguous.body, /2 machines named lab-pc wait/);
      assert.match(ambiguous.body, new RegExp(req.id));
      // A reader cannot approve.
      assert.equal((await g.app.inject({ method: 'POST', url: `/api/v1/nodes/${req.id}/approve`, headers: g.reader, payload: {} })).statusCode, 403);

      // Approve by the id (any case), as the admin compared it.
      const ok = await g.app.inject({ method: 'POST', url: `/api/v1/nodes/${req.id.toLowerCase()}/approve`, headers: g.admin, payload: {} });
      assert.equal(ok.statusCode, 200, ok.body);
      const approved = (ok.json() as { request: PendingNodeV1 }).request;
      assert.equal(approved.state, 'approved');
      assert.match(approved.nodeId!, /^node_/);
      assert.equal((await g.app.inject({ method: 'POST', url: `/api/v1/nodes/${req.id}/approve`, headers: g.admin, payload: {} })).statusCode, 409, 'decided once');

      // The other key (same name) gets nothing; the key holder gets its credential.
      const other = await ask(g, otherKey);
      assert.equal(other.statusCode, 202);
      assert.equal((other.json() as { credential?: string }).credential, undefined);
      const collected = await ask(g, key);
      assert.equal(collected.statusCode, 200);
      const cred = (collected.json() as { credential: string }).credential;
      assert.match(cred, /^dsg_cred_/);

      // Asked again (the answer lost): a new credential, the first revoked.
      const again = (await ask(g, key)).json() as { credential: string };
      assert.notEqual(again.credential, cred);
      assert.equal((await join_(g, cred, 'lab-pc')).status, 401);
      // With its credential the agent joins as the node id reserved at approval, and no other credential is minted.
      const w = await join_(g, again.credential, 'lab-pc');
      assert.equal(w.welcome?.nodeId, approved.nodeId);
      assert.equal(w.welcome?.credential, undefined);
      const nodes = (await g.app.inject({ method: 'GET', url: '/api/v1/nodes', headers: g.admin })).json().items as Array<{ id: string; name: string }>;
      assert.deepEqual(nodes.map((n) => n.id), [approved.nodeId]);

      const audit = (await g.app.inject({ method: 'GET', url: '/api/v1/audit?limit=50', headers: g.admin })).json() as { items: Array<{ action: string; target: string; detail: Record<string, unknown> }> };
      const entry = audit.items.find((e) => e.action === 'node.approved');
      assert.equal(entry?.target, approved.nodeId);
      assert.equal(entry?.detail['request'], req.id);
    } finally {
      await g.close();
    }
  });

  it('a rejected machine is told why on every poll, stays out, and an approval undoes the rejection', async () => {
    const g = await grid();
    try {
      const key = newKey();
      const id = ((await ask(g, key)).json() as { request: PendingNodeV1 }).request.id;
      const r = await g.app.inject({ method: 'POST', url: `/api/v1/nodes/lab-pc/reject`, headers: g.admin, payload: { reason: 'not a lab machine' } });
      assert.equal(r.statusCode, 200, r.body);
      for (let i = 0; i < 2; i++) {
        const polled = await ask(g, key);
        assert.equal(polled.statusCode, 403);
        const e = (polled.json() as { error: { code: string; message: string } }).error;
        assert.equal(e.code, 'join_rejected');
        assert.match(e.message, /rejected this machine/);
        assert.match(e.message, /"not a lab machine"/);
        assert.match(e.message, new RegExp(`dsg node approve ${id}`));
      }
      assert.deepEqual((await g.app.inject({ method: 'GET', url: '/api/v1/nodes?state=pending', headers: g.admin })).json().items, []);
      assert.equal((await g.app.inject({ method: 'POST', url: `/api/v1/nodes/${id}/reject`, headers: g.admin, payload: {} })).statusCode, 409);
      const reasonTooLong = await g.app.inject({ method: 'POST', url: `/api/v1/nodes/${id}/reject`, headers: g.admin, payload: { reason: 'x'.repeat(501) } });
      assert.equal(reasonTooLong.statusCode, 400);
      // Undo: approve the rejected request; the same agent then collects its credential.
      assert.equal((await g.app.inject({ method: 'POST', url: `/api/v1/nodes/${id}/approve`, headers: g.admin, payload: {} })).statusCode, 200);
      assert.equal((await ask(g, key)).statusCode, 200);
      const audit = (await g.app.inject({ method: 'GET', url: '/api/v1/audit?limit=50', headers: g.admin })).json() as { items: Array<{ action: string; detail: Record<string, unknown> }> };
      assert.equal(audit.items.find((e) => e.action === 'node.rejected')?.detail['reason'], 'not a lab machine');
      assert.equal(audit.items.find((e) => e.action === 'node.approved')?.detail['previously'], 'rejected');
    } finally {
      await g.close();
    }
  });

  it('limits: fields and body bounded, pending nodes capped, new requests per address limited, stale ones forgotten', async () => {
    const g = await grid({ maxPending: 3 });
    try {
      assert.equal((await ask(g, 'short')).statusCode, 400);
      const badName = await ask(g, newKey(), '../etc');
      assert.equal(badName.statusCode, 400);
      assert.match(badName.body, /node name/);
      assert.equal((await ask(g, newKey(), 'pc', { facts: { ...FACTS, cpuModel: 'x'.repeat(201) } })).statusCode, 400);
      assert.equal((await ask(g, newKey(), 'pc', { facts: { ...FACTS, gpus: Array(65).fill('gpu') } })).statusCode, 400);
      assert.equal((await ask(g, newKey(), 'pc', { extra: 1 })).statusCode, 400, 'unknown fields refused');
      const huge = await g.app.inject({ method: 'POST', url: '/api/v1/join-requests', payload: { key: newKey(), name: 'pc', facts: FACTS, pad: 'x'.repeat(20_000) } });
      assert.equal(huge.statusCode, 413);

      const keys = [newKey(), newKey(), newKey()];
      for (const k of keys) assert.equal((await ask(g, k)).statusCode, 202);
      const full = await ask(g, newKey());
      assert.equal(full.statusCode, 429);
      assert.match(full.body, /3 machines already wait for approval/);
      // Known keys still poll.
      assert.equal((await ask(g, keys[0]!)).statusCode, 202);

      // 10 new requests a minute per address (3 made above; the refused one counted too).
      for (let i = 0; i < 6; i++) await ask(g, newKey());
      const limited = await ask(g, newKey());
      assert.equal(limited.statusCode, 429);
      assert.match(limited.body, /too many new join requests from/);
      assert.ok(Number(limited.headers['retry-after']) > 0);

      // Not polled for 24 h: forgotten, making room.
      g.clock.t += 24 * 3600_000 + 60_000;
      await ask(g, keys[0]!); // still polling: kept
      assert.deepEqual((await g.app.inject({ method: 'GET', url: '/api/v1/nodes?state=pending', headers: g.admin })).json().items.map((p: PendingNodeV1) => p.id), [idOf(keys[0]!)]);
      assert.equal((await ask(g, newKey())).statusCode, 202);
    } finally {
      await g.close();
    }
  });

  it('pending and approved machines survive a coordinator restart (same data dir)', async () => {
    const g = await grid();
    const key = newKey();
    const waiting = newKey();
    assert.equal((await ask(g, key)).statusCode, 202);
    assert.equal((await ask(g, waiting, 'other')).statusCode, 202);
    const id = idOf(key);
    assert.equal((await g.app.inject({ method: 'POST', url: `/api/v1/nodes/${id}/approve`, headers: g.admin, payload: {} })).statusCode, 200);
    await g.close(true);
    const g2 = await grid({ dir: g.dir });
    try {
      assert.deepEqual((await g2.app.inject({ method: 'GET', url: '/api/v1/nodes?state=pending', headers: g2.admin })).json().items.map((p: PendingNodeV1) => p.id), [idOf(waiting)]);
      const collected = await ask(g2, key);
      assert.equal(collected.statusCode, 200);
      const w = await join_(g2, (collected.json() as { credential: string }).credential, 'lab-pc');
      assert.ok(w.welcome, JSON.stringify(w));
    } finally {
      await g2.close();
    }
  });
});

describe('join codes: uses, revocation, guessing', () => {
  it('a code admits at most --uses machines; used up, revoked or expired it is refused saying which', async () => {
    const g = await grid();
    try {
      const made = await g.app.inject({ method: 'POST', url: '/api/v1/join-codes', headers: g.admin, payload: { maxUses: 2, name: 'class' } });
      assert.equal(made.statusCode, 201, made.body);
      const { code, token } = made.json() as { code: string; token: { maxUses: number; uses: number; status: string } };
      assert.equal(token.maxUses, 2);
      assert.equal(token.uses, 0);
      assert.equal((await g.app.inject({ method: 'POST', url: '/api/v1/join-codes', headers: g.admin, payload: { maxUses: 0 } })).statusCode, 400);
      assert.equal((await g.app.inject({ method: 'POST', url: '/api/v1/join-codes', headers: g.admin, payload: { maxUses: 1.5 } })).statusCode, 400);
      const a = await join_(g, code, 'pc-a');
      const b = await join_(g, code, 'pc-b');
      assert.ok(a.welcome?.credential && b.welcome?.credential);
      const third = await join_(g, code, 'pc-c');
      assert.equal(third.status, 401);
      assert.match(third.body!, /used up: it has admitted 2 machines/);
      const listed = (await g.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: g.admin })).json().items.find((t: { name: string }) => t.name === 'class');
      assert.equal(listed.status, 'used-up');
      assert.equal(listed.uses, 2);

      const second = (await g.app.inject({ method: 'POST', url: '/api/v1/join-codes', headers: g.admin, payload: { name: 'later' } })).json() as { code: string; token: { maxUses: number } };
      assert.equal(second.token.maxUses, 100, 'default uses');
      assert.equal((await g.app.inject({ method: 'DELETE', url: '/api/v1/tokens/later', headers: g.admin })).statusCode, 200);
      const revoked = await join_(g, second.code, 'pc-d');
      assert.equal(revoked.status, 401);
      assert.match(revoked.body!, /join code was revoked/);
      const audit = (await g.app.inject({ method: 'GET', url: '/api/v1/audit?limit=50', headers: g.admin })).json() as { items: Array<{ action: string }> };
      assert.ok(audit.items.some((e) => e.action === 'joincode.revoked'));

      const third2 = (await g.app.inject({ method: 'POST', url: '/api/v1/join-codes', headers: g.admin, payload: { expiresInSeconds: 60 } })).json() as { code: string };
      g.clock.t += 61_000;
      const expired = await join_(g, third2.code, 'pc-e');
      assert.equal(expired.status, 401);
      assert.match(expired.body!, /join code expired/);
    } finally {
      await g.close();
    }
  });

  it('two machines racing for a code\'s last use: exactly one gets in', async () => {
    const g = await grid();
    try {
      const { code } = (await g.app.inject({ method: 'POST', url: '/api/v1/join-codes', headers: g.admin, payload: { maxUses: 1 } })).json() as { code: string };
      const results = await Promise.all([join_(g, code, 'r1'), join_(g, code, 'r2'), join_(g, code, 'r3')]);
      assert.equal(results.filter((r) => r.welcome).length, 1, JSON.stringify(results));
    } finally {
      await g.close();
    }
  });

  it('failed code guesses on the agent socket count against the per-address and the global failed-auth limits', async () => {
    const g = await grid({ failedAuthPerMinute: 3, failedAuthGlobalPerMinute: 5 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await join_(g, 'apple-river-cannon-ozone', 'guess')).status);
      assert.deepEqual(statuses, [401, 401, 401, 429]);
      const over = await join_(g, 'apple-river-cannon-ozone', 'guess');
      assert.match(over.body!, /too many failed authentications/);
      // The global bound: failures over HTTP from "other addresses" spend it too (inject uses 127.0.0.1 as well, so
      // spend the rest of the global budget and check its message).
      g.clock.t += 120_000;
      const seen: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await g.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: { authorization: 'Bearer wrong' }, remoteAddress: `10.0.0.${i + 1}` });
        seen.push(`${r.statusCode}`);
        if (r.statusCode === 429) assert.match(r.body, /from all addresses/);
      }
      assert.deepEqual(seen, ['401', '401', '401', '401', '401', '429']);
      // A valid token is never refused by it.
      assert.equal((await g.app.inject({ method: 'GET', url: '/api/v1/jobs', headers: g.admin })).statusCode, 200);
    } finally {
      await g.close();
    }
  });
});
