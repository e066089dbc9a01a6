import type { Command } from 'commander';
import { formatDuration, jobSpecJsonSchema, workflowSpecJsonSchema } from '@dsg/core';
import { print, printJson } from '../context.js';
import { formatSize, plural } from '../format.js';
import { collectInputs, loadSpecFile, parseSetFlags } from '../spec-file.js';

export function registerSpec(program: Command): void {
  const spec = program.command('spec').description('job spec tools');
  spec
    .command('check')
    .description('validate a spec file and its inputs without submitting it')
    .argument('<file>', 'job or workflow spec (.yaml, .yml or .json)')
    .option('--json', 'print the compiled spec as JSON')
    .addHelpText('after', '\nExamples:\n  dsg spec check examples/pi/pi.yaml\n  dsg spec check job.yaml --json | jq .taskCount')
    .option('--set <NAME=VALUE>', 'a parameter value, as at submit (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action(async (file: string, opts: { json?: boolean; set: string[] }) => {
      const loaded = await loadSpecFile(file, parseSetFlags(opts.set));
      const inputs = await collectInputs(loaded);
      if (opts.json) return printJson(loaded.workflow ?? loaded.compiled);
      if (loaded.workflow) {
        const wf = loaded.workflow;
        print(`${file}: ok — workflow ${wf.name}, ${plural(wf.stages.length, 'stage')}, ${plural(inputs.length, 'input file')}`);
        for (const st of wf.stages) {
          const f = st.job.fanOut;
          const tasks = f.kind === 'files' ? `one task per output file of ${f.from}` : f.kind === 'lines' ? 'one task per line of its list' : plural(st.job.taskCount, 'task');
          print(`  ${st.name}: ${tasks}${st.needs.length ? `, after ${st.needs.join(', ')}` : ''}${st.each ? ` (task by task with ${st.each})` : ''}`);
        }
        return;
      }
      const c = loaded.compiled!;
      print(`${file}: ok — ${plural(c.taskCount, 'task')}, ${plural(c.resources.cpuMillis / 1000, 'core')} and ${formatSize(c.resources.memoryBytes)} each` +
        `${c.gpu?.shared ? ` (+ ${plural(c.gpu.count ?? 1, 'shared GPU')}, ${formatSize(c.gpu.memoryBytes ?? 0)} GPU memory each)` : c.resources.gpus ? ` (+ ${plural(c.resources.gpus, 'GPU')})` : ''}, ${plural(inputs.length, 'input file')}, timeout ${formatDuration(c.timeoutMs)}, ${plural(c.retries, 'retry', 'retries')}`);
    });
  spec
    .command('schema')
    .description('print the JSON Schema of the job spec, or with --workflow of the workflow spec (for editors)')
    .option('--workflow', 'the workflow spec schema')
    .addHelpText('after', '\nExample:\n  dsg spec schema > job-spec.schema.json\n  dsg spec schema --workflow > workflow-spec.schema.json')
    .action((opts: { workflow?: boolean }) => printJson(opts.workflow ? workflowSpecJsonSchema() : jobSpecJsonSchema()));
}
