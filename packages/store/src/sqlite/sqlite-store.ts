/**
 * SqliteStore: the Store port on embedded SQLite, the default store. The driver (the built-in node:sqlite or the
 * native better-sqlite3) sits behind ./driver.ts; both pass the same conformance suite.
 *
 * Durability: WAL journal with synchronous=FULL, so a commit is on disk before any method resolves: an accepted
 * job or a recorded result survives a crash of the process or the machine. Throughput comes from grouping (the
 * engine hands over many reports per call, and each call is one transaction), not from weaker syncing.
 *
 * Invariants kept here:
 *  - every task state change goes through `moveTask`, which checks the transition table and keeps the job's
 *    per-state counters in step, so job state and progress are O(1) reads (in the hot-path transactions the job
 *    rows' changes are gathered and written once per job before the commit: job-row-changes.ts);
 *  - a task's `current_attempt_id` names its only active attempt; reports about any other attempt are fenced off;
 *  - a node's allocation is the sum of its active attempts' resources (copied onto each attempt at creation), so it
 *    cannot drift from the attempts themselves;
 *  - a job's `finished_at` is set exactly when its last task reaches a terminal state.
 *
 * The methods are async to honour the port, but run synchronously inside: a transaction (driver.ts) cannot
 * span an await, which also means no other call interleaves with one in flight.
 */
import {
  AUDIT_GENESIS,
  auditHash,
  chargeAttempt,
  addGpuGrants,
  checkGpuGrants,
  gpuDeviceUse,
  gpuRequestOf,
  gpuUnits,
  type GpuDeviceUse,
  type GpuGrant,
  type GpuNeeds,
  type GpuRequest,
  type NodeFacts,
  LEDGER_DEFAULT_USER,
  type AttemptUsage,
  type LedgerSums,
  type AuditEntry,
  type AuditInput,
  type HashFn,
  addResources,
  ConflictError,
  assertAttemptTransition,
  assertTaskRetry,
  assertTaskTransition,
  decideAfterAttempt,
  filesFanOut,
  fits,
  isActiveAttempt,
  isTerminalTask,
  itemReleases,
  planWorkflow,
  resolveArtifacts,
  taskIdOf,
  workflowState,
  ZERO_RESOURCES,
  type StageOutput,
  type StageProgress,
  type WireInputFile,
  type TokenId,
  type WorkflowId,
  type AttemptEnd,
  type AttemptId,
  type AttemptState,
  type JobId,
  type NodeId,
  type NodeState,
  type Resources,
  type TaskId,
  type TaskState,
} from '@dsg/core';
import type {
  LedgerQuery,
  AuditQuery,
  ApplyPlanResult,
  AttemptRecord,
  CreatedAttempt,
  ListWorkflowsQuery,
  NewWorkflow,
  RetryResult,
  StageRecord,
  WorkflowRecord,
  FinishReport,
  FinishResult,
  JobRecord,
  ListJobsQuery,
  ListTasksQuery,
  NewAttempt,
  NewJob,
  NodeFlagsChange,
  NodeRecord,
  NodeUpsert,
  NodeUsage,
  OutputRecord,
  Page,
  QueuedJob,
  QueuedTask,
  QueuedTaskRef,
  StartReport,
  Store,
  StorePolicy,
  TaskRecord,
  TokenRecord,
  JoinRequestRecord,
  SessionRecord,
  QuarantinePolicy,
  FinishedWork,
  StoreStats,
} from '../store.js';
import { JobRowChanges, type CounterColumn } from './job-row-changes.js';
import { MIGRATIONS } from './migrations.js';
import { packQueueHead, QUEUE_HEAD_OF_JOB_SQL, QUEUED_JOBS_SQL, QUEUED_TASKS_OF_JOB_SQL, type QueuedJobRow, type QueuedTaskRow } from './queue-queries.js';
import {
  cachedCompiled,
  compiledOf,
  countsOf,
  gateOf,
  JOB_STATE_SQL,
  workflowOf,
  type WorkflowRow,
  toAttempt,
  toJob,
  toNode,
  nodeOf,
  NODE_SCALAR_COLUMNS,
  type NodeScalarRow,
  parseGpuGrants,
  toOutput,
  toTask,
  toToken,
  ownerOf,
  type SessionRow,
  type AttemptRow,
  type JobRow,
  type NodeRow,
  type OutputRow,
  type TaskRow,
  type TokenRow,
} from './rows.js';
import { GPU_HELD_OF_NODE_SQL, GPU_HELD_SQL } from './gpu-queries.js';
import { openSqliteDatabase, sqliteModulePath, type SqlDatabase, type SqliteDriverChoice, type SqliteDriverName, type SqlStatement, type SqlValue } from './driver.js';
import { Checkpointer } from './checkpointer.js';

export interface SqliteStoreOptions {
  /** Database file, or `:memory:`. */
  readonly file: string;
  /**
   * The SQLite driver: `better-sqlite3` (the native add-on, prebuilt), `node` (the built-in node:sqlite, Node ≥
   * 22.13), or `auto`: better-sqlite3 when it loads, else node:sqlite. Default `auto`.
   */
  readonly driver?: SqliteDriverChoice;
  /**
   * Told, in a sentence, when `init` upgrades a database that already holds tasks, before each migration and
   * after it (some rebuild the tasks table: ~3 s per 1,000,000 tasks), so a start that takes a while says why.
   */
  readonly onUpgrade?: (message: string) => void;
}

/** Tasks per commit when a big job is accepted (see createJob). */
const CREATE_CHUNK = 10_000;
/** Rows 0 … COUNTING_ROWS − 1 of the table `counting` (migration 18), from which array tasks are made. */
const COUNTING_ROWS = 10_000;
/**
 * Tasks per commit when a big finished job is deleted (see deleteFinishedWork). 10,000 held the event loop ~300 ms
 * per commit on the 2-core VM under load (`npm run bench:scale`, retention: health p99 334 ms); deleting a task
 * touches the table and four indexes.
 */
const DELETE_CHUNK = 2_000;

const TERMINAL_SQL = "'succeeded', 'failed', 'cancelled', 'skipped'";
/** Set (or, after a retry, clear) the job `$job`'s finished_at from its derived state, at `$now`. */
const FINISH_JOB_IF_DONE_SQL = `UPDATE jobs SET finished_at = CASE WHEN (${JOB_STATE_SQL}) IN (${TERMINAL_SQL}) THEN COALESCE(finished_at, $now) ELSE NULL END WHERE id = $job`;
const CANCELLED_BEFORE_START = JSON.stringify({ kind: 'user', reason: 'cancelled', message: 'cancelled before it started' });

/** System failures that are the node's own doing (it could not start, fetch or send): they count toward quarantine. */
const QUARANTINE_REASONS: ReadonlySet<string> = new Set(['executor_error', 'inputs_unavailable', 'outputs_failed']);

const COUNTER: Record<TaskState, CounterColumn> = {
  queued: 'n_queued', assigned: 'n_assigned', running: 'n_running',
  succeeded: 'n_succeeded', failed: 'n_failed', cancelled: 'n_cancelled',
};

/** What a node's active attempts hold (sums of their declared resources), and of that what is running. */
interface Allocation {
  readonly allocated: Resources;
  readonly count: number;
  readonly running: Resources;
  readonly runningCount: number;
}
/** `v` and everything in it made read-only (plain JSON data: objects and arrays). */
function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
const NO_ALLOCATION: Allocation = Object.freeze({ allocated: ZERO_RESOURCES, count: 0, running: ZERO_RESOURCES, runningCount: 0 });
interface AllocationRow { node_id: string; n: number; cpu: number; mem: number; gpus: number; disk: number; rn: number; rcpu: number; rmem: number; rgpus: number; rdisk: number }
const ALLOCATION_COLUMNS = `COUNT(*) AS n, SUM(cpu_millis) AS cpu, SUM(memory_bytes) AS mem, SUM(gpus) AS gpus, SUM(disk_bytes) AS disk,
  SUM(state = 'running') AS rn,
  SUM(CASE WHEN state = 'running' THEN cpu_millis ELSE 0 END) AS rcpu,
  SUM(CASE WHEN state = 'running' THEN memory_bytes ELSE 0 END) AS rmem,
  SUM(CASE WHEN state = 'running' THEN gpus ELSE 0 END) AS rgpus,
  SUM(CASE WHEN state = 'running' THEN disk_bytes ELSE 0 END) AS rdisk`;
/** Frozen: the same objects are handed out by every listNodeUsage until the node's attempts change. */
const allocationOfRow = (r: Omit<AllocationRow, 'node_id'>): Allocation => Object.freeze({
  count: r.n,
  allocated: Object.freeze({ cpuMillis: r.cpu, memoryBytes: r.mem, gpus: r.gpus, diskBytes: r.disk }),
  runningCount: r.rn,
  running: Object.freeze({ cpuMillis: r.rcpu, memoryBytes: r.rmem, gpus: r.rgpus, diskBytes: r.rdisk }),
});

export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}

interface JoinRequestRow {
  id: string; key_hash: string; name: string; facts_json: string; address: string; created_at: number; last_seen_at: number;
  state: 'pending' | 'approved' | 'rejected'; decided_at: number | null; decided_by: string | null; reason: string | null; node_id: string | null;
}
const toJoinRequest = (r: JoinRequestRow): JoinRequestRecord => ({
  id: r.id, keyHash: r.key_hash, name: r.name, factsJson: r.facts_json, address: r.address, createdAt: r.created_at, lastSeenAt: r.last_seen_at,
  state: r.state, decidedAt: r.decided_at, decidedBy: r.decided_by, reason: r.reason, nodeId: r.node_id as NodeId | null,
});

