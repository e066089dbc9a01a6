/**
 * The isolation filter (verdict: never). Two rules about what a node does to contain the tasks it runs:
 *  1. a job that requires isolation (`isolation: sandbox | cgroups | sandbox+cgroups`) runs only on nodes that give
 *     all of it (`isolation_too_weak`);
 *  2. a node with **no** isolation (it reports `none`, or an older agent reports nothing) runs only the grid
 *     operator's jobs — submitted with an admin token — unless its operator opted in with
 *     `dsg agent --allow-unisolated-jobs` (`unisolated_node`): without a sandbox a task runs as the agent's user,
 *     with its files, and a submitter is someone the machine's owner may not know.
 */
import { isolationSatisfies } from '@dsg/core';
import type { FilterPlugin } from './plugins.js';

export const isolationFilter: FilterPlugin = {
  name: 'isolation',
  verdict: 'never',
  filter(req, view) {
    const facts = view.node.facts;
    const level = facts?.isolation ?? 'none';
    if (!isolationSatisfies(level, req.isolation)) {
      return {
        nodeId: view.node.id,
        code: 'isolation_too_weak',
        message: `node ${view.node.name} isolates tasks with ${level === 'none' ? 'nothing' : level}; the job requires ${req.isolation}`,
      };
    }
    if (level === 'none' && !req.operatorOwned && !facts?.allowUnisolatedJobs) {
      return {
        nodeId: view.node.id,
        code: 'unisolated_node',
        message: `node ${view.node.name} cannot isolate tasks, so it runs only the grid operator's jobs (its operator can allow others with \`dsg agent --allow-unisolated-jobs\`)`,
      };
    }
    return null;
  },
};
