/**
 * A small `fetch` for Node over `node:http` / `node:https` (import `@dsg/client/node`; Node only).
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
import type { IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { FetchLike, RequestInitLike, ResponseLike } from './fetch-like.js';

// node:http is taken as a CommonJS built-in, not through `import`: an ES import of a built-in builds a module
// facade that reads every export once, and on Node 22+ `http.WebSocket`, `MessageEvent` and `CloseEvent` are
// getters that load undici — measured as the largest item in `dsg jobs` on Node 24 (~30 ms of a 190 ms command).
const { Agent: HttpAgent, request: httpRequest } = (process.getBuiltinModule?.('node:http')
  ?? createRequire(import.meta.url)('node:http')) as typeof NodeHttp;

export interface NodeFetchOptions {
  /** TLS options for https:// URLs (`ca`, `checkServerIdentity`, …). Default: Node's usual verification. */
  readonly tls?: ConnectionOptions;
  /** Keep connections open between requests. Default true (a waiting command polls the same coordinator). */
  readonly keepAlive?: boolean;
  /**
   * Decide on the server's certificate yourself (a pinned fingerprint): every https connection skips the usual
   * chain verification and calls this with the certificate's DER bytes right after the handshake, before the
   * request is written; an Error refuses the connection and rejects the fetch (as the `cause`). Default: none.
   */
  readonly verifyPeer?: (der: Buffer) => Error | undefined;
}

/** A fetch with its own connection pool; `close()` ends its idle connections. */
export interface NodeFetch extends FetchLike {
  close(): void;
}

class NodeResponse implements ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  private used = false;

  constructor(private readonly res: IncomingMessage) {
    this.status = res.statusCode ?? 0;
    this.ok = this.status >= 200 && this.status < 300;
    this.statusText = res.statusMessage ?? '';
    this.headers = {
      get: (name: string): string | null => {
        const v = res.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : String(v);
      },
    };
  }

  private take(): IncomingMessage {
    if (this.used) throw new TypeError('the response body was already read');
    this.used = true;
    return this.res;
  }

  private stream: ReadableStream<Uint8Array> | null = null;

  /** The same stream however often it is asked for (like fetch's); reading it uses the body up. */
  get body(): ReadableStream<Uint8Array> | null {
    this.stream ??= Readable.toWeb(this.take()) as unknown as ReadableStream<Uint8Array>;
    return this.stream;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const chunks: Buffer[] = [];
    for await (const c of this.take()) chunks.push(c as Buffer);
    const all = Buffer.concat(chunks);
    return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  }

  async text(): Promise<string> {
    return Buffer.from(await this.arrayBuffer()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }
}

function fetchError(message: string, cause: unknown): TypeError {
  return Object.assign(new TypeError(message), { cause });
}

export function createNodeFetch(options: NodeFetchOptions = {}): NodeFetch {
  const keepAlive = options.keepAlive ?? true;
  const http = new HttpAgent({ keepAlive });
  const https = new HttpsAgent({ keepAlive, ...options.tls });
  const verifyPeer = options.verifyPeer;
  if (verifyPeer) {
    // Hand the socket to the request only once its certificate passed: nothing is written before that.
    https.createConnection = ((opts: ConnectionOptions, done: (err: Error | null, socket?: TLSSocket) => void): undefined => {
      // `ca: []`: the chain is not what decides here, so do not load Node's ~140 root certificates into the
      // connection's TLS context (without a `ca` every context loads them: ~10 ms of a pinned `dsg jobs`).
      const socket = tlsConnect({ ...opts, ca: [], rejectUnauthorized: false });
      const fail = (e: Error): void => {
        socket.destroy();
        done(e);
      };
      socket.once('error', fail);
      socket.once('secureConnect', () => {
        socket.off('error', fail);
        const der = socket.getPeerCertificate()?.raw;
        const refused = der ? verifyPeer(der) : new Error('the server presented no certificate');
        if (refused) return fail(refused);
        done(null, socket);
      });
      return undefined;
    }) as unknown as typeof https.createConnection;
  }

  const fetchImpl = (input: string, init: RequestInitLike = {}): Promise<ResponseLike> => {
    const url = new URL(input);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(fetchError(`unsupported URL scheme ${url.protocol}`, null));
    const secure = url.protocol === 'https:';
    const body = init.body ?? null;
    const headers: Record<string, string> = { ...init.headers };
    if (typeof body === 'string' || body instanceof Uint8Array) headers['content-length'] ??= String(Buffer.byteLength(body));
    return new Promise<ResponseLike>((resolve, reject) => {
      if (init.signal?.aborted) return reject(init.signal.reason ?? new DOMException('aborted', 'AbortError'));
      const req = (secure ? httpsRequest : httpRequest)(url, {
        method: init.method ?? 'GET',
        headers,
        agent: secure ? https : http,
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
      http.destroy();
      https.destroy();
    },
  });
}

/** One shared plain fetch for http:// URLs (and https:// verified the usual way). */
let shared: NodeFetch | null = null;
export function nodeFetch(input: string, init?: RequestInitLike): Promise<ResponseLike> {
  shared ??= createNodeFetch();
  return shared(input, init);
}
