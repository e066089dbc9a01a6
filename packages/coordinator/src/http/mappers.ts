/** Domain records → wire types (v1). The only place where the HTTP shape of a thing is decided. */
import { createdTasks, gpuDeviceUse, gpuRequestOf, type GpuNeeds, emptyTaskCounts, type AttemptV1, type Failure, type FailureV1, type JobV1, type NodePolicyStatus, type NodeV1, type OutputV1, type Resources, type ResourcesV1, type StageV1, type TaskV1, type WorkflowEdgeV1, type WorkflowV1, type OwnerV1, type TokenV1 } from '@dsg/core';
import type { PendingReason } from '@dsg/scheduler';
import type { AttemptRecord, JobRecord, NodeUsage, OutputRecord, Owner, TaskRecord, TokenRecord, WorkflowRecord } from '@dsg/store';

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

export const toResourcesV1 = (r: Resources): ResourcesV1 => ({
  cpu: r.cpuMillis / 1000,
  memoryBytes: r.memoryBytes,
  gpus: r.gpus,
  diskBytes: r.diskBytes,
});

const toFailureV1 = (f: Failure | null): FailureV1 | null => (f ? { kind: f.kind, reason: f.reason, message: f.message } : null);

const toGpuRequestV1 = (r: Resources, g: GpuNeeds): NonNullable<JobV1['gpu']> => {
  const q = gpuRequestOf(r, g);
  return { count: q?.count ?? 0, shared: q?.shared ?? false, memoryBytes: g.memoryBytes, models: g.models ? [...g.models] : null };
};

export function toJobV1(j: JobRecord, pending?: PendingReason): JobV1 {
  return {
    id: j.id,
    name: j.name,
    state: j.state,
    createdAt: iso(j.createdAt),
    finishedAt: isoOrNull(j.finishedAt),
    cancelRequested: j.cancelRequested,
    taskCount: j.taskCount,
    counts: { ...j.counts },
    resources: toResourcesV1(j.compiled.resources),
    ...(j.compiled.gpu ? { gpu: toGpuRequestV1(j.compiled.resources, j.compiled.gpu) } : {}),
    spec: j.spec,
    warnings: pending?.never ? [...new Set([...j.warnings, `tasks cannot be placed: ${pending.summary}`])] : [...j.warnings],
    waiting: pending ? { never: pending.never, reason: pending.summary } : null,
    workflowId: j.workflowId,
    stage: j.stage,
    skipReason: j.skipReason,
    project: j.compiled.project,
    submittedBy: toOwnerV1(j.owner),
  };
}

export const toOwnerV1 = (o: Owner | null): OwnerV1 | null => (o ? { tokenId: o.tokenId, name: o.name, role: o.role } : null);

export function toTokenV1(t: TokenRecord, now: number): TokenV1 {
  const expired = t.expiresAt != null && t.expiresAt <= now;
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    projects: t.projects ? [...t.projects] : null,
    createdAt: iso(t.createdAt),
    expiresAt: t.expiresAt != null ? iso(t.expiresAt) : null,
    revokedAt: isoOrNull(t.revokedAt),
    lastUsedAt: t.lastUsedAt != null ? iso(t.lastUsedAt) : null,
    nodeId: t.nodeId ?? null,
    status: t.revokedAt !== null ? 'revoked' : expired ? 'expired' : t.maxUses != null && (t.uses ?? 0) >= t.maxUses ? 'used-up' : 'active',
    maxUses: t.maxUses ?? null,
    uses: t.uses ?? 0,
  };
}

export function toWorkflowV1(w: WorkflowRecord, pendingOf: (j: JobRecord) => PendingReason | undefined): WorkflowV1 {
  const stages: StageV1[] = w.stages.map((s) => {
    const pending = pendingOf(s.job);
    return {
      name: s.name,
      jobId: s.job.id,
      needs: [...s.needs],
      each: s.each,
      state: s.job.state,
      taskCount: s.job.taskCount,
      counts: { ...s.job.counts },
      heldTasks: Math.max(0, s.job.taskCount - createdTasks(s.job.counts)),
      skipReason: s.job.skipReason,
      waiting: pending ? { never: pending.never, reason: pending.summary } : null,
    };
  });
  const edges: WorkflowEdgeV1[] = [];
  for (const st of w.compiled.stages) {
    const from = new Set([...st.job.artifacts.map((a) => a.from), ...(st.job.fanOut.kind === 'files' ? [st.job.fanOut.from] : [])]);
    for (const d of st.needs) edges.push({ from: d, to: st.name, kind: st.each === d ? 'item' : 'stage', artifacts: from.has(d) });
  }
  const counts = emptyTaskCounts();
  for (const s of stages) for (const k of Object.keys(counts) as Array<keyof typeof counts>) counts[k] += s.counts[k];
  return {
    id: w.id,
    name: w.name,
    state: w.state,
    createdAt: iso(w.createdAt),
    finishedAt: isoOrNull(w.finishedAt),
    cancelRequested: w.cancelRequested,
    params: { ...w.compiled.params },
    stages,
    edges,
    publish: { ...w.compiled.publish },
    spec: w.spec,
    taskCount: stages.reduce((n, s) => n + s.taskCount, 0),
    counts,
    warnings: [
      ...w.stages.flatMap((s) => s.job.warnings),
      ...stages.filter((s) => s.waiting?.never).map((s) => `stage ${s.name}: tasks cannot be placed: ${s.waiting!.reason}`),
    ],
    project: w.project,
    submittedBy: toOwnerV1(w.owner),
  };
}

