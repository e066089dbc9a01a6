/**
 * `dsg wait ID`: wait for a job to finish, with the progress display of `submit --wait`, riding out coordinator
 * restarts. Exit codes: 0 succeeded, 1 failed or cancelled, 3 unreachable for longer than the give-up time,
 * 130 interrupted. What an id names is decided in `targetFor`: a job (`job_…`) or a workflow (`wf_…`, one bar per stage).
 */
import type { Command } from 'commander';
import { ValidationError } from '@dsg/core/base';
import type { DsgClient } from '@dsg/client';
import { resolveGiveUpAfter } from '../config.js';
import { clientFrom, Exit, ExitCode, GIVE_UP_HELP, info, printJson, reconnectorFor, type GlobalFlags } from '../context.js';
import { green, red } from '../format.js';
import type { Reconnector } from '../reconnect.js';
import { watch, type WaitTarget } from '../watch.js';
import { jobTarget } from './job-watch.js';
import { workflowTarget } from './workflow.js';

export function targetFor(client: DsgClient, id: string): WaitTarget<unknown> {
  if (id.startsWith('wf_')) return workflowTarget(client, id) as WaitTarget<unknown>;
  if (!id.startsWith('job_')) throw new ValidationError([{ path: 'ID', message: `"${id}" is neither a job id (job_…) nor a workflow id (wf_…)` }]);
  return jobTarget(client, id) as WaitTarget<unknown>;
}

/**
 * Wait for `target` (given its current state `first`, or loaded here), print the outcome, and end with the
 * exit code for it. Shared by `dsg wait` and `dsg submit --wait`.
 */
export async function waitAndExit<T>(target: WaitTarget<T>, first: T | null, o: { reconnector: Reconnector; json: boolean; quiet: boolean }): Promise<void> {
  const start = first ?? (await o.reconnector.call(() => target.load()));
  const { last, interrupted } = await watch(target, start, { reconnector: o.reconnector, quiet: o.json || o.quiet });
  if (o.json) printJson(last);
  else if (!o.quiet && !interrupted) for (const s of target.summary(last)) info(s.ok ? green(s.line) : red(s.line));
  if (interrupted) throw new ExitCode(Exit.interrupted);
  if (target.outcome(last) !== 'succeeded') throw new ExitCode(Exit.failed);
}

export function registerWait(program: Command, globals: () => GlobalFlags): void {
  program
    .command('wait')
    .description('wait for a job or workflow to finish, with progress bars; rides out coordinator restarts')
    .argument('<id>', 'job id (job_…) or workflow id (wf_…)')
    .option('--give-up-after <duration>', GIVE_UP_HELP)
    .option('--json', 'print the final JobV1 as JSON')
    .option('-q, --quiet', 'no progress or summary; only the exit code')
    .addHelpText('after', `
Exit codes: 0 the job succeeded · 1 it failed or was cancelled · 3 the coordinator stayed unreachable longer
than the give-up time · 130 interrupted (Ctrl-C; the job keeps running).

Examples:
  dsg wait job_01jd…
  dsg wait job_01jd… --give-up-after 30m && dsg outputs job_01jd… --to results/
  JOB=$(dsg submit sweep.yaml -q) && dsg wait $JOB --json | jq .counts`)
    .action(async (id: string, opts: { giveUpAfter?: string; json?: boolean; quiet?: boolean }) => {
      resolveGiveUpAfter(opts.giveUpAfter); // a bad value is refused before anything is sent
      const client = clientFrom(globals());
      const target = targetFor(client, id);
      const reconnector = reconnectorFor(client, opts.giveUpAfter, `The ${target.kind} lives on in the coordinator; \`dsg wait ${id}\` waits again.`);
      await waitAndExit(target, null, { reconnector, json: Boolean(opts.json), quiet: Boolean(opts.quiet) });
    });
}
