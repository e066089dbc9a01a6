// The node:http fetch the CLI and the agent use: the parts of fetch they rely on, against a real HTTP server.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createNodeFetch, nodeFetch } from '../src/node-fetch.js';

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('nodeFetch', () => {
  let url = '';
  const seen: Array<{ method: string; path: string; headers: IncomingMessage['headers']; body: string }> = [];
  const server = createServer((req, res) => {
    void readAll(req).then((body) => {
      seen.push({ method: req.method!, path: req.url!, headers: req.headers, body });
      if (req.url === '/json') return res.writeHead(201, { 'content-type': 'application/json', 'x-two': ['a', 'b'] }).end(JSON.stringify({ got: body }));
      if (req.url === '/big') {
        res.writeHead(200);
        for (let i = 0; i < 100; i++) res.write(Buffer.alloc(10_000, i));
        return res.end();
      }
      if (req.url === '/slow') return setTimeout(() => res.end('late'), 5_000).unref();
      res.writeHead(404).end('nope');
    });
  });
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('sends method, headers and a string body; reads status, headers and JSON', async () => {
    const res = await nodeFetch(`${url}/json`, { method: 'POST', headers: { authorization: 'Bearer t', 'content-type': 'text/plain' }, body: 'héllo' });
    assert.equal(res.status, 201);
    assert.equal(res.ok, true);
    assert.equal(res.headers.get('Content-Type'), 'application/json');
    assert.equal(res.headers.get('x-two'), 'a, b');
    assert.equal(res.headers.get('x-none'), null);
    assert.deepEqual(await res.json(), { got: 'héllo' });
    const s = seen.at(-1)!;
    assert.equal(s.method, 'POST');
    assert.equal(s.headers['authorization'], 'Bearer t');
    assert.equal(s.headers['content-length'], String(Buffer.byteLength('héllo')));
  });

  it('streams a web ReadableStream body and a Node stream body', async () => {
    const web = Readable.toWeb(Readable.from([Buffer.from('ab'), Buffer.from('cd')])) as unknown as ReadableStream<Uint8Array>;
    assert.deepEqual(await (await nodeFetch(`${url}/json`, { method: 'PUT', body: web, duplex: 'half' })).json(), { got: 'abcd' });
    const node = Readable.from([Buffer.from('ef')]) as unknown as ReadableStream<Uint8Array>;
    assert.deepEqual(await (await nodeFetch(`${url}/json`, { method: 'PUT', body: node })).json(), { got: 'ef' });
  });

  it('gives the response body as a web stream, once', async () => {
    const res = await nodeFetch(`${url}/big`);
    assert.ok(res.body);
    assert.equal(res.body, res.body, 'the same stream each time');
    let n = 0;
    for await (const c of res.body! as unknown as AsyncIterable<Uint8Array>) n += c.byteLength;
    assert.equal(n, 1_000_000);
    await assert.rejects(res.text(), /already read/);
  });

  it('a non-2xx answer is a response, not an error', async () => {
    const res = await nodeFetch(`${url}/missing`);
    assert.equal(res.ok, false);
    assert.equal(res.status, 404);
    assert.equal(await res.text(), 'nope');
  });

  it('a refused connection rejects like fetch: TypeError with the system error as cause', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await assert.rejects(nodeFetch(`http://127.0.0.1:${port}/`), (e: unknown) => e instanceof TypeError && (e as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED');
    await assert.rejects(nodeFetch('ftp://example.org/'), /unsupported URL scheme/);
  });

  it('an AbortSignal ends a request', async () => {
    const f = createNodeFetch({ keepAlive: false });
    const t = Date.now();
    await assert.rejects(f(`${url}/slow`, { signal: AbortSignal.timeout(200) }), (e: unknown) => (e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError');
    assert.ok(Date.now() - t < 2_000);
    f.close();
  });
});
