/**
 * GPUs as devices: what a task asks for, what each of a node's GPUs holds, and the one rule every layer checks a
 * device grant against (the scheduler when it chooses, the store when it applies a plan, the agent when it starts a
 * task), so a GPU's memory is never given out twice:
 *
 *   a device is   free ──exclusive grant──▶ held whole (by one task; nothing else may use it)
 *                 free ──shared grant(s)──▶ shared (tasks that each declared their GPU memory; their sum ≤ its memory)
 *
 * An exclusive grant needs a device nobody uses; a shared grant needs a device that no task holds whole and has its
 * declared memory still free. Pure: no I/O, runs in the browser too.
 */
import type { NodeFacts } from './protocol.js';
import type { Resources } from './resources.js';
import { describeGpuNeeds, type GpuNeeds } from './spec.js';

export type GpuFacts = NodeFacts['gpus'][number];

/**
 * One device given to one attempt, by its index on the node. `memoryBytes` null: the whole device, exclusively;
 * a number: that much of its memory, beside other sharing tasks.
 */
export interface GpuGrant {
  readonly index: number;
  readonly memoryBytes: number | null;
}

/** At most this many tasks share one GPU (a bound on a count the agent and the store keep, and on wire sizes). */
export const MAX_TASKS_PER_SHARED_GPU = 64;

/** What a task asks for, in one shape: exclusive whole devices (`resources.gpus`) or shares of devices (`gpu.shared`). */
export interface GpuRequest {
  readonly count: number;
  readonly shared: boolean;
  /** Shared: the GPU memory it uses on each device. Exclusive: the least memory each device must have (null: any). */
  readonly memoryBytes: number | null;
  /** Acceptable models (substrings, any case); null: any. */
  readonly models: readonly string[] | null;
}

/** The request a job's compiled resources and GPU needs make, or null when its tasks use no GPU. */
export function gpuRequestOf(resources: Resources, needs: GpuNeeds | null | undefined): GpuRequest | null {
  if (needs?.shared) return { count: needs.count ?? 1, shared: true, memoryBytes: needs.memoryBytes, models: needs.models };
  if (resources.gpus <= 0) return null;
  return { count: resources.gpus, shared: false, memoryBytes: needs?.memoryBytes ?? null, models: needs?.models ?? null };
}

/** One of a node's GPUs and what its attempts hold of it now. */
export interface GpuDeviceUse {
  readonly index: number;
  readonly model: string;
  readonly memoryBytes: number;
  /** Held whole by one task. */
  readonly exclusive: boolean;
  /** GPU memory declared by the tasks sharing it. */
  readonly sharedBytes: number;
  /** How many tasks share it. */
  readonly sharedTasks: number;
}

/** Each GPU of a node with what the given grants (its active attempts') hold of it. Grants of unknown devices are ignored. */
export function gpuDeviceUse(gpus: readonly GpuFacts[], held: Iterable<readonly GpuGrant[]>): GpuDeviceUse[] {
  // A repeated index (facts are validated unique; older rows may not be) keeps its first device only.
  const seen = new Set<number>();
  let out: GpuDeviceUse[] = gpus.filter((g) => !seen.has(g.index) && seen.add(g.index)).map((g) => ({ index: g.index, model: g.model, memoryBytes: g.memoryBytes, exclusive: false, sharedBytes: 0, sharedTasks: 0 }));
  for (const grants of held) out = addGpuGrants(out, grants);
  return out;
}

/** The devices after these grants are added (a new array; the input is not changed). */
export function addGpuGrants(devices: readonly GpuDeviceUse[], grants: readonly GpuGrant[]): GpuDeviceUse[] {
  const out = [...devices];
  for (const g of grants) {
    const i = out.findIndex((d) => d.index === g.index);
    if (i < 0) continue;
    const d = out[i]!;
    out[i] = g.memoryBytes === null ? { ...d, exclusive: true } : { ...d, sharedBytes: d.sharedBytes + g.memoryBytes, sharedTasks: d.sharedTasks + 1 };
  }
  return out;
}

