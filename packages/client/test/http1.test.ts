// The pinned fetch speaks HTTP/1.1 itself over the checked TLS socket (src/http1.ts): the same parts of fetch the
// node:http one passes (test/node-fetch.test.ts), each response framing a server may choose, connection reuse, a
// kept connection the server closed, aborts, and header values that would split a request.
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { createNodeFetch, type NodeFetch } from '../src/node-fetch.js';
import { fingerprintOf } from '../src/tls.js';

async function selfSigned(): Promise<{ cert: string; key: string }> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=test', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000), keys: keys as never, signingAlgorithm: alg });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { cert: cert.toString('pem'), key: `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64')}\n-----END PRIVATE KEY-----\n` };
}

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('pinned fetch (HTTP/1.1 over the checked TLS socket)', () => {
  let url = '';
  let server: Server;
  let f: NodeFetch;
  let pin = '';
  const seen: Array<{ method: string; path: string; headers: IncomingMessage['headers']; body: string }> = [];
  const connections = new Set<Socket>();
  let connectionCount = 0;

  before(async () => {
    const { cert, key } = await selfSigned();
    pin = fingerprintOf(cert);
    server = createServer({ cert, key }, (req, res) => {
      void readAll(req).then((body) => {
        seen.push({ method: req.method!, path: req.url!, headers: req.headers, body });
        const path = req.url!.split('?')[0];
        if (path === '/json') return res.writeHead(201, { 'content-type': 'application/json', 'x-two': ['a', 'b'] }).end(JSON.stringify({ got: body, query: req.url!.split('?')[1] ?? null }));
        if (path === '/chunked') {
          res.writeHead(200); // no length: node:http sends it chunked
          for (let i = 0; i < 100; i++) res.write(Buffer.alloc(10_000, i));
          return res.end();
        }
        if (path === '/length') return res.writeHead(200, { 'content-length': '5' }).end('hello');
        if (path === '/empty') return res.writeHead(204).end();
        if (path === '/close') {
          // Framed by the end of the connection: neither a length nor chunks.
          res.socket!.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nuntil the end');
          return res.socket!.end();
        }
        if (path === '/interim') {
          res.socket!.write('HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n');
          return res.writeHead(200, { 'content-length': '2' }).end('ok');
        }
        if (path === '/slow') return setTimeout(() => res.end('late'), 5_000).unref();
        res.writeHead(404).end('nope');
      });
    });
    server.on('connection', (s: Socket) => {
      connectionCount++;
      connections.add(s);
      s.on('close', () => connections.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
    f = createNodeFetch({ verifyPeer: (der) => (fingerprintOf(der) === pin ? undefined : new Error('wrong certificate')) });
  });
  after(() => {
    f.close();
    server.closeAllConnections();
    server.close();
  });

  it('sends method, headers, query and a string body; reads status, headers and JSON', async () => {
    const res = await f(`${url}/json?a=1&b=%20`, { method: 'POST', headers: { authorization: 'Bearer t', 'content-type': 'text/plain' }, body: 'héllo' });
    assert.equal(res.status, 201);
    assert.equal(res.ok, true);
    assert.equal(res.headers.get('Content-Type'), 'application/json');
    assert.equal(res.headers.get('x-two'), 'a, b');
    assert.equal(res.headers.get('x-none'), null);
    assert.deepEqual(await res.json(), { got: 'héllo', query: 'a=1&b=%20' });
    const s = seen.at(-1)!;
    assert.equal(s.method, 'POST');
    assert.equal(s.headers['authorization'], 'Bearer t');
    assert.equal(s.headers['host'], new URL(url).host);
    assert.equal(s.headers['content-length'], String(Buffer.byteLength('héllo')));
  });

  it('streams a web ReadableStream body and a Node stream body (chunked)', async () => {
    const web = Readable.toWeb(Readable.from([Buffer.from('ab'), Buffer.from('cd')])) as unknown as ReadableStream<Uint8Array>;
    assert.deepEqual(await (await f(`${url}/json`, { method: 'PUT', body: web, duplex: 'half' })).json(), { got: 'abcd', query: null });
    assert.equal(seen.at(-1)!.headers['transfer-encoding'], 'chunked');
    const node = Readable.from([Buffer.from('ef')]) as unknown as ReadableStream<Uint8Array>;
    assert.deepEqual(await (await f(`${url}/json`, { method: 'PUT', body: node })).json(), { got: 'ef', query: null });
  });

  it('reads bodies framed by chunks, by length, by the end of the connection, and none', async () => {
    const big = await f(`${url}/chunked`);
    let n = 0;
    for await (const c of big.body! as unknown as AsyncIterable<Uint8Array>) n += c.byteLength;
    assert.equal(n, 1_000_000);
    assert.equal(await (await f(`${url}/length`)).text(), 'hello');
    const empty = await f(`${url}/empty`);
    assert.equal(empty.status, 204);
    assert.equal(await empty.text(), '');
    assert.equal(await (await f(`${url}/close`)).text(), 'until the end');
    assert.equal(await (await f(`${url}/interim`)).text(), 'ok', 'a 103 before the answer is skipped');
    const missing = await f(`${url}/missing`);
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), 'nope');
  });

  it('keeps the connection for the next request, and sends a GET again when the server closed a kept one', async () => {
    await (await f(`${url}/length`)).text();
    const before = connectionCount;
    await (await f(`${url}/length`)).text();
    await (await f(`${url}/json`, { method: 'POST', body: 'x' })).text();
    assert.equal(connectionCount, before, 'the same connection carried both');
    for (const s of connections) s.destroy(); // the server's idle timeout, as the client sees it
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await (await f(`${url}/length`)).text(), 'hello');
  });

  it('refuses a header value that would split the request, before sending anything', async () => {
    const count = seen.length;
    await assert.rejects(f(`${url}/json`, { headers: { 'x-evil': 'a\r\nx-injected: 1' } }), /invalid character/);
    await assert.rejects(f(`${url}/json`, { headers: { 'bad name': 'x' } }), /invalid HTTP header name/);
    assert.equal(seen.length, count);
  });

  it('an AbortSignal ends a request', async () => {
    const t = Date.now();
    await assert.rejects(f(`${url}/slow`, { signal: AbortSignal.timeout(200) }), (e: unknown) => (e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError');
    assert.ok(Date.now() - t < 2_000);
  });

  it('a refused connection rejects like fetch: TypeError with the system error as cause; a wrong certificate sends nothing', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await assert.rejects(f(`https://127.0.0.1:${port}/`), (e: unknown) => e instanceof TypeError && (e as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED');
    const count = seen.length;
    const wrong = createNodeFetch({ verifyPeer: () => new Error('wrong certificate') });
    await assert.rejects(wrong(`${url}/json`, { method: 'POST', body: 'secret' }), (e: unknown) => e instanceof TypeError && (e as { cause?: Error }).cause?.message === 'wrong certificate');
    assert.equal(seen.length, count);
    wrong.close();
  });

  it('a response cut short is an error, not a short body', async () => {
    // A server that promises 10 bytes and hangs up after 3.
    const { cert, key } = await selfSigned();
    const cut = createServer({ cert, key }, (_req, res) => {
      res.socket!.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
      res.socket!.destroy();
    });
    await new Promise<void>((r) => cut.listen(0, '127.0.0.1', r));
    const g = createNodeFetch({ verifyPeer: () => undefined });
    try {
      const res = await g(`https://127.0.0.1:${(cut.address() as { port: number }).port}/`);
      await assert.rejects(res.text(), /closed before the response ended/);
    } finally {
      g.close();
      cut.close();
    }
  });
});
