/**
 * WAL checkpoints off the event loop, while a big job's tasks are inserted chunk by chunk.
 *
 * Why: SQLite checkpoints a WAL database from inside a commit, on the committing thread, every 1,000 pages; each
 * checkpoint copies the pages into the database file and fsyncs both files, even at `synchronous = NORMAL`. A job
 * of 1,000,000 tasks writes ~160 MB, so ~40 checkpoints and ~80 fsyncs ran on the event loop, about 40% of the
 * time to accept it (docs/ARCHITECTURE.md, "Scale and stalls"). While such an insert runs, the store turns the
 * automatic checkpoints off and asks this worker thread, on a second connection to the same file, for a PASSIVE
 * checkpoint after every chunk: the copying and the fsyncs run beside the event loop. Durability is unchanged:
 * commits are what they were, and a checkpoint only moves committed pages from the WAL into the database file,
 * under SQLite's own locks (a PASSIVE checkpoint never blocks the writer).
 *
 * The worker opens the file with the store's own driver: one process must not touch a file through two SQLite
 * libraries (driver.ts). Its code is evaluated from a string, so it needs no file of its own (the CLI is bundled).
 *
 * State machine: running → (close) closed; or running → (the worker failed or exited) failed. A failed
 * checkpointer answers every request at once; the store then turns the automatic checkpoints back on.
 */
import { Worker } from 'node:worker_threads';
import type { SqliteDriverName } from './driver.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let db, checkpoint;
if (workerData.driver === 'node') {
  db = new (require('node:sqlite').DatabaseSync)(workerData.file);
  const stmt = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
  checkpoint = () => stmt.get();
} else {
  db = new (require(workerData.module))(workerData.file);
  checkpoint = () => db.pragma('wal_checkpoint(PASSIVE)');
}
// FULL, as the store's own connection: a checkpoint fsyncs the WAL before it copies frames into the database file.
db.exec('PRAGMA synchronous = FULL');
// Requests that arrive while a checkpoint runs are answered by the next one (which starts after they were made).
let waiting = [];
let scheduled = false;
function run() {
  scheduled = false;
  const answered = waiting;
  waiting = [];
  try { checkpoint(); } catch { /* SQLITE_BUSY and the like: the next request tries again */ }
  for (const id of answered) parentPort.postMessage(id);
}
parentPort.on('message', (m) => {
  if (m === 'close') { db.close(); parentPort.close(); return; }
  waiting.push(m);
  if (!scheduled) { scheduled = true; setImmediate(run); }
});
`;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly pending = new Map<number, () => void>();
  private nextId = 1;
  private state: 'running' | 'closed' | 'failed' = 'running';
  private readonly exited: Promise<void>;

  /** `module`: the resolved path of better-sqlite3 (the one the store loaded); unused for the `node` driver. */
  constructor(file: string, driver: SqliteDriverName, module: string | null) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, driver, module } });
    // Not a reason to keep the process alive: close() ends it, and a process that exits loses nothing (commits
    // are durable without any checkpoint).
    this.worker.unref();
    this.worker.on('message', (id: number) => {
      this.pending.get(id)?.();
      this.pending.delete(id);
    });
    this.worker.on('error', () => this.fail());
    this.exited = new Promise((resolve) => this.worker.once('exit', () => {
      this.fail();
      resolve();
    }));
  }

  /** Whether it can still checkpoint (false once closed or failed). */
  get usable(): boolean {
    return this.state === 'running';
  }

  /** A PASSIVE checkpoint, started after this call; resolves when it is done (at once if the worker is gone). */
  checkpoint(): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage(id);
    });
  }

  /** Closes the worker's connection and waits for the thread to end. */
  async close(): Promise<void> {
    // Held by the event loop until it ends (unref'd so far), or awaiting this would not keep the process alive.
    this.worker.ref();
    if (this.state === 'running') this.worker.postMessage('close');
    this.state = 'closed';
    await this.exited;
  }

  private fail(): void {
    if (this.state === 'running') this.state = 'failed';
    for (const resolve of this.pending.values()) resolve();
    this.pending.clear();
  }
}
