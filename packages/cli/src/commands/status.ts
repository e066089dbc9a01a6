/** `dsg status`: what the grid holds and the disk it uses; `dsg gc`: run the retention now. */
import type { Command } from 'commander';
import type { GcReportV1 } from '@dsg/core';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { formatSize, plural } from '../format.js';

const counts = (m: Record<string, number>): string => {
  const parts = Object.entries(m).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
};

export function registerStatus(program: Command, globals: () => GlobalFlags): void {
  program
    .command('status')
    .description('disk use (database, blobs, logs), jobs, workflows and nodes by state, retention settings')
    .option('--json', 'print the StatusV1 as JSON')
    .addHelpText('after', `
Finished work is removed after the retention (coordinator setting retentionDays, default 30; retentionMaxGb
caps blobs and logs); \`dsg gc\` runs a collection now.

Examples:
  dsg status
  dsg status --json | jq .disk`)
    .action(async (opts: { json?: boolean }) => {
      const s = await clientFrom(globals()).status();
      if (opts.json) return printJson(s);
      const r = s.retention;
      print([
        `database   ${formatSize(s.disk.databaseBytes)}`,
        `blobs      ${formatSize(s.disk.blobs.bytes)} in ${plural(s.disk.blobs.count, 'file')}`,
        `logs       ${formatSize(s.disk.logs.bytes)} for ${plural(s.disk.logs.jobs, 'job')}`,
        `jobs       ${counts(s.jobs)}`,
        `workflows  ${counts(s.workflows)}`,
        `nodes      ${counts(s.nodes)}`,
        `retention  ${r.maxAgeDays === null ? 'finished work kept forever' : `finished work kept ${r.maxAgeDays} days`}${r.maxBytes !== null ? `, blobs and logs capped at ${formatSize(r.maxBytes)}` : ''}; collected every ${r.intervalMinutes} min`,
        `last gc    ${s.lastGc ? `${s.lastGc.at}: ${summary(s.lastGc)}` : 'none since the coordinator started'}`,
      ].join('\n'));
    });

  program
    .command('gc')
    .description('remove finished work past the retention, its logs, and blobs nothing refers to (admin token)')
    .option('--dry-run', 'show what would be removed; change nothing')
    .option('--json', 'print the GcReportV1 as JSON')
    .addHelpText('after', `
Never removes anything a queued or running job, or an unfinished workflow, still needs. A workflow goes as a
whole, once it has finished. The coordinator also runs this on its own (setting gcIntervalMinutes, default 60).

Examples:
  dsg gc --dry-run
  dsg gc
  dsg gc --json | jq .bytesFreed`)
    .action(async (opts: { dryRun?: boolean; json?: boolean }) => {
      const r = await clientFrom(globals()).gc({ dryRun: opts.dryRun ?? false });
      if (opts.json) return printJson(r);
      for (const w of r.removed) print(`${r.dryRun ? 'would remove' : 'removed'} ${w.kind} ${w.id} (${w.name}, finished ${w.finishedAt}, ${w.why === 'age' ? 'past the retention' : 'over the size limit'})`);
      print(`${r.dryRun ? 'dry run: would free' : 'freed'} ${summary(r)}`);
    });
}

function summary(r: GcReportV1): string {
  return `${formatSize(r.bytesFreed)}: ${plural(r.jobs, 'job')}, ${plural(r.workflows, 'workflow')}, logs of ${plural(r.logs.jobs, 'job')} (${formatSize(r.logs.bytes)}), ${plural(r.blobs.count, 'blob')} (${formatSize(r.blobs.bytes)})`;
}
