import type { AttemptId, JobId, NodeId } from '@dsg/core';

/** Active attempts this process dispatched or has seen, for routing log chunks without a store read. */
export class AttemptRegistry {
  private readonly map = new Map<AttemptId, { readonly jobId: JobId; readonly nodeId: NodeId }>();
  set(id: AttemptId, jobId: JobId, nodeId: NodeId): void {
    this.map.set(id, { jobId, nodeId });
  }
  get(id: AttemptId): { readonly jobId: JobId; readonly nodeId: NodeId } | undefined {
    return this.map.get(id);
  }
  delete(id: AttemptId): void {
    this.map.delete(id);
  }
}
