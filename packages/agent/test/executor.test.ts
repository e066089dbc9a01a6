import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LauncherExecutor, NativeExecutor, NativeStarter, type ExecResult, type Executor } from '@dsg/agent';

import { spawn, spawnSync } from 'node:child_process';
import { alive } from './processes.js';

// The native process starter (dsg-spawn, built by `npm run build` where a C compiler exists): every case below runs
// through it and through Node's spawn. Without it the cases skip loudly, except in CI (CI=true installs gcc).
const native = NativeStarter.find();
if (!native.starter) {
  if (process.env['CI'] === 'true') throw new Error(`CI: ${native.why}`);
  process.stderr.write(`SKIP native starter cases: ${native.why}\n`);
}
const nativeOnly = native.starter ? {} : { skip: native.why };
const executors: Array<[string, () => Executor, object]> = [
  ['NativeExecutor (Node spawn)', () => new NativeExecutor({ killGraceMs: 500 }), {}],
  ['NativeExecutor (native starter dsg-spawn)', () => new NativeExecutor({ killGraceMs: 500, ...(native.starter ? { starter: native.starter } : {}) }), nativeOnly],
  ['LauncherExecutor (native starter when built)', () => new LauncherExecutor({ killGraceMs: 500 }), {}],
  ['LauncherExecutor (Node spawn)', () => new LauncherExecutor({ killGraceMs: 500, starter: 'node' }), {}],
];

