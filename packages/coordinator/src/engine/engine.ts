/**
 * The engine: the coordinator's control loop, composed of one part per concern. It owns no durable state — the
 * Store does — and implements `AgentEvents`, what the agent hub reports:
 *
 *  - **Dispatcher** (dispatcher.ts): decide, then apply — a pass reads a snapshot, calls the pure scheduler, applies
 *    the plan in one transaction that re-checks capacity, and sends the new attempts.
 *  - **ReportCommitter** (report-committer.ts): starts, finishes, logs and heartbeats grouped into one commit per
 *    flush, acknowledged only once durable; reconciliation against heartbeats.
 *  - **LivenessMonitor** (liveness.ts): online / offline / lost, silent and stopping agents, requeueing the work of
 *    nodes that are gone.
 *  - **JobCanceller** (job-canceller.ts): cancels in chunks without stalling the event loop.
 *
 * The HTTP routes reach these through the WorkService (service/work-service.ts), never directly.
 */
import type { FinishedMessage, HelloMessage, JobId, NodeId, NodePolicyStatus, ChangeTopic, HostUsageWire } from '@dsg/core';
import type { PendingReason, SchedulerConfig, SchedulerNode } from '@dsg/scheduler';
import type { AttemptRecord, Store, StorePolicy } from '@dsg/store';
import type { AgentEvents, AgentLink } from '../agents/agent-events.js';
import type { Clock } from '../clock.js';
import type { BlobStore } from '../files/blob-store.js';
import type { LogStore } from '../files/log-store.js';
import type { Logger } from '../logger.js';
import type { EngineMetrics } from '../metrics.js';
import { AttemptRegistry } from './attempt-registry.js';
import { Dispatcher } from './dispatcher.js';
import type { JobCache } from './job-cache.js';
import { JobCanceller } from './job-canceller.js';
import { LivenessMonitor } from './liveness.js';
import { ReportCommitter } from './report-committer.js';
import { AgentRefusals } from '../security/agent-refusals.js';
import { OutputLedger } from '../security/output-ledger.js';
import { InputGrants } from '../security/input-grants.js';

export type { AgentLink } from '../agents/agent-events.js';

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
  /** Where the engine reports passes and outcomes (Prometheus); none in most tests. */
  readonly metrics?: EngineMetrics;
  /** How long past its timeout a node may hold an attempt before the coordinator ends it as timed out. Default 30 s. */
  readonly timeoutGraceMs?: number;
  /** Most log bytes kept per attempt. Default 16 MiB (agents cut their tasks' logs at 8 MiB themselves). */
  readonly logQuotaBytes?: number;
  /** Most bytes of outputs one attempt may upload. Default 16 GiB. */
  readonly outputQuotaBytes?: number;
  /** Told what may have changed (the dashboard's change feed); none in most tests. */
  readonly changes?: (...topics: ChangeTopic[]) => void;
}

export class Engine implements AgentEvents {
  /** Cancels jobs in chunks, without stalling the event loop (see job-canceller.ts). */
  readonly cancels: JobCanceller;
  /** The scheduler's settings (explain runs its chain with them). */
  readonly schedulerConfig: SchedulerConfig;
  /** Agent messages refused because the sender does not hold the attempt they name (security/agent-refusals.ts). */
  readonly refusals: AgentRefusals;
  /** What each active attempt has uploaded, against its quota (security/output-ledger.ts). */
  readonly uploads: OutputLedger;
  /** Which input blobs each node may fetch (security/input-grants.ts). */
  readonly inputGrants = new InputGrants();
  private link: AgentLink | null = null;
  private running = false;
  private readonly dispatcher: Dispatcher;
  private readonly reports: ReportCommitter;
  private readonly liveness: LivenessMonitor;
  /** Which node holds each active attempt this process knows of (the upload route asks it too). */
  readonly attempts: AttemptRegistry;

