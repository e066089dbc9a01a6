import type { Command } from 'commander';
import { jobSpecJsonSchema, workflowSpecJsonSchema } from '@dsg/core';
import { print, printJson } from '../context.js';
import { formatSize } from '../format.js';
import { collectInputs, loadSpecFile, parseSetFlags } from '../spec-file.js';

export function registerSpec(program: Command): void {
  const spec = program.command('spec').description('job spec tools');
  spec
    .command('check')
    .description('validate a spec file and its inputs without submitting it')
    .argument('<file>', 'job spec (.yaml, .yml or .json)')
    .option('--json', 'print the compiled spec as JSON')
    .option('--set <NAME=VALUE>', 'a parameter value, as at submit (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action(async (file: string, opts: { json?: boolean; set: string[] }) => {
      const loaded = await loadSpecFile(file, parseSetFlags(opts.set));
      const inputs = await collectInputs(loaded);
      if (opts.json) return printJson(loaded.workflow ?? loaded.compiled);
      if (loaded.workflow) {
        const wf = loaded.workflow;
        print(`${file}: ok — workflow ${wf.name}, ${wf.stages.length} stage${wf.stages.length === 1 ? '' : 's'}, ${inputs.length} input file${inputs.length === 1 ? '' : 's'}`);
        for (const st of wf.stages) {
          const n = st.job.taskCount;
          const tasks = st.job.fanOut.kind === 'files' ? `one task per output file of ${st.job.fanOut.from}` : st.job.fanOut.kind === 'lines' ? 'one task per line' : `${n} task${n === 1 ? '' : 's'}`;
          print(`  ${st.name}: ${tasks}${st.needs.length ? `, after ${st.needs.join(', ')}` : ''}${st.each ? ` (task by task with ${st.each})` : ''}`);
        }
        return;
      }
      const c = loaded.compiled!;
      print(`${file}: ok — ${c.taskCount} task(s), ${c.resources.cpuMillis / 1000} cores and ${formatSize(c.resources.memoryBytes)} each, ` +
        `${inputs.length} input file(s), timeout ${c.timeoutMs / 1000}s, retries ${c.retries}`);
    });
  spec
    .command('schema')
    .description('print the JSON Schema of the job spec, or with --workflow of the workflow spec (for editors)')
    .option('--workflow', 'the workflow spec schema')
    .action((opts: { workflow?: boolean }) => printJson(opts.workflow ? workflowSpecJsonSchema() : jobSpecJsonSchema()));
}
