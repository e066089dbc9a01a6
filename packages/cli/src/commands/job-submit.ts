import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { isTerminalJob, type JobV1 } from '@dsg/core';
import type { DsgClient } from '@dsg/client';
import { clientFrom, Exit, ExitCode, info, print, printJson, type GlobalFlags } from '../context.js';
import { bold, formatSize, green, red } from '../format.js';
import { collectInputs, loadSpecFile, parseSetFlags } from '../spec-file.js';
import { exitFor, summarizeWorkflow, watchWorkflow } from './workflow.js';
import { watchJob } from './job-watch.js';

export function registerSubmit(program: Command, globals: () => GlobalFlags): void {
  program
    .command('submit')
    .description('submit a job or a workflow (a spec with stages:) from a YAML or JSON file; uploads its inputs')
    .argument('<file>', 'job or workflow spec (.yaml, .yml or .json)')
    .option('--set <NAME=VALUE>', 'set a parameter declared under params: (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('-w, --wait', 'wait for the job to finish, with a progress bar; exit 1 if any task failed')
    .option('--json', 'print the job as JSON (the final state with --wait)')
    .option('-q, --quiet', 'print only the job id')
    .addHelpText('after', `
Examples:
  dsg submit examples/pi/pi.yaml --wait
  dsg submit examples/mapreduce/mapreduce.yaml --set SAMPLES=200000 --wait
  dsg submit job.json --json | jq .id
  JOB=$(dsg submit sweep.yaml -q) && dsg logs $JOB --task 0 --follow`)
    .action(async (file: string, opts: { wait?: boolean; json?: boolean; quiet?: boolean; set: string[] }) => {
      const params = parseSetFlags(opts.set);
      const loaded = await loadSpecFile(file, params);
      const inputs = await collectInputs(loaded);
      const client = clientFrom(globals());
      await uploadMissing(client, inputs, Boolean(opts.json || opts.quiet));
      if (loaded.workflow) {
        const { workflow } = await client.submitWorkflow({
          spec: loaded.spec,
          inputs: inputs.map(({ path, sha256, size, mode }) => ({ path, sha256, size, mode })),
          params,
        });
        if (opts.quiet) print(workflow.id);
        else if (!opts.json) {
          info(`${green('submitted')} ${bold(workflow.id)} (workflow ${workflow.name}: ${workflow.stages.length} stages, ${workflow.stages.map((s) => s.name).join(' → ')})`);
          if (!opts.wait) info(`next: dsg workflow ${workflow.id}   ·   dsg outputs ${workflow.id} --to results/   ·   dsg submit … --wait`);
        }
        if (!opts.wait) {
          if (opts.json) printJson(workflow);
          return;
        }
        const final = await watchWorkflow(client, workflow, { quiet: Boolean(opts.json || opts.quiet) });
        if (opts.json) printJson(final);
        else if (!opts.quiet) summarizeWorkflow(final);
        return exitFor(final.state);
      }
      const { job } = await client.submitJob({
        spec: loaded.spec,
        inputs: inputs.map(({ path, sha256, size, mode }) => ({ path, sha256, size, mode })),
        params,
      });
      for (const w of job.warnings) info(`warning: ${w}`);
      if (opts.quiet) print(job.id);
      else if (!opts.json) {
        info(`${green('submitted')} ${bold(job.id)} (${job.name}, ${job.taskCount} task${job.taskCount === 1 ? '' : 's'})`);
        if (!opts.wait) info(`next: dsg job ${job.id}   ·   dsg logs ${job.id}${job.taskCount > 1 ? ' --task 0' : ''} --follow   ·   dsg submit … --wait`);
      }
      if (!opts.wait) {
        if (opts.json) printJson(job);
        return;
      }
      const final = await watchJob(client, job, { quiet: Boolean(opts.json || opts.quiet) });
      if (opts.json) printJson(final);
      else if (!opts.quiet) summarize(final);
      if (!isTerminalJob(final.state)) throw new ExitCode(130); // interrupted while waiting
      if (final.state !== 'succeeded') throw new ExitCode(Exit.failed);
    });
}

async function uploadMissing(client: DsgClient, inputs: Awaited<ReturnType<typeof collectInputs>>, quiet: boolean): Promise<void> {
  const unique = [...new Map(inputs.map((i) => [i.sha256, i])).values()];
  const missing: typeof unique = [];
  for (const i of unique) if (!(await client.hasBlob(i.sha256))) missing.push(i);
  if (missing.length === 0) return;
  const total = missing.reduce((s, i) => s + i.size, 0);
  if (!quiet) info(`uploading ${missing.length} input file${missing.length === 1 ? '' : 's'} (${formatSize(total)})`);
  for (const i of missing) {
    const body = Readable.toWeb(createReadStream(i.source)) as unknown as ReadableStream<Uint8Array>;
    await client.uploadBlob(i.sha256, body, i.size);
  }
}

export function summarize(job: JobV1): void {
  const c = job.counts;
  const line = `${job.id} ${job.state}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled of ${job.taskCount}`;
  info(job.state === 'succeeded' ? green(line) : red(line));
  if (job.state === 'failed') info(`see why: dsg job ${job.id}   ·   dsg logs ${job.id} --task <N>`);
  if (job.state === 'succeeded') info(`outputs: dsg outputs ${job.id} --to results/`);
}
