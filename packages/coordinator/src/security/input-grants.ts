/**
 * Which input blobs each node may fetch: those of the attempts assigned to it. Granted when an attempt is
 * dispatched (job inputs and files from earlier workflow stages), dropped when it ends. A node credential asking
 * for any other blob is refused, so a node cannot read other jobs' inputs by guessing or learning their hashes.
 *
 * The grants live in memory: after a coordinator restart, the blob route falls back to the job inputs of the node's
 * active attempts (from the store); a workflow artifact of an attempt dispatched before the restart is then
 * refused, and that attempt ends as `inputs_unavailable` (a system failure, retried with a fresh grant).
 */
import type { NodeId } from '@dsg/core';

export class InputGrants {
  /** node → sha256 → attempts that need it. */
  private readonly byNode = new Map<string, Map<string, Set<string>>>();
  /** attempt → (node, its blobs), to drop its grants when it ends. */
  private readonly byAttempt = new Map<string, { nodeId: string; shas: readonly string[] }>();

  grant(nodeId: NodeId, attemptId: string, shas: Iterable<string>): void {
    const list = [...new Set(shas)];
    this.byAttempt.set(attemptId, { nodeId, shas: list });
    let m = this.byNode.get(nodeId);
    if (!m) this.byNode.set(nodeId, (m = new Map()));
    for (const sha of list) {
      let s = m.get(sha);
      if (!s) m.set(sha, (s = new Set()));
      s.add(attemptId);
    }
  }

  allowed(nodeId: NodeId, sha256: string): boolean {
    return (this.byNode.get(nodeId)?.get(sha256)?.size ?? 0) > 0;
  }

  forget(attemptId: string): void {
    const g = this.byAttempt.get(attemptId);
    if (!g) return;
    this.byAttempt.delete(attemptId);
    const m = this.byNode.get(g.nodeId);
    if (!m) return;
    for (const sha of g.shas) {
      const s = m.get(sha);
      s?.delete(attemptId);
      if (s?.size === 0) m.delete(sha);
    }
    if (m.size === 0) this.byNode.delete(g.nodeId);
  }
}
