// Starts on threads of their own inside the native process starter (dsg-spawn.c, "Starting a child"): a child
// still on its way to exec (CLONE_VFORK suspends the thread that started it) holds up neither the other starts nor
// the reaping of tasks that end. A child is held before its exec here by giving it a FIFO as a cgroup.procs file:
// it blocks opening it until the test opens the other end (and reads the pid the child writes). Real processes;
// without the helper the cases skip loudly, except in CI (CI=true installs gcc).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NativeExecutor, NativeStarter, type ProcessStarter, type TaskProcess } from '@dsg/agent';
import { alive } from './processes.js';

const found = NativeStarter.find();
if (!found.starter) {
  if (process.env['CI'] === 'true') throw new Error(`CI: ${found.why}`);
  process.stderr.write(`SKIP starts on threads in the native starter: ${found.why}\n`);
}

const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
interface Seen { spawned: boolean; exitCode: number | null | undefined; closed: Promise<number | null>; out: string }
const watch = (t: TaskProcess): Seen => {
  const seen: Seen = { spawned: false, exitCode: undefined, out: '', closed: null as unknown as Promise<number | null> };
  seen.closed = new Promise((resolve, reject) => {
    t.on('spawn', () => (seen.spawned = true));
    t.on('error', reject);
    t.on('close', (code) => {
      seen.exitCode = code;
      resolve(code);
    });
  });
  t.onOutput((s) => (seen.out += s), () => undefined);
  return seen;
};

/** Opens the FIFO's reading end (the held child's open then returns) and reads the pid the child wrote. */
const release = (fifo: string): number => {
  const fd = openSync(fifo, 'r');
  try {
    const buf = Buffer.alloc(64);
    let text = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      text += buf.subarray(0, n).toString();
      if (text.includes('\n')) break;
    }
    return Number(text.trim());
  } finally {
    closeSync(fd);
  }
};

