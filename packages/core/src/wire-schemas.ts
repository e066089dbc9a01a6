/**
 * zod schemas of REST API v1 *responses*, one per wire interface of wire.ts (and ledger.ts). They exist for the
 * OpenAPI description (coordinator/src/http/openapi.ts turns them into JSON Schema) and for the API tests, which
 * validate every answer against them. The TypeScript interfaces stay the types the code is written against; the
 * `Same<…>` checks at the bottom make the build fail when an interface and its schema drift apart (a field added to
 * one and not the other, a state added to a union).
 *
 * Schemas with an `id` become named components (`#/components/schemas/JobV1`) in the OpenAPI document.
 */
import { z } from 'zod';
import { ErrorCode } from './errors.js';
import { LEDGER_GROUPS, type LedgerV1 } from './ledger.js';
import { NODE_POLICY_STATES } from './node-policy.js';
import { FailureKind, FailureReason } from './outcome.js';
import { AttemptState, JobState, TaskState } from './states.js';
import type {
  AttemptV1, AuditEntryV1, AuditPageV1, AuditVerifyV1, CreateJoinCodeResponseV1, CreateTokenResponseV1, ErrorBodyV1, GcReportV1,
  HealthV1, JobExplainV1, JobV1, JoinRequestAnswerV1, JoinRequestV1, LogChunkV1, NodeV1, OutputV1, RemoveNodeResponseV1,
  RetryResponseV1, SessionV1, StatusV1, TaskV1, TokenV1, WorkflowV1,
} from './wire.js';
import type { NodeAttemptV1, OverviewV1 } from './dashboard.js';

const values = <T extends Record<string, string>>(o: T) => Object.values(o) as [T[keyof T], ...T[keyof T][]];
/** Timestamps on the wire: ISO 8601 (UTC, as `Date.toISOString()` writes them). */
const iso = () => z.string().meta({ format: 'date-time' });
const int = () => z.number().int();

export const JobStateV1Schema = z.enum(values(JobState)).meta({ id: 'JobState' });
export const TaskStateV1Schema = z.enum(values(TaskState)).meta({ id: 'TaskState' });
export const AttemptStateV1Schema = z.enum(values(AttemptState)).meta({ id: 'AttemptState' });
const TaskCountsSchema = z.strictObject(Object.fromEntries(values(TaskState).map((s) => [s, int().min(0)])) as Record<TaskState, z.ZodNumber>)
  .meta({ id: 'TaskCounts', description: 'Tasks per state.' });
const TokenRoleSchema = z.enum(['admin', 'submitter', 'reader', 'node']).meta({ id: 'TokenRole' });
const WaitingSchema = z.strictObject({ never: z.boolean(), reason: z.string() }).nullable()
  .meta({ description: 'Why queued tasks are not running yet: `never` when no node could run them, else not now (nodes busy). Null when nothing waits.' });

export const ErrorBodyV1Schema = z.strictObject({
  error: z.strictObject({
    code: z.enum(values(ErrorCode)),
    message: z.string().meta({ description: 'What was wrong and what to do, for people.' }),
    details: z.record(z.string(), z.unknown()).optional().meta({ description: 'Structured facts, e.g. `issues` (path and message per invalid field) or `retryAfterSeconds`.' }),
  }),
}).meta({ id: 'Error', description: 'Every error of the API: a stable `code` and a message.' });

export const ResourcesV1Schema = z.strictObject({ cpu: z.number(), memoryBytes: z.number(), gpus: z.number(), diskBytes: z.number() }).meta({ id: 'Resources' });
export const FailureV1Schema = z.strictObject({ kind: z.enum(values(FailureKind)), reason: z.enum(values(FailureReason)), message: z.string() }).meta({ id: 'Failure' });
export const OwnerV1Schema = z.strictObject({ tokenId: z.string(), name: z.string(), role: TokenRoleSchema }).meta({ id: 'Owner' });

