/**
 * The compiled spec and inputs of recent jobs, so that building an assignment needs no store read.
 * Jobs are immutable once accepted, so the cache never goes stale; it is bounded and refills from the store.
 */
import type { CompiledJobSpec, JobId, WireInputFile } from '@dsg/core';
import type { Store } from '@dsg/store';

export interface CachedJob {
  readonly name: string;
  readonly compiled: CompiledJobSpec;
  readonly inputs: readonly WireInputFile[];
  /** Submitted with an admin token (the operator's job; see auth.ts `isOperatorOwned`). */
  readonly operatorOwned: boolean;
  /** A stage of a workflow: its tasks' ends may release the next stages' tasks. */
  readonly inWorkflow: boolean;
}

export class JobCache {
  private readonly map = new Map<JobId, CachedJob>();
  constructor(private readonly store: Store, private readonly max = 2000) {}

  put(id: JobId, job: CachedJob): void {
    this.map.delete(id);
    this.map.set(id, job);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }

  /** The cached job, without reading the store (null when not cached). */
  peek(id: JobId): CachedJob | null {
    return this.map.get(id) ?? null;
  }

  async get(id: JobId): Promise<CachedJob | null> {
    const hit = this.map.get(id);
    if (hit) return hit;
    const rec = await this.store.getJob(id);
    if (!rec) return null;
    // Same rule as auth.ts isOperatorOwned (kept here without importing the HTTP layer into the engine).
    const job = { name: rec.name, compiled: rec.compiled, inputs: rec.inputs, operatorOwned: rec.owner === null || rec.owner.role === 'admin', inWorkflow: rec.workflowId !== null };
    this.put(id, job);
    return job;
  }
}
