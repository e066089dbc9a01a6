// The change feed over HTTP (GET /api/v1/events, server-sent events) on a real listening server: authenticated like
// every read, a hello then coalesced change events naming topics, bounded per token (429), closed on ?timeout= and
// when the server closes (which must not hang on open streams).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ChangeFeed } from '../src/events/change-feed.js';
import { startTestApi, type TestApi } from './fixtures/api-app.js';

interface Sse { status: number; events: Array<{ event: string; data: unknown }>; closed: Promise<void>; cancel(): void; next(event: string, ms?: number): Promise<unknown> }

async function open(base: string, token: string | null, query = ''): Promise<Sse> {
  const ac = new AbortController();
  const res = await fetch(`${base}/api/v1/events${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: ac.signal });
  const events: Sse['events'] = [];
  const waiters: Array<() => void> = [];
  let closed: Promise<void> = Promise.resolve();
  if (!res.ok) await res.text();
  if (res.ok && res.body) {
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    closed = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
            for (const w of waiters.splice(0)) w();
          }
        }
      } catch {
        /* aborted */
      }
    })();
  }
  const next = async (event: string, ms = 3000): Promise<unknown> => {
    const deadline = Date.now() + ms;
    let seen = 0;
    for (;;) {
      const hit = events.slice(seen).find((e) => e.event === event);
      if (hit) return hit.data;
      seen = events.length;
      if (Date.now() > deadline) throw new Error(`no ${event} event within ${ms} ms (got ${JSON.stringify(events)})`);
      await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 50); });
    }
  };
  return { status: res.status, events, closed, cancel: () => ac.abort(), next };
}

describe('GET /api/v1/events', () => {
  let t: TestApi;
  let base: string;
  before(async () => {
    t = await startTestApi({ feed: new ChangeFeed({ coalesceMs: 50, maxPerToken: 2 }) });
    base = await t.app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => t.close());

  it('refuses a request without a token, in the API\'s error format', async () => {
    const res = await fetch(`${base}/api/v1/events`);
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unauthorized');
  });

  it('says hello, then names the topics a write changed; bounded per token; ?timeout= ends the stream', async () => {
    const a = await open(base, t.admin);
    assert.equal(a.status, 200);
    const hello = (await a.next('hello')) as { instance: string };
    assert.match(hello.instance, /^[0-9a-f-]{36}$/);
    const r = await t.app.inject({ method: 'POST', url: '/api/v1/jobs', headers: { authorization: `Bearer ${t.admin}` }, payload: { spec: { name: 'x', command: ['true'] } } });
    assert.equal(r.statusCode, 201);
    const change = (await a.next('change')) as { topics: string[] };
    assert.ok(change.topics.includes('jobs'), JSON.stringify(change));

    const b = await open(base, t.admin, '?timeout=1');
    assert.equal(b.status, 200);
    const c = await open(base, t.admin);
    assert.equal(c.status, 429, 'a third stream for the same token is refused');
    const started = Date.now();
    await b.closed;
    assert.ok(Date.now() - started < 3000, 'closed after about a second');
    const bad = await fetch(`${base}/api/v1/events?timeout=0`, { headers: { authorization: `Bearer ${t.admin}` } });
    assert.equal(bad.status, 400);
    await bad.text();
    a.cancel();
  });

  it('closing the server ends open streams instead of waiting for them', async () => {
    const own = await startTestApi();
    try {
      const url = await own.app.listen({ host: '127.0.0.1', port: 0 });
      const s = await open(url, own.admin);
      await s.next('hello');
      const started = Date.now();
      await Promise.all([own.app.close(), s.closed]);
      assert.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`);
    } finally {
      await own.close().catch(() => undefined);
    }
  });
});