export const JobV1Schema = z.strictObject({
  id: z.string(), name: z.string(), state: JobStateV1Schema, createdAt: iso(), finishedAt: iso().nullable(), cancelRequested: z.boolean(),
  taskCount: int(), counts: TaskCountsSchema, resources: ResourcesV1Schema,
  gpu: z.strictObject({ count: z.number(), shared: z.boolean(), memoryBytes: z.number().nullable(), models: z.array(z.string()).nullable() }).optional(),
  spec: z.record(z.string(), z.unknown()).meta({ description: 'The spec as submitted.' }),
  warnings: z.array(z.string()), waiting: WaitingSchema, workflowId: z.string().nullable(), stage: z.string().nullable(), skipReason: z.string().nullable(),
  project: z.string(), submittedBy: OwnerV1Schema.nullable(),
}).meta({ id: 'Job' });

export const TokenV1Schema = z.strictObject({
  id: z.string(), name: z.string(), role: TokenRoleSchema, projects: z.array(z.string()).nullable(), createdAt: iso(), expiresAt: iso().nullable(),
  revokedAt: iso().nullable(), lastUsedAt: iso().nullable(), nodeId: z.string().nullable(), status: z.enum(['active', 'expired', 'revoked', 'used-up']),
  maxUses: int().nullable(), uses: int(),
}).meta({ id: 'Token', description: 'A token as the admin sees it (never its secret).' });
export const CreateTokenResponseV1Schema = z.strictObject({ token: TokenV1Schema, secret: z.string().meta({ description: 'Shown this once.' }) });
export const CreateJoinCodeResponseV1Schema = z.strictObject({ token: TokenV1Schema, code: z.string().meta({ description: 'The four words, shown this once.' }) });

export const JoinRequestV1ResponseSchema = z.strictObject({
  id: z.string(), name: z.string(), state: z.enum(['pending', 'approved', 'rejected']), address: z.string(),
  facts: z.strictObject({ os: z.string(), arch: z.string(), cpuModel: z.string(), cores: z.number(), memoryBytes: z.number(), gpus: z.array(z.string()) }),
  createdAt: iso(), lastSeenAt: iso(), decidedAt: iso().nullable(), decidedBy: z.string().nullable(), reason: z.string().nullable(), nodeId: z.string().nullable(),
}).meta({ id: 'JoinRequest' });
export const JoinRequestAnswerV1Schema = z.strictObject({ request: JoinRequestV1ResponseSchema, credential: z.string().optional() });

export const SessionV1Schema = z.strictObject({
  tokenId: z.string(), name: z.string(), role: TokenRoleSchema, projects: z.array(z.string()).nullable(), via: z.enum(['session', 'bearer']), expiresAt: iso().nullable(),
}).meta({ id: 'Session' });

const StageV1Schema = z.strictObject({
  name: z.string(), jobId: z.string(), needs: z.array(z.string()), each: z.string().nullable(), state: JobStateV1Schema, taskCount: int(), counts: TaskCountsSchema,
  heldTasks: int(), skipReason: z.string().nullable(), waiting: WaitingSchema,
}).meta({ id: 'Stage' });
export const WorkflowV1Schema = z.strictObject({
  id: z.string(), name: z.string(), state: JobStateV1Schema, createdAt: iso(), finishedAt: iso().nullable(), cancelRequested: z.boolean(),
  params: z.record(z.string(), z.string()), stages: z.array(StageV1Schema),
  edges: z.array(z.strictObject({ from: z.string(), to: z.string(), kind: z.enum(['stage', 'item']), artifacts: z.boolean() })),
  publish: z.record(z.string(), z.string()), spec: z.record(z.string(), z.unknown()), taskCount: int(), counts: TaskCountsSchema,
  warnings: z.array(z.string()), project: z.string(), submittedBy: OwnerV1Schema.nullable(),
}).meta({ id: 'Workflow' });

