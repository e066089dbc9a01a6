/**
 * The dispatcher: decide, then apply. `requestTick()` coalesces triggers (a job submitted, an attempt ended, a
 * node joined) into one pass: read a snapshot (online, connected nodes with their allocation; every job with
 * queued tasks and the first few tasks of each — never a window of the queue's head, so a job that cannot run now
 * cannot hide the work behind it), call the pure scheduler, apply its plan in one store transaction that re-checks
 * capacity, and send each node its new attempts in one frame. Rejected (stale) entries trigger another pass, never
 * a retry of the same plan.
 *
 * State machine of a pass: idle ──requestTick──▶ queued (setImmediate) ──▶ ticking ──▶ idle, or queued again when
 * a trigger arrived while ticking (`tickAgain`), a plan was partly rejected, or the scheduler says more could fit.
 */
import { gpuDeviceUse, newAttemptId, PRIORITY_CLASSES, type Assignment, type JobId, type NodeId, type NodePolicyStatus } from '@dsg/core';
import {
  schedule,
  seededRng,
  tasksToRead,
  type PendingReason,
  type SchedulerConfig,
  type SchedulerJob,
  type SchedulerNode,
  type SchedulerTask,
  decayedUsage,
  DEFAULT_USAGE_HALF_LIFE_MS,
  type ProjectActive,
} from '@dsg/scheduler';
import type { Resources } from '@dsg/core';

/** How often fair share re-reads recent use per project (it changes on the scale of its half-life). */
const FAIR_SHARE_REFRESH_MS = 5_000;
import type { ApplyPlanResult, NewAttempt, NodeRecord, Store } from '@dsg/store';
import type { AgentLink } from '../agents/agent-events.js';
import { toAssignment } from '../agents/assignment.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { EngineMetrics } from '../metrics.js';
import type { AttemptRegistry } from './attempt-registry.js';
import { JobCache } from './job-cache.js';

export interface DispatcherDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly config: SchedulerConfig;
  readonly log: Logger;
  readonly attempts: AttemptRegistry;
  /** The transport toward agents, once started. */
  readonly link: () => AgentLink | null;
  readonly metrics?: EngineMetrics;
  /** A node's volunteer policy state (null: none; the scheduler's `policy` filter holds back a node not `working`). */
  readonly nodePolicy?: (nodeId: NodeId) => NodePolicyStatus | null;
  /** An assignment is about to be sent to a node (its input blobs become fetchable by that node). */
  readonly onAssigned?: (nodeId: NodeId, assignment: Assignment) => void;
}

export class Dispatcher {
  readonly jobs: JobCache;
  /** Jobs whose queued tasks are being cancelled right now: their tasks are never dispatched. */
  readonly cancelling = new Set<JobId>();
  /**
   * Why each job's queued tasks are waiting, from the latest scheduling pass (not persisted; recomputed every
   * pass): "never" (no node is big enough) or "not now" (nodes are busy). Shown by `dsg job` and the API.
   */
  readonly pendingReasons = new Map<JobId, PendingReason>();
  /**
   * What the latest dispatch pass that read the queue cost: its time up to the plan (reads and scheduling, before
   * the plan is applied), and the rows it read: one per job with queued tasks (with its first task), plus the
   * tasks read for jobs that could place more than one. For tests and diagnostics.
   */
  lastPass: { readonly ms: number; readonly jobsRead: number; readonly tasksRead: number; readonly assigned: number } | null = null;
  /** When each queued job with nothing on nodes was first seen waiting (reservation). */
  private waitingSince = new Map<JobId, number>();
  /** Per node: when its running tasks end at the latest, kept while its allocation is the same (at most 5 s). */
  private releaseCache = new Map<NodeId, { key: string; at: number; releases: SchedulerNode['releases'] }>();

