/**
 * What the client needs of `fetch`: the browser's and Node's global fetch satisfy it, and so does the small
 * `node:http` one in `@dsg/client/node` (which the CLI and the agent use: it starts and exits faster and takes TLS
 * options for a pinned certificate).
 */
export interface RequestInitLike {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array | ReadableStream<Uint8Array> | null;
  /** Needed by the global fetch for a streamed body; ignored by the Node one. */
  readonly duplex?: 'half';
  readonly signal?: AbortSignal;
}

export interface ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  /** The body as a web stream (read it once: this, json, text or arrayBuffer). */
  readonly body: ReadableStream<Uint8Array> | null;
  json(): Promise<unknown>;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export type FetchLike = (url: string, init?: RequestInitLike) => Promise<ResponseLike>;
