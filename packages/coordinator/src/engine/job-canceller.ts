/**
 * Cancelling a job without stalling the coordinator. A job may have 100,000 queued tasks; cancelling them in one
 * transaction held the event loop for seconds (agents' reports, heartbeats and health checks all waited). So:
 *
 *   requestCancel (one short commit: the job is marked, its active attempts listed)
 *     ─▶ agents told to kill those attempts
 *     ─▶ queued tasks cancelled range by range (`chunkSize` task indexes per commit, one bulk UPDATE each), with
 *        the event loop free between ranges
 *     ─▶ a dispatch pass (capacity may have been waiting on nothing but this job)
 *
 * Meanwhile none of the job's tasks is dispatched: the engine skips them (`Engine.cancelling`), and the store
 * rejects them in `applyPlan` should a plan made before the cancel still name one. A job that has already finished
 * is left as it is (`alreadyFinished`): cancelling it changes nothing. Concurrent cancels of one job share one run.
 * A coordinator stopped mid-cancel finishes it at the next start (`resume`).
 */
import type { JobId } from '@dsg/core';
import type { AttemptRecord, JobRecord, Store } from '@dsg/store';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';

/**
 * Task indexes per commit. Measured on the 2-core development VM: ~5 ms per 2,000 queued tasks (10 ms per 5,000),
 * with occasional 30–60 ms commits whatever the size (WAL checkpoints, fsync); small chunks keep the worst case
 * well under the 100 ms a stall may last.
 */
export const CANCEL_CHUNK = 2000;

export interface CancelOutcome {
  /** The job after the cancel (every queued task cancelled), or as it was if it had already finished. */
  readonly job: JobRecord;
  /** True when the job had already finished: nothing changed. */
  readonly alreadyFinished: boolean;
}

/** What the canceller needs from the engine. */
export interface CancelHooks {
  /** Jobs whose queued tasks are being cancelled: never dispatch them. */
  readonly cancelling: Set<JobId>;
  killAttempts(attempts: readonly AttemptRecord[], reason: string): void;
  requestTick(): void;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class JobCanceller {
  private readonly inflight = new Map<JobId, Promise<CancelOutcome | null>>();

  constructor(
    private readonly store: Store,
    private readonly hooks: CancelHooks,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly chunkSize = CANCEL_CHUNK,
  ) {}

  /** Cancel a job; null if it does not exist. Resolves once all its queued tasks are cancelled. */
  cancel(id: JobId): Promise<CancelOutcome | null> {
    let run = this.inflight.get(id);
    if (!run) {
      run = this.run(id).finally(() => this.inflight.delete(id));
      this.inflight.set(id, run);
    }
    return run;
  }

  /** Finish cancels a previous coordinator process left half done. */
  async resume(): Promise<void> {
    for (const id of await this.store.listCancellingJobs()) {
      this.log.info({ jobId: id }, 'finishing a cancel interrupted by a restart');
      await this.cancel(id);
    }
  }

  private async run(id: JobId): Promise<CancelOutcome | null> {
    const r = await this.store.requestCancel(id, this.clock.now());
    if (!r) return null;
    if (r.alreadyFinished) return { job: r.job, alreadyFinished: true };
    this.hooks.killAttempts(r.toKill, 'the job was cancelled');
    let remaining = r.job.counts.queued;
    if (remaining > 0) {
      this.hooks.cancelling.add(id);
      const t0 = Date.now();
      let chunks = 0;
      try {
        for (let from = 0; from < r.job.taskCount && remaining > 0; from += this.chunkSize) {
          remaining -= await this.store.cancelQueuedTasks(id, { from, to: from + this.chunkSize }, this.clock.now());
          chunks++;
          await yieldToEventLoop();
        }
      } finally {
        this.hooks.cancelling.delete(id);
      }
      this.log.info({ jobId: id, tasks: r.job.counts.queued, chunks, ms: Date.now() - t0 }, 'queued tasks cancelled');
    }
    this.hooks.requestTick();
    return { job: (await this.store.getJob(id)) ?? r.job, alreadyFinished: false };
  }
}
