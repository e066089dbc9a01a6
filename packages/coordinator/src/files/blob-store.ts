/**
 * Content-addressed file storage for job inputs and task outputs, keyed by sha256.
 *
 * A blob is written to a temporary file, its hash checked against the claimed one, then renamed into place, so a
 * reader never sees a partial blob and a crash mid-upload leaves only a temp file (removed at start-up). Because
 * the key is the content hash, re-uploading is harmless and identical files are stored once; outputs moving
 * between machines (DAG artifacts, later) need nothing more than a blob id.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DsgError, ValidationError } from '@dsg/core';

export interface BlobStore {
  has(sha256: string): Promise<boolean>;
  size(sha256: string): Promise<number | null>;
  /** Store a stream; rejects (and stores nothing) if it is larger than maxBytes or does not hash to sha256. */
  put(sha256: string, body: Readable, maxBytes: number): Promise<{ size: number }>;
  open(sha256: string): Readable;
  /** Every stored blob with its size and when it was last written or asked about (data lifecycle). */
  list(): AsyncIterable<{ readonly sha256: string; readonly size: number; readonly mtimeMs: number }>;
  remove(sha256: string): Promise<void>;
  /** Mark a blob as just used: a client that found it (HEAD) before submitting keeps it safe from a sweep. */
  touch(sha256: string): Promise<void>;
}

const SHA = /^[0-9a-f]{64}$/;

export class FileBlobStore implements BlobStore {
  private tmpCounter = 0;
  constructor(private readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(join(this.dir, 'tmp'), { recursive: true, mode: 0o700 });
    // Partial uploads from a crash are garbage.
    for (const f of await readdir(join(this.dir, 'tmp'))) await rm(join(this.dir, 'tmp', f), { force: true });
  }

  private pathOf(sha256: string): string {
    if (!SHA.test(sha256)) throw new ValidationError([{ path: 'sha256', message: 'expected a lowercase hex sha256' }]);
    return join(this.dir, sha256.slice(0, 2), sha256);
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.size(sha256)) !== null;
  }

  async size(sha256: string): Promise<number | null> {
    try {
      return (await stat(this.pathOf(sha256))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async put(sha256: string, body: Readable, maxBytes: number): Promise<{ size: number }> {
    const final = this.pathOf(sha256);
    const tmp = join(this.dir, 'tmp', `${process.pid}-${++this.tmpCounter}-${sha256.slice(0, 12)}`);
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            size += chunk.length;
            if (size > maxBytes) throw new DsgError('too_large', `upload is larger than the limit of ${maxBytes} bytes`);
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(tmp, { mode: 0o600 }),
      );
      const actual = hash.digest('hex');
      if (actual !== sha256)
        throw new ValidationError([{ path: 'sha256', message: `content hashes to ${actual}, not ${sha256}; the upload was corrupted or the hash is wrong` }]);
      await mkdir(join(this.dir, sha256.slice(0, 2)), { recursive: true, mode: 0o700 });
      await rename(tmp, final);
      return { size };
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  open(sha256: string): Readable {
    return createReadStream(this.pathOf(sha256));
  }

  async *list(): AsyncIterable<{ readonly sha256: string; readonly size: number; readonly mtimeMs: number }> {
    for (const sub of await readdir(this.dir)) {
      if (sub.length !== 2) continue; // tmp/ and anything else
      let names: string[];
      try {
        names = await readdir(join(this.dir, sub));
      } catch {
        continue;
      }
      for (const name of names) {
        if (!SHA.test(name)) continue;
        try {
          const st = await stat(join(this.dir, sub, name));
          yield { sha256: name, size: st.size, mtimeMs: st.mtimeMs };
        } catch {
          /* removed meanwhile */
        }
      }
    }
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }

  async touch(sha256: string): Promise<void> {
    const now = new Date();
    await utimes(this.pathOf(sha256), now, now).catch(() => undefined);
  }
}