  /** Recent use per project (decayed) and what each holds now, refreshed at most every FAIR_SHARE_REFRESH_MS. */
  private fairShareCache: { at: number; history: Map<string, Resources>; active: ReadonlyMap<string, ProjectActive> } | null = null;

  /**
   * Fair share's memory and per-project limits. Derived from the attempts the store keeps (no table of its own: a
   * restart reads the same attempts, so it keeps the history). The history changes slowly (half-life ~1 h), so it is
   * read at most every few seconds; the active counts are read with it, and the pass keeps them current as it places
   * (between refreshes, a limit may be overshot by what the previous passes placed — the next refresh corrects it).
   */
  private async fairShareInputs(now: number, manyProjects: boolean): Promise<{ projectHistory?: ReadonlyMap<string, Resources>; projectActive?: ReadonlyMap<string, ProjectActive> }> {
    const limits = this.deps.config.projectLimits !== undefined && Object.keys(this.deps.config.projectLimits).length > 0;
    if (!manyProjects && !limits) return {};
    const c = this.fairShareCache;
    if (c === null || now - c.at >= (limits ? 0 : FAIR_SHARE_REFRESH_MS) || now < c.at) {
      const halfLife = this.deps.config.usageHalfLifeMs ?? DEFAULT_USAGE_HALF_LIFE_MS;
      // Beyond 10 half-lives use weighs < 0.1 %: not read.
      const { records, active } = await this.deps.store.projectUsageSince(now - 10 * halfLife);
      this.fairShareCache = { at: now, history: decayedUsage(records, now, halfLife), active };
    }
    const f = this.fairShareCache!;
    return { ...(manyProjects ? { projectHistory: f.history } : {}), ...(limits ? { projectActive: f.active } : {}) };
  }

  private readonly rng = seededRng(Date.now() >>> 0);
  private tickQueued = false;
  private ticking = false;
  private tickAgain = false;
  /** A plan handed to the report committer is being committed (planWithFinishes … placed / abandoned). */
  private folding = false;
  private closed = false;

  constructor(private readonly deps: DispatcherDeps) {
    this.jobs = new JobCache(deps.store);
  }

  close(): void {
    this.closed = true;
  }

  requestTick(): void {
    if (this.closed) return;
    if (this.ticking || this.folding) {
      this.tickAgain = true;
      return;
    }
    if (this.tickQueued) return;
    this.tickQueued = true;
    setImmediate(() => {
      this.tickQueued = false;
      void this.tick();
    });
  }

  private async tick(): Promise<void> {
    if (this.folding) {
      // The report committer is committing a plan; a pass now would plan against the same room. After it.
      this.tickAgain = true;
      return;
    }
    this.ticking = true;
    try {
      await this.dispatchOnce();
    } catch (e) {
      this.deps.log.error({ err: e }, 'scheduling pass failed; retrying in 1s');
      setTimeout(() => this.requestTick(), 1000).unref();
    } finally {
      this.ticking = false;
      if (this.tickAgain) {
        this.tickAgain = false;
        this.requestTick();
      }
    }
  }

  /** The nodes a pass may use: online in the store and connected now, with what their attempts hold. */
  /**
   * The nodes with `releases`: each active attempt frees its job's resources by its start (or assignment) plus its
   * timeout at the latest — the coordinator enforces timeouts — so a reserved node's start can be estimated and
   * jobs whose timeout ends before it may backfill (scheduler/src/reservation.ts).
   */
  private async withReleases(nodes: readonly SchedulerNode[], now: number): Promise<SchedulerNode[]> {
    const out: SchedulerNode[] = [];
    for (const n of nodes) {
      if (n.allocated.cpuMillis === 0 && n.allocated.memoryBytes === 0 && n.allocated.gpus === 0) {
        out.push(n);
        continue;
      }
      const key = `${n.allocated.cpuMillis}/${n.allocated.memoryBytes}/${n.allocated.gpus}`;
      let c = this.releaseCache.get(n.id);
      if (!c || c.key !== key || now - c.at > 5000) {
        const attempts = await this.deps.store.activeAttemptsOnNode(n.id);
        const releases: Array<{ at: number; resources: Resources }> = [];
        for (const a of attempts) {
          const job = await this.jobs.get(a.jobId);
          if (!job) continue;
          releases.push({ at: (a.startedAt ?? a.assignedAt) + job.compiled.timeoutMs, resources: job.compiled.resources });
        }
        c = { key, at: now, releases };
        this.releaseCache.set(n.id, c);
      }
      out.push({ ...n, releases: c.releases ?? [] });
    }
    if (this.releaseCache.size > nodes.length * 2) for (const id of this.releaseCache.keys()) if (!nodes.some((n) => n.id === id)) this.releaseCache.delete(id);
    return out;
  }

