// Specs that are valid in form but could never be started as a process are refused at submit, with a path and a
// reason; specs at the limits really start (checked against this machine's kernel with real processes).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { compileJobSpec, MAX_ARG_BYTES, MAX_ENV_VARS, MAX_EXEC_BYTES, utf8Length, ValidationError, type Issue } from '@dsg/core';

function issuesOf(input: unknown): Issue[] {
  try {
    compileJobSpec(input);
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected ValidationError, got ${String(e)}`);
    return [...e.issues];
  }
  assert.fail('expected the spec to be rejected');
}

const KiB = 1024;

describe('spawn limits at submit', () => {
  it('refuses a script over 127 KiB (Linux: 128 KiB per argument), saying how to run a big script instead', () => {
    const [i, ...rest] = issuesOf({ name: 'big', script: `echo ${'x'.repeat(130 * KiB)}` });
    assert.equal(rest.length, 0);
    assert.equal(i!.path, 'script');
    assert.match(i!.message, /^is 131 KiB; a script can be at most 127 KiB .* list it in inputs/);
    // Multibyte characters count as their UTF-8 bytes.
    assert.equal(issuesOf({ name: 'big', script: `echo ${'é'.repeat(65 * KiB)}` })[0]!.path, 'script');
  });

  it('refuses NUL bytes anywhere they would reach the process: script, command, env, list values', () => {
    assert.deepEqual(issuesOf({ name: 'n', script: 'echo a\0b' }).map((i) => i.path), ['script']);
    const c = issuesOf({ name: 'n', command: ['echo', 'a\0b'], env: { GOOD: 'x', BAD: 'y\0' }, array: ['ok', 'v\0'] });
    assert.deepEqual(c.map((i) => i.path), ['command[1]', 'env.BAD', 'array[1]']);
    assert.match(c[0]!.message, /NUL byte/);
  });

  it('refuses one argument, one env variable or one list value over 127 KiB', () => {
    const big = 'y'.repeat(MAX_ARG_BYTES + 1);
    assert.deepEqual(issuesOf({ name: 'a', command: ['echo', big] }).map((i) => i.path), ['command[1]']);
    assert.deepEqual(issuesOf({ name: 'a', command: ['true'], env: { BIG: big } }).map((i) => i.path), ['env.BIG']);
    const v = issuesOf({ name: 'a', command: ['true'], array: ['small', big] });
    assert.deepEqual(v.map((i) => i.path), ['array[1]']);
    assert.match(v[0]!.message, /DSG_ARRAY_VALUE/);
  });

  it(`refuses more than ${MAX_ENV_VARS} env variables (100,000 here)`, () => {
    const env = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`V${i}`, '1']));
    const issues = issuesOf({ name: 'e', command: ['true'], env });
    assert.deepEqual(issues.map((i) => i.path), ['env', 'env'], 'too many, and too big in total');
    assert.equal(issues[0]!.message, `sets 100000 variables; at most ${MAX_ENV_VARS}. Pass large data in an input file instead`);
    const ok = Object.fromEntries(Array.from({ length: MAX_ENV_VARS }, (_, i) => [`V${i}`, '1']));
    assert.equal(Object.keys(compileJobSpec({ name: 'e', command: ['true'], env: ok }).env).length, MAX_ENV_VARS);
  });

  it('refuses arguments and environment that add up to more than 1 MiB, though each part is small enough', () => {
    const part = 'z'.repeat(120 * KiB);
    const issues = issuesOf({ name: 't', command: ['echo', ...Array.from({ length: 9 }, () => part)] });
    assert.deepEqual(issues.map((i) => i.path), ['command']);
    assert.match(issues[0]!.message, /add up to 1\.1 MiB; at most 1\.0 MiB can be passed/);
    const envHeavy = issuesOf({ name: 't', command: ['true'], env: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`P${i}`, part])) });
    assert.deepEqual(envHeavy.map((i) => i.path), ['env']);
  });

  it('counts UTF-8 bytes', () => {
    assert.deepEqual(['a', 'é', '€', '😀', '\ud800'].map(utf8Length), [1, 2, 3, 4, 3]);
  });

  it('what it accepts at the limits really starts here, and what it refuses really does not', () => {
    // A script of exactly the limit, through /bin/sh -c, with an environment filling the rest of the total.
    const script = `: ${'s'.repeat(MAX_ARG_BYTES - 2)}`;
    const fill = 'v'.repeat(MAX_ARG_BYTES - 4);
    const env: Record<string, string> = {};
    for (let i = 0; utf8Length(script) + (i + 1) * (MAX_ARG_BYTES + 9) < MAX_EXEC_BYTES - 4 * KiB; i++) env[`F${i}`] = fill;
    const c = compileJobSpec({ name: 'edge', script, env });
    assert.equal(c.run.kind, 'script');
    const ran = spawnSync('/bin/sh', ['-c', script], { env: { PATH: '/usr/bin:/bin', ...env, DSG_TASK_INDEX: '0' } });
    assert.equal(ran.error, undefined);
    assert.equal(ran.status, 0);
    // One byte more than the kernel takes in one argument: refused by the kernel, and by the spec check first.
    const tooBig = `: ${'s'.repeat(128 * KiB)}`;
    assert.equal((spawnSync('/bin/sh', ['-c', tooBig]).error as NodeJS.ErrnoException | undefined)?.code, 'E2BIG');
    assert.equal(issuesOf({ name: 'edge', script: tooBig })[0]!.path, 'script');
  });
});
