import type { Command } from 'commander';
import { jobSpecJsonSchema } from '@dsg/core';
import { print, printJson } from '../context.js';
import { formatSize } from '../format.js';
import { collectInputs, loadSpecFile } from '../spec-file.js';

export function registerSpec(program: Command): void {
  const spec = program.command('spec').description('job spec tools');
  spec
    .command('check')
    .description('validate a spec file and its inputs without submitting it')
    .argument('<file>', 'job spec (.yaml, .yml or .json)')
    .option('--json', 'print the compiled spec as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const loaded = await loadSpecFile(file);
      const inputs = await collectInputs(loaded);
      if (opts.json) return printJson(loaded.compiled);
      const c = loaded.compiled;
      print(`${file}: ok — ${c.taskCount} task(s), ${c.resources.cpuMillis / 1000} cores and ${formatSize(c.resources.memoryBytes)} each, ` +
        `${inputs.length} input file(s), timeout ${c.timeoutMs / 1000}s, retries ${c.retries}`);
    });
  spec
    .command('schema')
    .description('print the JSON Schema of the job spec (for editors)')
    .action(() => printJson(jobSpecJsonSchema()));
}
