/**
 * Liveness: which nodes are alive, and what happens to the work of those that are not.
 *
 * Node states: `online` while connected and heard from; `offline` after a disconnect, or after `silenceTimeout`
 * without a message on an open connection (a frozen agent: its socket is closed), with until `nodeTimeout` after
 * it was last heard from to come back; `lost` after that, when its active attempts are ended as lost and their
 * tasks requeued (a system failure, retried regardless of the spec's `retries`). An agent that stops cleanly says
 * so first (`stopping`): it gets no more work, and what it still holds when its socket closes is requeued at once;
 * it stays `offline`. At start-up every node the store thinks is online becomes offline with `restartGrace`: a
 * coordinator restart gives agents time to reconnect and report.
 *
 *   online ──disconnect / silent──▶ offline ──nodeTimeout──▶ lost (attempts requeued)
 *   online ──stopping──▶ offline (no work) ──disconnect──▶ offline (what it held requeued at once)
 *   offline / lost ──hello──▶ online
 */
import type { NodeId } from '@dsg/core';
import type { Store } from '@dsg/store';
import type { AgentLink } from '../agents/agent-events.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { ReportCommitter } from './report-committer.js';

export interface LivenessConfig {
  readonly heartbeatIntervalMs: number;
  readonly nodeTimeoutMs: number;
  readonly silenceTimeoutMs?: number;
  readonly restartGraceMs?: number;
}

export interface LivenessDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly config: LivenessConfig;
  readonly reports: ReportCommitter;
  readonly link: () => AgentLink | null;
}

