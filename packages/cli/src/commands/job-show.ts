import type { Command } from 'commander';
import { TASK_STATES, formatSize, type TaskState } from '@dsg/core';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { ago, bold, colorState, dim, red, table, yellow } from '../format.js';
import { parseState } from './parse-flags.js';

export function registerJobShow(program: Command, globals: () => GlobalFlags): void {
  program
    .command('job')
    .description('show one job: state, progress, resources, failed tasks')
    .argument('<id>', 'job id')
    .option('--json', 'print the JobV1 as JSON')
    .addHelpText('after', '\nExample:\n  dsg job job_01jd…')
    .action(async (id: string, opts: { json?: boolean }) => {
      const client = clientFrom(globals());
      const job = await client.getJob(id);
      if (opts.json) return printJson(job);
      const c = job.counts;
      print(`${bold(job.name)} ${dim(job.id)}`);
      print(`state      ${colorState(job.state)}${job.cancelRequested && job.state !== 'cancelled' ? yellow(' (cancelling)') : ''}`);
      print(`tasks      ${job.taskCount}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.running + c.assigned} running, ${c.queued} queued, ${c.cancelled} cancelled`);
      print(`resources  ${job.resources.cpu} cores, ${formatSize(job.resources.memoryBytes)} memory${job.resources.gpus ? `, ${job.resources.gpus} GPUs` : ''} per task`);
      print(`submitted  ${ago(job.createdAt)}${job.finishedAt ? `, finished ${ago(job.finishedAt)}` : ''}`);
      if (job.waiting && !job.waiting.never) print(`waiting    ${job.waiting.reason}`);
      for (const w of job.warnings) print(yellow(`warning    ${w}`));
      if (c.failed > 0) {
        const failed = (await client.listTasks(id, { state: 'failed', limit: 10 })).items;
        print(`\n${red('failed tasks')}${c.failed > failed.length ? ` (first ${failed.length} of ${c.failed})` : ''}:`);
        print(table(['TASK', 'VALUE', 'ATTEMPTS', 'WHY'], failed.map((t) => [String(t.index), t.arrayValue ?? '', String(t.attempts), t.failure?.message ?? ''])));
        print(dim(`\nlogs: dsg logs ${id} --task ${failed[0]?.index ?? 0}`));
      }
    });

  program
    .command('tasks')
    .description('list the tasks of a job')
    .argument('<id>', 'job id')
    .option('--state <state>', `only tasks in this state (${TASK_STATES.join(', ')})`)
    .option('--json', 'print JSON: { items: TaskV1[] }')
    .action(async (id: string, opts: { state?: string; json?: boolean }) => {
      const client = clientFrom(globals());
      const state = opts.state === undefined ? undefined : parseState<TaskState>(opts.state, TASK_STATES, '--state');
      const items = await client.allTasks(id, state ? { state } : {});
      if (opts.json) return printJson({ items });
      print(table(['TASK', 'VALUE', 'STATE', 'ATTEMPTS', 'EXIT', 'NODE', 'WHY'], items.map((t) => [
        String(t.index), t.arrayValue ?? '', colorState(t.state), String(t.attempts), t.exitCode === null ? '' : String(t.exitCode), t.nodeId ?? '', t.failure?.message ?? '',
      ])));
    });
}
