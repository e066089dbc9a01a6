// ProgramLookup (executor/program-lookup.ts): where an isolated task's program is on its PATH, remembered for a
// short while. Real files and modes in a temp dir; the clock is the test's.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ProgramLookup } from '../src/executor/program-lookup.js';

describe('ProgramLookup', () => {
  const root = mkdtempSync(join(tmpdir(), 'dsg-lookup-'));
  chmodSync(root, 0o755);
  after(() => rmSync(root, { recursive: true, force: true }));
  const dir = (name: string, mode = 0o755): string => {
    const d = join(root, name);
    mkdirSync(d, { recursive: true });
    chmodSync(d, mode);
    return d;
  };
  const program = (d: string, name: string, mode = 0o755): string => {
    const f = join(d, name);
    writeFileSync(f, '#!/bin/sh\n');
    chmodSync(f, mode);
    return f;
  };
  let clock = 1_000_000;
  const lookup = (): ProgramLookup => new ProgramLookup(2000, () => clock);

  it('tells a missing program, finds one on PATH, takes a path as it is, and survives odd PATH entries', () => {
    const a = dir('a1');
    const b = dir('b1');
    const notADir = program(root, 'plain-file');
    program(b, 'tool');
    const l = lookup();
    const path = [join(root, 'nonexistent'), notADir, a, '', b].join(':');
    assert.equal(l.missing('tool', root, path), null, 'found in the last directory');
    assert.equal(l.missing('nothere', root, path), 'nothere');
    assert.equal(l.missing(join(b, 'tool'), root, path), null, 'a path is checked as it is');
    assert.equal(l.missing('./tool', b, path), null, 'relative to the working dir');
    assert.equal(l.missing('./nothere', b, path), './nothere');
    assert.equal(l.forOthers(join(b, 'tool'), root, path), null, 'a path is not looked up');
  });

  it('for another user: skips matches it may not run (a private directory on the way, a file not executable by others)', () => {
    const privateDir = dir('private', 0o700);
    const notForOthers = dir('notforothers');
    const open = dir('open');
    program(privateDir, 'run');
    program(notForOthers, 'run', 0o750);
    const good = program(open, 'run');
    const l = lookup();
    const path = [privateDir, notForOthers, open].join(':');
    assert.equal(l.forOthers('run', root, path), good);
    assert.equal(l.missing('run', root, path), null);
    assert.equal(l.forOthers('run', root, [privateDir, notForOthers].join(':')), null, 'none others may run');
  });

  it('remembers a match for ttlMs: a removed one is noticed at once, a new earlier one once the time is up; a miss is never remembered', () => {
    const early = dir('early');
    const late = dir('late');
    const lateTool = program(late, 'x');
    const l = lookup();
    const path = [early, late].join(':');
    assert.equal(l.forOthers('x', root, path), lateTool);
    const earlyTool = program(early, 'x');
    clock += 1000;
    assert.equal(l.forOthers('x', root, path), lateTool, 'within 2 s: the remembered one (checked with one stat)');
    clock += 1500;
    assert.equal(l.forOthers('x', root, path), earlyTool, 'after 2 s: looked up again');
    rmSync(earlyTool);
    assert.equal(l.forOthers('x', root, path), lateTool, 'removed: noticed at once, the next match found');
    chmodSync(lateTool, 0o700);
    assert.equal(l.forOthers('x', root, path), null, 'no longer executable by others: noticed at once');
    assert.equal(l.missing('y', root, path), 'y');
    program(late, 'y');
    assert.equal(l.missing('y', root, path), null, 'installed right after a miss: found at once');
  });

  it('a PATH with a relative entry is looked up in each working dir, never from memory', () => {
    const w1 = dir('w1');
    const w2 = dir('w2');
    mkdirSync(join(w1, 'bin'));
    chmodSync(join(w1, 'bin'), 0o755);
    const t1 = program(join(w1, 'bin'), 'local');
    const l = lookup();
    assert.equal(l.forOthers('local', w1, 'bin:/usr/bin'), t1);
    assert.equal(l.forOthers('local', w2, 'bin:/usr/bin'), null, 'not in the other working dir');
    assert.equal(l.missing('local', w2, 'bin:/usr/bin'), 'local');
  });
});
