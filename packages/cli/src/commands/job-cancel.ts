import type { Command } from 'commander';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { colorState, plural } from '../format.js';

export function registerCancel(program: Command, globals: () => GlobalFlags): void {
  program
    .command('cancel')
    .description('cancel a job: queued tasks are dropped, running ones killed (whole process tree)')
    .argument('<id>', 'job id, or workflow id (wf_…: every stage; stages not started yet never start)')
    .option('--json', 'print the JobV1 (or WorkflowV1) as JSON')
    .addHelpText('after', '\nExamples:\n  dsg cancel job_01jd…\n  dsg cancel job_01jd… && dsg wait job_01jd…   (exits 1 once every task has stopped)')
    .action(async (id: string, opts: { json?: boolean }) => {
      if (id.startsWith('wf_')) {
        const wf = await clientFrom(globals()).cancelWorkflow(id);
        if (opts.json) return printJson(wf);
        const running = wf.counts.running + wf.counts.assigned;
        return print(`${wf.id}: ${colorState(wf.state)}${running > 0 ? ` (stopping ${plural(running, 'running task')})` : ''}`);
      }
      const job = await clientFrom(globals()).cancelJob(id);
      if (opts.json) return printJson(job);
      const running = job.counts.running + job.counts.assigned;
      print(`${job.id}: ${colorState(job.state)}${running > 0 ? ` (stopping ${plural(running, 'running task')})` : ''}`);
    });
}
