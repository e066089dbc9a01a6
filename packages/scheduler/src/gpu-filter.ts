/**
 * The GPU filters: a job's GPU request (count; exclusive or shared by memory; model and memory conditions) against
 * a node's devices.
 *
 *   gpu      (never)   — the node has fewer GPUs than asked (`gpu_count`), fewer of the model (`gpu_model`), or fewer
 *                        of them with the memory (`gpu_memory`): waiting cannot help on this node;
 *   gpu-free (not now) — enough such GPUs exist, but what its attempts hold leaves too few free now (`gpu_busy`):
 *                        devices held whole, or shared with too little memory left.
 *
 * Judged on the node's devices with what each holds (`SchedulerNode.gpuDevices`, kept current through the pass in
 * the allocation). A node that reports no per-device state (an older coordinator's snapshot, some tests) is judged
 * on its facts for conditions and by the count alone (capacity, free) for exclusive GPUs; it never takes shared ones.
 */
import { formatSize, gpuDeviceHasRoom, gpuDeviceQualifies, type GpuDeviceUse, type GpuRequest } from '@dsg/core';
import { chooseGpus } from './choose-gpus.js';
import type { FilterPlugin, PlacementRequest } from './plugins.js';
import type { NodeAllocation, NodeRejection, SchedulerNode } from './types.js';

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const gi = (b: number): string => `${+(b / 2 ** 30).toFixed(1)}Gi`;

/** What the request asks of each device, in words: "shared, 8Gi each, RTX 4090 or A100". */
export function describeGpuRequest(r: GpuRequest): string {
  const parts = [r.shared ? `${plural(r.count, 'shared GPU')} with ${formatSize(r.memoryBytes ?? 0)} free each` : plural(r.count, 'whole GPU')];
  if (!r.shared && r.memoryBytes !== null) parts.push(`at least ${gi(r.memoryBytes)} each`);
  if (r.models !== null) parts.push(r.models.join(' or '));
  return parts.join(', ');
}

const listDevices = (ds: readonly { model: string; memoryBytes: number }[]): string =>
  ds.length === 0 ? 'no GPUs' : ds.map((g) => `${g.model} ${gi(g.memoryBytes)}`).join(', ');

/** The devices of a node as judged for "never": its per-device state, else its facts (idle), else none known. */
const devicesOf = (node: SchedulerNode): readonly { model: string; memoryBytes: number }[] | null =>
  node.gpuDevices ?? (node.facts && node.facts.gpus.length > 0 ? node.facts.gpus : null);

export function checkGpuNever(req: GpuRequest, node: SchedulerNode): NodeRejection | null {
  const devices = devicesOf(node);
  if (devices === null) {
    // No GPU list (an older agent, or none): whole GPUs without conditions are the capacity filter's to judge by
    // count; conditions cannot be checked, and a share needs per-device state.
    if (req.shared) return { nodeId: node.id, code: 'gpu_count', message: `node ${node.name} reports no GPU devices, so it cannot share one` };
    if (req.models !== null) return { nodeId: node.id, code: 'gpu_model', message: `node ${node.name} reports no GPU devices, so none can be of model ${req.models.join(' or ')}` };
    if (req.memoryBytes !== null) return { nodeId: node.id, code: 'gpu_memory', message: `node ${node.name} reports no GPU devices, so none can be known to have ${gi(req.memoryBytes)}` };
    return null;
  }
  if (req.shared && !node.gpuDevices)
    return { nodeId: node.id, code: 'gpu_count', message: `node ${node.name} reports no per-device GPU state, so it cannot share one` };
  if (devices.length < req.count)
    return { nodeId: node.id, code: 'gpu_count', message: `node ${node.name} has ${plural(devices.length, 'GPU')}, ${req.count} needed (it has ${listDevices(devices)})` };
  const model = req.models === null ? devices : devices.filter((d) => gpuDeviceQualifies(d, { ...req, memoryBytes: null }));
  if (model.length < req.count)
    return { nodeId: node.id, code: 'gpu_model', message: `node ${node.name} has ${plural(model.length, 'GPU')} of model ${req.models!.join(' or ')}, ${req.count} needed (it has ${listDevices(devices)})` };
  const mem = model.filter((d) => gpuDeviceQualifies(d, req));
  if (mem.length < req.count)
    return {
      nodeId: node.id, code: 'gpu_memory',
      message: `node ${node.name} has ${plural(mem.length, 'GPU')} with ${gi(req.memoryBytes ?? 0)} of memory${req.models ? ` (${req.models.join(' or ')})` : ''}, ${req.count} needed (it has ${listDevices(devices)})`,
    };
  return null;
}

export function checkGpuFree(req: GpuRequest, node: SchedulerNode, devices: readonly GpuDeviceUse[] | undefined): NodeRejection | null {
  if (!devices || chooseGpus(devices, req) !== null) return null;
  const room = devices.filter((d) => gpuDeviceQualifies(d, req) && gpuDeviceHasRoom(d, req)).length;
  const held = devices.map((d) => `${d.index}: ${d.exclusive ? 'held whole' : d.sharedTasks > 0 ? `${gi(d.memoryBytes - d.sharedBytes)} of ${gi(d.memoryBytes)} free, ${plural(d.sharedTasks, 'task')}` : 'free'}`).join('; ');
  return { nodeId: node.id, code: 'gpu_busy', message: `node ${node.name} has ${room} of the ${req.count} GPUs it needs free now (${describeGpuRequest(req)}; ${held})` };
}

/** Never: too few GPUs of the count, model or memory asked, however long it waits. */
export const gpuFilter: FilterPlugin = {
  name: 'gpu',
  verdict: 'never',
  filter: (req: PlacementRequest, view) => (req.gpuRequest ? checkGpuNever(req.gpuRequest, view.node) : null),
};

/** Not now: such GPUs exist, but too few are free (held whole, or without the memory left to share). */
export const gpuFreeFilter: FilterPlugin = {
  name: 'gpu-free',
  verdict: 'busy',
  filter: (req: PlacementRequest, view, allocated: NodeAllocation) => (req.gpuRequest ? checkGpuFree(req.gpuRequest, view.node, allocated.gpuDevices) : null),
  fits: (req: PlacementRequest, _view, allocated: NodeAllocation) => !req.gpuRequest || !allocated.gpuDevices || chooseGpus(allocated.gpuDevices, req.gpuRequest) !== null,
};
