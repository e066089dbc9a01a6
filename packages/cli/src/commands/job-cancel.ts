import type { Command } from 'commander';
import { DsgError } from '@dsg/core/base';
import type { JobV1, WorkflowV1 } from '@dsg/core';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { colorState, plural } from '../format.js';

/** The unchanged job the coordinator sends back (409 conflict) when the job had already finished. */
function finishedOf<T extends { id: string }>(e: unknown, key: 'job' | 'workflow'): T | null {
  if (!(e instanceof DsgError) || e.code !== 'conflict') return null;
  const v = e.details?.[key] as T | undefined;
  return v && typeof v.id === 'string' ? v : null;
}
const finishedJobOf = (e: unknown): JobV1 | null => finishedOf<JobV1>(e, 'job');

const ENDED: Record<string, string> = { succeeded: 'succeeded', failed: 'failed', cancelled: 'been cancelled', skipped: 'been skipped' };

export function registerCancel(program: Command, globals: () => GlobalFlags): void {
  program
    .command('cancel')
    .description('cancel a job: queued tasks are dropped, running ones killed (whole process tree); a finished job is left as it is')
    .argument('<id>', 'job id, or workflow id (wf_…: every stage; stages not started yet never start)')
    .option('--json', 'print the JobV1 (or WorkflowV1) as JSON')
    .addHelpText('after', '\nExamples:\n  dsg cancel job_01jd…\n  dsg cancel wf_01jd…\n  dsg cancel job_01jd… && dsg wait job_01jd…   (exits 1 once every task has stopped)')
    .action(async (id: string, opts: { json?: boolean }) => {
      if (id.startsWith('wf_')) {
        let wf: WorkflowV1;
        try {
          wf = await clientFrom(globals()).cancelWorkflow(id);
        } catch (e) {
          const finished = finishedOf<WorkflowV1>(e, 'workflow');
          if (!finished) throw e;
          if (opts.json) return printJson(finished);
          return print(`workflow ${finished.id} had already ${ENDED[finished.state] ?? finished.state}; nothing changed`);
        }
        if (opts.json) return printJson(wf);
        const running = wf.counts.running + wf.counts.assigned;
        return print(`${wf.id}: ${colorState(wf.state)}${running > 0 ? ` (stopping ${plural(running, 'running task')})` : ''}`);
      }
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
      print(`${job.id}: ${colorState(job.state)}${running > 0 ? ` (stopping ${plural(running, 'running task')})` : ''}`);
    });
}
