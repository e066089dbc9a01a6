// Working dirs (work-dirs.ts): without a sandbox, a dir its task left exactly as made is a free slot, the next
// attempt's dir as it is; anything else is removed. Then through a real agent (a test WebSocket server assigns real
// tasks): with `--isolation none` the second task gets the first one's slot (same path, same inode, empty), with the
// sandbox every task gets a fresh dir named after its attempt and nothing is kept.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeProbe, startAgent } from '@dsg/agent';
import { probeIsolation } from '../src/probe/isolation.js';
import { keepsCtimes, MAX_FREE_SLOTS, SETTLED_MS, WorkDirs, type WorkDirsOptions } from '../src/work-dirs.js';
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

  it('hands an empty slot on as it is: the next attempt gets the same dir, nothing renamed or made', () => {
    const { dir, w } = fresh('reuse');
    const a = w.create('att_a');
    assert.equal(a, join(dir, 'slot-0'));
    const st = lstatSync(a, { bigint: true });
    w.release(a);
    assert.equal(w.freeSlots(), 1);
    const b = w.create('att_b');
    assert.equal(b, a, 'the same slot');
    const again = lstatSync(b, { bigint: true });
    assert.equal(again.ino, st.ino, 'the same directory');
    assert.equal(again.ctimeNs, st.ctimeNs, 'not changed at all (a rename would change its ctime)');
    assert.equal(w.freeSlots(), 0);
    const c = w.create('att_c');
    assert.equal(c, join(dir, 'slot-1'), 'a second slot while the first is held');
    assert.deepEqual(readdirSync(dir).sort(), ['slot-0', 'slot-1']);
  });

  it('removes what a task changed instead: files left, mode changed, the dir swapped for a symlink; its number is not used again', async () => {
    const { dir, w } = fresh('changed');
    const left = w.create('att_left');
    mkdirSync(join(left, 'sub'));
    writeFileSync(join(left, 'sub', 'f'), 'x');
    w.release(left);
    assert.equal(w.freeSlots(), 0, 'a dir with files left in it is not kept');
    const chmodded = w.create('att_mode');
    assert.notEqual(chmodded, left, 'a removed slot\'s number is not handed out again');
    chmodSync(chmodded, 0o777);
    w.release(chmodded);
    assert.equal(w.freeSlots(), 0, 'a dir whose mode changed is not kept');
    // A task that replaced its own dir with a link elsewhere: the link is removed, never what it points at.
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep-me'), 'y');
    const swapped = w.create('att_link');
    rmdirSync(swapped);
    symlinkSync(outside, swapped);
    w.release(swapped);
    assert.equal(w.freeSlots(), 0, 'a symlink in its place is not kept');
    await waitUntil('the changed dirs removed', () => readdirSync(dir).length === 0);
    assert.ok(existsSync(join(outside, 'keep-me')), 'the link\'s target is untouched');
    w.release('/nonexistent/not-a-slot'); // not ours: nothing kept, nothing thrown
    assert.equal(w.freeSlots(), 0);
  });

  it('without reuse every dir is named after its attempt and removed; with keep every dir stays', () => {
    const off = fresh('off', { reuse: false, keep: false });
    const x = off.w.create('att_x');
    assert.equal(x, join(off.dir, 'att_x'));
    off.w.release(x);
    assert.equal(off.w.freeSlots(), 0);
    assert.deepEqual(readdirSync(off.dir), []);
    const keep = fresh('keep', { reuse: true, keep: true });
    keep.w.release(keep.w.create('att_y'));
    assert.deepEqual(readdirSync(keep.dir), ['att_y'], 'kept under the attempt\'s name, even where slots would be used');
  });

  it('removed on the thread pool when asked (sandboxed tasks): empty and full dirs alike, nothing kept', async () => {
    const bg = fresh('background', { reuse: false, keep: false, removeInBackground: true });
    const empty = bg.w.create('att_empty');
    const full = bg.w.create('att_full');
    mkdirSync(join(full, 'sub'));
    writeFileSync(join(full, 'sub', 'f'), 'x');
    bg.w.release(empty);
    bg.w.release(full);
    assert.equal(bg.w.freeSlots(), 0);
    await waitUntil('both dirs removed', () => readdirSync(bg.dir).length === 0);
  });

  it(`keeps at most ${MAX_FREE_SLOTS} free slots`, () => {
    const { dir, w } = fresh('cap');
    const made = Array.from({ length: MAX_FREE_SLOTS + 5 }, (_, i) => w.create(`att_${i}`));
    assert.equal(new Set(made).size, made.length, 'a slot each');
    for (const d of made) w.release(d);
    assert.equal(w.freeSlots(), MAX_FREE_SLOTS);
    assert.equal(readdirSync(dir).length, MAX_FREE_SLOTS, 'the rest were removed');
  });

  it('leftovers of an earlier run are dropped at start, full ones too, and new slots are numbered above them; nothing else is touched', async () => {
    const { dir, w } = fresh('leftovers');
    mkdirSync(join(dir, 'slot-3'));
    mkdirSync(join(dir, 'slot-7'));
    writeFileSync(join(dir, 'slot-7', 'partial-output'), 'x'); // its task was running when the agent stopped
    mkdirSync(join(dir, '.spare-2')); // an agent from before slots
    mkdirSync(join(dir, 'att_stale'));
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    w.dropLeftovers();
    assert.ok(!existsSync(join(dir, 'slot-7')), 'the full slot\'s name is free at once');
    await waitUntil('the leftovers removed', () => readdirSync(dir).sort().join() === 'att_stale,notes.txt');
    assert.equal(w.create('att_new'), join(dir, 'slot-8'));
    assert.equal(w.freeSlots(), 0);
  });

  it('a name taken under it is skipped', () => {
    const { dir, w } = fresh('taken');
    mkdirSync(join(dir, 'slot-0'));
    assert.equal(w.create('att_a'), join(dir, 'slot-1'));
  });

  // Where the file system keeps ctimes (ext4, tmpfs, overlayfs…: every machine the tests run on, said below), a slot
  // proved empty with a settled ctime is checked with an lstat alone; any change to it since shows in its ctime.
  const ctimes = keepsCtimes(tmpdir());
  it(`an empty slot is read once, then checked by its ctime alone; a change since is always read (${tmpdir()} ${ctimes ? 'keeps ctimes' : 'is not one whose ctimes are trusted: every check reads'})`, async () => {
    const dir = join(root, 'ctime');
    mkdirSync(dir);
    // A clock a minute ahead: every ctime is settled (the guard against a change in the proof's tick is tested below).
    const w = new WorkDirs(dir, { reuse: true, keep: false }, () => Date.now() + 60_000);
    const expect = (reads: number, what: string): void => assert.equal(w.fullChecks, ctimes ? reads : w.fullChecks, what);
    const a = w.create('att_1');
    w.release(a);
    expect(1, 'proved empty with a read');
    for (let i = 0; i < 5; i++) w.release(w.create(`att_again_${i}`));
    expect(1, 'unchanged since: no read');
    assert.equal(w.freeSlots(), 1);

    // A file left behind, the dir's times then put back as they were: its ctime still moved, and it is read.
    const before = lstatSync(a);
    assert.equal(w.create('att_left'), a);
    writeFileSync(join(a, 'left-behind'), 'x');
    utimesSync(a, before.atime, before.mtime);
    w.release(a);
    expect(2, 'a changed slot is read');
    assert.equal(w.freeSlots(), 0, 'and not handed on');
    await waitUntil('the full slot removed', () => !existsSync(a));

    // A file made and removed again leaves the slot empty: read, handed on, proved again.
    const b = w.create('att_b');
    w.release(b);
    const reads = w.fullChecks;
    assert.equal(w.create('att_tmp'), b);
    writeFileSync(join(b, 'tmp'), 'x');
    unlinkSync(join(b, 'tmp'));
    w.release(b);
    expect(reads + 1, 'changed, so read');
    assert.equal(w.freeSlots(), 1, 'empty again: handed on');
    w.release(w.create('att_after'));
    expect(reads + 1, 'and proved again by that read');

    // A slot replaced by another empty dir of the same name (a new inode, or a reused number with a new ctime).
    const c = w.create('att_swap');
    rmdirSync(c);
    mkdirSync(c);
    writeFileSync(join(c, 'in-the-new-one'), 'x');
    w.release(c);
    assert.equal(w.freeSlots(), 0, 'a swapped dir with a file in it is not handed on');
  });

  it(`a ctime younger than ${SETTLED_MS} ms at the proof is not trusted: a change in the same clock tick is still seen`, async () => {
    const dir = join(root, 'settle');
    mkdirSync(dir);
    const w = new WorkDirs(dir, { reuse: true, keep: false });
    const a = w.create('att_1');
    w.release(a); // made just now: read, not proved
    assert.equal(w.create('att_2'), a);
    writeFileSync(join(a, 'same-tick'), 'x'); // most likely within the same tick of the kernel's coarse clock
    w.release(a);
    assert.equal(w.freeSlots(), 0, 'the file written right after the first check was seen');
    assert.equal(w.fullChecks, 2, 'both checks read the slot');
    const b = w.create('att_3');
    w.release(b);
    await new Promise((r) => setTimeout(r, SETTLED_MS + 30));
    w.release(w.create('att_4')); // read: its ctime is settled now, so this read proves it
    const reads = w.fullChecks;
    assert.equal(reads, 4);
    w.release(w.create('att_5'));
    assert.equal(w.fullChecks, ctimes ? reads : reads + 1, ctimes ? 'proved: the lstat is enough' : 'read again (ctimes not trusted here)');
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

  it('--isolation none: the next task gets the last one\'s empty slot as it is; a dir left full is not handed on', async () => {
    const state = join(dir, 'none');
    const agent = await startAgent({ coordinatorUrl: url, token: 't', stateDir: state, name: 'none', isolation: 'none' }, { probe: new FakeProbe(facts) });
    try {
      await agent.connected;
      const work = join(state, 'work');
      const first = await runTask(probe);
      assert.match(first, new RegExp(`pwd=${join(work, 'slot-0')} entries=0`));
      const second = await runTask(probe);
      const ino = (s: string): string => /ino=(\d+)/.exec(s)![1]!;
      assert.equal(ino(second), ino(first), `the same dir, handed on (${first.trim()} / ${second.trim()})`);
      assert.match(second, new RegExp(`pwd=${join(work, 'slot-0')} entries=0`), 'the same slot, empty');
      // Once its ctime is settled, the slot is proved empty by the next release and then checked by its ctime alone
      // (work-dirs.ts): a file a task leaves must still be seen.
      await new Promise((r) => setTimeout(r, SETTLED_MS + 30));
      await runTask(probe);
      await runTask('echo data > left-behind');
      await waitUntil('the full dir removed', () => !existsSync(join(work, 'slot-0')));
      const after = await runTask(probe);
      assert.match(after, /entries=0/, 'what a task left never reaches the next one');
    } finally {
      await agent.stop();
    }
  });

  it('with the sandbox every task gets a fresh dir named after its attempt and nothing is kept', async (t) => {
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
      for (let i = 0; i < 2; i++) assert.match(await runTask(probe), new RegExp(`pwd=${join(work, `att_${String(seq).padStart(26, '0')}`)} entries=0`));
      await waitUntil('the dirs removed', () => readdirSync(work).length === 0);
    } finally {
      await agent.stop();
    }
  });
});
