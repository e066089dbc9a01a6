/**
 * `dsg ledger` (admin, reader): what each node gave, and what each project and user used — CPU, GPU and memory
 * time of every finished attempt, succeeded or wasted (rules in @dsg/core ledger.ts).
 */
import type { Command } from 'commander';
import { LEDGER_GROUPS, ledgerCsv, ValidationError, type LedgerTotalsV1 } from '@dsg/core';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { bold, dim, table } from '../format.js';
import { parseSince } from './audit.js';

const secs = (s: number): string => {
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${(s / 60).toFixed(1)}m`;
  return `${(s / 3600).toFixed(2)}h`;
};

const cells = (t: LedgerTotalsV1): string[] => [
  String(t.attempts), String(t.succeededAttempts), String(t.wastedAttempts), secs(t.wallSeconds), secs(t.wastedWallSeconds),
  `${secs(t.cpuSeconds)}${t.attempts > 0 && t.cpuMeasuredAttempts < t.attempts ? dim(t.cpuMeasuredAttempts === 0 ? ' (declared)' : ` (${t.cpuMeasuredAttempts} measured)`) : ''}`,
  secs(t.gpuSeconds), t.memoryGbSeconds.toFixed(2),
];

export function registerLedger(program: Command, globals: () => GlobalFlags): void {
  program
    .command('ledger')
    .description('contributions: CPU, GPU and memory time per node, project or user, succeeded vs wasted (admin, reader)')
    .option('--by <what>', `group by ${LEDGER_GROUPS.join(', ')}`, 'node')
    .option('--since <when>', 'only attempts that finished since then: a duration back from now (2h, 7d) or a date')
    .option('--node <name>', 'only attempts on this node')
    .option('--project <name>', 'only attempts of this project')
    .option('--user <name>', 'only attempts of jobs this user (token name) submitted')
    .option('--json', 'print JSON: LedgerV1 { by, since, until, rows[], total }')
    .option('--csv', 'print CSV: one line per group, then the total (seconds; memory in GB-seconds)')
    .addHelpText('after', `
Each finished attempt is one entry, written when the attempt ends, so the totals add up exactly to the recorded
run times. CPU time is what the agent measured in the task's cgroup where it could, else declared cores × wall
time (the CPU column says which). Wasted: attempts that failed, were lost, cancelled or timed out.

Examples:
  dsg ledger                          per node: who contributed what
  dsg ledger --by project --since 30d this month's use per project
  dsg ledger --by user --csv > use.csv   for a spreadsheet`)
    .action(async (opts: { by: string; since?: string; node?: string; project?: string; user?: string; json?: boolean; csv?: boolean }) => {
      if (!(LEDGER_GROUPS as readonly string[]).includes(opts.by))
        throw new ValidationError([{ path: '--by', message: `expected one of ${LEDGER_GROUPS.join(', ')}; got "${opts.by}"` }]);
      if (opts.json && opts.csv) throw new ValidationError([{ path: '--csv', message: 'choose one of --json and --csv' }]);
      const l = await clientFrom(globals()).ledger({
        by: opts.by as (typeof LEDGER_GROUPS)[number], ...(opts.since ? { since: parseSince(opts.since) } : {}),
        ...(opts.node ? { node: opts.node } : {}), ...(opts.project ? { project: opts.project } : {}), ...(opts.user ? { user: opts.user } : {}),
      });
      if (opts.json) return printJson(l);
      if (opts.csv) return void process.stdout.write(ledgerCsv(l));
      if (l.rows.length === 0) return print(`no finished attempts${l.since ? ` since ${l.since}` : ''} match`);
      print(table(
        [l.by.toUpperCase(), 'ATTEMPTS', 'OK', 'WASTED', 'WALL', 'WASTED WALL', 'CPU', 'GPU', 'MEM GB·s'],
        [...l.rows.map((r) => [r.key, ...cells(r)]), [bold('total'), ...cells(l.total)]],
      ));
    });
}
