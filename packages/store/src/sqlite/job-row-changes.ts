/**
 * What a batch of task changes does to their jobs' rows, gathered and written once per job (see "Job rows, once per
 * batch" in docs/ARCHITECTURE.md). Each task that changes state moves two of its job's counters, may move the job's
 * first queued task (`queue_head`), and, when it ended, adds to the job's run time. Written as they come, that was
 * three to five `UPDATE jobs` per task in the report-and-place transaction, each re-encoding the whole row (its
 * compiled spec included), and for a task taken from the queue a seek for the job's next queued task: 20–25% of the
 * store's CPU on the hot path. Gathered here, it is one `UPDATE` per job per transaction.
 *
 * Whether a job is done (`finished_at`, from its counters) is decided once too, after its counters are written.
 * The store writes a job's gathered changes before anything else reads that job's counters in the same transaction
 * (a workflow's next stage), and all of them before the transaction commits: what a reader outside sees is exactly
 * what it saw before.
 */
import { QUEUE_HEAD_OF_JOB_SQL } from './queue-queries.js';

/** The counter column of each task state. */
export type CounterColumn = 'n_queued' | 'n_assigned' | 'n_running' | 'n_succeeded' | 'n_failed' | 'n_cancelled';
const COLUMNS: readonly CounterColumn[] = ['n_queued', 'n_assigned', 'n_running', 'n_succeeded', 'n_failed', 'n_cancelled'];

interface JobChange {
  readonly counters: Record<CounterColumn, number>;
  /** The job's first queued task: found again (a task left the queue), lowered to at most a value, or as it was. */
  head: 'find' | bigint | null;
  runMs: number;
  runs: number;
  /** A task of the job ended: whether the job is done is decided after its counters are written (at this time). */
  doneAt: number | null;
}

/** The statement that applies one job's changes; `$job` and, when the head is lowered, `$head`. */
const sqlFor = (head: JobChange['head']): string =>
  `UPDATE jobs SET ${COLUMNS.map((c) => `${c} = ${c} + $${c}`).join(', ')}, run_ms_total = run_ms_total + $run_ms, runs_timed = runs_timed + $runs${
    head === 'find' ? `, queue_head = (${QUEUE_HEAD_OF_JOB_SQL})` : head !== null ? ', queue_head = MIN(COALESCE(queue_head, $head), $head)' : ''
  } WHERE id = $job`;
const SQL = { find: sqlFor('find'), lower: sqlFor(0n), keep: sqlFor(null) } as const;

export class JobRowChanges {
  private readonly jobs = new Map<string, JobChange>();

  /** `finishIfDoneSql`: sets or clears the job's `finished_at` from its counters (`$job`, `$now`). */
  constructor(private readonly finishIfDoneSql: string) {}

  private of(jobId: string): JobChange {
    let c = this.jobs.get(jobId);
    if (!c) {
      c = { counters: { n_queued: 0, n_assigned: 0, n_running: 0, n_succeeded: 0, n_failed: 0, n_cancelled: 0 }, head: null, runMs: 0, runs: 0, doneAt: null };
      this.jobs.set(jobId, c);
    }
    return c;
  }

  /** A task of the job moved from one counter to another. */
  move(jobId: string, from: CounterColumn, to: CounterColumn): void {
    const c = this.of(jobId).counters;
    c[from] -= 1;
    c[to] += 1;
  }

  /** A task left the job's queue (or the queue changed in bulk): its first queued task is found again. */
  findHead(jobId: string): void {
    this.of(jobId).head = 'find';
  }

  /** A task joined the job's queue at `head` (packed position): the first queued task is at most there. */
  lowerHead(jobId: string, head: bigint): void {
    const c = this.of(jobId);
    if (c.head === 'find') return; // found again anyway, with this task among the queued
    c.head = c.head === null || head < c.head ? head : c.head;
  }

  /** One timed run of `ms` ended. */
  addRun(jobId: string, ms: number): void {
    const c = this.of(jobId);
    c.runMs += ms;
    c.runs += 1;
  }

  /** A task of the job ended (at `now`): once its counters are written, the job is finished if it is done. */
  checkDone(jobId: string, now: number): void {
    this.of(jobId).doneAt = now;
  }

  /** Write one job's changes (nothing if it has none) through `run(sql, params)`. */
  writeJob(jobId: string, run: (sql: string, params: Record<string, string | number | bigint>) => void): void {
    const c = this.jobs.get(jobId);
    if (!c) return;
    this.jobs.delete(jobId);
    const params: Record<string, string | number | bigint> = { job: jobId, run_ms: c.runMs, runs: c.runs, ...c.counters };
    if (c.head === 'find') run(SQL.find, params);
    else if (c.head !== null) run(SQL.lower, { ...params, head: c.head });
    else run(SQL.keep, params);
    if (c.doneAt !== null) run(this.finishIfDoneSql, { job: jobId, now: c.doneAt });
  }

  /** Write every job's changes. */
  writeAll(run: (sql: string, params: Record<string, string | number | bigint>) => void): void {
    for (const jobId of [...this.jobs.keys()]) this.writeJob(jobId, run);
  }
}
