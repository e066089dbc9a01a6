import type { Command } from 'commander';
import { DsgError, type JobV1 } from '@dsg/core';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { colorState } from '../format.js';

/** The unchanged job the coordinator sends back (409 conflict) when the job had already finished. */
function finishedJobOf(e: unknown): JobV1 | null {
  if (!(e instanceof DsgError) || e.code !== 'conflict') return null;
  const job = e.details?.['job'] as JobV1 | undefined;
  return job && typeof job.id === 'string' ? job : null;
}

const ENDED: Record<string, string> = { succeeded: 'succeeded', failed: 'failed', cancelled: 'been cancelled' };

export function registerCancel(program: Command, globals: () => GlobalFlags): void {
  program
    .command('cancel')
    .description('cancel a job: queued tasks are dropped, running ones killed (whole process tree); a finished job is left as it is')
    .argument('<id>', 'job id')
    .option('--json', 'print the JobV1 as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      let job: JobV1;
      try {
        job = await clientFrom(globals()).cancelJob(id);
      } catch (e) {
        // Cancelling a finished job changes nothing; that is not an error (exit 0), but say so.
        const finished = finishedJobOf(e);
        if (!finished) throw e;
        if (opts.json) return printJson(finished);
        return print(`job ${finished.id} had already ${ENDED[finished.state] ?? finished.state}; nothing changed`);
      }
      if (opts.json) return printJson(job);
      const running = job.counts.running + job.counts.assigned;
      print(`${job.id}: ${colorState(job.state)}${running > 0 ? ` (stopping ${running} running task${running === 1 ? '' : 's'})` : ''}`);
    });
}
