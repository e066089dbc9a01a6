/**
 * Numbered, append-only migrations. Never edit one that has shipped: add the next number. PostgreSQL will use the
 * same numbers with its own dialect, so a database's version means the same thing whichever engine holds it.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'init',
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO meta (key, value) VALUES ('queue_seq', 0);

      CREATE TABLE jobs (
        id               TEXT PRIMARY KEY,
        name             TEXT NOT NULL,
        spec_json        TEXT NOT NULL,
        compiled_json    TEXT NOT NULL,
        inputs_json      TEXT NOT NULL,
        warnings_json    TEXT NOT NULL,
        task_count       INTEGER NOT NULL,
        cpu_millis       INTEGER NOT NULL,
        memory_bytes     INTEGER NOT NULL,
        gpus             INTEGER NOT NULL,
        disk_bytes       INTEGER NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at       INTEGER NOT NULL,
        finished_at      INTEGER,
        -- Task counts per state, kept in step by every task transition (one code path: moveTask).
        n_queued    INTEGER NOT NULL DEFAULT 0,
        n_assigned  INTEGER NOT NULL DEFAULT 0,
        n_running   INTEGER NOT NULL DEFAULT 0,
        n_succeeded INTEGER NOT NULL DEFAULT 0,
        n_failed    INTEGER NOT NULL DEFAULT 0,
        n_cancelled INTEGER NOT NULL DEFAULT 0,
        -- Run time of finished attempts, for the typical task duration (prefetch decisions).
        run_ms_total INTEGER NOT NULL DEFAULT 0,
        runs_timed   INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX jobs_name ON jobs (name, id);

      CREATE TABLE tasks (
        id                 TEXT PRIMARY KEY,
        job_id             TEXT NOT NULL REFERENCES jobs (id),
        idx                INTEGER NOT NULL,
        array_value        TEXT,
        state              TEXT NOT NULL,
        attempts           INTEGER NOT NULL DEFAULT 0,
        user_failures      INTEGER NOT NULL DEFAULT 0,
        system_failures    INTEGER NOT NULL DEFAULT 0,
        current_attempt_id TEXT,
        node_id            TEXT,
        exit_code          INTEGER,
        failure_json       TEXT,
        started_at         INTEGER,
        finished_at        INTEGER,
        queue_seq          INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX tasks_job_idx ON tasks (job_id, idx);
      CREATE INDEX tasks_queue ON tasks (queue_seq) WHERE state = 'queued';

      CREATE TABLE attempts (
        id           TEXT PRIMARY KEY,
        task_id      TEXT NOT NULL REFERENCES tasks (id),
        job_id       TEXT NOT NULL,
        task_index   INTEGER NOT NULL,
        number       INTEGER NOT NULL,
        node_id      TEXT NOT NULL,
        state        TEXT NOT NULL,
        exit_code    INTEGER,
        signal       TEXT,
        failure_json TEXT,
        assigned_at  INTEGER NOT NULL,
        started_at   INTEGER,
        finished_at  INTEGER,
        cpu_millis   INTEGER NOT NULL,
        memory_bytes INTEGER NOT NULL,
        gpus         INTEGER NOT NULL,
        disk_bytes   INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX attempts_task ON attempts (task_id, number);
      CREATE INDEX attempts_active ON attempts (node_id) WHERE state IN ('assigned', 'running');

      CREATE TABLE nodes (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        state         TEXT NOT NULL,
        cpu_millis    INTEGER NOT NULL,
        memory_bytes  INTEGER NOT NULL,
        gpus          INTEGER NOT NULL,
        disk_bytes    INTEGER NOT NULL,
        facts_json    TEXT NOT NULL,
        labels_json   TEXT NOT NULL,
        agent_version TEXT NOT NULL,
        address       TEXT,
        joined_at     INTEGER NOT NULL,
        last_seen_at  INTEGER NOT NULL
      );

      CREATE TABLE outputs (
        attempt_id TEXT NOT NULL,
        job_id     TEXT NOT NULL,
        task_index INTEGER NOT NULL,
        path       TEXT NOT NULL,
        size       INTEGER NOT NULL,
        sha256     TEXT NOT NULL,
        PRIMARY KEY (attempt_id, path)
      );
      CREATE INDEX outputs_job ON outputs (job_id, task_index);

      CREATE TABLE tokens (
        id         TEXT PRIMARY KEY,
        hash       TEXT NOT NULL UNIQUE,
        role       TEXT NOT NULL,
        name       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
      );
    `,
  },
  {
    version: 2,
    name: 'workflows',
    sql: `
      -- A workflow is a set of stages; each stage is a job (jobs.workflow_id, jobs.stage) whose tasks are created
      -- when it is released (jobs.released), or item by item for per-item chaining.
      CREATE TABLE workflows (
        id               TEXT PRIMARY KEY,
        name             TEXT NOT NULL,
        spec_json        TEXT NOT NULL,
        compiled_json    TEXT NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at       INTEGER NOT NULL,
        finished_at      INTEGER
      );
      CREATE INDEX workflows_name ON workflows (name, id);

      ALTER TABLE jobs ADD COLUMN workflow_id TEXT REFERENCES workflows (id);
      ALTER TABLE jobs ADD COLUMN stage TEXT;
      ALTER TABLE jobs ADD COLUMN released INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE jobs ADD COLUMN skip_reason TEXT;
      CREATE INDEX jobs_workflow ON jobs (workflow_id) WHERE workflow_id IS NOT NULL;

      -- Inputs that come from earlier stages, resolved when the task is created (JSON list of files).
      ALTER TABLE tasks ADD COLUMN inputs_json TEXT;
    `,
  },
  {
    version: 3,
    name: 'queue_per_job',
    sql: `
      -- The dispatch pass reads the queue per job (Store.listQueuedJobs / listQueuedTasks), so that work that cannot
      -- run now never hides placeable work behind it. These keep that read O(jobs + tasks read), however long the
      -- queue: the jobs with queued tasks, and each job's queued tasks in queue order.
      CREATE INDEX jobs_with_queued ON jobs (id) WHERE n_queued > 0;
      CREATE INDEX tasks_job_queue ON tasks (job_id, queue_seq) WHERE state = 'queued';
    `,
  },
  {
    version: 4,
    name: 'node_credentials',
    sql: `
      -- A node joins with the join token and receives its own credential: a token bound to its node id (stored
      -- hashed, like every token). It is the only token that can speak for that node; revoking it cuts the node off.
      ALTER TABLE tokens ADD COLUMN node_id TEXT;
      CREATE INDEX tokens_node ON tokens (node_id) WHERE node_id IS NOT NULL;
    `,
  },
  {
    version: 5,
    name: 'node_operations_and_retention',
    sql: `
      -- Operator flags on nodes, honoured by the dispatcher and by applyPlan's re-check: a cordoned or draining node
      -- gets no new work (draining: its running work finishes, then it shows drained); a quarantined one neither,
      -- until quarantined_until (a cool-down) or an operator's uncordon. quarantined_until also marks where the
      -- count of system failures starts again after a release.
      ALTER TABLE nodes ADD COLUMN cordoned INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE nodes ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE nodes ADD COLUMN quarantined_until INTEGER;
      ALTER TABLE nodes ADD COLUMN quarantine_reason TEXT;
      -- Recent failures per node (quarantine counts a node's system failures in a window).
      CREATE INDEX attempts_node_ended ON attempts (node_id, finished_at) WHERE failure_json IS NOT NULL;
      -- Retention: finished jobs and workflows by age.
      CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
      CREATE INDEX workflows_finished ON workflows (finished_at) WHERE finished_at IS NOT NULL;
      CREATE INDEX outputs_sha ON outputs (sha256);
      CREATE INDEX attempts_job ON attempts (job_id);
      -- Tasks whose inputs come from earlier stages (the blobs they need stay referenced).
      CREATE INDEX tasks_with_inputs ON tasks (job_id) WHERE inputs_json IS NOT NULL;
    `,
  },
  {
    version: 6,
    name: 'projects',
    sql: `
      -- The project a job belongs to (admission limits count per project); jobs from before are in 'default'.
      ALTER TABLE jobs ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
      CREATE INDEX jobs_open_by_project ON jobs (project) WHERE finished_at IS NULL;
    `,
  },
  {
    version: 7,
    name: 'deleting',
    sql: `
      -- A finished job too big to delete in one short commit is marked first, then deleted range by range; while
      -- marked it cannot be retried (a retry would reopen a half-deleted job). A crash midway leaves it marked and
      -- still finished: the next collection finishes the deletion.
      ALTER TABLE jobs ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 8,
    name: 'roles_owners_sessions',
    sql: `
      -- Tokens with roles: a submitter's projects (JSON list; NULL for other roles), an optional expiry, and when the
      -- token was last used (written at most once a minute per token).
      ALTER TABLE tokens ADD COLUMN projects_json TEXT;
      ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
      ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
      -- Who submitted each job and workflow (token id, its name and role then). NULL on older work: only the admin
      -- token could submit before this migration.
      ALTER TABLE jobs ADD COLUMN owner_token_id TEXT;
      ALTER TABLE jobs ADD COLUMN owner_name TEXT;
      ALTER TABLE jobs ADD COLUMN owner_role TEXT;
      ALTER TABLE workflows ADD COLUMN owner_token_id TEXT;
      ALTER TABLE workflows ADD COLUMN owner_name TEXT;
      ALTER TABLE workflows ADD COLUMN owner_role TEXT;
      -- A workflow's project (all its stages share it), so a submitter's list is filtered in SQL.
      ALTER TABLE workflows ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
      UPDATE workflows SET project = COALESCE((SELECT j.project FROM jobs j WHERE j.workflow_id = workflows.id LIMIT 1), 'default');
      CREATE INDEX jobs_project ON jobs (project, id);
      CREATE INDEX workflows_project ON workflows (project, id);
      -- Dashboard sessions: the sha256 of a random id, bound to the token that signed in.
      CREATE TABLE sessions (
        hash       TEXT PRIMARY KEY,
        token_id   TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX sessions_token ON sessions (token_id);
    `,
  },
  {
    version: 9,
    name: 'audit_log',
    sql: `
      -- The audit log: append-only, each entry hash-chained to the one before (rules in @dsg/core audit.ts).
      CREATE TABLE audit_log (
        seq         INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        actor_kind  TEXT NOT NULL,
        actor_id    TEXT NOT NULL,
        actor_name  TEXT NOT NULL,
        actor_role  TEXT NOT NULL,
        action      TEXT NOT NULL,
        target      TEXT NOT NULL,
        detail_json TEXT NOT NULL,
        origin      TEXT NOT NULL,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL
      );
      CREATE INDEX audit_log_at ON audit_log (at);
      CREATE INDEX audit_log_action ON audit_log (action, seq);
      -- No code path changes or removes an entry: say so in the schema too, so a bug cannot (an attacker with the
      -- file can drop these; the hash chain and the anchor catch what they then do).
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    `,
  },
  {
    version: 10,
    name: 'attempts_finished_index',
    sql: `
      -- Fair share with memory reads the attempts that finished in the last few half-lives (and the running ones)
      -- every minute or so; without this index that is a scan of every attempt ever kept.
      CREATE INDEX attempts_finished ON attempts (finished_at) WHERE finished_at IS NOT NULL;
    `,
  },
  {
    version: 11,
    name: 'ledger',
    sql: `
      -- The contribution ledger: one row per finished attempt, written in the transaction that ends it (rules in
      -- @dsg/core ledger.ts). Who it is charged to is copied in, so later renames do not rewrite history.
      CREATE TABLE ledger (
        attempt_id      TEXT PRIMARY KEY,
        job_id          TEXT NOT NULL,
        task_index      INTEGER NOT NULL,
        node_id         TEXT NOT NULL,
        node_name       TEXT NOT NULL,
        project         TEXT NOT NULL,
        user_name       TEXT NOT NULL,
        attempt_state   TEXT NOT NULL,
        outcome         TEXT NOT NULL,
        started_at      INTEGER,
        finished_at     INTEGER NOT NULL,
        wall_ms         INTEGER NOT NULL,
        cpu_ms          INTEGER NOT NULL,
        cpu_source      TEXT NOT NULL,
        gpu_ms          INTEGER NOT NULL,
        -- byte-milliseconds overflow 64-bit integers within a day of a large node: kept as a double.
        memory_byte_ms  REAL NOT NULL,
        memory_source   TEXT NOT NULL
      );
      CREATE INDEX ledger_finished ON ledger (finished_at);
    `,
  },
  {
    version: 12,
    name: 'join_requests',
    sql: `
      -- Machines that asked to join without a token, waiting for an admin (dsg node approve / reject). key_hash is
      -- the sha256 of a secret only the asking agent holds: the credential goes to that agent alone.
      CREATE TABLE join_requests (
        id            TEXT PRIMARY KEY,
        key_hash      TEXT NOT NULL UNIQUE,
        name          TEXT NOT NULL,
        facts_json    TEXT NOT NULL,
        address       TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        last_seen_at  INTEGER NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
        decided_at    INTEGER,
        decided_by    TEXT,
        reason        TEXT,
        node_id       TEXT
      );
    `,
  },
  {
    version: 13,
    name: 'join_code_uses',
    sql: `
      -- Join codes admit at most max_uses nodes (NULL: no limit); uses counts the nodes admitted with a token
      -- (Store.useToken: one conditional UPDATE, so a race for a code's last use lets one machine in).
      ALTER TABLE tokens ADD COLUMN max_uses INTEGER;
      ALTER TABLE tokens ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
      -- Pending requests are counted and swept on every new request.
      CREATE INDEX join_requests_state ON join_requests (state, last_seen_at);
    `,
  },
  {
    version: 14,
    name: 'attempt_gpu_devices',
    sql: `
      -- The GPU devices the scheduler chose for an attempt (JSON [{ "index": 0, "memoryBytes": null | bytes }]; null
      -- memoryBytes = held whole). A node's device state is derived from its active attempts' rows, so a restart
      -- restores it and it cannot drift from the attempts. NULL: no GPU (or an attempt from before this column).
      ALTER TABLE attempts ADD COLUMN gpu_devices TEXT;
      -- Every dispatch pass reads the active attempts that hold GPUs: through this index, that costs what they are,
      -- not a walk over every active attempt.
      CREATE INDEX attempts_gpu_active ON attempts (node_id) WHERE state IN ('assigned', 'running') AND gpu_devices IS NOT NULL;
    `,
  },
  {
    version: 15,
    name: 'tasks_narrow',
    sql: `
      -- Every task row maintained five B-trees (the table, the TEXT primary key on id, (job_id, idx), and two partial
      -- indexes of queued tasks). Accepting an array of 1,000,000 tasks wrote ~257 MB and spent most of its time
      -- there: the primary key alone cost about a third, its keys ("job_….10" sorts before "job_….2") arriving in
      -- no order, splitting pages all over the index. A task id is always taskIdOf(job_id, idx), so it is now
      -- computed (a VIRTUAL generated column: read, never stored) and tasks are found by (job_id, idx) through
      -- tasks_job_idx, which already guaranteed one task per id. The global queue index (queue_seq) is gone too:
      -- the dispatcher reads per job (tasks_job_queue), and the two readers of the global order (queueAhead,
      -- listQueued) now read per job as well. Attempts lose their FOREIGN KEY to tasks (id), which needs a
      -- unique index on the parent column; the store writes task_id from the task row it has just read.
      CREATE TABLE attempts_new (
        id           TEXT PRIMARY KEY,
        task_id      TEXT NOT NULL,
        job_id       TEXT NOT NULL,
        task_index   INTEGER NOT NULL,
        number       INTEGER NOT NULL,
        node_id      TEXT NOT NULL,
        state        TEXT NOT NULL,
        exit_code    INTEGER,
        signal       TEXT,
        failure_json TEXT,
        assigned_at  INTEGER NOT NULL,
        started_at   INTEGER,
        finished_at  INTEGER,
        cpu_millis   INTEGER NOT NULL,
        memory_bytes INTEGER NOT NULL,
        gpus         INTEGER NOT NULL,
        disk_bytes   INTEGER NOT NULL,
        gpu_devices  TEXT
      );
      INSERT INTO attempts_new (id, task_id, job_id, task_index, number, node_id, state, exit_code, signal, failure_json, assigned_at,
                                started_at, finished_at, cpu_millis, memory_bytes, gpus, disk_bytes, gpu_devices)
        SELECT id, task_id, job_id, task_index, number, node_id, state, exit_code, signal, failure_json, assigned_at,
               started_at, finished_at, cpu_millis, memory_bytes, gpus, disk_bytes, gpu_devices FROM attempts;
      DROP TABLE attempts;
      ALTER TABLE attempts_new RENAME TO attempts;
      CREATE UNIQUE INDEX attempts_task ON attempts (task_id, number);
      CREATE INDEX attempts_active ON attempts (node_id) WHERE state IN ('assigned', 'running');
      CREATE INDEX attempts_node_ended ON attempts (node_id, finished_at) WHERE failure_json IS NOT NULL;
      CREATE INDEX attempts_job ON attempts (job_id);
      CREATE INDEX attempts_finished ON attempts (finished_at) WHERE finished_at IS NOT NULL;
      CREATE INDEX attempts_gpu_active ON attempts (node_id) WHERE state IN ('assigned', 'running') AND gpu_devices IS NOT NULL;

      CREATE TABLE tasks_new (
        job_id             TEXT NOT NULL REFERENCES jobs (id),
        idx                INTEGER NOT NULL,
        array_value        TEXT,
        state              TEXT NOT NULL,
        attempts           INTEGER NOT NULL DEFAULT 0,
        user_failures      INTEGER NOT NULL DEFAULT 0,
        system_failures    INTEGER NOT NULL DEFAULT 0,
        current_attempt_id TEXT,
        node_id            TEXT,
        exit_code          INTEGER,
        failure_json       TEXT,
        started_at         INTEGER,
        finished_at        INTEGER,
        queue_seq          INTEGER NOT NULL,
        inputs_json        TEXT,
        id                 TEXT GENERATED ALWAYS AS (job_id || '.' || idx) VIRTUAL
      );
      INSERT INTO tasks_new (job_id, idx, array_value, state, attempts, user_failures, system_failures, current_attempt_id, node_id,
                             exit_code, failure_json, started_at, finished_at, queue_seq, inputs_json)
        SELECT job_id, idx, array_value, state, attempts, user_failures, system_failures, current_attempt_id, node_id,
               exit_code, failure_json, started_at, finished_at, queue_seq, inputs_json FROM tasks ORDER BY job_id, idx;
      DROP TABLE tasks;
      ALTER TABLE tasks_new RENAME TO tasks;
      CREATE UNIQUE INDEX tasks_job_idx ON tasks (job_id, idx);
      CREATE INDEX tasks_job_queue ON tasks (job_id, queue_seq) WHERE state = 'queued';
      CREATE INDEX tasks_with_inputs ON tasks (job_id) WHERE inputs_json IS NOT NULL;
    `,
  },
  {
    version: 16,
    name: 'tasks_job_queue_covering',
    sql: `
      -- The dispatch pass's reads of the queue answered by the index alone (queue-queries.ts): each job's queued
      -- tasks by queue position, now with their index in the job, so neither the first task of every job nor a
      -- range of one job's tasks reads a row of the tasks table. Rebuilt over the queued tasks only (partial index).
      DROP INDEX tasks_job_queue;
      CREATE INDEX tasks_job_queue ON tasks (job_id, queue_seq, idx) WHERE state = 'queued';
    `,
  },
  {
    version: 17,
    name: 'jobs_queue_head',
    sql: `
      -- Each job's first queued task kept in its row (queue-queries.ts): \`(queue_seq << 24) | idx\`, NULL when it has
      -- none queued. The pass then reads one row per job from the jobs table (a few dozen pages for 1,000 jobs)
      -- instead of one seek per job into the queue index (a leaf page each once the queue is deep). The store keeps it
      -- exact in every change of a task's state (moveTask, the bulk cancel, task creation).
      ALTER TABLE jobs ADD COLUMN queue_head INTEGER;
      UPDATE jobs SET queue_head = (SELECT (f.queue_seq << 24) | f.idx FROM tasks f WHERE f.job_id = jobs.id AND f.state = 'queued'
                                     ORDER BY f.queue_seq LIMIT 1) WHERE n_queued > 0;
    `,
  },
  {
    version: 18,
    name: 'tasks_without_rowid',
    sql: `
      -- Tasks keyed by (job_id, idx) themselves: a WITHOUT ROWID table whose primary key is what tasks_job_idx was.
      -- A task was a row in the table plus an entry in tasks_job_idx that pointed at it: every read of a task by its
      -- id was two B-tree descents, and every task accepted three B-tree inserts (the table, tasks_job_idx,
      -- tasks_job_queue). Now one descent and two inserts; a job's tasks are also stored together, in index order.
      -- (Rows are ~100 bytes, well under what SQLite advises for WITHOUT ROWID.)
      CREATE TABLE tasks_new (
        job_id             TEXT NOT NULL REFERENCES jobs (id),
        idx                INTEGER NOT NULL,
        array_value        TEXT,
        state              TEXT NOT NULL,
        attempts           INTEGER NOT NULL DEFAULT 0,
        user_failures      INTEGER NOT NULL DEFAULT 0,
        system_failures    INTEGER NOT NULL DEFAULT 0,
        current_attempt_id TEXT,
        node_id            TEXT,
        exit_code          INTEGER,
        failure_json       TEXT,
        started_at         INTEGER,
        finished_at        INTEGER,
        queue_seq          INTEGER NOT NULL,
        inputs_json        TEXT,
        id                 TEXT GENERATED ALWAYS AS (job_id || '.' || idx) VIRTUAL,
        PRIMARY KEY (job_id, idx)
      ) WITHOUT ROWID;
      INSERT INTO tasks_new (job_id, idx, array_value, state, attempts, user_failures, system_failures, current_attempt_id, node_id,
                             exit_code, failure_json, started_at, finished_at, queue_seq, inputs_json)
        SELECT job_id, idx, array_value, state, attempts, user_failures, system_failures, current_attempt_id, node_id,
               exit_code, failure_json, started_at, finished_at, queue_seq, inputs_json FROM tasks ORDER BY job_id, idx;
      DROP TABLE tasks;
      ALTER TABLE tasks_new RENAME TO tasks;
      CREATE INDEX tasks_job_queue ON tasks (job_id, queue_seq, idx) WHERE state = 'queued';
      CREATE INDEX tasks_with_inputs ON tasks (job_id) WHERE inputs_json IS NOT NULL;

      -- The numbers 0 … 9,999, from which an array's tasks are made (a range read of 10,000 rows: a sixth of the CPU of
      -- the counting CTE it replaces, which a recursive query runs through a queue of its own). As many as the store
      -- inserts per commit (CREATE_CHUNK); sqlite-store.ts reads bigger ranges in slices of it.
      CREATE TABLE counting (n INTEGER PRIMARY KEY);
      WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < 10000) INSERT INTO counting (n) SELECT i FROM c;
    `,
  },
];