  async snapshotNodes(link: AgentLink | null = this.deps.link(), opts: { releases?: boolean } = {}): Promise<SchedulerNode[]> {
    const nodes = (await this.snapshot(link)).nodes;
    return opts.releases ? this.withReleases(nodes, this.deps.clock.now()) : nodes;
  }

  /**
   * The pass's view of the nodes: online and connected, less those an operator cordoned or drains and quarantined
   * ones (applyPlan re-checks the same flags), which are returned apart to be named in waiting reasons.
   */
  private async snapshot(link: AgentLink | null): Promise<{ nodes: SchedulerNode[]; held: Array<{ name: string; why: string }> }> {
    if (!link) return { nodes: [], held: [] };
    const connected = link.connectedNodes();
    const now0 = this.deps.clock.now();
    const usage = (await this.deps.store.listNodeUsage(['online'])).filter((u) => connected.has(u.node.id));
    const held = usage.flatMap((u) => {
      const why = heldBack(u.node, now0);
      return why ? [{ name: u.node.name, why }] : [];
    });
    const nodes: SchedulerNode[] = usage
      .filter((u) => !heldBack(u.node, now0))
      .map((u) => {
        const policy = this.deps.nodePolicy?.(u.node.id) ?? null;
        // Per-device GPU state, derived from the active attempts' devices (so a restart restores it). A node that
        // reports no GPU list (an older agent) is counted by `capacity.gpus` alone.
        const gpuDevices = u.node.facts.gpus.length > 0 ? gpuDeviceUse(u.node.facts.gpus, u.gpuHeld) : undefined;
        return { id: u.node.id, name: u.node.name, capacity: u.node.capacity, allocated: u.allocated, labels: u.node.labels, facts: u.node.facts, ...(policy ? { policy } : {}), ...(gpuDevices ? { gpuDevices } : {}) };
      });
    return { nodes, held };
  }

  private async dispatchOnce(): Promise<void> {
    const link = this.deps.link();
    if (!link) return;
    const planned = await this.plan(link, null);
    if (planned.attempts.length === 0) return;
    const result = await this.deps.store.applyPlan(planned.attempts, planned.now, { overcommit: planned.overcommit });
    this.send(link, result);
    if (result.rejected.length > 0 || planned.more) this.tickAgain = true;
  }

  /**
   * A pass's plan, for the report committer to apply **in the same commit** as the finishes that make room for it
   * (Store.recordReportsAndPlace): one durable commit per report-and-dispatch cycle instead of two. `freed` is what
   * those finishes release, per node; the pass plans as if it were released already, and the store checks the plan
   * after applying the reports (a finish that turns out fenced frees nothing, and what no longer fits is rejected).
   * The plan sees what a pass after the commit would: each job's tasks on nodes less those ending (`ended`: its
   * parallelism cap frees), and for a job with no timed run yet the times of these (`ranMs`: its first finishes
   * are what make its tasks short enough to prefetch).
   * A plan with no attempts means the pass ran and nothing fits. Null — the committer then commits the reports alone
   * and a pass follows as usual — while a pass is under way (their plans would race), after close, or when project
   * limits are set (they count each project's active attempts, read from the store). Every plan returned must be
   * ended with `placed` (committed) or `abandoned` (the commit failed).
   */
  async planWithFinishes(finishing: Finishing): Promise<FoldedPlan | null> {
    const link = this.deps.link();
    if (this.closed || this.ticking || this.folding || !link) return null;
    const limits = this.deps.config.projectLimits;
    if (limits !== undefined && Object.keys(limits).length > 0) return null;
    this.folding = true;
    try {
      return await this.plan(link, finishing);
    } catch (e) {
      this.folding = false;
      throw e;
    }
  }

