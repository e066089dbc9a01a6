// Joining by approval and join-code limits, against a real SQLite store in a temp dir: the HTTP routes through
// fastify's inject, the agent socket through a real WebSocket to the AgentHub on a listening server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import WebSocket from 'ws';
import { AGENT_WS_PATH, PROTOCOL_VERSION, type JoinRequestV1 } from '@dsg/core';
import { DEFAULT_SCHEDULER_CONFIG } from '@dsg/scheduler';
import { openSqliteStore, type Store } from '@dsg/store';
import { Engine } from '@dsg/coordinator';
import { Authenticator, createToken } from '../src/auth.js';
import { FileBlobStore } from '../src/files/blob-store.js';
import { FileLogStore } from '../src/files/log-store.js';
import { AgentHub } from '../src/agents/agent-hub.js';
import { assertAllDescribed, checkResponsesAgainstOpenApi } from './fixtures/openapi-check.js';
import { buildApi } from '../src/http/server.js';
import { RateLimiter } from '../src/http/rate-limit.js';

const STATIC_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'web', 'dist', 'app'); // the built dashboard
const GiB = 1024 ** 3;
const FACTS = { os: 'Linux 6.1', arch: 'x64', cpuModel: 'Xeon', cores: 4, memoryBytes: 8 * GiB, gpus: [] as string[] };
const newKey = (): string => randomBytes(32).toString('base64url');

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
  const described = checkResponsesAgainstOpenApi(app);
  const hub = new AgentHub(engine, auth, clock, 5000, log, {
    onFailedAuth: (ip) => limiter.failedAuth(ip),
    useToken: (id) => store.useToken(id as never),
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
      assertAllDescribed(described);
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

const pendingIds = async (g: Grid): Promise<string[]> =>
  ((await g.app.inject({ method: 'GET', url: '/api/v1/join-requests', headers: g.admin })).json() as { items: JoinRequestV1[] }).items.filter((r) => r.state === 'pending').map((r) => r.id);
const decide = (g: Grid, id: string, verb: 'approve' | 'reject', payload: object = {}, headers = g.admin) =>
  g.app.inject({ method: 'POST', url: `/api/v1/join-requests/${encodeURIComponent(id)}/${verb}`, headers, payload });

describe('joining by approval', () => {
  it('only the key holder collects the credential; the approved agent joins as the reserved node id; a second collection revokes the first', async () => {
    const g = await grid();
    try {
      const key = newKey();
      const first = await ask(g, key);
      assert.equal(first.statusCode, 202, first.body);
      const req = (first.json() as { request: JoinRequestV1 }).request;
      assert.equal(req.state, 'pending');
      assert.deepEqual(req.facts, FACTS);
      assert.deepEqual((await g.app.inject({ method: 'GET', url: '/api/v1/nodes', headers: g.admin })).json().items, [], 'a pending machine is no node');
      // Another machine claims the same name with its own key: a second request; by name is ambiguous.
      const otherKey = newKey();
      assert.equal((await ask(g, otherKey)).statusCode, 202);
      const ambiguous = await decide(g, 'lab-pc', 'approve');
      assert.equal(ambiguous.statusCode, 400);
      assert.match((ambiguous.json() as { error: { message: string } }).error.message, /2 machines named lab-pc wait/);
      assert.equal((await decide(g, req.id, 'approve', {}, g.reader)).statusCode, 403);
      const ok = await decide(g, req.id.toLowerCase(), 'approve');
      assert.equal(ok.statusCode, 200, ok.body);
      const approved = (ok.json() as { request: JoinRequestV1 }).request;
      assert.match(approved.nodeId!, /^node_/);
      assert.equal((await decide(g, req.id, 'approve')).statusCode, 409, 'decided once');

      const other = await ask(g, otherKey);
      assert.equal(other.statusCode, 202);
      assert.equal((other.json() as { credential?: string }).credential, undefined, 'the other key collects nothing');
      const cred = ((await ask(g, key)).json() as { credential: string }).credential;
      assert.match(cred, /^dsg_cred_/);
      const again = ((await ask(g, key)).json() as { credential: string }).credential;
      assert.notEqual(again, cred);
      assert.equal((await join_(g, cred, 'lab-pc')).status, 401, 'the first credential was revoked');
      const w = await join_(g, again, 'lab-pc');
      assert.equal(w.welcome?.nodeId, approved.nodeId);
      assert.equal(w.welcome?.credential, undefined, 'no second credential minted');
      const audit = (await g.app.inject({ method: 'GET', url: '/api/v1/audit?limit=50', headers: g.admin })).json() as { items: Array<{ action: string; target: string; detail: Record<string, unknown> }> };
      assert.equal(audit.items.find((e) => e.action === 'node.approved')?.target, approved.nodeId);
    } finally {
      await g.close();
    }
  });

  it('a rejected machine stays out on every poll, and approving it undoes the rejection', async () => {
    const g = await grid();
    try {
      const key = newKey();
      const id = ((await ask(g, key)).json() as { request: JoinRequestV1 }).request.id;
      assert.equal((await decide(g, id, 'reject', { reason: 'not a lab machine' })).statusCode, 200);
      for (let i = 0; i < 2; i++) {
        const polled = await ask(g, key);
        assert.equal(polled.statusCode, 403);
        assert.equal((polled.json() as { request: JoinRequestV1 }).request.reason, 'not a lab machine');
      }
      assert.deepEqual(await pendingIds(g), []);
      assert.equal((await decide(g, id, 'reject')).statusCode, 409);
      assert.equal((await decide(g, id, 'reject', { reason: 'x'.repeat(501) })).statusCode, 400);
      const undo = await decide(g, id, 'approve');
      assert.equal(undo.statusCode, 200, undo.body);
      assert.equal((await ask(g, key)).statusCode, 200, 'the same agent, started again, collects its credential');
      const audit = (await g.app.inject({ method: 'GET', url: '/api/v1/audit?limit=50', headers: g.admin })).json() as { items: Array<{ action: string; detail: Record<string, unknown> }> };
      assert.equal(audit.items.find((e) => e.action === 'node.rejected')?.detail['reason'], 'not a lab machine');
      assert.equal(audit.items.find((e) => e.action === 'node.approved')?.detail['previously'], 'rejected');
      // An approved one cannot be rejected: that is dsg node revoke.
      const late = await decide(g, id, 'reject');
      assert.equal(late.statusCode, 409);
      assert.match((late.json() as { error: { message: string } }).error.message, /dsg node revoke/);
    } finally {
      await g.close();
    }
  });

  it('limits: body bounded, pending capped, new requests per address and polls per request counted apart, stale ones forgotten', async () => {
    const g = await grid({ maxPending: 3 });
    try {
      const huge = await g.app.inject({ method: 'POST', url: '/api/v1/join-requests', payload: { key: newKey(), name: 'pc', facts: FACTS, pad: 'x'.repeat(20_000) } });
      assert.equal(huge.statusCode, 413);
      assert.equal((await ask(g, newKey(), '../etc')).statusCode, 400);
      assert.equal((await ask(g, newKey(), 'pc', { facts: { ...FACTS, gpus: Array(65).fill('gpu') } })).statusCode, 400);
      const keys = [newKey(), newKey(), newKey()];
      for (const k of keys) assert.equal((await ask(g, k)).statusCode, 202);
      const full = await ask(g, newKey());
      assert.equal(full.statusCode, 429);
      assert.match(full.body, /3 machines already wait for approval/);
      // Polls of known requests are not new requests: a classroom behind one address keeps polling.
      for (let i = 0; i < 20; i++) assert.equal((await ask(g, keys[i % 3]!)).statusCode, 202);
      // New requests: 10 a minute per address (4 made above, including the refused one).
      for (let i = 0; i < 6; i++) await ask(g, newKey());
      const limited = await ask(g, newKey());
      assert.equal(limited.statusCode, 429);
      assert.match(limited.body, /too many new join requests from/);
      // Polls: 30 a minute per request.
      let polls = 0;
      while ((await ask(g, keys[0]!)).statusCode === 202) polls++;
      assert.ok(polls >= 20 && polls <= 30, `${polls}`);
      // Not polled for 24 h: forgotten, making room.
      g.clock.t += 24 * 3600_000 + 60_000;
      await ask(g, keys[1]!);
      assert.deepEqual((await pendingIds(g)).length, 1);
      assert.equal((await ask(g, newKey())).statusCode, 202);
    } finally {
      await g.close();
    }
  });

  it('pending and approved requests survive a coordinator restart (same data dir)', async () => {
    const g = await grid();
    const key = newKey();
    const waiting = newKey();
    const id = ((await ask(g, key)).json() as { request: JoinRequestV1 }).request.id;
    const waitingId = ((await ask(g, waiting, 'other')).json() as { request: JoinRequestV1 }).request.id;
    assert.equal((await decide(g, id, 'approve')).statusCode, 200);
    await g.close(true);
    const g2 = await grid({ dir: g.dir });
    try {
      assert.deepEqual(await pendingIds(g2), [waitingId]);
      const collected = await ask(g2, key);
      assert.equal(collected.statusCode, 200);
      assert.ok((await join_(g2, (collected.json() as { credential: string }).credential, 'lab-pc')).welcome);
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
