/**
 * The Store port: everything the coordinator keeps durably, behind async, domain-level operations.
 *
 * No connection, statement or transaction type appears here, so PostgreSQL (for high availability) can implement
 * the same port. Each method is atomic: it commits as a whole or not at all. Methods that take arrays exist so the
 * coordinator can group many state changes into one commit (the hot path: assignments and finished reports).
 *
 * Fencing: every report names an attempt. Starts and finishes are applied only while that attempt is the task's
 * current attempt and still active (assigned/running); anything else is ignored and reported back as not applied.
 * Decisions about retries come from core's `decideAfterAttempt`, so every implementation decides alike.
 *
 * Conformance: `runStoreConformance()` (src/conformance.ts) is the behaviour every implementation must pass.
 */
import type { AttemptUsage, AuditEntry, AuditInput, GpuGrant, HashFn, LedgerGroupBy, LedgerSums } from '@dsg/core';
import type {
  AttemptEnd,
  AttemptId,
  AttemptState,
  CompiledJobSpec,
  Failure,
  JobId,
  JobState,
  NodeFacts,
  NodeId,
  NodeState,
  OutputFile,
  Resources,
  TaskCounts,
  TaskId,
  TaskState,
  TokenId,
  WireInputFile,
  CompiledWorkflow,
  StageStatus,
  WorkflowId,
} from '@dsg/core';

export interface NewJob {
  readonly id: JobId;
  readonly name: string;
  /** The spec as the user submitted it (for display). */
  readonly spec: Record<string, unknown>;
  readonly compiled: CompiledJobSpec;
  /** Input files (expanded from spec.inputs), content-addressed. */
  readonly inputs: readonly WireInputFile[];
  readonly createdAt: number;
  readonly warnings: readonly string[];
  /** Who submitted it (absent: nobody recorded, e.g. tests and jobs from before owners were kept). */
  readonly owner?: Owner | null;
}

/**
 * Who submitted a job or workflow: the token's id, its name and role at the time. Kept as written (a revoked or
 * renamed token does not change the history). Null on work from before owners were recorded (migration 8); that
 * work could only have been submitted with the admin token.
 */
export interface Owner {
  readonly tokenId: TokenId;
  readonly name: string;
  readonly role: TokenRole;
}

export interface JobRecord {
  readonly id: JobId;
  readonly name: string;
  readonly spec: Record<string, unknown>;
  readonly compiled: CompiledJobSpec;
  readonly inputs: readonly WireInputFile[];
  readonly state: JobState;
  readonly counts: TaskCounts;
  readonly taskCount: number;
  readonly cancelRequested: boolean;
  readonly createdAt: number;
  readonly finishedAt: number | null;
  readonly warnings: readonly string[];
  /** The workflow this job is a stage of, or null for a plain job. */
  readonly workflowId: WorkflowId | null;
  readonly stage: string | null;
  /** False while a stage waits for what it needs (its tasks are not created yet). Always true for plain jobs. */
  readonly released: boolean;
  /** Why a stage (or some of its tasks) will not run: something it needs did not succeed. */
  readonly skipReason: string | null;
  /** Who submitted it (a stage: who submitted its workflow); null when not recorded. */
  readonly owner: Owner | null;
}

/** One stage of a workflow as stored: the job that runs it and how far it got. */
export interface StageRecord {
  readonly name: string;
  readonly needs: readonly string[];
  readonly each: string | null;
  readonly job: JobRecord;
}

export interface NewWorkflow {
  readonly id: WorkflowId;
  readonly name: string;
  readonly spec: Record<string, unknown>;
  readonly compiled: CompiledWorkflow;
  /** One job per stage of `compiled.stages`, in the same order. */
  readonly stages: ReadonlyArray<{ readonly jobId: JobId; readonly inputs: readonly WireInputFile[]; readonly warnings: readonly string[] }>;
  readonly createdAt: number;
  /** Who submitted it (absent: not recorded). */
  readonly owner?: Owner | null;
}

