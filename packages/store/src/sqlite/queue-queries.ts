/**
 * The dispatch pass's reads of the queue, one query each (exported so a test can check their query plans).
 *
 * Both must stay cheap however long the queue is: the pass runs after every finished attempt. They rely on the
 * partial indexes of migration 3: `jobs_with_queued` (jobs whose `n_queued` counter is above 0) and
 * `tasks_job_queue` (each job's queued tasks by queue position).
 */

/**
 * Jobs with queued tasks, in queue order of their first queued task, each with that task. One index seek per job
 * finds it (the first entry of the job in `tasks_job_queue`), then one rowid lookup: a job with a million queued
 * tasks costs one row, not a million. A job whose cancel was requested is left out: its queued tasks are being
 * cancelled range by range and none may start meanwhile.
 */
export const QUEUED_JOBS_SQL = `
  SELECT j.id, j.cpu_millis, j.memory_bytes, j.gpus, j.disk_bytes, j.run_ms_total, j.runs_timed, j.n_queued,
         j.n_assigned + j.n_running AS n_active,
         t.id AS task_id, t.idx AS task_idx, t.queue_seq AS task_seq
    FROM jobs j
    JOIN tasks t ON t.rowid = (
         SELECT f.rowid FROM tasks f WHERE f.job_id = j.id AND f.state = 'queued' ORDER BY f.queue_seq LIMIT 1)
   WHERE j.n_queued > 0 AND j.cancel_requested = 0
   ORDER BY t.queue_seq, j.id`;

/** The first `limit` queued tasks of one job, in queue order: a range read on `tasks_job_queue`. */
export const QUEUED_TASKS_OF_JOB_SQL = `
  SELECT id, job_id, idx, queue_seq FROM tasks
   WHERE job_id = ? AND state = 'queued'
   ORDER BY queue_seq LIMIT ?`;

export interface QueuedJobRow {
  id: string; cpu_millis: number; memory_bytes: number; gpus: number; disk_bytes: number;
  run_ms_total: number; runs_timed: number; n_queued: number; n_active: number; task_id: string; task_idx: number; task_seq: number;
}
export interface QueuedTaskRow { id: string; job_id: string; idx: number; queue_seq: number }
