/**
 * HTTP/1.1 over a socket the caller connected and checked (Node only; used by `node-fetch.ts` for pinned TLS).
 *
 * Why not node:http: a pinned CLI command already holds a verified TLS socket; node:http / node:https with their
 * agent, ClientRequest, IncomingMessage and llhttp parser cost a short command such as `dsg jobs` ~20 M instructions
 * of its main thread (~8%: measured with callgrind against a bare tls.connect GET). This is the part of HTTP/1.1 the
 * DSG client speaks, and no more:
 *  - request: method, path and query, headers (checked like node:http: token names, no CR/LF/NUL in values), a
 *    string or bytes body with `content-length`, or a streamed body with `transfer-encoding: chunked`;
 *  - response: status line and headers (names lower-cased, repeats joined with ", "), 1xx interim responses
 *    skipped, a body framed by `transfer-encoding: chunked`, `content-length`, or the end of the connection; no body
 *    for HEAD, 204 and 304; the body streams as it arrives, with backpressure (the socket pauses while the reader
 *    does not read).
 * One exchange at a time per socket. The exchange's state machine:
 *
 *   head ──(status 1xx)──▶ head
 *   head ──(HEAD, 204, 304)──▶ done
 *   head ──(chunked)──▶ chunk-size ⇄ chunk-data ──(size 0)──▶ trailers ──(empty line)──▶ done
 *   head ──(content-length n)──▶ length ──(n bytes)──▶ done          (n = 0: straight to done)
 *   head ──(neither)──▶ until-close ──(socket ends)──▶ done
 *   any state but done ──(socket error, or ends early)──▶ failed
 *
 * `done` tells whether the socket may carry another exchange: an HTTP/1.1 answer without `connection: close` that was
 * framed by its length or chunks. Nothing here times out; the caller's AbortSignal ends an exchange.
 */
import type { Duplex } from 'node:stream';
import { Readable } from 'node:stream';

/** What `NodeResponse` reads: an IncomingMessage from node:http is one, and so is `Http1Response`. */
export interface ResponseSource extends Readable {
  readonly statusCode?: number | undefined;
  readonly statusMessage?: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** A response: status, headers, and the body as a Node stream. */
export class Http1Response extends Readable implements ResponseSource {
  statusCode = 0;
  statusMessage = '';
  headers: Record<string, string> = {};
  /** Called when the reader wants more (the socket was paused because the body's buffer was full). */
  onRead: () => void = () => {};

