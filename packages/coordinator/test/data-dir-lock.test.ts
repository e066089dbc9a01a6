// One coordinator per data dir, with real processes: the lock is held by a child process and released by the
// operating system when that process dies, whatever its pid number then means (a zombie, or a reused pid).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DsgError } from '@dsg/core';
import { startCoordinator } from '@dsg/coordinator';
import { lockDataDir } from '../src/files/data-dir-lock.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/hold-lock.js', import.meta.url));

/** Start a process that holds the lock on `dir` (recording `recordPid` instead of its own, if given). */
async function holdLock(dir: string, recordPid?: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [FIXTURE, dir, ...(recordPid ? [String(recordPid)] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const said = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`lock holder exited (${code}) before locking`)));
  });
  assert.equal(said, 'locked');
  return child;
}

/** The process state letter from /proc (R, S, Z, …), or null once it is gone. */
function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const conflictNaming = (pid: number) => (e: unknown) => e instanceof DsgError && e.code === 'conflict' && e.message.includes(`pid ${pid}`) && e.message.includes('--data-dir');

describe('one coordinator per data dir', () => {
  it('refuses a second coordinator while the first lives, naming its pid; starts at once after it is SIGKILLed, even while its pid is a zombie', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsg-lock-'));
    let holder: ChildProcess | null = null;
    try {
      holder = await holdLock(dir);
      const pid = holder.pid!;
      assert.throws(() => lockDataDir(dir), conflictNaming(pid));
      await assert.rejects(startCoordinator({ dataDir: dir, port: 0, host: '127.0.0.1', logLevel: 'silent' }), conflictNaming(pid));

      // SIGKILL, and look again before this process's event loop can reap the child: its pid now names a zombie,
      // which `kill(pid, 0)` still finds. The lock must be free all the same.
      process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 5000;
      while (procState(pid) !== 'Z' && procState(pid) !== null && Date.now() < deadline) sleepSync(5);
      assert.equal(procState(pid), 'Z', 'the killed holder is a zombie, not yet reaped');
      // The leader thread shows Z as soon as it has exited; the kernel drops the process's file locks when its last
      // thread is gone, a moment later. So: free within a second of the kill, without the pid ever being reaped.
      const t0 = performance.now();
      let lock: { release(): void } | null = null;
      while (!lock) {
        try {
          lock = lockDataDir(dir);
        } catch (e) {
          if (performance.now() - t0 > 1000) throw e;
          sleepSync(5);
        }
      }
      const ms = performance.now() - t0;
      assert.equal(procState(pid), 'Z', 'the holder is still an unreaped zombie when the lock is taken');
      console.log(`lock taken ${ms.toFixed(1)} ms after the holder died (its pid ${pid} still a zombie)`);
      // While we hold it, a new process is refused and sees our pid.
      assert.throws(() => lockDataDir(dir), (e: unknown) => e instanceof DsgError && e.code === 'conflict');
      lock.release();
      lockDataDir(dir).release();
    } finally {
      holder?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a lock whose recorded pid belongs to a live, unrelated process is free once its holder is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsg-lock-'));
    // A process that has nothing to do with DSG but owns the pid the lock file names (pid reuse, as in containers).
    const bystander = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    let holder: ChildProcess | null = null;
    try {
      holder = await holdLock(dir, bystander.pid!);
      assert.throws(() => lockDataDir(dir), conflictNaming(bystander.pid!));
      holder.kill('SIGKILL');
      await new Promise((r) => holder!.once('exit', r));
      const lock = lockDataDir(dir);
      lock.release();
      // And a coordinator really starts there.
      const c = await startCoordinator({ dataDir: dir, port: 0, host: '127.0.0.1', logLevel: 'silent' });
      await c.close();
    } finally {
      holder?.kill('SIGKILL');
      bystander.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replaces a plain-text lock left by an older version when its pid is gone; refuses while it names a live process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsg-lock-'));
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
      writeFileSync(join(dir, 'coordinator.lock'), `${gone.stdout}\n`);
      lockDataDir(dir).release();
      rmSync(join(dir, 'coordinator.lock'));
      writeFileSync(join(dir, 'coordinator.lock'), `${live.pid}\n`);
      assert.throws(() => lockDataDir(dir), (e: unknown) => e instanceof DsgError && e.code === 'conflict' && e.message.includes(`pid ${live.pid}`) && e.message.includes('delete'));
    } finally {
      live.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
