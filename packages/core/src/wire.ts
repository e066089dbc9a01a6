/**
 * Wire types of REST API v1: the only shapes that cross HTTP. Domain types and store rows are mapped to these at
 * the edge (coordinator/src/http/mappers.ts); a route never returns a row. Timestamps are ISO-8601 strings here
 * and epoch milliseconds inside the system. Request bodies have zod schemas, responses plain interfaces.
 */
import { z } from 'zod';
import type { FailureKind, FailureReason } from './outcome.js';
import type { AttemptState, JobState, TaskCounts, TaskState } from './states.js';
import type { NodePolicyState } from './node-policy.js';

// API_PREFIX lives in api-prefix.ts (exported from the package root) so a browser bundle need not load zod.

export interface ResourcesV1 {
  /** Cores (fractions allowed). */
  cpu: number;
  memoryBytes: number;
  gpus: number;
  diskBytes: number;
}

export interface FailureV1 {
  kind: FailureKind;
  reason: FailureReason;
  message: string;
}

export interface JobV1 {
  id: string;
  name: string;
  state: JobState;
  createdAt: string;
  finishedAt: string | null;
  cancelRequested: boolean;
  taskCount: number;
  counts: TaskCounts;
  resources: ResourcesV1;
  /** Its GPU request when it has conditions or shares GPUs (the spec's `resources.gpu`). Absent: `resources.gpus` whole GPUs, any model. */
  gpu?: { count: number; shared: boolean; memoryBytes: number | null; models: string[] | null };
  /** The spec as submitted. */
  spec: Record<string, unknown>;
  /** Things the user should know, e.g. that no node in the grid is big enough for a task. */
  warnings: string[];
  /**
   * Why queued tasks are not running yet, from the latest scheduling pass: `never` when no node in the grid could
   * run them, otherwise "not now" (the nodes are busy). Null when nothing is waiting.
   */
  waiting: { never: boolean; reason: string } | null;
  /** The workflow this job is a stage of (null for a plain job), and the stage's name. */
  workflowId: string | null;
  stage: string | null;
  /** Why this stage, or some of its tasks, will not run (something it needs did not succeed). */
  skipReason: string | null;
  /** The project it belongs to. */
  project: string;
  /** Who submitted it; null for work from before owners were recorded (only the admin token could submit then). */
  submittedBy: OwnerV1 | null;
}

/** Who submitted a job or workflow: the token's id, its name and its role at the time. */
export interface OwnerV1 {
  tokenId: string;
  name: string;
  role: TokenRoleV1;
}

export type TokenRoleV1 = 'admin' | 'submitter' | 'reader' | 'node';

/** `GET /api/v1/tokens`: a token as the admin sees it (never its secret). */
export interface TokenV1 {
  id: string;
  name: string;
  role: TokenRoleV1;
  /** A submitter's projects; null for other roles. */
  projects: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  /** Last request made with it, to the minute; null if never used. */
  lastUsedAt: string | null;
  /** The node a node credential belongs to; null for other tokens. */
  nodeId: string | null;
  /** `active`, `expired`, `revoked` or (a join code whose uses are spent) `used-up`. */
  status: 'active' | 'expired' | 'revoked' | 'used-up';
  /** A join code's limit on the nodes it may admit; null: no limit (every other token). */
  maxUses: number | null;
  /** Nodes admitted with it so far (join codes and join tokens). */
  uses: number;
}

/** `POST /api/v1/tokens`: the new token and its secret, shown this once. */
export interface CreateTokenResponseV1 {
  token: TokenV1;
  secret: string;
}

