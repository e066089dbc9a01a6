/** Workflows: `dsg workflow ID`, `dsg workflows`, `dsg retry ID`, and waiting with per-stage progress. */
import type { Command } from 'commander';
import { isTerminalJob } from '@dsg/core/base';
import type { JobV1, StageV1, WorkflowV1 } from '@dsg/core';
import type { DsgClient } from '@dsg/client';
import { resolveGiveUpAfter } from '../config.js';
import { clientFrom, Exit, ExitCode, GIVE_UP_HELP, info, print, printJson, reconnectorFor, type GlobalFlags } from '../context.js';
import { ago, bold, colorState, dim, plural, red, table } from '../format.js';
import type { WaitTarget } from '../watch.js';
import { targetFor, waitAndExit } from './wait.js';
const ended = (s: StageV1 | WorkflowV1): number => s.counts.succeeded + s.counts.failed + s.counts.cancelled;

/** One line about a stage: progress, and why it waits or was skipped. */
export function stageNote(s: StageV1): string {
  if (s.skipReason) return `skipped: ${s.skipReason}`;
  if (s.state === 'waiting') return s.each && s.heldTasks < s.taskCount ? `each task starts when its ${s.each} task succeeds` : `needs ${s.needs.join(', ')}`;
  if (s.waiting?.never) return s.waiting.reason;
  if (s.counts.failed > 0) return `${plural(s.counts.failed, 'task')} failed`;
  return '';
}

export function printWorkflow(wf: WorkflowV1): void {
  print(`${bold(wf.id)}  ${wf.name}  ${colorState(wf.state)}  ${plural(wf.stages.length, 'stage')}, ${ended(wf)}/${wf.taskCount} tasks done  (created ${ago(wf.createdAt)}${wf.submittedBy ? ` by ${wf.submittedBy.name}` : ''}, project ${wf.project})`);
  if (Object.keys(wf.params).length > 0) print(dim(`params: ${Object.entries(wf.params).map(([k, v]) => `${k}=${v}`).join(' ')}`));
  print(
    table(
      ['STAGE', 'STATE', 'DONE', 'RUNNING', 'FAILED', 'NEEDS', 'JOB', 'NOTE'],
      wf.stages.map((s) => [
        s.name,
        colorState(s.state),
        s.taskCount === 0 && s.state === 'waiting' ? '-' : `${s.counts.succeeded}/${s.taskCount}`,
        String(s.counts.running + s.counts.assigned),
        s.counts.failed > 0 ? red(String(s.counts.failed)) : '0',
        s.needs.length === 0 ? '-' : s.needs.map((d) => (d === s.each ? `${d} (per task)` : d)).join(', '),
        s.jobId,
        stageNote(s),
      ]),
    ),
  );
}

/** Waiting for a workflow (`dsg wait wf_…`, `dsg submit --wait`): totals over its stages, plus one bar per stage. */
export function workflowTarget(client: DsgClient, id: string): WaitTarget<WorkflowV1> {
  return {
    kind: 'workflow',
    id,
    load: () => client.getWorkflow(id),
    progress: (w) => ({
      total: w.taskCount,
      ended: ended(w),
      done: w.counts.succeeded,
      running: w.counts.running + w.counts.assigned,
      failed: w.counts.failed,
      queued: w.counts.queued,
      never: w.stages.find((s) => s.waiting?.never)?.waiting?.reason ?? null,
    }),
    stages: (w) => w.stages.map((s) => ({ name: s.name, total: s.taskCount, ended: ended(s), state: s.state, note: stageNote(s) })),
    outcome: (w) => (!isTerminalJob(w.state) || !w.finishedAt ? 'pending' : w.state === 'succeeded' ? 'succeeded' : 'failed'),
    summary: (w) => {
      const ok = w.state === 'succeeded';
      const lines = [{ line: `${w.id} ${w.state}: ${w.stages.filter((s) => s.state === 'succeeded').length}/${plural(w.stages.length, 'stage')} succeeded, ${plural(w.counts.succeeded, 'task')} succeeded, ${w.counts.failed} failed`, ok }];
      for (const s of w.stages) if (s.state !== 'succeeded') lines.push({ line: `  ${s.name}: ${s.state}${stageNote(s) ? ` — ${stageNote(s)}` : ''}`, ok });
      if (w.state === 'failed') lines.push({ line: `see why: dsg workflow ${w.id}   ·   re-run what failed: dsg retry ${w.id} --wait`, ok });
      if (ok) lines.push({ line: `outputs: dsg outputs ${w.id} --to results/   (one folder per stage)`, ok });
      return lines;
    },
  };
}

