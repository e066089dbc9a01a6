/**
 * Wire types of the dashboard's read models: the grid overview, a node's active attempts and the change feed
 * (`GET /api/v1/events`, server-sent events). Versioned like the rest of the v1 wire format.
 */
import type { NodeState } from './wire.js';

/** What a change event says changed; the page refetches what it shows of these. */
export const CHANGE_TOPICS = ['jobs', 'workflows', 'nodes', 'joins'] as const;
export type ChangeTopic = (typeof CHANGE_TOPICS)[number];

/** One `change` event on the feed: the topics changed since the last event (coalesced, at most a few per second). */
export interface ChangeEventV1 {
  topics: ChangeTopic[];
  /** Milliseconds since the epoch on the coordinator when the event was sent. */
  at: number;
}

/** The `hello` event a feed starts with: which coordinator process answers (a new one after a restart). */
export interface FeedHelloV1 {
  instance: string;
  /** How often a comment line keeps the connection open, in ms. */
  keepAliveMs: number;
}

export interface ResourceUseV1 {
  used: number;
  total: number;
}

/** `GET /api/v1/overview`: the grid at a glance. */
export interface OverviewV1 {
  at: string;
  nodes: Record<NodeState, number> & { draining: number; cordoned: number };
  cores: ResourceUseV1;
  memoryBytes: ResourceUseV1;
  gpus: ResourceUseV1;
  /** Queued tasks (waiting for a node) per project, largest first (at most 50 projects). */
  queue: Array<{ project: string; queued: number; running: number }>;
  /**
   * Tasks that finished (succeeded or failed) per minute over the last hour, oldest first, 60 buckets; the last
   * bucket is the current minute. Counted by the coordinator as attempts end: it starts empty after a restart.
   */
  throughput: { bucketStart: string; succeeded: number; failed: number }[];
  /** The latest failed jobs (at most 10), with the reason of one failed task. */
  recentFailures: Array<{ jobId: string; name: string; project: string; finishedAt: string | null; failed: number; task: number | null; reason: string | null }>;
}

/** `GET /api/v1/nodes/:id/attempts`: what a node runs now. */
export interface NodeAttemptV1 {
  attemptId: string;
  jobId: string;
  jobName: string;
  taskIndex: number;
  state: 'assigned' | 'running';
  startedAt: string | null;
  assignedAt: string;
}
