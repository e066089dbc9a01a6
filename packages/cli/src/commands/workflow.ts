/** Workflows: `dsg workflow ID`, `dsg workflows`, `dsg retry ID`, and waiting with per-stage progress. */
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { isTerminalJob, type JobV1, type StageV1, type WorkflowV1 } from '@dsg/core';
import type { DsgClient } from '@dsg/client';
import { clientFrom, Exit, ExitCode, info, print, printJson, type GlobalFlags } from '../context.js';
import { ago, bold, colorState, dim, elapsed, green, red, table } from '../format.js';

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const ended = (s: StageV1 | WorkflowV1): number => s.counts.succeeded + s.counts.failed + s.counts.cancelled;

/** One line about a stage: progress, and why it waits or was skipped. */
export function stageNote(s: StageV1): string {
  if (s.skipReason) return `skipped: ${s.skipReason}`;
  if (s.state === 'waiting') return s.each && s.heldTasks < s.taskCount ? `tasks start as ${s.each}'s succeed` : `waiting for ${s.needs.join(', ')}`;
  if (s.waiting?.never) return s.waiting.reason;
  if (s.counts.failed > 0) return `${plural(s.counts.failed, 'task')} failed`;
  return '';
}

export function printWorkflow(wf: WorkflowV1): void {
  print(`${bold(wf.id)}  ${wf.name}  ${colorState(wf.state)}  ${plural(wf.stages.length, 'stage')}, ${ended(wf)}/${wf.taskCount} tasks done  (created ${ago(wf.createdAt)})`);
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

export function summarizeWorkflow(wf: WorkflowV1): void {
  const line = `${wf.id} ${wf.state}: ${wf.stages.filter((s) => s.state === 'succeeded').length}/${wf.stages.length} stages succeeded, ${wf.counts.succeeded} tasks succeeded, ${wf.counts.failed} failed`;
  info(wf.state === 'succeeded' ? green(line) : red(line));
  for (const s of wf.stages) if (s.state !== 'succeeded') info(`  ${s.name}: ${s.state}${stageNote(s) ? ` — ${stageNote(s)}` : ''}`);
  if (wf.state === 'failed') info(`see why: dsg workflow ${wf.id}   ·   dsg job <JOB>   ·   re-run what failed: dsg retry ${wf.id}`);
  if (wf.state === 'succeeded') info(`outputs: dsg outputs ${wf.id} --to results/   (one folder per stage)`);
}

/** Wait for a workflow: one progress bar per stage on a terminal, a line every 5 s otherwise. */
export async function watchWorkflow(client: DsgClient, wf: WorkflowV1, opts: { quiet: boolean; pollMs?: number }): Promise<WorkflowV1> {
  const pollMs = opts.pollMs ?? 300;
  const started = Date.now();
  const tty = Boolean(process.stderr.isTTY) && !opts.quiet;
  const width = Math.max(...wf.stages.map((s) => s.name.length));
  const multi = tty
    ? new cliProgress.MultiBar(
        { format: ' {stage} {bar} {done}/{total} {state} {note}', hideCursor: true, stream: process.stderr, barsize: 24, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const fields = (s: StageV1) => ({ stage: s.name.padEnd(width), done: ended(s), state: s.state, note: stageNote(s).slice(0, 60) });
  const bars = new Map(wf.stages.map((s) => [s.name, multi?.create(Math.max(1, s.taskCount), ended(s), fields(s))] as const));
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSigint);
  let last = wf;
  let lastLine = 0;
  try {
    while (!interrupted) {
      last = await client.getWorkflow(wf.id);
      for (const s of last.stages) {
        const bar = bars.get(s.name);
        if (bar) {
          bar.setTotal(Math.max(1, s.taskCount));
          bar.update(ended(s), fields(s));
        }
      }
      if (!multi && !opts.quiet && Date.now() - lastLine > 5000) {
        info(`${wf.id} (${elapsed(Date.now() - started)}): ${last.stages.map((s) => `${s.name} ${s.state} ${ended(s)}/${s.taskCount}`).join(' · ')}`);
        lastLine = Date.now();
      }
      if (isTerminalJob(last.state) && last.finishedAt) break;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    multi?.stop();
    process.removeListener('SIGINT', onSigint);
  }
  if (interrupted) info(`stopped waiting; the workflow keeps running. Check it with: dsg workflow ${wf.id}`);
  return last;
}

/** Exit like `submit --wait`: 0 succeeded, 1 failed or cancelled, 130 interrupted. */
export function exitFor(state: WorkflowV1['state'] | JobV1['state']): void {
  if (!isTerminalJob(state)) throw new ExitCode(130);
  if (state !== 'succeeded') throw new ExitCode(Exit.failed);
}

export function registerWorkflow(program: Command, globals: () => GlobalFlags): void {
  program
    .command('workflow')
    .description('show a workflow: its stages, what each needs, their progress and why any waits or was skipped')
    .argument('<id>', 'workflow id (wf_…)')
    .option('--json', 'print the WorkflowV1 as JSON (stages, edges, states)')
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
    .action(async (id: string, opts: { wait?: boolean; json?: boolean }) => {
      const client = clientFrom(globals());
      if (id.startsWith('wf_')) {
        const r = await client.retryWorkflow(id);
        if (!opts.json) info(`${r.workflow.id}: ${plural(r.requeued, 'task')} requeued, ${plural(r.unskipped, 'stage')} no longer skipped`);
        const final = opts.wait ? await watchWorkflow(client, r.workflow, { quiet: Boolean(opts.json) }) : r.workflow;
        if (opts.json) printJson(final);
        if (opts.wait) {
          if (!opts.json) summarizeWorkflow(final);
          exitFor(final.state);
        }
        return;
      }
      const r = await client.retryJob(id);
      if (!opts.json) info(`${r.job.id}: ${plural(r.requeued, 'task')} requeued`);
      if (!opts.wait) {
        if (opts.json) printJson(r.job);
        return;
      }
      const { watchJob } = await import('./job-watch.js');
      const final = await watchJob(client, r.job, { quiet: Boolean(opts.json) });
      if (opts.json) printJson(final);
      exitFor(final.state);
    });
}
