/**
 * `GET /api/v1/events`: the change feed as server-sent events, for the dashboard (and any client that wants to
 * hear about changes instead of polling). Authenticated like every read (bearer token or session cookie).
 *
 *   event: hello   data: {"instance":"…","keepAliveMs":15000}     first, once per connection
 *   event: change  data: {"topics":["jobs","nodes"],"at":…}       coalesced (events/change-feed.ts)
 *   : keep-alive                                                  a comment every keepAliveMs
 *
 * After a coordinator restart the browser's EventSource reconnects by itself (`retry: 2000`); the new `instance`
 * tells the page to refetch everything. Each connection is closed after `maxAgeMs` (or `?timeout=` seconds) so a revoked token or an ended
 * session cannot keep listening: the browser reconnects and is authenticated again.
 */
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, type ChangeEventV1, type FeedHelloV1 } from '@dsg/core';
import type { ChangeFeed } from '../../events/change-feed.js';
import type { Authed } from './authed.js';
import { MediaBody, routeSchema as S } from '../openapi.js';
import { parseOr400 } from '../parse.js';
import { z } from 'zod';

const EventsQuery = z.strictObject({
  timeout: z.coerce.number({ error: 'expected seconds, 1 to 300' }).int().min(1).max(300).optional().meta({ description: 'Close the stream after this many seconds (default 300).' }),
});

export interface EventRouteDeps {
  readonly feed: ChangeFeed;
  readonly authed: Authed;
  readonly now: () => number;
  /** Comment line interval. Default 15 s. */
  readonly keepAliveMs?: number;
  /** Longest a connection stays open before the client must reconnect (and authenticate again). Default 5 min. */
  readonly maxAgeMs?: number;
}

export function eventRoutes(app: FastifyInstance, deps: EventRouteDeps): void {
  const keepAliveMs = deps.keepAliveMs ?? 15_000;
  const maxAgeMs = deps.maxAgeMs ?? 5 * 60_000;
  // Open streams are ended when the server closes: a hijacked response would otherwise hold close() open.
  const open = new Set<{ end(): void }>();
  app.addHook('preClose', (done) => {
    for (const r of open) r.end();
    open.clear();
    done();
  });
  app.get(`${API_PREFIX}/events`, {
    schema: S({
      summary: 'Live change feed (server-sent events: hello, then change events naming topics)', tags: ['grid'],
      querystring: EventsQuery,
      response: { 200: new MediaBody('text/event-stream', '`event: hello` (instance, keepAliveMs), then `event: change` with `{"topics":[…],"at":…}`.') },
    }),
  }, async (req, reply) => {
    const p = await deps.authed(req, 'jobs:read');
    const timeout = parseOr400(EventsQuery, req.query, 'query').timeout;
    const ageMs = timeout ? Math.min(maxAgeMs, timeout * 1000) : maxAgeMs;
    const raw = reply.raw;
    const send = (event: string, data: unknown) => raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    // Subscribe before hijacking: over the bounds this throws a 429 through the normal error path.
    const unsubscribe = deps.feed.subscribe(p.tokenId, (topics) => {
      const ev: ChangeEventV1 = { topics: [...topics], at: deps.now() };
      send('change', ev);
    });
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Not reused after the stream ends: a closing server (or the max age) then frees the socket at once.
      connection: 'close',
      'x-accel-buffering': 'no',
    });
    raw.write('retry: 2000\n\n');
    const hello: FeedHelloV1 = { instance: deps.feed.instance, keepAliveMs };
    send('hello', hello);
    open.add(raw);
    const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), keepAliveMs);
    const maxAge = setTimeout(() => raw.end(), ageMs);
    const done = () => {
      clearInterval(keepAlive);
      clearTimeout(maxAge);
      open.delete(raw);
      unsubscribe();
    };
    req.raw.on('close', done);
    raw.on('close', done);
    raw.on('error', done);
  });
}
