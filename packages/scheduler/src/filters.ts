/**
 * Feasibility filters: each looks at one node for one task and says yes, or no with a coded reason.
 * Pure functions; the scheduler runs them in order and keeps the first rejection per node.
 */
import { formatSize, type Resources } from '@dsg/core';
import type { NodeRejection, SchedulerNode } from './types.js';

const cores = (millis: number): string => `${Number((millis / 1000).toFixed(3))}`;

/** "Never": the node is too small for the task even when idle. */
export function checkCapacity(want: Resources, node: SchedulerNode): NodeRejection | null {
  const c = node.capacity;
  const parts: string[] = [];
  if (want.cpuMillis > c.cpuMillis) parts.push(`${cores(want.cpuMillis)} cores > ${cores(c.cpuMillis)}`);
  if (want.memoryBytes > c.memoryBytes) parts.push(`${formatSize(want.memoryBytes)} memory > ${formatSize(c.memoryBytes)}`);
  if (want.gpus > c.gpus) parts.push(`${want.gpus} GPUs > ${c.gpus}`);
  if (want.diskBytes > c.diskBytes) parts.push(`${formatSize(want.diskBytes)} disk > ${formatSize(c.diskBytes)}`);
  if (parts.length === 0) return null;
  return { nodeId: node.id, code: 'exceeds_capacity', message: `node ${node.name} is too small: ${parts.join(', ')}` };
}

/** "Not now": the node is big enough but busy. `factor` > 1 allows prefetching beyond the capacity. */
export function checkFree(want: Resources, node: SchedulerNode, allocated: Resources, factor = 1): NodeRejection | null {
  const n = node.capacity;
  const c = factor === 1 ? n : { cpuMillis: n.cpuMillis * factor, memoryBytes: n.memoryBytes * factor, gpus: n.gpus * factor, diskBytes: n.diskBytes * factor };
  if (want.cpuMillis > c.cpuMillis - allocated.cpuMillis)
    return { nodeId: node.id, code: 'insufficient_cpu', message: `node ${node.name} has ${cores(c.cpuMillis - allocated.cpuMillis)} of ${cores(c.cpuMillis)} cores free` };
  if (want.memoryBytes > c.memoryBytes - allocated.memoryBytes)
    return { nodeId: node.id, code: 'insufficient_memory', message: `node ${node.name} has ${formatSize(c.memoryBytes - allocated.memoryBytes)} memory free` };
  if (want.gpus > c.gpus - allocated.gpus)
    return { nodeId: node.id, code: 'insufficient_gpus', message: `node ${node.name} has ${c.gpus - allocated.gpus} GPUs free` };
  if (want.diskBytes > c.diskBytes - allocated.diskBytes)
    return { nodeId: node.id, code: 'insufficient_disk', message: `node ${node.name} has ${formatSize(c.diskBytes - allocated.diskBytes)} disk free` };
  return null;
}
