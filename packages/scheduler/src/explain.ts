/**
 * Why is my job pending? (HTCondor's `-better-analyze`, HyperQueue's `task explain`.) Runs the same plugin chain the
 * pass runs, for one job against every node, and counts per filter how many nodes it rejects and why. Pure.
 */
import { defaultChain, requestOf, runScorers, viewOf, type PluginChain } from './plugins.js';
import { estimatedStart } from './reservation.js';
import { allocationOf, type SchedulerConfig, type SchedulerJob, type SchedulerNode } from './types.js';

export interface FilterCount {
  readonly filter: string;
  readonly verdict: 'never' | 'busy';
  /** Nodes this filter rejected (each node counts once, at the first filter that rejects it). */
  readonly rejected: number;
}

export interface NodeVerdict {
  readonly nodeId: string;
  readonly name: string;
  /** The filter that rejected it, or null when a task fits there now. */
  readonly filter: string | null;
  readonly verdict: 'never' | 'busy' | 'fits';
  readonly message: string | null;
  /** The chain's score where it fits (higher is chosen first). */
  readonly score: number | null;
}

export type ExplainVerdict = 'placeable' | 'not_now' | 'never' | 'throttled' | 'no_nodes';

export interface Explanation {
  readonly verdict: ExplainVerdict;
  readonly summary: string;
  readonly filters: readonly FilterCount[];
  readonly nodes: readonly NodeVerdict[];
  /**
   * For a job that waits for room ("not now"): the epoch ms by which one of its tasks fits at the latest — the
   * earliest node where enough of the running tasks must have ended by their timeouts (`SchedulerNode.releases`).
   * Null when no node gives an estimate (releases unknown) or the job is not waiting for room. Work ahead of it in
   * the queue may take that room first; a task that ends before its timeout frees it sooner.
   */
  readonly startBy: number | null;
}

export function explainJob(job: SchedulerJob, nodes: readonly SchedulerNode[], config: SchedulerConfig, chain: PluginChain = defaultChain(config), now = 0): Explanation {
  const req = requestOf(job);
  const counts = new Map(chain.filters.map((f) => [f.name, 0]));
  const verdicts: NodeVerdict[] = [];
  for (const node of [...nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const view = viewOf(node);
    let v: NodeVerdict | null = null;
    for (const f of chain.filters) {
      const r = f.filter(req, view, allocationOf(node), 1);
      if (r) {
        counts.set(f.name, (counts.get(f.name) ?? 0) + 1);
        v = { nodeId: node.id, name: node.name, filter: f.name, verdict: f.verdict, message: r.message, score: null };
        break;
      }
    }
    verdicts.push(v ?? { nodeId: node.id, name: node.name, filter: null, verdict: 'fits', message: null, score: runScorers(chain, req, view, node.allocated) });
  }
  const filters = chain.filters.map((f) => ({ filter: f.name, verdict: f.verdict, rejected: counts.get(f.name) ?? 0 }));
  const fits = verdicts.filter((v) => v.verdict === 'fits').length;
  const ever = verdicts.filter((v) => v.verdict !== 'never').length;
  const cap = job.parallelism ?? null;
  let verdict: ExplainVerdict;
  let summary: string;
  if (nodes.length === 0) {
    verdict = 'no_nodes';
    summary = 'no nodes are online: start an agent (`dsg agent --coordinator URL --token T`)';
  } else if (ever === 0) {
    verdict = 'never';
    summary = `no node in the grid can ever run it: ${filters.filter((f) => f.rejected > 0).map((f) => `${f.rejected} rejected by ${f.filter}`).join(', ')}`;
  } else if (cap !== null && (job.active ?? 0) >= cap) {
    verdict = 'throttled';
    summary = `throttled: parallelism ${cap} reached (${job.active} of its tasks on nodes); the next starts when one ends`;
  } else if (fits === 0) {
    verdict = 'not_now';
    summary = `${ever} of ${nodes.length} node(s) could run it but none has room now; it starts when one frees up`;
  } else {
    verdict = 'placeable';
    summary = `${fits} node(s) have room now; the next dispatch pass places it unless work ahead of it in the queue takes the room`;
  }
  let startBy: number | null = null;
  if (verdict === 'not_now') {
    for (const v of verdicts) {
      if (v.verdict !== 'busy') continue;
      const node = nodes.find((n) => n.id === v.nodeId)!;
      const at = estimatedStart(job.resources, node, node.allocated, now);
      if (at !== null && (startBy === null || at < startBy)) startBy = at;
    }
  }
  return { verdict, summary, filters, nodes: verdicts, startBy };
}
