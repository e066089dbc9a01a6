/**
 * Agent messages the coordinator refused because they were about an attempt the sending node does not hold: a
 * `started`, `log`, `finished` or `heartbeat` naming another node's attempt, or an output upload for one. A
 * well-behaved agent never sends such a message, so each one is counted (per node and kind, shown by
 * `GET /api/v1/security/refusals`) and logged — the first few per node in full, then every 100th — so a flood
 * cannot flood the log.
 */
import type { NodeId } from '@dsg/core';
import type { Logger } from '../logger.js';

export const RefusalKind = {
  started: 'started',
  log: 'log',
  finished: 'finished',
  heartbeat: 'heartbeat',
  upload: 'upload',
  blob: 'blob',
  hello: 'hello',
} as const;
export type RefusalKind = (typeof RefusalKind)[keyof typeof RefusalKind];

export interface RefusalCount {
  readonly nodeId: string;
  readonly kind: RefusalKind;
  readonly count: number;
  readonly lastAt: number;
  readonly lastReason: string;
}

export class AgentRefusals {
  private readonly counts = new Map<string, { nodeId: string; kind: RefusalKind; count: number; lastAt: number; lastReason: string }>();
  private totalCount = 0;

  constructor(private readonly log: Logger, private readonly now: () => number) {}

  /** Count and log one refused message. `nodeId` is the sender (or `unknown` when it has none yet). */
  refuse(nodeId: NodeId | string, kind: RefusalKind, attemptId: string | null, reason: string): void {
    this.totalCount++;
    const key = `${nodeId}\u0000${kind}`;
    let c = this.counts.get(key);
    if (!c) this.counts.set(key, (c = { nodeId, kind, count: 0, lastAt: 0, lastReason: '' }));
    c.count++;
    c.lastAt = this.now();
    c.lastReason = reason;
    if (c.count <= 10 || c.count % 100 === 0)
      this.log.warn({ nodeId, kind, attemptId, refusedSoFar: c.count }, `refused a ${kind} from node ${nodeId}: ${reason}`);
  }

  get total(): number {
    return this.totalCount;
  }

  list(): RefusalCount[] {
    return [...this.counts.values()].map((c) => ({ ...c }));
  }

  /** How many messages of `kind` (or of any kind) from `nodeId` were refused. */
  countFor(nodeId: string, kind?: RefusalKind): number {
    let n = 0;
    for (const c of this.counts.values()) if (c.nodeId === nodeId && (!kind || c.kind === kind)) n += c.count;
    return n;
  }
}