  override _read(): void {
    this.onRead();
  }
}

export interface Http1Request {
  readonly method: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array | AsyncIterable<Uint8Array> | null;
  /** Ask to keep the connection for another exchange (`connection: keep-alive`) or not (`connection: close`). */
  readonly keepAlive: boolean;
}

export interface Http1Exchange {
  /** Settles with the response once its head arrived (the body streams on), or rejects with what went wrong. */
  readonly response: Promise<Http1Response>;
  /** Settles once the exchange is over: true when the socket may carry another one. Never rejects. */
  readonly done: Promise<boolean>;
  /** End the exchange now (an aborted request): the socket is destroyed, and the response or its body fail with `e`. */
  abort(e: Error): void;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;
/** The most bytes of one response head (status line and headers), or of a chunk-size or trailer line, we keep. */
const MAX_HEAD = 64 * 1024;

function requestHead(req: Http1Request, bodyLength: number | 'chunked' | null): string {
  const path = `${req.url.pathname || '/'}${req.url.search}`;
  let head = `${req.method} ${path} HTTP/1.1\r\nhost: ${req.url.host}\r\nconnection: ${req.keepAlive ? 'keep-alive' : 'close'}\r\n`;
  for (const [name, value] of Object.entries(req.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'connection' || lower === 'content-length' || lower === 'transfer-encoding') continue;
    if (!TOKEN.test(name)) throw new TypeError(`invalid HTTP header name "${name}"`);
    if (BAD_VALUE.test(value)) throw new TypeError(`invalid character in the value of HTTP header "${name}"`);
    head += `${name}: ${value}\r\n`;
  }
  if (bodyLength === 'chunked') head += 'transfer-encoding: chunked\r\n';
  else if (bodyLength !== null) head += `content-length: ${bodyLength}\r\n`;
  return `${head}\r\n`;
}

/**
 * Send `req` on `socket` and read its response. The caller owns the socket: on `done` → true it may send another
 * exchange on it; otherwise it should destroy it (this does, when the exchange failed).
 */
export function exchange(socket: Duplex, req: Http1Request): Http1Exchange {
  if (!TOKEN.test(req.method)) throw new TypeError(`invalid HTTP method "${req.method}"`);
  const fixed = typeof req.body === 'string' ? Buffer.from(req.body, 'utf8') : req.body instanceof Uint8Array ? req.body : null;
  const streamed = req.body !== null && fixed === null ? (req.body as AsyncIterable<Uint8Array>) : null;
  const head = requestHead(req, fixed ? fixed.byteLength : streamed ? 'chunked' : req.method === 'GET' || req.method === 'HEAD' ? null : 0);

  let resolveResponse!: (r: Http1Response) => void;
  let rejectResponse!: (e: Error) => void;
  const response = new Promise<Http1Response>((resolve, reject) => {
    resolveResponse = resolve;
    rejectResponse = reject;
  });
  let resolveDone!: (reusable: boolean) => void;
  const done = new Promise<boolean>((resolve) => {
    resolveDone = resolve;
  });

  type State = 'head' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'length' | 'until-close' | 'done' | 'failed';
  let state: State = 'head';
  let res: Http1Response | null = null;
  let pending = Buffer.alloc(0); // bytes of a head or a line not yet complete
  let remaining = 0; // bytes left of the body (length) or of the current chunk (chunk-data)
  let reusable = false;
  let settled = false;

  const cleanup = (): void => {
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.off('error', onError);
  };
  const finish = (): void => {
    if (settled) return;
    settled = true;
    state = 'done';
    cleanup();
    res!.push(null);
    resolveDone(reusable && !socket.destroyed);
  };
  const fail = (e: Error): void => {
    if (settled) return;
    settled = true;
    state = 'failed';
    cleanup();
    socket.destroy();
    if (res) res.destroy(e);
    else rejectResponse(e);
    resolveDone(false);
  };
  function onError(e: Error): void {
    fail(e);
  }
  function onEnd(): void {
    if (state === 'until-close') return finish();
    fail(Object.assign(new Error(res ? 'the connection closed before the response ended' : 'socket hang up'), { code: 'ECONNRESET' }));
  }

  /** Take one CRLF-terminated line from `buf` at `at`; null when it is not complete yet. */
  const line = (buf: Buffer, at: number): { text: string; next: number } | null => {
    const end = buf.indexOf('\r\n', at);
    if (end < 0) {
      if (buf.length - at > MAX_HEAD) throw new Error('an HTTP line longer than 64 KiB');
      return null;
    }
    return { text: buf.toString('latin1', at, end), next: end + 2 };
  };

  const startBody = (r: Http1Response): void => {
    const h = r.headers;
    const close = /(?:^|,)\s*close\s*(?:,|$)/i.test(h['connection'] ?? '');
    if (req.method === 'HEAD' || r.statusCode === 204 || r.statusCode === 304) {
      reusable = !close;
      state = 'done';
    } else if (/(?:^|,)\s*chunked\s*$/i.test(h['transfer-encoding'] ?? '')) {
      reusable = !close;
      state = 'chunk-size';
    } else if (h['content-length'] !== undefined) {
      if (!/^\d+$/.test(h['content-length'])) throw new Error(`a bad content-length "${h['content-length']}"`);
      remaining = Number(h['content-length']);
      reusable = !close;
      state = remaining === 0 ? 'done' : 'length';
    } else {
      state = 'until-close';
    }
  };

  const parseHead = (text: string): Http1Response | null => {
    const lines = text.split('\r\n');
    const status = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0]!);
    if (!status) throw new Error(`not an HTTP/1.1 response: "${lines[0]!.slice(0, 40)}"`);
    const code = Number(status[2]);
    if (code >= 100 && code < 200) return null; // interim (100 Continue, 103 Early Hints): the real answer follows
    const r = new Http1Response();
    r.statusCode = code;
    r.statusMessage = status[3] ?? '';
    for (const l of lines.slice(1)) {
      const colon = l.indexOf(':');
      if (colon <= 0) throw new Error(`a bad HTTP header line "${l.slice(0, 40)}"`);
      const name = l.slice(0, colon).trim().toLowerCase();
      const value = l.slice(colon + 1).trim();
      r.headers[name] = r.headers[name] === undefined ? value : `${r.headers[name]}, ${value}`;
    }
    if (status[1] === '0' && !/keep-alive/i.test(r.headers['connection'] ?? '')) r.headers['connection'] = 'close';
    return r;
  };