export function registerWorkflow(program: Command, globals: () => GlobalFlags): void {
  program
    .command('workflow')
    .description('show a workflow: its stages, what each needs, their progress and why any waits or was skipped')
    .argument('<id>', 'workflow id (wf_…)')
    .option('--json', 'print the WorkflowV1 as JSON (stages, edges, states)')
    .addHelpText('after', '\nExamples:\n  dsg workflow wf_01jd…\n  dsg workflow wf_01jd… --json | jq \'.stages[] | {name, state}\'')
    .action(async (id: string, opts: { json?: boolean }) => {
      const wf = await clientFrom(globals()).getWorkflow(id);
      if (opts.json) return printJson(wf);
      printWorkflow(wf);
      if (wf.state === 'failed') info(`\nre-run what failed or was skipped (succeeded tasks are kept): dsg retry ${wf.id}`);
    });

  program
    .command('workflows')
    .description('list recent workflows, newest first')
    .option('-n, --limit <n>', 'how many', '20')
    .option('--json', 'print JSON: { items: WorkflowV1[], nextCursor }')
    .addHelpText('after', '\nExamples:\n  dsg workflows\n  dsg workflows -n 5 --json | jq \'.items[].id\'')
    .action(async (opts: { limit: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ExitCode(Exit.usage);
      const page = await clientFrom(globals()).listWorkflows({ limit });
      if (opts.json) return printJson(page);
      if (page.items.length === 0) return print('No workflows yet. Submit one with: dsg submit examples/mapreduce/mapreduce.yaml --wait');
      print(
        table(
          ['ID', 'NAME', 'STATE', 'STAGES', 'TASKS', 'CREATED'],
          page.items.map((w) => [w.id, w.name, colorState(w.state), `${w.stages.filter((s) => s.state === 'succeeded').length}/${w.stages.length}`, `${ended(w)}/${w.taskCount}`, ago(w.createdAt)]),
        ),
      );
    });

  program
    .command('retry')
    .description('re-run what failed, was cancelled or was skipped in a job or workflow; succeeded tasks are kept')
    .argument('<id>', 'job id (job_…) or workflow id (wf_…)')
    .option('-w, --wait', 'wait for it to finish (exit 1 if anything failed)')
    .option('--json', 'print the job or workflow as JSON')
    .addHelpText('after', '\nExamples:\n  dsg retry wf_01jd… --wait     re-run the failed stage and everything it skipped')
    .option('--give-up-after <duration>', `with --wait: ${GIVE_UP_HELP}`)
    .action(async (id: string, opts: { wait?: boolean; json?: boolean; giveUpAfter?: string }) => {
      if (opts.wait) resolveGiveUpAfter(opts.giveUpAfter);
      const client = clientFrom(globals());
      const isWf = id.startsWith('wf_');
      const r = isWf ? await client.retryWorkflow(id) : await client.retryJob(id);
      const current: JobV1 | WorkflowV1 = 'workflow' in r ? r.workflow : r.job;
      if (!opts.json) info(`${current.id}: ${plural(r.requeued, 'task')} requeued${isWf ? `, ${plural(r.unskipped, 'stage')} no longer skipped` : ''}${r.requeued + r.unskipped === 0 ? ' (nothing had failed, been cancelled or skipped)' : ''}`);
      if (!opts.wait) {
        if (opts.json) printJson(current);
        else info(`next: dsg wait ${current.id}`);
        return;
      }
      const reconnector = reconnectorFor(client, opts.giveUpAfter, `It lives on in the coordinator; \`dsg wait ${id}\` waits again.`);
      await waitAndExit(targetFor(client, id), current, { reconnector, json: Boolean(opts.json), quiet: false });
    });
}