  constructor(
    private readonly store: Store,
    blobs: BlobStore,
    logStore: LogStore,
    private readonly clock: Clock,
    private readonly config: EngineConfig,
    private readonly log: Logger,
  ) {
    this.schedulerConfig = config.scheduler;
    const attempts = new AttemptRegistry();
    this.attempts = attempts;
    this.refusals = new AgentRefusals(log, () => clock.now());
    this.uploads = new OutputLedger(config.outputQuotaBytes ?? 16 * 1024 ** 3);
    const link = (): AgentLink | null => this.link;
    const metrics = config.metrics ? { metrics: config.metrics } : {};
    this.dispatcher = new Dispatcher({
      store, clock, config: config.scheduler, log, attempts, link, ...metrics,
      nodePolicy: (id) => this.nodePolicy(id),
      onAssigned: (nodeId, a) => this.inputGrants.grant(nodeId, a.attemptId, a.inputs.map((i) => i.sha256)),
    });
    this.reports = new ReportCommitter({
      store, blobs, logStore, clock, log, attempts, link,
      refusals: this.refusals,
      uploads: this.uploads,
      inputGrants: this.inputGrants,
      logQuotaBytes: config.logQuotaBytes ?? 16 * 1024 ** 2,
      timeoutOf: async (jobId) => (await this.dispatcher.jobs.get(jobId))?.compiled.timeoutMs ?? null,
      timeoutGraceMs: config.timeoutGraceMs ?? 30_000,
      policy: config.policy,
      reportBatchMs: config.reportBatchMs,
      reconcileGraceMs: config.reconcileGraceMs,
      onChanged: () => this.requestTick(),
      fold: {
        plan: (finishing) => this.dispatcher.planWithFinishes(finishing),
        placed: (plan, result) => this.dispatcher.placed(plan, result),
        abandoned: () => this.dispatcher.abandoned(),
        job: async (jobId) => {
          const j = await this.dispatcher.jobs.get(jobId);
          return j ? { resources: j.compiled.resources, inWorkflow: j.inWorkflow, usesGpus: j.compiled.resources.gpus > 0 || j.compiled.gpu !== undefined } : null;
        },
      },
      ...metrics,
    });
    this.liveness = new LivenessMonitor({ store, clock, log, link, reports: this.reports, config });
    this.cancels = new JobCanceller(store, this, clock, log);
  }

  /**
   * The volunteer policy state of each connected node, as its agent last reported it (hello, then `policy`
   * messages). In memory only: an agent repeats it in every hello, and a node that is gone takes no work anyway.
   */
  private readonly policies = new Map<NodeId, NodePolicyStatus>();

  /** What each connected node last said it is doing (heartbeats); in memory only, gone when it disconnects. */
  private readonly hostUsage = new Map<NodeId, HostUsageWire & { at: number }>();

  /** The node's last reported load and memory in use, or null (not connected, or an older agent). */
  nodeHostUsage(nodeId: NodeId): (HostUsageWire & { at: number }) | null {
    return this.hostUsage.get(nodeId) ?? null;
  }

  /** A connected node's volunteer policy state; null when it has none (or is not connected). */
  nodePolicy(nodeId: NodeId): NodePolicyStatus | null {
    return this.policies.get(nodeId) ?? null;
  }

  /** The compiled specs of recent jobs (assignments are built without a store read). */
  get jobs(): JobCache {
    return this.dispatcher.jobs;
  }
  /** Jobs whose queued tasks are being cancelled right now: their tasks are never dispatched. */
  get cancelling(): Set<JobId> {
    return this.dispatcher.cancelling;
  }
  /** Why each job's queued tasks wait, from the latest pass. */
  get pendingReasons(): ReadonlyMap<JobId, PendingReason> {
    return this.dispatcher.pendingReasons;
  }
  get lastPass(): Dispatcher['lastPass'] {
    return this.dispatcher.lastPass;
  }

  /** True between `start()` and `stop()`: submitted work will be scheduled (readiness). */
  get accepting(): boolean {
    return this.running;
  }

  async start(link: AgentLink): Promise<void> {
    this.link = link;
    this.running = true;
    await this.liveness.start();
    this.requestTick();
    void this.cancels.resume().catch((e: unknown) => this.log.error({ err: e }, 'finishing interrupted cancels failed'));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.dispatcher.close();
    await this.liveness.stop();
    await this.reports.drain();
  }

  requestTick(): void {
    this.dispatcher.requestTick();
  }

  /** The nodes a dispatch pass would use now (for `dsg job explain`). */
  /** The nodes as the next pass sees them; with `releases`, when their running tasks end at the latest. */
  snapshotNodes(opts: { releases?: boolean } = {}): Promise<SchedulerNode[]> {
    return this.dispatcher.snapshotNodes(undefined, opts);
  }

  /** Commit every report gathered so far. Exposed for tests and shutdown. */
  flush(): Promise<void> {
    return this.reports.flush();
  }

  /** Check for silent and long-gone nodes now. Exposed for tests. */
  checkLiveness(): Promise<void> {
    return this.liveness.checkLiveness();
  }

  /** Ask agents to kill attempts (of a cancelled job or workflow). */
  killAttempts(attempts: readonly AttemptRecord[], reason: string): void {
    const byNode = new Map<NodeId, string[]>();
    for (const a of attempts) {
      let l = byNode.get(a.nodeId);
      if (!l) byNode.set(a.nodeId, (l = []));
      l.push(a.id);
    }
    for (const [nodeId, ids] of byNode) this.link?.send(nodeId, [{ type: 'cancel', attemptIds: ids, reason }]);
  }

