/**
 * The engine: the coordinator's control loop. It owns no durable state — the Store does — and does three things:
 *
 *  1. **Dispatch** (decide, then apply). `requestTick()` coalesces triggers (a job submitted, an attempt ended, a
 *     node joined) into one pass: read a snapshot (online, connected nodes with their allocation; every job with
 *     queued tasks and the first few tasks of each — never a window of the queue's head, so a job that cannot run
 *     now cannot hide the work behind it), call the pure scheduler, apply its plan in one store transaction that
 *     re-checks capacity, and send each node its new attempts in one frame. Rejected (stale) entries trigger
 *     another pass, never a retry of the same plan.
 *  2. **Reports** (grouped commits). Starts, finishes, log chunks and heartbeats from all agents are queued and
 *     flushed together: logs are written first (so an ended attempt's log is complete), then starts and finishes
 *     are committed in one transaction each, then finishes are acknowledged to their agents. While one flush runs,
 *     new reports gather for the next, so under load each commit carries many state changes.
 *  3. **Liveness.** Node states: `online` while connected and heartbeating; `offline` after a disconnect, or after
 *     `silenceTimeout` without a message on an open connection (a frozen agent: its socket is closed), with until
 *     `nodeTimeout` after it was last heard from to come back; `lost` after that, when its active attempts are
 *     ended as lost and their tasks requeued (a system failure, retried regardless of the spec's `retries`). An
 *     agent that stops cleanly says so first (`stopping`): it gets no more work, and what it still holds when its
 *     socket closes is requeued at once; it stays `offline`. At start-up every node the store thinks is online
 *     becomes offline with `restartGrace`: a coordinator restart gives agents time to reconnect and report.
 *
 * Reconciliation: each heartbeat lists the attempts the agent runs. Attempts the store has active on that node
 * but the agent does not list (assigned more than `reconcileGraceMs` before the heartbeat, so an assignment still
 * in flight is not mistaken) are ended as lost; attempts the agent runs that are no longer current are cancelled.
 * Heartbeats are processed in the same flush, after the finishes that arrived before them on the same socket.
 */
import {
  fanOutEnv,
  isAttemptId,
  newAttemptId,
  type AttemptId,
  type Assignment,
  type CoordinatorMessage,
  type FinishedMessage,
  type HelloMessage,
  type JobId,
  type NodeId,
  type WireRun,
} from '@dsg/core';
import {
  schedule,
  seededRng,
  tasksToRead,
  type PendingReason,
  type SchedulerConfig,
  type SchedulerJob,
  type SchedulerNode,
  type SchedulerTask,
} from '@dsg/scheduler';
import type { AttemptRecord, CreatedAttempt, FinishReport, FinishResult, StartReport, Store, StorePolicy } from '@dsg/store';
import type { Clock } from '../clock.js';
import type { BlobStore } from '../files/blob-store.js';
import type { LogStore } from '../files/log-store.js';
import type { Logger } from '../logger.js';
import { JobCache } from './job-cache.js';
import { JobCanceller } from './job-canceller.js';

/** The Transport port toward agents (implemented by AgentHub over WebSocket; faked in tests). */
export interface AgentLink {
  send(nodeId: NodeId, messages: readonly CoordinatorMessage[]): boolean;
  connectedNodes(): ReadonlySet<NodeId>;
  disconnect(nodeId: NodeId, reason: string): void;
}

export interface EngineConfig {
  readonly heartbeatIntervalMs: number;
  /** How long a node may be out of reach (disconnected, or silent) before it is lost and its attempts requeued. */
  readonly nodeTimeoutMs: number;
  /**
   * A connected node that has sent nothing for this long is taken for frozen (SIGSTOP, a hung machine, a cut that
   * sent no TCP reset): its socket is closed and it is offline at once, lost at `nodeTimeoutMs` after it was last
   * heard from. Default `nodeTimeoutMs` (the coordinator uses 3 heartbeats).
   */
  readonly silenceTimeoutMs?: number;
  /** Grace given at start-up to nodes that were online before a coordinator restart. Default `nodeTimeoutMs`. */
  readonly restartGraceMs?: number;
  readonly reconcileGraceMs: number;
  /** How long reports may wait to share a commit. 0 = commit at the next turn of the event loop. */
  readonly reportBatchMs: number;
  readonly policy: StorePolicy;
  readonly scheduler: SchedulerConfig;
}

