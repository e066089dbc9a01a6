/**
 * The API on a Unix socket in the data dir (`<dataDir>/api.sock`), for clients on this machine: a `dsg` command
 * run by the coordinator's user talks to it without TCP or TLS (client: `@dsg/client/local`). LXD and Docker serve
 * their local clients the same way.
 *
 * It is a second door to the same API, not a way around its checks: requests go through the same Fastify routing
 * (hooks, authentication, rate limits, audit), and each still needs its token. Who may connect at all is decided by
 * the file system: the socket is 0600 inside the 0700 data dir. The requests' client address reads `local` (audit
 * log, failed-authentication limits). WebSocket upgrades (agents) are not served here.
 *
 * Start: a socket left by a coordinator that crashed is removed (the data-dir lock says no other coordinator uses
 * this dir); anything else at the path is left alone and the socket is not served. A path longer than the platform's
 * limit for socket paths is not served either. Neither stops the coordinator: clients use its URL.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, lstat, unlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { Logger } from '../logger.js';

/** The client address of requests that came through the local socket (`req.ip`). */
export const LOCAL_CLIENT_ADDRESS = 'local';

/** `sun_path` less its NUL: 107 bytes on Linux, 103 on macOS and the BSDs. */
const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** How long a close waits for requests under way (a streamed download) before their connections are cut. */
const CLOSE_GRACE_MS = 2000;

export interface LocalSocket {
  readonly path: string;
  /** Stop serving: finish or cut open connections, remove the socket file. */
  close(): Promise<void>;
}

export interface LocalSocketOptions {
  readonly path: string;
  /** The API's request handler (Fastify's `routing`). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** The TCP server's settings, copied so both doors behave alike (keep-alive, request timeout). */
  readonly like: Pick<Server, 'keepAliveTimeout' | 'requestTimeout' | 'headersTimeout' | 'timeout' | 'maxHeadersCount' | 'maxRequestsPerSocket'>;
  readonly log: Logger;
}

/** Serve the API on `path`, or return null (with why, logged) when it cannot be served there. */
export async function serveLocalSocket(o: LocalSocketOptions): Promise<LocalSocket | null> {
  if (process.platform === 'win32') return null;
  if (Buffer.byteLength(o.path) > MAX_SOCKET_PATH_BYTES) {
    o.log.info({ path: o.path }, `no local API socket: its path is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a socket path may have (a shorter --data-dir gets one); clients use the URL`);
    return null;
  }
  const found = await lstat(o.path).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : Promise.reject(e)));
  if (found && !found.isSocket()) {
    o.log.warn({ path: o.path }, 'no local API socket: something that is not a socket is at its path (left alone); clients use the URL');
    return null;
  }
  if (found) await unlink(o.path); // a socket left by a coordinator that stopped without removing it

  const server = createServer(o.handler);
  server.keepAliveTimeout = o.like.keepAliveTimeout;
  server.requestTimeout = o.like.requestTimeout;
  server.headersTimeout = o.like.headersTimeout;
  server.timeout = o.like.timeout;
  server.maxHeadersCount = o.like.maxHeadersCount;
  server.maxRequestsPerSocket = o.like.maxRequestsPerSocket;
  server.on('connection', (socket: Socket) => {
    Object.defineProperty(socket, 'remoteAddress', { value: LOCAL_CLIENT_ADDRESS });
  });
  // Agents connect over the network (wss): an upgrade here is refused, not left hanging.
  server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
    socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nagents connect to the coordinator URL, not to its local socket\n');
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(o.path, 0o600);
  } catch (e) {
    server.close();
    o.log.warn({ err: e, path: o.path }, 'no local API socket: could not listen on it; clients use the URL');
    return null;
  }
  server.on('error', (e) => o.log.error({ err: e, path: o.path }, 'local API socket failed'));

  let closing: Promise<void> | null = null;
  return {
    path: o.path,
    close: () => (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
      clearTimeout(timer);
      server.closeAllConnections();
      await closed;
      await unlink(o.path).catch(() => {});
    })()),
  };
}