/** What the store keeps of each node between reads (SqliteStore.nodeJsonOf); name null: no such node. */
interface NodeKept { readonly name: string | null; readonly facts: NodeFacts; readonly labels: Readonly<Record<string, string>> }
/** What finishing and placing attempts read of their job (SqliteStore.batchJob): nothing the hot path changes. */
type BatchJobRow = Pick<JobRow, 'id' | 'cancel_requested' | 'workflow_id' | 'stage'> & {
  project: string; owner_name: string | null; cpu_millis: number; memory_bytes: number; gpus: number; disk_bytes: number; task_count: number;
};

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private readonly db: SqlDatabase;
  private readonly stmts = new Map<string, SqlStatement>();
  /** While a hot-path transaction runs (`gatheringJobRows`): its changes to job rows, written once per job. */
  private jobRows: JobRowChanges | null = null;
  /**
   * While a hot-path transaction runs: what finishes and placements read of each job that no such transaction changes
   * (its cancel flag, workflow, stage, project, owner and resources — cancels and retries commit on their own), read
   * once per transaction instead of once per attempt (batchJob).
   */
  private batchJobs: Map<string, BatchJobRow> | null = null;
  private readonly writeJobRow = (sql: string, params: Record<string, string | number | bigint>): void => void this.q(sql).run(params);
  private readonly file: string;
  /** Checkpoints in a worker thread while big jobs are inserted (checkpointer.ts); started on the first one. */
  private checkpointer: Checkpointer | null = null;
  /** Big inserts in progress (they interleave between chunks); automatic checkpoints are off while any runs. */
  private bigInserts = 0;

  private readonly onUpgrade: ((message: string) => void) | undefined;

  constructor(options: SqliteStoreOptions) {
    this.file = options.file;
    this.onUpgrade = options.onUpgrade;
    this.db = openSqliteDatabase(options.file, { driver: options.driver ?? 'auto' });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    // A 64 MiB page cache (SQLite's default is 2 MiB). A dispatch pass seeks the first queued task of every job; with
    // millions of tasks queued those pages do not fit in 2 MiB and each pass would re-read them through the OS.
    // (On the loaded VM a pass over 1,000 jobs measured 13 ms with 1,000 tasks queued and 65 ms with 1,000,000
    // before; with this cache 19 / 19 / 28 ms at 1,000 / 1,000,000 / 10,000,000 in a quieter run — the load moved
    // too, so the share of the cache in that is not isolated.) Memory, not a file mapping: the coordinator's RSS
    // stays bounded however big the database grows (322 MiB with 10,000,000 queued).
    this.db.pragma('cache_size = -65536');
    // The WAL grows to about a big job's size while it is inserted (its checkpoints run beside the writer, which
    // keeps appending); once it is checkpointed and restarts, the file is cut back to this (64 MiB).
    this.db.pragma('journal_size_limit = 67108864');
  }

  /** Prepared statements, cached by their SQL. */
  /** The driver this store runs on (for diagnostics and tests). */
  get driver(): SqliteDriverName {
    return this.db.driver;
  }

  private q(sql: string): SqlStatement {
    let s = this.stmts.get(sql);
    if (!s) this.stmts.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /**
   * A task's row by its id. The id is `taskIdOf(job_id, idx)`, computed rather than stored (migration 15), so the
   * row is found by its primary key (job_id, idx); a string that is not exactly such an id (`job….05`, `job….`) finds nothing.
   */
  private taskRow(id: string): TaskRow | undefined {
    const dot = id.lastIndexOf('.');
    const jobId = id.slice(0, dot) as JobId;
    const index = Number(id.slice(dot + 1));
    if (dot < 0 || !Number.isSafeInteger(index) || taskIdOf(jobId, index) !== id) return undefined;
    return this.taskAt(jobId, index);
  }

  /** A task's row by its job and index (the table's primary key, migration 18). */
  private taskAt(jobId: string, index: number): TaskRow | undefined {
    return this.q('SELECT * FROM tasks WHERE job_id = ? AND idx = ?').get(jobId, index) as TaskRow | undefined;
  }

  async init(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = new Set((this.db.prepare('SELECT version FROM schema_migrations').all() as Array<{ version: number }>).map((r) => r.version));
    // A database that holds tasks is being upgraded (a new one has no tasks table yet, or an empty one): say so.
    const hasTasks = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tasks'").get() !== undefined
      && this.db.prepare('SELECT 1 FROM tasks LIMIT 1').get() !== undefined;
    for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      const t0 = performance.now();
      if (hasTasks) this.onUpgrade?.(`upgrading the database: migration ${m.version} (${m.name}); with many tasks this takes a while (about 4 s per million), do not stop it`);
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      });
      if (hasTasks) this.onUpgrade?.(`migration ${m.version} (${m.name}) done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    // A big job whose chunked insert a crash interrupted was never acknowledged: remove what there is of it.
    this.db.transaction(() => {
      const half = this.db.prepare('SELECT id FROM jobs WHERE workflow_id IS NULL AND released = 0').all() as Array<{ id: string }>;
      for (const { id } of half) {
        this.db.prepare('DELETE FROM tasks WHERE job_id = ?').run(id);
        this.db.prepare('DELETE FROM jobs WHERE id = ?').run(id);
      }
    });
  }

  async close(): Promise<void> {
    await this.checkpointer?.close();
    this.db.close();
  }

  /**
   * A big insert begins: automatic checkpoints off, the worker asked for one after each chunk instead (the copy and
   * its fsyncs then run beside the event loop). Null (checkpoints stay where they were) for an in-memory database
   * or when no worker can be started.
   */
  private beginBigInsert(): Checkpointer | null {
    if (this.file === ':memory:' || this.file === '') return null;
    if (!this.checkpointer?.usable) {
      try {
        this.checkpointer = new Checkpointer(this.file, this.db.driver, sqliteModulePath(this.db.driver));
      } catch {
        return null;
      }
    }
    this.bigInserts++;
    this.db.pragma('wal_autocheckpoint = 0');
    return this.checkpointer;
  }

  /** After a last checkpoint, automatic checkpoints again (SQLite's default, 1,000 pages) once no big insert runs. */
  private endBigInsert(ckpt: Checkpointer | null): void {
    if (!ckpt) return;
    void ckpt.checkpoint().then(() => {
      if (--this.bigInserts === 0 && this.db.isOpen) this.db.pragma('wal_autocheckpoint = 1000');
    });
  }

  async probeWrite(now: number): Promise<void> {
    // A real commit (synchronous=FULL: through to the disk), not a read: a full disk or a read-only mount fails here.
    this.db.transaction(() => {
      this.q("INSERT INTO meta (key, value) VALUES ('ready_probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(now);
    });
  }

  // ── jobs and tasks ──────────────────────────────────────────────────────────────────────────────────────
  /**
   * A job of up to CREATE_CHUNK tasks is inserted in one commit. A bigger one is inserted in chunks, the event loop
   * free between them (one commit of 100,000 tasks held it for ~0.4 s): the job is first stored *unreleased*
   * (invisible to dispatch), its tasks follow chunk by chunk, and one last commit releases it with its counters.
   * The caller is answered only after that commit, so a crash midway leaves an unreleased plain job nobody was
   * told about; `init` removes such leftovers. Either the whole job is accepted or none of it.
   */
  async createJob(job: NewJob): Promise<JobRecord> {
    const c = job.compiled;
    const n = c.taskCount;
    const chunked = n > CREATE_CHUNK;
    const first = this.db.transaction(() => {
      const start = this.allocSeq(n);
      this.q(
        `INSERT INTO jobs (id, name, spec_json, compiled_json, inputs_json, warnings_json, task_count, cpu_millis, memory_bytes, gpus, disk_bytes, created_at, n_queued, project, released,
                           owner_token_id, owner_name, owner_role, queue_head)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(job.id, job.name, JSON.stringify(job.spec), JSON.stringify(c), JSON.stringify(job.inputs), JSON.stringify(job.warnings), n,
        c.resources.cpuMillis, c.resources.memoryBytes, c.resources.gpus, c.resources.diskBytes, job.createdAt, chunked ? 0 : n, c.project ?? 'default', chunked ? 0 : 1,
        job.owner?.tokenId ?? null, job.owner?.name ?? null, job.owner?.role ?? null,
        // Its first queued task: index 0, at the first of its queue positions (a big job's tasks follow in chunks).
        n > 0 ? packQueueHead(start, 0) : null);
      if (!chunked) this.insertQueuedTasks(job.id, c.arrayValues, 0, n, start);
      return start;
    });
    if (chunked) {
      const ckpt = this.beginBigInsert();
      try {
        await this.insertChunks(job.id, c.arrayValues, n, first, ckpt);
        this.q('UPDATE jobs SET released = 1, n_queued = ? WHERE id = ?').run(n, job.id);
      } finally {
        this.endBigInsert(ckpt);
      }
    }
    return (await this.getJob(job.id))!;
  }

  /** The tasks of a big job, CREATE_CHUNK per commit, the event loop free between chunks. */
  private async insertChunks(jobId: JobId, values: readonly string[] | null, n: number, first: number, ckpt: Checkpointer | null): Promise<void> {
    for (let from = 0; from < n; from += CREATE_CHUNK) {
      // Without an fsync of its own: until the last commit releases the job nothing depends on these rows (a crash
      // loses at most an unreleased job, which `init` removes), and that commit's fsync of the WAL makes every
      // earlier frame durable with it. 99 of the 100 fsyncs of a 1,000,000-task job are saved. Back to FULL before
      // the event loop runs anything else, so no other commit is ever made without its fsync. (A checkpoint, here
      // or in the worker, fsyncs the WAL before it copies any frame into the database file.)
      this.db.pragma('synchronous = NORMAL');
      try {
        this.withoutForeignKeyChecks(() => this.db.transaction(() => this.insertQueuedTasks(jobId, values, from, Math.min(n, from + CREATE_CHUNK), first)));
      } finally {
        this.db.pragma('synchronous = FULL');
      }
      // Not awaited: the worker copies this chunk's pages while the next chunk is made.
      void ckpt?.checkpoint();
      await new Promise((r) => setImmediate(r));
    }
  }

  /**
   * `fn` (a transaction of task inserts for a job this store has just written) without SQLite's per-row check that
   * each task's job exists — a seek into the jobs table per task, ~10% of the CPU of accepting a big array; the job
   * is ours and already in its row. Outside any transaction only (SQLite ignores the pragma inside one), and on
   * again before anything else can run on this connection.
   */
  private withoutForeignKeyChecks<T>(fn: () => T): T {
    this.db.pragma('foreign_keys = OFF');
    try {
      return fn();
    } finally {
      this.db.pragma('foreign_keys = ON');
    }
  }

  /**
   * Tasks [from, to) of a job, queued, in one statement: SQLite makes the rows itself (from a range of the numbers
   * table `counting`, or the elements of a JSON array of the values), which takes less than half the CPU of one bound
   * INSERT per task (measured: 300,000 tasks, 2.0 s → 0.86 s of CPU, with a counting CTE then; the numbers table
   * makes 1,000,000 indexes with 85 ms of CPU where the CTE took 470). Task ids are `taskIdOf(jobId, index)`. The CASTs matter:
   * better-sqlite3 binds a JS number as a REAL, and `'.' || 0.0` would make the id `job….0.0`.
   */
  private insertQueuedTasks(jobId: JobId, values: readonly string[] | null, from: number, to: number, firstSeq: number): void {
    if (to <= from) return;
    if (values) {
      this.q(
        `INSERT INTO tasks (job_id, idx, array_value, state, queue_seq)
         SELECT $job, CAST($from AS INTEGER) + key, value, 'queued', CAST($seq AS INTEGER) + $from + key FROM json_each($values)`,
      ).run({ job: jobId, from, seq: firstSeq, values: JSON.stringify(values.slice(from, to)) });
    } else {
      // Made from a range of the numbers table (migration 18), in slices of its size.
      for (let lo = from; lo < to; lo += COUNTING_ROWS) {
        this.q(
          `INSERT INTO tasks (job_id, idx, array_value, state, queue_seq)
           SELECT $job, CAST($from AS INTEGER) + n, NULL, 'queued', CAST($seq AS INTEGER) + $from + n FROM counting WHERE n < CAST($count AS INTEGER)`,
        ).run({ job: jobId, from: lo, seq: firstSeq, count: Math.min(to, lo + COUNTING_ROWS) - lo });
      }
    }
  }

  async getJob(id: JobId): Promise<JobRecord | null> {
    const r = this.q('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return r ? toJob(r) : null;
  }

  async listJobs(query: ListJobsQuery): Promise<Page<JobRecord>> {
    const where: string[] = [];
    const args: SqlValue[] = [];
    const oldest = query.order === 'oldest';
    if (query.cursor) {
      where.push(oldest ? 'id > ?' : 'id < ?');
      args.push(query.cursor);
    }
    if (query.name) {
      // Exact name, or a prefix when it ends with '*'.
      if (query.name.endsWith('*')) {
        where.push("name LIKE ? ESCAPE '\\'");
        args.push(`${query.name.slice(0, -1).replace(/[\\%_]/g, (m) => `\\${m}`)}%`);
      } else {
        where.push('name = ?');
        args.push(query.name);
      }
    }
    if (query.state) {
      where.push(`(${JOB_STATE_SQL}) = ?`);
      args.push(query.state);
    }
    if (query.projects) {
      where.push(`project IN (${query.projects.map(() => '?').join(', ') || 'NULL'})`);
      args.push(...query.projects);
    }
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id ${oldest ? 'ASC' : 'DESC'} LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, query.limit + 1) as JobRow[];
    const more = rows.length > query.limit;
    const items = rows.slice(0, query.limit).map(toJob);
    return { items, nextCursor: more ? items[items.length - 1]!.id : null };
  }

  async requestCancel(id: JobId, now: number): Promise<{ job: JobRecord; toKill: readonly AttemptRecord[]; alreadyFinished: boolean } | null> {
    // Short whatever the job's size: its queued tasks are cancelled afterwards, range by range (cancelQueuedTasks).
    const r = this.db.transaction(() => {
      const found = this.q('SELECT finished_at FROM jobs WHERE id = ?').get(id) as { finished_at: number | null } | undefined;
      if (!found) return null;
      // A finished job keeps its history: cancelling it changes nothing.
      if (found.finished_at !== null) return { toKill: [], alreadyFinished: true };
      this.q('UPDATE jobs SET cancel_requested = 1 WHERE id = ?').run(id);
      const toKill = (this.q("SELECT * FROM attempts WHERE job_id = ? AND state IN ('assigned', 'running')").all(id) as AttemptRow[]).map(toAttempt);
      const wf = this.q('SELECT workflow_id FROM jobs WHERE id = ?').get(id) as { workflow_id: string | null };
      // A stage not released yet is cancelled now (it has no tasks); what needs it is skipped.
      if (wf.workflow_id) this.advanceWorkflow(wf.workflow_id, now, []);
      return { toKill, alreadyFinished: false };
    });
    return r ? { job: (await this.getJob(id))!, ...r } : null;
  }

  async cancelQueuedTasks(id: JobId, range: { readonly from: number; readonly to: number }, now: number): Promise<number> {
    // Bulk: one UPDATE for the range, the counters moved by the number of rows it changed. The legality of
    // queued → cancelled is still checked against the transition table (moveTask's rule, for many rows at once).
    assertTaskTransition('queued', 'cancelled');
    return this.db.transaction(() => {
      const job = this.q('SELECT cancel_requested FROM jobs WHERE id = ?').get(id) as { cancel_requested: number } | undefined;
      if (!job || job.cancel_requested !== 1) return 0;
      const { changes } = this.q(
        "UPDATE tasks SET state = 'cancelled', finished_at = ?, failure_json = ? WHERE job_id = ? AND idx >= ? AND idx < ? AND state = 'queued'",
      ).run(now, CANCELLED_BEFORE_START, id, range.from, range.to);
      if (changes > 0) {
        this.q(`UPDATE jobs SET ${COUNTER.queued} = ${COUNTER.queued} - ?, ${COUNTER.cancelled} = ${COUNTER.cancelled} + ? WHERE id = ?`).run(changes, changes, id);
        this.refreshQueueHead(id);
        this.finishJobIfDone(id, now);
        const wf = this.q('SELECT workflow_id FROM jobs WHERE id = ?').get(id) as { workflow_id: string | null };
        if (wf.workflow_id) this.advanceWorkflow(wf.workflow_id, now, []);
      }
      return changes;
    });
  }

  async listCancellingJobs(): Promise<readonly JobId[]> {
    return (this.q('SELECT id FROM jobs WHERE cancel_requested = 1 AND n_queued > 0 ORDER BY id').all() as Array<{ id: JobId }>).map((r) => r.id);
  }

  async listTasks(jobId: JobId, query: ListTasksQuery): Promise<Page<TaskRecord>> {
    const after = query.cursor !== undefined ? Number(query.cursor) : -1;
    const rows = (query.state
      ? this.q('SELECT * FROM tasks WHERE job_id = ? AND idx > ? AND state = ? ORDER BY idx LIMIT ?').all(jobId, after, query.state, query.limit + 1)
      : this.q('SELECT * FROM tasks WHERE job_id = ? AND idx > ? ORDER BY idx LIMIT ?').all(jobId, after, query.limit + 1)) as TaskRow[];
    const more = rows.length > query.limit;
    const items = rows.slice(0, query.limit).map(toTask);
    return { items, nextCursor: more ? String(items[items.length - 1]!.index) : null };
  }

  async getTask(id: TaskId): Promise<TaskRecord | null> {
    const r = this.taskRow(id);
    return r ? toTask(r) : null;
  }

  async listAttempts(taskId: TaskId): Promise<readonly AttemptRecord[]> {
    return (this.q('SELECT * FROM attempts WHERE task_id = ? ORDER BY number').all(taskId) as AttemptRow[]).map(toAttempt);
  }

  async getAttempt(id: AttemptId): Promise<AttemptRecord | null> {
    const r = this.q('SELECT * FROM attempts WHERE id = ?').get(id) as AttemptRow | undefined;
    return r ? toAttempt(r) : null;
  }

  // ── scheduling ──────────────────────────────────────────────────────────────────────────────────────────
  async listQueued(limit: number): Promise<readonly QueuedTask[]> {
    const rows = this.q(
      // No index orders all queued tasks (migration 15): the first `limit` of each job with queued tasks, through
      // tasks_job_queue, then the best `limit` of those. O(jobs × limit), however long the queue.
      `SELECT t.id, t.job_id, t.idx, t.queue_seq, j.cpu_millis, j.memory_bytes, j.gpus, j.disk_bytes, j.run_ms_total, j.runs_timed
         FROM jobs j CROSS JOIN tasks t
        WHERE j.n_queued > 0 AND t.job_id = j.id AND t.idx IN (
              SELECT f.idx FROM tasks f WHERE f.job_id = j.id AND f.state = 'queued' ORDER BY f.queue_seq LIMIT $limit)
        ORDER BY t.queue_seq LIMIT $limit`,
    ).all({ limit }) as Array<{ id: string; job_id: string; idx: number; queue_seq: number; cpu_millis: number; memory_bytes: number; gpus: number; disk_bytes: number; run_ms_total: number; runs_timed: number }>;
    return rows.map((r) => ({
      taskId: r.id as TaskId,
      jobId: r.job_id as JobId,
      index: r.idx,
      seq: r.queue_seq,
      resources: { cpuMillis: r.cpu_millis, memoryBytes: r.memory_bytes, gpus: r.gpus, diskBytes: r.disk_bytes },
      typicalRunMs: r.runs_timed > 0 ? r.run_ms_total / r.runs_timed : null,
    }));
  }

  async waitingTasks(project: string): Promise<{ readonly total: number; readonly project: number }> {
    // Tasks of unfinished jobs that have not started: queued, or not created yet (waiting workflow stages).
    const waiting = 'COALESCE(SUM(task_count - n_assigned - n_running - n_succeeded - n_failed - n_cancelled), 0)';
    const all = this.q(`SELECT ${waiting} AS n FROM jobs WHERE finished_at IS NULL`).get() as { n: number };
    const mine = this.q(`SELECT ${waiting} AS n FROM jobs WHERE finished_at IS NULL AND project = ?`).get(project) as { n: number };
    return { total: all.n, project: mine.n };
  }

  async allocationByProject(): Promise<ReadonlyMap<string, Resources>> {
    const rows = this.q(
      `SELECT j.project, SUM(a.cpu_millis) AS cpu, SUM(a.memory_bytes) AS mem, SUM(a.gpus) AS gpus, SUM(a.disk_bytes) AS disk
         FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.state IN ('assigned', 'running') GROUP BY j.project`,
    ).all() as Array<{ project: string; cpu: number; mem: number; gpus: number; disk: number }>;
    return new Map(rows.map((r) => [r.project, { cpuMillis: r.cpu, memoryBytes: r.mem, gpus: r.gpus, diskBytes: r.disk }]));
  }

  async projectUsageSince(since: number): Promise<{
    readonly records: ReadonlyArray<{ readonly project: string; readonly resources: Resources; readonly startedAt: number; readonly finishedAt: number | null }>;
    readonly active: ReadonlyMap<string, { readonly tasks: number; readonly gpus: number }>;
  }> {
    const cols = 'j.project, a.cpu_millis AS cpu, a.memory_bytes AS mem, a.gpus, a.disk_bytes AS disk, a.started_at AS s, a.finished_at AS f';
    type Row = { project: string; cpu: number; mem: number; gpus: number; disk: number; s: number; f: number | null };
    // Two indexed reads (attempts_finished, attempts_active) instead of one scan of every attempt kept.
    const rows = [
      ...(this.q(`SELECT ${cols} FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.finished_at IS NOT NULL AND a.finished_at >= ? AND a.started_at IS NOT NULL`).all(since) as Row[]),
      ...(this.q(`SELECT ${cols} FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.state IN ('assigned', 'running') AND a.finished_at IS NULL`).all() as Row[]),
    ];
    const active = new Map<string, { tasks: number; gpus: number }>();
    const records = [];
    for (const r of rows) {
      const resources = { cpuMillis: r.cpu, memoryBytes: r.mem, gpus: r.gpus, diskBytes: r.disk };
      if (r.f === null) {
        const a = active.get(r.project) ?? { tasks: 0, gpus: 0 };
        active.set(r.project, { tasks: a.tasks + 1, gpus: a.gpus + r.gpus });
      }
      if (r.s !== null) records.push({ project: r.project, resources, startedAt: r.s, finishedAt: r.f });
    }
    return { records, active };
  }

  async activeTaskCounts(): Promise<{ readonly queued: number; readonly assigned: number; readonly running: number }> {
    const r = this.q('SELECT COALESCE(SUM(n_queued), 0) AS q, COALESCE(SUM(n_assigned), 0) AS a, COALESCE(SUM(n_running), 0) AS r FROM jobs WHERE finished_at IS NULL').get() as { q: number; a: number; r: number };
    return { queued: r.q, assigned: r.a, running: r.r };
  }

  async queueAhead(id: JobId): Promise<{ readonly tasksAhead: number; readonly jobsAhead: number } | null> {
    const first = this.q("SELECT MIN(queue_seq) AS seq FROM tasks WHERE job_id = ? AND state = 'queued'").get(id) as { seq: number | null };
    if (first.seq === null) return null;
    const r = this.q(
      // Per job with queued tasks (jobs_with_queued), a range count on its tasks_job_queue entries: there is no global
      // index of queued tasks (migration 15).
      `SELECT COUNT(*) AS tasks, COUNT(DISTINCT j.id) AS jobs FROM jobs j CROSS JOIN tasks t
        WHERE j.n_queued > 0 AND j.id != $job AND j.cancel_requested = 0
          AND t.job_id = j.id AND t.state = 'queued' AND t.queue_seq < $seq`,
    ).get({ seq: first.seq, job: id }) as { tasks: number; jobs: number };
    return { tasksAhead: r.tasks, jobsAhead: r.jobs };
  }

  async listQueuedJobs(): Promise<readonly QueuedJob[]> {
    // A job counted as queued without a queued task (the counter drifted) has no row here (QUEUED_JOBS_SQL).
    return (this.q(QUEUED_JOBS_SQL).all() as QueuedJobRow[]).map((r) => ({
      jobId: r.id as JobId,
      resources: { cpuMillis: r.cpu_millis, memoryBytes: r.memory_bytes, gpus: r.gpus, diskBytes: r.disk_bytes },
      typicalRunMs: r.runs_timed > 0 ? r.run_ms_total / r.runs_timed : null,
      queued: r.n_queued,
      active: r.n_active,
      first: { taskId: taskIdOf(r.id as JobId, r.task_idx), jobId: r.id as JobId, index: r.task_idx, seq: r.task_seq },
    }));
  }

  async listQueuedTasks(reads: ReadonlyArray<{ readonly jobId: JobId; readonly limit: number }>): Promise<readonly QueuedTaskRef[]> {
    const stmt = this.q(QUEUED_TASKS_OF_JOB_SQL);
    // One read transaction, so every job is read from the same snapshot.
    return this.db.transaction(() => {
      const out: QueuedTaskRef[] = [];
      for (const { jobId, limit } of reads) {
        if (!(limit > 0)) continue;
        for (const r of stmt.all(jobId, Math.floor(limit)) as QueuedTaskRow[])
          out.push({ taskId: taskIdOf(r.job_id as JobId, r.idx), jobId: r.job_id as JobId, index: r.idx, seq: r.queue_seq });
      }
      return out;
    });
  }

  /**
   * Each node's allocation: what its active attempts hold. The dispatcher reads it for every online node on every
   * pass (listNodeUsage), so it is kept between reads and brought up to date only for the nodes whose attempts
   * changed since (`allocStale`, null for all), one seek each into attempts_active. Every write that changes an
   * active attempt names its node there: an attempt placed, started or ended (placeAttempts, applyStarts,
   * finishOne — through which losses, requeues and timeouts go too); deleting attempts marks them all. A mark left
   * by a transaction that rolled back only costs a needless re-read. Read outside transactions only (what is kept
   * must be committed); a transaction reads a node's allocation fresh (allocationOf).
   * Why: with 1,000 agents holding 10,000 running tasks (`npm run bench:agents`), aggregating all active attempts on
   * every pass, and again in every plan's commit, was a third of the coordinator's busy time.
   */
  private readonly allocCache = new Map<string, Allocation>();
  private allocStale: Set<string> | null = null;

  private allocations(): ReadonlyMap<string, Allocation> {
    if (this.allocStale === null) {
      this.allocCache.clear();
      for (const r of this.q(`SELECT node_id, ${ALLOCATION_COLUMNS} FROM attempts WHERE state IN ('assigned', 'running') GROUP BY node_id`).all() as AllocationRow[])
        this.allocCache.set(r.node_id, allocationOfRow(r));
      this.allocStale = new Set();
    } else if (this.allocStale.size > 0) {
      for (const id of this.allocStale) {
        const a = this.allocationOf(id);
        if (a) this.allocCache.set(id, a);
        else this.allocCache.delete(id);
      }
      this.allocStale.clear();
    }
    return this.allocCache;
  }

  /** One node's allocation as the database has it now (inside a transaction: with its changes so far). */
  private allocationOf(nodeId: string): Allocation | undefined {
    const r = this.q(`SELECT ${ALLOCATION_COLUMNS} FROM attempts WHERE state IN ('assigned', 'running') AND node_id = ?`).get(nodeId) as Omit<AllocationRow, 'node_id'>;
    return r.n > 0 ? allocationOfRow(r) : undefined;
  }

  /** An active attempt of this node was added, started or ended: its allocation is read again next time. */
  private allocChanged(nodeId: string): void {
    this.allocStale?.add(nodeId);
  }

  async listNodeUsage(states?: readonly NodeState[]): Promise<readonly NodeUsage[]> {
    const rows = (states && states.length > 0
      ? this.q(`SELECT ${NODE_SCALAR_COLUMNS} FROM nodes WHERE state IN (${states.map(() => '?').join(',')}) ORDER BY name, id`).all(...states)
      : this.q(`SELECT ${NODE_SCALAR_COLUMNS} FROM nodes ORDER BY name, id`).all()) as NodeScalarRow[];
    const alloc = this.allocations();
    const held = this.gpuHeld();
    return rows.map((r) => {
      const a = alloc.get(r.id);
      const json = this.nodeJsonOf(r.id);
      return {
        node: nodeOf(r, json.facts, json.labels),
        allocated: a?.allocated ?? ZERO_RESOURCES,
        activeAttempts: a?.count ?? 0,
        running: a?.running ?? ZERO_RESOURCES,
        runningAttempts: a?.runningCount ?? 0,
        gpuHeld: held.get(r.id) ?? [],
      };
    });
  }

  /**
   * Each node's name, facts and labels, read (and parsed) once and kept until upsertNode (their only writer) changes
   * them; placement and the ledger read a node's GPU devices here too, and the ledger its name. The dispatcher lists every online node on every pass: with
   * 1,000 agents, reading and parsing a few KiB of facts per node per pass was a tenth of the coordinator's busy
   * time. Deeply frozen: every listing hands out the same objects.
   */
  private readonly nodeJson = new Map<string, NodeKept>();

  private nodeJsonOf(id: string): NodeKept {
    let j = this.nodeJson.get(id);
    if (!j) {
      const r = this.q('SELECT name, facts_json, labels_json FROM nodes WHERE id = ?').get(id) as Pick<NodeRow, 'name' | 'facts_json' | 'labels_json'> | undefined;
      j = { name: r?.name ?? null, facts: deepFreeze(JSON.parse(r?.facts_json ?? '{}') as NodeFacts), labels: deepFreeze(JSON.parse(r?.labels_json ?? '{}') as Record<string, string>) };
      if (r) this.nodeJson.set(id, j);
    }
    return j;
  }

  /** A job's GPU needs (compiled `gpu`: conditions, shared), read with SQLite's JSON functions, not a parse of the spec. */
  private jobGpuNeeds(jobId: string): GpuNeeds | null {
    const r = this.q("SELECT json_extract(compiled_json, '$.gpu') AS gpu FROM jobs WHERE id = ?").get(jobId) as { gpu: string | null } | undefined;
    return r?.gpu ? (JSON.parse(r.gpu) as GpuNeeds) : null;
  }

  /** Per node, the GPU devices of its active attempts (through the attempts_active partial index). */
  private gpuHeld(nodeId?: string): Map<string, GpuGrant[][]> {
    const rows = (nodeId === undefined ? this.q(GPU_HELD_SQL).all() : this.q(GPU_HELD_OF_NODE_SQL).all(nodeId)) as Array<{ node_id: string; gpu_devices: string }>;
    const out = new Map<string, GpuGrant[][]>();
    for (const r of rows) {
      let l = out.get(r.node_id);
      if (!l) out.set(r.node_id, (l = []));
      l.push(parseGpuGrants(r.gpu_devices));
    }
    return out;
  }

  async applyPlan(attempts: readonly NewAttempt[], now: number, options: { readonly overcommit: number }): Promise<ApplyPlanResult> {
    return this.db.transaction(() => this.gatheringJobRows(() => this.placeAttempts(attempts, now, options)));
  }

  /** applyPlan's work, inside the caller's transaction. */
  private placeAttempts(attempts: readonly NewAttempt[], now: number, options: { readonly overcommit: number }): ApplyPlanResult {
    const created: CreatedAttempt[] = [];
    const rejected: Array<ApplyPlanResult['rejected'][number]> = [];
    // Each node's allocation, read fresh in this transaction for the nodes of the plan only (then added to here).
    const alloc = new Map<string, Allocation>();
    const nodes = new Map<string, NodeRow | null>();
    const insert = this.q(
      `INSERT INTO attempts (id, task_id, job_id, task_index, number, node_id, state, assigned_at, cpu_millis, memory_bytes, gpus, disk_bytes, gpu_devices)
       VALUES (?, ?, ?, ?, ?, ?, 'assigned', ?, ?, ?, ?, ?, ?)`,
    );
    // GPU devices, per node: the node's devices with what its active attempts (and this plan so far) hold. Read
    // only for nodes that get GPU work; a job's GPU request is read from its compiled spec once per plan.
    const devicesOf = new Map<string, GpuDeviceUse[]>();
    const gpuRequestOfJob = new Map<string, GpuRequest | null>();
    for (const a of attempts) {
      let node = nodes.get(a.nodeId);
      if (node === undefined) {
        node = (this.q('SELECT * FROM nodes WHERE id = ?').get(a.nodeId) as NodeRow | undefined) ?? null;
        nodes.set(a.nodeId, node);
      }
      // Online, and not held back by an operator (cordon, drain) or a quarantine still running.
      if (!node || node.state !== 'online' || node.cordoned === 1 || node.draining === 1 || (node.quarantined_until ?? 0) > now) {
        rejected.push({ taskId: a.taskId, nodeId: a.nodeId, why: 'node_unavailable' });
        continue;
      }
      const task = this.taskRow(a.taskId);
      if (!task || task.state !== 'queued') {
        rejected.push({ taskId: a.taskId, nodeId: a.nodeId, why: 'task_not_queued' });
        // Planned from a stale first task? Find the job's first queued task again (the next pass reads it).
        if (task) this.refreshQueueHead(task.job_id);
        continue;
      }
      const job = this.batchJob(task.job_id);
      if (job.cancel_requested === 1) {
        // Its queued tasks are being cancelled (range by range); never start one meanwhile.
        rejected.push({ taskId: a.taskId, nodeId: a.nodeId, why: 'job_cancelled' });
        continue;
      }
      const want: Resources = { cpuMillis: job.cpu_millis, memoryBytes: job.memory_bytes, gpus: job.gpus, diskBytes: job.disk_bytes };
      const used = alloc.get(a.nodeId) ?? this.allocationOf(a.nodeId) ?? NO_ALLOCATION;
      const f = a.prefetch ? Math.max(1, options.overcommit) : 1;
      const limit: Resources = { cpuMillis: node.cpu_millis * f, memoryBytes: node.memory_bytes * f, gpus: node.gpus * f, diskBytes: node.disk_bytes * f };
      const after = addResources(used.allocated, want);
      if (!fits(after, limit)) {
        rejected.push({ taskId: a.taskId, nodeId: a.nodeId, why: 'no_capacity' });
        continue;
      }
      // Decide, then apply: the devices the plan chose must still be free on the node (a stale plan is dropped).
      let gpuReq = gpuRequestOfJob.get(task.job_id);
      if (gpuReq === undefined) {
        gpuReq = gpuRequestOf(want, this.jobGpuNeeds(task.job_id));
        gpuRequestOfJob.set(task.job_id, gpuReq);
      }
      let grants: readonly GpuGrant[] | null = null;
      if (gpuReq !== null || (a.gpus !== undefined && a.gpus.length > 0)) {
        let devices = devicesOf.get(a.nodeId);
        if (!devices) devicesOf.set(a.nodeId, (devices = gpuDeviceUse(this.nodeJsonOf(a.nodeId).facts.gpus ?? [], this.gpuHeld(a.nodeId).get(a.nodeId) ?? [])));
        // A node that reports no devices may still take whole GPUs by count (an older agent); nothing else.
        const countOnly = devices.length === 0 && gpuReq !== null && !gpuReq.shared && a.gpus === undefined;
        if (!countOnly) {
          const why = gpuReq === null ? 'GPU devices given to a task that asked for none' : a.gpus === undefined ? 'no GPU devices chosen' : checkGpuGrants(devices, a.gpus, gpuReq);
          if (why !== null) {
            rejected.push({ taskId: a.taskId, nodeId: a.nodeId, why: 'gpu_devices' });
            continue;
          }
          grants = a.gpus!;
          devicesOf.set(a.nodeId, addGpuGrants(devices, grants));
        }
      }
      alloc.set(a.nodeId, { ...used, allocated: after, count: used.count + 1 });
      this.allocChanged(a.nodeId);
      const number = task.attempts + 1;
      insert.run(a.attemptId, task.id, task.job_id, task.idx, number, a.nodeId, now, want.cpuMillis, want.memoryBytes, want.gpus, want.diskBytes, grants ? JSON.stringify(grants.map((g) => ({ index: g.index, memoryBytes: g.memoryBytes }))) : null);
      this.moveTask(task, 'assigned', { current_attempt_id: a.attemptId, node_id: a.nodeId, attempts: number });
      created.push({
        id: a.attemptId, taskId: task.id as TaskId, jobId: task.job_id as JobId, taskIndex: task.idx, number, nodeId: a.nodeId,
        state: 'assigned', exitCode: null, signal: null, failure: null, assignedAt: now, startedAt: null, finishedAt: null,
        arrayValue: task.array_value, taskCount: job.task_count,
        taskInputs: task.inputs_json ? (JSON.parse(task.inputs_json) as WireInputFile[]) : [],
        ...(grants ? { gpuDevices: grants } : {}),
      });
    }
    return { created, rejected };
  }

  /**
   * Run `fn` (inside a transaction) with changes to job rows gathered and written once per job, all before it returns
   * (job-row-changes.ts). For the hot paths: placing attempts, recording starts and ends, losing attempts.
   */
  private gatheringJobRows<T>(fn: () => T): T {
    if (this.jobRows) return fn();
    const rows = (this.jobRows = new JobRowChanges(FINISH_JOB_IF_DONE_SQL));
    this.batchJobs = new Map();
    try {
      const r = fn();
      rows.writeAll(this.writeJobRow);
      return r;
    } finally {
      this.jobRows = null; // (on a throw the transaction rolls back, and what was gathered goes with it)
      this.batchJobs = null;
    }
  }

  /** A job's row as finishes and placements read it: once per hot-path transaction (batchJobs), else afresh. */
  private batchJob(jobId: string): BatchJobRow {
    let job = this.batchJobs?.get(jobId);
    if (!job) {
      job = this.q(
        'SELECT id, cancel_requested, workflow_id, stage, project, owner_name, cpu_millis, memory_bytes, gpus, disk_bytes, task_count FROM jobs WHERE id = ?',
      ).get(jobId) as BatchJobRow;
      this.batchJobs?.set(jobId, job);
    }
    return job;
  }

  /** Run `fn` with every gathered change written first and none gathered meanwhile (it reads job rows itself). */
  private notGatheringJobRows<T>(fn: () => T): T {
    const rows = this.jobRows;
    if (!rows) return fn();
    rows.writeAll(this.writeJobRow);
    this.jobRows = null;
    try {
      return fn();
    } finally {
      this.jobRows = rows;
    }
  }

  /**
   * The one way a task changes state: checks the transition table, writes the task, moves the job's counters.
   * `set` holds extra columns to write in the same statement. (`cancelQueuedTasks` applies the same rule to many
   * rows in one statement.)
   */
  private moveTask(task: TaskRow, to: TaskState, set: Record<string, string | number | null> = {}, retry = false): void {
    const from = task.state as TaskState;
    if (retry) assertTaskRetry(from, to);
    else assertTaskTransition(from, to);
    const cols = Object.keys(set);
    const sql = `UPDATE tasks SET state = ?${cols.map((c) => `, ${c} = ?`).join('')} WHERE job_id = ? AND idx = ?`;
    this.q(sql).run(to, ...cols.map((c) => set[c]), task.job_id, task.idx);
    const rows = this.jobRows;
    if (rows) {
      // Gathered, and written once per job before anything reads it (see job-row-changes.ts).
      rows.move(task.job_id, COUNTER[from], COUNTER[to]);
      if (from === 'queued') rows.findHead(task.job_id);
      else if (to === 'queued') rows.lowerHead(task.job_id, packQueueHead(Number(set['queue_seq'] ?? task.queue_seq), task.idx));
      task.state = to;
      return;
    }
    // The counters, and the job's first queued task (jobs.queue_head): found again when a task leaves the queue,
    // lowered when one joins it (at its own place: a retry keeps its queue position, a job retry gets new ones).
    const counters = `${COUNTER[from]} = ${COUNTER[from]} - 1, ${COUNTER[to]} = ${COUNTER[to]} + 1`;
    if (from === 'queued') this.q(`UPDATE jobs SET ${counters}, queue_head = (${QUEUE_HEAD_OF_JOB_SQL}) WHERE id = $job`).run({ job: task.job_id });
    else if (to === 'queued') {
      const seq = Number(set['queue_seq'] ?? task.queue_seq);
      this.q(`UPDATE jobs SET ${counters}, queue_head = MIN(COALESCE(queue_head, $head), $head) WHERE id = $job`)
        .run({ job: task.job_id, head: packQueueHead(seq, task.idx) });
    } else this.q(`UPDATE jobs SET ${counters} WHERE id = ?`).run(task.job_id);
    task.state = to;
  }

  /** Find a job's first queued task again (after tasks were added to or taken from its queue in bulk). */
  private refreshQueueHead(jobId: string): void {
    if (this.jobRows) return this.jobRows.findHead(jobId);
    this.q(`UPDATE jobs SET queue_head = (${QUEUE_HEAD_OF_JOB_SQL}) WHERE id = $job`).run({ job: jobId });
  }

  /** Set (or, after a retry, clear) a job's finished_at from its derived state. */
  private finishJobIfDone(jobId: string, now: number): void {
    if (this.jobRows) this.jobRows.checkDone(jobId, now); // once its gathered counters are written
    else this.q(FINISH_JOB_IF_DONE_SQL).run({ job: jobId, now });
  }

  // ── reports ─────────────────────────────────────────────────────────────────────────────────────────────
  async recordReports(starts: readonly StartReport[], finishes: readonly FinishReport[], now: number, policy: StorePolicy): Promise<readonly FinishResult[]> {
    return this.db.transaction(() => this.gatheringJobRows(() => this.applyReports(starts, finishes, now, policy)));
  }

  async recordReportsAndPlace(
    starts: readonly StartReport[], finishes: readonly FinishReport[], now: number, policy: StorePolicy,
    place: { readonly attempts: readonly NewAttempt[]; readonly overcommit: number },
  ): Promise<{ readonly results: readonly FinishResult[]; readonly placed: ApplyPlanResult }> {
    return this.db.transaction(() => this.gatheringJobRows(() => {
      const results = this.applyReports(starts, finishes, now, policy);
      return { results, placed: this.placeAttempts(place.attempts, now, { overcommit: place.overcommit }) };
    }));
  }

  private applyReports(starts: readonly StartReport[], finishes: readonly FinishReport[], now: number, policy: StorePolicy): FinishResult[] {
    this.applyStarts(starts);
    return finishes.map((f) => this.finishOne(f.attemptId, f.end, f.startedAt, f.finishedAt, f.outputs, now, policy, f.usage));
  }

  private applyStarts(starts: readonly StartReport[]): void {
    for (const s of starts) {
      const att = this.q('SELECT * FROM attempts WHERE id = ?').get(s.attemptId) as AttemptRow | undefined;
      if (!att || att.state !== 'assigned') continue;
      const task = this.taskAt(att.job_id, att.task_index)!;
      if (task.current_attempt_id !== att.id || task.state !== 'assigned') continue;
      assertAttemptTransition('assigned', 'running');
      this.q("UPDATE attempts SET state = 'running', started_at = ? WHERE id = ?").run(s.at, att.id);
      this.allocChanged(att.node_id);
      this.moveTask(task, 'running', { started_at: task.started_at ?? s.at });
    }
  }

  async loseAttempts(attemptIds: readonly AttemptId[], message: string, now: number, policy: StorePolicy): Promise<readonly FinishResult[]> {
    return this.db.transaction(() => this.gatheringJobRows(() => attemptIds.map((id) => this.finishOne(id, { kind: 'lost', message }, null, now, [], now, policy))));
  }

  private finishOne(
    attemptId: AttemptId,
    end: AttemptEnd,
    startedAt: number | null,
    finishedAt: number,
    outputs: FinishReport['outputs'],
    now: number,
    policy: StorePolicy,
    usage?: AttemptUsage,
  ): FinishResult {
    const fenced: FinishResult = { attemptId, applied: false, taskId: null, jobId: null, taskState: null, retry: false };
    const att = this.q('SELECT * FROM attempts WHERE id = ?').get(attemptId) as AttemptRow | undefined;
    if (!att || !isActiveAttempt(att.state as AttemptState)) return fenced;
    const task = this.taskAt(att.job_id, att.task_index)!;
    if (task.current_attempt_id !== att.id) return fenced;
    // The compiled spec is read (and parsed) once per job, not once per finish: it is the row's largest column.
    const job = this.batchJob(task.job_id);
    const compiled = cachedCompiled(job.id) ?? compiledOf(this.q('SELECT id, compiled_json FROM jobs WHERE id = ?').get(job.id) as Pick<JobRow, 'id' | 'compiled_json'>);

    // A kill that no standing cancel explains: its agent was shutting down (Ctrl-C on `dsg agent`), or a retry lifted
    // the cancel before the kill landed. Neither is the task's doing, so it is requeued like a lost attempt.
    const ended: AttemptEnd = end.kind === 'cancelled' && job.cancel_requested === 0
      ? { kind: 'lost', message: 'stopped on its node although no cancel stands (its agent was shutting down, or a retry lifted the cancel); run again' }
      : end;
    const decision = decideAfterAttempt(ended, { userFailures: task.user_failures, systemFailures: task.system_failures }, {
      retries: compiled.retries,
      maxSystemRetries: policy.maxSystemRetries,
    });
    let attemptState = decision.attemptState;
    let taskState = decision.taskState;
    let failure = decision.failure;
    if (job.cancel_requested === 1 && taskState !== 'succeeded') {
      // A cancelled job's tasks end as cancelled, whatever killed them, and are never retried.
      taskState = 'cancelled';
      if (end.kind === 'cancelled' || end.kind === 'exited') attemptState = 'cancelled';
      failure = { kind: 'user', reason: 'cancelled', message: 'the job was cancelled' };
    }
    assertAttemptTransition(att.state as AttemptState, attemptState);
    const exitCode = end.kind === 'exited' ? end.exitCode : null;
    const signal = end.kind === 'exited' ? end.signal : null;
    this.q('UPDATE attempts SET state = ?, exit_code = ?, signal = ?, failure_json = ?, started_at = COALESCE(started_at, ?), finished_at = ? WHERE id = ?').run(
      attemptState, exitCode, signal, failure ? JSON.stringify(failure) : null, startedAt, finishedAt, att.id,
    );
    this.allocChanged(att.node_id);
    this.writeLedger(att, job, attemptState, att.started_at ?? startedAt, finishedAt, usage);
    const began = startedAt ?? att.started_at;
    if (began !== null && end.kind === 'exited') {
      if (this.jobRows) this.jobRows.addRun(job.id, Math.max(0, finishedAt - began));
      else this.q('UPDATE jobs SET run_ms_total = run_ms_total + ?, runs_timed = runs_timed + 1 WHERE id = ?').run(Math.max(0, finishedAt - began), job.id);
    }
    const ins = this.q('INSERT OR REPLACE INTO outputs (attempt_id, job_id, task_index, path, size, sha256) VALUES (?, ?, ?, ?, ?, ?)');
    for (const o of outputs) ins.run(att.id, att.job_id, att.task_index, o.path, o.size, o.sha256);

    if (policy.quarantine && failure?.kind === 'system' && QUARANTINE_REASONS.has(failure.reason)) this.maybeQuarantine(att.node_id, now, policy.quarantine);
    const retry = taskState === 'queued';
    const failureCol = failure ? JSON.stringify(failure) : null;
    if (retry) {
      // Back to the queue at its original position, so retries run before later work. An end core says does not
      // count (preempted by a volunteer machine's owner) leaves both failure counters as they were.
      const counter = failure?.kind === 'system' ? 'system_failures' : 'user_failures';
      this.moveTask(task, 'queued', {
        current_attempt_id: null, node_id: null, exit_code: exitCode, failure_json: failureCol,
        ...(decision.counted ? { [counter]: (counter === 'system_failures' ? task.system_failures : task.user_failures) + 1 } : {}),
      });
    } else {
      this.moveTask(task, taskState, { exit_code: exitCode, failure_json: failureCol, finished_at: now, started_at: task.started_at ?? startedAt });
      if (isTerminalTask(taskState)) {
        this.finishJobIfDone(task.job_id, now);
        if (job.workflow_id) this.advanceWorkflow(job.workflow_id, now, taskState === 'succeeded' ? [{ stage: job.stage!, index: task.idx }] : []);
      }
    }
    return { attemptId, applied: true, taskId: task.id as TaskId, jobId: task.job_id as JobId, taskState, retry };
  }

  /**
   * The attempt's ledger entry, from the same started/finished times just written to its row, so the ledger adds up
   * exactly to the recorded run times. Node name, project and user are copied in: history keeps who it was.
   */
  private writeLedger(
    att: AttemptRow, job: { id: string; project: string; owner_name: string | null }, attemptState: AttemptState,
    startedAt: number | null, finishedAt: number, usage: AttemptUsage | undefined,
  ): void {
    // The node's name, and its GPU facts, as nodeJsonOf keeps them. GPU-seconds count devices: 1 per device held
    // whole, the declared share of its memory per shared device (facts looked at only for an attempt that held some).
    const nodeName = this.nodeJsonOf(att.node_id).name ?? att.node_id;
    const grants = att.gpu_devices ? parseGpuGrants(att.gpu_devices) : null;
    const deviceMemory = (i: number): number | undefined => this.nodeJsonOf(att.node_id).facts.gpus?.find((g) => g.index === i)?.memoryBytes;
    const gpus = gpuUnits(grants, att.gpus, deviceMemory);
    const c = chargeAttempt({ startedAt, finishedAt, attemptState, cpuMillis: att.cpu_millis, memoryBytes: att.memory_bytes, gpus, usage });
    this.q(
      `INSERT OR IGNORE INTO ledger (attempt_id, job_id, task_index, node_id, node_name, project, user_name, attempt_state, outcome, started_at,
         finished_at, wall_ms, cpu_ms, cpu_source, gpu_ms, memory_byte_ms, memory_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      att.id, job.id, att.task_index, att.node_id, nodeName, job.project, job.owner_name ?? LEDGER_DEFAULT_USER, attemptState, c.outcome,
      startedAt, finishedAt, c.wallMs, c.cpuMs, c.cpuSource, c.gpuMs, c.memoryByteMs, c.memorySource,
    );
  }

  async ledger(q: LedgerQuery): Promise<readonly LedgerSums[]> {
    const col = { node: 'node_name', project: 'project', user: 'user_name' }[q.by];
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (q.since !== undefined) { where.push('finished_at >= ?'); args.push(q.since); }
    if (q.until !== undefined) { where.push('finished_at < ?'); args.push(q.until); }
    if (q.nodeName !== undefined) { where.push('node_name = ?'); args.push(q.nodeName); }
    if (q.project !== undefined) { where.push('project = ?'); args.push(q.project); }
    if (q.user !== undefined) { where.push('user_name = ?'); args.push(q.user); }
    const rows = this.db.prepare(
      `SELECT ${col} AS key, COUNT(*) AS attempts, SUM(outcome = 'succeeded') AS succeeded, SUM(wall_ms) AS wall_ms,
         SUM(CASE WHEN outcome = 'succeeded' THEN wall_ms ELSE 0 END) AS succeeded_wall_ms, SUM(cpu_ms) AS cpu_ms,
         SUM(cpu_source = 'measured') AS cpu_measured, SUM(gpu_ms) AS gpu_ms, SUM(memory_byte_ms) AS memory_byte_ms
       FROM ledger ${where.length ? `WHERE ${where.join(' AND ')}` : ''} GROUP BY ${col} ORDER BY wall_ms DESC, key`,
    ).all(...args) as Array<{ key: string; attempts: number; succeeded: number; wall_ms: number; succeeded_wall_ms: number; cpu_ms: number; cpu_measured: number; gpu_ms: number; memory_byte_ms: number }>;
    return rows.map((r) => ({
      key: r.key, attempts: r.attempts, succeededAttempts: r.succeeded, wallMs: r.wall_ms, succeededWallMs: r.succeeded_wall_ms,
      cpuMs: r.cpu_ms, cpuMeasuredAttempts: r.cpu_measured, gpuMs: r.gpu_ms, memoryByteMs: r.memory_byte_ms,
    }));
  }

  /**
   * Quarantine a node with `failures` system failures of its own within the window (counted from its last release,
   * if later). Runs inside the report's transaction, after the failure was written.
   */
  private maybeQuarantine(nodeId: string, now: number, p: QuarantinePolicy): void {
    const node = this.q('SELECT quarantined_until FROM nodes WHERE id = ?').get(nodeId) as { quarantined_until: number | null } | undefined;
    if (!node || (node.quarantined_until ?? 0) > now) return;
    const since = Math.max(now - p.windowMs, node.quarantined_until ?? 0);
    const rows = this.q(
      `SELECT failure_json FROM attempts WHERE node_id = ? AND finished_at > ? AND failure_json IS NOT NULL
        AND json_extract(failure_json, '$.kind') = 'system' AND json_extract(failure_json, '$.reason') IN (${[...QUARANTINE_REASONS].map((r) => `'${r}'`).join(', ')})
        ORDER BY finished_at DESC`,
    ).all(nodeId, since) as Array<{ failure_json: string }>;
    if (rows.length < p.failures) return;
    const last = (JSON.parse(rows[0]!.failure_json) as { reason: string; message: string });
    const reason = `${rows.length} system failures in ${Math.round(p.windowMs / 60_000)} min (latest: ${last.reason}: ${last.message.slice(0, 200)})`;
    this.q('UPDATE nodes SET quarantined_until = ?, quarantine_reason = ? WHERE id = ?').run(now + p.coolDownMs, reason, nodeId);
  }

  async activeAttemptsOnNode(nodeId: NodeId): Promise<readonly AttemptRecord[]> {
    return (this.q("SELECT * FROM attempts WHERE node_id = ? AND state IN ('assigned', 'running') ORDER BY id").all(nodeId) as AttemptRow[]).map(toAttempt);
  }

  // ── nodes ───────────────────────────────────────────────────────────────────────────────────────────────
  async upsertNode(n: NodeUpsert): Promise<NodeRecord> {
    this.nodeJson.delete(n.id);
    this.q(
      `INSERT INTO nodes (id, name, state, cpu_millis, memory_bytes, gpus, disk_bytes, facts_json, labels_json, agent_version, address, joined_at, last_seen_at)
       VALUES (?, ?, 'online', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, state = 'online', cpu_millis = excluded.cpu_millis,
         memory_bytes = excluded.memory_bytes, gpus = excluded.gpus, disk_bytes = excluded.disk_bytes,
         facts_json = excluded.facts_json, labels_json = excluded.labels_json, agent_version = excluded.agent_version,
         address = excluded.address, last_seen_at = excluded.last_seen_at`,
    ).run(n.id, n.name, n.capacity.cpuMillis, n.capacity.memoryBytes, n.capacity.gpus, n.capacity.diskBytes,
      JSON.stringify(n.facts), JSON.stringify(n.labels), n.agentVersion, n.address, n.now, n.now);
    return (await this.getNode(n.id))!;
  }

  async setNodeState(id: NodeId, state: NodeState, now: number): Promise<void> {
    this.q('UPDATE nodes SET state = ?, last_seen_at = MAX(last_seen_at, ?) WHERE id = ?').run(state, state === 'online' ? now : 0, id);
  }

  async getNode(id: NodeId): Promise<NodeRecord | null> {
    const r = this.q('SELECT * FROM nodes WHERE id = ?').get(id) as NodeRow | undefined;
    return r ? toNode(r) : null;
  }

  async setNodeFlags(id: NodeId, change: NodeFlagsChange, now: number): Promise<NodeRecord | null> {
    this.db.transaction(() => {
      if (change.cordoned !== undefined) this.q('UPDATE nodes SET cordoned = ? WHERE id = ?').run(change.cordoned ? 1 : 0, id);
      if (change.draining !== undefined) this.q('UPDATE nodes SET draining = ? WHERE id = ?').run(change.draining ? 1 : 0, id);
      // Ending a quarantine moves its end to now: failures before it no longer count toward the next one.
      if (change.releaseQuarantine) this.q('UPDATE nodes SET quarantined_until = ? WHERE id = ? AND quarantined_until > ?').run(now, id, now);
    });
    return this.getNode(id);
  }

  async removeNode(id: NodeId, options: { readonly force: boolean; readonly reason: string }, now: number, policy: StorePolicy): Promise<{ removed: boolean; held: readonly AttemptRecord[]; requeued: readonly FinishResult[] } | null> {
    return this.db.transaction(() => {
      if (!this.q('SELECT 1 FROM nodes WHERE id = ?').get(id)) return null;
      const held = (this.q("SELECT * FROM attempts WHERE node_id = ? AND state IN ('assigned', 'running') ORDER BY id").all(id) as AttemptRow[]).map(toAttempt);
      if (held.length > 0 && !options.force) return { removed: false, held, requeued: [] };
      const requeued = held.map((a) => this.finishOne(a.id, { kind: 'lost', message: options.reason }, null, now, [], now, policy));
      this.q('DELETE FROM nodes WHERE id = ?').run(id);
      this.nodeJson.delete(id);
      return { removed: true, held, requeued };
    });
  }

  async pruneNodes(before: number): Promise<readonly NodeRecord[]> {
    return this.db.transaction(() => {
      const rows = this.q(
        `SELECT * FROM nodes n WHERE state IN ('offline', 'lost') AND last_seen_at < ?
            AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.node_id = n.id AND a.state IN ('assigned', 'running'))`,
      ).all(before) as NodeRow[];
      const del = this.q('DELETE FROM nodes WHERE id = ?');
      for (const r of rows) {
        del.run(r.id);
        this.nodeJson.delete(r.id);
      }
      return rows.map(toNode);
    });
  }

  // ── outputs ─────────────────────────────────────────────────────────────────────────────────────────────
  async listOutputs(jobId: JobId): Promise<readonly OutputRecord[]> {
    // Per task, the outputs of its latest attempt that reported any.
    const rows = this.q(
      `SELECT o.* FROM outputs o
        WHERE o.job_id = ? AND o.attempt_id = (
          SELECT o2.attempt_id FROM outputs o2 JOIN attempts a ON a.id = o2.attempt_id
           WHERE o2.job_id = o.job_id AND o2.task_index = o.task_index ORDER BY a.number DESC LIMIT 1)
        ORDER BY o.task_index, o.path`,
    ).all(jobId) as OutputRow[];
    return rows.map(toOutput);
  }

  // ── retry ─────────────────────────────────────────────────────────────────────────────────────────────
  async retryJob(id: JobId, now: number): Promise<{ job: JobRecord; result: RetryResult } | null> {
    const result = this.db.transaction((): RetryResult | null => {
      const row = this.q('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
      if (!row) return null;
      if ((row as JobRow & { deleting?: number }).deleting === 1) throw new ConflictError(`job ${id} is being removed by the retention settings (dsg gc); it can no longer be retried`);
      const requeued = this.requeueFailed(row, now);
      let unskipped = 0;
      if (row.workflow_id) {
        // What was skipped because this stage failed may run once it succeeds.
        this.q('UPDATE workflows SET cancel_requested = 0, finished_at = NULL WHERE id = ?').run(row.workflow_id);
        unskipped = this.liftSkips(row.workflow_id, now);
        this.advanceWorkflow(row.workflow_id, now, []);
      }
      return { requeued, unskipped };
    });
    if (!result) return null;
    return { job: (await this.getJob(id))!, result };
  }

  /** Failed and cancelled tasks of one job back to the queue, with fresh retry budgets; the cancel is lifted. */
  private requeueFailed(row: JobRow, now: number): number {
    const tasks = this.q("SELECT * FROM tasks WHERE job_id = ? AND state IN ('failed', 'cancelled') ORDER BY idx").all(row.id) as TaskRow[];
    this.q('UPDATE jobs SET cancel_requested = 0 WHERE id = ?').run(row.id);
    if (tasks.length > 0) {
      const first = this.allocSeq(tasks.length);
      tasks.forEach((t, i) => {
        this.moveTask(t, 'queued', {
          current_attempt_id: null, node_id: null, exit_code: null, failure_json: null, finished_at: null,
          user_failures: 0, system_failures: 0, queue_seq: first + i,
        }, true);
      });
      if (row.workflow_id) this.reresolveInputs(row, tasks, now);
    }
    this.finishJobIfDone(row.id, now);
    return tasks.length;
  }

  /** Stages whose tasks failed for want of an earlier stage's output resolve their inputs again on retry. */
  private reresolveInputs(row: JobRow, tasks: readonly TaskRow[], now: number): void {
    const compiled = compiledOf(row);
    if (compiled.artifacts.length === 0 && compiled.fanOut.kind !== 'files') return;
    const rows = this.stageRows(row.workflow_id!);
    const outputsOf = this.outputsReader(rows);
    const local = new Set((JSON.parse(row.inputs_json) as WireInputFile[]).map((f) => f.path));
    for (const t of tasks) {
      const r = resolveArtifacts(compiled, { index: t.idx, arrayValue: t.array_value }, outputsOf, local);
      const fresh = this.taskAt(t.job_id, t.idx)!;
      if (r.ok) this.q('UPDATE tasks SET inputs_json = ? WHERE job_id = ? AND idx = ?').run(JSON.stringify(r.value), t.job_id, t.idx);
      else this.moveTask(fresh, 'failed', { finished_at: now, failure_json: JSON.stringify({ kind: 'user', reason: 'inputs_unavailable', message: r.message }) });
    }
  }

  // ── workflows ─────────────────────────────────────────────────────────────────────────────────────────
  async createWorkflow(wf: NewWorkflow): Promise<WorkflowRecord> {
    const c = wf.compiled;
    if (wf.stages.length !== c.stages.length) throw new Error('createWorkflow: one job per stage expected');
    this.db.transaction(() => {
      const o = wf.owner ?? null;
      this.q('INSERT INTO workflows (id, name, spec_json, compiled_json, created_at, project, owner_token_id, owner_name, owner_role) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
        wf.id, wf.name, JSON.stringify(wf.spec), JSON.stringify(c), wf.createdAt, c.stages[0]?.job.project ?? 'default', o?.tokenId ?? null, o?.name ?? null, o?.role ?? null,
      );
      const ins = this.q(
        `INSERT INTO jobs (id, name, spec_json, compiled_json, inputs_json, warnings_json, task_count, cpu_millis, memory_bytes, gpus, disk_bytes, created_at,
                           workflow_id, stage, released, project, owner_token_id, owner_name, owner_role)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)`,
      );
      c.stages.forEach((st, i) => {
        const s = wf.stages[i]!;
        const j = st.job;
        const stageSpec = ((wf.spec['stages'] as Record<string, Record<string, unknown>> | undefined)?.[st.name]) ?? {};
        ins.run(s.jobId, j.name, JSON.stringify(stageSpec), JSON.stringify(j), JSON.stringify(s.inputs), JSON.stringify(s.warnings), j.taskCount,
          j.resources.cpuMillis, j.resources.memoryBytes, j.resources.gpus, j.resources.diskBytes, wf.createdAt, wf.id, st.name, j.project ?? 'default',
          o?.tokenId ?? null, o?.name ?? null, o?.role ?? null);
      });
      this.advanceWorkflow(wf.id, wf.createdAt, []);
    });
    return (await this.getWorkflow(wf.id))!;
  }

  async getWorkflow(id: WorkflowId): Promise<WorkflowRecord | null> {
    const r = this.q('SELECT * FROM workflows WHERE id = ?').get(id) as WorkflowRow | undefined;
    return r ? this.toWorkflow(r) : null;
  }

  async listWorkflows(query: ListWorkflowsQuery): Promise<Page<WorkflowRecord>> {
    const where: string[] = [];
    const args: SqlValue[] = [];
    if (query.cursor) {
      where.push('id < ?');
      args.push(query.cursor);
    }
    if (query.projects) {
      where.push(`project IN (${query.projects.map(() => '?').join(', ') || 'NULL'})`);
      args.push(...query.projects);
    }
    const sql = `SELECT * FROM workflows ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, query.limit + 1) as WorkflowRow[];
    const more = rows.length > query.limit;
    const items = rows.slice(0, query.limit).map((r) => this.toWorkflow(r));
    return { items, nextCursor: more ? items[items.length - 1]!.id : null };
  }

  async requestWorkflowCancel(id: WorkflowId, now: number): Promise<{ workflow: WorkflowRecord; toKill: readonly AttemptRecord[]; alreadyFinished: boolean } | null> {
    // Short whatever the workflow's size: stages not released yet end here; the unfinished stages are marked, and
    // their queued tasks are cancelled afterwards, range by range, as for a job (requestCancel, cancelQueuedTasks).
    const r = this.db.transaction(() => {
      const wf = this.q('SELECT finished_at FROM workflows WHERE id = ?').get(id) as { finished_at: number | null } | undefined;
      if (!wf) return null;
      if (wf.finished_at !== null) return { alreadyFinished: true };
      this.q('UPDATE workflows SET cancel_requested = 1 WHERE id = ?').run(id);
      for (const row of this.stageRows(id).values()) {
        if (row.finished_at !== null) continue; // finished stages keep their history
        this.q('UPDATE jobs SET cancel_requested = 1 WHERE id = ?').run(row.id);
      }
      this.advanceWorkflow(id, now, []);
      return { alreadyFinished: false };
    });
    if (!r) return null;
    const toKill = r.alreadyFinished
      ? []
      : (this.q("SELECT a.* FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.workflow_id = ? AND a.state IN ('assigned', 'running')").all(id) as AttemptRow[]).map(toAttempt);
    return { workflow: (await this.getWorkflow(id))!, toKill, alreadyFinished: r.alreadyFinished };
  }

  async retryWorkflow(id: WorkflowId, now: number): Promise<{ workflow: WorkflowRecord; result: RetryResult } | null> {
    const result = this.db.transaction((): RetryResult | null => {
      const wf = this.q('SELECT id FROM workflows WHERE id = ?').get(id);
      if (!wf) return null;
      if (this.q('SELECT 1 FROM jobs WHERE workflow_id = ? AND deleting = 1 LIMIT 1').get(id))
        throw new ConflictError(`workflow ${id} is being removed by the retention settings (dsg gc); it can no longer be retried`);
      this.q('UPDATE workflows SET cancel_requested = 0, finished_at = NULL WHERE id = ?').run(id);
      let requeued = 0;
      for (const row of this.stageRows(id).values()) if (row.released === 1) requeued += this.requeueFailed(row, now);
      const unskipped = this.liftSkips(id, now);
      this.advanceWorkflow(id, now, []);
      return { requeued, unskipped };
    });
    if (!result) return null;
    return { workflow: (await this.getWorkflow(id))!, result };
  }

  /**
   * Clear every stage's skip reason and cancel request; a released stage that created nothing is released anew.
   * A released per-item stage catches up on the items whose upstream task succeeded while it was skipped or
   * cancelled (no task was created for them then, and no later success will bring them).
   */
  private liftSkips(workflowId: string, now: number): number {
    let n = 0;
    for (const row of this.stageRows(workflowId).values()) {
      const created = countsOf(row);
      const none = created.queued + created.assigned + created.running + created.succeeded + created.failed + created.cancelled === 0;
      if (row.skip_reason !== null || row.cancel_requested === 1) n++;
      this.q('UPDATE jobs SET skip_reason = NULL, cancel_requested = 0, released = CASE WHEN ? THEN 0 ELSE released END, finished_at = NULL WHERE id = ?').run(none ? 1 : 0, row.id);
    }
    const rows = this.stageRows(workflowId);
    for (const row of rows.values()) if (row.released === 1 && compiledOf(row).fanOut.kind === 'each') this.releaseStage(row, rows, now);
    return n;
  }

  private stageRows(workflowId: string): Map<string, JobRow> {
    const rows = this.q('SELECT * FROM jobs WHERE workflow_id = ?').all(workflowId) as JobRow[];
    return new Map(rows.map((r) => [r.stage!, r]));
  }

  private toWorkflow(r: WorkflowRow): WorkflowRecord {
    const compiled = workflowOf(r);
    const rows = this.stageRows(r.id);
    const stages: StageRecord[] = compiled.stages.map((st) => ({ name: st.name, needs: st.needs, each: st.each, job: toJob(rows.get(st.name)!) }));
    return {
      id: r.id as WorkflowId,
      name: r.name,
      spec: JSON.parse(r.spec_json) as Record<string, unknown>,
      compiled,
      state: workflowState(stages.map((s) => s.job.state), r.cancel_requested === 1),
      cancelRequested: r.cancel_requested === 1,
      createdAt: r.created_at,
      finishedAt: r.finished_at,
      stages,
      project: r.project,
      owner: ownerOf(r),
    };
  }

  /** Succeeded outputs of each stage, read once per stage per call. */
  private outputsReader(rows: ReadonlyMap<string, JobRow>): (stage: string) => readonly StageOutput[] {
    const cache = new Map<string, StageOutput[]>();
    return (stage) => {
      let list = cache.get(stage);
      if (!list) {
        const row = rows.get(stage);
        list = row
          ? (this.q(
              `SELECT o.task_index AS taskIndex, o.path, o.size, o.sha256 FROM tasks t JOIN outputs o ON o.attempt_id = t.current_attempt_id
                WHERE t.job_id = ? AND t.state = 'succeeded' ORDER BY o.task_index, o.path`,
            ).all(row.id) as StageOutput[])
          : [];
        cache.set(stage, list);
      }
      return list;
    };
  }

  /**
   * Release what became runnable in a workflow and skip what never will, using core's pure rules: first the
   * per-item releases for tasks that just succeeded, then whole-stage releases and skips until nothing changes.
   * Runs inside the caller's transaction, so the change that triggered it and its consequences commit together.
   */
  private advanceWorkflow(workflowId: string, now: number, succeeded: ReadonlyArray<{ stage: string; index: number }>): void {
    // It reads the counters of every stage and changes them: with every gathered change written first, directly.
    if (this.jobRows) return this.notGatheringJobRows(() => this.advanceWorkflow(workflowId, now, succeeded));
    const wfRow = this.q('SELECT id, compiled_json, cancel_requested FROM workflows WHERE id = ?').get(workflowId) as Pick<WorkflowRow, 'id' | 'compiled_json' | 'cancel_requested'>;
    const wf = workflowOf(wfRow);
    let rows = this.stageRows(workflowId);
    const progress = (): Map<string, StageProgress> =>
      new Map([...rows].map(([name, r]) => [name, { ...gateOf(r), counts: countsOf(r), cancelRequested: r.cancel_requested === 1 }]));

    for (const ev of succeeded) {
      for (const stage of itemReleases(wf, progress(), ev.stage)) {
        const row = rows.get(stage)!;
        if (!this.q('SELECT 1 FROM tasks WHERE job_id = ? AND idx = ?').get(row.id, ev.index)) this.createTasks(row, [ev.index], rows, now);
      }
      rows = this.stageRows(workflowId);
    }
    for (let round = 0; round <= wf.stages.length * 2; round++) {
      const plan = planWorkflow(wf, progress(), wfRow.cancel_requested === 1);
      if (plan.release.length === 0 && plan.skip.length === 0) break;
      for (const s of plan.skip)
        this.q('UPDATE jobs SET skip_reason = ?, cancel_requested = MAX(cancel_requested, ?) WHERE id = ?').run(s.reason, wfRow.cancel_requested, rows.get(s.stage)!.id);
      for (const stage of plan.release) this.releaseStage(rows.get(stage)!, rows, now);
      rows = this.stageRows(workflowId);
    }
    for (const r of rows.values()) this.finishJobIfDone(r.id, now);
    this.q(
      `UPDATE workflows SET finished_at = CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE workflow_id = @wf AND (${JOB_STATE_SQL}) NOT IN (${TERMINAL_SQL}))
         THEN NULL ELSE COALESCE(finished_at, @now) END WHERE id = @wf`,
    ).run({ wf: workflowId, now });
  }

  /** Open a stage's gate and create the tasks that can exist now. */
  private releaseStage(row: JobRow, rows: ReadonlyMap<string, JobRow>, now: number): void {
    const compiled = compiledOf(row);
    this.q('UPDATE jobs SET released = 1 WHERE id = ?').run(row.id);
    const existing = new Set((this.q('SELECT idx FROM tasks WHERE job_id = ?').all(row.id) as Array<{ idx: number }>).map((r) => r.idx));
    const fan = compiled.fanOut;
    if (fan.kind === 'each') {
      const up = rows.get(fan.from)!;
      const done = (this.q("SELECT idx FROM tasks WHERE job_id = ? AND state = 'succeeded' ORDER BY idx").all(up.id) as Array<{ idx: number }>).map((r) => r.idx);
      this.createTasks(row, done.filter((i) => !existing.has(i)), rows, now);
      return;
    }
    if (fan.kind === 'files') {
      const files = filesFanOut(compiled, this.outputsReader(rows)(fan.from));
      if (!files.ok) {
        this.q('UPDATE jobs SET skip_reason = ?, task_count = 0 WHERE id = ?').run(files.message, row.id);
        return;
      }
      this.q('UPDATE jobs SET task_count = ? WHERE id = ?').run(files.value.length, row.id);
      const values = files.value;
      this.createTasks({ ...row, task_count: values.length }, values.map((_, i) => i).filter((i) => !existing.has(i)), rows, now, values);
      return;
    }
    const all: number[] = [];
    for (let i = 0; i < row.task_count; i++) if (!existing.has(i)) all.push(i);
    this.createTasks(row, all, rows, now);
  }

  /**
   * Create tasks of a stage, queued, with their inputs from earlier stages resolved now; a task whose inputs cannot
   * be resolved (a pattern matching nothing, two tasks producing the same path) is created failed, with the reason.
   */
  private createTasks(row: JobRow, indices: readonly number[], rows: ReadonlyMap<string, JobRow>, now: number, values?: readonly string[]): void {
    if (indices.length === 0) return;
    const compiled = compiledOf(row);
    const needsResolve = compiled.artifacts.length > 0 || compiled.fanOut.kind === 'files';
    const outputsOf = this.outputsReader(rows);
    const local = new Set((JSON.parse(row.inputs_json) as WireInputFile[]).map((f) => f.path));
    const first = this.allocSeq(indices.length);
    const ins = this.q("INSERT INTO tasks (job_id, idx, array_value, state, queue_seq, inputs_json) VALUES (?, ?, ?, 'queued', ?, ?)");
    const failed: Array<{ index: number; message: string }> = [];
    indices.forEach((index, i) => {
      const arrayValue = values ? (values[index] ?? null) : compiled.arrayValues ? (compiled.arrayValues[index] ?? null) : null;
      let inputs: string | null = null;
      if (needsResolve) {
        const r = resolveArtifacts(compiled, { index, arrayValue }, outputsOf, local);
        if (r.ok) inputs = JSON.stringify(r.value);
        else failed.push({ index, message: r.message });
      }
      ins.run(row.id, index, arrayValue, first + i, inputs);
    });
    this.q('UPDATE jobs SET n_queued = n_queued + ? WHERE id = ?').run(indices.length, row.id);
    this.refreshQueueHead(row.id);
    for (const f of failed) {
      const t = this.taskAt(row.id, f.index)!;
      this.moveTask(t, 'failed', { finished_at: now, failure_json: JSON.stringify({ kind: 'user', reason: 'inputs_unavailable', message: f.message }) });
    }
  }

  /** Reserve `n` consecutive queue positions. */
  private allocSeq(n: number): number {
    const { value: end } = this.q("UPDATE meta SET value = value + ? WHERE key = 'queue_seq' RETURNING value").get(n) as { value: number };
    return end - n + 1;
  }

  // ── data lifecycle ────────────────────────────────────────────────────────────────────────────────────
  async listFinishedWork(limit: number): Promise<readonly FinishedWork[]> {
    const jobs = this.q(
      `SELECT j.id, j.name, j.finished_at, j.task_count AS tasks, (SELECT COALESCE(SUM(size), 0) FROM outputs o WHERE o.job_id = j.id) AS bytes
         FROM jobs j WHERE j.finished_at IS NOT NULL AND j.workflow_id IS NULL ORDER BY j.finished_at, j.id LIMIT ?`,
    ).all(limit) as Array<{ id: string; name: string; finished_at: number; bytes: number; tasks: number }>;
    const wfs = this.q(
      `SELECT w.id, w.name, w.finished_at,
              (SELECT COALESCE(SUM(o.size), 0) FROM outputs o JOIN jobs j ON j.id = o.job_id WHERE j.workflow_id = w.id) AS bytes,
              (SELECT COALESCE(SUM(j.task_count), 0) FROM jobs j WHERE j.workflow_id = w.id) AS tasks
         FROM workflows w WHERE w.finished_at IS NOT NULL ORDER BY w.finished_at, w.id LIMIT ?`,
    ).all(limit) as Array<{ id: string; name: string; finished_at: number; bytes: number; tasks: number }>;
    const stageJobs = this.q('SELECT id FROM jobs WHERE workflow_id = ?');
    const out: FinishedWork[] = [
      ...jobs.map((j) => ({ kind: 'job' as const, id: j.id, name: j.name, finishedAt: j.finished_at, jobIds: [j.id as JobId], outputBytes: j.bytes, taskCount: j.tasks })),
      ...wfs.map((w) => ({
        kind: 'workflow' as const, id: w.id, name: w.name, finishedAt: w.finished_at, outputBytes: w.bytes, taskCount: w.tasks,
        jobIds: (stageJobs.all(w.id) as Array<{ id: string }>).map((r) => r.id as JobId),
      })),
    ];
    return out.sort((a, b) => a.finishedAt - b.finishedAt || (a.id < b.id ? -1 : 1)).slice(0, limit);
  }

  async deleteFinishedWork(items: ReadonlyArray<{ readonly kind: 'job' | 'workflow'; readonly id: string }>): Promise<readonly JobId[]> {
    // Work with many tasks is deleted range by range, the event loop free between commits (one commit for a
    // 100,000-task job held it for ~0.2 s): first marked `deleting` (no retry can reopen it), then its rows.
    const big = items.filter((it) => this.taskCountOf(it) > DELETE_CHUNK);
    const deleted: JobId[] = [];
    for (const it of big) deleted.push(...(await this.deleteBig(it)));
    const small = items.filter((it) => !big.includes(it));
    return [...deleted, ...this.db.transaction(() => {
      const deleted: JobId[] = [];
      const dropJob = (id: string): void => {
        this.q('DELETE FROM outputs WHERE job_id = ?').run(id);
        this.q('DELETE FROM attempts WHERE job_id = ?').run(id);
        this.allocStale = null;
        this.q('DELETE FROM tasks WHERE job_id = ?').run(id);
        this.q('DELETE FROM jobs WHERE id = ?').run(id);
        deleted.push(id as JobId);
      };
      for (const it of small) {
        if (it.kind === 'job') {
          // Still finished, not part of a workflow, and nothing of it active (a retry reopens a job).
          const j = this.q('SELECT finished_at, workflow_id FROM jobs WHERE id = ?').get(it.id) as { finished_at: number | null; workflow_id: string | null } | undefined;
          if (!j || j.finished_at === null || j.workflow_id !== null) continue;
          if (this.q("SELECT 1 FROM attempts WHERE job_id = ? AND state IN ('assigned', 'running') LIMIT 1").get(it.id)) continue;
          dropJob(it.id);
        } else {
          const w = this.q('SELECT finished_at FROM workflows WHERE id = ?').get(it.id) as { finished_at: number | null } | undefined;
          if (!w || w.finished_at === null) continue;
          const stages = this.q('SELECT id, finished_at FROM jobs WHERE workflow_id = ?').all(it.id) as Array<{ id: string; finished_at: number | null }>;
          if (stages.some((st) => st.finished_at === null)) continue;
          if (this.q("SELECT 1 FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.workflow_id = ? AND a.state IN ('assigned', 'running') LIMIT 1").get(it.id)) continue;
          for (const st of stages) dropJob(st.id);
          this.q('DELETE FROM workflows WHERE id = ?').run(it.id);
        }
      }
      return deleted;
    })];
  }

  private taskCountOf(it: { readonly kind: 'job' | 'workflow'; readonly id: string }): number {
    const r = (it.kind === 'job'
      ? this.q('SELECT task_count AS n FROM jobs WHERE id = ?').get(it.id)
      : this.q('SELECT COALESCE(SUM(task_count), 0) AS n FROM jobs WHERE workflow_id = ?').get(it.id)) as { n: number } | undefined;
    return r?.n ?? 0;
  }

  /** Delete one big finished job or workflow: mark it (checks as in deleteFinishedWork), then range by range. */
  private async deleteBig(it: { readonly kind: 'job' | 'workflow'; readonly id: string }): Promise<JobId[]> {
    const jobs = this.db.transaction((): string[] | null => {
      if (it.kind === 'job') {
        const j = this.q('SELECT finished_at, workflow_id FROM jobs WHERE id = ?').get(it.id) as { finished_at: number | null; workflow_id: string | null } | undefined;
        if (!j || j.finished_at === null || j.workflow_id !== null) return null;
        if (this.q("SELECT 1 FROM attempts WHERE job_id = ? AND state IN ('assigned', 'running') LIMIT 1").get(it.id)) return null;
        this.q('UPDATE jobs SET deleting = 1 WHERE id = ?').run(it.id);
        return [it.id];
      }
      const w = this.q('SELECT finished_at FROM workflows WHERE id = ?').get(it.id) as { finished_at: number | null } | undefined;
      if (!w || w.finished_at === null) return null;
      const stages = this.q('SELECT id, finished_at FROM jobs WHERE workflow_id = ?').all(it.id) as Array<{ id: string; finished_at: number | null }>;
      if (stages.some((st) => st.finished_at === null)) return null;
      if (this.q("SELECT 1 FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.workflow_id = ? AND a.state IN ('assigned', 'running') LIMIT 1").get(it.id)) return null;
      this.q('UPDATE jobs SET deleting = 1 WHERE workflow_id = ?').run(it.id);
      return stages.map((st) => st.id);
    });
    if (!jobs) return [];
    for (const id of jobs) {
      const { n } = this.q('SELECT task_count AS n FROM jobs WHERE id = ?').get(id) as { n: number };
      for (let from = 0; from < n; from += DELETE_CHUNK) {
        this.db.transaction(() => {
          this.q('DELETE FROM outputs WHERE job_id = ? AND task_index >= ? AND task_index < ?').run(id, from, from + DELETE_CHUNK);
          this.q('DELETE FROM attempts WHERE job_id = ? AND task_index >= ? AND task_index < ?').run(id, from, from + DELETE_CHUNK);
          this.allocStale = null;
          this.q('DELETE FROM tasks WHERE job_id = ? AND idx >= ? AND idx < ?').run(id, from, from + DELETE_CHUNK);
        });
        await new Promise((r) => setImmediate(r));
      }
    }
    this.db.transaction(() => {
      for (const id of jobs) {
        this.q('DELETE FROM outputs WHERE job_id = ?').run(id);
        this.q('DELETE FROM attempts WHERE job_id = ?').run(id);
        this.allocStale = null;
        this.q('DELETE FROM tasks WHERE job_id = ?').run(id);
        this.q('DELETE FROM jobs WHERE id = ?').run(id);
      }
      if (it.kind === 'workflow') this.q('DELETE FROM workflows WHERE id = ?').run(it.id);
    });
    return jobs as JobId[];
  }

  async referencedBlobs(excluding: ReadonlySet<string> = new Set()): Promise<ReadonlySet<string>> {
    // One read transaction: a consistent view of every job's inputs and outputs.
    return this.db.transaction(() => {
      const refs = new Set<string>();
      const addFiles = (json: string | null): void => {
        if (!json) return;
        for (const f of JSON.parse(json) as Array<{ sha256?: string }>) if (f.sha256) refs.add(f.sha256);
      };
      for (const r of this.q('SELECT id, inputs_json FROM jobs').iterate() as Iterable<{ id: string; inputs_json: string }>) if (!excluding.has(r.id)) addFiles(r.inputs_json);
      for (const r of this.q('SELECT job_id, inputs_json FROM tasks INDEXED BY tasks_with_inputs WHERE inputs_json IS NOT NULL').iterate() as Iterable<{ job_id: string; inputs_json: string }>)
        if (!excluding.has(r.job_id)) addFiles(r.inputs_json);
      for (const r of this.q('SELECT job_id, sha256 FROM outputs').iterate() as Iterable<{ job_id: string; sha256: string }>) if (!excluding.has(r.job_id)) refs.add(r.sha256);
      return refs;
    });
  }

  async jobExists(id: string): Promise<boolean> {
    return this.q('SELECT 1 FROM jobs WHERE id = ?').get(id) !== undefined;
  }

  async stats(): Promise<StoreStats> {
    const count = (rows: Array<{ k: string; n: number }>): Record<string, number> => Object.fromEntries(rows.map((r) => [r.k, r.n]));
    // A workflow's state is derived from its stages (workflowState), so it is read per workflow.
    const wfStates = new Map<string, number>();
    for (const r of this.q('SELECT * FROM workflows').all() as WorkflowRow[]) {
      const st = this.toWorkflow(r).state;
      wfStates.set(st, (wfStates.get(st) ?? 0) + 1);
    }
    return {
      jobsByState: count(this.q(`SELECT (${JOB_STATE_SQL}) AS k, COUNT(*) AS n FROM jobs GROUP BY k`).all() as Array<{ k: string; n: number }>),
      workflowsByState: Object.fromEntries(wfStates),
      nodesByState: count(this.q('SELECT state AS k, COUNT(*) AS n FROM nodes GROUP BY state').all() as Array<{ k: string; n: number }>),
    };
  }

  // ── join requests ───────────────────────────────────────────────────────────────────────────────────────
  async upsertJoinRequest(r: JoinRequestRecord): Promise<void> {
    this.q(`INSERT INTO join_requests (id, key_hash, name, facts_json, address, created_at, last_seen_at, state, decided_at, decided_by, reason, node_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (key_hash) DO UPDATE SET name = excluded.name, facts_json = excluded.facts_json, address = excluded.address, last_seen_at = excluded.last_seen_at`).run(
      r.id, r.keyHash, r.name, r.factsJson, r.address, r.createdAt, r.lastSeenAt, r.state, r.decidedAt, r.decidedBy, r.reason, r.nodeId,
    );
  }

  async findJoinRequestByKey(keyHash: string): Promise<JoinRequestRecord | null> {
    const r = this.q('SELECT * FROM join_requests WHERE key_hash = ?').get(keyHash) as JoinRequestRow | undefined;
    return r ? toJoinRequest(r) : null;
  }

  async listJoinRequests(): Promise<readonly JoinRequestRecord[]> {
    return (this.q('SELECT * FROM join_requests ORDER BY created_at').all() as JoinRequestRow[]).map(toJoinRequest);
  }

  async decideJoinRequest(id: string, d: { state: 'approved' | 'rejected'; at: number; by: string; reason: string | null; nodeId: NodeId | null }, from: ReadonlyArray<JoinRequestRecord['state']> = ['pending']): Promise<boolean> {
    if (from.length === 0) return false;
    return this.q(`UPDATE join_requests SET state = ?, decided_at = ?, decided_by = ?, reason = ?, node_id = ? WHERE id = ? AND state IN (${from.map(() => '?').join(', ')})`)
      .run(d.state, d.at, d.by, d.reason, d.nodeId, id, ...from).changes > 0;
  }

  async deleteStaleJoinRequests(before: number): Promise<number> {
    return this.q(`DELETE FROM join_requests WHERE state = 'pending' AND last_seen_at < ?`).run(before).changes;
  }

  // ── tokens ──────────────────────────────────────────────────────────────────────────────────────────────
  async createToken(t: TokenRecord): Promise<void> {
    this.q('INSERT INTO tokens (id, hash, role, name, created_at, revoked_at, node_id, projects_json, expires_at, max_uses) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      t.id, t.hash, t.role, t.name, t.createdAt, t.revokedAt, t.nodeId ?? null, t.projects ? JSON.stringify(t.projects) : null, t.expiresAt ?? null, t.maxUses ?? null,
    );
  }

  async useToken(id: TokenId): Promise<boolean> {
    return this.q('UPDATE tokens SET uses = uses + 1 WHERE id = ? AND (max_uses IS NULL OR uses < max_uses)').run(id).changes > 0;
  }

  async getToken(id: TokenId): Promise<TokenRecord | null> {
    const r = this.q('SELECT * FROM tokens WHERE id = ?').get(id) as TokenRow | undefined;
    return r ? toToken(r) : null;
  }

  async revokeToken(id: TokenId, now: number): Promise<boolean> {
    return this.db.transaction(() => {
      const n = this.q('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes;
      this.q('DELETE FROM sessions WHERE token_id = ?').run(id);
      return n > 0;
    });
  }

  async touchToken(id: TokenId, now: number): Promise<void> {
    this.q('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(now, id);
  }

  async createSession(s: SessionRecord): Promise<void> {
    this.q('INSERT INTO sessions (hash, token_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(s.hash, s.tokenId, s.createdAt, s.expiresAt);
  }

  async findSession(hash: string): Promise<SessionRecord | null> {
    const r = this.q('SELECT * FROM sessions WHERE hash = ?').get(hash) as SessionRow | undefined;
    return r ? { hash: r.hash, tokenId: r.token_id as TokenId, createdAt: r.created_at, expiresAt: r.expires_at } : null;
  }

  async deleteSession(hash: string): Promise<void> {
    this.q('DELETE FROM sessions WHERE hash = ?').run(hash);
  }

  async deleteExpiredSessions(now: number): Promise<number> {
    return this.q('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes;
  }

  async findTokenByHash(hash: string, options: { includeRevoked?: boolean } = {}): Promise<TokenRecord | null> {
    const r = this.q('SELECT * FROM tokens WHERE hash = ?').get(hash) as TokenRow | undefined;
    return r && (r.revoked_at === null || options.includeRevoked) ? toToken(r) : null;
  }

  async revokeNodeTokens(nodeId: NodeId, now: number): Promise<number> {
    return this.db.transaction(() => {
      this.q('DELETE FROM sessions WHERE token_id IN (SELECT id FROM tokens WHERE node_id = ?)').run(nodeId);
      return this.q('UPDATE tokens SET revoked_at = ? WHERE node_id = ? AND revoked_at IS NULL').run(now, nodeId).changes;
    });
  }

  async listTokens(): Promise<readonly TokenRecord[]> {
    return (this.q('SELECT * FROM tokens ORDER BY created_at').all() as TokenRow[]).map(toToken);
  }

  // ── audit log ──
  async appendAudit(e: AuditInput, hash: HashFn): Promise<AuditEntry> {
    return this.db.transaction(() => {
      const head = this.q('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
      const seq = (head?.seq ?? 0) + 1;
      const prevHash = head?.hash ?? AUDIT_GENESIS;
      const entry: AuditEntry = { ...e, seq, prevHash, hash: auditHash(hash, prevHash, seq, e) };
      this.q(`INSERT INTO audit_log (seq, at, actor_kind, actor_id, actor_name, actor_role, action, target, detail_json, origin, prev_hash, hash)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(seq, e.at, e.actor.kind, e.actor.id, e.actor.name, e.actor.role, e.action, e.target, JSON.stringify(e.detail), e.origin, prevHash, entry.hash);
      return entry;
    });
  }

  async listAudit(q: AuditQuery): Promise<readonly AuditEntry[]> {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (q.afterSeq !== undefined) { where.push('seq > ?'); args.push(q.afterSeq); }
    if (q.beforeSeq !== undefined) { where.push('seq < ?'); args.push(q.beforeSeq); }
    if (q.action !== undefined) { where.push('action = ?'); args.push(q.action); }
    if (q.actorName !== undefined) { where.push('actor_name = ?'); args.push(q.actorName); }
    if (q.since !== undefined) { where.push('at >= ?'); args.push(q.since); }
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${q.ascending ? 'ASC' : 'DESC'} LIMIT ?`;
    return (this.db.prepare(sql).all(...args, q.limit) as AuditRow[]).map(toAuditEntry);
  }

  async auditHead(): Promise<{ readonly seq: number; readonly hash: string }> {
    const head = this.q('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
    // A new object, not the row: rows have a null prototype under node:sqlite (driver.ts).
    return head ? { seq: head.seq, hash: head.hash } : { seq: 0, hash: AUDIT_GENESIS };
  }
}

interface AuditRow {
  seq: number; at: number; actor_kind: string; actor_id: string; actor_name: string; actor_role: string;
  action: string; target: string; detail_json: string; origin: string; prev_hash: string; hash: string;
}

/** A row as it is (even a tampered one): the verifier must see what is stored, so nothing is normalised here. */
function toAuditEntry(r: AuditRow): AuditEntry {
  let detail: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(r.detail_json);
    detail = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { unparsable: r.detail_json };
  } catch {
    detail = { unparsable: r.detail_json };
  }
  return {
    seq: r.seq, at: r.at, actor: { kind: r.actor_kind as AuditEntry['actor']['kind'], id: r.actor_id, name: r.actor_name, role: r.actor_role },
    action: r.action, target: r.target, detail, origin: r.origin, prevHash: r.prev_hash, hash: r.hash,
  };
}