for (const [name, make, opts] of executors) describe(`${name} (real processes)`, opts, () => {
  let dir: string;
  const ex = make();
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'dsg-exec-'))));
  after(async () => {
    if (ex instanceof LauncherExecutor) ex.close();
    native.starter?.close();
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', FOO: 'bar' };
  const run = (argv: string[], timeoutMs = 10_000) => {
    let out = '';
    let err = '';
    const h = ex.start({ argv, cwd: dir, env, timeoutMs }, { onStdout: (d) => (out += d), onStderr: (d) => (err += d) });
    return { h, done: h.done.then((r) => ({ r, out, err })) };
  };

  it('reports the exit code and captures stdout, stderr and env', async () => {
    const { r, out, err } = await run(['/bin/sh', '-c', 'echo "foo=$FOO"; echo oops >&2; exit 7']).done;
    assert.equal(r.exitCode, 7);
    assert.equal(r.signal, null);
    assert.equal(out, 'foo=bar\n');
    assert.equal(err, 'oops\n');
  });

  it("starts the task with no signal ignored or blocked (the starter's own dispositions are not inherited)", async () => {
    const { r, out } = await run(['/bin/cat', '/proc/self/status']).done;
    assert.equal(r.exitCode, 0);
    assert.match(out, /^SigIgn:\s+0+$/m, 'no signal ignored');
    assert.match(out, /^SigBlk:\s+0+$/m, 'no signal blocked');
  });

  it('reports a missing program as a spawn error', async () => {
    const { r } = await run(['definitely-not-a-program-xyz']).done;
    assert.match(r.spawnError ?? '', /no such program/);
  });

  it('reports the signal that killed the task', async () => {
    const { r } = await run(['/bin/sh', '-c', 'kill -TERM $$']).done;
    assert.equal(r.signal, 'SIGTERM');
    assert.equal(r.exitCode, null);
  });

  async function treeKilled(trigger: 'timeout' | 'cancel'): Promise<ExecResult> {
    const pids = join(dir, `pids-${trigger}`);
    const { h, done } = run(['/bin/sh', '-c', `sleep 100 & echo $! >> ${pids}; (sleep 100 & echo $! >> ${pids}; wait) & echo $$ >> ${pids}; wait`], trigger === 'timeout' ? 500 : 60_000);
    // Wait until all three pids are recorded.
    for (let i = 0; i < 100; i++) {
      const t = await readFile(pids, 'utf8').catch(() => '');
      if (t.trim().split('\n').length >= 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    if (trigger === 'cancel') h.kill('cancel');
    const { r } = await done;
    const list = (await readFile(pids, 'utf8')).trim().split('\n').map(Number);
    assert.equal(list.length, 3);
    await new Promise((res) => setTimeout(res, 100));
    for (const pid of list) assert.equal(alive(pid), false, `process ${pid} survived`);
    return r;
  }

  it('a timeout kills the whole process tree', async () => {
    const r = await treeKilled('timeout');
    assert.equal(r.timedOut, true);
  });

  it('a cancel kills the whole process tree', async () => {
    const r = await treeKilled('cancel');
    assert.equal(r.cancelled, true);
  });

  it('what a task leaves running in the background (its pipes closed) is killed when the task ends', async () => {
    const pidFile = join(dir, 'leftover');
    const { r } = await run(['/bin/sh', '-c', `sleep 60 >/dev/null 2>&1 </dev/null & echo $! > ${pidFile}; exit 0`]).done;
    assert.equal(r.exitCode, 0);
    const pid = Number(await readFile(pidFile, 'utf8'));
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((res) => setTimeout(res, 20));
    assert.equal(alive(pid), false, `the background sleep (${pid}) outlived its task`);
  });

  it('a cancel right after start (before the process is known to exist) still ends the task', async () => {
    const t0 = Date.now();
    const { h, done } = run(['/bin/sh', '-c', 'sleep 30']);
    h.kill('cancel');
    const { r } = await done;
    assert.equal(r.cancelled, true);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  });

  it('streams a large output with multi-byte characters intact, split anywhere', async () => {
    // 200,000 × "é€" = 1 MB of UTF-8 in pipe-sized pieces: a piece may end inside a character.
    const { r, out } = await run(['/bin/sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x; awk "BEGIN { for (i = 0; i < 200000; i++) printf \\"é€\\" }"']).done;
    assert.equal(r.exitCode, 0);
    assert.equal(out.length, 200_000 + 400_000);
    assert.equal(out.slice(200_000), 'é€'.repeat(200_000));
  });

  it("looks the program up on the task's PATH, not the agent's", async () => {
    const bin = join(dir, 'only-here');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'dsg-test-prog'), '#!/bin/sh\necho found "$1"\n', { mode: 0o755 });
    const h = ex.start({ argv: ['dsg-test-prog', 'me'], cwd: dir, env: { PATH: `${bin}:/usr/bin:/bin` }, timeoutMs: 10_000 }, { onStdout: (d) => (got += d), onStderr: () => undefined });
    let got = '';
    const r = await h.done;
    assert.equal(r.exitCode, 0);
    assert.equal(got, 'found me\n');
  });

  it('a task that ignores SIGTERM is SIGKILLed after the grace period', async () => {
    const t0 = Date.now();
    const { r } = await run(['/bin/sh', '-c', 'trap "" TERM; sleep 30'], 300).done;
    assert.equal(r.timedOut, true);
    assert.ok(Date.now() - t0 < 5000);
  });
});

describe('the native process starter', nativeOnly, () => {
  it('is what the launcher uses when it is built, and says so', async () => {
    const told: unknown[] = [];
    const ex = new LauncherExecutor({ killGraceMs: 500, onStarter: (x) => told.push(x) });
    try {
      const r = await ex.start({ argv: ['true'], cwd: tmpdir(), env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, timeoutMs: 10_000 }, { onStdout: () => undefined, onStderr: () => undefined }).done;
      assert.equal(r.exitCode, 0);
      assert.deepEqual(ex.starterInUse, { starter: 'native' });
      assert.deepEqual(told, [{ starter: 'native' }]);
    } finally {
      ex.close();
    }
  });

  it('when it dies, its running task ends as a failure and its process group is killed; the next start works', async () => {
    const starter = NativeStarter.find().starter!;
    const ex = new NativeExecutor({ killGraceMs: 500, starter });
    try {
      const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
      const noop = { onStdout: () => undefined, onStderr: () => undefined };
      const h = ex.start({ argv: ['/bin/sh', '-c', 'sleep 30'], cwd: tmpdir(), env, timeoutMs: 60_000 }, noop);
      for (let i = 0; i < 200 && h.pid === undefined; i++) await new Promise((r) => setTimeout(r, 10));
      const pid = h.pid!;
      assert.ok(pid > 0);
      const helper = spawnSync('pgrep', ['-P', String(process.pid), '-x', 'dsg-spawn'], { encoding: 'utf8' }).stdout.trim().split('\n').map(Number)[0]!;
      assert.ok(helper > 0, 'the helper process is found');
      process.kill(helper, 'SIGKILL');
      const r = await h.done;
      assert.equal(r.exitCode, null);
      assert.equal(r.signal, null);
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(alive(pid), false, 'the task survived its starter');
      const next = await ex.start({ argv: ['/bin/sh', '-c', 'exit 3'], cwd: tmpdir(), env, timeoutMs: 10_000 }, noop).done;
      assert.equal(next.exitCode, 3);
    } finally {
      starter.close();
    }
  });
});

