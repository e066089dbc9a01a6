/**
 * The report committer: grouped commits of what agents report. Starts, finishes, log chunks and heartbeats from
 * all agents are queued and flushed together: logs are written first (so an ended attempt's log is complete),
 * then starts and finishes are committed in **one transaction** (`Store.recordReports`, which also applies what a
 * workflow releases or skips as a consequence), then finishes are acknowledged to their agents. While one flush
 * runs, new reports gather for the next, so under load each commit carries many state changes. Nothing is acked
 * before it is durable: a failed commit keeps its reports for the next flush, ahead of newer ones.
 *
 * Reconciliation: each heartbeat lists the attempts the agent runs. Attempts the store has active on that node
 * but the agent does not list (assigned more than `reconcileGraceMs` before the heartbeat, so an assignment still
 * in flight is not mistaken) are ended as lost; attempts the agent runs that are no longer current are cancelled.
 * Heartbeats are processed in the same flush, after the finishes that arrived before them on the same socket.
 * The coordinator enforces timeouts itself: an attempt a node still lists past its job's timeout plus
 * `timeoutGraceMs` — counted from its start, or from its assignment when it never started; a start reported later
 * than one timeout plus grace after the assignment counts as that late, so a node's clock cannot postpone it — is
 * ended as timed out (a user failure, retried as the spec says) and the node is told to cancel it.
 *
 * Ownership: every report is checked against the node that sent it. A `started`, `log` or `finished` about an
 * attempt that was not assigned to the sending node, and a heartbeat listing one, is ignored, logged and counted
 * (AgentRefusals) — a node can report only on its own attempts. An attempt's node never changes once it is
 * created, so checking ownership at flush time, before the commit, is as good as checking inside it. A `finished`
 * report may name only outputs its attempt uploaded (OutputLedger): a node cannot pass off an existing blob,
 * another job's, as its result.
 *
 * State machine: idle ──report──▶ queued (setTimeout reportBatchMs) ──▶ flushing ──▶ idle, or queued again when
 * reports arrived meanwhile (retried after 1 s when the commit failed).
 */
import { addResources, isAttemptId, isTerminalAttempt, ZERO_RESOURCES, type AttemptId, type FinishedMessage, type JobId, type NodeId, type Resources } from '@dsg/core';
import type { ApplyPlanResult, AttemptRecord, FinishReport, FinishResult, StartReport, Store, StorePolicy } from '@dsg/store';
import type { AgentLink } from '../agents/agent-events.js';
import type { Clock } from '../clock.js';
import type { BlobStore } from '../files/blob-store.js';
import type { LogStore } from '../files/log-store.js';
import type { Logger } from '../logger.js';
import type { EngineMetrics } from '../metrics.js';
import type { AgentRefusals } from '../security/agent-refusals.js';
import type { OutputLedger } from '../security/output-ledger.js';
import type { InputGrants } from '../security/input-grants.js';
import type { AttemptRegistry } from './attempt-registry.js';
import type { Finishing, FoldedPlan } from './dispatcher.js';

/**
 * Dispatch folded into the report commit (Dispatcher.planWithFinishes): a pass planned against the room the
 * finishes free, committed with them. Absent: reports commit alone and `onChanged` asks for a pass.
 */
export interface FoldedDispatch {
  plan(finishing: Finishing): Promise<FoldedPlan | null>;
  placed(plan: FoldedPlan, result: ApplyPlanResult): void;
  abandoned(): void;
  /**
   * What a job's tasks hold while they run, whether it is a workflow stage and whether it uses GPUs (cached; null
   * when unknown).
   */
  job(jobId: JobId): Promise<{ readonly resources: Resources; readonly inWorkflow: boolean; readonly usesGpus: boolean } | null>;
}

const NOTHING_PLACED: ApplyPlanResult = { created: [], rejected: [] };

/**
 * Attempts ended per commit when a node is lost. Profiled on the loaded 2-core VM: ~0.2 ms of statements per attempt
 * plus the commit, so 500 held the loop ~180 ms per slice; 100 keeps a slice to a few tens of ms.
 */
export const LOSE_CHUNK = 100;

