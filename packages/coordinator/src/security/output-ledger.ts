/**
 * What each active attempt has uploaded in this coordinator process: bytes (against the per-attempt quota) and
 * files (path → sha256, size). A `finished` report may only name outputs its attempt uploaded, so a node cannot
 * present another job's blob as its result by naming its hash. Entries are dropped when the attempt ends.
 *
 * Uploads for one attempt are serialised (the agent sends them one at a time anyway), so the quota check and the
 * byte count cannot race. The ledger is in memory: after a coordinator restart, an attempt whose outputs were
 * uploaded before it and whose `finished` arrives after it ends as `outputs_failed` (a system failure, retried).
 */
export interface UploadedFile {
  readonly sha256: string;
  readonly size: number;
}

interface Entry {
  bytes: number;
  readonly files: Map<string, UploadedFile>;
  chain: Promise<unknown>;
}

export class OutputLedger {
  private readonly map = new Map<string, Entry>();

  constructor(
    /** Most bytes one attempt may upload in all. */
    readonly quotaBytes: number,
  ) {}

  private entry(attemptId: string): Entry {
    let e = this.map.get(attemptId);
    if (!e) this.map.set(attemptId, (e = { bytes: 0, files: new Map(), chain: Promise.resolve() }));
    return e;
  }

  /** Bytes this attempt may still upload. */
  remaining(attemptId: string): number {
    return Math.max(0, this.quotaBytes - (this.map.get(attemptId)?.bytes ?? 0));
  }

  /** Run `fn` after every earlier upload of this attempt has finished (one upload at a time per attempt). */
  serialise<T>(attemptId: string, fn: () => Promise<T>): Promise<T> {
    const e = this.entry(attemptId);
    const run = e.chain.then(fn, fn);
    e.chain = run.catch(() => undefined);
    return run;
  }

  record(attemptId: string, path: string, file: UploadedFile): void {
    const e = this.entry(attemptId);
    // Every byte counts, a second upload of one path too: each one may have written a new blob.
    e.bytes += file.size;
    e.files.set(path, file);
  }

  uploaded(attemptId: string, path: string): UploadedFile | undefined {
    return this.map.get(attemptId)?.files.get(path);
  }

  forget(attemptId: string): void {
    this.map.delete(attemptId);
  }
}
