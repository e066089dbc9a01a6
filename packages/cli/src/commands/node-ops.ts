/**
 * `dsg node drain | cordon | uncordon | remove NAME`: operator actions on one node (admin token). NAME is the
 * node's name as `dsg nodes` shows it, or its id.
 */
import type { Command } from 'commander';
import type { NodeV1 } from '@dsg/core';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';

const SAID: Record<string, (n: NodeV1) => string> = {
  cordon: (n) => `node ${n.name} is cordoned: it gets no new work; what it runs goes on. \`dsg node uncordon ${n.name}\` takes it back.`,
  drain: (n) =>
    n.scheduling === 'drained'
      ? `node ${n.name} is drained: it runs nothing and gets no new work. Stop its agent or \`dsg node remove ${n.name}\`; \`dsg node uncordon ${n.name}\` takes it back.`
      : `node ${n.name} is draining: it gets no new work and finishes the ${n.runningTasks + n.assignedTasks} task(s) it holds; \`dsg nodes\` shows it drained once they are done.`,
  uncordon: (n) => `node ${n.name} takes work again (${n.scheduling}).`,
};

export function registerNodeOps(program: Command, globals: () => GlobalFlags): void {
  const node = program
    .command('node')
    .description('operate on one node: drain, cordon, uncordon, remove; approve or reject a machine waiting to join (admin token)')
    .addHelpText('after', `
A node that is cordoned, draining or quarantined (too many system failures in a short time) gets no new work;
\`dsg nodes\` shows which and why. \`dsg node uncordon NAME\` ends any of the three.

Examples:
  dsg node drain lab-pc-3          before maintenance: running tasks finish, nothing new starts
  dsg nodes                        lab-pc-3 shows draining, then drained
  dsg node uncordon lab-pc-3       back in service (also ends a quarantine)
  dsg node remove lab-pc-3         forget a node (refused while it holds work)
  dsg node remove lab-pc-3 --force forget it now; its tasks are requeued
  dsg node list --pending          machines waiting for approval (agents started without a token)
  dsg node approve K7Q2-M9XD       let one in (compare the id with what its agent shows)`);

  for (const [action, description] of [
    ['cordon', 'no new work for the node; what it runs goes on'],
    ['drain', 'no new work; running tasks finish; the node then shows drained'],
    ['uncordon', 'take the node back: ends a cordon, a drain or a quarantine'],
  ] as const) {
    node
      .command(action)
      .description(description)
      .argument('<name>', 'node name (as `dsg nodes` shows it) or node id')
      .option('--json', 'print the NodeV1 as JSON')
      .addHelpText('after', `\nExamples:\n  dsg node ${action} lab-pc-3\n  dsg node ${action} node_01jd… --json`)
      .action(async (name: string, opts: { json?: boolean }) => {
        const c = clientFrom(globals());
        const n = action === 'cordon' ? await c.cordonNode(name) : action === 'drain' ? await c.drainNode(name) : await c.uncordonNode(name);
        if (opts.json) return printJson(n);
        print(SAID[action]!(n));
      });
  }

  node
    .command('remove')
    .description('forget a node; refused while it holds work unless --force (its tasks are then requeued)')
    .argument('<name>', 'node name (as `dsg nodes` shows it) or node id')
    .option('--force', 'remove it even while it holds work: that work is requeued on other nodes')
    .option('--json', 'print { removed, node, requeuedTasks } as JSON')
    .addHelpText('after', `
An agent still running on that machine joins again as a new node: stop it first (Ctrl-C or SIGTERM) to keep
the machine out. Offline nodes are also forgotten on their own after a week (setting offlineNodeRetentionHours).

Examples:
  dsg node drain lab-pc-3 && dsg node remove lab-pc-3      (once dsg nodes shows it drained)
  dsg node remove lab-pc-3 --force`)
    .action(async (name: string, opts: { force?: boolean; json?: boolean }) => {
      const r = await clientFrom(globals()).removeNode(name, { force: opts.force ?? false });
      if (opts.json) return printJson(r);
      print(`node ${r.node.name} (${r.node.id}) removed${r.requeuedTasks > 0 ? `; ${r.requeuedTasks} task(s) requeued` : ''}`);
    });
}
