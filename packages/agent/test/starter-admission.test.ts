// Admission inside the native process starter (dsg-spawn.c, NativeExecutor with a capacity): tasks wait in the
// helper until the resources they declare fit, and start there the moment a running task's leader is reaped.
// Real processes; without the helper the cases skip loudly, except in CI (CI=true installs gcc).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NativeExecutor, NativeStarter, type ExecResources, type ExecResult } from '@dsg/agent';

const found = NativeStarter.find();
if (!found.starter) {
  if (process.env['CI'] === 'true') throw new Error(`CI: ${found.why}`);
  process.stderr.write(`SKIP admission in the native starter: ${found.why}\n`);
}

const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
/** `n` cores (and GPUs) and 1 MiB: a capacity made with it holds 1 GiB, so memory never decides here. */
const cores = (n: number, gpus = 0): ExecResources => ({ cpuMillis: n * 1000, memoryBytes: 1 << 20, gpus });
const capacityOf = (n: number, gpus = 0): ExecResources => ({ ...cores(n, gpus), memoryBytes: 1 << 30 });

describe('admission inside the native starter (dsg-spawn)', found.starter ? {} : { skip: found.why }, () => {
  let dir: string;
  const starters: NativeStarter[] = [];
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'dsg-admit-'))));
  after(async () => {
    for (const s of starters) s.close();
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  /** A NativeExecutor admitting against `capacity` in a helper of its own; `run` starts one task and records it. */
  function executor(capacity: ExecResources) {
    const starter = NativeStarter.find().starter!;
    starters.push(starter);
    const ex = new NativeExecutor({ killGraceMs: 500, starter, capacity });
    assert.equal(ex.admits, true, 'a capacity and the native starter: the helper admits');
    const run = (script: string, resources: ExecResources, timeoutMs = 10_000) => {
      const rec = { startedAt: null as number | null, result: null as ExecResult | null };
      const h = ex.start({ argv: ['/bin/sh', '-c', script], cwd: dir, env, timeoutMs, resources }, {
        onStdout: () => undefined, onStderr: () => undefined, onStart: (at) => (rec.startedAt = at),
      });
      const done = h.done.then((r) => (rec.result = r));
      return { h, rec, done };
    };
    return { ex, run };
  }

  it('runs tasks only while their cores fit, in arrival order, each starting the moment another ends', async () => {
    const { ex, run } = executor(capacityOf(2));
    const a = run('sleep 0.3', cores(1));
    const b = run('sleep 0.6', cores(1));
    const c = run('sleep 0.1', cores(1));
    const d = run('sleep 0.1', cores(2));
    for (let i = 0; i < 200 && (a.rec.startedAt === null || b.rec.startedAt === null); i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(ex.waiting, 2, 'c and d wait in the helper');
    assert.equal(c.rec.startedAt, null);
    await Promise.all([a.done, b.done, c.done, d.done]);
    for (const t of [a, b, c, d]) assert.equal(t.rec.result!.exitCode, 0);
    const at = (t: typeof a) => t.rec.result!.startedAt;
    const end = (t: typeof a) => t.rec.result!.finishedAt;
    assert.ok(at(c) >= end(a) - 20 && at(c) < end(b), `c takes a's core when a ends (a ended ${end(a)}, c started ${at(c)})`);
    assert.ok(at(c) - end(a) < 100, `and at once: ${at(c) - end(a)} ms after`);
    assert.ok(at(d) >= end(b) - 20 && at(d) >= end(c) - 20, 'd (2 cores) waits for both; nothing jumps the queue');
    assert.equal(c.rec.startedAt, at(c), 'onStart gives the time the helper started it');
    assert.equal(ex.waiting, 0);
  });

  it('while tasks wait for room, the helper sends their starts and ends together, not a wake-up of the agent per task', async () => {
    const starter = NativeStarter.find().starter!;
    starters.push(starter);
    const ex = new NativeExecutor({ killGraceMs: 500, starter, capacity: capacityOf(1) });
    const n = 60;
    const before = starter.reads;
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: n }, () => ex.start(
      { argv: ['true'], cwd: dir, env, timeoutMs: 10_000, resources: cores(1) },
      { onStdout: () => undefined, onStderr: () => undefined },
    ).done));
    assert.ok(results.every((r) => r.exitCode === 0 && r.spawnError === null), 'every task ran');
    const reads = starter.reads - before;
    const ms = performance.now() - t0;
    // Three frames per task (started, exited, closed): sent as they came, that was one or two reads per task (98 for
    // these 60 here). Held, a write goes at most every HOLD_MS (3 ms) while tasks wait: on a machine so loaded that
    // the tasks take longer than that each, the bound is the time taken, not the count of tasks.
    const bound = Math.max(n / 2, Math.ceil(ms / 3) + 5);
    assert.ok(reads <= bound, `${reads} reads of the helper's output for ${n} tasks (${3 * n} frames) in ${ms.toFixed(0)} ms: at most ${bound} expected`);
  });

  it('a task cancelled while it waits ends at once as cancelled, never started', async () => {
    const { ex, run } = executor(capacityOf(1));
    const first = run('sleep 0.3', cores(1));
    const marker = join(dir, 'never-started');
    const waiting = run(`touch ${marker}`, cores(1));
    for (let i = 0; i < 200 && first.rec.startedAt === null; i++) await new Promise((r) => setTimeout(r, 5));
    waiting.h.kill('cancel');
    const r = await waiting.done;
    assert.equal(r.cancelled, true);
    assert.equal(r.spawnError, null, 'not a failure to start');
    assert.equal(waiting.rec.startedAt, null, 'onStart never fired');
    assert.equal(first.rec.result, null, 'it ended before the task ahead of it');
    await first.done;
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(existsSync(marker), false, 'the helper never started it');
    assert.equal(ex.waiting, 0);
  });

  it('a kill that crosses the start on the way (the helper started it before it heard) still ends it, SIGKILL after the grace', async () => {
    const { run } = executor(capacityOf(1));
    const first = run('sleep 0.2', cores(1));
    const stubborn = run("trap '' TERM; sleep 30", cores(1));
    for (let i = 0; i < 200 && first.rec.startedAt === null; i++) await new Promise((r) => setTimeout(r, 5));
    // Keep this event loop busy past the first task's end: the helper starts the second meanwhile, and its
    // 'started' frame waits unread when the kill is given.
    const until = Date.now() + 600;
    while (Date.now() < until) { /* busy */ }
    assert.equal(stubborn.rec.startedAt, null, 'its start is not known here yet');
    const t0 = Date.now();
    stubborn.h.kill('cancel');
    const r = await stubborn.done;
    assert.equal(r.cancelled, true);
    assert.ok(Date.now() - t0 < 5000, `it ended ${Date.now() - t0} ms after the kill (grace 500 ms), not after its 30 s`);
    assert.notEqual(stubborn.rec.startedAt, null, 'it had started');
    await first.done;
  });

  it("a waiting task's time limit counts from its own start, not from when it was queued", async () => {
    const { run } = executor(capacityOf(1));
    const first = run('sleep 0.4', cores(1));
    const second = run('sleep 0.2', cores(1), 300);
    await Promise.all([first.done, second.done]);
    assert.equal(second.rec.result!.timedOut, false, 'waited 0.4 s and ran 0.2 s against a 0.3 s limit');
    assert.equal(second.rec.result!.exitCode, 0);
    const slow = run('sleep 5', cores(1), 200);
    const r = await slow.done;
    assert.equal(r.timedOut, true, 'the limit still holds once it runs');
  });

  it('a waiting task that cannot start fails alone and frees its room for the next', async () => {
    const { ex } = executor(capacityOf(1));
    const noop = { onStdout: () => undefined, onStderr: () => undefined };
    const first = ex.start({ argv: ['sleep', '0.2'], cwd: dir, env, timeoutMs: 10_000, resources: cores(1) }, noop);
    const missing = ex.start({ argv: ['dsg-no-such-program-xyz'], cwd: dir, env, timeoutMs: 10_000, resources: cores(1) }, noop);
    const next = ex.start({ argv: ['true'], cwd: dir, env, timeoutMs: 10_000, resources: cores(1) }, noop);
    const [, m, n] = await Promise.all([first.done, missing.done, next.done]);
    assert.match(m.spawnError ?? '', /no such program/);
    assert.equal(n.exitCode, 0);
  });

  it('a task bigger than the whole capacity starts when nothing else runs; shares of a GPU run side by side', async () => {
    const { run } = executor(capacityOf(1, 1));
    const big = run('sleep 0.1', cores(2));
    assert.equal((await big.done).exitCode, 0);
    const g1 = run('sleep 0.3', cores(0, 0.5));
    const g2 = run('sleep 0.3', cores(0, 0.5));
    const g3 = run('true', cores(0, 0.5));
    await Promise.all([g1.done, g2.done, g3.done]);
    assert.ok(g2.rec.result!.startedAt < g1.rec.result!.finishedAt, 'two halves of one GPU at once');
    assert.ok(g3.rec.result!.startedAt >= g1.rec.result!.finishedAt - 20, 'a third half waits');
  });
});