export const JobExplainV1Schema = z.strictObject({
  jobId: z.string(), state: JobStateV1Schema, task: z.strictObject({ index: int(), state: TaskStateV1Schema }).nullable(),
  verdict: z.enum(['placeable', 'not_now', 'never', 'throttled', 'no_nodes', 'finished', 'not_queued']), summary: z.string(),
  queue: z.strictObject({ tasksAhead: int(), jobsAhead: int() }).nullable(),
  filters: z.array(z.strictObject({ filter: z.string(), verdict: z.enum(['never', 'busy']), rejected: int() })),
  nodes: z.array(z.strictObject({ nodeId: z.string(), name: z.string(), filter: z.string().nullable(), verdict: z.enum(['never', 'busy', 'fits']), message: z.string().nullable() })),
  startBy: iso().nullable().optional(),
}).meta({ id: 'JobExplain' });

export const RetryResponseV1Schema = z.strictObject({ requeued: int(), unskipped: int() });

export const TaskV1Schema = z.strictObject({
  id: z.string(), jobId: z.string(), index: int(), arrayValue: z.string().nullable(), state: TaskStateV1Schema, attempts: int(),
  currentAttemptId: z.string().nullable(), nodeId: z.string().nullable(), exitCode: int().nullable(), failure: FailureV1Schema.nullable(),
  startedAt: iso().nullable(), finishedAt: iso().nullable(),
}).meta({ id: 'Task' });

const GpuDeviceV1Schema = z.strictObject({ index: int(), memoryBytes: z.number().nullable() });
export const AttemptV1Schema = z.strictObject({
  id: z.string(), taskId: z.string(), number: int(), nodeId: z.string(), state: AttemptStateV1Schema, exitCode: int().nullable(), signal: z.string().nullable(),
  failure: FailureV1Schema.nullable(), assignedAt: iso(), startedAt: iso().nullable(), finishedAt: iso().nullable(), gpuDevices: z.array(GpuDeviceV1Schema).optional(),
}).meta({ id: 'Attempt' });

export const NodeV1Schema = z.strictObject({
  id: z.string(), name: z.string(), state: z.enum(['online', 'offline', 'lost']), capacity: ResourcesV1Schema, allocated: ResourcesV1Schema,
  runningTasks: int(), assignedTasks: int(),
  facts: z.strictObject({
    hostname: z.string(), os: z.string(), arch: z.string(), cpuModel: z.string(), cores: z.number(), memoryBytes: z.number(), diskBytes: z.number(),
    gpus: z.array(z.strictObject({
      index: int(), model: z.string(), memoryBytes: z.number(), uuid: z.string().nullable(), vendor: z.enum(['nvidia', 'amd']).optional(),
      driverVersion: z.string().optional(), cudaVersion: z.string().optional(),
    })),
    isolation: z.enum(['none', 'cgroups', 'sandbox', 'sandbox+cgroups']).optional(), allowUnisolatedJobs: z.boolean().optional(),
  }),
  labels: z.record(z.string(), z.string()), agentVersion: z.string(), address: z.string().nullable(), joinedAt: iso(), lastSeenAt: iso(),
  scheduling: z.enum(['eligible', 'cordoned', 'draining', 'drained', 'quarantined']), schedulingReason: z.string().nullable(), quarantinedUntil: iso().nullable(),
  policy: z.strictObject({ state: z.enum(NODE_POLICY_STATES), reason: z.string(), since: iso() }).nullable(),
  gpuDevices: z.array(z.strictObject({ index: int(), model: z.string(), memoryBytes: z.number(), exclusive: z.boolean(), sharedBytes: z.number(), sharedTasks: int() })).optional(),
  hostUsage: z.strictObject({ load1: z.number(), memoryUsedBytes: z.number(), at: iso() }).nullable().optional(),
}).meta({ id: 'Node' });

