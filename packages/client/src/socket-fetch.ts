/**
 * A fetch that speaks HTTP/1.1 (./http1.ts) over sockets the caller connects and checks: a pinned TLS connection
 * (./node-fetch.ts) or the coordinator's local Unix socket (./local.ts). node:http and node:tls are never loaded here,
 * so a short CLI command pays only for what its connection needs.
 *
 * Connections are kept for the next request when `keepAlive` (idle ones do not hold the process open, as with
 * node:http's agent). A GET on a kept connection that the server closed meanwhile (its idle timeout) is sent once more
 * on a new one; other methods are not repeated (the server may have acted on them).
 */
import type { Socket } from 'node:net';
import type { FetchLike, RequestInitLike, ResponseLike } from './fetch-like.js';
import { exchange } from './http1.js';
import { fetchError, NodeResponse } from './node-response.js';

/** A fetch with its own connection pool; `close()` ends its idle connections. */
export interface SocketFetch extends FetchLike {
  close(): void;
}

export interface SocketFetchOptions {
  /** Open a connection for `url`, ready for a request (handshake done, peer checked); reject to refuse it. */
  readonly connect: (url: URL) => Promise<Socket>;
  /** Why `url` cannot be fetched here (a scheme this transport does not serve), or null. */
  readonly refuse?: (url: URL) => string | null;
  /** Connections of one pool: requests to URLs with the same key share them. Default the URL's host. */
  readonly poolKey?: (url: URL) => string;
  readonly keepAlive: boolean;
}

export function createSocketFetch(options: SocketFetchOptions): SocketFetch {
  const { connect, keepAlive } = options;
  const poolKey = options.poolKey ?? ((url: URL) => url.host);
  const idle = new Map<string, Socket[]>();
  /** How an idle socket leaves the pool when the server closes it. */
  const dropOf = new Map<Socket, () => void>();

  const takeIdle = (key: string): Socket | undefined => {
    const list = idle.get(key);
    let socket: Socket | undefined;
    while ((socket = list?.pop()) && socket.destroyed);
    if (!socket) return undefined;
    const drop = dropOf.get(socket)!;
    dropOf.delete(socket);
    socket.off('close', drop).off('end', drop);
    socket.ref();
    return socket;
  };
  const keep = (key: string, socket: Socket): void => {
    const list = idle.get(key) ?? [];
    idle.set(key, list);
    list.push(socket);
    socket.unref();
    const drop = (): void => {
      const i = list.indexOf(socket);
      if (i >= 0) list.splice(i, 1);
      dropOf.delete(socket);
      socket.destroy();
    };
    dropOf.set(socket, drop);
    socket.once('close', drop).once('end', drop);
  };

  const send = async (url: URL, init: RequestInitLike, retried: boolean): Promise<ResponseLike> => {
    const key = poolKey(url);
    const reused = takeIdle(key);
    let socket: Socket;
    try {
      socket = reused ?? (await connect(url));
    } catch (e) {
      throw fetchError(`fetch failed: ${(e as Error).message}`, e);
    }
    const signal = init.signal;
    if (signal?.aborted) {
      socket.destroy();
      throw signal.reason ?? new DOMException('aborted', 'AbortError');
    }
    const method = (init.method ?? 'GET').toUpperCase();
    const body = init.body ?? null;
    let x: ReturnType<typeof exchange>;
    try {
      x = exchange(socket, {
        method,
        url,
        headers: init.headers ?? {},
        body: body === null || typeof body === 'string' || body instanceof Uint8Array ? body : (body as unknown as AsyncIterable<Uint8Array>),
        keepAlive,
      });
    } catch (e) {
      socket.destroy(); // a bad method or header (thrown as node:http throws it), before anything was written
      throw e;
    }
    const onAbort = (): void => x.abort(signal?.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError'));
    signal?.addEventListener('abort', onAbort, { once: true });
    void x.done.then((reusable) => {
      signal?.removeEventListener('abort', onAbort);
      if (reusable && keepAlive) keep(key, socket);
      else socket.destroy();
    });
    try {
      return new NodeResponse(await x.response);
    } catch (e) {
      if (signal?.aborted) throw signal.reason ?? e;
      // A kept connection the server had closed: nothing of the answer arrived. A GET is safe to send again.
      const code = (e as { code?: string }).code;
      if (reused && !retried && (method === 'GET' || method === 'HEAD') && (code === 'ECONNRESET' || code === 'EPIPE')) return send(url, init, true);
      throw fetchError(`fetch failed: ${(e as Error).message}`, e);
    }
  };

  const fetchImpl = (input: string, init: RequestInitLike = {}): Promise<ResponseLike> => {
    let url: URL;
    try {
      url = new URL(input);
    } catch (e) {
      return Promise.reject(fetchError(`invalid URL ${JSON.stringify(input)}`, e));
    }
    const refused = options.refuse?.(url) ?? null;
    if (refused !== null) return Promise.reject(fetchError(refused, null));
    return send(url, init, false);
  };
  return Object.assign(fetchImpl, {
    close: (): void => {
      for (const list of idle.values()) for (const s of list.splice(0)) s.destroy();
    },
  });
}
