/**
 * Rankers: score a feasible node for a task; higher is better. Pure.
 * Load is the larger of the CPU and memory fractions the node would have in use after placing the task.
 */
import type { Resources } from '@dsg/core';
import type { SchedulerNode, Strategy } from './types.js';

export function loadAfter(want: Resources, node: SchedulerNode, allocated: Resources): number {
  const cpu = node.capacity.cpuMillis > 0 ? (allocated.cpuMillis + want.cpuMillis) / node.capacity.cpuMillis : 1;
  const mem = node.capacity.memoryBytes > 0 ? (allocated.memoryBytes + want.memoryBytes) / node.capacity.memoryBytes : 1;
  return Math.max(cpu, mem);
}

/** Spread prefers the emptiest node; binpack the fullest. */
export function scoreNode(strategy: Strategy, want: Resources, node: SchedulerNode, allocated: Resources): number {
  const load = loadAfter(want, node, allocated);
  switch (strategy) {
    case 'spread':
      return -load;
    case 'binpack':
      return load;
  }
}
