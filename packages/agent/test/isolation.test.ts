// Escape attempts as real tasks through the executors, with the isolation the agent would use on this machine:
// cgroup limits (v1 controllers here), bubblewrap, an unprivileged task user. Needs root and cgroups; skipped
// (loudly) otherwise, but never with CI=true.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentMessage, Assignment } from '@dsg/core';
import { AttemptRun, CoordinatorHttp, LauncherExecutor, NativeExecutor, type ExecResult, type ExecSpec, type Executor } from '@dsg/agent';
import { detectCgroups } from '../src/executor/cgroups.js';
import { probeIsolation, type IsolationSettings } from '../src/probe/isolation.js';

const root = process.getuid?.() === 0;
const cg = detectCgroups();
const why = !root ? 'not root' : !cg.ok ? cg.why : null;
if (why) {
  if (process.env['CI'] === 'true') throw new Error(`isolation tests cannot run here (${why}); with CI=true nothing may skip`);
  console.warn(`SKIPPING isolation tests: ${why}`);
}
const MiB = 1024 * 1024;
const PATH = process.env['PATH'] ?? '/usr/bin:/bin';

const base = mkdtempSync(join(tmpdir(), 'dsg-iso-'));
const stateDir = join(base, 'state');
const workDir = join(stateDir, 'work');
mkdirSync(workDir, { recursive: true, mode: 0o700 });
writeFileSync(join(stateDir, 'node.json'), '{"nodeId":"secret-node"}', { mode: 0o600 });

const probe = (isolation: 'none' | 'cgroups' | 'sandbox', extra: { allowNetwork?: boolean; maxProcesses?: number; sandboxTool?: 'bwrap' | 'unshare' } = {}) =>
  probeIsolation({ isolation, hide: [stateDir, workDir], ...extra });

/** Any process whose command line contains `marker`, besides this test. */
const processesWith = (marker: string): number[] =>
  readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      return cmd.includes(marker) && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  }).map(Number);

let seq = 0;
async function run(ex: Executor, script: string, over: Partial<ExecSpec> = {}): Promise<{ r: ExecResult; out: string; err: string; cwd: string }> {
  const cwd = join(workDir, `att_${++seq}`);
  mkdirSync(cwd, { recursive: true });
  let out = '';
  let err = '';
  const h = ex.start(
    { argv: ['/bin/sh', '-c', script], cwd, env: { PATH }, timeoutMs: 20_000, resources: { cpuMillis: 1000, memoryBytes: 256 * MiB, gpus: 0 }, ...over },
    { onStdout: (d) => (out += d), onStderr: (d) => (err += d) },
  );
  const r = await h.done;
  return { r, out, err, cwd };
}

after(() => rmSync(base, { recursive: true, force: true }));