  /** A folded plan was committed: send its attempts; a pass follows when some were rejected or more could fit. */
  placed(plan: FoldedPlan, result: ApplyPlanResult): void {
    this.folding = false;
    const link = this.deps.link();
    if (link) this.send(link, result);
    if (result.rejected.length > 0 || plan.more || this.tickAgain) {
      this.tickAgain = false;
      this.requestTick();
    }
  }

  /** A folded plan's commit failed: nothing of it exists; a pass will plan again. */
  abandoned(): void {
    this.folding = false;
    this.tickAgain = false;
    this.requestTick();
  }

  /** Read the snapshot and the queue, run the scheduler: the attempts to create (none: nothing fits). */
  private async plan(link: AgentLink, finishing: Finishing | null): Promise<FoldedPlan> {
    const t0 = performance.now();
    const snap = await this.snapshot(link);
    const held = snap.held;
    // Room that finishes being committed with this plan release (planWithFinishes).
    const freed = finishing?.freed;
    const nodes = freed === undefined || freed.size === 0 ? snap.nodes : snap.nodes.map((n) => {
      const f = freed.get(n.id);
      return f ? { ...n, allocated: clampedSubtract(n.allocated, f) } : n;
    });
    let freeCpu = 0;
    const f = this.deps.config.maxOvercommit;
    for (const n of nodes) freeCpu += Math.max(0, n.capacity.cpuMillis * f - n.allocated.cpuMillis);
    const nothing: FoldedPlan = { attempts: [], now: this.deps.clock.now(), overcommit: f, more: false };
    if (nodes.length > 0 && freeCpu === 0) return nothing;
    // Read the queue per job, never a window of its head: every job with queued tasks, each with its first queued
    // task (one row per job, however many it has), then more tasks only of the jobs the free capacity could take
    // more than one of (`tasksToRead`: what fits, plus one to learn why the rest waits). A job that cannot run now
    // cannot hide the jobs behind it, and a pass reads O(jobs + placeable tasks) rows even with a million queued.
    // Tasks of a job being cancelled are about to be cancelled (chunk by chunk): never dispatch them.
    const listed = await this.deps.store.listQueuedJobs();
    const ended = finishing?.ended;
    // A job's attempts that end in this commit no longer count against its parallelism.
    const allQueued = ended === undefined || ended.size === 0 ? listed : listed.map((j) => (ended.has(j.jobId) ? { ...j, active: Math.max(0, j.active - ended.get(j.jobId)!) } : j));
    const queuedJobs = this.cancelling.size > 0 ? allQueued.filter((j) => !this.cancelling.has(j.jobId)) : allQueued;
    if (queuedJobs.length === 0) {
      this.pendingReasons.clear();
      this.lastPass = { ms: performance.now() - t0, jobsRead: 0, tasksRead: 0, assigned: 0 };
      return nothing;
    }
    // Constraints, preferences, priority and parallelism come from the compiled spec (cached: jobs are immutable).
    const specs = await Promise.all(queuedJobs.map((j) => this.jobs.get(j.jobId)));
    const summaries = queuedJobs.map((j, i) => ({
      resources: j.resources, typicalRunMs: j.typicalRunMs ?? firstRuns(finishing?.ranMs.get(j.jobId)), queued: j.queued, seq: j.first.seq,
      priority: PRIORITY_CLASSES[specs[i]?.compiled.priority ?? 'normal'],
    }));
    const limits = tasksToRead(summaries, nodes, this.deps.config);
    const reads = queuedJobs.flatMap((j, i) => (limits[i]! > 1 ? [{ jobId: j.jobId, limit: limits[i]! }] : []));
    const tasks = reads.length > 0 ? await this.deps.store.listQueuedTasks(reads) : [];
    const tasksOf = new Map<JobId, SchedulerTask[]>();
    for (const t of tasks) {
      let l = tasksOf.get(t.jobId);
      if (!l) tasksOf.set(t.jobId, (l = []));
      l.push({ taskId: t.taskId, seq: t.seq });
    }
    // Reservation (scheduler reservation.ts): how long each job has waited with none of its tasks on a node, as seen
    // by this coordinator (a restart starts the wait again: the bound only moves later by one reserveAfterMs).
    const seenAt = this.deps.clock.now();
    const waiting = new Map<JobId, number>();
    for (const j of queuedJobs) if (j.active === 0) waiting.set(j.jobId, this.waitingSince.get(j.jobId) ?? seenAt);
    this.waitingSince = waiting;
    const jobs: SchedulerJob[] = queuedJobs.map((j, i) => ({
      jobId: j.jobId,
      ...summaries[i]!,
      constraints: specs[i]?.compiled.constraints ?? [],
      prefer: specs[i]?.compiled.prefer ?? [],
      parallelism: specs[i]?.compiled.parallelism ?? null,
      project: specs[i]?.compiled.project ?? 'default',
      operatorOwned: specs[i]?.operatorOwned ?? false,
      ...(specs[i]?.compiled.isolation ? { isolation: specs[i]!.compiled.isolation! } : {}),
      ...(specs[i]?.compiled.gpu ? { gpu: specs[i]!.compiled.gpu! } : {}),
      active: j.active,
      ...(waiting.has(j.jobId) ? { waitingSince: waiting.get(j.jobId)! } : {}),
      timeoutMs: specs[i]?.compiled.timeoutMs ?? null,
      tasks: limits[i]! > 1 ? (tasksOf.get(j.jobId) ?? []) : [{ taskId: j.first.taskId, seq: j.first.seq }],
    }));
    const now = this.deps.clock.now();
    // Fair share needs what each project holds now; with one project there is nothing to share.
    const projectUsage = new Set(jobs.map((j) => j.project)).size > 1 ? await this.deps.store.allocationByProject() : undefined;
    const fair = await this.fairShareInputs(now, projectUsage !== undefined);
    // Backfill next to a reservation needs to know when each node's running tasks must end at the latest: read only
    // when some job has waited long enough to reserve.
    const reserveAfter = this.deps.config.reserveAfterMs;
    const due = reserveAfter !== undefined && [...waiting.values()].some((since) => now - since >= reserveAfter);
    const planNodes = due ? await this.withReleases(nodes, now) : nodes;
    const plan = schedule({ nodes: planNodes, jobs, ...(projectUsage ? { projectUsage } : {}), ...fair }, this.deps.config, { now, rng: this.rng });
    // One reason per waiting job: every job with queued tasks is examined in each pass.
    this.pendingReasons.clear();
    for (const p of plan.pending) this.pendingReasons.set(p.jobId, held.length > 0 ? withHeldNodes(p, held) : p);
    this.lastPass = { ms: performance.now() - t0, jobsRead: queuedJobs.length, tasksRead: tasks.length, assigned: plan.assignments.length };
    this.deps.metrics?.observePass(this.lastPass.ms / 1000, plan.assignments.length);
    if (plan.assignments.length === 0) return nothing;
    return {
      attempts: plan.assignments.map((a) => ({ attemptId: newAttemptId(now), taskId: a.taskId, nodeId: a.nodeId, prefetch: a.prefetch, ...(a.gpus ? { gpus: a.gpus } : {}) })),
      now,
      overcommit: this.deps.config.maxOvercommit,
      more: plan.more,
    };
  }

