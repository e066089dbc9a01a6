/**
 * The scheduler's plugin chain (after the Kubernetes scheduler framework's Filter/Score extension points and
 * Nomad's feasibility → rank iterators). For one job and one node:
 *
 *   filters, in order ──first rejection wins──▶ rejected (with a coded reason), or feasible ──▶ scorers ──▶ score
 *
 * A filter's `verdict` says what its rejection means: `never` — this node can never run the job, however long it
 * waits (too small, wrong labels); `busy` — not now (its capacity is taken). "Never on every node" is how the
 * pass decides that a job can never run in the grid as it is; that decision is made here, once. Prefetch is the
 * `free` filter run again with the job's prefetch factor when no node is free now.
 *
 * Every plugin is small and pure; each is table-tested in test/plugins.test.ts.
 */
import { describeConstraint, gpuRequestOf, matches, nodeAttributes, type Constraint, type GpuNeeds, type GpuRequest, type IsolationRequirement, type Resources } from '@dsg/core';
import { checkCapacity, checkFree } from './filters.js';
import { scoreNode } from './rank.js';
import type { NodeAllocation, NodeRejection, SchedulerConfig, SchedulerJob, SchedulerNode } from './types.js';
import { gpuFilter, gpuFreeFilter } from './gpu-filter.js';
import { isolationFilter } from './isolation-filter.js';
import { policyFilter } from './policy-filter.js';

/** What is being placed: one task of a job (all its tasks ask for the same). */
export interface PlacementRequest {
  readonly resources: Resources;
  readonly constraints: readonly Constraint[];
  readonly prefer: readonly Constraint[];
  /** The least isolation a node must give (absent: any). */
  readonly isolation?: IsolationRequirement;
  /** The operator's job (admin-submitted): nodes without isolation run only these unless opted in. */
  readonly operatorOwned?: boolean;
  /** Conditions on each GPU (memory, model); absent: any GPU. */
  readonly gpu?: GpuNeeds;
  /** What it asks of the node's GPU devices (from `resources.gpus` and `gpu`); absent: no GPU. */
  readonly gpuRequest?: GpuRequest;
}

/** What the plugins read about a job, built once per job per pass. */
export const requestOf = (job: SchedulerJob): PlacementRequest => {
  const gpuRequest = gpuRequestOf(job.resources, job.gpu);
  return {
    resources: job.resources, constraints: job.constraints ?? [], prefer: job.prefer ?? [],
    ...(job.isolation ? { isolation: job.isolation } : {}), operatorOwned: job.operatorOwned ?? false,
    ...(job.gpu ? { gpu: job.gpu } : {}), ...(gpuRequest ? { gpuRequest } : {}),
  };
};

/** A node with the attributes constraints are matched against, computed once per pass. */
export interface NodeView {
  readonly node: SchedulerNode;
  readonly attributes: ReadonlyMap<string, string>;
}

export const viewOf = (node: SchedulerNode): NodeView => ({ node, attributes: nodeAttributes(node.labels, node.facts ?? null) });

export interface FilterPlugin {
  readonly name: string;
  readonly verdict: 'never' | 'busy';
  /** `factor` > 1 when looking for room to prefetch into (only the capacity-in-use filter reads it). */
  filter(req: PlacementRequest, view: NodeView, allocated: NodeAllocation, factor: number): NodeRejection | null;
  /**
   * Optional fast path: the same yes/no as `filter` without building a rejection (the pass asks it for every node
   * on every placement; the reason is only built when a job fits nowhere). Must agree with `filter`.
   */
  fits?(req: PlacementRequest, view: NodeView, allocated: NodeAllocation, factor: number): boolean;
}

export interface ScorePlugin {
  readonly name: string;
  /** Scores are weighted and summed; higher is better. */
  readonly weight: number;
  score(req: PlacementRequest, view: NodeView, allocated: Resources): number;
}

/** Never: the node's labels and facts do not satisfy the job's constraints. */
export const constraintsFilter: FilterPlugin = {
  name: 'constraints',
  verdict: 'never',
  filter(req, view) {
    const failed = req.constraints.filter((c) => !matches(c, view.attributes));
    if (failed.length === 0) return null;
    const has = (c: Constraint): string => {
      const v = view.attributes.get(c.key);
      return v === undefined ? `no ${c.key}` : `${c.key}=${v}`;
    };
    return {
      nodeId: view.node.id,
      code: 'constraint_mismatch',
      message: `node ${view.node.name} does not match ${failed.map((c) => `${describeConstraint(c)} (it has ${has(c)})`).join(', ')}`,
    };
  },
};

/** Never: the node is too small even when idle. */
export const capacityFilter: FilterPlugin = {
  name: 'capacity',
  verdict: 'never',
  filter: (req, view) => checkCapacity(req.resources, view.node),
};

/** Not now: the node is big enough but what its attempts hold leaves no room (× factor when prefetching). */
export const freeFilter: FilterPlugin = {
  name: 'free',
  verdict: 'busy',
  filter: (req, view, allocated, factor) => checkFree(req.resources, view.node, allocated, factor),
  fits: (req, view, a, factor) => {
    const w = req.resources;
    const c = view.node.capacity;
    return w.cpuMillis <= c.cpuMillis * factor - a.cpuMillis && w.memoryBytes <= c.memoryBytes * factor - a.memoryBytes &&
      w.gpus <= c.gpus * factor - a.gpus && w.diskBytes <= c.diskBytes * factor - a.diskBytes;
  },
};

/** Load after placing the task: spread prefers the emptiest node, binpack the fullest. */
export const strategyScorer = (config: SchedulerConfig): ScorePlugin => ({
  name: `strategy:${config.strategy}`,
  weight: 1,
  score: (req, view, allocated) => scoreNode(config.strategy, req.resources, view.node, allocated),
});

/**
 * The fraction of the job's preferences the node satisfies. Weighted above any load difference (load scores lie
 * in [-1, 1]), so a matching node is chosen whenever one is feasible; ties fall to the strategy.
 */
export const preferScorer: ScorePlugin = {
  name: 'prefer',
  weight: 4,
  score: (req, view) => (req.prefer.length === 0 ? 0 : req.prefer.filter((c) => matches(c, view.attributes)).length / req.prefer.length),
};

export interface PluginChain {
  readonly filters: readonly FilterPlugin[];
  readonly scorers: readonly ScorePlugin[];
}

/**
 * The default chain: constraints, isolation, capacity, GPU devices (never), volunteer policy, free capacity and free
 * GPU devices (not now); preferences, then the strategy.
 */
export const defaultChain = (config: SchedulerConfig): PluginChain => ({
  filters: [constraintsFilter, isolationFilter, capacityFilter, gpuFilter, policyFilter, freeFilter, gpuFreeFilter],
  scorers: [preferScorer, strategyScorer(config)],
});

/** Run the filters; the first rejection wins. */
export function runFilters(chain: PluginChain, req: PlacementRequest, view: NodeView, allocated: NodeAllocation, factor: number): { verdict: 'never' | 'busy'; rejection: NodeRejection } | null {
  for (const f of chain.filters) {
    const r = f.filter(req, view, allocated, factor);
    if (r) return { verdict: f.verdict, rejection: r };
  }
  return null;
}

export function runScorers(chain: PluginChain, req: PlacementRequest, view: NodeView, allocated: Resources): number {
  let total = 0;
  for (const s of chain.scorers) total += s.weight * s.score(req, view, allocated);
  return total;
}
