import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { ValidationError } from '@dsg/core/base';
import type { DsgClient } from '@dsg/client';
import { resolveGiveUpAfter } from '../config.js';
import { clientFrom, GIVE_UP_HELP, info, print, printJson, reconnectorFor, type GlobalFlags } from '../context.js';
import { bold, formatSize, green, plural } from '../format.js';
import { collectInputs, loadSpecFile, loadSpecStdin, parseSetFlags, type LoadedSpec } from '../spec-file.js';
import { workflowTarget } from './workflow.js';
import { jobTarget } from './job-watch.js';
import { waitAndExit } from './wait.js';

export function registerSubmit(program: Command, globals: () => GlobalFlags): void {
  program
    .command('submit')
    .description('submit a job or a workflow (a spec with stages:) from a YAML or JSON file; uploads its inputs')
    .argument('<file>', 'job or workflow spec (.yaml, .yml or .json), or a Slurm batch script (#SBATCH lines; .sbatch, .slurm, or any #! script with them); - reads a spec from standard input')
    .option('--set <NAME=VALUE>', 'set a parameter declared under params: (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('-w, --wait', 'wait for the job to finish, with a progress bar; exit 1 if any task failed')
    .option('--give-up-after <duration>', `with --wait: ${GIVE_UP_HELP}`)
    .option('--json', 'print the job as JSON (the final state with --wait)')
    .option('-q, --quiet', 'print only the job id')
    .addHelpText('after', `
Examples:
  dsg submit examples/pi/pi.yaml --wait
  dsg submit examples/mapreduce/mapreduce.yaml --set SAMPLES=1000000 --wait
  dsg submit job.json --json | jq .id
  python3 make_spec.py | dsg submit - --wait        a spec written by a program
  dsg submit job.sbatch --wait                      a Slurm batch script as it is (#SBATCH directives read)
  JOB=$(dsg submit sweep.yaml -q) && dsg logs $JOB --task 0 --follow

With --wait, exit codes are those of \`dsg wait\`: 0 succeeded · 1 failed or cancelled · 3 the coordinator stayed
unreachable longer than the give-up time (the job lives on: \`dsg wait ID\`) · 130 interrupted.`)
    .action(async (file: string, opts: { wait?: boolean; json?: boolean; quiet?: boolean; giveUpAfter?: string; set: string[] }) => {
      // Bad input is refused before anything is uploaded.
      if (opts.giveUpAfter !== undefined && !opts.wait) throw new ValidationError([{ path: '--give-up-after', message: 'only used with --wait' }]);
      if (opts.wait) resolveGiveUpAfter(opts.giveUpAfter);
      const params = parseSetFlags(opts.set);
      const loaded = file === '-' ? await loadSpecStdin(params) : await loadSpecFile(file, params);
      await submitLoaded(loaded, opts, globals());
    });
}

export interface SubmitOptions {
  readonly wait?: boolean;
  readonly json?: boolean;
  readonly quiet?: boolean;
  readonly giveUpAfter?: string;
}

/** Upload what the coordinator lacks, submit, then print or wait: `dsg submit` and `dsg run` alike. */
export async function submitLoaded(loaded: LoadedSpec, opts: SubmitOptions, flags: GlobalFlags): Promise<void> {
  const params = loaded.params;
  for (const n of loaded.notes ?? []) info(`note: ${n}`);
  const inputs = await collectInputs(loaded);
  const client = clientFrom(flags);
  await uploadMissing(client, inputs, Boolean(opts.json || opts.quiet));
  const files = inputs.map(({ path, sha256, size, mode }) => ({ path, sha256, size, mode }));
  if (loaded.workflow) {
    const { workflow } = await client.submitWorkflow({ spec: loaded.spec, inputs: files, params });
    for (const w of workflow.warnings) info(`warning: ${w}`);
    if (opts.quiet) print(workflow.id);
    else if (!opts.json) {
      info(`${green('submitted')} ${bold(workflow.id)} (workflow ${workflow.name}: ${plural(workflow.stages.length, 'stage')}, ${workflow.stages.map((s) => s.name).join(', ')})`);
      if (!opts.wait) info(`next: dsg wait ${workflow.id}   ·   dsg workflow ${workflow.id}   ·   dsg outputs ${workflow.id} --to results/`);
    }
    if (!opts.wait) {
      if (opts.json) printJson(workflow);
      return;
    }
    const reconnector = reconnectorFor(client, opts.giveUpAfter, `The workflow lives on in the coordinator; \`dsg wait ${workflow.id}\` waits again.`);
    return waitAndExit(workflowTarget(client, workflow.id), workflow, { reconnector, json: Boolean(opts.json), quiet: Boolean(opts.quiet) });
  }
  const { job } = await client.submitJob({ spec: loaded.spec, inputs: files, params });
  for (const w of job.warnings) info(`warning: ${w}`);
  if (opts.quiet) print(job.id);
  else if (!opts.json) {
    info(`${green('submitted')} ${bold(job.id)} (${job.name}, ${plural(job.taskCount, 'task')})`);
    if (!opts.wait) info(`next: dsg wait ${job.id}   ·   dsg job ${job.id}   ·   dsg logs ${job.id}${job.taskCount > 1 ? ' --task 0' : ''} --follow`);
  }
  if (!opts.wait) {
    if (opts.json) printJson(job);
    return;
  }
  const reconnector = reconnectorFor(client, opts.giveUpAfter, `The job lives on in the coordinator; \`dsg wait ${job.id}\` waits again.`);
  await waitAndExit(jobTarget(client, job.id), job, { reconnector, json: Boolean(opts.json), quiet: Boolean(opts.quiet) });
}

async function uploadMissing(client: DsgClient, inputs: Awaited<ReturnType<typeof collectInputs>>, quiet: boolean): Promise<void> {
  const unique = [...new Map(inputs.map((i) => [i.sha256, i])).values()];
  const missing: typeof unique = [];
  for (const i of unique) if (!(await client.hasBlob(i.sha256))) missing.push(i);
  if (missing.length === 0) return;
  const total = missing.reduce((s, i) => s + i.size, 0);
  if (!quiet) info(`uploading ${plural(missing.length, 'input file')} (${formatSize(total)})`);
  for (const i of missing) {
    const body = Readable.toWeb(createReadStream(i.source)) as unknown as ReadableStream<Uint8Array>;
    await client.uploadBlob(i.sha256, body, i.size);
  }
}