const projectName = z
  .string({ error: 'expected a project name' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, { error: 'expected a project name: letters, digits, ".", "_" or "-", at most 63' });

export const CreateTokenRequestV1Schema = z
  .strictObject({
    role: z.enum(['admin', 'submitter', 'reader'], { error: 'expected role "admin", "submitter" or "reader" (node tokens are made by dsg up and by joining)' }),
    name: z.string({ error: 'expected a name' }).trim().min(1).max(100).optional(),
    projects: z.array(projectName).min(1).max(100).optional(),
    /** Seconds from now until it stops working; absent: never. */
    expiresInSeconds: z.number({ error: 'expected seconds as a number' }).int().min(60, { error: 'at least 60 seconds' }).max(10 * 365 * 86400).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.role === 'submitter' && !v.projects)
      ctx.addIssue({ code: 'custom', path: ['projects'], message: 'a submitter token needs at least one project (dsg token create --role submitter --project NAME)' });
    if (v.role !== 'submitter' && v.projects)
      ctx.addIssue({ code: 'custom', path: ['projects'], message: `projects apply to submitter tokens only; a ${v.role} token sees every project` });
  });
export type CreateTokenRequestV1 = z.infer<typeof CreateTokenRequestV1Schema>;

/**
 * `POST /api/v1/join-requests` (no token): a machine asks to join and waits for an admin. `key` is a secret the
 * agent made and keeps; every poll repeats it, and only its holder collects the credential once approved.
 */
export const JoinRequestV1Schema = z.strictObject({
  key: z.string({ error: 'expected the agent\'s request key' }).regex(/^[A-Za-z0-9_-]{43,86}$/, { error: 'expected a random key of 32 to 64 bytes, base64url' }),
  name: z.string({ error: 'expected a node name' }).trim().min(1).max(63).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected a node name of letters, digits, ".", "_" or "-"' }),
  /** What the machine says about itself (shown to the admin as a claim). */
  facts: z.strictObject({
    os: z.string().max(100), arch: z.string().max(50), cpuModel: z.string().max(200), cores: z.number().int().min(0).max(100_000),
    memoryBytes: z.number().int().min(0), gpus: z.array(z.string().max(200)).max(64),
  }),
});
export type JoinRequestV1Body = z.infer<typeof JoinRequestV1Schema>;

/** The answer to a join request, and an entry of `GET /api/v1/join-requests`. */
export interface JoinRequestV1 {
  /** Short id to compare between the agent's screen and `dsg node pending` (e.g. K7Q2-M9XD). */
  id: string;
  name: string;
  state: 'pending' | 'approved' | 'rejected';
  address: string;
  facts: JoinRequestV1Body['facts'];
  createdAt: string;
  lastSeenAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  reason: string | null;
  nodeId: string | null;
}

/** To the asking agent: its request, and once approved its node id and credential (to the key holder only). */
export interface JoinRequestAnswerV1 {
  request: JoinRequestV1;
  credential?: string;
}

export const DecideJoinRequestV1Schema = z.strictObject({
  reason: z.string({ error: 'expected a reason' }).trim().min(1).max(500).optional(),
});

/** `POST /api/v1/join-codes`: a short-lived join code (four words, see join-code.ts). */
export const CreateJoinCodeRequestV1Schema = z.strictObject({
  name: z.string({ error: 'expected a name' }).trim().min(1).max(100).optional(),
  /** Seconds from now until it stops working. Default 3600; at most 7 days (a code is short: keep its life short). */
  expiresInSeconds: z.number({ error: 'expected seconds as a number' }).int().min(60, { error: 'at least 60 seconds' }).max(7 * 86400, { error: 'at most 7 days: a join code is short, so it must not live long' }).optional(),
  /** How many nodes it may admit. Default 100; at most 10,000. */
  maxUses: z.number({ error: 'expected a number of uses' }).int({ error: 'expected a whole number of uses' }).min(1, { error: 'at least 1 use' }).max(10_000, { error: 'at most 10,000 uses' }).optional(),
});
export type CreateJoinCodeRequestV1 = z.infer<typeof CreateJoinCodeRequestV1Schema>;

export interface CreateJoinCodeResponseV1 {
  /** The token record behind the code (role node; revoke it with `dsg token revoke NAME`). */
  token: TokenV1;
  /** The four words, shown only in this answer. */
  code: string;
}

export const CreateSessionRequestV1Schema = z.strictObject({
  token: z.string({ error: 'expected the token to sign in with' }).min(1).max(200),
});

