/**
 * A small `fetch` for Node over `node:http` / `node:https`, and for a pinned certificate over `node:tls` with its
 * own HTTP/1.1 (./http1.ts) (import `@dsg/client/node`; Node only).
 *
 * Why not the global fetch: in Node it is undici, loaded on first use, and a short command that used it spends
 * ~100 ms more before it can exit (loading it, then tearing it down) than one that used `node:http` — more than the
 * whole budget of `dsg jobs`. It also cannot take TLS options (a pinned certificate) without the undici package.
 * This covers what the DSG client and agent need: any method, string / bytes / web-stream bodies, streamed
 * response bodies, an AbortSignal, TLS options, keep-alive. It does not follow redirects (the API never sends one)
 * and has no cookie jar or cache.
 *
 * Errors mirror the global fetch's: a failed connection rejects with a TypeError whose `cause` has the system error
 * (`cause.code` such as ECONNREFUSED), so callers handle both alike.
 */
import type * as NodeHttp from 'node:http';
import type * as NodeHttps from 'node:https';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { FetchLike, RequestInitLike, ResponseLike } from './fetch-like.js';
import { fetchError, NodeResponse } from './node-response.js';
import { createSocketFetch } from './socket-fetch.js';

// node:http and node:https are taken as CommonJS built-ins, on first use, not through `import`: an ES import of a
// built-in builds a module facade that reads every export once, and on Node 22+ `http.WebSocket`, `MessageEvent` and
// `CloseEvent` are getters that load undici (measured as the largest item in `dsg jobs` on Node 24, ~30 ms of a
// 190 ms command); and a pinned connection never needs them (see ./http1.ts).
const builtin = <T>(id: string): T => (process.getBuiltinModule?.(id) ?? createRequire(import.meta.url)(id)) as T;
let httpModule: typeof NodeHttp | undefined;
let httpsModule: typeof NodeHttps | undefined;
const http = (): typeof NodeHttp => (httpModule ??= builtin<typeof NodeHttp>('node:http'));
const https = (): typeof NodeHttps => (httpsModule ??= builtin<typeof NodeHttps>('node:https'));

export interface NodeFetchOptions {
  /** TLS options for https:// URLs (`ca`, `checkServerIdentity`, …). Default: Node's usual verification. */
  readonly tls?: ConnectionOptions;
  /** Keep connections open between requests. Default true (a waiting command polls the same coordinator). */
  readonly keepAlive?: boolean;
  /**
   * Decide on the server's certificate yourself (a pinned fingerprint): every https connection skips the usual
   * chain verification and calls this with the certificate's DER bytes right after the handshake, before the
   * request is written; an Error refuses the connection and rejects the fetch (as the `cause`). Such a fetch takes
   * https:// URLs only and speaks HTTP/1.1 itself (./http1.ts), without loading node:http. Default: none.
   */
  readonly verifyPeer?: (der: Buffer) => Error | undefined;
}

/** A fetch with its own connection pool; `close()` ends its idle connections. */
export interface NodeFetch extends FetchLike {
  close(): void;
}

export function createNodeFetch(options: NodeFetchOptions = {}): NodeFetch {
  const keepAlive = options.keepAlive ?? true;
  if (options.verifyPeer) return createPinnedFetch(options.verifyPeer, options.tls ?? {}, keepAlive);
  let httpAgent: NodeHttp.Agent | undefined;
  let httpsAgent: NodeHttps.Agent | undefined;

  const fetchImpl = (input: string, init: RequestInitLike = {}): Promise<ResponseLike> => {
    const url = new URL(input);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(fetchError(`unsupported URL scheme ${url.protocol}`, null));
    const secure = url.protocol === 'https:';
    const body = init.body ?? null;
    const headers: Record<string, string> = { ...init.headers };
    if (typeof body === 'string' || body instanceof Uint8Array) headers['content-length'] ??= String(Buffer.byteLength(body));
    return new Promise<ResponseLike>((resolve, reject) => {
      if (init.signal?.aborted) return reject(init.signal.reason ?? new DOMException('aborted', 'AbortError'));
      const agent = secure ? (httpsAgent ??= new (https().Agent)({ keepAlive, ...options.tls })) : (httpAgent ??= new (http().Agent)({ keepAlive }));
      const req = (secure ? https().request : http().request)(url, {
        method: init.method ?? 'GET',
        headers,
        agent,
        ...(init.signal ? { signal: init.signal } : {}),
      });
      req.once('response', (res) => resolve(new NodeResponse(res)));
      req.once('error', (e) => reject(init.signal?.aborted ? (init.signal.reason ?? e) : fetchError(`fetch failed: ${e.message}`, e)));
      if (body === null) req.end();
      else if (typeof body === 'string' || body instanceof Uint8Array) req.end(body);
      else {
        // A web ReadableStream, or a Node stream passed where the global fetch would take any async iterable.
        const source = body instanceof Readable ? body : Readable.fromWeb(body as unknown as NodeWebStream<Uint8Array>);
        source.once('error', (e) => req.destroy(e)).pipe(req);
      }
    });
  };
  return Object.assign(fetchImpl, {
    close: (): void => {
      httpAgent?.destroy();
      httpsAgent?.destroy();
    },
  });
}

/**
 * The fetch for a pinned https:// coordinator: each connection is a TLS handshake whose certificate `verifyPeer`
 * accepts before anything is written, then HTTP/1.1 over that socket (./socket-fetch.ts; node:http is never loaded).
 */
function createPinnedFetch(verifyPeer: (der: Buffer) => Error | undefined, tls: ConnectionOptions, keepAlive: boolean): NodeFetch {
  const connect = (url: URL): Promise<TLSSocket> => new Promise((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // `ca: []`: the chain is not what decides here, so do not load Node's ~140 root certificates into the
    // connection's TLS context (without a `ca` every context loads them: ~10 ms of a pinned `dsg jobs`).
    const socket = tlsConnect({ ...tls, host, port: Number(url.port || 443), ...(isIP(host) ? {} : { servername: host }), ca: [], rejectUnauthorized: false });
    const fail = (e: Error): void => {
      socket.destroy();
      reject(e);
    };
    // Stays for the socket's life: an error between exchanges (or before the first) destroys it, never goes unheard.
    socket.on('error', fail);
    socket.once('secureConnect', () => {
      const der = socket.getPeerCertificate()?.raw;
      const refused = der ? verifyPeer(der) : new Error('the server presented no certificate');
      if (refused) return fail(refused);
      resolve(socket);
    });
  });
  return createSocketFetch({
    connect,
    keepAlive,
    refuse: (url) => (url.protocol === 'https:' ? null : `a pinned connection is https:// only, not ${url.protocol}`),
  });
}

/** One shared plain fetch for http:// URLs (and https:// verified the usual way). */
let shared: NodeFetch | null = null;
export function nodeFetch(input: string, init?: RequestInitLike): Promise<ResponseLike> {
  shared ??= createNodeFetch();
  return shared(input, init);
}
