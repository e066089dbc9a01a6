// A started coordinator serving TLS, seen from a socket: plain HTTP on the TLS port gets a readable 400 in the API's
// error format (never an answer to the request), HTTPS still works on the same port, and the dashboard's session
// cookie is marked Secure over it (req.protocol is 'https').
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startCoordinator } from '../src/coordinator.js';

const get = (port: number, path: string): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject).end();
  });

describe('a coordinator serving TLS', () => {
  it('answers plain HTTP on its port with a readable 400, serves HTTPS on the same port, and sets Secure session cookies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsg-tls-server-'));
    const c = await startCoordinator({ dataDir: dir, host: '127.0.0.1', port: 0, tls: 'on', logLevel: 'silent' });
    try {
      const port = Number(new URL(c.url).port);
      const plain = await get(port, '/api/v1/jobs');
      assert.equal(plain.status, 400);
      const err = (JSON.parse(plain.body) as { error: { code: string; message: string } }).error;
      assert.equal(err.code, 'validation');
      assert.match(err.message, /serves HTTPS only: use https:\/\//);
      assert.ok(err.message.includes(c.tlsFingerprint!), 'the message names the fingerprint to compare');

      // HTTPS on the same port, the dashboard's sign-in: the cookie is Secure. (The certificate is this test's own
      // coordinator's; trusting it by `ca` is enough here, pinning is tested with the clients.)
      const ca = readFileSync(join(dir, 'tls', 'cert.pem'), 'utf8');
      const signIn = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/api/v1/session', method: 'POST', ca, checkServerIdentity: () => undefined, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, cookie: String(res.headers['set-cookie'] ?? '') }));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ token: c.adminToken }));
      });
      assert.equal(signIn.status, 201);
      assert.match(signIn.cookie, /HttpOnly; SameSite=Strict; Max-Age=\d+; Secure/);

      // A client that connects and sends nothing does not hold up others (the sniff is per connection; it is closed
      // after 10 s of silence).
      const silent = connect(port, '127.0.0.1');
      await new Promise((r) => silent.once('connect', r));
      assert.equal((await get(port, '/healthz')).status, 400);
      silent.destroy();
    } finally {
      await c.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
