/**
 * GpuAllocator: which of this node's GPUs each running task holds. The coordinator counts GPUs per node; the agent
 * decides which devices a task gets (as Slurm's node daemon binds GRES and a Kubernetes device plugin allocates
 * devices), so two tasks never share an exclusive GPU:
 *
 *   acquire(n, needs) ──n free GPUs that meet `needs`──▶ granted (held until release)
 *                     ──not now──▶ waits in arrival order ──a release frees enough──▶ granted
 *                     ──never (fewer such GPUs on this node)──▶ rejected at once, with why
 *   abandon(key): a waiting request is dropped (its attempt was cancelled or the agent stops)
 *
 * Waiting happens only when the coordinator sent more GPU work than is free (a prefetched task, or conditions only
 * some GPUs meet): the count the coordinator keeps already bounds the total. Lowest free indexes are taken first,
 * so which GPU a task gets is predictable in logs.
 */
import { describeGpuNeeds, gpuQualifies, type GpuNeeds, type NodeFacts } from '@dsg/core';

export type Gpu = NodeFacts['gpus'][number];

interface Waiter {
  readonly key: string;
  readonly count: number;
  readonly needs: GpuNeeds | null;
  readonly resolve: (gpus: Gpu[]) => void;
  readonly reject: (e: Error) => void;
}

export class GpuAllocator {
  /** GPU index → the key (attempt id) holding it. */
  private readonly held = new Map<number, string>();
  private readonly waiting: Waiter[] = [];

  constructor(readonly gpus: readonly Gpu[]) {}

  /** The GPUs `key` holds now. */
  holding(key: string): Gpu[] {
    return this.gpus.filter((g) => this.held.get(g.index) === key);
  }

  private pick(count: number, needs: GpuNeeds | null): Gpu[] | null {
    const free = this.gpus.filter((g) => !this.held.has(g.index) && gpuQualifies(g, needs));
    return free.length >= count ? free.slice(0, count) : null;
  }

  acquire(key: string, count: number, needs: GpuNeeds | null = null): Promise<Gpu[]> {
    if (count <= 0) return Promise.resolve([]);
    const able = this.gpus.filter((g) => gpuQualifies(g, needs)).length;
    if (able < count) {
      const what = needs ? ` with ${describeGpuNeeds(needs)}` : '';
      return Promise.reject(new Error(`this node has ${able} GPU${able === 1 ? '' : 's'}${what} it may share, ${count} needed`));
    }
    // Arrival order: a request never overtakes an earlier one that waits for the same GPUs.
    const got = this.waiting.length === 0 ? this.pick(count, needs) : null;
    if (got) {
      for (const g of got) this.held.set(g.index, key);
      return Promise.resolve(got);
    }
    return new Promise((resolve, reject) => this.waiting.push({ key, count, needs, resolve, reject }));
  }

  release(key: string): void {
    for (const [i, k] of [...this.held]) if (k === key) this.held.delete(i);
    this.pump();
  }

  /** Drop a waiting request (cancelled): it rejects with `why`. Holding nothing, nothing else changes. */
  abandon(key: string, why: string): void {
    const i = this.waiting.findIndex((w) => w.key === key);
    if (i >= 0) this.waiting.splice(i, 1)[0]!.reject(new Error(why));
    this.pump();
  }

  private pump(): void {
    while (this.waiting.length > 0) {
      const w = this.waiting[0]!;
      const got = this.pick(w.count, w.needs);
      if (!got) return;
      this.waiting.shift();
      for (const g of got) this.held.set(g.index, w.key);
      w.resolve(got);
    }
  }
}

/**
 * The environment that hands a task its GPUs, and hides the others: CUDA (by uuid where known), ROCm, the NVIDIA
 * container runtime, and `DSG_GPUS` (indexes) for programs that choose devices themselves. A task without GPUs
 * gets empty lists, so it cannot pick up a device the grid gave another task.
 */
export function gpuEnv(gpus: readonly Gpu[]): Record<string, string> {
  const nvidia = gpus.filter((g) => (g.vendor ?? 'nvidia') === 'nvidia');
  const amd = gpus.filter((g) => g.vendor === 'amd');
  const cuda = nvidia.every((g) => g.uuid) ? nvidia.map((g) => g.uuid!).join(',') : nvidia.map((g) => String(g.index)).join(',');
  return {
    CUDA_VISIBLE_DEVICES: cuda,
    NVIDIA_VISIBLE_DEVICES: cuda === '' ? 'void' : cuda,
    ROCR_VISIBLE_DEVICES: amd.map((g) => (g.uuid ? g.uuid : String(g.index))).join(','),
    DSG_GPUS: gpus.map((g) => String(g.index)).join(','),
  };
}