/** Does this device meet the request's conditions when idle (model; memory: at least, or room for the share)? */
export function gpuDeviceQualifies(d: { readonly model: string; readonly memoryBytes: number }, req: GpuRequest): boolean {
  if (req.memoryBytes !== null && d.memoryBytes < req.memoryBytes) return false;
  if (req.models !== null) {
    const name = d.model.toLowerCase();
    if (!req.models.some((m) => name.includes(m.toLowerCase()))) return false;
  }
  return true;
}

/** Can the device take one more task of this request now? */
export function gpuDeviceHasRoom(d: GpuDeviceUse, req: GpuRequest): boolean {
  if (d.exclusive) return false;
  if (!req.shared) return d.sharedTasks === 0;
  return d.sharedTasks < MAX_TASKS_PER_SHARED_GPU && d.memoryBytes - d.sharedBytes >= (req.memoryBytes ?? 0);
}

/**
 * Why these grants cannot be given to a task of this request on these devices now, or null when they can: the
 * right number of distinct devices, each on the node, meeting the conditions, exclusive grants on devices nobody
 * uses, shared grants of exactly the declared memory on devices with that much free and no exclusive holder.
 */
export function checkGpuGrants(devices: readonly GpuDeviceUse[], grants: readonly GpuGrant[], req: GpuRequest): string | null {
  if (grants.length !== req.count) return `${grants.length} GPU${grants.length === 1 ? '' : 's'} given, ${req.count} asked for`;
  const seen = new Set<number>();
  for (const g of grants) {
    if (seen.has(g.index)) return `GPU ${g.index} given twice to one task`;
    seen.add(g.index);
    const d = devices.find((x) => x.index === g.index);
    if (!d) return `GPU ${g.index} is not one of this node's GPUs (${devices.map((x) => x.index).join(', ') || 'none'})`;
    if (req.shared !== (g.memoryBytes !== null)) return `GPU ${g.index} given ${g.memoryBytes === null ? 'whole' : 'as a share'}, the task asked for ${req.shared ? 'a share' : 'it whole'}`;
    if (req.shared && g.memoryBytes !== req.memoryBytes) return `GPU ${g.index} given with ${g.memoryBytes} bytes, the task declared ${req.memoryBytes}`;
    if (!gpuDeviceQualifies(d, req)) return `GPU ${g.index} (${d.model}) does not have ${describeGpuNeeds({ memoryBytes: req.memoryBytes, models: req.models })}`;
    if (d.exclusive) return `GPU ${g.index} is held whole by another task`;
    if (!req.shared && d.sharedTasks > 0) return `GPU ${g.index} is shared by ${d.sharedTasks} task${d.sharedTasks === 1 ? '' : 's'}`;
    if (req.shared && !gpuDeviceHasRoom(d, req)) return `GPU ${g.index} has ${d.memoryBytes - d.sharedBytes} bytes of memory free, ${req.memoryBytes} needed`;
  }
  return null;
}

/**
 * GPUs charged for an attempt (ledger GPU-seconds per second of wall time): 1 per device held whole, the declared
 * fraction of its memory per shared device. Without grants (an older coordinator's attempt): the count it held.
 */
export function gpuUnits(grants: readonly GpuGrant[] | null, gpus: number, deviceMemory: (index: number) => number | undefined): number {
  if (!grants || grants.length === 0) return gpus;
  let units = 0;
  for (const g of grants) {
    if (g.memoryBytes === null) units += 1;
    else {
      const total = deviceMemory(g.index);
      units += total && total > 0 ? Math.min(1, g.memoryBytes / total) : 1;
    }
  }
  return units;
}

/** `0, 1` or `0 (8Gi shared)`: a grant list for tables. */
export function describeGpuGrants(grants: readonly GpuGrant[]): string {
  return grants.map((g) => (g.memoryBytes === null ? String(g.index) : `${g.index} (${+(g.memoryBytes / 2 ** 30).toFixed(1)}Gi shared)`)).join(', ');
}
