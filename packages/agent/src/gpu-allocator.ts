/**
 * GpuAllocator: which of this node's GPUs each task holds, whole or as a share of its memory. The coordinator's
 * scheduler chooses the devices (per-device accounting; the store re-checks them when it applies the plan) and the
 * agent hands over exactly those — but it trusts nobody's arithmetic with a device: it refuses an assignment naming a
 * device it has given out whole, or a share beyond a device's memory (core's `checkGpuGrants`, the same rule), so a
 * rogue or confused coordinator cannot double-book a GPU.
 *
 *   claim(key, grants) ──fits what live tasks hold──▶ granted (held until release)
 *                      ──fits only once a task that is being stopped has gone──▶ waits for its release ──▶ granted
 *                      ──does not fit (a live task holds it, beyond memory, unknown device, malformed)──▶ refused
 *   acquire(n, needs)  (an older coordinator that sends no devices) ──n free whole GPUs──▶ granted, or waits in
 *                      arrival order, or is refused at once when this node can never give them
 *   abandon(key, why): a waiting request is dropped; a holder is marked as ending (its process is being stopped)
 *   release(key):      its devices are free (its process is gone)
 *
 * Waiting for an ending holder matters because the coordinator frees a device when it commits an attempt's end —
 * after a timeout or a cancel it may do so while the process is still in its kill grace here.
 */
import { checkGpuGrants, describeGpuNeeds, gpuQualifies, type GpuDeviceUse, type GpuGrant, type GpuNeeds, type NodeFacts } from '@dsg/core';

export type Gpu = NodeFacts['gpus'][number];

interface Waiter {
  readonly key: string;
  readonly count: number;
  readonly needs: GpuNeeds | null;
  readonly resolve: (gpus: Gpu[]) => void;
  readonly reject: (e: Error) => void;
}

interface ClaimWaiter {
  readonly key: string;
  readonly grants: readonly GpuGrant[];
  readonly resolve: (gpus: Gpu[]) => void;
  readonly reject: (e: Error) => void;
}

export class GpuAllocator {
  /** GPU index → the key (attempt id) holding it whole. */
  private readonly held = new Map<number, string>();
  /** GPU index → key → GPU memory (bytes) each sharing task holds. */
  private readonly shares = new Map<number, Map<string, number>>();
  /** Holders whose process is being stopped: what they hold is about to be free. */
  private readonly ending = new Set<string>();
  private readonly waiting: Waiter[] = [];
  private readonly claims: ClaimWaiter[] = [];

  constructor(readonly gpus: readonly Gpu[]) {}

  /** The GPUs `key` holds now (whole or shared). */
  holding(key: string): Gpu[] {
    return this.gpus.filter((g) => this.held.get(g.index) === key || this.shares.get(g.index)?.has(key));
  }

  /** Each device with what its holders have, leaving out `skip` (holders being stopped). */
  private use(skip: ReadonlySet<string> | null): GpuDeviceUse[] {
    return this.gpus.map((g) => {
      const whole = this.held.get(g.index);
      let sharedBytes = 0;
      let sharedTasks = 0;
      for (const [k, b] of this.shares.get(g.index) ?? []) {
        if (skip?.has(k)) continue;
        sharedBytes += b;
        sharedTasks++;
      }
      return { index: g.index, model: g.model, memoryBytes: g.memoryBytes, exclusive: whole !== undefined && !skip?.has(whole), sharedBytes, sharedTasks };
    });
  }

  private pick(count: number, needs: GpuNeeds | null): Gpu[] | null {
    const free = this.gpus.filter((g) => !this.held.has(g.index) && !(this.shares.get(g.index)?.size) && gpuQualifies(g, needs));
    return free.length >= count ? free.slice(0, count) : null;
  }

  /**
   * Take exactly the devices the coordinator chose. Rejects (with why) grants that are malformed, name a device
   * this node does not offer, or do not fit beside what live tasks hold; waits when they fit once tasks being stopped
   * have gone.
   */
  claim(key: string, grants: readonly GpuGrant[]): Promise<Gpu[]> {
    const bad = malformed(grants);
    if (bad) return Promise.reject(new Error(`refused GPU devices from the coordinator: ${bad}`));
    const req = requestOfGrants(grants);
    const live = checkGpuGrants(this.use(this.ending), grants, req);
    if (live !== null) return Promise.reject(new Error(`refused GPU devices from the coordinator: ${live}`));
    if (checkGpuGrants(this.use(null), grants, req) === null) return Promise.resolve(this.take(key, grants));
    return new Promise((resolve, reject) => this.claims.push({ key, grants, resolve, reject }));
  }

