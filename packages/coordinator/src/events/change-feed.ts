/**
 * The change feed behind `GET /api/v1/events`: the engine, the agent hub and the API's write routes say which
 * topics changed (`jobs`, `workflows`, `nodes`, `joins`); open dashboards hear about it within `coalesceMs`.
 *
 *   idle ──publish──▶ pending (topics collected) ──after coalesceMs──▶ flush to every subscriber ──▶ idle
 *
 * Coalescing bounds the rate: however many tasks end in a burst, a subscriber gets at most one event per
 * `coalesceMs`, naming the union of the topics. Events carry no data (the page refetches what it shows through
 * the API, with the reader's own permissions), so one feed serves every principal without leaking anything.
 * Subscribers are bounded in total and per token; the route answers 429 over either bound.
 */
import { randomUUID } from 'node:crypto';
import { OverLimitError, type ChangeTopic } from '@dsg/core';

export interface ChangeFeedOptions {
  /** Longest a change waits to be sent, collecting others. Default 250 ms. */
  readonly coalesceMs?: number;
  /** Most open feeds in total. Default 200. */
  readonly maxSubscribers?: number;
  /** Most open feeds per token (a browser opens one per tab). Default 20. */
  readonly maxPerToken?: number;
}

export type ChangeListener = (topics: readonly ChangeTopic[]) => void;

export class ChangeFeed {
  /** Identifies this coordinator process: a page that sees it change knows it talks to a restarted one. */
  readonly instance = randomUUID();
  private readonly coalesceMs: number;
  private readonly maxSubscribers: number;
  private readonly maxPerToken: number;
  private readonly listeners = new Map<ChangeListener, string>();
  private readonly pending = new Set<ChangeTopic>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: ChangeFeedOptions = {}) {
    this.coalesceMs = options.coalesceMs ?? 250;
    this.maxSubscribers = options.maxSubscribers ?? 200;
    this.maxPerToken = options.maxPerToken ?? 20;
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  publish(...topics: ChangeTopic[]): void {
    if (this.listeners.size === 0) return; // nobody listens: nothing to collect
    for (const t of topics) this.pending.add(t);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.coalesceMs);
      this.timer.unref?.();
    }
  }

  /** Listen (as `tokenId`); returns the function that stops listening. Throws 429 over the bounds. */
  subscribe(tokenId: string, listener: ChangeListener): () => void {
    if (this.listeners.size >= this.maxSubscribers)
      throw new OverLimitError(`the coordinator already serves ${this.maxSubscribers} live dashboards; close some tabs or try again later`, 10);
    let mine = 0;
    for (const t of this.listeners.values()) if (t === tokenId) mine++;
    if (mine >= this.maxPerToken)
      throw new OverLimitError(`this token already has ${this.maxPerToken} live dashboards open; close some tabs`, 10);
    this.listeners.set(listener, tokenId);
    return () => void this.listeners.delete(listener);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.listeners.clear();
  }

  private flush(): void {
    this.timer = null;
    const topics = [...this.pending];
    this.pending.clear();
    if (topics.length === 0) return;
    for (const l of [...this.listeners.keys()]) {
      try {
        l(topics);
      } catch {
        this.listeners.delete(l); // a broken connection: its route cleans up on close
      }
    }
  }
}
