// One task that cannot be started must not take its neighbours down: a real launcher helper process, a task whose
// spawn throws (arguments too big for the kernel: E2BIG; a NUL byte in the environment), next to healthy tasks
// that run at the same time, or wait for a core behind it. Only the bad tasks fail; the helper keeps serving.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LauncherExecutor, NativeExecutor, type ExecResult, type Executor } from '@dsg/agent';

const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
const one = { cpuMillis: 1000, memoryBytes: 1024 ** 2, gpus: 0 };

const cases: Array<[string, () => Executor]> = [
  ['LauncherExecutor, every task at once', () => new LauncherExecutor({ killGraceMs: 500 })],
  ['LauncherExecutor admitting 1 core (tasks wait in the helper)', () => new LauncherExecutor({ killGraceMs: 500, capacity: one })],
  ['NativeExecutor', () => new NativeExecutor({ killGraceMs: 500 })],
];

for (const [name, make] of cases) {
  describe(`a task whose spawn throws: ${name}`, () => {
    it('fails alone with a spawn error; the healthy tasks around it succeed, and later ones too', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dsg-spawnfail-'));
      const ex = make();
      try {
        const run = (argv: string[], extraEnv: Record<string, string> = {}) => {
          let out = '';
          const h = ex.start({ argv, cwd: dir, env: { ...env, ...extraEnv }, timeoutMs: 10_000, resources: one }, { onStdout: (d) => (out += d), onStderr: () => undefined });
          return h.done.then((r: ExecResult) => ({ r, out }));
        };
        const healthy = (i: number) => run(['/bin/sh', '-c', `sleep 0.2; echo ok ${i}`]);
        const results = await Promise.all([
          healthy(0),
          run(['/bin/echo', 'x'.repeat(200 * 1024)]), // one argument over 128 KiB: E2BIG
          healthy(1),
          run(['/bin/true'], { BAD: 'a\0b' }), // a NUL byte in the environment
          healthy(2),
        ]);
        const [h0, big, h1, nul, h2] = results;
        assert.match(big!.r.spawnError ?? '', /E2BIG/);
        assert.match(nul!.r.spawnError ?? '', /null bytes/);
        for (const [i, h] of [h0, h1, h2].entries()) {
          assert.equal(h!.r.spawnError, null, `healthy task ${i}: ${h!.r.spawnError}`);
          assert.equal(h!.r.exitCode, 0);
          assert.equal(h!.out, `ok ${i}\n`);
        }
        // The same helper goes on serving.
        const later = await healthy(3);
        assert.deepEqual([later.r.exitCode, later.r.spawnError, later.out], [0, null, 'ok 3\n']);
      } finally {
        if (ex instanceof LauncherExecutor) ex.close();
        await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
      }
    });
  });
}
