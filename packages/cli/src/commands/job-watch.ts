/** Waiting for a job: a live progress bar on a terminal, periodic plain lines otherwise. */
import cliProgress from 'cli-progress';
import { isTerminalJob, type JobV1 } from '@dsg/core';
import type { DsgClient } from '@dsg/client';
import { info } from '../context.js';
import { elapsed } from '../format.js';

export async function watchJob(client: DsgClient, job: JobV1, opts: { quiet: boolean; pollMs?: number }): Promise<JobV1> {
  const pollMs = opts.pollMs ?? 300;
  const started = Date.now();
  const tty = Boolean(process.stderr.isTTY) && !opts.quiet;
  const bar = tty
    ? new cliProgress.SingleBar(
        { format: ' {bar} {percentage}% | {done} done · {running} running · {failed} failed · {queued} queued | {elapsed}', hideCursor: true, stream: process.stderr, barsize: 30 },
        cliProgress.Presets.shades_classic,
      )
    : null;
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSigint);
  const fields = (j: JobV1) => ({
    done: j.counts.succeeded,
    running: j.counts.running + j.counts.assigned,
    failed: j.counts.failed,
    queued: j.counts.queued,
    elapsed: elapsed(Date.now() - started),
  });
  bar?.start(job.taskCount, 0, fields(job));
  let last = job;
  let toldWhy: string | null = null;
  let lastLine = 0;
  try {
    while (!interrupted) {
      last = await client.getJob(job.id);
      const why = last.waiting?.never ? last.waiting.reason : null;
      if (why && why !== toldWhy && !opts.quiet) {
        // A job that cannot run would otherwise just sit at 0%: say why, once.
        if (bar) bar.stop();
        info(`waiting: ${why} (Ctrl-C stops waiting; \`dsg cancel ${job.id}\` cancels the job)`);
        if (bar) bar.start(job.taskCount, 0, fields(last));
        toldWhy = why;
      }
      const ended = last.counts.succeeded + last.counts.failed + last.counts.cancelled;
      if (bar) bar.update(ended, fields(last));
      else if (!opts.quiet && Date.now() - lastLine > 5000) {
        const f = fields(last);
        info(`${job.id}: ${f.done} done, ${f.running} running, ${f.failed} failed, ${f.queued} queued (${f.elapsed})`);
        lastLine = Date.now();
      }
      if (isTerminalJob(last.state) && last.finishedAt) break;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', onSigint);
  }
  if (interrupted) info(`stopped waiting; the job keeps running. Check it with: dsg job ${job.id}`);
  return last;
}
