/**
 * Not now: the node's volunteer policy holds it back (its owner is using it, it is outside the hours its owner
 * gave, it runs on battery, or it is too hot). The agent decides the state and reports it; this filter only
 * honours it. A "busy" verdict, never "never": the node will be back, so the job waits rather than fails.
 * After the "never" filters, so a job too big for the node is still told so, whatever its owner is doing.
 */
import { describeNodePolicyState } from '@dsg/core';
import type { FilterPlugin } from './plugins.js';

export const policyFilter: FilterPlugin = {
  name: 'policy',
  verdict: 'busy',
  filter(_req, view) {
    const p = view.node.policy;
    if (!p || p.state === 'working') return null;
    return { nodeId: view.node.id, code: 'node_policy', message: `node ${view.node.name} is ${describeNodePolicyState(p.state)} (${p.reason})` };
  },
};
