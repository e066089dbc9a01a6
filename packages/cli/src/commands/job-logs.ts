import type { Command } from 'commander';
import { isTerminalTask, ValidationError } from '@dsg/core';
import type { DsgClient } from '@dsg/client';
import { clientFrom, info, printJson, type GlobalFlags } from '../context.js';

/** Without --task, at most this many tasks' logs are printed. */
const MAX_TASKS_SHOWN = 100;
import { parseIndexFlag } from './parse-flags.js';

export function registerLogs(program: Command, globals: () => GlobalFlags): void {
  program
    .command('logs')
    .description("print a task's output (stdout and stderr, interleaved as written)")
    .argument('<id>', 'job id')
    .option('-t, --task <n>', 'task index (needed for jobs with more than one task when following)')
    .option('-a, --attempt <n>', 'attempt number or id (default: the latest)')
    .option('-f, --follow', 'keep printing as the task writes, until it ends')
    .option('--json', 'print the LogChunkV1 (without --follow)')
    .addHelpText('after', '\nExamples:\n  dsg logs job_01jd… --task 3\n  dsg logs job_01jd… --task 0 --follow\n  dsg logs job_01jd…            (every task, with ==> task N <== headers)')
    .action(async (id: string, opts: { task?: string; attempt?: string; follow?: boolean; json?: boolean }) => {
      const client = clientFrom(globals());
      const job = await client.getJob(id);
      let task = opts.task === undefined ? undefined : parseIndexFlag(opts.task);
      if (task === undefined && job.taskCount === 1) task = 0;
      if (task !== undefined && task >= job.taskCount)
        throw new ValidationError([{ path: '--task', message: `the job has ${job.taskCount} task(s), numbered 0 to ${job.taskCount - 1}` }]);
      if (opts.follow) {
        if (task === undefined) throw new ValidationError([{ path: '--task', message: `this job has ${job.taskCount} tasks: choose one to follow with --task N` }]);
        return follow(client, id, task, opts.attempt);
      }
      if (task !== undefined) {
        const chunk = await readAll(client, id, task, opts.attempt);
        if (opts.json) return printJson(chunk);
        process.stdout.write(chunk.data);
        return;
      }
      const shown = Math.min(job.taskCount, MAX_TASKS_SHOWN);
      for (let i = 0; i < shown; i++) {
        const chunk = await readAll(client, id, i, opts.attempt);
        process.stdout.write(`${i > 0 ? '\n' : ''}==> task ${i} <==\n${chunk.data}`);
      }
      if (job.taskCount > shown) info(`(showed the first ${shown} of ${job.taskCount} tasks; pick one with --task N)`);
    });
}

async function readAll(client: DsgClient, id: string, task: number, attempt?: string) {
  let data = '';
  let offset = 0;
  for (;;) {
    const c = await client.getLogs(id, task, { offset, ...(attempt ? { attempt } : {}) });
    data += c.data;
    if (c.nextOffset === offset) return { ...c, data, offset: 0 };
    offset = c.nextOffset;
  }
}

async function follow(client: DsgClient, id: string, task: number, attempt?: string): Promise<void> {
  let offset = 0;
  let attemptId: string | null = null;
  for (;;) {
    const c = await client.getLogs(id, task, { offset, ...(attempt ? { attempt } : {}) });
    if (c.attemptId !== attemptId) {
      if (attemptId !== null) {
        // The task is being retried: start over with the new attempt's log.
        process.stdout.write(`\n[dsg] task ${task}: new attempt ${c.attemptId}\n`);
        attemptId = c.attemptId;
        offset = 0;
        continue;
      }
      attemptId = c.attemptId;
    }
    process.stdout.write(c.data);
    offset = c.nextOffset;
    if (c.complete && isTerminalTask((await client.getTask(id, task)).state)) return;
    if (c.data.length === 0) await new Promise((r) => setTimeout(r, 500));
  }
}
