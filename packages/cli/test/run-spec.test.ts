// `dsg run` flags → spec: Slurm's --array forms, names from the program, every bad flag named at once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileJobSpec, ValidationError } from '@dsg/core';
import { nameFor, parseArrayFlag, runSpec, type RunFlags } from '../src/run-spec.js';

const none: RunFlags = { env: [], input: [], output: [], constraint: [] };

describe('dsg run', () => {
  it('reads --array as a count, Slurm indexes, ranges with steps, lists and a %N cap', () => {
    const table: Array<[string, number | number[], number | null]> = [
      ['10', 10, null],
      ['10%3', 10, 3],
      ['1-4', [1, 2, 3, 4], null],
      ['0-9:3', [0, 3, 6, 9], null],
      ['1,3,5-7%2', [1, 3, 5, 6, 7], 2],
      ['7', 7, null],
    ];
    for (const [text, array, parallelism] of table) assert.deepEqual(parseArrayFlag(text), { array, parallelism }, text);
  });

  it('refuses bad --array values, saying what it expects', () => {
    for (const bad of ['', '0', '5-1', 'a-b', '1-3%0', '1-3:0', '1--3', '0-200000']) {
      assert.throws(() => parseArrayFlag(bad), (e: unknown) => e instanceof ValidationError && e.issues[0]!.path === '--array' && /expected a task count like 10/.test(e.message), bad);
    }
  });

  it('names the job after the program, skipping interpreters', () => {
    assert.equal(nameFor(['python3', 'sim.py', '--x'], undefined), 'sim-py');
    assert.equal(nameFor(['./run.sh'], undefined), 'run-sh');
    assert.equal(nameFor(['/usr/bin/env', 'Rscript', 'fit.R'], undefined), 'fit-R');
    assert.equal(nameFor([], 'echo $A'), 'echo');
    assert.equal(nameFor(['___'], undefined), 'run');
  });

  it('GPU flags: --gpu-memory, --gpu-model and --gpu-shared make resources.gpu; a share needs its memory', () => {
    const shared = runSpec(['python3', 'train.py'], { ...none, gpuMemory: '8Gi', gpuShared: true });
    assert.deepEqual(shared['resources'], { gpu: { memory: '8Gi', shared: true } });
    assert.deepEqual(compileJobSpec(shared).gpu, { memoryBytes: 8 * 1024 ** 3, models: null, shared: true, count: 1 });
    assert.deepEqual(runSpec(['x'], { ...none, gpus: '2', gpuModel: 'RTX 4090|A100' })['resources'], { gpu: { count: 2, model: 'RTX 4090|A100' } });
    assert.deepEqual(runSpec(['x'], { ...none, gpus: '1' })['resources'], { gpus: 1 }, 'a plain count stays gpus');
    assert.throws(() => runSpec(['x'], { ...none, gpuShared: true }), (e: unknown) => e instanceof ValidationError && e.issues.some((i) => i.path === '--gpu-shared' && /needs --gpu-memory/.test(i.message)));
    assert.throws(() => runSpec(['x'], { ...none, gpus: '0', gpuModel: 'A100' }), (e: unknown) => e instanceof ValidationError && e.issues.some((i) => i.path === '--gpus'));
  });

  it('makes a spec core accepts, with every flag in its place', () => {
    const spec = runSpec(['python3', 'sim.py'], { ...none, cpus: '2', memory: '1Gi', gpus: '1', timeout: '30m', retries: '2', array: '0-3%2', env: ['SEED=7'], input: ['sim.py'], output: ['out/*'], constraint: ['room=lab2'], project: 'bio', priority: 'high' });
    assert.deepEqual(spec, {
      name: 'sim-py', project: 'bio', command: ['python3', 'sim.py'], array: [0, 1, 2, 3], parallelism: 2,
      resources: { cpu: 2, memory: '1Gi', gpus: 1 }, inputs: ['sim.py'], outputs: ['out/*'], timeout: '30m', retries: 2,
      env: { SEED: '7' }, priority: 'high', constraints: { room: 'lab2' },
    });
    const compiled = compileJobSpec(spec);
    assert.equal(compiled.taskCount ?? 4, 4);
  });

  it('names every bad flag at once', () => {
    assert.throws(() => runSpec(['x'], { ...none, cpus: 'two', retries: '1.5', env: ['NOEQUALS'], array: '3%2', parallelism: '4', wrap: 'echo' }), (e: unknown) => {
      const paths = (e as ValidationError).issues.map((i) => i.path).sort();
      assert.deepEqual(paths, ['--cpus', '--env NOEQUALS', '--parallelism', '--retries', '--wrap']);
      return true;
    });
  });
});
