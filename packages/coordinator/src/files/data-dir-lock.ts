/**
 * One coordinator per data dir. Two coordinators on one SQLite file would each think they own the grid (the
 * second would even mark the first one's nodes offline at start-up), so start-up takes `<dataDir>/coordinator.lock`
 * (created exclusively, holding the pid) and refuses while a live process holds it. A lock left by a process that
 * no longer exists (a crash, a SIGKILL) is taken over.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DsgError } from '@dsg/core';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lockDataDir(dataDir: string): { release(): void } {
  const file = join(dataDir, 'coordinator.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return { release: () => rmSync(file, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
        throw new DsgError('conflict', `another coordinator (pid ${pid}) is using ${dataDir}: stop it first, or give this one its own --data-dir`);
      rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new DsgError('conflict', `could not lock ${dataDir}`);
}
