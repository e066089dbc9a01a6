// A rogue node against a real coordinator and a real, well-behaved agent. The rogue is a hand-written WebSocket
// client holding the join token (as any volunteer does), then its own node credential. Everything it tries against
// the victim's attempt — reports, log injection, heartbeats, output uploads, identity takeover by hello — is refused
// and counted, and the victim's job ends with its own result. What it tries with its own attempts — uploads outside
// the declared outputs or over the quota, naming a blob it did not upload as its output — is refused too. The join
// rate limit and `dsg node revoke` are exercised on the same grid.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startCoordinator, type RunningCoordinator } from '@dsg/coordinator';
import { Sandbox } from './harness.js';

type Msg = { type: string; [k: string]: unknown };

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

/** A hand-written agent: sends whatever it likes, records what it is told. */
class RogueSocket {
  readonly messages: Msg[] = [];
  closeCode: number | null = null;
  private readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;
  constructor(url: string, token: string) {
    this.ws = new WebSocket(`${url.replace('http', 'ws')}/api/v1/agent/connect`, { headers: { authorization: `Bearer ${token}` } });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => resolve((this.closeCode = code))));
    this.ws.on('message', (d) => {
      const parsed = JSON.parse(String(d)) as Msg | Msg[];
      this.messages.push(...(Array.isArray(parsed) ? parsed : [parsed]));
    });
  }
  send(m: unknown): void {
    this.ws.send(JSON.stringify(m));
  }
  hello(nodeId: string | null, cpus: number, gpus = 0): void {
    this.send({
      type: 'hello', protocol: 1, nodeId, name: 'rogue', agentVersion: 'rogue',
      capacity: { cpuMillis: cpus * 1000, memoryBytes: 1024 ** 3, gpus, diskBytes: 1024 ** 3 },
      facts: { hostname: 'rogue', os: 'linux', arch: 'x64', cpuModel: 'x', cores: cpus, memoryBytes: 1024 ** 3, diskBytes: 1024 ** 3, gpus: [] },
      labels: {}, running: [],
    });
  }
  async next(type: string, timeoutMs = 10_000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.messages.findIndex((m) => m.type === type);
      if (i >= 0) return this.messages.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no ${type} message; got ${JSON.stringify(this.messages).slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  close(): void {
    this.ws.close();
  }
}

describe('a rogue node with the join token or its own credential', () => {
  const sb = new Sandbox();
  let c: RunningCoordinator;
  let victimId: string;
  let rogueId: string;
  let rogueCred: string;
  let victimJob: string;
  let victimAttempt: string;
  let victimOutput: () => string;
  const sockets: RogueSocket[] = [];
  const rogue = (token: string): RogueSocket => {
    const s = new RogueSocket(c.url, token);
    sockets.push(s);
    return s;
  };
  const api = async <T>(method: string, path: string, body?: unknown, token = c.adminToken): Promise<{ status: number; body: T }> => {
    const r = await fetch(`${c.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const upload = async (attemptId: string, path: string, content: string | Buffer, token: string): Promise<{ status: number; body: { error?: { code: string; message: string } } | null }> => {
    const r = await fetch(`${c.url}/api/v1/attempts/${attemptId}/outputs/${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'x-dsg-sha256': sha(content) },
      body: content,
    });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as { error?: { code: string; message: string } }) : null };
  };
  const submit = async (spec: unknown): Promise<string> => {
    const r = await api<{ job: { id: string } }>('POST', '/jobs', { spec });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.job.id;
  };
  const putBlob = async (content: string): Promise<void> => {
    const r = await fetch(`${c.url}/api/v1/blobs/${sha(content)}`, { method: 'PUT', headers: { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/octet-stream' }, body: content });
    assert.equal(r.status, 201);
  };
  const jobState = async (id: string): Promise<string> => (await api<{ state: string }>('GET', `/jobs/${id}`)).body.state;

  before(async () => {
    c = await startCoordinator({ dataDir: join(sb.dir, 'data'), port: 0, host: '127.0.0.1', logLevel: 'silent', maxJoinsPerMinute: 6, outputQuotaBytes: 64 * 1024, logQuotaBytes: 64 * 1024, timeoutGraceSeconds: 1 });
    // The victim: a real agent, one core, no GPU.
    const agent = sb.start(['agent', '--coordinator', c.url, '--token', c.joinToken, '--state-dir', join(sb.dir, 'victim'), '--name', 'victim', '--cpus', '1']);
    victimOutput = agent.output;
    victimId = await sb.waitFor('the victim online', async () => {
      const { body } = await api<{ items: Array<{ id: string; name: string; state: string }> }>('GET', '/nodes');
      return body.items.find((n) => n.name === 'victim' && n.state === 'online')?.id;
    }, 20_000, agent.output);
  });

  after(async () => {
    for (const s of sockets) s.close();
    await c?.close();
    await sb.cleanup();
  });

  it('joins with the join token and receives its own credential, bound to its new node id', async () => {
    const r = rogue(c.joinToken);
    await r.opened;
    r.hello(null, 0); // no cores: the victim's task cannot land here
    const w = await r.next('welcome');
    rogueId = String(w['nodeId']);
    rogueCred = String(w['credential']);
    assert.match(rogueCred, /^dsg_cred_/);
    assert.notEqual(rogueId, victimId);
    // The join token alone can no longer fetch blobs or upload outputs: that needs a node credential.
    const blob = await fetch(`${c.url}/api/v1/blobs/${'0'.repeat(64)}`, { headers: { authorization: `Bearer ${c.joinToken}` } });
    assert.equal(blob.status, 403);
    assert.match(await blob.text(), /join token can only register a new node/);
  });

  it("cannot report on, log into, heartbeat or upload for the victim's attempt; the victim's result stands", async () => {
    const secret = 'victim-secret-input\n';
    await putBlob(secret);
    const r0 = await api<{ job: { id: string } }>('POST', '/jobs', {
      spec: { name: 'victim-job', script: 'cat secret.txt; echo hello-from-victim; sleep 2; mkdir -p out; echo genuine > out/result.txt', inputs: ['secret.txt'], outputs: ['out/*'], timeout: '60s' },
      inputs: [{ path: 'secret.txt', sha256: sha(secret), size: secret.length }],
    });
    assert.equal(r0.status, 201, JSON.stringify(r0.body));
    victimJob = r0.body.job.id;
    victimAttempt = await sb.waitFor('the victim running its attempt', async () => {
      const { body } = await api<{ items: Array<{ id: string; nodeId: string; state: string }> }>('GET', `/jobs/${victimJob}/tasks/0/attempts`);
      const a = body.items.find((x) => x.state === 'running' || x.state === 'assigned');
      return a && a.nodeId === victimId ? a.id : null;
    });
    const r = sockets[0]!;
    const evil = 'forged result\n';
    // The victim's input is not the rogue's to read (the real agent fetched it with its own credential).
    for (const method of ['GET', 'HEAD']) {
      const b = await fetch(`${c.url}/api/v1/blobs/${sha(secret)}`, { method, headers: { authorization: `Bearer ${rogueCred}` } });
      assert.equal(b.status, 403, method);
    }
    // Reports over the join-token socket (now speaking as the rogue node).
    r.send([
      { type: 'started', attemptId: victimAttempt, at: Date.now() },
      { type: 'log', attemptId: victimAttempt, stream: 'stdout', data: 'INJECTED BY ROGUE\n' },
      { type: 'heartbeat', running: [victimAttempt] },
      { type: 'finished', attemptId: victimAttempt, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: Date.now(), finishedAt: Date.now(), outputs: [{ path: 'out/result.txt', size: evil.length, sha256: sha(evil) }] },
    ]);
    // Uploads with its credential, the join token, even the admin token: only the attempt's own node may upload.
    for (const token of [rogueCred, c.joinToken, c.adminToken]) {
      const u = await upload(victimAttempt, 'out/result.txt', evil, token);
      assert.equal(u.status, 403, JSON.stringify(u.body));
    }
    // The same reports over a socket opened with the rogue's own credential.
    const r2 = rogue(rogueCred);
    await r2.opened;
    r2.hello(rogueId, 0);
    assert.equal((await r2.next('welcome'))['nodeId'], rogueId);
    r2.send({ type: 'finished', attemptId: victimAttempt, end: { kind: 'exited', exitCode: 1, signal: null }, startedAt: null, finishedAt: Date.now(), outputs: [] });
    r2.send({ type: 'log', attemptId: victimAttempt, stream: 'stderr', data: 'INJECTED AGAIN\n' });

    await sb.waitFor('the victim job to end', async () => ['succeeded', 'failed'].includes(await jobState(victimJob)), 30_000);
    assert.equal(await jobState(victimJob), 'succeeded');
    const attempts = (await api<{ items: Array<{ id: string; nodeId: string; state: string }> }>('GET', `/jobs/${victimJob}/tasks/0/attempts`)).body.items;
    assert.deepEqual(attempts.map((a) => [a.id, a.nodeId, a.state]), [[victimAttempt, victimId, 'succeeded']]);
    const log = (await api<{ data: string }>('GET', `/jobs/${victimJob}/tasks/0/logs`)).body.data;
    assert.match(log, /victim-secret-input\nhello-from-victim/);
    assert.doesNotMatch(log, /INJECTED/);
    const outputs = (await api<{ items: Array<{ path: string; sha256: string }> }>('GET', `/jobs/${victimJob}/outputs`)).body.items;
    assert.deepEqual(outputs.map((o) => [o.path, o.sha256]), [['out/result.txt', sha('genuine\n')]]);
    // Every refusal was counted against the rogue node.
    const ref = (await api<{ items: Array<{ nodeId: string; kind: string; count: number }> }>('GET', '/security/refusals')).body.items;
    const kinds = new Set(ref.filter((x) => x.nodeId === rogueId).map((x) => x.kind));
    for (const k of ['started', 'log', 'heartbeat', 'finished', 'upload', 'blob']) assert.ok(kinds.has(k), `${k} refusal counted: ${JSON.stringify(ref)}`);
    assert.ok(!ref.some((x) => x.nodeId === victimId), 'nothing counted against the well-behaved agent');
  });

  it('cannot take over the victim\'s identity by hello, with the join token or with its own credential', async () => {
    const t = rogue(c.joinToken);
    await t.opened;
    t.hello(victimId, 0);
    const w = await t.next('welcome');
    assert.notEqual(w['nodeId'], victimId, 'a hello claiming the victim id with the join token is a new node');
    const t2 = rogue(rogueCred);
    await t2.opened;
    t2.hello(victimId, 0);
    const e = await t2.next('error');
    assert.equal(e['code'], 'forbidden');
    assert.equal(await t2.closed, 4003);
    // The victim was never disconnected: it is online and runs the next job.
    const nodes = (await api<{ items: Array<{ id: string; state: string }> }>('GET', '/nodes')).body.items;
    assert.equal(nodes.find((n) => n.id === victimId)?.state, 'online');
    const j = await submit({ name: 'after-takeover', script: 'echo still-mine', timeout: '30s' });
    await sb.waitFor('the next victim job', async () => (await jobState(j)) === 'succeeded', 20_000);
  });

  it('uploads for its own attempt only to declared outputs, within the quota, and only names outputs it uploaded; its log is cut at the quota', async () => {
    const r = rogue(rogueCred);
    await r.opened;
    r.hello(rogueId, 1, 1); // now it offers a GPU, which the victim lacks: the next GPU job lands here
    await r.next('welcome');
    const own = 'input of the rogue\'s own task\n';
    await putBlob(own);
    const sub = await api<{ job: { id: string } }>('POST', '/jobs', {
      spec: { name: 'rogue-own', script: 'true', inputs: ['own.txt'], outputs: ['result.txt'], resources: { gpus: 1 }, timeout: '30s' },
      inputs: [{ path: 'own.txt', sha256: sha(own), size: own.length }],
    });
    const job = sub.body.job.id;
    const assign = await r.next('assign');
    const attemptId = String((assign['attempts'] as Array<{ attemptId: string }>)[0]!.attemptId);
    // Its own attempt's inputs it may read.
    const b = await fetch(`${c.url}/api/v1/blobs/${sha(own)}`, { headers: { authorization: `Bearer ${rogueCred}` } });
    assert.equal(b.status, 200);
    assert.equal(await b.text(), own);
    assert.equal((await upload(attemptId, 'result.txt', 'small\n', rogueCred)).status, 204);
    const undeclared = await upload(attemptId, 'secret/credentials.json', 'x', rogueCred);
    assert.equal(undeclared.status, 403);
    assert.match(undeclared.body!.error!.message, /matches none of the outputs job .* declared \("result.txt"\)/);
    const big = await upload(attemptId, 'result.txt', Buffer.alloc(70 * 1024, 1), rogueCred);
    assert.equal(big.status, 413);
    assert.match(big.body!.error!.message, /at most 65536 bytes of outputs/);
    // Logs beyond the coordinator's quota (64 KiB here) are dropped, with a notice.
    for (let i = 0; i < 10; i++) r.send({ type: 'log', attemptId, stream: 'stdout', data: `${i}`.repeat(10 * 1024) });
    // Claiming the victim's blob (it exists on the coordinator) as an output it never uploaded.
    r.send({
      type: 'finished', attemptId, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: Date.now(), finishedAt: Date.now(),
      outputs: [{ path: 'result.txt', size: 8, sha256: sha('genuine\n') }],
    });
    await r.next('ack');
    const a = (await api<{ items: Array<{ id: string; state: string; failure: { reason: string; message: string } | null }> }>('GET', `/jobs/${job}/tasks/0/attempts`)).body.items.find((x) => x.id === attemptId)!;
    assert.equal(a.state, 'failed');
    assert.match(a.failure?.message ?? '', /outputs not received/);
    assert.equal((await api<{ items: unknown[] }>('GET', `/jobs/${job}/outputs`)).body.items.length, 0);
    const log = (await api<{ data: string }>('GET', `/jobs/${job}/tasks/0/logs?attempt=${attemptId}`)).body.data;
    assert.equal(log.length, 64 * 1024 + '\n[dsg] log cut by the coordinator: more than 65536 bytes for this attempt\n'.length);
    assert.match(log, /\[dsg\] log cut by the coordinator: more than 65536 bytes for this attempt\n$/);
    // After the attempt ended, nothing more is accepted for it.
    assert.equal((await upload(attemptId, 'result.txt', 'late\n', rogueCred)).status, 409);
    await api('POST', `/jobs/${job}/cancel`);
  });

  it('registers a limited number of nodes per minute with one join token', async () => {
    // Joins so far with the join token: the victim, the rogue, the takeover attempt (3 of 6).
    const joined: string[] = [];
    let refused: Msg | null = null;
    for (let i = 0; i < 5 && !refused; i++) {
      const s = rogue(c.joinToken);
      await s.opened;
      s.hello(null, 0);
      const m = await Promise.race([s.next('welcome'), s.next('error')]);
      if (m.type === 'welcome') joined.push(String(m['nodeId']));
      else {
        refused = m;
        assert.equal(await s.closed, 4029);
      }
    }
    assert.equal(joined.length, 3);
    assert.equal(refused?.['code'], 'rate_limited');
    assert.match(String(refused?.['message']), /registered 6 nodes in the last minute/);
    // A node with its own credential is not limited.
    const s = rogue(rogueCred);
    await s.opened;
    s.hello(rogueId, 0);
    assert.equal((await s.next('welcome'))['nodeId'], rogueId);
  });

  it('cannot hold an attempt past its timeout by heartbeating it as running', async () => {
    const r = rogue(rogueCred);
    await r.opened;
    r.hello(rogueId, 2, 2); // room beside the attempt of the last test, which it never reported
    await r.next('welcome');
    const job = await submit({ name: 'held-forever', script: 'sleep 1000', resources: { gpus: 1 }, timeout: '1s' });
    const attemptId = String(((await r.next('assign'))['attempts'] as Array<{ attemptId: string }>)[0]!.attemptId);
    const t0 = Date.now();
    r.send({ type: 'started', attemptId, at: Date.now() + 3_600_000 }); // a start "an hour from now" must not postpone it
    const beat = setInterval(() => r.send({ type: 'heartbeat', running: [attemptId] }), 200);
    try {
      const cancel = await r.next('cancel', 10_000);
      assert.deepEqual(cancel['attemptIds'], [attemptId]);
      const elapsed = Date.now() - t0;
      const a = (await api<{ items: Array<{ id: string; state: string; failure: { reason: string } | null }> }>('GET', `/jobs/${job}/tasks/0/attempts`)).body.items.find((x) => x.id === attemptId)!;
      assert.equal(a.state, 'failed');
      assert.equal(a.failure?.reason, 'timeout');
      console.log(`a task with timeout 1 s, grace 1 s, heartbeated forever with a start an hour ahead: ended as timed out after ${elapsed} ms`);
      assert.ok(elapsed < 6000, `ended after ${elapsed} ms`);
    } finally {
      clearInterval(beat);
      await api('POST', `/jobs/${job}/cancel`);
      r.hello(rogueId, 0); // no more work for the rogue
      await r.next('welcome');
    }
  });

  it('cannot send an oversize frame: the socket is closed, the coordinator carries on', async () => {
    const r = rogue(rogueCred);
    await r.opened;
    r.send({ type: 'log', attemptId: 'att_x', stream: 'stdout', data: 'x'.repeat(17 * 1024 * 1024) });
    const code = await Promise.race([r.closed, new Promise((res) => setTimeout(() => res('still open after 5 s'), 5000))]);
    assert.equal(code, 1009);
    assert.equal((await api<{ status: string }>('GET', '/health')).body.status, 'ok');
  });

  it('`revoke` cuts a real agent off at once: socket closed, work requeued, no reconnect with its credential', async () => {
    const job = await submit({ name: 'long', script: 'sleep 30', timeout: '60s' });
    const attempt = await sb.waitFor('the victim running the long task', async () => {
      const { body } = await api<{ items: Array<{ id: string; nodeId: string; state: string }> }>('GET', `/jobs/${job}/tasks/0/attempts`);
      return body.items.find((x) => x.state === 'running' && x.nodeId === victimId)?.id;
    });
    const ambiguous = await sb.run(['--coordinator', c.url, '--token', c.adminToken, 'node', 'revoke', 'rogue']);
    assert.equal(ambiguous.code, 2);
    assert.match(ambiguous.stderr, /nodes are named "rogue" .*give the id instead/);
    const t0 = Date.now();
    const r = await sb.run(['--coordinator', c.url, '--token', c.adminToken, 'node', 'revoke', 'victim', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { nodeId: victimId, name: 'victim', credentialsRevoked: 1 });
    const after = (await api<{ items: Array<{ id: string; state: string; failure: { message: string } | null }> }>('GET', `/jobs/${job}/tasks/0/attempts`)).body.items;
    assert.equal(after.find((a) => a.id === attempt)?.state, 'lost');
    assert.match(after.find((a) => a.id === attempt)?.failure?.message ?? '', /revoked/);
    assert.equal((await api<{ state: string }>('GET', `/jobs/${job}/tasks/0`)).body.state, 'queued');
    console.log(`dsg node revoke: the attempt was requeued when the command returned, ${Date.now() - t0} ms after it started`);
    // It stays offline: the agent's reconnects with its revoked credential are refused.
    await new Promise((res) => setTimeout(res, 1500));
    const nodes = (await api<{ items: Array<{ id: string; state: string }> }>('GET', '/nodes')).body.items;
    assert.equal(nodes.find((n) => n.id === victimId)?.state, 'offline');
    const cred = JSON.parse(readFileSync(join(sb.dir, 'victim', 'node.json'), 'utf8')) as { nodeId: string; credential: string };
    assert.equal(cred.nodeId, victimId);
    await assert.rejects(async () => (await new RogueSocket(c.url, cred.credential).opened), /HTTP 401/);
    assert.equal((await upload(attempt, 'x', 'x', cred.credential)).status, 401);
    // The agent says why, and does not quietly join again as a new node.
    await sb.waitFor('the agent to say its credential was revoked', () => /credential was revoked/.test(victimOutput()), 10_000, victimOutput);
    assert.equal(JSON.parse(readFileSync(join(sb.dir, 'victim', 'node.json'), 'utf8')).nodeId, victimId);
    assert.equal((await api('POST', `/nodes/${victimId}/revoke`, undefined, c.joinToken)).status, 403, 'only an admin revokes');
    await api('POST', `/jobs/${job}/cancel`);
  });
});