describe('isolation: cgroup limits on real tasks', { skip: why ?? false }, () => {
  let settings: IsolationSettings;
  let ex: NativeExecutor;
  before(() => {
    const p = probe('cgroups', { maxProcesses: 64 });
    assert.equal(p.level, 'cgroups', p.notes.join('; '));
    settings = p.settings;
    ex = new NativeExecutor({ killGraceMs: 200, isolation: settings });
  });

  it('a memory hog over its 128Mi is killed by the kernel and told apart as out of memory', async () => {
    const hog = `node -e 'const a=[];for(let i=0;i<64;i++){a.push(Buffer.alloc(16<<20,1))}console.log("survived")'`;
    const { r, out } = await run(ex, hog, { resources: { cpuMillis: 1000, memoryBytes: 128 * MiB, gpus: 0 } });
    assert.equal(r.oomKilled, true, `expected an OOM kill, got ${JSON.stringify(r)}`);
    assert.doesNotMatch(out, /survived/);
    // The same hog with room enough runs to the end, and is not reported as OOM.
    const ok = await run(ex, `node -e 'const a=[];for(let i=0;i<4;i++){a.push(Buffer.alloc(16<<20,1))}console.log("survived")'`, { resources: { cpuMillis: 1000, memoryBytes: 256 * MiB, gpus: 0 } });
    assert.equal(ok.r.exitCode, 0);
    assert.equal(ok.r.oomKilled, undefined);
  });

  it('the runner reports it as a user failure: "exceeded its memory limit of 128Mi"', async () => {
    const a: Assignment = {
      attemptId: 'att_memhog', attemptNumber: 1, jobId: 'job_m', jobName: 'm', taskId: 'job_m.0', taskIndex: 0, taskCount: 1, arrayValue: null,
      run: { kind: 'script', script: `node -e 'const a=[];for(;;){a.push(Buffer.alloc(16<<20,1))}'` }, env: {}, inputs: [], outputs: [], timeoutMs: 30_000,
      resources: { cpuMillis: 1000, memoryBytes: 128 * MiB, gpus: 0, diskBytes: 0 },
    };
    const sent: AgentMessage[] = [];
    const http = new CoordinatorHttp('http://127.0.0.1:9', 'x', join(base, 'blobs'));
    const fin = await new AttemptRun(a, { executor: ex, http, workDir, baseEnv: { PATH }, keepWorkDirs: false, send: (m) => sent.push(m) }).done;
    assert.deepEqual(fin.end, { kind: 'error', reason: 'memory_limit', message: 'exceeded its memory limit of 128Mi' });
    const { classifyEnd } = await import('@dsg/core');
    assert.equal(classifyEnd(fin.end)?.kind, 'user');
  });

  it('a busy loop declared 0.5 cores gets about half a core (measured over 1 s)', async () => {
    const loop = `node -e 'const t=Date.now(),c=process.cpuUsage();while(Date.now()-t<1000);const u=process.cpuUsage(c);console.log((u.user+u.system)/1000/(Date.now()-t))'`;
    const { r, out } = await run(ex, loop, { resources: { cpuMillis: 500, memoryBytes: 256 * MiB, gpus: 0 } });
    assert.equal(r.exitCode, 0);
    const used = Number(out.trim());
    console.log(`busy loop under a 0.5-core quota used ${used.toFixed(2)} cores`);
    assert.ok(used <= 0.7, `used ${used} cores`);
    assert.ok(used > 0.2, `used ${used} cores (the loop should still run)`);
  });

  it('a bounded fork bomb is stopped by the process limit (64), and nothing it started survives', async () => {
    const marker = `dsgforkbomb${process.pid}x${Date.now()}`;
    // Each child is a shell that outlives the loop (its command line carries the marker), waiting on a sleep. The
    // loop runs in a subshell, which dies at the first fork refused; the task then reports and waits.
    const bomb = `(i=0; while [ $i -lt 300 ]; do sh -c 'sleep 30; true ${marker}' & i=$((i+1)); done); echo forked; exec sleep 30`;
    const cwd = join(workDir, `att_${++seq}`);
    mkdirSync(cwd, { recursive: true });
    let err = '';
    let peak = -1;
    const h = ex.start(
      { argv: ['/bin/sh', '-c', bomb], cwd, env: { PATH }, timeoutMs: 20_000, resources: { cpuMillis: 1000, memoryBytes: 256 * MiB, gpus: 0 } },
      {
        onStdout: (d) => {
          if (!d.includes('forked')) return;
          peak = processesWith(marker).length;
          h.kill('cancel');
        },
        onStderr: (d) => (err += d),
      },
    );
    const r = await h.done;
    assert.equal(r.cancelled, true, `${JSON.stringify(r)} ${err}`);
    console.log(`fork bomb under pids.max 64: ${peak} of 300 children ran at once`);
    assert.ok(peak > 0 && peak < 64, `${peak} marked shells ran at once under a limit of 64 processes`);
    assert.match(err, /fork|Resource temporarily unavailable/i, 'the shell was refused forks');
    assert.deepEqual(processesWith(marker), [], 'children of the fork bomb outlived their task');
  });

  it('a setsid child with detached stdio does not survive the task\'s timeout', async () => {
    const marker = `dsgsetsid${process.pid}x${Date.now()}`;
    const { r } = await run(ex, `setsid sh -c 'sleep 60; true ${marker}' </dev/null >/dev/null 2>&1 & sleep 0.1; sleep 60`, { timeoutMs: 400 });
    assert.equal(r.timedOut, true);
    assert.deepEqual(processesWith(marker), [], 'the setsid child outlived the timeout kill');
  });

  it('tasks run as an unprivileged user (nobody), owning their working directory', async () => {
    const { out } = await run(ex, 'id -u; touch made && echo wrote; cat ' + join(stateDir, 'node.json') + ' || echo denied');
    assert.match(out, /^65534\nwrote\ndenied/);
  });

  it('without cgroups (isolation none) the same setsid child does survive: the test above can fail', async () => {
    const plain = new NativeExecutor({ killGraceMs: 200 });
    const marker = `dsgsetsidplain${process.pid}x${Date.now()}`;
    try {
      await run(plain, `setsid sh -c 'sleep 60; true ${marker}' </dev/null >/dev/null 2>&1 & sleep 0.1; sleep 60`, { timeoutMs: 400 });
      assert.equal(processesWith(marker).length, 1);
    } finally {
      for (const p of processesWith(marker)) process.kill(p, 'SIGKILL');
    }
  });
});

