// A started coordinator also serves its API on <dataDir>/api.sock: 0600, the same checks as the port (a token is
// still needed, failures and audit entries say `local`), no agent upgrades, a stale socket replaced at start,
// anything else at the path left alone, and the file removed at close.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startCoordinator } from '../src/coordinator.js';

interface Answer { status: number; body: string }
const call = (socketPath: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { host: '127.0.0.1', ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });

describe('the local API socket', () => {
  it('serves the API on <dataDir>/api.sock, 0600, with the same authentication, audited as `local`', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsg-local-sock-'));
    // tls on: the socket speaks plain HTTP whatever the port serves.
    const c = await startCoordinator({ dataDir: dir, host: '127.0.0.1', port: 0, tls: 'on', logLevel: 'silent', advertise: false });
    const sock = join(dir, 'api.sock');
    try {
      assert.equal(c.localSocket, sock);
      const st = statSync(sock);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal((JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as { socket?: string }).socket, sock);

      const auth = { authorization: `Bearer ${c.adminToken}` };
      const jobs = await call(sock, 'GET', '/api/v1/jobs', auth);
      assert.equal(jobs.status, 200, jobs.body);
      assert.ok(Array.isArray((JSON.parse(jobs.body) as { items: unknown[] }).items));
      assert.equal((await call(sock, 'GET', '/api/v1/jobs')).status, 401, 'no token, no answer: the socket is a transport, not a way around the checks');
      assert.equal((await call(sock, 'GET', '/api/v1/jobs', { authorization: 'Bearer dsg_admin_wrongwrongwrongwrongwrongwrong' })).status, 401);

      const made = await call(sock, 'POST', '/api/v1/tokens', { ...auth, 'content-type': 'application/json' }, JSON.stringify({ name: 'through the socket', role: 'reader' }));
      assert.equal(made.status, 201, made.body);
      const audit = JSON.parse((await call(sock, 'GET', '/api/v1/audit?limit=20', auth)).body) as { items: Array<{ action: string; origin: string }> };
      const entry = audit.items.find((e) => e.action === 'token.created');
      assert.ok(entry, JSON.stringify(audit.items.map((e) => e.action)));
      assert.equal(entry.origin, 'local');

      // Agents connect to the URL: an upgrade on the socket is answered 400, not left hanging.
      const s = connect(sock);
      const upgrade = await new Promise<string>((resolve, reject) => {
        let text = '';
        s.on('data', (d) => (text += d));
        s.on('end', () => resolve(text));
        s.on('error', reject);
        s.write('GET /api/v1/agent HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      });
      assert.match(upgrade, /^HTTP\/1.1 400 [\s\S]*not to its local socket/);
    } finally {
      await c.close();
    }
    assert.equal(existsSync(sock), false, 'removed at close');
    rmSync(dir, { recursive: true, force: true });
  });

  it('replaces a socket left by a coordinator that died, and leaves anything else at the path alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsg-local-stale-'));
    const sock = join(dir, 'api.sock');
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`], { stdio: 'ignore' });
    assert.ok(statSync(sock).isSocket(), 'a stale socket is there');
    let c = await startCoordinator({ dataDir: dir, host: '127.0.0.1', port: 0, tls: 'off', logLevel: 'silent', advertise: false });
    try {
      assert.equal(c.localSocket, sock);
      assert.equal((await call(sock, 'GET', '/api/v1/nodes', { authorization: `Bearer ${c.adminToken}` })).status, 200);
    } finally {
      await c.close();
    }

    writeFileSync(sock, 'not a socket');
    c = await startCoordinator({ dataDir: dir, host: '127.0.0.1', port: 0, tls: 'off', logLevel: 'silent', advertise: false });
    try {
      assert.equal(c.localSocket, null, 'not served');
      assert.equal(readFileSync(sock, 'utf8'), 'not a socket', 'left alone');
      assert.equal((JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as { socket?: string }).socket, undefined, 'and not named in the credentials');
    } finally {
      await c.close();
    }
    assert.equal(readFileSync(sock, 'utf8'), 'not a socket');

    rmSync(sock);
    c = await startCoordinator({ dataDir: dir, host: '127.0.0.1', port: 0, tls: 'off', logLevel: 'silent', advertise: false, localSocket: false });
    try {
      assert.equal(c.localSocket, null);
      assert.equal(existsSync(sock), false, 'localSocket: false serves none');
    } finally {
      await c.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('a data dir whose socket path would be too long runs without one', async () => {
    const base = mkdtempSync(join(tmpdir(), 'dsg-local-long-'));
    const dir = join(base, 'x'.repeat(120 - base.length));
    const c = await startCoordinator({ dataDir: dir, host: '127.0.0.1', port: 0, tls: 'off', logLevel: 'silent', advertise: false });
    try {
      assert.equal(c.localSocket, null);
      assert.equal(existsSync(join(dir, 'api.sock')), false);
    } finally {
      await c.close();
      rmSync(base, { recursive: true, force: true });
    }
  });
});