export interface WorkflowRecord {
  readonly id: WorkflowId;
  readonly name: string;
  readonly spec: Record<string, unknown>;
  readonly compiled: CompiledWorkflow;
  /** Derived from its stages: running while any runs or waits, then failed if any failed or was skipped. */
  readonly state: StageStatus;
  readonly cancelRequested: boolean;
  readonly createdAt: number;
  readonly finishedAt: number | null;
  /** In topological order. */
  readonly stages: readonly StageRecord[];
  /** The project every stage belongs to. */
  readonly project: string;
  /** Who submitted it; null when not recorded. */
  readonly owner: Owner | null;
}

export interface ListWorkflowsQuery {
  readonly limit: number;
  readonly cursor?: string;
  /** Only workflows of these projects (a submitter's view); absent: all. */
  readonly projects?: readonly string[];
}

export interface RetryResult {
  /** Tasks put back in the queue (failed or cancelled ones). */
  readonly requeued: number;
  /** Stages whose skip was lifted (workflows only). */
  readonly unskipped: number;
}

export interface TaskRecord {
  readonly id: TaskId;
  readonly jobId: JobId;
  readonly index: number;
  readonly arrayValue: string | null;
  readonly state: TaskState;
  /** Number of attempts created so far. */
  readonly attempts: number;
  readonly userFailures: number;
  readonly systemFailures: number;
  readonly currentAttemptId: AttemptId | null;
  readonly nodeId: NodeId | null;
  readonly exitCode: number | null;
  readonly failure: Failure | null;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
}

export interface AttemptRecord {
  readonly id: AttemptId;
  readonly taskId: TaskId;
  readonly jobId: JobId;
  readonly taskIndex: number;
  readonly number: number;
  readonly nodeId: NodeId;
  readonly state: AttemptState;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly failure: Failure | null;
  readonly assignedAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  /** The GPU devices it holds or held (chosen by the scheduler, re-checked by `applyPlan`); absent: none. */
  readonly gpuDevices?: readonly GpuGrant[];
}

export interface NodeRecord {
  readonly id: NodeId;
  readonly name: string;
  readonly state: NodeState;
  readonly capacity: Resources;
  readonly facts: NodeFacts;
  readonly labels: Readonly<Record<string, string>>;
  readonly agentVersion: string;
  readonly address: string | null;
  readonly joinedAt: number;
  readonly lastSeenAt: number;
  /** An operator's `dsg node cordon`: no new work. */
  readonly cordoned: boolean;
  /** An operator's `dsg node drain`: no new work; what it runs finishes (then it is drained). */
  readonly draining: boolean;
  /**
   * While later than now, the node is quarantined (too many system failures in a window): no new work. Also where
   * the count of its system failures starts again. Null when it never was.
   */
  readonly quarantinedUntil: number | null;
  readonly quarantineReason: string | null;
}

/** A node with what its active attempts hold. */
export interface NodeUsage {
  readonly node: NodeRecord;
  /** Resources of all active attempts (assigned or running): what scheduling counts. */
  readonly allocated: Resources;
  readonly activeAttempts: number;
  /** Resources of the attempts actually running (the rest wait in the agent's local queue). */
  readonly running: Resources;
  readonly runningAttempts: number;
  /** The GPU devices each active attempt holds (one list per attempt that holds any): the node's device state. */
  readonly gpuHeld: ReadonlyArray<readonly GpuGrant[]>;
}

export interface QueuedTask {
  readonly taskId: TaskId;
  readonly jobId: JobId;
  readonly index: number;
  readonly resources: Resources;
  /** Position in the global queue (FIFO across jobs, then by index). */
  readonly seq: number;
  /** Mean run time of this job's finished attempts so far, or null before any finished. */
  readonly typicalRunMs: number | null;
}

