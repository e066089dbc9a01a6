/**
 * The agent's HTTP calls to the coordinator: fetch an input blob, upload an output. Only these two; everything
 * else goes over the WebSocket.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export class CoordinatorHttp {
  private readonly inflight = new Map<string, Promise<string>>();
  private tmpCounter = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly blobDir: string,
  ) {}

  private url(path: string): string {
    return `${this.baseUrl.replace(/\/+$/, '')}/api/v1${path}`;
  }

  /** Path of a verified local copy of a blob, downloading it once however many tasks ask at the same time. */
  blob(sha256: string): Promise<string> {
    let p = this.inflight.get(sha256);
    if (!p) {
      p = this.download(sha256).finally(() => this.inflight.delete(sha256));
      this.inflight.set(sha256, p);
    }
    return p;
  }

  private async download(sha256: string): Promise<string> {
    const dest = join(this.blobDir, sha256);
    try {
      await stat(dest);
      return dest;
    } catch {
      /* not cached */
    }
    await mkdir(this.blobDir, { recursive: true });
    const res = await fetch(this.url(`/blobs/${sha256}`), { headers: { authorization: `Bearer ${this.token}` } });
    if (!res.ok || !res.body) throw new Error(`input ${sha256.slice(0, 12)}… could not be fetched: HTTP ${res.status}`);
    const tmp = `${dest}.part-${process.pid}-${++this.tmpCounter}`;
    const hash = createHash('sha256');
    try {
      await pipeline(
        Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
        async function* (src: AsyncIterable<Buffer>) {
          for await (const c of src) {
            hash.update(c);
            yield c;
          }
        },
        createWriteStream(tmp),
      );
      const got = hash.digest('hex');
      if (got !== sha256) throw new Error(`input ${sha256.slice(0, 12)}… arrived corrupted (hash ${got.slice(0, 12)}…)`);
      await rename(tmp, dest);
      return dest;
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async uploadOutput(attemptId: string, path: string, file: string, sha256: string, size: number): Promise<void> {
    const encoded = path.split('/').map(encodeURIComponent).join('/');
    const res = await fetch(this.url(`/attempts/${attemptId}/outputs/${encoded}`), {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${this.token}`,
        'content-type': 'application/octet-stream',
        'content-length': String(size),
        'x-dsg-sha256': sha256,
      },
      body: createReadStream(file) as unknown as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    if (!res.ok) throw new Error(`output ${path} was refused: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
  }
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}
