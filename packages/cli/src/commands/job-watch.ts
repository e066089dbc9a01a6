/** Waiting for a job: the job-specific part of `dsg wait` and `dsg submit --wait` (the rest is in ../watch.ts). */
import { isTerminalJob } from '@dsg/core/base';
import type { JobV1 } from '@dsg/core';
import type { DsgClient } from '@dsg/client';
import type { WaitTarget } from '../watch.js';

export function jobTarget(client: DsgClient, id: string): WaitTarget<JobV1> {
  return {
    kind: 'job',
    id,
    load: () => client.getJob(id),
    progress: (j) => ({
      total: j.taskCount,
      ended: j.counts.succeeded + j.counts.failed + j.counts.cancelled,
      done: j.counts.succeeded,
      running: j.counts.running + j.counts.assigned,
      failed: j.counts.failed,
      queued: j.counts.queued,
      never: j.waiting?.never ? j.waiting.reason : null,
    }),
    // finishedAt is set once every task has ended (a cancelled job reads `cancelled` while its tasks stop).
    outcome: (j) => (!isTerminalJob(j.state) || !j.finishedAt ? 'pending' : j.state === 'succeeded' ? 'succeeded' : 'failed'),
    summary: (j) => {
      const c = j.counts;
      const ok = j.state === 'succeeded';
      const lines = [{ line: `${j.id} ${j.state}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled of ${j.taskCount}`, ok }];
      if (j.state === 'failed') lines.push({ line: `see why: dsg job ${j.id}   ·   dsg logs ${j.id} --task <N>`, ok });
      if (ok) lines.push({ line: `outputs: dsg outputs ${j.id} --to results/`, ok });
      return lines;
    },
  };
}