/** A created attempt with what its assignment needs beyond the job's spec. */
export interface CreatedAttempt extends AttemptRecord {
  readonly arrayValue: string | null;
  readonly taskCount: number;
  /** Inputs from earlier stages, resolved when the task was created. */
  readonly taskInputs: readonly WireInputFile[];
}

/**
 * A job with queued tasks, as the dispatch pass sees it. Every task of a job asks for the same resources, so the
 * scheduler can judge the whole job by its first task.
 */
export interface QueuedJob {
  readonly jobId: JobId;
  readonly resources: Resources;
  /** Mean run time of this job's finished attempts so far, or null before any finished. */
  readonly typicalRunMs: number | null;
  /** How many of its tasks are queued now. */
  readonly queued: number;
  /** How many of its tasks hold a node now (assigned or running): what `parallelism` counts. */
  readonly active: number;
  /** Its first queued task: jobs are listed in queue order of this task (a retried task keeps its old position). */
  readonly first: QueuedTaskRef;
}

/** One of a job's queued tasks. */
export interface QueuedTaskRef {
  readonly taskId: TaskId;
  readonly jobId: JobId;
  readonly index: number;
  /** Position in the global queue. */
  readonly seq: number;
}

export interface NewAttempt {
  readonly attemptId: AttemptId;
  readonly taskId: TaskId;
  readonly nodeId: NodeId;
  /**
   * True when the attempt is sent ahead, to wait in the agent's local queue for a free core (prefetch). It is
   * checked against `overcommit ×` the node's capacity instead of the capacity itself.
   */
  readonly prefetch: boolean;
  /**
   * The GPU devices chosen for it. Required when its job uses GPUs and the node reports its devices; re-checked
   * against what the node's active attempts hold (never a device held whole twice, never beyond a device's memory).
   */
  readonly gpus?: readonly GpuGrant[];
}

export interface ApplyPlanResult {
  /** Attempts created, in the order given. */
  readonly created: readonly CreatedAttempt[];
  /**
   * Assignments dropped because the task was no longer queued, its job's cancel was requested, or the node no
   * longer had room or was not online.
   */
  readonly rejected: ReadonlyArray<{ readonly taskId: TaskId; readonly nodeId: NodeId; readonly why: 'task_not_queued' | 'node_unavailable' | 'no_capacity' | 'job_cancelled' | 'gpu_devices' }>;
}

export interface StartReport {
  readonly attemptId: AttemptId;
  readonly at: number;
}

export interface FinishReport {
  readonly attemptId: AttemptId;
  readonly end: AttemptEnd;
  readonly startedAt: number | null;
  readonly finishedAt: number;
  readonly outputs: readonly OutputFile[];
  /** What the agent measured (CPU time, peak memory), for the ledger; absent when it measured nothing. */
  readonly usage?: AttemptUsage | undefined;
}

/** Which ledger entries to add up, and by what. Times are epoch ms on the attempts' finished_at, [since, until). */
export interface LedgerQuery {
  readonly by: LedgerGroupBy;
  readonly since?: number;
  readonly until?: number;
  readonly nodeName?: string;
  readonly project?: string;
  readonly user?: string;
}

export interface FinishResult {
  readonly attemptId: AttemptId;
  /** False when the report was fenced off (unknown, stale or already finished attempt). */
  readonly applied: boolean;
  readonly taskId: TaskId | null;
  readonly jobId: JobId | null;
  readonly taskState: TaskState | null;
  readonly retry: boolean;
}

export interface OutputRecord extends OutputFile {
  readonly jobId: JobId;
  readonly taskIndex: number;
  readonly attemptId: AttemptId;
}

/**
 * `admin`: everything. `submitter`: submit, read, cancel and retry the work of its projects. `reader`: read
 * everything, change nothing. `node`: the join token and per-node credentials (agents only).
 */
export const TokenRole = { admin: 'admin', submitter: 'submitter', reader: 'reader', node: 'node' } as const;
export type TokenRole = (typeof TokenRole)[keyof typeof TokenRole];

