import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { DsgError, ValidationError } from '@dsg/core';
import { DsgClient } from '@dsg/client';

describe('DsgClient (real HTTP)', () => {
  let server: Server;
  let url: string;
  const seen: IncomingMessage[] = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      res.setHeader('content-type', 'application/json');
      if (req.headers.authorization !== 'Bearer secret') return void res.writeHead(401).end(JSON.stringify({ error: { code: 'unauthorized', message: 'invalid token' } }));
      if (req.url?.startsWith('/api/v1/jobs?')) return void res.end(JSON.stringify({ items: [], nextCursor: null }));
      if (req.url === '/api/v1/jobs' && req.method === 'POST')
        return void res.writeHead(400).end(JSON.stringify({ error: { code: 'validation', message: 'invalid job spec: timeout: expected a duration', details: { issues: [{ path: 'timeout', message: 'expected a duration' }] } } }));
      if (req.url === '/api/v1/jobs/job_x') return void res.writeHead(404).end(JSON.stringify({ error: { code: 'not_found', message: 'job job_x not found' } }));
      const proxied = /^\/api\/v1\/jobs\/job_proxy_(\d+)$/.exec(req.url ?? '');
      if (proxied) return void res.writeHead(Number(proxied[1]), { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>');
      if (req.method === 'HEAD') return void res.writeHead(req.url?.endsWith('a'.repeat(64)) ? 200 : 404).end();
      res.writeHead(500).end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  });
  after(async () => new Promise((r) => server.close(r)));

  it('sends the token and query string', async () => {
    const c = new DsgClient({ baseUrl: url, token: 'secret' });
    const page = await c.listJobs({ state: 'failed', limit: 5 });
    assert.deepEqual(page, { items: [], nextCursor: null });
    assert.equal(seen.at(-1)!.url, '/api/v1/jobs?state=failed&limit=5');
  });

  it('turns error bodies into typed errors with the server message', async () => {
    const c = new DsgClient({ baseUrl: url, token: 'secret' });
    await assert.rejects(c.getJob('job_x'), (e: unknown) => e instanceof DsgError && e.code === 'not_found' && e.message === 'job job_x not found');
    await assert.rejects(c.submitJob({ spec: { name: 'x' } }), (e: unknown) => e instanceof ValidationError && e.issues[0]!.path === 'timeout');
    const bad = new DsgClient({ baseUrl: url, token: 'wrong' });
    await assert.rejects(bad.listJobs(), (e: unknown) => e instanceof DsgError && e.code === 'unauthorized');
  });

  it('a proxy that cannot reach the coordinator (502/503/504 without a DSG body) reads as unreachable; 403 as forbidden', async () => {
    const c = new DsgClient({ baseUrl: url, token: 'secret' });
    for (const status of [502, 503, 504])
      await assert.rejects(c.getJob(`job_proxy_${status}`), (e: unknown) => e instanceof DsgError && e.code === 'unavailable' && e.message.includes(`HTTP ${status}`) && /Is it running\?/.test(e.message));
    await assert.rejects(c.getJob('job_proxy_403'), (e: unknown) => e instanceof DsgError && e.code === 'forbidden');
    await assert.rejects(c.getJob('job_proxy_500'), (e: unknown) => e instanceof DsgError && e.code === 'internal');
  });

  it('hasBlob maps 200/404 to true/false', async () => {
    const c = new DsgClient({ baseUrl: url, token: 'secret' });
    assert.equal(await c.hasBlob('a'.repeat(64)), true);
    assert.equal(await c.hasBlob('b'.repeat(64)), false);
  });

  it('a coordinator that is not running gives an actionable error', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const c = new DsgClient({ baseUrl: `http://127.0.0.1:${port}`, token: 'x' });
    await assert.rejects(c.health(), (e: unknown) => e instanceof DsgError && e.code === 'unavailable' && /ECONNREFUSED/.test(e.message) && /dsg up/.test(e.message));
  });
});
