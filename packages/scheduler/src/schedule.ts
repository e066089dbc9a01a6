/**
 * The scheduler: a pure function from (snapshot, config, context) to a plan. No I/O, no clock, no randomness
 * but the seeded `rng` in the context: the same input always gives the same plan.
 *
 * Pipeline, per queued task in queue order:
 *   1. filter  — `checkCapacity` ("never" on this node) then `checkFree` ("not now"), recording a reason per node;
 *   2. rank    — `scoreNode` by strategy among the nodes that passed; ties broken by rng;
 *   3. reserve — add the task to the chosen node's allocation in this pass, so later tasks see it.
 * If no node has room now and the task's job is known to run short tasks, it may be prefetched: filtered again
 * against `prefetchFactor(config, typicalRunMs) ×` capacity and sent to wait in an agent's local queue.
 * Tasks that fit nowhere stay queued with a PendingReason. A later task may be placed even if an earlier one
 * could not (backfill): a big task does not block small ones. Tasks with the same resource shape that failed once
 * in a pass are skipped at once, since allocations only grow within a pass (keeps a pass O(shapes × nodes) when
 * the grid is full, instead of O(tasks × nodes)).
 *
 * The plan is a proposal. The coordinator applies it in one store transaction that re-checks every assignment.
 */
import { addResources, type Resources } from '@dsg/core';
import { checkCapacity, checkFree } from './filters.js';
import { scoreNode } from './rank.js';
import { prefetchFactor, type Assignment, type NodeRejection, type PendingReason, type Plan, type ScheduleContext, type SchedulerConfig, type Snapshot } from './types.js';

const shapeKey = (r: Resources, factor: number): string => `${r.cpuMillis}/${r.memoryBytes}/${r.gpus}/${r.diskBytes}/${factor}`;

export function schedule(snapshot: Snapshot, config: SchedulerConfig, ctx: ScheduleContext): Plan {
  const nodes = [...snapshot.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const allocated = new Map(nodes.map((n) => [n.id, n.allocated] as const));
  const assignments: Assignment[] = [];
  const pending: PendingReason[] = [];
  const failedShapes = new Set<string>();

  for (const task of snapshot.queued) {
    if (assignments.length >= config.maxAssignments) break;
    const key = shapeKey(task.resources, prefetchFactor(config, task.typicalRunMs));
    if (failedShapes.has(key)) continue;

    const rejections: NodeRejection[] = [];
    let best: { index: number; score: number; tie: number } | null = null;
    let fitsSomewhereEver = false;
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      const never = checkCapacity(task.resources, node);
      if (never) {
        rejections.push(never);
        continue;
      }
      fitsSomewhereEver = true;
      const alloc = allocated.get(node.id)!;
      const busy = checkFree(task.resources, node, alloc);
      if (busy) {
        rejections.push(busy);
        continue;
      }
      const score = scoreNode(config.strategy, task.resources, node, alloc);
      if (best === null || score > best.score) best = { index: i, score, tie: ctx.rng() };
      else if (score === best.score) {
        const tie = ctx.rng();
        if (tie > best.tie) best = { index: i, score, tie };
      }
    }

    let prefetch = false;
    const factor = prefetchFactor(config, task.typicalRunMs);
    if (best === null && fitsSomewhereEver && factor > 1) {
      for (let i = 0; i < nodes.length; i++) {
        const node = nodes[i]!;
        const alloc = allocated.get(node.id)!;
        if (checkCapacity(task.resources, node) || checkFree(task.resources, node, alloc, factor)) continue;
        const score = scoreNode(config.strategy, task.resources, node, alloc);
        if (best === null || score > best.score) best = { index: i, score, tie: 0 };
      }
      prefetch = best !== null;
    }

    if (best !== null) {
      const node = nodes[best.index]!;
      allocated.set(node.id, addResources(allocated.get(node.id)!, task.resources));
      assignments.push({ taskId: task.taskId, nodeId: node.id, prefetch });
      continue;
    }
    failedShapes.add(key);
    pending.push({
      taskId: task.taskId,
      never: !fitsSomewhereEver,
      summary: summarize(nodes.length, fitsSomewhereEver, rejections),
      nodes: rejections,
    });
  }
  return { assignments, pending };
}

function summarize(nodeCount: number, fitsSomewhereEver: boolean, rejections: readonly NodeRejection[]): string {
  if (nodeCount === 0) return 'no nodes are online: start an agent (`dsg agent --coordinator URL --token T`)';
  if (!fitsSomewhereEver)
    return `no node in the grid is big enough (${rejections.map((r) => r.message).join('; ')}); it will wait until a bigger node joins`;
  return `all ${nodeCount} node(s) are busy; waiting for room`;
}
