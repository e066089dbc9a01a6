/**
 * The dispatch pass's reads of the queue, one query each (exported so a test can check their query plans).
 *
 * Both must stay cheap however long the queue is: the pass runs after every finished attempt. They rely on the
 * partial indexes of migration 3: `jobs_with_queued` (jobs whose `n_queued` counter is above 0) and
 * `tasks_job_queue` (each job's queued tasks by queue position).
 */

/**
 * Jobs with queued tasks, in queue order of their first queued task, each with that task. Two seeks per job on
 * `tasks_job_queue` (job_id, queue_seq, idx), both answered by the index alone: the first task's queue position and
 * its index in the job (its id is `taskIdOf(job, idx)`). No row of the tasks table is read, so a job with a million
 * queued tasks costs what a job with one does, and the pass does not slow as the table outgrows the page cache (it
 * read one table row per job before migration 16: 2.9 ms at 1,000,000 queued against 1.0 ms at 1,000, in-process).
 * A job whose cancel was requested is left out: its queued tasks are being cancelled range by range and none may
 * start meanwhile. A job counted as queued without a queued task (a drifted counter) has no first task and no row.
 */
export const QUEUED_JOBS_SQL = `
  WITH q AS MATERIALIZED (
    SELECT j.id, j.cpu_millis, j.memory_bytes, j.gpus, j.disk_bytes, j.run_ms_total, j.runs_timed, j.n_queued,
           j.n_assigned + j.n_running AS n_active,
           (SELECT f.queue_seq FROM tasks f WHERE f.job_id = j.id AND f.state = 'queued' ORDER BY f.queue_seq LIMIT 1) AS task_seq,
           (SELECT f.idx FROM tasks f WHERE f.job_id = j.id AND f.state = 'queued' ORDER BY f.queue_seq LIMIT 1) AS task_idx
      FROM jobs j
     WHERE j.n_queued > 0 AND j.cancel_requested = 0)
  SELECT * FROM q WHERE task_seq IS NOT NULL ORDER BY task_seq, id`;

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
