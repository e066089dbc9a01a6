import type { Command } from 'commander';
import { JOB_STATES } from '@dsg/core/base';
import type { JobState } from '@dsg/core';
import type { DsgClient } from '@dsg/client';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { ago, colorState, plural, table } from '../format.js';
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
    .addHelpText('after', '\nExamples:\n  dsg jobs\n  dsg jobs --state failed\n  dsg jobs --name "sweep*" --json\n  dsg jobs --all --json | jq -r \'.items[].id\'')
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
      if (items.length === 0) return print(await noJobsMessage(client, state, opts.name));
      print(table(['ID', 'NAME', 'STATE', 'DONE', 'FAILED', 'RUNNING', 'SUBMITTED'], items.map((j) => [
        j.id, j.name, colorState(j.state), `${j.counts.succeeded}/${j.taskCount}`, String(j.counts.failed), String(j.counts.running + j.counts.assigned), ago(j.createdAt),
      ])));
    });
}

/**
 * What to say when a filtered list is empty: "no jobs yet" only when the grid has none at all; otherwise how many
 * other jobs there are (counted up to one page of 500), so an empty `--state running` does not read as "nothing here".
 */
export async function noJobsMessage(client: DsgClient, state: JobState | undefined, name: string | undefined): Promise<string> {
  const filtered = state !== undefined || name !== undefined;
  const any = filtered ? await client.listJobs({ limit: 500 }) : { items: [], nextCursor: null };
  if (any.items.length === 0) return 'no jobs yet: submit one with `dsg submit examples/pi/pi.yaml --wait`';
  const what = `no ${state ? `${state} ` : ''}jobs${name ? ` named "${name}"` : ''}`;
  const others = `${any.nextCursor ? `more than ${plural(any.items.length, 'job')}` : plural(any.items.length, 'job')} ${name ? 'in all' : 'in other states'}`;
  return `${what} (${others}; \`dsg jobs\` lists them)`;
}
