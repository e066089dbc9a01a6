import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileJobSpec, ValidationError, type Issue } from '@dsg/core';

function issuesOf(input: unknown): Issue[] {
  try {
    compileJobSpec(input);
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected ValidationError, got ${String(e)}`);
    return [...e.issues];
  }
  assert.fail('expected the spec to be rejected');
}

describe('compileJobSpec', () => {
  it('compiles the README example with defaults applied', () => {
    const c = compileJobSpec({
      name: 'pi-sweep',
      script: 'python3 pi.py --seed "$DSG_TASK_INDEX" > "out/pi-$DSG_TASK_INDEX.json"',
      array: 100,
      resources: { cpu: 1, memory: '256Mi' },
      inputs: ['pi.py'],
      outputs: ['out/*.json'],
      timeout: '5m',
      retries: 2,
      env: { SAMPLES: '1000000' },
    });
    assert.equal(c.taskCount, 100);
    assert.equal(c.arrayValues, null);
    assert.deepEqual(c.resources, { cpuMillis: 1000, memoryBytes: 256 * 1024 * 1024, gpus: 0, diskBytes: 0 });
    assert.equal(c.timeoutMs, 300_000);
    assert.equal(c.retries, 2);
    assert.deepEqual(c.run, { kind: 'script', script: 'python3 pi.py --seed "$DSG_TASK_INDEX" > "out/pi-$DSG_TASK_INDEX.json"' });
    assert.deepEqual(c.env, { SAMPLES: '1000000' });
  });

  it('accepts a command and a list sweep, stringifying values', () => {
    const c = compileJobSpec({ name: 'sim', command: ['python3', 'sim.py'], array: [0.1, 'b', true], resources: { cpu: 0.5, memory: '1G' } });
    assert.equal(c.taskCount, 3);
    assert.deepEqual(c.arrayValues, ['0.1', 'b', 'true']);
    assert.equal(c.resources.cpuMillis, 500);
    assert.equal(c.resources.memoryBytes, 1e9);
    assert.deepEqual(c.run, { kind: 'command', argv: ['python3', 'sim.py'] });
    assert.equal(c.timeoutMs, 3_600_000);
  });

  const bad: Array<[string, unknown, string, RegExp]> = [
    ['bare memory number', { name: 'x', script: 'true', resources: { memory: 512 } }, 'resources.memory', /expected a size like 512Mi/],
    ['bad memory unit', { name: 'x', script: 'true', resources: { memory: '512Q' } }, 'resources.memory', /expected a size like 512Mi/],
    ['bad duration', { name: 'x', script: 'true', timeout: '5 minutes' }, 'timeout', /expected a duration/],
    ['unknown top field', { name: 'x', script: 'true', retires: 2 }, 'retires', /unknown field \(did you mean "retries"\?\)/],
    ['unknown resources field', { name: 'x', script: 'true', resources: { cpus: 2 } }, 'resources.cpus', /did you mean "cpu"/],
    ['empty script', { name: 'x', script: '   ' }, 'script', /non-empty script/],
    ['empty command', { name: 'x', command: [] }, 'command', /non-empty command/],
    ['empty program', { name: 'x', command: [''] }, 'command', /program/],
    ['neither script nor command', { name: 'x' }, 'script', /expected a script/],
    ['both script and command', { name: 'x', script: 'a', command: ['b'] }, 'command', /either script or command/],
    ['negative cpu', { name: 'x', script: 'a', resources: { cpu: -1 } }, 'resources.cpu', /greater than 0/],
    ['array zero', { name: 'x', script: 'a', array: 0 }, 'array', /task count/],
    ['array of objects', { name: 'x', script: 'a', array: [{}] }, 'array', /task count|array value/],
    ['absolute input', { name: 'x', script: 'a', inputs: ['/etc/passwd'] }, 'inputs[0]', /relative/],
    ['dotdot output', { name: 'x', script: 'a', outputs: ['../x'] }, 'outputs[0]', /relative/],
    ['bad env name', { name: 'x', script: 'a', env: { 'A-B': '1' } }, 'env.A-B', /environment variable names/],
    ['reserved env', { name: 'x', script: 'a', env: { DSG_TASK_INDEX: '1' } }, 'env.DSG_TASK_INDEX', /set by the grid/],
    ['bad name', { name: 'has space', script: 'a' }, 'name', /letters, digits/],
    ['missing name', { script: 'a' }, 'name', /name/],
    ['bad version', { version: 2, name: 'x', script: 'a' }, 'version', /version: 1/],
    ['retries too many', { name: 'x', script: 'a', retries: 100 }, 'retries', /at most 20/],
    ['fractional gpus', { name: 'x', script: 'a', resources: { gpus: 0.5 } }, 'resources.gpus', /whole number/],
  ];
  for (const [what, input, path, message] of bad) {
    it(`rejects ${what} at ${path}`, () => {
      const issues = issuesOf(input);
      const hit = issues.find((i) => i.path === path);
      assert.ok(hit, `no issue at ${path}; got ${JSON.stringify(issues)}`);
      assert.match(hit.message, message);
    });
  }

  it('reports every problem at once, and the error message names each path', () => {
    try {
      compileJobSpec({ name: 'x', script: 'a', timeout: 'soon', resources: { memory: 'lots' }, extra: 1 });
      assert.fail('should throw');
    } catch (e) {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.issues.length, 3);
      assert.match(e.message, /timeout: expected a duration/);
      assert.match(e.message, /resources.memory: expected a size like 512Mi/);
      assert.match(e.message, /extra: unknown field/);
    }
  });

  it('rejects non-objects', () => {
    assert.throws(() => compileJobSpec('name: x'), ValidationError);
    assert.throws(() => compileJobSpec([]), ValidationError);
    assert.throws(() => compileJobSpec(null), ValidationError);
  });
});