/**
 * A machine that asked to join without a token (`dsg agent` with no join token or code): it waits until an admin
 * approves or rejects it. It proves it is the same machine on every poll with a secret key only it holds (stored
 * here as sha256). What it says about itself (name, facts) is a claim, shown as such.
 *
 *   pending ──approve──▶ approved (a node id is reserved; the key holder collects its credential)
 *   pending ──reject───▶ rejected (the key holder is told, and stays out)
 */
export interface JoinRequestRecord {
  /** Short and readable (`K7Q2-M9XD`): people compare it between the agent's screen and `dsg node pending`. */
  readonly id: string;
  readonly keyHash: string;
  readonly name: string;
  /** What the agent claims about itself (NodeFacts as JSON), unverified. */
  readonly factsJson: string;
  readonly address: string;
  readonly createdAt: number;
  readonly lastSeenAt: number;
  readonly state: 'pending' | 'approved' | 'rejected';
  readonly decidedAt: number | null;
  /** Who decided (a token's name). */
  readonly decidedBy: string | null;
  readonly reason: string | null;
  /** Approved: the node id it joins as. */
  readonly nodeId: NodeId | null;
}

export interface TokenRecord {
  readonly id: TokenId;
  /** sha256 of the secret; the secret itself is never stored. */
  readonly hash: string;
  readonly role: TokenRole;
  readonly name: string;
  readonly createdAt: number;
  readonly revokedAt: number | null;
  /**
   * Set for a node credential: the node this token authenticates, and the only one it may act for (join tokens
   * and admin tokens have none). Absent is read as null.
   */
  readonly nodeId?: NodeId | null;
  /** A submitter's projects (it may act only on their work); null or absent for every other role. */
  readonly projects?: readonly string[] | null;
  /** When it stops working (epoch ms); null or absent: never. */
  readonly expiresAt?: number | null;
  /** When it was last used (updated at most once a minute); null: never. Absent on writes. */
  readonly lastUsedAt?: number | null;
  /** A join code's limit on the nodes it may admit (`Store.useToken`); null or absent: none. */
  readonly maxUses?: number | null;
  /** Nodes admitted with it so far. Absent on writes (0). */
  readonly uses?: number;
}

/** A dashboard session: a random id (stored hashed) bound to the token that signed in. */
export interface SessionRecord {
  readonly hash: string;
  readonly tokenId: TokenId;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface NodeUpsert {
  readonly id: NodeId;
  readonly name: string;
  readonly capacity: Resources;
  readonly facts: NodeFacts;
  readonly labels: Readonly<Record<string, string>>;
  readonly agentVersion: string;
  readonly address: string | null;
  readonly now: number;
}

export interface ListJobsQuery {
  readonly state?: JobState;
  /** Only jobs of these projects (a submitter's view); absent: all. */
  readonly projects?: readonly string[];
  readonly name?: string;
  readonly limit: number;
  /** Opaque; from a previous page's nextCursor. Jobs come newest first unless `order` is `oldest`. */
  readonly cursor?: string;
  /** `newest` first (default) or `oldest` first; both walk the primary key. */
  readonly order?: 'newest' | 'oldest';
}

export interface ListTasksQuery {
  readonly state?: TaskState;
  readonly limit: number;
  readonly cursor?: string;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly nextCursor: string | null;
}

export interface StorePolicy {
  /** How often a task is re-run after system failures (node lost, …). Default 3. */
  readonly maxSystemRetries: number;
  /**
   * Quarantine a node that reports `failures` system failures of its own (executor errors, inputs or outputs it
   * could not move; never user failures, lost nodes or agent stops) within `windowMs`: it gets no new work for
   * `coolDownMs`, or until an operator's uncordon. Absent: never quarantine.
   */
  readonly quarantine?: QuarantinePolicy;
}

export interface QuarantinePolicy {
  /** Default 3. */
  readonly failures: number;
  /** Default 10 minutes. */
  readonly windowMs: number;
  /** Default 30 minutes. */
  readonly coolDownMs: number;
}

/** Operator flags to change on a node; absent fields stay as they are. */
export interface NodeFlagsChange {
  readonly cordoned?: boolean;
  readonly draining?: boolean;
  /** End a quarantine now (and count its system failures afresh from now). */
  readonly releaseQuarantine?: boolean;
}

/** Finished work retention may remove as one unit: a plain job, or a whole workflow with all its stage jobs. */
export interface FinishedWork {
  readonly kind: 'job' | 'workflow';
  readonly id: string;
  readonly name: string;
  readonly finishedAt: number;
  readonly jobIds: readonly JobId[];
  /** Sum of the sizes its outputs list (blobs may be shared with other work). */
  readonly outputBytes: number;
  /** Tasks of all its jobs: what deleting it costs (callers size their commits by it). */
  readonly taskCount: number;
}

/** Counts for `dsg status`. */
export interface StoreStats {
  readonly jobsByState: Readonly<Record<string, number>>;
  readonly workflowsByState: Readonly<Record<string, number>>;
  readonly nodesByState: Readonly<Record<string, number>>;
}

export interface Store {
  /** A short name for health output, e.g. `sqlite`. */
  readonly kind: string;
  /** Create or migrate the schema. Idempotent. */
  init(): Promise<void>;
  close(): Promise<void>;
  /**
   * Prove the store can commit: a tiny real write in its own transaction (readiness checks). Throws when it cannot
   * (disk full, read-only file system, database locked past its timeout, store closed).
   */
  probeWrite(now: number): Promise<void>;