  /** Register the attempts a plan created and send each node its new attempts in one frame. */
  private send(link: AgentLink, result: ApplyPlanResult): void {
    const byNode = new Map<NodeId, Assignment[]>();
    for (const att of result.created) {
      this.deps.attempts.set(att.id, att.jobId, att.nodeId);
      // The plan was made from cached specs of these very jobs (jobs are immutable): still cached, or read back.
      const job = this.jobs.peek(att.jobId);
      if (!job) {
        void this.jobs.get(att.jobId).then((j) => { if (j) this.sendOne(link, att.nodeId, [toAssignment(att, j)]); });
        continue;
      }
      const assignment = toAssignment(att, job);
      let list = byNode.get(att.nodeId);
      if (!list) byNode.set(att.nodeId, (list = []));
      list.push(assignment);
    }
    for (const [nodeId, list] of byNode) this.sendOne(link, nodeId, list);
  }

  private sendOne(link: AgentLink, nodeId: NodeId, list: Assignment[]): void {
    for (const a of list) this.deps.onAssigned?.(nodeId, a);
    // If the node dropped meanwhile, these attempts are reconciled as lost when it comes back or times out.
    link.send(nodeId, [{ type: 'assign', attempts: list }]);
  }
}

/** Finishes about to be committed, as a plan made with them sees them (Dispatcher.planWithFinishes). */
export interface Finishing {
  /** Room they free, per node. */
  readonly freed: ReadonlyMap<NodeId, Resources>;
  /** How many of each job's attempts end. */
  readonly ended: ReadonlyMap<JobId, number>;
  /** How long they ran, per job (exits with a known start only, as the store times runs). */
  readonly ranMs: ReadonlyMap<JobId, readonly number[]>;
}

