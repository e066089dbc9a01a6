// Working dirs (work-dirs.ts): a dir its task left exactly as made is kept as a spare and renamed to the next
// attempt's name, without a sandbox only; anything else is removed as before. Then through a real agent (a test
// WebSocket server assigns real tasks): with `--isolation none` the second task gets the first one's dir (same
// inode, empty), with the sandbox every task gets a fresh one and no spare is kept.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeProbe, startAgent } from '@dsg/agent';
import { probeIsolation } from '../src/probe/isolation.js';
import { MAX_SPARE_DIRS, WorkDirs, type WorkDirsOptions } from '../src/work-dirs.js';
import { startFakeCoordinator, type FakeCoordinator } from './fake-coordinator.js';

const waitUntil = async (what: string, fn: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!fn() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.ok(fn(), `timed out waiting for ${what}`);
};

describe('WorkDirs', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'dsg-workdirs-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const fresh = (name: string, options: WorkDirsOptions = { reuse: true, keep: false }): { dir: string; w: WorkDirs } => {
    const dir = join(root, name);
    mkdirSync(dir);
    return { dir, w: new WorkDirs(dir, options) };
  };

  it('hands an empty dir on: kept as a spare, renamed to the next attempt (same inode), none left over', () => {
    const { dir, w } = fresh('reuse');
    const a = w.create('att_a');
    assert.equal(a, join(dir, 'att_a'));
    const ino = lstatSync(a).ino;
    w.release(a);
    assert.equal(w.spareCount(), 1);
    assert.deepEqual(readdirSync(dir).filter((n) => !n.startsWith('.spare-')), [], 'the attempt\'s name is gone');
    const b = w.create('att_b');
    assert.equal(lstatSync(b).ino, ino, 'the same directory, renamed');
    assert.deepEqual(readdirSync(b), []);
    assert.equal(w.spareCount(), 0);
    assert.deepEqual(readdirSync(dir), ['att_b']);
  });

  it('removes what a task changed instead: files left, mode changed, the dir swapped for a symlink', async () => {
    const { dir, w } = fresh('changed');
    const left = w.create('att_left');
    mkdirSync(join(left, 'sub'));
    writeFileSync(join(left, 'sub', 'f'), 'x');
    w.release(left);
    assert.equal(w.spareCount(), 0, 'a dir with files left in it is not kept');
    const chmodded = w.create('att_mode');
    chmodSync(chmodded, 0o777);
    w.release(chmodded);
    assert.equal(w.spareCount(), 0, 'a dir whose mode changed is not kept');
    // A task that replaced its own dir with a link elsewhere: the link is removed, never what it points at.
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep-me'), 'y');
    const swapped = w.create('att_link');
    rmdirSync(swapped);
    symlinkSync(outside, swapped);
    w.release(swapped);
    assert.equal(w.spareCount(), 0, 'a symlink in its place is not kept');
    await waitUntil('the changed dirs removed', () => readdirSync(dir).length === 0);
    assert.ok(existsSync(join(outside, 'keep-me')), 'the link\'s target is untouched');
  });

  it('without reuse every dir is removed; with keep every dir stays', () => {
    const off = fresh('off', { reuse: false, keep: false });
    off.w.release(off.w.create('att_x'));
    assert.equal(off.w.spareCount(), 0);
    assert.deepEqual(readdirSync(off.dir), []);
    const keep = fresh('keep', { reuse: false, keep: true });
    keep.w.release(keep.w.create('att_y'));
    assert.deepEqual(readdirSync(keep.dir), ['att_y']);
  });

  it('removed on the thread pool when asked (sandboxed tasks): empty and full dirs alike, nothing kept', async () => {
    const bg = fresh('background', { reuse: false, keep: false, removeInBackground: true });
    const empty = bg.w.create('att_empty');
    const full = bg.w.create('att_full');
    mkdirSync(join(full, 'sub'));
    writeFileSync(join(full, 'sub', 'f'), 'x');
    bg.w.release(empty);
    bg.w.release(full);
    assert.equal(bg.w.spareCount(), 0);
    await waitUntil('both dirs removed', () => readdirSync(bg.dir).length === 0);
  });

  it(`keeps at most ${MAX_SPARE_DIRS} spares; leftovers of an earlier run are dropped at start, nothing else`, () => {
    const { dir, w } = fresh('cap');
    const made = Array.from({ length: MAX_SPARE_DIRS + 5 }, (_, i) => w.create(`att_${i}`));
    for (const d of made) w.release(d);
    assert.equal(w.spareCount(), MAX_SPARE_DIRS);
    assert.equal(readdirSync(dir).length, MAX_SPARE_DIRS, 'the rest were removed');
    mkdirSync(join(dir, 'att_stale'));
    const again = new WorkDirs(dir, { reuse: true, keep: false });
    again.dropLeftoverSpares();
    assert.deepEqual(readdirSync(dir), ['att_stale']);
    assert.equal(again.spareCount(), 0);
  });
});