export class LivenessMonitor {
  /** Offline nodes and when they will be declared lost. */
  private readonly offlineDeadline = new Map<NodeId, number>();
  private readonly lastSeen = new Map<NodeId, number>();
  /** Connected nodes whose agent announced it is stopping (no work is sent to them; offline in the store). */
  private readonly stopping = new Set<NodeId>();
  private monitor: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly deps: LivenessDeps) {}

  /** Give nodes that were online before a restart `restartGrace` to come back, and start checking every second. */
  async start(): Promise<void> {
    const { store, config } = this.deps;
    const now = this.deps.clock.now();
    const grace = config.restartGraceMs ?? config.nodeTimeoutMs;
    for (const u of await store.listNodeUsage(['online'])) {
      await store.setNodeState(u.node.id, 'offline', now);
      this.offlineDeadline.set(u.node.id, now + grace);
    }
    for (const u of await store.listNodeUsage(['offline'])) {
      if (u.activeAttempts > 0 && !this.offlineDeadline.has(u.node.id)) this.offlineDeadline.set(u.node.id, now + grace);
    }
    // A node declared lost whose attempts were not all requeued yet (they are ended in slices; a crash came
    // between two): finish at the first check, unless it reconnects first.
    for (const u of await store.listNodeUsage(['lost'])) {
      if (u.activeAttempts > 0) this.offlineDeadline.set(u.node.id, now);
    }
    // Checked often enough that a silent node is noticed within a fraction of a heartbeat of its deadline.
    const every = Math.min(1000, Math.max(100, config.heartbeatIntervalMs / 2));
    this.monitor = setInterval(() => {
      if (this.checking) return; // the previous check is still requeueing a lost node's attempts, slice by slice
      this.checking = this.checkLiveness()
        .catch((e) => this.deps.log.error({ err: e }, 'liveness check failed'))
        .finally(() => (this.checking = null));
    }, every);
    this.monitor.unref();
  }

  /** Stop checking; resolves when a check under way has finished (a lost node's slices are not cut short). */
  async stop(): Promise<void> {
    this.closed = true;
    if (this.monitor) clearInterval(this.monitor);
    await this.checking;
  }

  /** A message arrived from the node. */
  touch(nodeId: NodeId): void {
    this.lastSeen.set(nodeId, this.deps.clock.now());
  }

  /** The node (re)joined. */
  joined(nodeId: NodeId): void {
    this.offlineDeadline.delete(nodeId);
    this.stopping.delete(nodeId);
    this.touch(nodeId);
  }

  /** The node was removed from the store: stop tracking it. */
  forget(nodeId: NodeId): void {
    this.offlineDeadline.delete(nodeId);
    this.lastSeen.delete(nodeId);
    this.stopping.delete(nodeId);
  }

  async onDisconnect(nodeId: NodeId): Promise<void> {
    if (this.closed) return;
    const { store, config, log } = this.deps;
    const now = this.deps.clock.now();
    if (this.stopping.delete(nodeId)) {
      // It said it was stopping, so nothing it held will be reported any more: requeue that at once (in the next
      // flush, after the reports that came before the close), and leave the node offline rather than lost.
      this.deps.reports.markDeparted(nodeId, 'the agent stopped without reporting this attempt');
      await store.setNodeState(nodeId, 'offline', now);
      log.info({ nodeId }, 'node stopped; what it still held is requeued');
      return;
    }
    this.offlineDeadline.set(nodeId, now + config.nodeTimeoutMs);
    await store.setNodeState(nodeId, 'offline', now);
    log.warn({ nodeId, graceSeconds: config.nodeTimeoutMs / 1000 }, 'node disconnected; waiting for it to come back');
  }

  /**
   * The agent is stopping (SIGTERM): send it no more work. It stays connected while it reports its attempts as
   * `agent_stopped` (requeued as they arrive); its node is offline in the store, so no pass or plan names it.
   */
  async onStopping(nodeId: NodeId, reason: string): Promise<void> {
    const now = this.deps.clock.now();
    this.stopping.add(nodeId);
    this.lastSeen.set(nodeId, now);
    await this.deps.store.setNodeState(nodeId, 'offline', now);
    this.deps.log.info({ nodeId, reason }, 'node stopping; no more work is sent to it');
  }

  /**
   * Disconnect silent nodes; declare nodes out of reach for `nodeTimeout` lost. Runs every second (half a heartbeat
   * when heartbeats are faster); public for tests.
   *
   * An open TCP connection proves nothing (a SIGSTOPped agent's kernel keeps it open): only messages count. A node
   * silent for `silenceTimeout` is disconnected and offline at once, and lost `nodeTimeout` after it was last heard
   * from, exactly like a node whose connection closed.
   */
  async checkLiveness(): Promise<void> {
    const now = this.deps.clock.now();
    const link = this.deps.link();
    const silence = this.deps.config.silenceTimeoutMs ?? this.deps.config.nodeTimeoutMs;
    if (link) {
      for (const nodeId of [...link.connectedNodes()]) {
        const seen = this.lastSeen.get(nodeId) ?? now;
        if (now - seen <= silence) continue;
        link.disconnect(nodeId, 'no heartbeat');
        const silentFor = Math.round((now - seen) / 1000);
        if (this.stopping.delete(nodeId)) {
          this.deps.reports.markDeparted(nodeId, `the agent stopped and then went silent for ${silentFor}s`);
        } else if (now - seen >= this.deps.config.nodeTimeoutMs) {
          await this.declareLost(nodeId, `node stopped heartbeating for ${silentFor}s`);
        } else {
          this.offlineDeadline.set(nodeId, seen + this.deps.config.nodeTimeoutMs);
          await this.deps.store.setNodeState(nodeId, 'offline', now);
          this.deps.log.warn({ nodeId, silentSeconds: silentFor, lostInSeconds: Math.round((seen + this.deps.config.nodeTimeoutMs - now) / 1000) }, 'node silent (frozen or cut off); disconnected it, waiting for it to come back');
        }
      }
    }
    for (const [nodeId, deadline] of this.offlineDeadline) {
      if (now >= deadline && !link?.connectedNodes().has(nodeId)) {
        await this.declareLost(nodeId, `node was out of reach (disconnected or silent) for more than ${Math.round(this.deps.config.nodeTimeoutMs / 1000)}s`);
      }
    }
  }

  private async declareLost(nodeId: NodeId, why: string): Promise<void> {
    const now = this.deps.clock.now();
    this.offlineDeadline.delete(nodeId);
    this.lastSeen.delete(nodeId);
    await this.deps.store.setNodeState(nodeId, 'lost', now);
    const attempts = await this.deps.reports.requeueHeld(nodeId, why);
    this.deps.log.warn({ nodeId, attempts, why }, 'node lost; its attempts were requeued');
  }
}
