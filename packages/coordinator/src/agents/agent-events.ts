import type { CoordinatorMessage, FinishedMessage, HelloMessage, HostUsageWire, NodeId, NodePolicyStatus } from '@dsg/core';

/**
 * What the agent hub reports to the coordinator's core (the Engine implements it; tests may fake it). The hub
 * parses and authenticates frames; it decides nothing.
 */
export interface AgentEvents {
  /** Register (or re-register) a node from its hello; resolves to the node id to welcome it with. */
  onHello(hello: HelloMessage, proposedId: NodeId, address: string | null): Promise<NodeId>;
  /** The welcome is on the wire: assignments may follow. */
  onNodeReady(): void;
  onDisconnect(nodeId: NodeId): Promise<void>;
  onStopping(nodeId: NodeId, reason: string): Promise<void>;
  onStarted(nodeId: NodeId, attemptId: string, at: number): void;
  onLog(nodeId: NodeId, attemptId: string, data: string): void;
  onFinished(nodeId: NodeId, m: FinishedMessage): void;
  /** `usage`: what the machine reports it is doing (dashboard only); absent from older agents. */
  onHeartbeat(nodeId: NodeId, running: readonly string[], usage?: HostUsageWire): void;
  /** The node's volunteer policy state changed (owner back, outside its window, on battery, too hot, working again). */
  onPolicy(nodeId: NodeId, policy: NodePolicyStatus): void;
}

/** The Transport port toward agents (implemented by AgentHub over WebSocket; faked in tests). */
export interface AgentLink {
  send(nodeId: NodeId, messages: readonly CoordinatorMessage[]): boolean;
  connectedNodes(): ReadonlySet<NodeId>;
  disconnect(nodeId: NodeId, reason: string): void;
}
