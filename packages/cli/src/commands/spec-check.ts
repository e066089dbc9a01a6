import type { Command } from 'commander';
import { formatDuration, jobSpecJsonSchema } from '@dsg/core';
import { print, printJson } from '../context.js';
import { formatSize, plural } from '../format.js';
import { collectInputs, loadSpecFile } from '../spec-file.js';

export function registerSpec(program: Command): void {
  const spec = program.command('spec').description('job spec tools');
  spec
    .command('check')
    .description('validate a spec file and its inputs without submitting it')
    .argument('<file>', 'job spec (.yaml, .yml or .json)')
    .option('--json', 'print the compiled spec as JSON')
    .addHelpText('after', '\nExamples:\n  dsg spec check examples/pi/pi.yaml\n  dsg spec check job.yaml --json | jq .taskCount')
    .action(async (file: string, opts: { json?: boolean }) => {
      const loaded = await loadSpecFile(file);
      const inputs = await collectInputs(loaded);
      if (opts.json) return printJson(loaded.compiled);
      const c = loaded.compiled;
      print(`${file}: ok — ${plural(c.taskCount, 'task')}, ${plural(c.resources.cpuMillis / 1000, 'core')} and ${formatSize(c.resources.memoryBytes)} each` +
        `${c.resources.gpus ? ` (+ ${plural(c.resources.gpus, 'GPU')})` : ''}, ${plural(inputs.length, 'input file')}, timeout ${formatDuration(c.timeoutMs)}, ${plural(c.retries, 'retry', 'retries')}`);
    });
  spec
    .command('schema')
    .description('print the JSON Schema of the job spec (for editors); it is JSON already')
    .addHelpText('after', '\nExample:\n  dsg spec schema > job-spec.schema.json')
    .action(() => printJson(jobSpecJsonSchema()));
}