describe('starts on threads of their own in the native starter (dsg-spawn)', found.starter ? {} : { skip: found.why }, () => {
  let dir: string;
  const starters: NativeStarter[] = [];
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'dsg-threads-'))));
  after(async () => {
    for (const s of starters) s.close();
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });
  const starter = (): NativeStarter => {
    const s = NativeStarter.find().starter!;
    starters.push(s);
    return s;
  };
  const fifo = (name: string): string => {
    const p = join(dir, name);
    assert.equal(spawnSync('mkfifo', [p]).status, 0, 'mkfifo');
    return p;
  };

  it('children held before their exec (an exec that hangs) hold up neither other starts nor the end of other tasks', async () => {
    const s = starter();
    const holds = [fifo('held-1'), fifo('held-2'), fifo('held-3')];
    // Started just before the held ones: their children are cloned while its pipes are open here, so they hold copies
    // until they close them (first thing in the child), or its end would wait for their exec.
    const earlier = watch(s.start('/bin/sh', ['-c', 'sleep 0.2; echo earlier'], { cwd: dir, env }));
    const slow = holds.map((h, i) => watch(s.start('/bin/sh', ['-c', `echo late ${i}`], { cwd: dir, env, cgroupProcs: [h] })));
    await new Promise((r) => setTimeout(r, 150)); // their spawners now wait on the held children
    const within = <T>(p: Promise<T>): Promise<T | 'still waiting'> => Promise.race([p, new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), 5000))]);
    const pids: number[] = [];
    try {
      const t0 = Date.now();
      const quick = watch(s.start('/bin/sh', ['-c', 'echo quick; exit 3'], { cwd: dir, env }));
      assert.equal(await within(quick.closed), 3, 'a task started after them started, ran and was reaped while they were held');
      assert.ok(Date.now() - t0 < 5000, `and promptly (${Date.now() - t0} ms)`);
      assert.equal(quick.out, 'quick\n');
      assert.equal(await within(earlier.closed), 0, 'the task started before them ended too');
      assert.equal(earlier.out, 'earlier\n');
      assert.deepEqual(slow.map((x) => x.spawned), [false, false, false], 'while those are still held before their exec');
    } finally {
      for (const h of holds) pids.push(release(h)); // never leave the helper stuck behind them
    }
    assert.ok(pids.every((p) => p > 0), 'each held child wrote its pid');
    assert.deepEqual(await Promise.all(slow.map((x) => x.closed)), [0, 0, 0]);
    assert.deepEqual(slow.map((x) => x.out), ['late 0\n', 'late 1\n', 'late 2\n']);
  });

  it('a cancel reaches a start whose exec hangs: its child is killed and it ends as not started (ECANCELED)', async () => {
    const s = starter();
    s.admission!.setCapacity({ cpuMillis: 2000, memoryBytes: 1 << 30, gpus: 0 });
    // The children the helpers of this test process hold before their exec (named like the helper until they exec).
    const heldChildren = (): number[] => {
      const helpers = spawnSync('pgrep', ['-P', String(process.pid), '-x', 'dsg-spawn'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
      return helpers.flatMap((h) => spawnSync('pgrep', ['-P', h, '-x', 'dsg-spawn'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number));
    };
    for (const [i, resources] of [[0, undefined], [1, { cpuMillis: 1000, memoryBytes: 1, gpus: 0 }]] as const) {
      const held = fifo(`cancelled-${i}`);
      const before = new Set(heldChildren());
      const t = s.start('/bin/sleep', ['30'], { cwd: dir, env, cgroupProcs: [held], ...(resources ? { resources } : {}) });
      const ended = new Promise<string>((resolve) => {
        t.on('error', (e) => resolve(String(e.code)));
        t.on('spawn', () => resolve('started'));
      });
      let child: number | undefined;
      for (let k = 0; k < 100 && child === undefined; k++) {
        child = heldChildren().find((p) => !before.has(p));
        if (child === undefined) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(child !== undefined, 'the child waits before its exec');
      assert.equal(s.admission!.cancel(t), true, 'not started: the helper takes the cancel');
      const how = await Promise.race([ended, new Promise<string>((r) => setTimeout(() => r('still waiting'), 5000))]);
      if (how === 'still waiting') release(held);
      assert.equal(how, 'ECANCELED', `${resources ? 'admitted' : 'direct'} start: ends as cancelled, never started`);
      for (let k = 0; k < 100 && alive(child!); k++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(alive(child!), false, 'its child was killed');
    }
    // The helper goes on: the next task runs.
    s.admission!.setCapacity({ cpuMillis: 2000, memoryBytes: 1 << 30, gpus: 0 });
    assert.equal(await watch(s.start('/bin/sh', ['-c', 'exit 5'], { cwd: dir, env })).closed, 5);
  });

  it('an admitted task whose exec hangs still times out: the starter tells its slow start, the clock counts from it', async () => {
    const s = starter();
    const held = fifo('timeout');
    // Every start of this executor's tasks is held before its exec, as a program on a dead NFS mount would be.
    const holding: ProcessStarter = { name: 'native', joinsCgroups: true, admission: s.admission!, start: (file, args, o) => s.start(file, args, { ...o, cgroupProcs: [held] }) };
    const ex = new NativeExecutor({ starter: holding, capacity: { cpuMillis: 2000, memoryBytes: 1 << 30, gpus: 0 }, killGraceMs: 200 });
    const t0 = Date.now();
    const h = ex.start(
      { argv: ['/bin/sleep', '30'], cwd: dir, env, timeoutMs: 300, resources: { cpuMillis: 1000, memoryBytes: 1, gpus: 0 } },
      { onStdout: () => undefined, onStderr: () => undefined, onStart: () => assert.fail('it never started') },
    );
    const r = await Promise.race([h.done, new Promise<'still waiting'>((res) => setTimeout(() => res('still waiting'), 5000))]);
    if (r === 'still waiting') {
      release(held); // never leave the helper stuck
      assert.fail('the task should have ended (timed out) although its exec never returned');
    }
    assert.equal(r.timedOut, true, 'it ended as timed out');
    assert.equal(r.spawnError, null, 'not as a failure to start');
    const took = Date.now() - t0;
    assert.ok(took >= 300 && took < 3000, `after its time limit, counted from when it left the queue (${took} ms)`);
    // The starter alone: 'starting' comes once, with when the start began.
    const held2 = fifo('slow');
    const t1 = Date.now();
    const t = s.start('/bin/true', [], { cwd: dir, env, cgroupProcs: [held2], resources: { cpuMillis: 1000, memoryBytes: 1, gpus: 0 } });
    const told: number[] = [];
    t.on('starting', (at) => told.push(at));
    const closed = new Promise<number | null>((res, rej) => { t.on('close', res); t.on('error', rej); });
    for (let i = 0; i < 150 && told.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    release(held2);
    assert.equal(await closed, 0, 'released, it ran');
    assert.equal(told.length, 1, "'starting' came once, while it was held");
    const since = told[0]!;
    assert.ok(since >= t1 - 5 && since <= t1 + 1000, `with when its start began (${since - t1} ms after the call)`);
  });

  it('hundreds of short tasks, admitted two at a time and started directly, all end and are reaped', async () => {
    const s = starter();
    s.admission!.setCapacity({ cpuMillis: 2000, memoryBytes: 1 << 30, gpus: 0 });
    const all: Seen[] = [];
    const expected: number[] = [];
    for (let i = 0; i < 300; i++) {
      all.push(watch(s.start('/bin/true', [], { cwd: dir, env, resources: { cpuMillis: 1000, memoryBytes: 1, gpus: 0 } })));
      expected.push(0);
      if (i % 3 === 0) {
        all.push(watch(s.start('/bin/sh', ['-c', `exit ${i % 7}`], { cwd: dir, env })));
        expected.push(i % 7);
      }
    }
    assert.deepEqual(await Promise.all(all.map((x) => x.closed)), expected, 'every task ended with its own exit code');
    assert.ok(all.every((x) => x.spawned), 'every task was reported started');
  });

  it('when its driver goes away, running tasks are killed at once, and a held start\'s task once its exec is done', async () => {
    const s = starter();
    const pidFile = join(dir, 'running.pid');
    const running = watch(s.start('/bin/sh', ['-c', `echo $$ > ${pidFile}; exec sleep 30`], { cwd: dir, env }));
    void running.closed.catch(() => undefined);
    const held = fifo('shutdown');
    const task = watch(s.start('/bin/sleep', ['30'], { cwd: dir, env, cgroupProcs: [held] }));
    void task.closed.catch(() => undefined);
    for (let i = 0; i < 100 && !running.spawned; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 150)); // the running one is past its exec; the held one still waits
    const runningPid = Number(readFileSync(pidFile, 'utf8'));
    s.close(); // stdin closes: nobody is left to report the tasks
    let pid = 0;
    try {
      for (let i = 0; i < 100 && alive(runningPid); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(alive(runningPid), false, 'the running task was killed while a start was still held');
    } finally {
      pid = release(held); // the held child execs `sleep 30` now
    }
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(pid), false, `the task whose start was held (${pid}) was killed once it started`);
  });
});
