/**
 * The response and error shapes shared by DSG's Node fetches (./node-fetch.ts over node:http, ./socket-fetch.ts over
 * a socket the caller connects): a ResponseLike over a Node stream, and fetch's TypeError with its `cause`.
 */
import { Readable } from 'node:stream';
import type { ResponseLike } from './fetch-like.js';
import type { ResponseSource } from './http1.js';

export class NodeResponse implements ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  private used = false;

  constructor(private readonly res: ResponseSource) {
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

  private take(): ResponseSource {
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

export function fetchError(message: string, cause: unknown): TypeError {
  return Object.assign(new TypeError(message), { cause });
}