export interface ReportCommitterDeps {
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly logStore: LogStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly policy: StorePolicy;
  /** How long reports may wait to share a commit. 0 = commit at the next turn of the event loop. */
  readonly reportBatchMs: number;
  readonly reconcileGraceMs: number;
  readonly attempts: AttemptRegistry;
  readonly link: () => AgentLink | null;
  /** Something changed in the queue (a task ended or was requeued): a dispatch pass may place more. */
  readonly onChanged: () => void;
  readonly metrics?: EngineMetrics;
  /** Reports about attempts the sender does not hold are counted here. */
  readonly refusals: AgentRefusals;
  /** What each attempt uploaded: a finished report may only name those outputs. */
  readonly uploads: OutputLedger;
  /** Input blobs each node may fetch; an ended attempt's grants are dropped. */
  readonly inputGrants: InputGrants;
  /** Most log bytes kept per attempt; what goes beyond is dropped with a notice. */
  readonly logQuotaBytes: number;
  /** The timeout of a job's tasks (null when the job is unknown). */
  readonly timeoutOf: (jobId: JobId) => Promise<number | null>;
  /** How long past its timeout a node may hold an attempt before the coordinator ends it. */
  readonly timeoutGraceMs: number;
  /** Dispatch committed with the finishes that make room for it. */
  readonly fold?: FoldedDispatch;
}

export class ReportCommitter {
  // The batch, swapped out whole at each flush.
  private starts: Array<{ report: StartReport; nodeId: NodeId }> = [];
  private finishes: Array<{ report: FinishReport; nodeId: NodeId }> = [];
  private logs = new Map<string, { jobId: string; text: string }>();
  /** Log bytes accepted per active attempt (against `logQuotaBytes`). */
  private readonly logBytes = new Map<string, number>();
  private heartbeats = new Map<NodeId, { running: Set<string>; at: number }>();
  /** Nodes whose agent stopped cleanly: what they still hold is requeued in the next flush, after their last reports. */
  private departed = new Map<NodeId, string>();
  private flushQueued = false;
  private flushing: Promise<void> | null = null;

  constructor(private readonly deps: ReportCommitterDeps) {}

  onStarted(nodeId: NodeId, attemptId: string, at: number): void {
    if (!isAttemptId(attemptId)) return;
    this.starts.push({ nodeId, report: { attemptId, at } });
    this.scheduleFlush();
  }

  onLog(nodeId: NodeId, attemptId: string, data: string): void {
    if (!isAttemptId(attemptId)) return;
    const info = this.deps.attempts.get(attemptId);
    if (info) {
      if (info.nodeId === nodeId) this.appendLog(attemptId, info.jobId, data);
      else this.deps.refusals.refuse(nodeId, 'log', attemptId, `log for attempt ${attemptId}, which is assigned to node ${info.nodeId}`);
    } else {
      // An attempt dispatched by an earlier coordinator process (or no attempt of this node at all): look it up once.
      void this.deps.store.getAttempt(attemptId).then((a) => {
        if (!a) return this.deps.refusals.refuse(nodeId, 'log', attemptId, `log for attempt ${attemptId}, which does not exist`);
        if (a.nodeId !== nodeId) return this.deps.refusals.refuse(nodeId, 'log', attemptId, `log for attempt ${attemptId}, which is assigned to node ${a.nodeId}`);
        if (isTerminalAttempt(a.state)) return; // a late chunk of an attempt that has ended: its log is closed
        this.deps.attempts.set(attemptId, a.jobId, a.nodeId);
        this.appendLog(attemptId, a.jobId, data);
      });
    }
  }

  private appendLog(attemptId: string, jobId: string, data: string): void {
    // The coordinator's own log quota per attempt (agents limit themselves; a node that does not is cut here).
    const used = this.logBytes.get(attemptId) ?? 0;
    const quota = this.deps.logQuotaBytes;
    if (used >= quota) return;
    const bytes = Buffer.byteLength(data);
    if (used + bytes > quota) {
      const nodeId = this.deps.attempts.get(attemptId as AttemptId)?.nodeId ?? 'unknown';
      this.deps.refusals.refuse(nodeId, 'log', attemptId, `log of attempt ${attemptId} went over the quota of ${quota} bytes; the rest is dropped`);
      data = `${Buffer.from(data).subarray(0, quota - used).toString()}\n[dsg] log cut by the coordinator: more than ${quota} bytes for this attempt\n`;
      this.logBytes.set(attemptId, quota);
    } else this.logBytes.set(attemptId, used + bytes);
    const cur = this.logs.get(attemptId);
    if (cur) cur.text += data;
    else this.logs.set(attemptId, { jobId, text: data });
    this.scheduleFlush();
  }

