/**
 * The coordinator's local API socket (Node only: import `@dsg/client/local`).
 *
 * A coordinator also serves its API on a Unix socket in its data dir (`api.sock`, mode 0600, in a 0700 dir), the way
 * LXD and Docker serve their local clients. A CLI on the same machine, as the same user, talks to it there: no TCP, no
 * TLS handshake, and node:tls is never loaded (~15 ms of a short command's start here). It is a transport only: every
 * request still carries its token and is checked exactly as over the network.
 *
 * Trust: the socket is used only when the file system says the coordinator's user made it: a socket owned by this
 * user or root, in a directory owned by this user or root that no one else may write to. Anything else (a stale
 * socket after a crash, another user's grid, a path someone could have replaced) is passed over and the request goes
 * to the coordinator's URL, checked as usual (a pinned certificate).
 */
import { lstatSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { dirname, isAbsolute } from 'node:path';
import type { FetchLike, RequestInitLike, ResponseLike } from './fetch-like.js';
import { createSocketFetch, type SocketFetch } from './socket-fetch.js';

/** Why the socket at `path` is not one to send a token to, or null when it is. */
export function localSocketRefusal(path: string): string | null {
  if (!isAbsolute(path)) return `${path} is not an absolute path`;
  const uid = process.getuid?.();
  if (uid === undefined) return 'Unix sockets are not used on this platform';
  const ownedHere = (owner: number): boolean => owner === uid || owner === 0;
  let sock, dir;
  try {
    sock = lstatSync(path);
    dir = lstatSync(dirname(path));
  } catch (e) {
    return `${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  if (!sock.isSocket()) return `${path} is not a socket`;
  if (!ownedHere(sock.uid)) return `${path} belongs to uid ${sock.uid}, not to this user or root`;
  if (!dir.isDirectory() || !ownedHere(dir.uid)) return `${dirname(path)} is not a directory of this user or root`;
  if ((dir.mode & 0o022) !== 0) return `${dirname(path)} may be written by other users (mode ${(dir.mode & 0o777).toString(8)})`;
  return null;
}

/** Failures of a local connection after which the request goes to the coordinator's URL instead. */
const PASS_OVER = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'EPERM', 'ENOTSOCK', 'ENOTDIR', 'EPROTOTYPE']);

export interface LocalFetch extends FetchLike {
  /** Requests answered over the socket and over the fallback so far (for `--verbose`-style reporting and tests). */
  readonly counts: { local: number; fallback: number };
  close(): void;
}

/**
 * A fetch for the coordinator at `baseUrl` that goes through its local socket `socketPath` when that can be trusted
 * and answers, and through `fallback` (the usual https / http fetch, made on first need) otherwise. Only URLs under
 * `baseUrl` go to the socket.
 */
export function createLocalFetch(socketPath: string, baseUrl: string, fallback: () => FetchLike): LocalFetch {
  const origin = new URL(baseUrl).origin;
  const counts = { local: 0, fallback: 0 };
  let fell: FetchLike | null = null;
  const viaFallback = (input: string, init?: RequestInitLike): Promise<ResponseLike> => {
    counts.fallback++;
    return (fell ??= fallback())(input, init);
  };
  const connect = (): Promise<Socket> => new Promise((resolve, reject) => {
    const refused = localSocketRefusal(socketPath);
    if (refused !== null) return reject(Object.assign(new Error(refused), { code: 'EACCES' }));
    const socket = netConnect({ path: socketPath });
    const fail = (e: Error): void => {
      socket.destroy();
      reject(e);
    };
    socket.on('error', fail); // stays for the socket's life, as in the pinned fetch
    socket.once('connect', () => resolve(socket));
  });
  const local: SocketFetch = createSocketFetch({ connect, keepAlive: true, poolKey: () => socketPath });

  const fetchImpl = async (input: string, init?: RequestInitLike): Promise<ResponseLike> => {
    if (!input.startsWith(`${origin}/`) && input !== origin) return viaFallback(input, init);
    try {
      const res = await local(input, init);
      counts.local++;
      return res;
    } catch (e) {
      const code = (e as { cause?: { code?: string } }).cause?.code;
      // Nothing was sent when the connection itself failed: the same request goes the usual way.
      if (code !== undefined && PASS_OVER.has(code) && !init?.signal?.aborted) return viaFallback(input, init);
      throw e;
    }
  };
  return Object.assign(fetchImpl, {
    counts,
    close: (): void => local.close(),
  });
}
