// The local-socket fetch (@dsg/client/local): requests reach a real HTTP server on a Unix socket; anything that makes
// the socket untrustworthy or unreachable sends the request to the fallback instead, and nothing is sent twice.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FetchLike, RequestInitLike, ResponseLike } from '../src/fetch-like.js';
import { createLocalFetch, localSocketRefusal } from '../src/local.js';

const BASE = 'https://127.0.0.1:7443';

/** A fallback that answers 299 and records what reached it. */
function recordingFallback(): { fetch: () => FetchLike; calls: string[] } {
  const calls: string[] = [];
  const f: FetchLike = async (input: string, _init?: RequestInitLike): Promise<ResponseLike> => {
    calls.push(input);
    return { ok: true, status: 299, statusText: 'fallback', headers: { get: () => null }, body: null, json: async () => ({ via: 'fallback' }), text: async () => 'fallback', arrayBuffer: async () => new ArrayBuffer(0) } as unknown as ResponseLike;
  };
  return { fetch: () => f, calls };
}

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('local socket fetch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dsg-local-'));
  const sock = join(dir, 'api.sock');
  const seen: Array<{ method: string; url: string; host: string | undefined; auth: string | undefined; body: string }> = [];
  let connections = 0;
  let server: Server;

  before(async () => {
    chmodSync(dir, 0o700);
    server = createServer((req, res) => {
      void readAll(req).then((body) => {
        seen.push({ method: req.method!, url: req.url!, host: req.headers.host, auth: req.headers.authorization, body });
        if (req.url === '/api/v1/reset') return req.socket.destroy(); // the request arrived; the answer never does
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ via: 'socket', url: req.url }));
      });
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(sock, r));
    chmodSync(sock, 0o600);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the request over the socket, with its headers, body and the URL\'s host; connections are kept', async () => {
    const fb = recordingFallback();
    const f = createLocalFetch(sock, BASE, fb.fetch);
    const before = connections;
    const res = await f(`${BASE}/api/v1/jobs?limit=5`, { method: 'POST', headers: { authorization: 'Bearer t1' }, body: 'héllo' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { via: 'socket', url: '/api/v1/jobs?limit=5' });
    const r2 = await f(`${BASE}/api/v1/nodes`);
    assert.deepEqual(await r2.json(), { via: 'socket', url: '/api/v1/nodes' });
    const s = seen.at(-2)!;
    assert.deepEqual({ method: s.method, host: s.host, auth: s.auth, body: s.body }, { method: 'POST', host: '127.0.0.1:7443', auth: 'Bearer t1', body: 'héllo' });
    assert.equal(connections - before, 1, 'the second request reuses the first connection');
    assert.deepEqual(f.counts, { local: 2, fallback: 0 });
    assert.deepEqual(fb.calls, []);
    f.close();
  });

  it('sends URLs of another origin to the fallback', async () => {
    const fb = recordingFallback();
    const f = createLocalFetch(sock, BASE, fb.fetch);
    const res = await f('https://127.0.0.1:9999/api/v1/jobs');
    assert.equal(res.status, 299);
    assert.deepEqual(fb.calls, ['https://127.0.0.1:9999/api/v1/jobs']);
  });

  it('a missing socket, or a socket file nobody listens on (a crashed coordinator), goes to the fallback', async () => {
    const fb = recordingFallback();
    const missing = createLocalFetch(join(dir, 'none.sock'), BASE, fb.fetch);
    assert.equal((await missing(`${BASE}/api/v1/jobs`)).status, 299);
    const stale = join(dir, 'stale.sock');
    // A socket file left behind: bound by a process that then died without removing it.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`], { stdio: 'ignore' });
    assert.equal(localSocketRefusal(stale), null, 'the stale socket itself looks fine');
    const f = createLocalFetch(stale, BASE, fb.fetch);
    assert.equal((await f(`${BASE}/api/v1/jobs`)).status, 299);
    assert.equal(fb.calls.length, 2);
    assert.deepEqual(f.counts, { local: 0, fallback: 1 });
  });

  it('a socket in a directory others may write to is not trusted with a token', async () => {
    const open = mkdtempSync(join(tmpdir(), 'dsg-local-open-'));
    chmodSync(open, 0o777);
    const s2 = join(open, 'api.sock');
    const srv = createServer((_q, r) => r.end('{"via":"socket"}'));
    await new Promise<void>((r) => srv.listen(s2, r));
    try {
      assert.match(localSocketRefusal(s2) ?? '', /may be written by other users \(mode 777\)/);
      const fb = recordingFallback();
      const f = createLocalFetch(s2, BASE, fb.fetch);
      assert.equal((await f(`${BASE}/api/v1/jobs`, { headers: { authorization: 'Bearer secret' } })).status, 299);
      chmodSync(open, 0o755);
      assert.equal(localSocketRefusal(s2), null);
      assert.equal((await f(`${BASE}/api/v1/jobs`)).status, 200, 'checked again before each connection');
      f.close();
    } finally {
      srv.closeAllConnections();
      srv.close();
      rmSync(open, { recursive: true, force: true });
    }
  });

  it('refuses a path that is not a socket, a relative path, and (as root) a socket of another user', async () => {
    const file = join(dir, 'plain');
    writeFileSync(file, '');
    assert.match(localSocketRefusal(file) ?? '', /is not a socket/);
    assert.match(localSocketRefusal('api.sock') ?? '', /not an absolute path/);
    if (process.getuid?.() !== 0) {
      if (process.env['CI'] === 'true') assert.fail('CI runs as root: the other-owner case must run');
      process.stderr.write('SKIPPED (needs root): a socket owned by another user\n');
      return;
    }
    const other = join(dir, 'other.sock');
    const srv = createServer((_q, r) => r.end('x'));
    await new Promise<void>((r) => srv.listen(other, r));
    try {
      chownSync(other, 65534, 65534);
      assert.match(localSocketRefusal(other) ?? '', /belongs to uid 65534/);
    } finally {
      srv.close();
    }
  });

  it('a connection that fails after the request was sent is an error, not a second send', async () => {
    const fb = recordingFallback();
    const f = createLocalFetch(sock, BASE, fb.fetch);
    const n = seen.length;
    await assert.rejects(f(`${BASE}/api/v1/reset`, { method: 'POST', body: 'once' }), /fetch failed/);
    assert.equal(seen.length, n + 1);
    assert.deepEqual(fb.calls, []);
    f.close();
  });
});