  // ── jobs and tasks ──
  /** Insert the job and its `compiled.taskCount` tasks, all queued, in one commit. */
  createJob(job: NewJob): Promise<JobRecord>;
  getJob(id: JobId): Promise<JobRecord | null>;
  listJobs(query: ListJobsQuery): Promise<Page<JobRecord>>;
  /**
   * Ask to cancel a job. A job that has already finished (every task ended) is left exactly as it is — not even
   * `cancelRequested` changes — and `alreadyFinished` is true. Otherwise the job is marked cancel-requested: from
   * then on none of its tasks is assigned (`applyPlan` rejects them), its active attempts stay active until their
   * agent reports them ended (the coordinator tells agents to kill them: `toKill`) or they are lost, and its queued
   * tasks are cancelled by `cancelQueuedTasks`, range by range. Idempotent. Null when the job does not exist.
   */
  requestCancel(id: JobId, now: number): Promise<{ job: JobRecord; toKill: readonly AttemptRecord[]; alreadyFinished: boolean } | null>;
  /**
   * Cancel the queued tasks whose index is in [from, to) of a job whose cancel was requested, in one commit and in
   * bulk (not one statement per task), and finish the job if nothing remains. Returns how many were cancelled (0
   * if the job's cancel was not requested). Callers cancel a large job range by range, leaving the event loop
   * free in between, so no cancel stalls the coordinator.
   */
  cancelQueuedTasks(id: JobId, range: { readonly from: number; readonly to: number }, now: number): Promise<number>;
  /** Jobs whose cancel was requested but which still have queued tasks (a coordinator stopped mid-cancel). */
  listCancellingJobs(): Promise<readonly JobId[]>;
  listTasks(jobId: JobId, query: ListTasksQuery): Promise<Page<TaskRecord>>;
  getTask(id: TaskId): Promise<TaskRecord | null>;
  listAttempts(taskId: TaskId): Promise<readonly AttemptRecord[]>;
  getAttempt(id: AttemptId): Promise<AttemptRecord | null>;
  /**
   * Re-run what failed or was cancelled (and, in a workflow, what was skipped), keeping every succeeded task:
   * failed and cancelled tasks go back to the queue with fresh retry budgets, the cancel request is lifted, and a
   * workflow's stages are released again as their needs succeed. Null when the job does not exist.
   */
  retryJob(id: JobId, now: number): Promise<{ job: JobRecord; result: RetryResult } | null>;
  /**
   * Where a job's first queued task stands in the queue: queued tasks of other jobs ahead of it, and how many jobs
   * they belong to. Null when the job has no queued task.
   */
  /** Tasks of unfinished jobs not started yet (queued or not created), in all and in one project: admission. */
  waitingTasks(project: string): Promise<{ readonly total: number; readonly project: number }>;
  /** What the active attempts (assigned or running) of each project hold: fair share between projects. */
  allocationByProject(): Promise<ReadonlyMap<string, Resources>>;
  /**
   * Fair share with memory: every attempt that started and is still active or finished at or after `since`, with
   * its project and resources. Attempts never started (assigned only) are not use. Also what each project holds on
   * nodes now (tasks assigned or running, their GPUs): per-project limits.
   */
  projectUsageSince(since: number): Promise<{
    readonly records: ReadonlyArray<{ readonly project: string; readonly resources: Resources; readonly startedAt: number; readonly finishedAt: number | null }>;
    readonly active: ReadonlyMap<string, { readonly tasks: number; readonly gpus: number }>;
  }>;
  /** Tasks of unfinished jobs by state (for metrics): queued, assigned, running. */
  activeTaskCounts(): Promise<{ readonly queued: number; readonly assigned: number; readonly running: number }>;
  queueAhead(id: JobId): Promise<{ readonly tasksAhead: number; readonly jobsAhead: number } | null>;

