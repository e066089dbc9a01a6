// Cgroup file operations against fake cgroup trees (plain directories): the v2 layout most users' machines have,
// and v1. The real kernel behaviour is exercised by isolation.test.ts on this machine's v1 controllers.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { detectCgroups, enableV2Controllers } from '../src/executor/cgroups.js';

const fakeRoot = (): string => mkdtempSync(join(tmpdir(), 'dsg-fakecg-'));

describe('cgroups v2 (fake unified tree)', () => {
  const setup = (controllers = 'cpuset cpu io memory pids'): { root: string; base: string } => {
    const root = fakeRoot();
    const base = join(root, 'system.slice', 'dsg.service');
    mkdirSync(base, { recursive: true });
    writeFileSync(join(root, 'cgroup.controllers'), controllers);
    writeFileSync(join(base, 'cgroup.controllers'), controllers);
    writeFileSync(join(base, 'cgroup.subtree_control'), '');
    writeFileSync(join(base, 'cgroup.procs'), '4242\n');
    return { root, base };
  };

  it('finds the agent\'s cgroup, delegates memory/pids/cpu, and writes memory.max, memory.swap.max, pids.max, cpu.max', () => {
    const { root, base } = setup();
    try {
      const d = detectCgroups({ procSelfCgroup: '0::/system.slice/dsg.service\n', root, pid: 4242 }, 'dsg-t');
      assert.ok(d.ok, d.ok ? '' : d.why);
      assert.equal(d.cgroups.version, 2);
      assert.equal(readFileSync(join(base, 'cgroup.subtree_control'), 'utf8'), '+memory +pids +cpu');
      // A kernel creates the interface files with the directory; the fake has only the ones written, plus swap.
      const cg = d.cgroups.create({ memoryBytes: 256 * 1024 * 1024, cpuMillis: 500, pids: 1024 });
      const dir = join(base, 'dsg-t-1');
      assert.deepEqual(cg.procsFiles, [join(dir, 'cgroup.procs')]);
      assert.equal(readFileSync(join(dir, 'memory.max'), 'utf8'), String(256 * 1024 * 1024));
      assert.equal(readFileSync(join(dir, 'pids.max'), 'utf8'), '1024');
      assert.equal(readFileSync(join(dir, 'cpu.max'), 'utf8'), '50000 100000');
      // OOM is told from the oom_kill counter in memory.events.
      writeFileSync(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n');
      assert.equal(cg.oomKilled(), false);
      writeFileSync(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n');
      assert.equal(cg.oomKilled(), true);
      // The whole-task kill is one write to cgroup.kill where the kernel has it.
      writeFileSync(join(dir, 'cgroup.kill'), '');
      writeFileSync(join(dir, 'cgroup.procs'), '999999999\n'); // a pid no process has
      cg.killAll();
      assert.equal(readFileSync(join(dir, 'cgroup.kill'), 'utf8'), '1');
      // Joining: the wrapper writes its own pid to the one cgroup.procs, then execs the task.
      const argv = cg.joinArgv(['/bin/echo', 'hi']);
      assert.deepEqual(argv.slice(0, 2), ['/bin/sh', '-c']);
      assert.deepEqual(argv.slice(3), ['sh', '1', join(dir, 'cgroup.procs'), '/bin/echo', 'hi']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a 0.25-core quota and a tiny one are written as the kernel expects (at least 1 ms per 100 ms period)', () => {
    const { root, base } = setup();
    try {
      const d = detectCgroups({ procSelfCgroup: '0::/system.slice/dsg.service\n', root, pid: 1 }, 'q');
      assert.ok(d.ok);
      d.cgroups.create({ memoryBytes: 0, cpuMillis: 250, pids: 0 });
      d.cgroups.create({ memoryBytes: 0, cpuMillis: 1, pids: 0 });
      assert.equal(readFileSync(join(base, 'q-1', 'cpu.max'), 'utf8'), '25000 100000');
      assert.equal(readFileSync(join(base, 'q-2', 'cpu.max'), 'utf8'), '1000 100000');
      assert.equal(existsSync(join(base, 'q-1', 'memory.max')), false, 'no memory limit written for 0');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('without the controllers delegated (this machine\'s v2 has none) it says which are missing', () => {
    const { root } = setup('');
    try {
      const d = detectCgroups({ procSelfCgroup: '0::/system.slice/dsg.service\n', root, pid: 1 });
      assert.equal(d.ok, false);
      assert.match(d.ok ? '' : d.why, /memory, pids, cpu are not delegated/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('an agent started by an agent that moved itself to the dsg-agent leaf uses the parent group', () => {
    const { root, base } = setup();
    try {
      mkdirSync(join(base, 'dsg-agent'));
      const d = detectCgroups({ procSelfCgroup: '0::/system.slice/dsg.service/dsg-agent\n', root, pid: 1 }, 'p');
      assert.ok(d.ok);
      d.cgroups.create({ memoryBytes: 1, cpuMillis: 0, pids: 0 });
      assert.ok(existsSync(join(base, 'p-1', 'memory.max')));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('sweeps the task cgroups of executors that are gone, keeping live ones and anything not ours', () => {
    const { root, base } = setup();
    try {
      const d = detectCgroups({ procSelfCgroup: '0::/system.slice/dsg.service\n', root, pid: 1 }, `dsg-${process.pid}`);
      assert.ok(d.ok);
      for (const n of ['dsg-999999999-1', 'dsg-999999999-2', `dsg-${process.pid}-1`, 'user-stuff']) mkdirSync(join(base, n));
      assert.equal(d.cgroups.sweepStale(), 2);
      assert.deepEqual(['dsg-999999999-1', 'dsg-999999999-2', `dsg-${process.pid}-1`, 'user-stuff'].map((n) => existsSync(join(base, n))), [false, false, true, true]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('enableV2Controllers reports an unreadable group with its path', () => {
    assert.match(enableV2Controllers('/nonexistent/dsg', 1) ?? '', /cannot read \/nonexistent\/dsg\/cgroup.controllers/);
  });
});

describe('cgroups v1 (fake per-controller trees)', () => {
  it('creates one directory per controller and writes memory.limit_in_bytes, pids.max, cpu.cfs_quota_us; OOM from memory.oom_control', () => {
    const root = fakeRoot();
    try {
      for (const c of ['memory', 'pids', 'cpu', 'freezer']) {
        mkdirSync(join(root, c, 'agent'), { recursive: true });
        writeFileSync(join(root, c, 'cgroup.procs'), '');
      }
      const text = '9:name=systemd:/\n8:pids:/agent\n6:freezer:/agent\n4:memory:/agent\n1:cpu:/agent\n0::/\n';
      const d = detectCgroups({ procSelfCgroup: text, root, pid: 1 }, 'v1');
      assert.ok(d.ok, d.ok ? '' : d.why);
      assert.equal(d.cgroups.version, 1);
      const cg = d.cgroups.create({ memoryBytes: 128 * 1024 * 1024, cpuMillis: 1500, pids: 64 });
      const at = (c: string, f: string): string => readFileSync(join(root, c, 'agent', 'v1-1', f), 'utf8');
      assert.equal(at('memory', 'memory.limit_in_bytes'), String(128 * 1024 * 1024));
      assert.equal(at('pids', 'pids.max'), '64');
      assert.equal(at('cpu', 'cpu.cfs_period_us'), '100000');
      assert.equal(at('cpu', 'cpu.cfs_quota_us'), '150000');
      assert.equal(cg.procsFiles.length, 4, 'memory, pids, cpu and freezer');
      writeFileSync(join(root, 'memory', 'agent', 'v1-1', 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
      assert.equal(cg.oomKilled(), true);
      // Every pid listed is killed (one no process has); listed again but killed already: done, nothing frozen.
      writeFileSync(join(root, 'pids', 'agent', 'v1-1', 'cgroup.procs'), '999999999\n');
      assert.equal(cg.killAll(), 'rounds');
      assert.ok(!existsSync(join(root, 'freezer', 'agent', 'v1-1', 'freezer.state')), 'no freeze for a task that gains no processes');
      // A task that gains a process at every read (as a fork bomb would): after the rounds, frozen, killed, thawed.
      let next = 999_990_000;
      const reads: number[] = [];
      cg.pids = () => {
        reads.push(next);
        return [next++];
      };
      assert.equal(cg.killAll(), 'frozen');
      assert.equal(at('freezer', 'freezer.state'), 'THAWED');
      assert.ok(reads.length >= 4, `killed in rounds first (${reads.length} reads)`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('measures CPU from cpuacct mounted apart from cpu (its own hierarchy), or from cpu when co-mounted as cpu,cpuacct', () => {
    for (const layout of ['separate', 'co-mounted'] as const) {
      const root = fakeRoot();
      try {
        const mounts = layout === 'separate' ? ['memory', 'pids', 'cpu', 'cpuacct'] : ['memory', 'pids', 'cpu,cpuacct'];
        for (const c of mounts) {
          mkdirSync(join(root, c, 'agent'), { recursive: true });
          writeFileSync(join(root, c, 'cgroup.procs'), '');
        }
        const text = layout === 'separate'
          ? '8:pids:/agent\n5:cpuacct:/agent\n4:memory:/agent\n1:cpu:/agent\n0::/\n'
          : '8:pids:/agent\n4:memory:/agent\n1:cpu,cpuacct:/agent\n0::/\n';
        const d = detectCgroups({ procSelfCgroup: text, root, pid: 1 }, 'v1');
        assert.ok(d.ok, d.ok ? '' : d.why);
        const cg = d.cgroups.create({ memoryBytes: 64 * 1024 * 1024, cpuMillis: 1000, pids: 16 });
        assert.equal(cg.procsFiles.length, layout === 'separate' ? 4 : 3, `${layout}: the task joins cpuacct too, once`);
        const acct = layout === 'separate' ? join(root, 'cpuacct', 'agent', 'v1-1') : join(root, 'cpu,cpuacct', 'agent', 'v1-1');
        writeFileSync(join(acct, 'cpuacct.usage'), '2500000000\n');
        writeFileSync(join(root, 'memory', 'agent', 'v1-1', 'memory.max_usage_in_bytes'), '1048576\n');
        assert.deepEqual(cg.usage(), { cpuMs: 2500, peakMemoryBytes: 1048576 }, layout);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
  });

  it('a missing controller falls through to v2, and with neither the reason names both', () => {
    const root = fakeRoot();
    try {
      mkdirSync(join(root, 'memory'));
      writeFileSync(join(root, 'memory', 'cgroup.procs'), '');
      const d = detectCgroups({ procSelfCgroup: '4:memory:/\n0::/\n', root, pid: 1 });
      assert.equal(d.ok, false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