const UseV1Schema = z.strictObject({ used: z.number(), total: z.number() });
export const OverviewV1Schema = z.strictObject({
  at: iso(),
  nodes: z.strictObject({ online: int(), offline: int(), lost: int(), draining: int(), cordoned: int() }),
  cores: UseV1Schema, memoryBytes: UseV1Schema, gpus: UseV1Schema,
  queue: z.array(z.strictObject({ project: z.string(), queued: int(), running: int() })),
  throughput: z.array(z.strictObject({ bucketStart: iso(), succeeded: int(), failed: int() })),
  recentFailures: z.array(z.strictObject({
    jobId: z.string(), name: z.string(), project: z.string(), finishedAt: iso().nullable(), failed: int(), task: int().nullable(), reason: z.string().nullable(),
  })),
}).meta({ id: 'Overview' });
export const NodeAttemptV1Schema = z.strictObject({
  attemptId: z.string(), jobId: z.string(), jobName: z.string(), taskIndex: int(), state: z.enum(['assigned', 'running']), startedAt: iso().nullable(), assignedAt: iso(),
}).meta({ id: 'NodeAttempt' });
export const NodeAttemptListV1Schema = z.strictObject({ items: z.array(NodeAttemptV1Schema) });

export const RemoveNodeResponseV1Schema = z.strictObject({ removed: z.boolean(), node: z.strictObject({ id: z.string(), name: z.string() }), requeuedTasks: int() });

export const GcReportV1Schema = z.strictObject({
  dryRun: z.boolean(), at: iso(),
  removed: z.array(z.strictObject({ kind: z.enum(['job', 'workflow']), id: z.string(), name: z.string(), finishedAt: iso(), why: z.enum(['age', 'size']) })),
  jobs: int(), workflows: int(), logs: z.strictObject({ jobs: int(), bytes: z.number() }), blobs: z.strictObject({ count: int(), bytes: z.number() }), bytesFreed: z.number(),
}).meta({ id: 'GcReport' });
export const StatusV1Schema = z.strictObject({
  disk: z.strictObject({ databaseBytes: z.number(), blobs: z.strictObject({ count: int(), bytes: z.number() }), logs: z.strictObject({ jobs: int(), bytes: z.number() }) }),
  jobs: z.record(z.string(), z.number()), workflows: z.record(z.string(), z.number()), nodes: z.record(z.string(), z.number()),
  retention: z.strictObject({ maxAgeDays: z.number().nullable(), maxBytes: z.number().nullable(), intervalMinutes: z.number() }),
  lastGc: GcReportV1Schema.nullable(),
}).meta({ id: 'Status' });

export const OutputV1Schema = z.strictObject({ taskIndex: int(), attemptId: z.string(), path: z.string(), size: z.number(), sha256: z.string() }).meta({ id: 'Output' });
export const HealthV1Schema = z.strictObject({ status: z.literal('ok'), version: z.string(), store: z.string(), uptimeSeconds: z.number(), nodesOnline: int() });
export const LogChunkV1Schema = z.strictObject({ data: z.string(), offset: int(), nextOffset: int(), complete: z.boolean(), attemptId: z.string().nullable() }).meta({ id: 'LogChunk' });

const AuditEntryV1Schema = z.strictObject({
  seq: int(), at: iso(), actor: z.strictObject({ kind: z.enum(['token', 'node', 'system']), id: z.string(), name: z.string(), role: z.string() }),
  action: z.string(), target: z.string(), detail: z.record(z.string(), z.unknown()), origin: z.string(), prevHash: z.string(), hash: z.string(),
}).meta({ id: 'AuditEntry' });
export const AuditPageV1Schema = z.strictObject({ items: z.array(AuditEntryV1Schema), nextBefore: int().nullable() });
export const AuditVerifyV1Schema = z.strictObject({
  ok: z.boolean(), entries: int(), head: z.strictObject({ seq: int(), hash: z.string() }), problems: z.array(z.strictObject({ seq: int(), reason: z.string() })),
  anchor: z.enum(['match', 'none', 'mismatch', 'behind']), expectedHeadFound: z.boolean().optional(),
});