  // ── workflows ──
  /** Insert the workflow and one job per stage, releasing the stages that need nothing, in one commit. */
  createWorkflow(wf: NewWorkflow): Promise<WorkflowRecord>;
  getWorkflow(id: WorkflowId): Promise<WorkflowRecord | null>;
  listWorkflows(query: ListWorkflowsQuery): Promise<Page<WorkflowRecord>>;
  /**
   * Ask to cancel a workflow: stages not released yet are cancelled at once, unfinished stages are marked (their
   * queued tasks are then cancelled with `cancelQueuedTasks`, as for a job), finished stages keep their history.
   * A finished workflow is left as it is (`alreadyFinished`). Returns the attempts to kill.
   */
  requestWorkflowCancel(id: WorkflowId, now: number): Promise<{ workflow: WorkflowRecord; toKill: readonly AttemptRecord[]; alreadyFinished: boolean } | null>;
  retryWorkflow(id: WorkflowId, now: number): Promise<{ workflow: WorkflowRecord; result: RetryResult } | null>;

  // ── scheduling ──
  /**
   * Queued tasks in queue order, at most `limit`. The head of the global queue only (a diagnostic view): the
   * dispatch pass reads per job instead (`listQueuedJobs`, `listQueuedTasks`).
   */
  listQueued(limit: number): Promise<readonly QueuedTask[]>;
  /**
   * Every job that has queued tasks, with its first queued task, in queue order of that task (FIFO across jobs; a
   * retried task keeps its place). Must cost O(jobs with queued tasks), not O(queued tasks): a job with a million
   * queued tasks is one row here.
   */
  listQueuedJobs(): Promise<readonly QueuedJob[]>;
  /**
   * For each `{ jobId, limit }`, the first `limit` queued tasks of that job in queue order, read in one snapshot;
   * jobs are returned in the order asked. Must cost O(tasks returned + jobs asked), however many are queued.
   */
  listQueuedTasks(reads: ReadonlyArray<{ readonly jobId: JobId; readonly limit: number }>): Promise<readonly QueuedTaskRef[]>;
  /** Nodes in the given states with their current allocation. */
  listNodeUsage(states?: readonly NodeState[]): Promise<readonly NodeUsage[]>;
  /**
   * Create attempts for a plan, in one commit, re-checking each: the task must still be queued and the node online
   * with room (capacity minus its active attempts; `overcommit ×` capacity for prefetched attempts). Stale entries
   * are rejected, never forced.
   */
  applyPlan(attempts: readonly NewAttempt[], now: number, options: { readonly overcommit: number }): Promise<ApplyPlanResult>;

