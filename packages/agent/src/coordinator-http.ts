/**
 * The agent's HTTP calls to the coordinator: fetch an input blob, upload an output. Only these two; everything
 * else goes over the WebSocket.
 *
 * Input blobs are cached in `blobDir`, named by their sha256, and shared by every task that needs them. The cache
 * is trusted only as far as it was checked. A cached blob goes through these states, per agent process:
 *
 *   absent ──download (hashed while streaming, size checked, .part + rename)──▶ verified(signature)
 *   present, never verified by this process ──re-hash──▶ verified(signature) | corrupt
 *   verified(signature) ──signature unchanged──▶ used as is (a stat, no read)
 *                      ──signature changed (size, mtime, ctime, inode or device)──▶ re-hash ──▶ verified | corrupt
 *   corrupt ──warn, delete──▶ absent
 *
 * The signature is what the file looked like when it was last hashed. ctime is in it because a program can put
 * mtime back after writing (`touch -r`, `utimes`) but cannot set ctime. Signatures live in memory only: a fresh
 * agent hashes each cached blob once, on first use. Concurrent requests for one blob share one check and one
 * download.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type BigIntStats } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FetchLike } from '@dsg/client';
import { nodeFetch } from '@dsg/client/node';

/** Same shape as `AgentOptions['log']`. */
export type HttpLog = (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface CoordinatorHttpOptions {
  /** Where warnings go (a corrupted cached blob). Default: one line on stderr. */
  readonly log?: HttpLog;
}

const stderrLog: HttpLog = (level, message) => {
  if (level === 'warn' || level === 'error') process.stderr.write(`dsg agent: ${level}: ${message}\n`);
};

export class CoordinatorHttp {
  private readonly inflight = new Map<string, Promise<string>>();
  /** sha256 → signature of the cached file when this process last found its content right. */
  private readonly verified = new Map<string, string>();
  private readonly log: HttpLog;
  private readonly token: () => string;
  private tmpCounter = 0;
  /** The fetch to the coordinator: the global one, or one that trusts only its pinned certificate (setFetch). */
  private fetch: FetchLike = nodeFetch;

  constructor(
    private readonly baseUrl: string,
    /** The bearer token to send: the node's credential once it has one. */
    token: string | (() => string),
    private readonly blobDir: string,
    options: CoordinatorHttpOptions = {},
  ) {
    this.token = typeof token === 'function' ? token : () => token;
    this.log = options.log ?? stderrLog;
  }

  /** Use this fetch from now on (the agent's pinned TLS transport, once the pin was checked). */
  setFetch(f: FetchLike): void {
    this.fetch = f;
  }

  private url(path: string): string {
    return `${this.baseUrl.replace(/\/+$/, '')}/api/v1${path}`;
  }

  /**
   * Path of a verified local copy of a blob, checking or downloading it once however many tasks ask at the same
   * time. `size`, when known (the assignment says it), is checked against the cached file and the download.
   */
  blob(sha256: string, size?: number): Promise<string> {
    let p = this.inflight.get(sha256);
    if (!p) {
      p = this.ensure(sha256, size).finally(() => this.inflight.delete(sha256));
      this.inflight.set(sha256, p);
    }
    return p;
  }

  private async ensure(sha256: string, size: number | undefined): Promise<string> {
    const dest = join(this.blobDir, sha256);
    const before = await stat(dest, { bigint: true }).catch(() => null);
    if (before) {
      const sig = signature(before);
      if (this.verified.get(sha256) === sig) return dest;
      let problem: string | null = null;
      if (size !== undefined && before.size !== BigInt(size)) problem = `it has ${before.size} bytes instead of ${size}`;
      else {
        let got: string;
        try {
          got = await sha256File(dest);
        } catch (e) {
          got = '';
          problem = `it cannot be read: ${e instanceof Error ? e.message : String(e)}`;
        }
        // Hashed the same file we stat'ed? If it changed meanwhile, the hash proves nothing: fetch it again.
        const after = await stat(dest, { bigint: true }).catch(() => null);
        if (got === sha256 && after && signature(after) === sig) {
          this.verified.set(sha256, sig);
          return dest;
        }
        problem ??= got === sha256 ? 'it changed while being checked' : `its content hashes to ${got.slice(0, 12)}…`;
      }
      this.verified.delete(sha256);
      this.log('warn', `cached input ${sha256.slice(0, 12)}… is corrupted (${problem}); deleting it and downloading it again`, { blob: dest });
      await rm(dest, { force: true });
    }
    return this.download(sha256, size, dest);
  }

  private async download(sha256: string, size: number | undefined, dest: string): Promise<string> {
    const name = `input ${sha256.slice(0, 12)}…`;
    await mkdir(this.blobDir, { recursive: true });
    const res = await this.fetch(this.url(`/blobs/${sha256}`), { headers: { authorization: `Bearer ${this.token()}` } });
    if (!res.ok || !res.body) throw new Error(`${name} could not be fetched: HTTP ${res.status}`);
    const announced = res.headers.get('content-length');
    if (size !== undefined && announced !== null && Number(announced) !== size) {
      await res.body.cancel().catch(() => undefined);
      throw new Error(`${name} could not be fetched: the coordinator announced ${announced} bytes, expected ${size}`);
    }
    // Written under a unique name and renamed into place only once complete and verified, so a reader never
    // sees a partial or wrong file under the blob's name.
    const tmp = `${dest}.part-${process.pid}-${++this.tmpCounter}`;
    const hash = createHash('sha256');
    let received = 0;
    try {
      await pipeline(
        Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
        async function* (src: AsyncIterable<Buffer>) {
          for await (const c of src) {
            received += c.length;
            if (size !== undefined && received > size) throw new Error(`${name} arrived corrupted (more than the expected ${size} bytes)`);
            hash.update(c);
            yield c;
          }
        },
        createWriteStream(tmp),
      );
      if (size !== undefined && received !== size) throw new Error(`${name} arrived truncated (${received} of ${size} bytes)`);
      const got = hash.digest('hex');
      if (got !== sha256) throw new Error(`${name} arrived corrupted (hash ${got.slice(0, 12)}…)`);
      // Signature taken after the rename: a rename changes ctime.
      await rename(tmp, dest);
      this.verified.set(sha256, signature(await stat(dest, { bigint: true })));
      return dest;
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async uploadOutput(attemptId: string, path: string, file: string, sha256: string, size: number): Promise<void> {
    const encoded = path.split('/').map(encodeURIComponent).join('/');
    const res = await this.fetch(this.url(`/attempts/${attemptId}/outputs/${encoded}`), {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${this.token()}`,
        'content-type': 'application/octet-stream',
        'content-length': String(size),
        'x-dsg-sha256': sha256,
      },
      body: createReadStream(file) as unknown as ReadableStream<Uint8Array>,
      duplex: 'half',
    });
    if (!res.ok) throw new Error(`output ${path} was refused: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
  }
}

/** What a cached file looked like: any write, truncation, replacement or `touch` changes at least one field. */
function signature(st: BigIntStats): string {
  return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.dev}`;
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}