interface AttemptInfo {
  readonly jobId: JobId;
  readonly nodeId: NodeId;
}

export class Engine {
  readonly jobs: JobCache;
  /** Cancels jobs in chunks, without stalling the event loop (see job-canceller.ts). */
  readonly cancels: JobCanceller;
  /** Jobs whose queued tasks are being cancelled right now: their tasks are never dispatched. */
  readonly cancelling = new Set<JobId>();
  private link: AgentLink | null = null;
  private readonly rng = seededRng(Date.now() >>> 0);

  // Dispatch state.
  private tickQueued = false;
  private ticking = false;
  private tickAgain = false;
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

  // Report batch (swapped out whole at each flush).
  private starts: StartReport[] = [];
  private finishes: Array<{ report: FinishReport; nodeId: NodeId }> = [];
  private logs = new Map<string, { jobId: string; text: string }>();
  private heartbeats = new Map<NodeId, { running: Set<string>; at: number }>();
  /** Nodes whose agent stopped cleanly: what they still hold is requeued in the next flush, after their last reports. */
  private departed = new Map<NodeId, string>();
  private flushQueued = false;
  private flushing: Promise<void> | null = null;

  /** Active attempts this process knows about, for routing log chunks without a store read. */
  private readonly attempts = new Map<AttemptId, AttemptInfo>();
  /** Offline nodes and when they will be declared lost. */
  private readonly offlineDeadline = new Map<NodeId, number>();
  private readonly lastSeen = new Map<NodeId, number>();
  /** Connected nodes whose agent announced it is stopping (no work is sent to them; offline in the store). */
  private readonly stopping = new Set<NodeId>();
  private monitor: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly logStore: LogStore,
    private readonly clock: Clock,
    private readonly config: EngineConfig,
    private readonly log: Logger,
  ) {
    this.jobs = new JobCache(store);
    this.cancels = new JobCanceller(store, this, clock, log);
  }

  async start(link: AgentLink): Promise<void> {
    this.link = link;
    const now = this.clock.now();
    const grace = this.config.restartGraceMs ?? this.config.nodeTimeoutMs;
    for (const u of await this.store.listNodeUsage(['online'])) {
      await this.store.setNodeState(u.node.id, 'offline', now);
      this.offlineDeadline.set(u.node.id, now + grace);
    }
    for (const u of await this.store.listNodeUsage(['offline'])) {
      if (u.activeAttempts > 0 && !this.offlineDeadline.has(u.node.id))
        this.offlineDeadline.set(u.node.id, now + grace);
    }
    // Checked often enough that a silent node is noticed within a fraction of a heartbeat of its deadline.
    const every = Math.min(1000, Math.max(100, this.config.heartbeatIntervalMs / 2));
    this.monitor = setInterval(() => void this.checkLiveness().catch((e) => this.log.error({ err: e }, 'liveness check failed')), every);
    this.monitor.unref();
    this.requestTick();
    void this.cancels.resume().catch((e: unknown) => this.log.error({ err: e }, 'finishing interrupted cancels failed'));
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.monitor) clearInterval(this.monitor);
    await this.flushing;
    if (this.hasReports()) await this.flush();
  }

  // ─── dispatch ──────────────────────────────────────────────────────────────────────────────────────────
  requestTick(): void {
    if (this.closed) return;
    if (this.ticking) {
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
    this.ticking = true;
    try {
      await this.dispatchOnce();
    } catch (e) {
      this.log.error({ err: e }, 'scheduling pass failed; retrying in 1s');
      setTimeout(() => this.requestTick(), 1000).unref();
    } finally {
      this.ticking = false;
      if (this.tickAgain) {
        this.tickAgain = false;
        this.requestTick();
      }
    }
  }

  private async dispatchOnce(): Promise<void> {
    const link = this.link;
    if (!link) return;
    const t0 = performance.now();
    const connected = link.connectedNodes();
    const usage = await this.store.listNodeUsage(['online']);
    const nodes: SchedulerNode[] = usage
      .filter((u) => connected.has(u.node.id))
      .map((u) => ({ id: u.node.id, name: u.node.name, capacity: u.node.capacity, allocated: u.allocated, labels: u.node.labels }));
    let freeCpu = 0;
    const f = this.config.scheduler.maxOvercommit;
    for (const n of nodes) freeCpu += Math.max(0, n.capacity.cpuMillis * f - n.allocated.cpuMillis);
    if (nodes.length > 0 && freeCpu === 0) return;
    // Read the queue per job, never a window of its head: every job with queued tasks, each with its first queued
    // task (one row per job, however many it has), then more tasks only of the jobs the free capacity could take
    // more than one of (`tasksToRead`: what fits, plus one to learn why the rest waits). A job that cannot run now
    // cannot hide the jobs behind it, and a pass reads O(jobs + placeable tasks) rows even with a million queued.
    // Tasks of a job being cancelled are about to be cancelled (chunk by chunk): never dispatch them.
    const allQueued = await this.store.listQueuedJobs();
    const queuedJobs = this.cancelling.size > 0 ? allQueued.filter((j) => !this.cancelling.has(j.jobId)) : allQueued;
    if (queuedJobs.length === 0) {
      this.pendingReasons.clear();
      this.lastPass = { ms: performance.now() - t0, jobsRead: 0, tasksRead: 0, assigned: 0 };
      return;
    }
    const summaries = queuedJobs.map((j) => ({ resources: j.resources, typicalRunMs: j.typicalRunMs, queued: j.queued, seq: j.first.seq }));
    const limits = tasksToRead(summaries, nodes, this.config.scheduler);
    const reads = queuedJobs.flatMap((j, i) => (limits[i]! > 1 ? [{ jobId: j.jobId, limit: limits[i]! }] : []));
    const tasks = reads.length > 0 ? await this.store.listQueuedTasks(reads) : [];
    const tasksOf = new Map<JobId, SchedulerTask[]>();
    for (const t of tasks) {
      let l = tasksOf.get(t.jobId);
      if (!l) tasksOf.set(t.jobId, (l = []));
      l.push({ taskId: t.taskId, seq: t.seq });
    }
    const jobs: SchedulerJob[] = queuedJobs.map((j, i) => ({
      jobId: j.jobId,
      ...summaries[i]!,
      tasks: limits[i]! > 1 ? (tasksOf.get(j.jobId) ?? []) : [{ taskId: j.first.taskId, seq: j.first.seq }],
    }));
    const now = this.clock.now();
    const plan = schedule({ nodes, jobs }, this.config.scheduler, { now, rng: this.rng });
    // One reason per waiting job: every job with queued tasks is examined in each pass.
    this.pendingReasons.clear();
    for (const p of plan.pending) this.pendingReasons.set(p.jobId, p);
    this.lastPass = { ms: performance.now() - t0, jobsRead: queuedJobs.length, tasksRead: tasks.length, assigned: plan.assignments.length };
    if (plan.assignments.length === 0) return;

    const result = await this.store.applyPlan(
      plan.assignments.map((a) => ({ attemptId: newAttemptId(now), taskId: a.taskId, nodeId: a.nodeId, prefetch: a.prefetch })),
      now,
      { overcommit: this.config.scheduler.maxOvercommit },
    );
    const byNode = new Map<NodeId, Assignment[]>();
    for (const att of result.created) {
      this.attempts.set(att.id, { jobId: att.jobId, nodeId: att.nodeId });
      const assignment = await this.buildAssignment(att);
      if (!assignment) continue;
      let list = byNode.get(att.nodeId);
      if (!list) byNode.set(att.nodeId, (list = []));
      list.push(assignment);
    }
    for (const [nodeId, list] of byNode) {
      // If the node dropped meanwhile, these attempts are reconciled as lost when it comes back or times out.
      link.send(nodeId, [{ type: 'assign', attempts: list }]);
    }
    if (result.rejected.length > 0 || plan.more) this.tickAgain = true;
  }

  private async buildAssignment(att: CreatedAttempt): Promise<Assignment | null> {
    const job = await this.jobs.get(att.jobId);
    if (!job) return null;
    const c = job.compiled;
    const run: WireRun = c.run.kind === 'script' ? { kind: 'script', script: c.run.script } : { kind: 'command', argv: [...c.run.argv] };
    return {
      attemptId: att.id,
      attemptNumber: att.number,
      jobId: att.jobId,
      jobName: job.name,
      taskId: att.taskId,
      taskIndex: att.taskIndex,
      taskCount: att.taskCount,
      arrayValue: att.arrayValue,
      run,
      env: { ...c.env, ...fanOutEnv(c.fanOut, att.taskIndex) },
      inputs: att.taskInputs.length > 0 ? [...job.inputs, ...att.taskInputs] : job.inputs.map((i) => ({ ...i })),
      outputs: [...c.outputs],
      optionalOutputs: [...c.optionalOutputs],
      timeoutMs: c.timeoutMs,
      resources: { ...c.resources },
    };
  }

  // ─── agents ────────────────────────────────────────────────────────────────────────────────────────────
  /** Register (or re-register) a node from its hello; returns the node id to welcome it with. */
  async onHello(hello: HelloMessage, proposedId: NodeId, address: string | null): Promise<NodeId> {
    const now = this.clock.now();
    const existing = hello.nodeId ? await this.store.getNode(hello.nodeId as NodeId) : null;
    const nodeId = existing ? existing.id : proposedId;
    await this.store.upsertNode({
      id: nodeId,
      name: hello.name,
      capacity: hello.capacity,
      facts: hello.facts,
      labels: hello.labels,
      agentVersion: hello.agentVersion,
      address,
      now,
    });
    this.offlineDeadline.delete(nodeId);
    this.stopping.delete(nodeId);
    this.departed.delete(nodeId);
    this.lastSeen.set(nodeId, now);
    this.log.info({ nodeId, name: hello.name, cores: hello.capacity.cpuMillis / 1000, rejoined: Boolean(existing) }, 'node connected');
    return nodeId;
  }

  /** Called after the welcome is sent, so assignments follow it on the wire. */
  onNodeReady(): void {
    this.requestTick();
  }

  async onDisconnect(nodeId: NodeId): Promise<void> {
    if (this.closed) return;
    const now = this.clock.now();
    if (this.stopping.delete(nodeId)) {
      // It said it was stopping, so nothing it held will be reported any more: requeue that at once (in the next
      // flush, after the reports that came before the close), and leave the node offline rather than lost.
      this.departed.set(nodeId, 'the agent stopped without reporting this attempt');
      this.scheduleFlush();
      await this.store.setNodeState(nodeId, 'offline', now);
      this.log.info({ nodeId }, 'node stopped; what it still held is requeued');
      return;
    }
    this.offlineDeadline.set(nodeId, now + this.config.nodeTimeoutMs);
    await this.store.setNodeState(nodeId, 'offline', now);
    this.log.warn({ nodeId, graceSeconds: this.config.nodeTimeoutMs / 1000 }, 'node disconnected; waiting for it to come back');
  }

  /**
   * The agent is stopping (SIGTERM): send it no more work. It stays connected while it reports its attempts as
   * `agent_stopped` (requeued as they arrive); its node is offline in the store, so no pass or plan names it.
   */
  async onStopping(nodeId: NodeId, reason: string): Promise<void> {
    const now = this.clock.now();
    this.stopping.add(nodeId);
    this.lastSeen.set(nodeId, now);
    await this.store.setNodeState(nodeId, 'offline', now);
    this.log.info({ nodeId, reason }, 'node stopping; no more work is sent to it');
  }

  onStarted(nodeId: NodeId, attemptId: string, at: number): void {
    this.lastSeen.set(nodeId, this.clock.now());
    if (!isAttemptId(attemptId)) return;
    this.starts.push({ attemptId, at });
    this.scheduleFlush();
  }

  onLog(nodeId: NodeId, attemptId: string, data: string): void {
    if (!isAttemptId(attemptId)) return;
    const info = this.attempts.get(attemptId);
    if (info) this.appendLog(attemptId, info.jobId, data);
    else {
      // An attempt dispatched by an earlier coordinator process: look it up once.
      void this.store.getAttempt(attemptId).then((a) => {
        if (!a || a.nodeId !== nodeId) return;
        this.attempts.set(attemptId, { jobId: a.jobId, nodeId: a.nodeId });
        this.appendLog(attemptId, a.jobId, data);
      });
    }
  }

  private appendLog(attemptId: string, jobId: string, data: string): void {
    const cur = this.logs.get(attemptId);
    if (cur) cur.text += data;
    else this.logs.set(attemptId, { jobId, text: data });
    this.scheduleFlush();
  }

  onFinished(nodeId: NodeId, m: FinishedMessage): void {
    this.lastSeen.set(nodeId, this.clock.now());
    if (!isAttemptId(m.attemptId)) return;
    this.finishes.push({
      nodeId,
      report: { attemptId: m.attemptId, end: m.end, startedAt: m.startedAt, finishedAt: m.finishedAt, outputs: m.outputs },
    });
    this.scheduleFlush();
  }

  onHeartbeat(nodeId: NodeId, running: readonly string[]): void {
    const now = this.clock.now();
    this.lastSeen.set(nodeId, now);
    this.heartbeats.set(nodeId, { running: new Set(running), at: now });
    this.scheduleFlush();
  }

  // ─── grouped commits ───────────────────────────────────────────────────────────────────────────────────
  private hasReports(): boolean {
    return this.starts.length + this.finishes.length + this.logs.size + this.heartbeats.size + this.departed.size > 0;
  }

  private scheduleFlush(): void {
    if (this.flushQueued || this.flushing) return;
    this.flushQueued = true;
    const run = (): void => {
      this.flushQueued = false;
      this.flushing = this.flush()
        .then(() => true, (e: unknown) => {
          this.log.error({ err: e }, 'committing agent reports failed; retrying in 1s');
          return false;
        })
        .then((ok) => {
          this.flushing = null;
          if (!this.hasReports()) return;
          if (ok) this.scheduleFlush();
          else setTimeout(() => this.scheduleFlush(), 1000).unref();
        });
    };
    // Waiting a moment lets more reports join this commit; agents keep busy meanwhile (prefetch).
    if (this.config.reportBatchMs > 0) setTimeout(run, this.config.reportBatchMs);
    else setImmediate(run);
  }

  /** Commit everything gathered so far. Exposed for tests and shutdown. */
  async flush(): Promise<void> {
    const starts = this.starts;
    const finishes = this.finishes;
    const logs = this.logs;
    const heartbeats = this.heartbeats;
    const departed = this.departed;
    this.starts = [];
    this.finishes = [];
    this.logs = new Map();
    this.heartbeats = new Map();
    this.departed = new Map();

    if (logs.size > 0) await this.logStore.append(logs).catch((e: unknown) => this.log.error({ err: e }, 'writing task logs failed'));
    if (starts.length > 0 || finishes.length > 0) {
      let results: readonly FinishResult[];
      try {
        const reports = await Promise.all(finishes.map((f) => this.checkOutputs(f.report)));
        results = await this.store.recordReports(starts, reports, this.clock.now(), this.config.policy);
      } catch (e) {
        // Nothing was committed and nothing acked: keep the reports for the next attempt, ahead of newer ones.
        this.starts = [...starts, ...this.starts];
        this.finishes = [...finishes, ...this.finishes];
        for (const [n, hb] of heartbeats) if (!this.heartbeats.has(n)) this.heartbeats.set(n, hb);
        for (const [n, why] of departed) if (!this.departed.has(n)) this.departed.set(n, why);
        throw e;
      }
      this.afterFinishes(results);
      const acks = new Map<NodeId, AttemptId[]>();
      for (const f of finishes) {
        let l = acks.get(f.nodeId);
        if (!l) acks.set(f.nodeId, (l = []));
        l.push(f.report.attemptId);
      }
      for (const [nodeId, ids] of acks) this.link?.send(nodeId, [{ type: 'ack', attemptIds: ids }]);
    }
    for (const [nodeId, hb] of heartbeats) await this.reconcile(nodeId, hb.running, hb.at);
    for (const [nodeId, why] of departed) await this.requeueHeld(nodeId, why);
  }

  /** End a node's active attempts as lost (requeued, a system failure). */
  private async requeueHeld(nodeId: NodeId, why: string): Promise<number> {
    const active = await this.store.activeAttemptsOnNode(nodeId);
    if (active.length > 0) this.afterFinishes(await this.store.loseAttempts(active.map((a) => a.id), why, this.clock.now(), this.config.policy));
    return active.length;
  }

  /** An output the agent claims but whose blob is missing turns the attempt into a system failure. */
  private async checkOutputs(r: FinishReport): Promise<FinishReport> {
    if (r.outputs.length === 0) return r;
    const missing: string[] = [];
    for (const o of r.outputs) if (!(await this.blobs.has(o.sha256))) missing.push(o.path);
    if (missing.length === 0) return r;
    return {
      ...r,
      outputs: [],
      end: { kind: 'error', reason: 'outputs_failed', message: `outputs not received by the coordinator: ${missing.slice(0, 5).join(', ')}` },
    };
  }

  private afterFinishes(results: readonly FinishResult[]): void {
    let changed = false;
    for (const r of results) {
      this.attempts.delete(r.attemptId);
      if (r.applied) changed = true;
    }
    if (changed) this.requestTick();
  }

  private async reconcile(nodeId: NodeId, running: ReadonlySet<string>, at: number): Promise<void> {
    const active = await this.store.activeAttemptsOnNode(nodeId);
    const activeIds = new Set<string>(active.map((a) => a.id));
    const gone = active.filter((a) => !running.has(a.id) && a.assignedAt < at - this.config.reconcileGraceMs).map((a) => a.id);
    if (gone.length > 0) {
      this.log.warn({ nodeId, attempts: gone.length }, 'agent no longer runs attempts it was given; ending them as lost');
      const results = await this.store.loseAttempts(gone, 'the agent no longer had this attempt (it restarted or never received it)', this.clock.now(), this.config.policy);
      this.afterFinishes(results);
    }
    const stale = [...running].filter((id) => !activeIds.has(id));
    if (stale.length > 0) this.link?.send(nodeId, [{ type: 'cancel', attemptIds: stale, reason: 'this attempt is no longer current (it was reassigned or cancelled)' }]);
  }

  // ─── liveness ──────────────────────────────────────────────────────────────────────────────────────────
  /**
   * Disconnect silent nodes; declare nodes out of reach for `nodeTimeout` lost. Runs every second (half a heartbeat
   * when heartbeats are faster); public for tests.
   *
   * An open TCP connection proves nothing (a SIGSTOPped agent's kernel keeps it open): only messages count. A node
   * silent for `silenceTimeout` is disconnected and offline at once, and lost `nodeTimeout` after it was last heard
   * from, exactly like a node whose connection closed.
   */
  async checkLiveness(): Promise<void> {
    const now = this.clock.now();
    const link = this.link;
    const silence = this.config.silenceTimeoutMs ?? this.config.nodeTimeoutMs;
    if (link) {
      for (const nodeId of [...link.connectedNodes()]) {
        const seen = this.lastSeen.get(nodeId) ?? now;
        if (now - seen <= silence) continue;
        link.disconnect(nodeId, 'no heartbeat');
        const silentFor = Math.round((now - seen) / 1000);
        if (this.stopping.delete(nodeId)) {
          this.departed.set(nodeId, `the agent stopped and then went silent for ${silentFor}s`);
          this.scheduleFlush();
        } else if (now - seen >= this.config.nodeTimeoutMs) {
          await this.declareLost(nodeId, `node stopped heartbeating for ${silentFor}s`);
        } else {
          this.offlineDeadline.set(nodeId, seen + this.config.nodeTimeoutMs);
          await this.store.setNodeState(nodeId, 'offline', now);
          this.log.warn({ nodeId, silentSeconds: silentFor, lostInSeconds: Math.round((seen + this.config.nodeTimeoutMs - now) / 1000) }, 'node silent (frozen or cut off); disconnected it, waiting for it to come back');
        }
      }
    }
    for (const [nodeId, deadline] of this.offlineDeadline) {
      if (now >= deadline && !link?.connectedNodes().has(nodeId)) {
        await this.declareLost(nodeId, `node was out of reach (disconnected or silent) for more than ${Math.round(this.config.nodeTimeoutMs / 1000)}s`);
      }
    }
  }

  private async declareLost(nodeId: NodeId, why: string): Promise<void> {
    const now = this.clock.now();
    this.offlineDeadline.delete(nodeId);
    this.lastSeen.delete(nodeId);
    await this.store.setNodeState(nodeId, 'lost', now);
    const attempts = await this.requeueHeld(nodeId, why);
    this.log.warn({ nodeId, attempts, why }, 'node lost; its attempts were requeued');
  }

  // ─── cancel ────────────────────────────────────────────────────────────────────────────────────────────
  /** Ask agents to kill attempts of a cancelled job. */
  killAttempts(attempts: readonly AttemptRecord[], reason: string): void {
    const byNode = new Map<NodeId, string[]>();
    for (const a of attempts) {
      let l = byNode.get(a.nodeId);
      if (!l) byNode.set(a.nodeId, (l = []));
      l.push(a.id);
    }
    for (const [nodeId, ids] of byNode) this.link?.send(nodeId, [{ type: 'cancel', attemptIds: ids, reason }]);
  }
}