/** `GET /api/v1/session` (and the answer to signing in): who the request speaks for. */
export interface SessionV1 {
  tokenId: string;
  name: string;
  role: TokenRoleV1;
  projects: string[] | null;
  /** `session` (the dashboard's cookie) or `bearer`. */
  via: 'session' | 'bearer';
  /** When the session ends; null for a bearer token. */
  expiresAt: string | null;
}

export interface StageV1 {
  name: string;
  /** The job that runs the stage: its tasks, logs and outputs are the job's. */
  jobId: string;
  needs: string[];
  /** Per-item chaining: task k starts when this stage's task k succeeded. */
  each: string | null;
  state: JobState;
  taskCount: number;
  counts: TaskCounts;
  /** Tasks not created yet (waiting for what they need) or never to be created (skipped). */
  heldTasks: number;
  skipReason: string | null;
  waiting: { never: boolean; reason: string } | null;
}

export interface WorkflowEdgeV1 {
  from: string;
  to: string;
  /** `stage`: `to` starts when all of `from` succeeded; `item`: task k of `to` starts when task k of `from` succeeded. */
  kind: 'stage' | 'item';
  /** True when `to` takes outputs of `from` as inputs (artifacts move along this edge). */
  artifacts: boolean;
}

export interface WorkflowV1 {
  id: string;
  name: string;
  state: JobState;
  createdAt: string;
  finishedAt: string | null;
  cancelRequested: boolean;
  params: Record<string, string>;
  /** In a topological order (every stage after the stages it needs). */
  stages: StageV1[];
  edges: WorkflowEdgeV1[];
  /** Stage → directory for `dsg outputs --to DIR` (default: the stage's name). */
  publish: Record<string, string>;
  spec: Record<string, unknown>;
  /** Totals over all stages. */
  taskCount: number;
  counts: TaskCounts;
  /** Things the user should know, per stage (e.g. that no node in the grid is big enough for its tasks). */
  warnings: string[];
  project: string;
  /** Who submitted it; null when not recorded. */
  submittedBy: OwnerV1 | null;
}

/** `GET /api/v1/jobs/:id/explain`: why a job's tasks wait, node by node (the scheduler's filters, run now). */
export interface JobExplainV1 {
  jobId: string;
  state: JobState;
  /** The task asked about (`?task=N`), or null for the job as a whole. */
  task: { index: number; state: TaskState } | null;
  /** `placeable`, `not_now`, `never`, `throttled`, `no_nodes`; `finished` or `not_queued` when nothing waits. */
  verdict: 'placeable' | 'not_now' | 'never' | 'throttled' | 'no_nodes' | 'finished' | 'not_queued';
  summary: string;
  /** Queued tasks of other jobs ahead of this one's first queued task, and how many jobs they belong to. */
  queue: { tasksAhead: number; jobsAhead: number } | null;
  /** Per filter, how many nodes it rejected (each node counted at the first filter that rejects it). */
  filters: Array<{ filter: string; verdict: 'never' | 'busy'; rejected: number }>;
  nodes: Array<{ nodeId: string; name: string; filter: string | null; verdict: 'never' | 'busy' | 'fits'; message: string | null }>;
  /**
   * Waiting for room (`not_now`): when one of its tasks fits somewhere at the latest, as the timeouts of the tasks
   * running there end (ISO 8601); null when no estimate can be given. Work ahead in the queue may take that room.
   */
  startBy?: string | null;
}

export interface RetryResponseV1 {
  /** Tasks put back in the queue. */
  requeued: number;
  /** Stages no longer skipped. */
  unskipped: number;
}

