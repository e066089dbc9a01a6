// #SBATCH scripts as jobs: real-world directive styles → a spec core accepts; everything ignored or refused is said.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileJobSpec, ValidationError } from '@dsg/core';
import { isSbatchScript, parseSbatch, slurmMemory, slurmTime } from '../src/sbatch.js';

const script = (...directives: string[]): string => ['#!/bin/bash', ...directives, '', 'module load python', 'python3 run.py', '#SBATCH --mem=999G'].join('\n');

describe('#SBATCH scripts', () => {
  it('reads Slurm sizes and times in every form', () => {
    assert.deepEqual(['4G', '500M', '500', '2048M', '1T', '512K', '1.5G'].map(slurmMemory), ['4Gi', '500Mi', '500Mi', '2Gi', '1024Gi', '1Mi', '1536Mi']);
    assert.equal(slurmMemory('lots'), null);
    assert.deepEqual(['30', '10:30', '02:00:00', '1-0', '1-12:30', '2-01:02:03'].map(slurmTime), [1800, 630, 7200, 86400, 131400, 176523]);
    assert.equal(slurmTime('soon'), null);
  });

  it('turns an array job with throttle, memory, time and an output pattern into a spec', () => {
    const { spec, ignored } = parseSbatch(script('#SBATCH --job-name=fit', '#SBATCH -c 4', '#SBATCH --mem=8G', '#SBATCH -t 1-02:00:00',
      '#SBATCH --array=0-9%3', '#SBATCH -o logs/fit_%A_%a.out', '#SBATCH --partition=gpu', '#SBATCH --mail-type=END --mail-user=a@b.c'), 'fit.sbatch');
    assert.equal(spec['name'], 'fit');
    assert.deepEqual(spec['array'], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(spec['parallelism'], 3);
    assert.deepEqual(spec['resources'], { cpu: 4, memory: '8Gi' });
    assert.equal(spec['timeout'], `${26 * 3600}s`);
    assert.deepEqual(spec['inputs'], ['fit.sbatch']);
    assert.deepEqual(spec['outputs'], [{ path: 'logs/fit_*_*.out', optional: true }]);
    assert.match(String(spec['script']), /export SLURM_ARRAY_TASK_ID="\$DSG_ARRAY_VALUE" SLURM_ARRAY_TASK_COUNT=10 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=9/);
    assert.match(String(spec['script']), /exec '\/bin\/bash' '\.\/fit\.sbatch' > "logs\/fit_\$\{SLURM_ARRAY_JOB_ID\}_\$\{SLURM_ARRAY_TASK_ID\}\.out" 2>&1$/);
    assert.deepEqual(ignored.map((l) => l.split(': ')[1]!.split(' ')[0]), ['--partition=gpu', '--mail-type=END', '--mail-user=a@b.c']);
    assert.doesNotThrow(() => compileJobSpec(spec));
  });

  it('reads GPUs from --gres and --gpus, with a type as a model condition', () => {
    assert.deepEqual(parseSbatch(script('#SBATCH --gres=gpu:2'), 'a.sh').spec['resources'], { cpu: 1, gpus: 2 });
    assert.deepEqual(parseSbatch(script('#SBATCH --gres=gpu:a100:1'), 'a.sh').spec['resources'], { cpu: 1, gpu: { count: 1, model: 'a100' } });
    assert.deepEqual(parseSbatch(script('#SBATCH --gpus=rtx4090:2'), 'a.sh').spec['resources'], { cpu: 1, gpu: { count: 2, model: 'rtx4090' } });
    assert.deepEqual(parseSbatch(script('#SBATCH --mem-per-cpu=2G', '#SBATCH --cpus-per-task=3'), 'a.sh').spec['resources'], { cpu: 3, memory: '6Gi' });
  });

  it('stops at the first command, as Slurm does, and takes #DSG inputs and outputs', () => {
    const { spec } = parseSbatch(['#!/usr/bin/env python3', '#SBATCH --time=5', '#DSG --input data/', '#DSG --output results/*.csv', 'print(1)', '#SBATCH --time=99'].join('\n'), 'job.py');
    assert.equal(spec['timeout'], '300s');
    assert.deepEqual(spec['inputs'], ['job.py', 'data/']);
    assert.deepEqual(spec['outputs'], ['results/*.csv']);
    assert.match(String(spec['script']), /exec '\/usr\/bin\/env' 'python3' '\.\/job\.py'$/);
  });

  it('refuses multi-node, multi-task and unknown directives, naming each line', () => {
    assert.throws(() => parseSbatch(script('#SBATCH --nodes=2', '#SBATCH -n 8', '#SBATCH --frobnicate=1', '#SBATCH --mem=lots'), 'mpi.sbatch'), (e: unknown) => {
      const msgs = (e as ValidationError).issues.map((i) => `${i.path} ${i.message}`);
      assert.equal(msgs.length, 4, msgs.join('\n'));
      assert.ok(msgs.some((m) => /^mpi\.sbatch:4 #SBATCH --frobnicate is not supported/.test(m)));
      assert.ok(msgs.some((m) => /^mpi\.sbatch:2 --nodes=2: a DSG task runs on one machine/.test(m)));
      assert.ok(msgs.some((m) => /^mpi\.sbatch:3 --ntasks=8/.test(m)));
      assert.ok(msgs.some((m) => /^mpi\.sbatch:5 --mem: expected a size/.test(m)));
      return true;
    });
  });

  it('knows a batch script from a spec', () => {
    assert.equal(isSbatchScript('job.sbatch', ''), true);
    assert.equal(isSbatchScript('job.slurm', ''), true);
    assert.equal(isSbatchScript('run.sh', '#!/bin/bash\n#SBATCH -c 2\necho'), true);
    assert.equal(isSbatchScript('run.sh', '#!/bin/bash\necho'), false);
    assert.equal(isSbatchScript('job.yaml', '#!/bin/bash\n#SBATCH -c 2'), false);
  });
});
