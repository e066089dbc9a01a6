/**
 * The dispatch pass's reads of the queue, one query each (exported so a test can check their query plans).
 *
 * Both must stay cheap however long the queue is: the pass runs after every finished attempt. They rely on the
 * partial indexes of migration 3: `jobs_with_queued` (jobs whose `n_queued` counter is above 0) and
 * `tasks_job_queue` (each job's queued tasks by queue position).
 */
import { MAX_ARRAY } from '@dsg/core';

/**
 * How the first queued task's position and index travel as one integer: `queue_seq * 2^24 + idx`. Task indexes stay
 * below 2^24 (MAX_ARRAY is 1,000,000; checked where this is used), and queue positions below 2^39 (~5.5·10^11 tasks
 * over a database's life: 17 years at 1,000 tasks/s), so the product fits SQLite's 64-bit integers; it is split
 * again in SQL (`>>`, `&`), never in JavaScript, whose numbers are exact only to 2^53.
 */
export const QUEUE_HEAD_IDX_BITS = 24;
// A job never has more tasks than MAX_ARRAY (arrays, and fan-outs over files, are refused beyond it).
if (MAX_ARRAY >= 2 ** QUEUE_HEAD_IDX_BITS) throw new Error(`queue-queries: MAX_ARRAY (${MAX_ARRAY}) no longer fits in ${QUEUE_HEAD_IDX_BITS} bits`);

/** A task's place in the queue as `jobs.queue_head` holds it (a BigInt: the value passes 2^53). */
export const packQueueHead = (queueSeq: number, idx: number): bigint => (BigInt(queueSeq) << BigInt(QUEUE_HEAD_IDX_BITS)) | BigInt(idx);

/** A job's first queued task, packed (NULL when none is queued): one seek on `tasks_job_queue`; `job` is the SQL naming the job. */
const queueHeadOf = (job: string): string =>
  `SELECT (f.queue_seq << ${QUEUE_HEAD_IDX_BITS}) | f.idx FROM tasks f WHERE f.job_id = ${job} AND f.state = 'queued' ORDER BY f.queue_seq LIMIT 1`;

/** The first queued task of the job `$job` names, as `jobs.queue_head` holds it. Used to keep that column exact. */
export const QUEUE_HEAD_OF_JOB_SQL = queueHeadOf('$job');

/**
 * Jobs with queued tasks, in queue order of their first queued task, each with that task. The first task comes from
 * the job's own row (`jobs.queue_head`, migration 17: position and index packed in one integer, QUEUE_HEAD_IDX_BITS,
 * split here in SQL), which the store keeps exact in every change of a task's state; no tasks are read at all, so
 * the read touches the jobs table only (its id is `taskIdOf(job, idx)`). Should a head be missing, one seek on
 * `tasks_job_queue` finds it (COALESCE). Why: with one seek per job into the queue index, each job's first entry
 * sits in a leaf page of its own once the queue is deep, and a pass touching 1,000 such pages ran 1.2 ms at 1,000
 * queued and 2.2 ms at 1,000,000 (in-process, passes 20 ms apart: the pages leave the CPU caches between passes).
 * A job whose cancel was requested is left out: its queued tasks are being cancelled range by range and none may
 * start meanwhile. A job counted as queued without a queued task (a drifted counter) has no first task and no row.
 */
export const QUEUED_JOBS_SQL = `
  WITH q AS MATERIALIZED (
    SELECT j.id, j.cpu_millis, j.memory_bytes, j.gpus, j.disk_bytes, j.run_ms_total, j.runs_timed, j.n_queued,
           j.n_assigned + j.n_running AS n_active,
           COALESCE(j.queue_head, (${queueHeadOf('j.id')})) AS head
      FROM jobs j
     WHERE j.n_queued > 0 AND j.cancel_requested = 0)
  SELECT id, cpu_millis, memory_bytes, gpus, disk_bytes, run_ms_total, runs_timed, n_queued, n_active,
         head >> ${QUEUE_HEAD_IDX_BITS} AS task_seq, head & ${(1 << QUEUE_HEAD_IDX_BITS) - 1} AS task_idx
    FROM q WHERE head IS NOT NULL ORDER BY head, id`;

/** The first `limit` queued tasks of one job, in queue order: a range read on `tasks_job_queue`, the index alone. */
export const QUEUED_TASKS_OF_JOB_SQL = `
  SELECT job_id, idx, queue_seq FROM tasks
   WHERE job_id = ? AND state = 'queued'
   ORDER BY queue_seq LIMIT ?`;

export interface QueuedJobRow {
  id: string; cpu_millis: number; memory_bytes: number; gpus: number; disk_bytes: number;
  run_ms_total: number; runs_timed: number; n_queued: number; n_active: number; task_idx: number; task_seq: number;
}
export interface QueuedTaskRow { job_id: string; idx: number; queue_seq: number }