  /**
   * Forget a node (see Store.removeNode): refused while it holds work unless `force`, which requeues that work,
   * tells its agent to stop those attempts and closes its connection (a still-running agent joins again as a new
   * node: stop it first to keep it out).
   */
  async removeNode(nodeId: NodeId, force: boolean): Promise<{ removed: boolean; held: readonly AttemptRecord[]; requeuedTasks: number } | null> {
    const r = await this.store.removeNode(nodeId, { force, reason: 'its node was removed by an operator (dsg node remove --force); run again' }, this.clock.now(), this.config.policy);
    if (!r || !r.removed) return r ? { removed: false, held: r.held, requeuedTasks: 0 } : null;
    if (r.held.length > 0) this.killAttempts(r.held, 'the node was removed by an operator');
    this.liveness.forget(nodeId);
    this.link?.disconnect(nodeId, 'node removed by an operator');
    this.requestTick();
    return { removed: true, held: r.held, requeuedTasks: r.requeued.filter((x) => x.applied && x.retry).length };
  }

  /** Forget offline and lost nodes last seen more than `olderThanMs` ago that hold no work. */
  async pruneNodes(olderThanMs: number): Promise<readonly string[]> {
    const gone = await this.store.pruneNodes(this.clock.now() - olderThanMs);
    for (const n of gone) this.liveness.forget(n.id);
    if (gone.length > 0) this.log.info({ nodes: gone.map((n) => n.name) }, 'pruned nodes offline for too long');
    return gone.map((n) => n.name);
  }

  /**
   * A node's credential was revoked: close its socket, send it no more work and requeue what it holds now (after
   * the reports already gathered), without waiting for any timeout. It stays offline until it joins anew.
   */
  async onNodeRevoked(nodeId: NodeId, why: string): Promise<void> {
    this.link?.disconnect(nodeId, why);
    await this.liveness.onStopping(nodeId, why);
    await this.liveness.onDisconnect(nodeId);
    this.reports.markDeparted(nodeId, why); // requeued with the reason, not as a plain stop
    await this.reports.drain();
  }

  // ─── AgentEvents ───────────────────────────────────────────────────────────────────────────────────────
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
    this.liveness.joined(nodeId);
    if (hello.policy) this.policies.set(nodeId, hello.policy);
    else this.policies.delete(nodeId);
    this.log.info({ nodeId, name: hello.name, cores: hello.capacity.cpuMillis / 1000, rejoined: Boolean(existing), ...(hello.policy ? { policy: hello.policy.state } : {}) }, 'node connected');
    return nodeId;
  }

  private changed(...topics: ChangeTopic[]): void {
    this.config.changes?.(...topics);
  }

  onNodeReady(): void {
    this.changed('nodes');
    this.requestTick();
  }

  onDisconnect(nodeId: NodeId): Promise<void> {
    this.policies.delete(nodeId);
    this.hostUsage.delete(nodeId);
    return this.liveness.onDisconnect(nodeId).finally(() => this.changed('nodes', 'jobs'));
  }

  onStopping(nodeId: NodeId, reason: string): Promise<void> {
    return this.liveness.onStopping(nodeId, reason).finally(() => this.changed('nodes', 'jobs'));
  }

  onStarted(nodeId: NodeId, attemptId: string, at: number): void {
    this.liveness.touch(nodeId);
    this.reports.onStarted(nodeId, attemptId, at);
    this.changed('jobs', 'workflows', 'nodes');
  }

  onLog(nodeId: NodeId, attemptId: string, data: string): void {
    this.reports.onLog(nodeId, attemptId, data);
  }

  onFinished(nodeId: NodeId, m: FinishedMessage): void {
    this.liveness.touch(nodeId);
    this.reports.onFinished(nodeId, m);
  }

  onHeartbeat(nodeId: NodeId, running: readonly string[], usage?: HostUsageWire): void {
    this.liveness.touch(nodeId);
    if (usage) this.hostUsage.set(nodeId, { ...usage, at: this.clock.now() });
    this.reports.onHeartbeat(nodeId, running, this.clock.now());
    this.changed('nodes');
  }

  onPolicy(nodeId: NodeId, policy: NodePolicyStatus): void {
    this.liveness.touch(nodeId);
    const before = this.policies.get(nodeId)?.state ?? 'working';
    this.policies.set(nodeId, policy);
    this.changed('nodes');
    this.log.info({ nodeId, policy: policy.state, reason: policy.reason }, policy.state === 'working' ? 'node available again (volunteer policy)' : 'node held back by its volunteer policy');
    // Working again: its capacity is back for queued work.
    if (policy.state === 'working' && before !== 'working') this.requestTick();
  }
}