  onFinished(nodeId: NodeId, m: FinishedMessage): void {
    if (!isAttemptId(m.attemptId)) return;
    this.finishes.push({
      nodeId,
      report: { attemptId: m.attemptId, end: m.end, startedAt: m.startedAt, finishedAt: m.finishedAt, outputs: m.outputs, ...(m.usage ? { usage: m.usage } : {}) },
    });
    this.scheduleFlush();
  }

  onHeartbeat(nodeId: NodeId, running: readonly string[], at: number): void {
    this.heartbeats.set(nodeId, { running: new Set(running), at });
    this.scheduleFlush();
  }

  /** The node's agent is gone for good (it stopped): requeue what it still holds, after its last reports. */
  markDeparted(nodeId: NodeId, why: string): void {
    this.departed.set(nodeId, why);
    this.scheduleFlush();
  }

  /** Wait for a flush in progress, then commit what is left (shutdown). */
  async drain(): Promise<void> {
    await this.flushing;
    if (this.hasReports()) await this.flush();
  }

  hasReports(): boolean {
    return this.starts.length + this.finishes.length + this.logs.size + this.heartbeats.size + this.departed.size > 0;
  }

  scheduleFlush(): void {
    if (this.flushQueued || this.flushing) return;
    this.flushQueued = true;
    const run = (): void => {
      this.flushQueued = false;
      this.flushing = this.flush()
        .then(() => true, (e: unknown) => {
          this.deps.log.error({ err: e }, 'committing agent reports failed; retrying in 1s');
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
    if (this.deps.reportBatchMs > 0) setTimeout(run, this.deps.reportBatchMs);
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

    if (logs.size > 0) await this.deps.logStore.append(logs).catch((e: unknown) => this.deps.log.error({ err: e }, 'writing task logs failed'));
    if (starts.length > 0 || finishes.length > 0) {
      let results: readonly FinishResult[];
      let owned: typeof finishes;
      let fold: { plan: FoldedPlan; inWorkflow: boolean } | null = null;
      let placed = NOTHING_PLACED;
      try {
        const ownStarts = await this.ownedOnly(starts, 'started');
        owned = await this.ownedOnly(finishes, 'finished');
        const reports = owned.map((f) => this.checkOutputs(f.report));
        fold = owned.length > 0 ? await this.foldedPlan(owned) : null;
        const now = this.deps.clock.now();
        if (fold && fold.plan.attempts.length > 0) {
          const r = await this.deps.store.recordReportsAndPlace(ownStarts.map((s) => s.report), reports, now, this.deps.policy, { attempts: fold.plan.attempts, overcommit: fold.plan.overcommit });
          results = r.results;
          placed = r.placed;
        } else results = await this.deps.store.recordReports(ownStarts.map((s) => s.report), reports, now, this.deps.policy);
      } catch (e) {
        if (fold) this.deps.fold!.abandoned();
        // Nothing was committed and nothing acked: keep the reports for the next attempt, ahead of newer ones.
        this.starts = [...starts, ...this.starts];
        this.finishes = [...finishes, ...this.finishes];
        for (const [n, hb] of heartbeats) if (!this.heartbeats.has(n)) this.heartbeats.set(n, hb);
        for (const [n, why] of departed) if (!this.departed.has(n)) this.departed.set(n, why);
        throw e;
      }
      // With a folded plan, a pass is still needed when the queue changed under it: a retry requeued a task, or a
      // workflow stage's end may have released the next stage's tasks (placed() asks for one after rejections).
      this.afterFinishes(results, fold === null || fold.inWorkflow || results.some((r) => r.applied && r.retry));
      const acks = new Map<NodeId, AttemptId[]>();
      // Refused reports are not acked: the coordinator has taken nothing from them.
      for (const f of owned) {
        let l = acks.get(f.nodeId);
        if (!l) acks.set(f.nodeId, (l = []));
        l.push(f.report.attemptId);
      }
      for (const [nodeId, ids] of acks) this.deps.link()?.send(nodeId, [{ type: 'ack', attemptIds: ids }]);
      // The new attempts go out after the acks, in the same frame per node (AgentHub gathers a turn's messages).
      if (fold) this.deps.fold!.placed(fold.plan, placed);
    }
    for (const [nodeId, hb] of heartbeats) await this.reconcile(nodeId, hb.running, hb.at);
    for (const [nodeId, why] of departed) await this.requeueHeld(nodeId, why);
  }

  /**
   * End a node's active attempts as lost (requeued, a system failure), LOSE_CHUNK (100) attempts per commit with the event
   * loop free between commits: a node holding 10,000 attempts took one multi-second commit that stalled every
   * request. A crash midway leaves the rest active on a node already `lost`; LivenessMonitor.start finishes them.
   */
  async requeueHeld(nodeId: NodeId, why: string): Promise<number> {
    const active = await this.deps.store.activeAttemptsOnNode(nodeId);
    for (let i = 0; i < active.length; i += LOSE_CHUNK) {
      if (i > 0) await new Promise((r) => setImmediate(r));
      const ids = active.slice(i, i + LOSE_CHUNK).map((a) => a.id);
      this.afterFinishes(await this.deps.store.loseAttempts(ids, why, this.deps.clock.now(), this.deps.policy));
    }
    return active.length;
  }

  /**
   * The reports whose attempt is assigned to the node that sent them; the others are refused (logged, counted).
   * The registry knows the attempts this process dispatched; the store is asked about the rest (attempts dispatched
   * before a restart, and whatever a misbehaving node makes up).
   */
  private async ownedOnly<T extends { nodeId: NodeId; report: { attemptId: AttemptId } }>(items: readonly T[], kind: 'started' | 'finished'): Promise<T[]> {
    const out: T[] = [];
    for (const it of items) {
      const id = it.report.attemptId;
      const owner = this.deps.attempts.get(id)?.nodeId ?? (await this.deps.store.getAttempt(id))?.nodeId;
      if (owner === it.nodeId) out.push(it);
      else this.deps.refusals.refuse(it.nodeId, kind, id, owner ? `${kind} for attempt ${id}, which is assigned to node ${owner}` : `${kind} for attempt ${id}, which does not exist`);
    }
    return out;
  }

  /**
   * Every output the agent claims must be one its attempt uploaded (same path, same hash and size), and its blob
   * must be present; otherwise the attempt becomes a system failure (`outputs_failed`, retried).
   */
  private checkOutputs(r: FinishReport): FinishReport {
    if (r.outputs.length === 0) return r;
    const missing: string[] = [];
    for (const o of r.outputs) {
      const up = this.deps.uploads.uploaded(r.attemptId, o.path);
      if (!up || up.sha256 !== o.sha256 || up.size !== o.size) missing.push(o.path);
    }
    if (missing.length === 0) return r;
    return {
      ...r,
      outputs: [],
      end: { kind: 'error', reason: 'outputs_failed', message: `outputs not received by the coordinator: ${missing.slice(0, 5).join(', ')}` },
    };
  }

  /**
   * A pass planned against the room these finishes free, to commit with them; null when not possible: no fold, a
   * pass under way, a finish of an attempt this process did not dispatch (its room is not known here), or of a job
   * using GPUs (the pass reads device state from the store, where those devices are still held).
   */
  private async foldedPlan(owned: ReadonlyArray<{ report: FinishReport }>): Promise<{ plan: FoldedPlan; inWorkflow: boolean } | null> {
    const fold = this.deps.fold;
    if (!fold) return null;
    const freed = new Map<NodeId, Resources>();
    const ended = new Map<JobId, number>();
    const ranMs = new Map<JobId, number[]>();
    let inWorkflow = false;
    for (const f of owned) {
      const info = this.deps.attempts.get(f.report.attemptId);
      if (!info) return null;
      const job = await fold.job(info.jobId);
      if (!job || job.usesGpus) return null;
      inWorkflow ||= job.inWorkflow;
      freed.set(info.nodeId, addResources(freed.get(info.nodeId) ?? ZERO_RESOURCES, job.resources));
      ended.set(info.jobId, (ended.get(info.jobId) ?? 0) + 1);
      // The store times a run the same way when it commits the finish (an exit, with its start known).
      const r = f.report;
      if (r.end.kind === 'exited' && r.startedAt !== null) {
        let l = ranMs.get(info.jobId);
        if (!l) ranMs.set(info.jobId, (l = []));
        l.push(Math.max(0, r.finishedAt - r.startedAt));
      }
    }
    const plan = await fold.plan({ freed, ended, ranMs });
    return plan ? { plan, inWorkflow } : null;
  }

  private afterFinishes(results: readonly FinishResult[], passNeeded = true): void {
    let changed = false;
    for (const r of results) {
      this.deps.attempts.delete(r.attemptId);
      this.deps.uploads.forget(r.attemptId);
      this.deps.inputGrants.forget(r.attemptId);
      this.logBytes.delete(r.attemptId);
      if (!r.applied) continue;
      changed = true;
      const outcome = r.retry ? 'retried' : r.taskState;
      if (outcome === 'retried' || outcome === 'succeeded' || outcome === 'failed' || outcome === 'cancelled') this.deps.metrics?.countOutcome(outcome);
    }
    if (changed && passNeeded) this.deps.onChanged();
  }

  /** End, as timed out, the attempts a node still runs past their timeout plus the grace. */
  private async endOverdue(nodeId: NodeId, running: readonly AttemptRecord[], at: number): Promise<void> {
    const g = this.deps.timeoutGraceMs;
    const overdue: FinishReport[] = [];
    for (const a of running) {
      const t = await this.deps.timeoutOf(a.jobId);
      if (t === null) continue;
      const from = a.startedAt === null ? a.assignedAt : Math.min(Math.max(a.startedAt, a.assignedAt), a.assignedAt + t + g);
      if (at > from + t + g) overdue.push({ attemptId: a.id, end: { kind: 'timeout', timeoutMs: t }, startedAt: a.startedAt, finishedAt: at, outputs: [] });
    }
    if (overdue.length === 0) return;
    this.deps.log.warn({ nodeId, attempts: overdue.map((o) => o.attemptId) }, 'node still runs attempts past their timeout plus grace; the coordinator ends them as timed out');
    this.afterFinishes(await this.deps.store.recordReports([], overdue, this.deps.clock.now(), this.deps.policy));
    this.deps.link()?.send(nodeId, [{ type: 'cancel', attemptIds: overdue.map((o) => o.attemptId), reason: 'the attempt ran past its timeout; the coordinator ended it' }]);
  }

  private async reconcile(nodeId: NodeId, running: ReadonlySet<string>, at: number): Promise<void> {
    const active = await this.deps.store.activeAttemptsOnNode(nodeId);
    const activeIds = new Set<string>(active.map((a) => a.id));
    const gone = active.filter((a) => !running.has(a.id) && a.assignedAt < at - this.deps.reconcileGraceMs).map((a) => a.id);
    if (gone.length > 0) {
      this.deps.log.warn({ nodeId, attempts: gone.length }, 'agent no longer runs attempts it was given; ending them as lost');
      const results = await this.deps.store.loseAttempts(gone, 'the agent no longer had this attempt (it restarted or never received it)', this.deps.clock.now(), this.deps.policy);
      this.afterFinishes(results);
    }
    await this.endOverdue(nodeId, active.filter((a) => running.has(a.id)), at);
    const stale: string[] = [];
    for (const id of running) {
      if (activeIds.has(id)) continue;
      // Not one of this node's active attempts: an old one of its own (cancel it), or another node's (refuse).
      const owner = isAttemptId(id) ? (this.deps.attempts.get(id)?.nodeId ?? (await this.deps.store.getAttempt(id))?.nodeId) : undefined;
      if (owner && owner !== nodeId) this.deps.refusals.refuse(nodeId, 'heartbeat', id, `heartbeat lists attempt ${id}, which is assigned to node ${owner}`);
      else stale.push(id);
    }
    if (stale.length > 0) this.deps.link()?.send(nodeId, [{ type: 'cancel', attemptIds: stale, reason: 'this attempt is no longer current (it was reassigned or cancelled)' }]);
  }
}