describe('dsg-spawn when the process driving it dies (an agent killed with SIGKILL)', nativeOnly, () => {
  it('kills the process group of every task still running, then exits', async () => {
    // A parent that starts a task through dsg-spawn, says its pid, then waits to be killed.
    const parent = spawn(process.execPath, ['--input-type=module', '-e', `
      const { NativeStarter } = await import(${JSON.stringify(import.meta.resolve('@dsg/agent'))});
      const t = NativeStarter.find().starter.start('/bin/sh', ['-c', 'sleep 30'], { cwd: '/', env: { PATH: '/usr/bin:/bin' } });
      t.on('spawn', () => console.log(t.pid));
      setInterval(() => undefined, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const pid = await new Promise<number>((res, rej) => {
        parent.stdout!.once('data', (d: Buffer) => res(Number(String(d).trim())));
        parent.once('exit', (c) => rej(new Error(`the parent exited (${c})`)));
      });
      assert.ok(pid > 0 && alive(pid), 'the task runs');
      const helper = spawnSync('pgrep', ['-P', String(parent.pid), '-x', 'dsg-spawn'], { encoding: 'utf8' }).stdout.trim();
      assert.ok(Number(helper) > 0, 'dsg-spawn is the parent\'s child');
      parent.kill('SIGKILL');
      let gone = false;
      for (let i = 0; i < 100 && !gone; i++) {
        await new Promise((r) => setTimeout(r, 20));
        gone = !alive(pid) && !alive(Number(helper));
      }
      assert.ok(gone, `left running: ${alive(pid) ? `the task ${pid}` : ''} ${alive(Number(helper)) ? `dsg-spawn ${helper}` : ''}`);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('LauncherExecutor when its helper dies', () => {
  it('ends in-flight tasks with an executor error and starts a new helper for the next task', async () => {
    const ex = new LauncherExecutor({ killGraceMs: 500 });
    try {
      const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
      const noop = { onStdout: () => undefined, onStderr: () => undefined };
      const marker = `dsg-launcher-test-${process.pid}`;
      const h = ex.start({ argv: ['/bin/sh', '-c', `sleep 30 # ${marker}`], cwd: tmpdir(), env, timeoutMs: 60_000 }, noop);
      await new Promise((r) => setTimeout(r, 300));
      const helper = (ex as unknown as { helper: { pid: number } }).helper;
      process.kill(helper.pid, 'SIGKILL');
      const r = await h.done;
      assert.match(r.spawnError ?? '', /process launcher exited/);
      await new Promise((res) => setTimeout(res, 100));
      const left = spawnSync('pgrep', ['-f', marker]);
      assert.equal(left.status, 1, `the task outlived its launcher: ${String(left.stdout)}`);
      const again = await ex.start({ argv: ['/bin/sh', '-c', 'exit 4'], cwd: tmpdir(), env, timeoutMs: 10_000 }, noop).done;
      assert.equal(again.exitCode, 4);
    } finally {
      ex.close();
    }
  });
});