export interface TaskV1 {
  id: string;
  jobId: string;
  index: number;
  arrayValue: string | null;
  state: TaskState;
  attempts: number;
  currentAttemptId: string | null;
  nodeId: string | null;
  exitCode: number | null;
  failure: FailureV1 | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface AttemptV1 {
  id: string;
  taskId: string;
  number: number;
  nodeId: string;
  state: AttemptState;
  exitCode: number | null;
  signal: string | null;
  failure: FailureV1 | null;
  assignedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The GPU devices it holds or held, by index on its node (`memoryBytes` null = whole, else the GPU memory shared). Absent: none. */
  gpuDevices?: GpuDeviceV1[];
}

export interface GpuDeviceV1 {
  index: number;
  memoryBytes: number | null;
}

/** One of a node's GPUs and what its active tasks hold of it now. */
export interface GpuDeviceUseV1 {
  index: number;
  model: string;
  memoryBytes: number;
  /** Held whole by one task. */
  exclusive: boolean;
  /** GPU memory given to sharing tasks, and how many they are. */
  sharedBytes: number;
  sharedTasks: number;
}

export const NodeState = { online: 'online', offline: 'offline', lost: 'lost' } as const;
export type NodeState = (typeof NodeState)[keyof typeof NodeState];

export interface GpuFactsV1 {
  index: number;
  model: string;
  memoryBytes: number;
  uuid: string | null;
  vendor?: 'nvidia' | 'amd';
  driverVersion?: string;
  cudaVersion?: string;
}

export interface NodeFactsV1 {
  hostname: string;
  os: string;
  arch: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  diskBytes: number;
  gpus: GpuFactsV1[];
  /** What the node does to contain tasks: `sandbox+cgroups`, `sandbox`, `cgroups` or `none`. Absent: unknown (older agent). */
  isolation?: 'none' | 'cgroups' | 'sandbox' | 'sandbox+cgroups';
  /** Runs everyone's jobs although it has no isolation (its operator opted in); absent: only the operator's. */
  allowUnisolatedJobs?: boolean;
}

export interface NodeV1 {
  id: string;
  name: string;
  state: NodeState;
  capacity: ResourcesV1;
  /** What the node's running tasks hold. */
  allocated: ResourcesV1;
  runningTasks: number;
  /** Tasks sent to the node that wait in its local queue (prefetched) or are starting. */
  assignedTasks: number;
  facts: NodeFactsV1;
  labels: Record<string, string>;
  agentVersion: string;
  address: string | null;
  joinedAt: string;
  lastSeenAt: string;
  /**
   * Whether it takes new work: `eligible`; `cordoned` (an operator's cordon); `draining` (no new work, its work
   * finishes) then `drained` (nothing left on it); `quarantined` (too many system failures; see `schedulingReason`).
   */
  scheduling: NodeScheduling;
  /** Why it takes no new work (quarantine reason and until when), or null. */
  schedulingReason: string | null;
  /** When its quarantine ends (cool-down), or null when not quarantined. */
  quarantinedUntil: string | null;
  /**
   * Its volunteer policy state while connected: `working`, or why its owner's policy holds it back now
   * (`suspended:owner-active`, `outside-window`, `on-battery`, `too-hot`) — it then gets no new work. Null: no
   * policy (or not connected).
   */
  policy: { state: NodePolicyState; reason: string; since: string } | null;
  /** Each of its GPUs with what its active tasks hold (assigned or running). Absent from older coordinators. */
  gpuDevices?: GpuDeviceUseV1[];
  /**
   * What the machine reports it is doing, everything on it counted (its last heartbeat): 1-minute load average and
   * memory in use. Null when offline or from an older agent; absent from older coordinators.
   */
  hostUsage?: { load1: number; memoryUsedBytes: number; at: string } | null;
}

export const NodeScheduling = { eligible: 'eligible', cordoned: 'cordoned', draining: 'draining', drained: 'drained', quarantined: 'quarantined' } as const;
export type NodeScheduling = (typeof NodeScheduling)[keyof typeof NodeScheduling];

/** Answer of `POST /nodes/:id/remove`. */
export interface RemoveNodeResponseV1 {
  removed: boolean;
  node: { id: string; name: string };
  /** Tasks put back in the queue (with `force`). */
  requeuedTasks: number;
}

/** `GET /status`: what the grid holds and the disk it uses. */
export interface StatusV1 {
  disk: {
    /** The database file with its write-ahead log. */
    databaseBytes: number;
    blobs: { count: number; bytes: number };
    logs: { jobs: number; bytes: number };
  };
  jobs: Record<string, number>;
  workflows: Record<string, number>;
  nodes: Record<string, number>;
  retention: RetentionV1;
  /** The latest garbage collection (periodic or `dsg gc`), or null since start. */
  lastGc: GcReportV1 | null;
}

export interface RetentionV1 {
  /** Finished jobs and workflows older than this are removed with their logs and outputs; null = kept forever. */
  maxAgeDays: number | null;
  /** Oldest finished work is removed while blobs and logs take more than this; null = no size limit. */
  maxBytes: number | null;
  /** Minutes between periodic collections. */
  intervalMinutes: number;
}

/** `POST /gc`: what a collection removed (or, with dryRun, would remove). */
export interface GcReportV1 {
  dryRun: boolean;
  at: string;
  /** Finished work removed, oldest first (at most 200 listed; `jobs` and `workflows` count them all). */
  removed: Array<{ kind: 'job' | 'workflow'; id: string; name: string; finishedAt: string; why: 'age' | 'size' }>;
  jobs: number;
  workflows: number;
  logs: { jobs: number; bytes: number };
  blobs: { count: number; bytes: number };
  /** Blobs and logs freed together. */
  bytesFreed: number;
}

/** `POST /gc`: `dryRun` reports what would go without removing it. */
export const GcRequestV1Schema = z.strictObject({ dryRun: z.boolean({ error: 'expected true or false' }).optional() }).optional();

/** `POST /nodes/:id/remove`: `force` removes a node that still holds work (its tasks are requeued). */
export const RemoveNodeRequestV1Schema = z.strictObject({ force: z.boolean({ error: 'expected true or false' }).optional() }).optional();

export interface OutputV1 {
  taskIndex: number;
  attemptId: string;
  path: string;
  size: number;
  sha256: string;
}

export interface PageV1<T> {
  items: T[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

export interface HealthV1 {
  status: 'ok';
  version: string;
  store: string;
  uptimeSeconds: number;
  nodesOnline: number;
}

export interface ErrorBodyV1 {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export interface LogChunkV1 {
  /** Log text from `offset`. */
  data: string;
  offset: number;
  nextOffset: number;
  /** True once the attempt has ended and everything it wrote has been returned. */
  complete: boolean;
  attemptId: string | null;
}

const SHA256 = /^[0-9a-f]{64}$/;

export const InputFileV1Schema = z.strictObject({
  path: z.string().min(1),
  sha256: z.string().regex(SHA256, { error: 'expected a lowercase hex sha256' }),
  size: z.number().int().min(0),
  /** Unix permission bits, so an uploaded script stays executable. */
  mode: z.number().int().min(0).max(0o7777).optional(),
});
export type InputFileV1 = z.infer<typeof InputFileV1Schema>;

const ParamValuesSchema = z
  .record(z.string().max(200), z.string().max(64 * 1024), { error: 'expected parameter values as a map of strings' })
  .refine((m) => Object.keys(m).length <= 1000, { error: 'at most 1,000 parameters' })
  .optional();

export const SubmitJobRequestV1Schema = z.strictObject({
  /** Checked in full when the job is compiled (JobSpecSchema); the OpenAPI description shows that schema as `JobSpecV1`. */
  spec: z.record(z.string(), z.unknown(), { error: 'expected the job spec as an object' }).meta({ id: 'JobSpecV1' }),
  inputs: z.array(InputFileV1Schema).max(100_000).optional(),
  /** Parameter values (`dsg submit --set NAME=VALUE`); each must be declared under the spec's params. */
  params: ParamValuesSchema,
});

export const SubmitWorkflowRequestV1Schema = z.strictObject({
  /** Checked in full when the workflow is compiled (WorkflowSpecSchema); shown as `WorkflowSpecV1` in the OpenAPI description. */
  spec: z.record(z.string(), z.unknown(), { error: 'expected the workflow spec as an object' }).meta({ id: 'WorkflowSpecV1' }),
  /** Every local input file of every stage, each once (placement path, content hash). */
  inputs: z.array(InputFileV1Schema).max(100_000).optional(),
  params: ParamValuesSchema,
});
export type SubmitWorkflowRequestV1 = z.infer<typeof SubmitWorkflowRequestV1Schema>;

export interface SubmitWorkflowResponseV1 {
  workflow: WorkflowV1;
}

export const ListWorkflowsQueryV1Schema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().max(200).optional(),
});
export type SubmitJobRequestV1 = z.infer<typeof SubmitJobRequestV1Schema>;

export interface SubmitJobResponseV1 {
  job: JobV1;
}

export const ListJobsQueryV1Schema = z.strictObject({
  state: z.enum(['waiting', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled']).optional(),
  name: z.string().max(100).optional(),
  /** Only this project's jobs (within what the token may see). */
  project: z.string().min(1).max(200).optional(),
  /** `newest` first (default) or `oldest` first. */
  order: z.enum(['newest', 'oldest'], { error: 'expected newest or oldest' }).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().max(200).optional(),
});
export type ListJobsQueryV1 = z.infer<typeof ListJobsQueryV1Schema>;

export const ListTasksQueryV1Schema = z.strictObject({
  state: z.enum(['queued', 'assigned', 'running', 'succeeded', 'failed', 'cancelled']).optional(),
  limit: z.coerce.number().int().min(1).max(5000).optional(),
  cursor: z.string().max(200).optional(),
});
export type ListTasksQueryV1 = z.infer<typeof ListTasksQueryV1Schema>;

export const ExplainQueryV1Schema = z.strictObject({
  task: z.coerce.number().int().min(0).optional(),
});

export const LogQueryV1Schema = z.strictObject({
  offset: z.coerce.number().int().min(0).optional(),
  attempt: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(16 * 1024 * 1024).optional(),
});
export type LogQueryV1 = z.infer<typeof LogQueryV1Schema>;

// ── audit log ──
export interface AuditEntryV1 {
  seq: number;
  /** ISO 8601. */
  at: string;
  actor: { kind: 'token' | 'node' | 'system'; id: string; name: string; role: string };
  action: string;
  target: string;
  detail: Record<string, unknown>;
  /** The client's IP address; '' for the coordinator's own actions. */
  origin: string;
  prevHash: string;
  hash: string;
}

export interface AuditPageV1 {
  /** Newest first. */
  items: AuditEntryV1[];
  /** Pass as `before` for the next (older) page; null at the start of the log. */
  nextBefore: number | null;
}

export const ListAuditQueryV1Schema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  /** Entries older than this seq (paging). */
  before: z.coerce.number().int().min(1).optional(),
  action: z.string().min(1).max(64).optional(),
  /** The actor's name (a token's or node's name, or `coordinator`). */
  actor: z.string().min(1).max(200).optional(),
  /** Entries at or after this time: ISO 8601 or epoch milliseconds. */
  since: z.union([z.iso.datetime({ offset: true }), z.coerce.number().int().min(0)]).optional(),
});
export type ListAuditQueryV1 = z.infer<typeof ListAuditQueryV1Schema>;

export const VerifyAuditQueryV1Schema = z.strictObject({
  /** A head kept elsewhere, as printed by `dsg audit verify`: `SEQ:HASH`. */
  head: z.string().regex(/^\d+:[0-9a-f]{64}$/, 'expected SEQ:HASH as printed by `dsg audit verify`').optional(),
});

export interface AuditVerifyV1 {
  ok: boolean;
  entries: number;
  head: { seq: number; hash: string };
  problems: Array<{ seq: number; reason: string }>;
  /** How the head compared with the anchor file kept beside the database. */
  anchor: 'match' | 'none' | 'mismatch' | 'behind';
  /** Whether a head given with `head=` is still in the log. */
  expectedHeadFound?: boolean;
}
