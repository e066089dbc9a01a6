import type { Command } from 'commander';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { colorState } from '../format.js';

export function registerCancel(program: Command, globals: () => GlobalFlags): void {
  program
    .command('cancel')
    .description('cancel a job: queued tasks are dropped, running ones killed (whole process tree)')
    .argument('<id>', 'job id')
    .option('--json', 'print the JobV1 as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const job = await clientFrom(globals()).cancelJob(id);
      if (opts.json) return printJson(job);
      const running = job.counts.running + job.counts.assigned;
      print(`${job.id}: ${colorState(job.state)}${running > 0 ? ` (stopping ${running} running task${running === 1 ? '' : 's'})` : ''}`);
    });
}
