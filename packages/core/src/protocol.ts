/**
 * The agent protocol (version 1): JSON messages over one WebSocket per agent, at `/api/v1/agent/connect`.
 * A frame holds one message or an array of messages (agents batch reports; the coordinator batches assignments).
 *
 * Every report names the attempt it is about. The coordinator applies a report only if that attempt is still
 * the task's current, active attempt (fencing), so replays after a reconnect and reports from a node that was
 * declared lost are harmless. `finished` reports are kept by the agent until the coordinator `ack`s them, which
 * it does only after they are committed to the store: a crash on either side loses no result.
 */
import { z } from 'zod';
import { NODE_POLICY_STATES } from './node-policy.js';
import { AttemptUsageWire } from './ledger.js';

export const PROTOCOL_VERSION = 1;
export const AGENT_WS_PATH = '/api/v1/agent/connect';

const ResourcesWire = z.object({
  cpuMillis: z.number().int().min(0),
  memoryBytes: z.number().int().min(0),
  gpus: z.number().int().min(0),
  diskBytes: z.number().int().min(0),
});

const NodePolicyStatusWire = z.object({
  state: z.enum(NODE_POLICY_STATES),
  /** Why, in words ("keyboard used 20 s ago"), for `dsg nodes`. */
  reason: z.string().max(500),
  /** Since when (epoch ms, agent's clock). */
  since: z.number(),
});

const GpuWire = z.object({
  index: z.number().int().min(0),
  model: z.string().max(200),
  memoryBytes: z.number().int().min(0),
  uuid: z.string().max(200).nullable(),
  /** Who made it: decides which variable hands it to a task (CUDA_VISIBLE_DEVICES or ROCR_VISIBLE_DEVICES). Absent: nvidia. */
  vendor: z.enum(['nvidia', 'amd']).optional(),
  /** The driver's version (nvidia-smi driver_version). */
  driverVersion: z.string().max(100).optional(),
  /** The CUDA version the driver supports (nvidia-smi's header, "12.4"); the constraint fact `cuda`. */
  cudaVersion: z.string().max(40).optional(),
});

export const NodeFactsSchema = z.object({
  hostname: z.string(),
  os: z.string(),
  arch: z.string(),
  cpuModel: z.string(),
  cores: z.number().int().min(0),
  memoryBytes: z.number().int().min(0),
  diskBytes: z.number().int().min(0),
  // Unique indexes: devices are accounted by index, and a duplicate would let one device be counted twice.
  gpus: z.array(GpuWire).max(64).refine((gs) => new Set(gs.map((g) => g.index)).size === gs.length, { error: 'GPU indexes must be unique' }),
  /** What the agent can do to contain its tasks (`sandbox+cgroups`, `sandbox`, `cgroups`, `none`). Absent from older agents. */
  isolation: z.enum(['none', 'cgroups', 'sandbox', 'sandbox+cgroups']).optional(),
  /**
   * Its operator allows jobs of anyone, not only the operator's own, although the node has no isolation
   * (`dsg agent --allow-unisolated-jobs`). Absent: no.
   */
  allowUnisolatedJobs: z.boolean().optional(),
});
export type NodeFacts = z.infer<typeof NodeFactsSchema>;

const OutputFileWire = z.object({
  path: z.string().min(1),
  size: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type OutputFile = z.infer<typeof OutputFileWire>;

const AttemptEndWire = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('exited'), exitCode: z.number().int().nullable(), signal: z.string().nullable() }),
  z.object({ kind: z.literal('timeout'), timeoutMs: z.number().int().min(0) }),
  z.object({ kind: z.literal('cancelled') }),
  z.object({
    kind: z.literal('error'),
    reason: z.enum(['executor_error', 'inputs_unavailable', 'outputs_failed', 'outputs_missing', 'agent_stopped', 'memory_limit', 'preempted']),
    message: z.string(),
  }),
]);

// ─── agent → coordinator ────────────────────────────────────────────────────────────────────────────────────
export const HelloMessage = z.object({
  type: z.literal('hello'),
  protocol: z.literal(PROTOCOL_VERSION),
  /** The id this agent was given before; null on first contact. */
  nodeId: z.string().nullable(),
  name: z.string().min(1).max(200),
  agentVersion: z.string(),
  capacity: ResourcesWire,
  facts: NodeFactsSchema,
  // Bounded: labels are kept on the node's row and matched on every placement.
  labels: z.record(z.string().max(100), z.string().max(1000)).refine((l) => Object.keys(l).length <= 100, { error: 'at most 100 labels' }),
  /** Attempts this agent is running right now (after a reconnect, the coordinator reconciles against these). */
  running: z.array(z.string()),
  /** Its volunteer policy state (see node-policy.ts). Absent (older agents, no policy): `working`. */
  policy: NodePolicyStatusWire.optional(),
});

/** What a machine is doing (all of it, not only tasks): for the dashboard, never for scheduling. Bounded. */
export const HostUsageWire = z.object({
  /** 1-minute load average. */
  load1: z.number().min(0).max(1_000_000),
  memoryUsedBytes: z.number().int().min(0).max(2 ** 53),
});
export type HostUsageWire = z.infer<typeof HostUsageWire>;