  /** Hand body bytes to the reader; pause the socket while the reader's buffer is full. */
  const deliver = (bytes: Buffer): void => {
    if (bytes.length > 0 && !res!.push(bytes)) socket.pause();
  };

  function onData(data: Buffer): void {
    try {
      const buf = pending.length > 0 ? Buffer.concat([pending, data]) : data;
      pending = Buffer.alloc(0);
      let at = 0;
      while (at < buf.length && state !== 'done' && state !== 'failed') {
        if (state === 'head') {
          const end = buf.indexOf('\r\n\r\n', at);
          if (end < 0) {
            if (buf.length - at > MAX_HEAD) throw new Error('an HTTP response head larger than 64 KiB');
            break;
          }
          const r = parseHead(buf.toString('latin1', at, end));
          at = end + 4;
          if (!r) continue;
          res = r;
          r.onRead = () => socket.resume();
          startBody(r);
          resolveResponse(r);
        } else if (state === 'length') {
          const take = Math.min(remaining, buf.length - at);
          deliver(buf.subarray(at, at + take));
          at += take;
          remaining -= take;
          if (remaining === 0) state = 'done';
        } else if (state === 'until-close') {
          deliver(buf.subarray(at));
          at = buf.length;
        } else if (state === 'chunk-size' || state === 'chunk-end' || state === 'trailers') {
          const l = line(buf, at);
          if (!l) break;
          at = l.next;
          if (state === 'chunk-end') {
            if (l.text !== '') throw new Error('a chunk not followed by CRLF');
            state = 'chunk-size';
          } else if (state === 'trailers') {
            if (l.text === '') state = 'done';
          } else {
            const size = /^([0-9A-Fa-f]+)\s*(?:;.*)?$/.exec(l.text);
            if (!size) throw new Error(`a bad chunk size "${l.text.slice(0, 20)}"`);
            remaining = parseInt(size[1]!, 16);
            state = remaining === 0 ? 'trailers' : 'chunk-data';
          }
        } else if (state === 'chunk-data') {
          const take = Math.min(remaining, buf.length - at);
          deliver(buf.subarray(at, at + take));
          at += take;
          remaining -= take;
          if (remaining === 0) state = 'chunk-end';
        }
      }
      if (state === 'done') {
        // Bytes after the response (a server's early bytes for a next exchange we never asked for): not reusable.
        if (at < buf.length) reusable = false;
        return finish();
      }
      if (at < buf.length) pending = Buffer.from(buf.subarray(at));
    } catch (e) {
      fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
  socket.once('error', onError);
  // A kept socket may still be paused: the last exchange's body filled its reader's buffer (see deliver).
  socket.resume();

  // The request: its head and a fixed body in one write; a streamed body chunk by chunk, waiting for the socket to
  // drain. A body that fails ends the exchange (the server saw a request cut short).
  if (!streamed) socket.write(fixed ? Buffer.concat([Buffer.from(head, 'latin1'), fixed]) : head);
  else {
    socket.write(head);
    void (async () => {
      for await (const chunk of streamed) {
        if (settled) return;
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        if (bytes.byteLength === 0) continue;
        const ok = socket.write(Buffer.concat([Buffer.from(`${bytes.byteLength.toString(16)}\r\n`, 'latin1'), bytes, Buffer.from('\r\n', 'latin1')]));
        // Wait for the socket to drain, or to close (the exchange failed: the loop then stops, ending the body).
        if (!ok) await new Promise<void>((resolve) => socket.once('drain', resolve).once('close', resolve));
      }
      socket.write('0\r\n\r\n');
    })().catch((e: unknown) => fail(e instanceof Error ? e : new Error(String(e))));
  }
  return { response, done, abort: fail };
}
