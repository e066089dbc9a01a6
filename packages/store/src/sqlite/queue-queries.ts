/**
 * The dispatch pass's reads of the queue, one query each (exported so a test can check their query plans).
 *
 * Both must stay cheap however long the queue is: the pass runs after every finished attempt. They rely on the
 * partial indexes of migration 3: `jobs_with_queued` (jobs whose `n_queued` counter is above 0) and
 * `tasks_job_queue` (each job's queued tasks by queue position).
 */

/**
 * Jobs with queued tasks, in queue order of their first queued task. One index seek per job for the first
 * position (min over `tasks_job_queue`), so a job with a million queued tasks costs one row, not a million.
 */
export const QUEUED_JOBS_SQL = `
  SELECT j.id, j.cpu_millis, j.memory_bytes, j.gpus, j.disk_bytes, j.run_ms_total, j.runs_timed, j.n_queued,
         (SELECT MIN(t.queue_seq) FROM tasks t WHERE t.job_id = j.id AND t.state = 'queued') AS first_seq
    FROM jobs j
   WHERE j.n_queued > 0
   ORDER BY first_seq, j.id`;

/** The first `limit` queued tasks of one job, in queue order: a range read on `tasks_job_queue`. */
export const QUEUED_TASKS_OF_JOB_SQL = `
  SELECT id, job_id, idx, queue_seq FROM tasks
   WHERE job_id = ? AND state = 'queued'
   ORDER BY queue_seq LIMIT ?`;

export interface QueuedJobRow {
  id: string; cpu_millis: number; memory_bytes: number; gpus: number; disk_bytes: number;
  run_ms_total: number; runs_timed: number; n_queued: number; first_seq: number | null;
}
export interface QueuedTaskRow { id: string; job_id: string; idx: number; queue_seq: number }
