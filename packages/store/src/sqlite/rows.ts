/** Row types and row → domain mappers. Rows never leave this package. */
import {
  deriveJobState,
  upgradeCompiledSpec,
  type CompiledWorkflow,
  type WorkflowId,
  type AttemptId,
  type AttemptState,
  type CompiledJobSpec,
  type Failure,
  type JobId,
  type NodeId,
  type NodeState,
  type TaskId,
  type JobGate,
  type TaskCounts,
  type TaskState,
  type TokenId,
  type WireInputFile,
} from '@dsg/core';
import type { GpuGrant } from '@dsg/core';
import type { AttemptRecord, JobRecord, NodeRecord, OutputRecord, Owner, TaskRecord, TokenRecord, TokenRole } from '../store.js';

export interface JobRow {
  id: string; name: string; spec_json: string; compiled_json: string; inputs_json: string; warnings_json: string;
  task_count: number; cpu_millis: number; memory_bytes: number; gpus: number; disk_bytes: number;
  cancel_requested: number; created_at: number; finished_at: number | null;
  n_queued: number; n_assigned: number; n_running: number; n_succeeded: number; n_failed: number; n_cancelled: number;
  workflow_id: string | null; stage: string | null; released: number; skip_reason: string | null;
  owner_token_id?: string | null; owner_name?: string | null; owner_role?: string | null;
}
export interface WorkflowRow {
  id: string; name: string; spec_json: string; compiled_json: string; cancel_requested: number; created_at: number; finished_at: number | null;
  project: string; owner_token_id: string | null; owner_name: string | null; owner_role: string | null;
}
export interface TaskRow {
  id: string; job_id: string; idx: number; array_value: string | null; state: string; attempts: number;
  user_failures: number; system_failures: number; current_attempt_id: string | null; node_id: string | null;
  exit_code: number | null; failure_json: string | null; started_at: number | null; finished_at: number | null; queue_seq: number;
  inputs_json: string | null;
}
export interface AttemptRow {
  id: string; task_id: string; job_id: string; task_index: number; number: number; node_id: string; state: string;
  exit_code: number | null; signal: string | null; failure_json: string | null; assigned_at: number;
  started_at: number | null; finished_at: number | null; cpu_millis: number; memory_bytes: number; gpus: number; disk_bytes: number;
  gpu_devices: string | null;
}
export interface NodeRow {
  id: string; name: string; state: string; cpu_millis: number; memory_bytes: number; gpus: number; disk_bytes: number;
  facts_json: string; labels_json: string; agent_version: string; address: string | null; joined_at: number; last_seen_at: number;
  cordoned: number; draining: number; quarantined_until: number | null; quarantine_reason: string | null;
}
export interface OutputRow { attempt_id: string; job_id: string; task_index: number; path: string; size: number; sha256: string }
export interface TokenRow {
  id: string; hash: string; role: string; name: string; created_at: number; revoked_at: number | null; node_id?: string | null;
  projects_json: string | null; expires_at: number | null; last_used_at: number | null;
  max_uses?: number | null; uses?: number;
}
export interface SessionRow { hash: string; token_id: string; created_at: number; expires_at: number }

/** The owner columns of a job or workflow row, or null when not recorded. */
export const ownerOf = (r: { owner_token_id?: string | null; owner_name?: string | null; owner_role?: string | null }): Owner | null =>
  r.owner_token_id ? { tokenId: r.owner_token_id as TokenId, name: r.owner_name ?? '', role: (r.owner_role ?? 'admin') as TokenRole } : null;

const failureOf = (json: string | null): Failure | null => (json ? (JSON.parse(json) as Failure) : null);

/** Parsed compiled specs by job id: jobs are immutable, so parse each once. */
const compiledCache = new Map<string, CompiledJobSpec>();
/** A job's compiled spec if it is parsed already (then its `compiled_json` need not be read at all). */
export function cachedCompiled(jobId: string): CompiledJobSpec | undefined {
  return compiledCache.get(jobId);
}
export function compiledOf(row: Pick<JobRow, 'id' | 'compiled_json'>): CompiledJobSpec {
  let c = compiledCache.get(row.id);
  if (!c) {
    c = upgradeCompiledSpec(JSON.parse(row.compiled_json));
    if (compiledCache.size > 5000) compiledCache.clear();
    compiledCache.set(row.id, c);
  }
  return c;
}

/** Parsed compiled workflows by id (immutable once accepted). */
const workflowCache = new Map<string, CompiledWorkflow>();
export function workflowOf(row: Pick<WorkflowRow, 'id' | 'compiled_json'>): CompiledWorkflow {
  let c = workflowCache.get(row.id);
  if (!c) {
    const raw = JSON.parse(row.compiled_json) as CompiledWorkflow;
    c = { ...raw, stages: raw.stages.map((st) => ({ ...st, job: upgradeCompiledSpec(st.job) })) };
    if (workflowCache.size > 1000) workflowCache.clear();
    workflowCache.set(row.id, c);
  }
  return c;
}

export const countsOf = (r: JobRow): TaskCounts => ({
  queued: r.n_queued, assigned: r.n_assigned, running: r.n_running,
  succeeded: r.n_succeeded, failed: r.n_failed, cancelled: r.n_cancelled,
});
export const gateOf = (r: JobRow): JobGate => ({ released: r.released === 1, skipReason: r.skip_reason, taskCount: r.task_count });