  // ── reports from agents (fenced by attempt id) ──
  /** Apply starts, then finishes, in one commit (the engine's grouped commit). */
  recordReports(starts: readonly StartReport[], finishes: readonly FinishReport[], now: number, policy: StorePolicy): Promise<readonly FinishResult[]>;
  /**
   * `recordReports`, then `applyPlan` of attempts planned against the room those finishes free, **in one commit**:
   * a report-and-dispatch cycle costs one durable commit instead of two. The plan is checked after the reports are
   * applied, exactly as `applyPlan` checks it (a finish that was fenced off frees nothing, and what no longer fits
   * is rejected); nothing of either part is kept if the commit fails.
   */
  recordReportsAndPlace(
    starts: readonly StartReport[], finishes: readonly FinishReport[], now: number, policy: StorePolicy,
    place: { readonly attempts: readonly NewAttempt[]; readonly overcommit: number },
  ): Promise<{ readonly results: readonly FinishResult[]; readonly placed: ApplyPlanResult }>;
  /** End active attempts as lost (node lost, or the agent no longer knows them); tasks are retried per policy. */
  loseAttempts(attemptIds: readonly AttemptId[], message: string, now: number, policy: StorePolicy): Promise<readonly FinishResult[]>;
  activeAttemptsOnNode(nodeId: NodeId): Promise<readonly AttemptRecord[]>;

  // ── nodes ──
  /** Register or refresh a node; it becomes online. */
  upsertNode(node: NodeUpsert): Promise<NodeRecord>;
  setNodeState(id: NodeId, state: NodeState, now: number): Promise<void>;
  getNode(id: NodeId): Promise<NodeRecord | null>;
  /** Set or clear operator flags (cordon, drain, quarantine release). Null when the node does not exist. */
  setNodeFlags(id: NodeId, change: NodeFlagsChange, now: number): Promise<NodeRecord | null>;
  /**
   * Forget a node. Refused (`removed: false`, with the attempts it holds) while it holds active attempts, unless
   * `force`: then those attempts end as lost in the same commit (a system failure: their tasks are requeued).
   */
  removeNode(id: NodeId, options: { readonly force: boolean; readonly reason: string }, now: number, policy: StorePolicy): Promise<{ removed: boolean; held: readonly AttemptRecord[]; requeued: readonly FinishResult[] } | null>;
  /** Forget offline or lost nodes last seen before `before` that hold no work; returns those removed. */
  pruneNodes(before: number): Promise<readonly NodeRecord[]>;

  // ── outputs ──
  /** Outputs of each task's latest attempt that reported any. */
  listOutputs(jobId: JobId): Promise<readonly OutputRecord[]>;

  // ── data lifecycle ──
  /**
   * Finished plain jobs and finished workflows, oldest first (at most `limit`). A job of a workflow is never listed
   * on its own: it goes with its workflow once the whole workflow has finished.
   */
  listFinishedWork(limit: number): Promise<readonly FinishedWork[]>;
  /**
   * Delete finished work (rows of jobs, tasks, attempts, outputs, workflows) in one commit, re-checking inside it
   * that each is still finished (a retry may have reopened it): what is not is skipped. Returns the jobs deleted.
   */
  deleteFinishedWork(items: ReadonlyArray<{ readonly kind: 'job' | 'workflow'; readonly id: string }>): Promise<readonly JobId[]>;
  /**
   * Every blob the remaining jobs refer to — their inputs, their tasks' inputs from earlier stages, their outputs —
   * leaving out the jobs in `excluding` (a dry run's view of what a deletion would leave).
   */
  referencedBlobs(excluding?: ReadonlySet<string>): Promise<ReadonlySet<string>>;
  /** Whether a job with this id exists (log files of deleted jobs are swept). */
  jobExists(id: string): Promise<boolean>;
  stats(): Promise<StoreStats>;