/** A pass's plan: the attempts to create (none: nothing fits now), and whether the scheduler could place more. */
export interface FoldedPlan {
  readonly attempts: readonly NewAttempt[];
  readonly now: number;
  readonly overcommit: number;
  readonly more: boolean;
}

/** The mean of a job's first timed runs (finishing with a folded plan), or null when there are none. */
function firstRuns(ms: readonly number[] | undefined): number | null {
  return ms && ms.length > 0 ? ms.reduce((a, b) => a + b, 0) / ms.length : null;
}

/** `a - b`, never below zero (room freed by finishes the store may yet fence off is only a plan's assumption). */
function clampedSubtract(a: Resources, b: Resources): Resources {
  return {
    cpuMillis: Math.max(0, a.cpuMillis - b.cpuMillis), memoryBytes: Math.max(0, a.memoryBytes - b.memoryBytes),
    gpus: Math.max(0, a.gpus - b.gpus), diskBytes: Math.max(0, a.diskBytes - b.diskBytes),
  };
}

/** Why a node takes no new work now (cordoned, draining, quarantined), or null when it takes work. */
export function heldBack(n: NodeRecord, now: number): string | null {
  if (n.quarantinedUntil !== null && n.quarantinedUntil > now) return 'quarantined';
  if (n.draining) return 'draining';
  if (n.cordoned) return 'cordoned';
  return null;
}

/**
 * A job's waiting reason when some nodes are held back: they are named, and "never" becomes "not now" (an
 * uncordon, the end of a drain or of a quarantine may bring a node that fits).
 */
function withHeldNodes(p: PendingReason, held: ReadonlyArray<{ name: string; why: string }>): PendingReason {
  const list = held.slice(0, 5).map((h) => `${h.name} (${h.why})`).join(', ') + (held.length > 5 ? ` and ${held.length - 5} more` : '');
  return { ...p, never: false, summary: `${p.summary}; ${held.length} node(s) take no new work: ${list} — \`dsg node uncordon NAME\` takes one back` };
}
