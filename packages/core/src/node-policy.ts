/**
 * A volunteer node's policy state, as its agent reports it (hello, then a `policy` message on every change) and as
 * `dsg nodes` shows it. Only `working` takes new work; the others say why the machine is not available now:
 * its owner is using it, it is outside the hours its owner gave, it runs on battery, or it is too hot. The agent's
 * policy engine (packages/agent/src/policy) decides the state; the coordinator only honours it.
 */
export const NodePolicyState = {
  working: 'working',
  ownerActive: 'suspended:owner-active',
  outsideWindow: 'outside-window',
  onBattery: 'on-battery',
  tooHot: 'too-hot',
} as const;
export type NodePolicyState = (typeof NodePolicyState)[keyof typeof NodePolicyState];
export const NODE_POLICY_STATES = Object.values(NodePolicyState) as [NodePolicyState, ...NodePolicyState[]];

export interface NodePolicyStatus {
  readonly state: NodePolicyState;
  /** Why, in words ("keyboard or mouse used 20s ago"). */
  readonly reason: string;
  /** Since when (epoch ms, the agent's clock). */
  readonly since: number;
}

/** "suspended: owner active" — the words shown for a state. */
export function describeNodePolicyState(state: NodePolicyState): string {
  switch (state) {
    case 'working':
      return 'working';
    case 'suspended:owner-active':
      return 'suspended: owner active';
    case 'outside-window':
      return 'outside its time window';
    case 'on-battery':
      return 'on battery';
    case 'too-hot':
      return 'too hot';
  }
}