describe('WorkDirs through a real agent', () => {
  let dir: string;
  let coordinator: FakeCoordinator;
  let url: string;
  const logs = new Map<string, string>();
  const ended = new Set<string>();
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsg-workdirs-agent-'));
    coordinator = await startFakeCoordinator({
      nodeId: 'node_0000000000000000000000000c',
      onMessage: (m) => {
        if (m['type'] === 'log') logs.set(String(m['attemptId']), (logs.get(String(m['attemptId'])) ?? '') + String(m['data']));
        if (m['type'] === 'finished') ended.add(String(m['attemptId']));
      },
    });
    url = coordinator.url;
  });
  after(async () => {
    await coordinator.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  let seq = 0;
  /** Runs `script` as one task on the agent and returns its output. */
  const runTask = async (script: string): Promise<string> => {
    const attemptId = `att_${String(++seq).padStart(26, '0')}`;
    coordinator.send({ type: 'assign', attempts: [{
      attemptId, attemptNumber: 1, jobId: 'job_1', jobName: 'j', taskId: `job_1.${seq}`, taskIndex: seq, taskCount: 100, arrayValue: null,
      run: { kind: 'script', script }, env: {}, inputs: [], outputs: [], timeoutMs: 30_000,
      resources: { cpuMillis: 1000, memoryBytes: 64 * 1024 ** 2, gpus: 0, diskBytes: 0 },
    }] });
    await waitUntil(`task ${attemptId} to finish`, () => ended.has(attemptId), 20_000);
    return logs.get(attemptId) ?? '';
  };
  const facts = { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'c', cores: 2, memoryBytes: 4 * 1024 ** 3, diskBytes: 1e9, gpus: [] };
  const probe = 'echo "ino=$(stat -c %i .) pwd=$(pwd) entries=$(ls -A | wc -l)"';

  it('--isolation none: the next task gets the last one\'s empty dir under its own name; a dir left full is not handed on', async () => {
    const state = join(dir, 'none');
    const agent = await startAgent({ coordinatorUrl: url, token: 't', stateDir: state, name: 'none', isolation: 'none' }, { probe: new FakeProbe(facts) });
    try {
      await agent.connected;
      const work = join(state, 'work');
      const first = await runTask(probe);
      await waitUntil('a spare kept', () => readdirSync(work).some((n) => n.startsWith('.spare-')));
      const second = await runTask(probe);
      const ino = (s: string): string => /ino=(\d+)/.exec(s)![1]!;
      assert.equal(ino(second), ino(first), `the same dir, handed on (${first.trim()} / ${second.trim()})`);
      assert.match(second, new RegExp(`pwd=${join(work, `att_${String(seq).padStart(26, '0')}`)} entries=0`), 'under the attempt\'s own name, empty');
      await runTask('echo data > left-behind');
      await waitUntil('the full dir removed', () => readdirSync(work).every((n) => n.startsWith('.spare-')));
      const after = await runTask(probe);
      assert.match(after, /entries=0/, 'what a task left never reaches the next one');
    } finally {
      await agent.stop();
    }
  });

  it('with the sandbox every task gets a fresh dir and no spare is kept', async (t) => {
    const level = probeIsolation({ hide: [] }).level;
    if (!level.startsWith('sandbox')) {
      if (process.env['CI'] === 'true') assert.fail(`no sandbox on this machine (${level}): CI must have bubblewrap and root`);
      t.skip(`SKIPPED: no sandbox on this machine (${level})`);
      return;
    }
    const state = join(dir, 'sandbox');
    const agent = await startAgent({ coordinatorUrl: url, token: 't', stateDir: state, name: 'sandbox' }, { probe: new FakeProbe(facts) });
    try {
      await agent.connected;
      const work = join(state, 'work');
      for (let i = 0; i < 2; i++) assert.match(await runTask(probe), /entries=0/);
      await waitUntil('the dirs removed', () => readdirSync(work).length === 0);
    } finally {
      await agent.stop();
    }
  });
});
