/**
 * One coordinator per data dir. Two coordinators on one SQLite file would each think they own the grid (the
 * second would even mark the first one's nodes offline at start-up), so start-up locks `<dataDir>/coordinator.lock`
 * and refuses while another process holds it.
 *
 * The lock is one the operating system releases when its holder dies, however it dies (`acquireProcessLock` from
 * the store package: SQLite's fcntl / LockFileEx locking), so a coordinator killed with SIGKILL never blocks the
 * next start, and a live one is never mistaken for dead. The pid in the file is for the message only: a pid check
 * would call a zombie alive, or an unrelated process that reused the number (containers).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DsgError } from '@dsg/core';
import { acquireProcessLock, type SqliteDriverChoice } from '@dsg/store';

/** `driver`: the SQLite driver the store uses (so the process loads only one). Default `auto`. */
export function lockDataDir(dataDir: string, driver: SqliteDriverChoice = 'auto'): { release(): void } {
  const file = join(dataDir, 'coordinator.lock');
  const host = hostname();
  const r = acquireProcessLock(file, { pid: process.pid, host, since: Date.now() }, driver);
  if (r.acquired) return r;
  const who = r.owner ? `pid ${r.owner.pid}${r.owner.host && r.owner.host !== host ? ` on ${r.owner.host}` : ''}` : 'another process';
  if (r.legacy)
    throw new DsgError('conflict', `another coordinator (${who}, an older DSG version) may be using ${dataDir}: stop it first; if no coordinator runs there, delete ${file}`);
  throw new DsgError('conflict', `another coordinator (${who}) is using ${dataDir}: stop it first, or give this one its own --data-dir`);
}
