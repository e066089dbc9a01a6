import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DsgError } from '@dsg/core';
import { lockDataDir } from '../src/files/data-dir-lock.js';

describe('one coordinator per data dir', () => {
  it('refuses while a live process holds the lock, naming it; takes over a stale lock', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsg-lock-'));
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, 'coordinator.lock'), `${holder.pid}\n`);
      assert.throws(() => lockDataDir(dir), (e: unknown) => e instanceof DsgError && e.code === 'conflict' && e.message.includes(`pid ${holder.pid}`));
      // A process that has exited leaves a stale lock, which is taken over.
      const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
      writeFileSync(join(dir, 'coordinator.lock'), `${gone.stdout}\n`);
      const lock = lockDataDir(dir);
      assert.ok(existsSync(join(dir, 'coordinator.lock')));
      lock.release();
      assert.equal(existsSync(join(dir, 'coordinator.lock')), false);
    } finally {
      holder.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