export const toTaskV1 = (t: TaskRecord): TaskV1 => ({
  id: t.id,
  jobId: t.jobId,
  index: t.index,
  arrayValue: t.arrayValue,
  state: t.state,
  attempts: t.attempts,
  currentAttemptId: t.currentAttemptId,
  nodeId: t.nodeId,
  exitCode: t.exitCode,
  failure: toFailureV1(t.failure),
  startedAt: isoOrNull(t.startedAt),
  finishedAt: isoOrNull(t.finishedAt),
});

export const toAttemptV1 = (a: AttemptRecord): AttemptV1 => ({
  id: a.id,
  taskId: a.taskId,
  number: a.number,
  nodeId: a.nodeId,
  state: a.state,
  exitCode: a.exitCode,
  signal: a.signal,
  failure: toFailureV1(a.failure),
  assignedAt: iso(a.assignedAt),
  startedAt: isoOrNull(a.startedAt),
  finishedAt: isoOrNull(a.finishedAt),
  ...(a.gpuDevices ? { gpuDevices: a.gpuDevices.map((g) => ({ index: g.index, memoryBytes: g.memoryBytes })) } : {}),
});

/** Whether a node takes new work now, and why not. Quarantine first: it is the one an operator must look into. */
export function schedulingOf(u: NodeUsage, now: number): { scheduling: NodeV1['scheduling']; reason: string | null } {
  const n = u.node;
  if (n.quarantinedUntil !== null && n.quarantinedUntil > now)
    return { scheduling: 'quarantined', reason: `${n.quarantineReason ?? 'repeated system failures'}; released at ${iso(n.quarantinedUntil)} or by \`dsg node uncordon ${n.name}\`` };
  if (n.draining) return { scheduling: u.activeAttempts > 0 ? 'draining' : 'drained', reason: 'drained by an operator (`dsg node uncordon` takes it back)' };
  if (n.cordoned) return { scheduling: 'cordoned', reason: 'cordoned by an operator (`dsg node uncordon` takes it back)' };
  return { scheduling: 'eligible', reason: null };
}

/**
 * `policy`: the node's volunteer policy state while connected (the engine keeps it in memory), or null.
 * `host`: what its last heartbeat said the machine is doing, or null.
 */
export const toNodeV1 = (u: NodeUsage, now: number = Date.now(), policy: NodePolicyStatus | null = null, host: { load1: number; memoryUsedBytes: number; at: number } | null = null): NodeV1 => ({
  id: u.node.id,
  name: u.node.name,
  state: u.node.state,
  capacity: toResourcesV1(u.node.capacity),
  allocated: toResourcesV1(u.running),
  runningTasks: u.runningAttempts,
  assignedTasks: u.activeAttempts - u.runningAttempts,
  facts: { ...u.node.facts, gpus: u.node.facts.gpus.map((g) => ({ ...g })) },
  labels: { ...u.node.labels },
  agentVersion: u.node.agentVersion,
  address: u.node.address,
  joinedAt: iso(u.node.joinedAt),
  lastSeenAt: iso(u.node.lastSeenAt),
  scheduling: schedulingOf(u, now).scheduling,
  schedulingReason: schedulingOf(u, now).reason,
  quarantinedUntil: u.node.quarantinedUntil !== null && u.node.quarantinedUntil > now ? iso(u.node.quarantinedUntil) : null,
  policy: policy && u.node.state === 'online' ? { state: policy.state, reason: policy.reason, since: iso(policy.since) } : null,
  gpuDevices: gpuDeviceUse(u.node.facts.gpus, u.gpuHeld).map((d) => ({ ...d })),
  hostUsage: host && u.node.state === 'online' ? { load1: host.load1, memoryUsedBytes: host.memoryUsedBytes, at: iso(host.at) } : null,
});

export const toOutputV1 = (o: OutputRecord): OutputV1 => ({
  taskIndex: o.taskIndex,
  attemptId: o.attemptId,
  path: o.path,
  size: o.size,
  sha256: o.sha256,
});