// The same escapes against both sandboxes: bubblewrap, and the unshare fallback used where it is missing.
for (const tool of ['bwrap', 'unshare'] as const) describe(`isolation: the sandbox (${tool})`, { skip: why ?? false }, () => {
  let ex: LauncherExecutor;
  let noNet: LauncherExecutor;
  before(() => {
    const p = probe('sandbox', { sandboxTool: tool });
    assert.equal(p.level, 'sandbox+cgroups', p.notes.join('; '));
    assert.equal(p.settings.sandbox?.tool, tool);
    ex = new LauncherExecutor({ killGraceMs: 200, isolation: p.settings });
    noNet = new LauncherExecutor({ killGraceMs: 200, isolation: probe('sandbox', { allowNetwork: false, sandboxTool: tool }).settings });
  });
  after(() => {
    ex.close();
    noNet.close();
  });

  it('cannot read the agent\'s state dir, nor another task\'s working dir, nor other processes', async () => {
    const other = join(workDir, 'att_other');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'result.txt'), 'private');
    const { r, out, err } = await run(ex, [
      `cat ${join(stateDir, 'node.json')} && echo READ-STATE`,
      `cat ${join(other, 'result.txt')} && echo READ-OTHER`,
      `ls ${workDir}`,
      `ls /proc | grep -c '^[0-9]'`,
      `cat /proc/${process.pid}/environ >/dev/null 2>&1 && echo READ-ENVIRON`, // the agent side's environment
      'id -u',
    ].join('; '));
    assert.equal(r.exitCode, 0, err);
    assert.doesNotMatch(out, /READ-STATE|READ-OTHER|secret-node|private/);
    const lines = out.trim().split('\n');
    assert.deepEqual(lines.slice(0, 1), [readdirSync(workDir).filter((d) => d === `att_${seq}`)[0]], 'only its own dir is in the work dir');
    assert.ok(Number(lines[1]) <= 5, `sees ${lines[1]} processes`);
    assert.equal(lines[2], '65534');
  });

  it('cannot read the coordinator\'s credentials directly, nor hard-link them or the agent\'s credential into its outputs', async () => {
    // A coordinator data dir on the same machine, as `dsg up` makes it (0700, files 0600), next to the agent's.
    const data = join(base, 'coord-data');
    mkdirSync(data, { recursive: true, mode: 0o700 });
    writeFileSync(join(data, 'credentials.json'), '{"adminToken":"secret-admin"}', { mode: 0o600 });
    const { r, out, err, cwd } = await run(ex, [
      `cat ${join(data, 'credentials.json')} && echo READ-COORD`,
      `ln ${join(data, 'credentials.json')} c1 2>/dev/null && echo LINKED-COORD`,
      `ln ${join(stateDir, 'node.json')} c2 2>/dev/null && echo LINKED-STATE`,
      `cp ${join(stateDir, 'node.json')} c3 2>/dev/null && echo COPIED-STATE`,
      'true',
    ].join('; '));
    assert.equal(r.exitCode, 0, err);
    assert.doesNotMatch(out, /READ-COORD|LINKED-COORD|LINKED-STATE|COPIED-STATE|secret-admin/);
    for (const f of ['c1', 'c2', 'c3']) assert.throws(() => readFileSync(join(cwd, f)), `${f} exists in the working dir`);
  });

  it('can write its working dir and a private /tmp, but nowhere else', async () => {
    const { out, cwd } = await run(ex, [
      'echo ok > mine && echo WROTE-CWD',
      'echo t > /tmp/t && echo WROTE-TMP',
      `echo x > ${join(workDir, 'escape')} 2>/dev/null && echo WROTE-WORKDIR`,
      `echo x > ${join(base, 'escape')} 2>/dev/null && echo WROTE-BASE`,
      'echo x > /var/tmp/dsg-escape 2>/dev/null && echo WROTE-VARTMP',
      'echo x > /etc/dsg-escape 2>/dev/null && echo WROTE-ETC',
      'true',
    ].join('; '));
    assert.match(out, /WROTE-CWD/);
    assert.match(out, /WROTE-TMP/);
    assert.doesNotMatch(out, /WROTE-WORKDIR|WROTE-BASE|WROTE-VARTMP|WROTE-ETC/);
    assert.equal(readFileSync(join(cwd, 'mine'), 'utf8'), 'ok\n');
    assert.throws(() => readFileSync(join(workDir, 'escape')));
    assert.throws(() => readFileSync('/var/tmp/dsg-escape'));
  });

  it('reaches its working dir by its absolute path, also below a hidden parent (the coordinator data dir of dsg up)', async () => {
    const e = new LauncherExecutor({ killGraceMs: 200, isolation: probeIsolation({ hide: [base], sandboxTool: tool }).settings });
    try {
      const { r, out, err, cwd } = await run(e, 'echo here > mine && cat "$PWD/mine" && { ls "$(dirname "$PWD")" 2>/dev/null || echo unlistable; }');
      assert.equal(r.exitCode, 0, err);
      // Its parents are searchable; listed (unshare) they hold nothing but its own directory.
      assert.ok(out === 'here\nunlistable\n' || out === `here\n${cwd.split('/').pop()}\n`, out);
    } finally {
      e.close();
    }
  });

  it('has no network unless the job asks for it and the node allows it', async () => {
    const server = createServer((s) => s.end('hello\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const connect = `node -e 'require("net").connect(${port},"127.0.0.1").on("data",d=>{process.stdout.write("CONNECTED "+d);process.exit(0)}).on("error",e=>{console.log("FAILED",e.code);process.exit(3)})'`;
    try {
      const without = await run(ex, connect);
      assert.match(without.out, /FAILED/);
      assert.equal(without.r.exitCode, 3);
      const withNet = await run(ex, connect, { network: true });
      assert.match(withNet.out, /CONNECTED hello/);
      const refused = await run(noNet, connect, { network: true });
      assert.match(refused.out, /FAILED/);
      assert.match(refused.err, /this node does not allow it/);
    } finally {
      server.close();
    }
  });

  it('a command is found on PATH past a directory only root may enter (root\'s ~/.pyenv/shims before /usr/bin)', async () => {
    const rootOnly = join(base, 'root-only-bin'); // base is 0700: nobody cannot reach inside
    mkdirSync(rootOnly, { recursive: true });
    writeFileSync(join(rootOnly, 'id'), '#!/bin/sh\necho shadowed\n', { mode: 0o755 });
    const cwd = join(workDir, `att_${++seq}`);
    mkdirSync(cwd, { recursive: true });
    let out = '';
    const r = await ex.start({ argv: ['id', '-u'], cwd, env: { PATH: `${rootOnly}:${PATH}` }, timeoutMs: 5000 }, { onStdout: (d) => (out += d), onStderr: (d) => (out += d) }).done;
    assert.equal(r.exitCode, 0, out);
    assert.equal(out, '65534\n');
  });

  it('a missing program is still a failure to start, and exit codes come through', async () => {
    const h = ex.start({ argv: ['no-such-program-dsg'], cwd: workDir, env: { PATH }, timeoutMs: 5000 }, { onStdout: () => undefined, onStderr: () => undefined });
    assert.match((await h.done).spawnError ?? '', /no such program/);
    const { r } = await run(ex, 'exit 7');
    assert.equal(r.exitCode, 7);
  });

  it('start-up cost per task: tasks/s with `true`, by isolation level and process starter (2 at a time)', async () => {
    const rates: Record<string, number> = {};
    // Both process starters, one after the other at each level, so the machine's load hits them alike: the native
    // dsg-spawn when it is built ('auto'), and Node's spawn.
    for (const level of ['none', 'cgroups', 'sandbox'] as const) for (const starter of ['auto', 'node'] as const) {
      const p = probe(level, { sandboxTool: tool });
      const e = new LauncherExecutor({ killGraceMs: 200, starter, ...(p.level === 'none' ? {} : { isolation: p.settings }) });
      try {
        const n = 60;
        const cwd = join(workDir, `bench_${level}`);
        mkdirSync(cwd, { recursive: true });
        await e.start({ argv: ['true'], cwd, env: { PATH }, timeoutMs: 5000 }, { onStdout: () => undefined, onStderr: () => undefined }).done; // warm up the helper
        const t0 = performance.now();
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next++ < n) {
            const r = await e.start({ argv: ['true'], cwd, env: { PATH }, timeoutMs: 5000, resources: { cpuMillis: 1000, memoryBytes: 64 * MiB, gpus: 0 } }, { onStdout: () => undefined, onStderr: () => undefined }).done;
            assert.equal(r.exitCode, 0, JSON.stringify(r));
          }
        };
        await Promise.all([worker(), worker()]);
        rates[`${p.level} (${starter === 'node' ? 'node' : e.starterInUse?.starter ?? '?'})`] = Math.round(n / ((performance.now() - t0) / 1000));
      } finally {
        e.close();
      }
    }
    console.log(`tasks/s with \`true\`, 2 at a time (sandbox: ${tool}): ${Object.entries(rates).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  });
});

// The task user an agent running as root starts tasks as, through each way to drop privileges (dsg-drop, built with
// the agent; util-linux setpriv, the fallback) and each place it is used (alone at level `cgroups`, last inside
// either sandbox): its ids, groups, capability sets and no_new_privs, as the kernel reports them.
describe('isolation: the unprivileged task user, through dsg-drop and through setpriv', { skip: why ?? false }, () => {
  const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => { try { readFileSync(f); return true; } catch { return false; } });
  const status = `grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status`;
  /** dsg-drop as the probe found it, or null after failing (CI=true: nothing may skip) or skipping loudly. */
  const builtDrop = (t: { skip: (why: string) => void }, notes: readonly string[]): string | null => {
    const drop = probe('cgroups').settings.user?.drop;
    if (drop?.kind === 'dsg-drop') return drop.program;
    if (process.env['CI'] === 'true') assert.fail(`dsg-drop was not built or does not run (${notes.join('; ')}); with CI=true nothing may skip`);
    t.skip('dsg-drop was not built (no C compiler at build time)');
    return null;
  };
  const facts = (out: string): Record<string, string> =>
    Object.fromEntries(out.trim().split('\n').map((l) => l.split(':')).map(([k, v]) => [k!, (v ?? '').trim().replace(/\s+/g, ' ')]));
  for (const kind of ['dsg-drop', 'setpriv'] as const) for (const where of ['cgroups', 'bwrap', 'unshare'] as const) {
    it(`${kind}, ${where === 'cgroups' ? 'without a sandbox' : `inside the ${where} sandbox`}: uid/gid 65534, no groups, no capabilities, no_new_privs`, async (t) => {
      const p = where === 'cgroups' ? probe('cgroups') : probe('sandbox', { sandboxTool: where });
      const found = where === 'cgroups' ? p.settings.user?.drop : p.settings.sandbox?.drop;
      assert.ok(found, `a privilege drop was found (${p.notes.join('; ')})`);
      let settings = p.settings;
      if (kind === 'dsg-drop' && found.kind !== 'dsg-drop' && builtDrop(t, p.notes) === null) return;
      if (kind === 'dsg-drop') assert.equal(found.kind, 'dsg-drop', 'dsg-drop is built: it is used');
      if (kind === 'setpriv') {
        if (!SETPRIV) {
          if (process.env['CI'] === 'true') assert.fail('setpriv (util-linux) is not installed; with CI=true nothing may skip');
          t.skip('setpriv is not installed');
          return;
        }
        const drop = { kind: 'setpriv' as const, program: SETPRIV };
        settings = where === 'cgroups' ? { ...settings, user: { ...settings.user!, drop } } : { ...settings, sandbox: { ...settings.sandbox!, drop } };
      }
      const ex = new NativeExecutor({ killGraceMs: 200, isolation: settings });
      const { r, out, err } = await run(ex, status);
      assert.equal(r.exitCode, 0, err);
      const f = facts(out);
      assert.equal(f['Uid'], '65534 65534 65534 65534', 'real, effective, saved and fs uid');
      assert.equal(f['Gid'], '65534 65534 65534 65534', 'real, effective, saved and fs gid');
      assert.equal(f['Groups'], '', 'no supplementary groups');
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.equal(f[set], '0000000000000000', `${set} is empty`);
      assert.equal(f['NoNewPrivs'], '1', 'no_new_privs: a setuid program cannot raise it back');
    });
  }

  it('dsg-drop where the sandbox hides it (a checkout under /tmp, a hidden dir) is bound back read-only, in both sandboxes', async (t) => {
    const built: string | null = builtDrop(t, []);
    if (built === null) return;
    const { copyFileSync, chmodSync } = await import('node:fs');
    const places = [join(base, 'checkout', 'bundle', 'dsg-drop'), join(stateDir, 'bin', 'dsg-drop')]; // under /tmp; under a hidden dir
    for (const f of places) {
      mkdirSync(join(f, '..'), { recursive: true });
      copyFileSync(built, f);
      chmodSync(f, 0o755);
    }
    for (const where of ['bwrap', 'unshare'] as const) for (const program of places) {
      const p = probe('sandbox', { sandboxTool: where });
      const settings = { ...p.settings, sandbox: { ...p.settings.sandbox!, drop: { kind: 'dsg-drop' as const, program } } };
      const ex = new NativeExecutor({ killGraceMs: 200, isolation: settings });
      const { r, out, err } = await run(ex, `${status}; test -w ${program} && echo WRITABLE; ls ${join(stateDir, 'node.json')} 2>/dev/null && echo STATE-VISIBLE; true`);
      assert.equal(r.exitCode, 0, `${where}, ${program}: ${err}`);
      const f = facts(out.split('\n').filter((l) => l.includes(':')).join('\n'));
      assert.equal(f['Uid'], '65534 65534 65534 65534', `${where}, ${program}`);
      assert.equal(f['CapEff'], '0000000000000000');
      assert.doesNotMatch(out, /WRITABLE/, 'the helper is read-only in the sandbox');
      assert.doesNotMatch(out, /STATE-VISIBLE/, 'binding the helper back shows nothing else of the hidden dir');
    }
  });

  it('dsg-drop refuses what it cannot do safely: a bad id, root as the target, a missing program', async (t) => {
    const found: string | null = builtDrop(t, []);
    if (found === null) return;
    const program: string = found;
    for (const args of [['0', '65534', '--', 'true'], ['65534', '0', '--', 'true'], ['x', '1', '--', 'true'], ['1', '1', 'true'], ['-1', '1', '--', 'true'], ['4294967295', '1', '--', 'true']]) {
      const refused = spawnSync(program, args, { encoding: 'utf8' });
      assert.equal(refused.status, 126, `${args.join(' ')}: ${refused.stderr}`);
      assert.match(refused.stderr, /usage: dsg-drop UID GID/);
    }
    const missing = spawnSync(program, ['65534', '65534', '--', '/nonexistent/program'], { encoding: 'utf8' });
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /cannot run \/nonexistent\/program/);
  });
});