const LedgerTotalsShape = {
  attempts: int(), succeededAttempts: int(), wastedAttempts: int(), wallSeconds: z.number(), succeededWallSeconds: z.number(), wastedWallSeconds: z.number(),
  cpuSeconds: z.number(), cpuMeasuredAttempts: int(), gpuSeconds: z.number(), memoryGbSeconds: z.number(),
};
export const LedgerV1Schema = z.strictObject({
  by: z.enum(LEDGER_GROUPS), since: iso().nullable(), until: iso().nullable(),
  rows: z.array(z.strictObject({ key: z.string(), ...LedgerTotalsShape })), total: z.strictObject(LedgerTotalsShape),
}).meta({ id: 'Ledger' });

/** A page of a list: `nextCursor` is passed as `cursor` for the next page, null on the last one. */
export const pageV1Schema = <T extends z.ZodType>(item: T) => z.strictObject({ items: z.array(item), nextCursor: z.string().nullable() });
/** A list that is not paged. */
export const itemsV1Schema = <T extends z.ZodType>(item: T) => z.strictObject({ items: z.array(item) });

// ── compile-time checks: each schema describes exactly its interface (both ways assignable) ──
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same = <A, B>(ok: Same<A, B>): Same<A, B> => ok;
/** Referenced so the checks are not removed as unused; each line fails to compile when its pair drifts apart. */
export const WIRE_SCHEMA_CHECKS = [
  same<z.output<typeof ErrorBodyV1Schema>, ErrorBodyV1 & { error: { code: ErrorCode } }>(true),
  same<z.output<typeof JobV1Schema>, JobV1>(true),
  same<z.output<typeof TokenV1Schema>, TokenV1>(true),
  same<z.output<typeof CreateTokenResponseV1Schema>, CreateTokenResponseV1>(true),
  same<z.output<typeof CreateJoinCodeResponseV1Schema>, CreateJoinCodeResponseV1>(true),
  same<z.output<typeof JoinRequestV1ResponseSchema>, JoinRequestV1>(true),
  same<z.output<typeof JoinRequestAnswerV1Schema>, JoinRequestAnswerV1>(true),
  same<z.output<typeof SessionV1Schema>, SessionV1>(true),
  same<z.output<typeof WorkflowV1Schema>, WorkflowV1>(true),
  same<z.output<typeof JobExplainV1Schema>, JobExplainV1>(true),
  same<z.output<typeof RetryResponseV1Schema>, RetryResponseV1>(true),
  same<z.output<typeof TaskV1Schema>, TaskV1>(true),
  same<z.output<typeof AttemptV1Schema>, AttemptV1>(true),
  same<z.output<typeof NodeV1Schema>, NodeV1>(true),
  same<z.output<typeof OverviewV1Schema>, OverviewV1>(true),
  same<z.output<typeof NodeAttemptV1Schema>, NodeAttemptV1>(true),
  same<z.output<typeof RemoveNodeResponseV1Schema>, RemoveNodeResponseV1>(true),
  same<z.output<typeof GcReportV1Schema>, GcReportV1>(true),
  same<z.output<typeof StatusV1Schema>, StatusV1>(true),
  same<z.output<typeof OutputV1Schema>, OutputV1>(true),
  same<z.output<typeof HealthV1Schema>, HealthV1>(true),
  same<z.output<typeof LogChunkV1Schema>, LogChunkV1>(true),
  same<z.output<typeof AuditEntryV1Schema>, AuditEntryV1>(true),
  same<z.output<typeof AuditPageV1Schema>, AuditPageV1>(true),
  same<z.output<typeof AuditVerifyV1Schema>, AuditVerifyV1>(true),
  same<z.output<typeof LedgerV1Schema>, LedgerV1>(true),
] as const;
