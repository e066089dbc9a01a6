/**
 * An exclusive lock on a file that the operating system releases when the process holding it dies, however it
 * dies (SIGKILL, a crash, the machine losing power): SQLite's own file locking — POSIX advisory (fcntl) locks on
 * Unix, LockFileEx on Windows — on a small database file. No pid is ever used to decide whether the lock is
 * free: a pid can belong to a zombie, or to an unrelated process that reused the number (common in containers).
 *
 *   free ──acquire──▶ held: a write transaction stays open (SQLite's RESERVED lock) for as long as the holder lives
 *   held ──release() or death of the holder (the kernel drops its locks)──▶ free
 *
 * While the lock is held, other processes can still read the file (RESERVED allows readers): it records who holds
 * it (pid, host, since), for messages only. The file is never deleted: unlinking a lock file while someone else
 * opens it would let two processes each lock a different file.
 *
 * Acquiring: write our owner row and commit, then open the write transaction that is the lock. Between the two,
 * another process may win; then our second step fails and we refuse — whoever holds the write transaction at the
 * end owns the lock, so two processes can never both believe they hold it.
 */
import { readFileSync, rmSync } from 'node:fs';
import { openSqliteDatabase, type SqlDatabase, type SqliteDriverChoice } from './driver.js';

export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** Epoch ms when the holder took the lock. */
  readonly since: number;
}

export type LockAttempt =
  | { readonly acquired: true; release(): void }
  /** `owner` is who wrote the file last (the holder, for messages), or null if it could not be read. */
  | { readonly acquired: false; readonly owner: LockOwner | null; readonly legacy?: boolean };

const isBusy = (e: unknown): boolean => {
  const code = (e as { code?: string }).code ?? '';
  return code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED';
};

/**
 * Try once, without waiting: either the lock is ours, or who holds it. `driver` is the SQLite driver to use
 * (driver.ts; default `auto`): give the store's, so a process loads only one.
 */
export function acquireProcessLock(file: string, owner: LockOwner, driver: SqliteDriverChoice = 'auto'): LockAttempt {
  for (let attempt = 0; attempt < 2; attempt++) {
    const db = openSqliteDatabase(file, { driver, busyTimeoutMs: 0 });
    try {
      return tryAcquire(db, owner);
    } catch (e) {
      db.close();
      if ((e as { code?: string }).code !== 'SQLITE_NOTADB' || attempt > 0) throw e;
      // A plain-text lock from an older DSG version (it held only a pid). Those were removed on a clean stop, so
      // this one was left by a crash, or belongs to an old coordinator still running. Only here can a pid be all
      // we have: refuse while it names a live process; otherwise replace the file with a real lock.
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidExists(pid))
        return { acquired: false, owner: { pid, host: '', since: 0 }, legacy: true };
      rmSync(file, { force: true });
    }
  }
  throw new Error(`could not lock ${file}`);
}

/**
 * Locks held by this process. A Database that nothing references is closed when it is garbage-collected, which
 * would drop the lock while its holder still runs; keeping each here until `release` makes the lock's lifetime the
 * holder's, whatever the caller does with the returned object.
 */
const held = new Set<SqlDatabase>();

function tryAcquire(db: SqlDatabase, owner: LockOwner): LockAttempt {
  const refuse = (): LockAttempt => {
    let row: LockOwner | null = null;
    try {
      row = (db.prepare('SELECT pid, host, since FROM owner WHERE id = 1').get() as LockOwner | undefined) ?? null;
    } catch {
      /* the holder is still creating the table */
    }
    db.close();
    return { acquired: false, owner: row };
  };
  const begin = (): boolean => {
    try {
      db.exec('BEGIN IMMEDIATE');
      return true;
    } catch (e) {
      if (isBusy(e)) return false;
      throw e;
    }
  };
  try {
    db.exec('CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL, since INTEGER NOT NULL)');
  } catch (e) {
    if (isBusy(e)) return refuse();
    throw e;
  }
  if (!begin()) return refuse();
  db.prepare('INSERT OR REPLACE INTO owner (id, pid, host, since) VALUES (1, ?, ?, ?)').run(owner.pid, owner.host, owner.since);
  // A process reading the owner row right now holds a shared lock for a moment; let the commit wait for it.
  db.pragma('busy_timeout = 2000');
  db.exec('COMMIT');
  db.pragma('busy_timeout = 0');
  if (!begin()) return refuse();
  let released = false;
  held.add(db);
  return {
    acquired: true,
    release: () => {
      if (released) return;
      released = true;
      held.delete(db);
      db.close(); // rolls back the open (empty) transaction and drops the lock
    },
  };
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