export function toJob(r: JobRow): JobRecord {
  const counts = countsOf(r);
  return {
    id: r.id as JobId,
    name: r.name,
    spec: JSON.parse(r.spec_json) as Record<string, unknown>,
    compiled: compiledOf(r),
    inputs: JSON.parse(r.inputs_json) as WireInputFile[],
    state: deriveJobState(counts, r.cancel_requested === 1, gateOf(r)),
    counts,
    taskCount: r.task_count,
    cancelRequested: r.cancel_requested === 1,
    createdAt: r.created_at,
    finishedAt: r.finished_at,
    warnings: JSON.parse(r.warnings_json) as string[],
    workflowId: r.workflow_id as WorkflowId | null,
    stage: r.stage,
    released: r.released === 1,
    skipReason: r.skip_reason,
    owner: ownerOf(r),
  };
}

export const toTask = (r: TaskRow): TaskRecord => ({
  id: r.id as TaskId,
  jobId: r.job_id as JobId,
  index: r.idx,
  arrayValue: r.array_value,
  state: r.state as TaskState,
  attempts: r.attempts,
  userFailures: r.user_failures,
  systemFailures: r.system_failures,
  currentAttemptId: r.current_attempt_id as AttemptId | null,
  nodeId: r.node_id as NodeId | null,
  exitCode: r.exit_code,
  failure: failureOf(r.failure_json),
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

export const toAttempt = (r: AttemptRow): AttemptRecord => ({
  id: r.id as AttemptId,
  taskId: r.task_id as TaskId,
  jobId: r.job_id as JobId,
  taskIndex: r.task_index,
  number: r.number,
  nodeId: r.node_id as NodeId,
  state: r.state as AttemptState,
  exitCode: r.exit_code,
  signal: r.signal,
  failure: failureOf(r.failure_json),
  assignedAt: r.assigned_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  ...(r.gpu_devices ? { gpuDevices: parseGpuGrants(r.gpu_devices) } : {}),
});

/** A `gpu_devices` column (written only by applyPlan, from checked grants). */
export const parseGpuGrants = (json: string): GpuGrant[] => JSON.parse(json) as GpuGrant[];

export const toNode = (r: NodeRow): NodeRecord => nodeOf(r, JSON.parse(r.facts_json) as NodeRecord['facts'], JSON.parse(r.labels_json) as Record<string, string>);

/** A node's row without its JSON columns, with them parsed already (SqliteStore keeps them parsed per node). */
export type NodeScalarRow = Omit<NodeRow, 'facts_json' | 'labels_json'>;
export const NODE_SCALAR_COLUMNS = 'id, name, state, cpu_millis, memory_bytes, gpus, disk_bytes, agent_version, address, joined_at, last_seen_at, cordoned, draining, quarantined_until, quarantine_reason';

export const nodeOf = (r: NodeScalarRow, facts: NodeRecord['facts'], labels: Readonly<Record<string, string>>): NodeRecord => ({
  id: r.id as NodeId,
  name: r.name,
  state: r.state as NodeState,
  capacity: { cpuMillis: r.cpu_millis, memoryBytes: r.memory_bytes, gpus: r.gpus, diskBytes: r.disk_bytes },
  facts,
  labels,
  agentVersion: r.agent_version,
  address: r.address,
  joinedAt: r.joined_at,
  lastSeenAt: r.last_seen_at,
  cordoned: r.cordoned === 1,
  draining: r.draining === 1,
  quarantinedUntil: r.quarantined_until,
  quarantineReason: r.quarantine_reason,
});

export const toOutput = (r: OutputRow): OutputRecord => ({
  attemptId: r.attempt_id as AttemptId,
  jobId: r.job_id as JobId,
  taskIndex: r.task_index,
  path: r.path,
  size: r.size,
  sha256: r.sha256,
});

export const toToken = (r: TokenRow): TokenRecord => ({
  id: r.id as TokenId,
  hash: r.hash,
  role: r.role as TokenRole,
  name: r.name,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
  nodeId: (r.node_id ?? null) as NodeId | null,
  projects: r.projects_json ? (JSON.parse(r.projects_json) as string[]) : null,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
  maxUses: r.max_uses ?? null,
  uses: r.uses ?? 0,
});

/** SQL for the derived job state; must agree with core's deriveJobState (a conformance test checks it). */
const CREATED = '(n_queued + n_assigned + n_running + n_succeeded + n_failed + n_cancelled)';
export const JOB_STATE_SQL = `CASE
  WHEN released = 0 THEN
    CASE WHEN cancel_requested = 1 THEN 'cancelled' WHEN skip_reason IS NOT NULL THEN 'skipped' ELSE 'waiting' END
  WHEN n_queued + n_assigned + n_running > 0 THEN
    CASE WHEN n_assigned + n_running + n_succeeded + n_failed + n_cancelled > 0 THEN 'running' ELSE 'queued' END
  WHEN (task_count > ${CREATED} OR (task_count = 0 AND ${CREATED} = 0)) AND skip_reason IS NULL AND cancel_requested = 0 THEN
    CASE WHEN ${CREATED} > 0 THEN 'running' ELSE 'waiting' END
  WHEN cancel_requested = 1 THEN 'cancelled'
  WHEN n_failed > 0 THEN 'failed'
  WHEN task_count > ${CREATED} OR (skip_reason IS NOT NULL AND ${CREATED} = 0) THEN 'skipped'
  WHEN n_cancelled > 0 THEN 'cancelled'
  ELSE 'succeeded' END`;