export const HeartbeatMessage = z.object({
  type: z.literal('heartbeat'),
  running: z.array(z.string()),
  /** Absent from older agents. */
  usage: HostUsageWire.optional(),
});

export const StartedMessage = z.object({
  type: z.literal('started'),
  attemptId: z.string(),
  at: z.number(),
});

export const LogMessage = z.object({
  type: z.literal('log'),
  attemptId: z.string(),
  stream: z.enum(['stdout', 'stderr']),
  data: z.string(),
});

export const FinishedMessage = z.object({
  type: z.literal('finished'),
  attemptId: z.string(),
  end: AttemptEndWire,
  startedAt: z.number().nullable(),
  finishedAt: z.number(),
  outputs: z.array(OutputFileWire),
  /** What the agent measured of the attempt (cgroup CPU usage); absent from agents that measure nothing or predate it. */
  usage: AttemptUsageWire.optional(),
});

/**
 * The agent is stopping (SIGTERM, Ctrl-C): send it no more work. Its attempts follow as `finished` with an
 * `agent_stopped` error (requeued at once), then it closes the connection; whatever it held but did not report is
 * requeued when the connection closes, without waiting for the node timeout.
 */
export const StoppingMessage = z.object({
  type: z.literal('stopping'),
  reason: z.string(),
});

/**
 * The node's volunteer policy state changed (its owner came back, its time window closed, it went on battery, it
 * got too hot, or it is free again). Sent at once on every change; the coordinator sends no new work to a node
 * whose state is not `working`.
 */
export const PolicyMessage = z.object({
  type: z.literal('policy'),
  policy: NodePolicyStatusWire,
});

export const AgentMessage = z.discriminatedUnion('type', [
  HelloMessage,
  HeartbeatMessage,
  StartedMessage,
  LogMessage,
  FinishedMessage,
  StoppingMessage,
  PolicyMessage,
]);
export type AgentMessage = z.infer<typeof AgentMessage>;
export type HelloMessage = z.infer<typeof HelloMessage>;
export type FinishedMessage = z.infer<typeof FinishedMessage>;
export type StartedMessage = z.infer<typeof StartedMessage>;
export type LogMessage = z.infer<typeof LogMessage>;
export type StoppingMessage = z.infer<typeof StoppingMessage>;
export type PolicyMessage = z.infer<typeof PolicyMessage>;

// ─── coordinator → agent ────────────────────────────────────────────────────────────────────────────────────
export interface WireInputFile {
  path: string;
  sha256: string;
  size: number;
  mode: number;
}

export type WireRun = { kind: 'script'; script: string } | { kind: 'command'; argv: string[] };

/** Everything an agent needs to run one attempt, with no further lookups but the input blobs. */
export interface Assignment {
  attemptId: string;
  attemptNumber: number;
  jobId: string;
  jobName: string;
  taskId: string;
  taskIndex: number;
  taskCount: number;
  arrayValue: string | null;
  run: WireRun;
  env: Record<string, string>;
  inputs: WireInputFile[];
  /** Output globs. After an exit with code 0, each must match at least one file, or the attempt fails (`outputs_missing`). */
  outputs: string[];
  /** Output globs collected like `outputs` but allowed to match nothing. Absent from older coordinators. */
  optionalOutputs?: string[];
  timeoutMs: number;
  resources: z.infer<typeof ResourcesWire>;
  /** The job asked for network access (`network: true`); a sandboxed task has none otherwise. Absent: false. */
  network?: boolean;
  /** Conditions on each of its `resources.gpus` GPUs (the spec's `resources.gpu`); absent: any of the node's GPUs. */
  gpu?: { memoryBytes: number | null; models: string[] | null };
  /**
   * The GPU devices the coordinator chose (by index; `memoryBytes` null = whole, else the GPU memory shared). The
   * agent gives exactly these and refuses an assignment naming a device it has given out whole, or beyond a device's
   * memory. Absent while the task uses GPUs: an older coordinator, and the agent chooses whole devices itself.
   */
  gpuDevices?: Array<{ index: number; memoryBytes: number | null }>;
}

export type CoordinatorMessage =
  /**
   * `credential`: on a node's first contact (joined with the join token), its own secret credential, bound to its
   * node id. The agent keeps it (mode 0600) and uses it from then on for the WebSocket and its HTTP calls; a hello
   * claiming an existing node id is honoured only with that node's credential.
   */
  | { type: 'welcome'; nodeId: string; heartbeatIntervalMs: number; coordinatorVersion: string; credential?: string }
  | { type: 'assign'; attempts: Assignment[] }
  | { type: 'cancel'; attemptIds: string[]; reason: string }
  | { type: 'ack'; attemptIds: string[] }
  | { type: 'error'; code: string; message: string };

/** Parse one frame into messages; throws a ZodError naming what was wrong. */
export function parseAgentFrame(text: string): AgentMessage[] {
  const raw: unknown = JSON.parse(text);
  const list = Array.isArray(raw) ? raw : [raw];
  return list.map((m) => AgentMessage.parse(m));
}