  // ── join requests (machines waiting for approval) ──
  /** Record a new request, or a poll of a known one (same key): its claims and address are refreshed. */
  upsertJoinRequest(r: JoinRequestRecord): Promise<void>;
  findJoinRequestByKey(keyHash: string): Promise<JoinRequestRecord | null>;
  listJoinRequests(): Promise<readonly JoinRequestRecord[]>;
  /**
   * Decide a request in one of the states `from` (default: pending; approving a rejected one undoes the rejection);
   * false when it is not in one of them (decided already, or unknown).
   */
  decideJoinRequest(id: string, d: { state: 'approved' | 'rejected'; at: number; by: string; reason: string | null; nodeId: NodeId | null }, from?: ReadonlyArray<JoinRequestRecord['state']>): Promise<boolean>;
  /** Forget pending requests not seen since `before` (the agent stopped asking); resolves to how many. */
  deleteStaleJoinRequests(before: number): Promise<number>;

  // ── tokens ──
  createToken(token: TokenRecord): Promise<void>;
  /**
   * Count one node admitted with this token, atomically: false (nothing counted) when it has `maxUses` and they
   * are spent, so two agents racing for a code's last use cannot both get in.
   */
  useToken(id: TokenId): Promise<boolean>;
  /** The token with this hash; a revoked one only with `includeRevoked` (to tell "revoked" from "unknown"). */
  findTokenByHash(hash: string, options?: { includeRevoked?: boolean }): Promise<TokenRecord | null>;
  listTokens(): Promise<readonly TokenRecord[]>;
  getToken(id: TokenId): Promise<TokenRecord | null>;
  /** Revoke every credential of a node at once; resolves to how many were revoked. */
  revokeNodeTokens(nodeId: NodeId, now: number): Promise<number>;
  /** Revoke one token and delete its sessions in one commit; false when it was already revoked or is unknown. */
  revokeToken(id: TokenId, now: number): Promise<boolean>;
  /** Record a use of a token (callers throttle this; it is a write). */
  touchToken(id: TokenId, now: number): Promise<void>;

  // ── dashboard sessions ──
  createSession(session: SessionRecord): Promise<void>;
  findSession(hash: string): Promise<SessionRecord | null>;
  deleteSession(hash: string): Promise<void>;
  /** Delete sessions expired at `now`; resolves to how many. */
  deleteExpiredSessions(now: number): Promise<number>;

  // ── audit log (append-only, hash-chained; rules in @dsg/core audit.ts) ──
  /**
   * Append one entry: reads the head, computes the entry's hash with `hash` (sha256 hex) chained to it and inserts
   * it, in one commit, so concurrent appends can never fork the chain.
   */
  appendAudit(entry: AuditInput, hash: HashFn): Promise<AuditEntry>;
  /**
   * Entries, newest first by default. `afterSeq`/`beforeSeq` page through them; `action`, `actorName` and `since`
   * (epoch ms) filter. `ascending: true` walks from the oldest (the verifier).
   */
  listAudit(query: AuditQuery): Promise<readonly AuditEntry[]>;
  /** The last entry's seq and hash (seq 0 when the log is empty). */
  auditHead(): Promise<{ readonly seq: number; readonly hash: string }>;

  // Contribution ledger (one entry per finished attempt, written by recordReports/loseAttempts in the same transaction)
  /** The ledger's sums per node name, project or user, largest wall time first. */
  ledger(query: LedgerQuery): Promise<readonly LedgerSums[]>;
}

export interface AuditQuery {
  readonly limit: number;
  readonly ascending?: boolean;
  /** Only entries with seq greater than this (ascending walks) … */
  readonly afterSeq?: number;
  /** … or smaller than this (newest-first pages). */
  readonly beforeSeq?: number;
  readonly action?: string;
  readonly actorName?: string;
  readonly since?: number;
}