  private take(key: string, grants: readonly GpuGrant[]): Gpu[] {
    for (const g of grants) {
      if (g.memoryBytes === null) this.held.set(g.index, key);
      else {
        let m = this.shares.get(g.index);
        if (!m) this.shares.set(g.index, (m = new Map()));
        m.set(key, g.memoryBytes);
      }
    }
    return grants.map((g) => this.gpus.find((x) => x.index === g.index)!);
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
    for (const m of this.shares.values()) m.delete(key);
    this.ending.delete(key);
    this.pump();
  }

  /** Drop a waiting request (cancelled): it rejects with `why`. A holder is marked as ending: its devices free soon. */
  abandon(key: string, why: string): void {
    const i = this.waiting.findIndex((w) => w.key === key);
    if (i >= 0) this.waiting.splice(i, 1)[0]!.reject(new Error(why));
    const j = this.claims.findIndex((w) => w.key === key);
    if (j >= 0) this.claims.splice(j, 1)[0]!.reject(new Error(why));
    if (this.holding(key).length > 0) this.ending.add(key);
    this.pump();
  }

  private pump(): void {
    for (let i = 0; i < this.claims.length;) {
      const w = this.claims[i]!;
      const req = requestOfGrants(w.grants);
      if (checkGpuGrants(this.use(null), w.grants, req) === null) {
        this.claims.splice(i, 1);
        w.resolve(this.take(w.key, w.grants));
      } else if (checkGpuGrants(this.use(this.ending), w.grants, req) !== null) {
        // What it waited for went to a live task meanwhile: refuse rather than wait for a task that is not ending.
        this.claims.splice(i, 1);
        w.reject(new Error('refused GPU devices from the coordinator: another task now holds them'));
      } else i++;
    }
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

/** The request a grant list stands for (all whole, or all shares of one size; `malformed` has checked that). */
const requestOfGrants = (grants: readonly GpuGrant[]) => ({
  count: grants.length, shared: grants[0]!.memoryBytes !== null, memoryBytes: grants[0]!.memoryBytes, models: null,
});

/** Why a grant list from the coordinator is not even well-formed, or null. It crossed a boundary: trust nothing. */
function malformed(grants: unknown): string | null {
  if (!Array.isArray(grants) || grants.length === 0 || grants.length > 64) return 'expected 1 to 64 devices';
  const first = (grants[0] as GpuGrant | undefined)?.memoryBytes;
  for (const g of grants as unknown[]) {
    if (typeof g !== 'object' || g === null) return 'expected { index, memoryBytes } per device';
    const { index, memoryBytes } = g as Record<string, unknown>;
    if (!Number.isSafeInteger(index) || (index as number) < 0) return `bad device index ${JSON.stringify(index)}`;
    if (memoryBytes !== null && (!Number.isSafeInteger(memoryBytes) || (memoryBytes as number) <= 0)) return `bad GPU memory ${JSON.stringify(memoryBytes)} for device ${index as number}`;
    if ((memoryBytes === null) !== (first === null) || (memoryBytes !== null && memoryBytes !== first)) return 'mixed whole and shared devices, or shares of different sizes';
  }
  return null;
}

/**
 * The environment that hands a task its GPUs, and hides the others: CUDA (by uuid where known), ROCm, the NVIDIA
 * container runtime, and `DSG_GPUS` (indexes) for programs that choose devices themselves. A task without GPUs
 * gets empty lists, so it cannot pick up a device the grid gave another task.
 */
export function gpuEnv(gpus: readonly Gpu[], sharedMemoryBytes: number | null = null): Record<string, string> {
  const nvidia = gpus.filter((g) => (g.vendor ?? 'nvidia') === 'nvidia');
  const amd = gpus.filter((g) => g.vendor === 'amd');
  const cuda = nvidia.every((g) => g.uuid) ? nvidia.map((g) => g.uuid!).join(',') : nvidia.map((g) => String(g.index)).join(',');
  return {
    CUDA_VISIBLE_DEVICES: cuda,
    NVIDIA_VISIBLE_DEVICES: cuda === '' ? 'void' : cuda,
    ROCR_VISIBLE_DEVICES: amd.map((g) => (g.uuid ? g.uuid : String(g.index))).join(','),
    DSG_GPUS: gpus.map((g) => String(g.index)).join(','),
    // A shared GPU: the GPU memory the task declared, which it must keep to (e.g. PyTorch's per-process fraction).
    ...(sharedMemoryBytes !== null && gpus.length > 0 ? { DSG_GPU_MEMORY_BYTES: String(sharedMemoryBytes) } : {}),
  };
}
