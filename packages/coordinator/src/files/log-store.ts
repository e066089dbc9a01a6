/**
 * Task logs, one append-only file per attempt: `<dir>/<jobId>/<attemptId>.log`.
 *
 * Agents stream log chunks; the coordinator appends them in batches (one write per attempt per flush) before it
 * commits the attempt's end, so once an attempt is finished its log is complete on disk. Each attempt's log is
 * capped (`maxBytesPerAttempt`); past the cap one marker line is written and the rest dropped.
 */
import { open, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface LogStore {
  /** Append chunks; the map is attemptId → { jobId, text }. */
  append(batch: ReadonlyMap<string, { jobId: string; text: string }>): Promise<void>;
  read(jobId: string, attemptId: string, offset: number, limit: number): Promise<{ data: string; size: number; nextOffset: number }>;
  /** Every job that has logs, with their total size and latest write (data lifecycle). */
  listJobs(): Promise<ReadonlyArray<{ readonly jobId: string; readonly bytes: number; readonly mtimeMs: number }>>;
  /** Remove a job's logs; resolves to the bytes freed. */
  removeJob(jobId: string): Promise<number>;
}

const TRUNCATED = '\n[dsg] log truncated: this attempt wrote more than the per-attempt limit\n';

export class FileLogStore implements LogStore {
  /**
   * Bytes written per recent attempt (so the cap costs no stat per append) and job dirs known to exist. Both are
   * bounded caches: a miss costs one stat or mkdir, so a long-running coordinator does not grow without end.
   */
  private readonly sizes = new Map<string, number>();
  private readonly dirsMade = new Set<string>();
  private static readonly CACHE_LIMIT = 10_000;

  constructor(
    private readonly dir: string,
    private readonly maxBytesPerAttempt = 8 * 1024 * 1024,
  ) {}

  private fileOf(jobId: string, attemptId: string): string {
    return join(this.dir, jobId, `${attemptId}.log`);
  }

  async append(batch: ReadonlyMap<string, { jobId: string; text: string }>): Promise<void> {
    await Promise.all(
      [...batch].map(async ([attemptId, { jobId, text }]) => {
        const jobDir = join(this.dir, jobId);
        if (!this.dirsMade.has(jobDir)) {
          await mkdir(jobDir, { recursive: true, mode: 0o700 });
          if (this.dirsMade.size >= FileLogStore.CACHE_LIMIT) this.dirsMade.clear();
          this.dirsMade.add(jobDir);
        }
        const file = this.fileOf(jobId, attemptId);
        let used = this.sizes.get(attemptId);
        if (used === undefined) used = await stat(file).then((s) => s.size, () => 0);
        if (used >= this.maxBytesPerAttempt) return;
        let buf = Buffer.from(text, 'utf8');
        if (used + buf.length > this.maxBytesPerAttempt) {
          buf = Buffer.concat([buf.subarray(0, this.maxBytesPerAttempt - used), Buffer.from(TRUNCATED)]);
          used = this.maxBytesPerAttempt;
        } else used += buf.length;
        this.sizes.delete(attemptId);
        if (this.sizes.size >= FileLogStore.CACHE_LIMIT) this.sizes.delete(this.sizes.keys().next().value!);
        this.sizes.set(attemptId, used);
        const fh = await open(file, 'a', 0o600);
        try {
          await fh.write(buf);
        } finally {
          await fh.close();
        }
      }),
    );
  }

  async read(jobId: string, attemptId: string, offset: number, limit: number): Promise<{ data: string; size: number; nextOffset: number }> {
    let fh;
    try {
      fh = await open(this.fileOf(jobId, attemptId), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { data: '', size: 0, nextOffset: offset };
      throw e;
    }
    try {
      const { size } = await fh.stat();
      if (offset >= size) return { data: '', size, nextOffset: offset };
      const len = Math.min(limit, size - offset);
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, offset);
      // Do not split a UTF-8 character: stop before an incomplete trailing sequence.
      let end = bytesRead;
      if (offset + end < size) end = utf8Boundary(buf, end);
      return { data: buf.subarray(0, end).toString('utf8'), size, nextOffset: offset + end };
    } finally {
      await fh.close();
    }
  }

  async listJobs(): Promise<ReadonlyArray<{ readonly jobId: string; readonly bytes: number; readonly mtimeMs: number }>> {
    let dirs: string[];
    try {
      dirs = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: Array<{ jobId: string; bytes: number; mtimeMs: number }> = [];
    for (const jobId of dirs) {
      let bytes = 0;
      let mtimeMs = 0;
      try {
        const dir = join(this.dir, jobId);
        mtimeMs = (await stat(dir)).mtimeMs;
        for (const f of await readdir(dir)) {
          const st = await stat(join(dir, f)).catch(() => null);
          if (!st) continue;
          bytes += st.size;
          mtimeMs = Math.max(mtimeMs, st.mtimeMs);
        }
      } catch {
        continue;
      }
      out.push({ jobId, bytes, mtimeMs });
    }
    return out;
  }

  async removeJob(jobId: string): Promise<number> {
    const dir = join(this.dir, jobId);
    let bytes = 0;
    try {
      for (const f of await readdir(dir)) bytes += (await stat(join(dir, f)).catch(() => ({ size: 0 }))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    this.dirsMade.delete(dir);
    await rm(dir, { recursive: true, force: true });
    return bytes;
  }

}

function utf8Boundary(buf: Buffer, end: number): number {
  let i = end - 1;
  let cont = 0;
  while (i >= 0 && (buf[i]! & 0xc0) === 0x80 && cont < 3) {
    i--;
    cont++;
  }
  if (i < 0) return end;
  const lead = buf[i]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return end - i >= need ? end : i;
}
