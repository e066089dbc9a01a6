import type { Command } from 'commander';
import { isTerminalTask, ValidationError } from '@dsg/core/base';
import type { JobV1, LogChunkV1, TaskV1 } from '@dsg/core';
import type { DsgClient } from '@dsg/client';
import { resolveGiveUpAfter } from '../config.js';
import { clientFrom, GIVE_UP_HELP, info, printJson, reconnectorFor, type GlobalFlags } from '../context.js';
import { plural } from '../format.js';
import type { Reconnector } from '../reconnect.js';
import { parseIndexFlag } from './parse-flags.js';

/** Without --task, at most this many tasks' logs are printed. */
const MAX_TASKS_SHOWN = 100;

/**
 * Why a task's log is empty, for stderr (stdout stays the log itself, clean for pipes): never ran, not yet, or
 * ran and wrote nothing. `attempt` is the --attempt the user asked for, if any.
 */
export function emptyLogNote(job: Pick<JobV1, 'id'>, task: Pick<TaskV1, 'index' | 'state' | 'attempts' | 'startedAt' | 'failure'>, chunk: Pick<LogChunkV1, 'attemptId' | 'complete'>, attempt?: string): string {
  const t = `task ${task.index}`;
  if (attempt !== undefined) return chunk.complete ? `${t}, attempt ${attempt}, wrote no output` : `${t}, attempt ${attempt}, has written no output yet`;
  const why = task.failure ? `: ${task.failure.message}` : '';
  if (chunk.attemptId === null) {
    // No attempt at all: the task never reached a node.
    switch (task.state) {
      case 'queued':
        return `${t} has not started yet (queued; \`dsg job ${job.id}\` says why it waits)`;
      case 'cancelled':
        return `${t} was cancelled before it started`;
      case 'failed':
        return `${t} failed before it started${why}`;
      default:
        return `${t} has not started yet (${task.state})`;
    }
  }
  switch (task.state) {
    case 'queued':
      return `${t} is queued to run again (attempt ${task.attempts + 1}); attempt ${task.attempts} wrote no output`;
    case 'assigned':
      return `${t} has not started yet (assigned to a node, waiting for a free core)`;
    case 'running':
      return `${t} is running and has written no output yet`;
    case 'succeeded':
      return `${t} ran but wrote no output (it succeeded)`;
    case 'failed':
      return task.startedAt ? `${t} ran but wrote no output (it failed${why})` : `${t} failed before it started${why}`;
    case 'cancelled':
      return task.startedAt ? `${t} was cancelled while running; it wrote no output` : `${t} was cancelled before it started`;
  }
}

export function registerLogs(program: Command, globals: () => GlobalFlags): void {
  program
    .command('logs')
    .description("print a task's output (stdout and stderr, interleaved as written)")
    .argument('<id>', 'job id')
    .option('-t, --task <n>', 'task index (needed for jobs with more than one task when following)')
    .option('-a, --attempt <n>', 'attempt number or id (default: the latest)')
    .option('-f, --follow', 'keep printing as the task writes, until it ends; rides out coordinator restarts')
    .option('--give-up-after <duration>', `with --follow: ${GIVE_UP_HELP}`)
    .option('--json', 'print the LogChunkV1 (without --follow)')
    .addHelpText('after', `
The log goes to stdout; notes (a task that has not started, or wrote nothing) go to stderr.

Examples:
  dsg logs job_01jd… --task 3
  dsg logs job_01jd… --task 0 --follow
  dsg logs job_01jd…            (every task, with ==> task N <== headers)
  dsg logs job_01jd… --task 3 --json | jq -r .data`)
    .action(async (id: string, opts: { task?: string; attempt?: string; follow?: boolean; json?: boolean; giveUpAfter?: string }) => {
      if (opts.giveUpAfter !== undefined && !opts.follow) throw new ValidationError([{ path: '--give-up-after', message: 'only used with --follow' }]);
      if (opts.follow && opts.json) throw new ValidationError([{ path: '--json', message: '--json prints one log chunk; it cannot be combined with --follow' }]);
      if (opts.follow) resolveGiveUpAfter(opts.giveUpAfter); // a bad value is refused before anything is sent
      const client = clientFrom(globals());
      const reconnector = opts.follow ? reconnectorFor(client, opts.giveUpAfter, `\`dsg logs ${id} --task N --follow\` follows again.`) : null;
      const job = reconnector ? await reconnector.call(() => client.getJob(id)) : await client.getJob(id);
      let task = opts.task === undefined ? undefined : parseIndexFlag(opts.task);
      if (task === undefined && job.taskCount === 1) task = 0;
      if (task !== undefined && task >= job.taskCount)
        throw new ValidationError([{ path: '--task', message: `the job has ${plural(job.taskCount, 'task')}, numbered 0 to ${job.taskCount - 1}` }]);
      if (reconnector) {
        if (task === undefined) throw new ValidationError([{ path: '--task', message: `this job has ${job.taskCount} tasks: choose one to follow with --task N` }]);
        return follow(client, reconnector, job, task, opts.attempt);
      }
      if (task !== undefined) {
        const chunk = await readAll(client, id, task, opts.attempt);
        if (opts.json) printJson(chunk);
        else process.stdout.write(chunk.data);
        if (chunk.data === '') info(emptyLogNote(job, await client.getTask(id, task), chunk, opts.attempt));
        return;
      }
      const shown = Math.min(job.taskCount, MAX_TASKS_SHOWN);
      const tasks = (await client.listTasks(id, { limit: shown })).items;
      for (let i = 0; i < shown; i++) {
        const chunk = await readAll(client, id, i, opts.attempt);
        process.stdout.write(`${i > 0 ? '\n' : ''}==> task ${i} <==\n${chunk.data}`);
        const t = tasks.find((x) => x.index === i);
        if (chunk.data === '' && t) info(emptyLogNote(job, t, chunk, opts.attempt));
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

/** Print the task's log as it grows until the task ends; every request goes through the reconnector. */
async function follow(client: DsgClient, r: Reconnector, job: JobV1, task: number, attempt?: string): Promise<void> {
  let offset = 0;
  let attemptId: string | null = null;
  let wrote = false;
  let toldWaiting = false;
  for (;;) {
    const c = await r.call(() => client.getLogs(job.id, task, { offset, ...(attempt ? { attempt } : {}) }));
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
    if (c.data.length > 0) wrote = true;
    process.stdout.write(c.data);
    offset = c.nextOffset;
    if (c.complete) {
      const t = await r.call(() => client.getTask(job.id, task));
      if (isTerminalTask(t.state)) {
        if (!wrote) info(emptyLogNote(job, t, c, attempt));
        return;
      }
    } else if (!wrote && !toldWaiting && c.attemptId === null) {
      // Say once that the task has not started, instead of sitting there silently.
      info(`${emptyLogNote(job, await r.call(() => client.getTask(job.id, task)), c, attempt)}; waiting for it (Ctrl-C stops)`);
      toldWaiting = true;
    }
    if (c.data.length === 0) await new Promise((res) => setTimeout(res, 500));
  }
}
