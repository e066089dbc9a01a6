import type { Command } from 'commander';
import { JOB_STATES, type JobState } from '@dsg/core';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { ago, colorState, table } from '../format.js';
import { parseLimit, parseState } from './parse-flags.js';

export function registerJobs(program: Command, globals: () => GlobalFlags): void {
  program
    .command('jobs')
    .description('list jobs, newest first')
    .option('--state <state>', `only jobs in this state (${JOB_STATES.join(', ')})`)
    .option('--name <name>', 'only jobs with this name (a trailing * matches a prefix)')
    .option('-n, --limit <n>', 'how many (1-500)', '20')
    .option('--all', 'every job (follows pages)')
    .option('--json', 'print JSON: { items: JobV1[] }')
    .addHelpText('after', '\nExamples:\n  dsg jobs\n  dsg jobs --state failed\n  dsg jobs --name "sweep*" --json')
    .action(async (opts: { state?: string; name?: string; limit: string; all?: boolean; json?: boolean }) => {
      const client = clientFrom(globals());
      const state = opts.state === undefined ? undefined : parseState<JobState>(opts.state, JOB_STATES, '--state');
      const limit = parseLimit(opts.limit, 500);
      const items = [];
      let cursor: string | undefined;
      do {
        const page = await client.listJobs({ limit, ...(state ? { state } : {}), ...(opts.name ? { name: opts.name } : {}), ...(cursor ? { cursor } : {}) });
        items.push(...page.items);
        cursor = opts.all ? (page.nextCursor ?? undefined) : undefined;
      } while (cursor);
      if (opts.json) return printJson({ items });
      if (items.length === 0) return print('no jobs yet: submit one with `dsg submit examples/pi/pi.yaml --wait`');
      print(table(['ID', 'NAME', 'STATE', 'DONE', 'FAILED', 'RUNNING', 'SUBMITTED'], items.map((j) => [
        j.id, j.name, colorState(j.state), `${j.counts.succeeded}/${j.taskCount}`, String(j.counts.failed), String(j.counts.running + j.counts.assigned), ago(j.createdAt),
      ])));
    });
}
