import type { Command } from 'commander';
import { ValidationError } from '@dsg/core/base';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';

/**
 * `dsg node revoke NAME|ID` (admin): revoke a node's credential at once. Registered under the `node` command group,
 * which other `dsg node …` commands share (found or created here).
 */
export function registerNodeRevoke(program: Command, globals: () => GlobalFlags): void {
  const group = program.commands.find((c) => c.name() === 'node') ?? program.command('node').description('manage one node of the grid');
  group
    .command('revoke')
    .argument('<node>', 'node name or id (as `dsg nodes` shows them)')
    .description("revoke a node's credential at once: its connection is closed, its tasks are requeued, and it cannot reconnect until it joins anew")
    .option('--json', 'print JSON: { nodeId, name, credentialsRevoked }')
    .addHelpText('after', '\nThe agent on that machine must then join again as a new node: delete node.json in its --state-dir and\nstart it with the join token.\n\nExamples:\n  dsg node revoke lab-pc-7\n  dsg node revoke node_01J…')
    .action(async (which: string, opts: { json?: boolean }) => {
      const client = clientFrom(globals());
      const { items } = await client.listNodes();
      const byId = items.find((n) => n.id === which);
      const byName = items.filter((n) => n.name === which);
      if (!byId && byName.length > 1)
        throw new ValidationError([{ path: 'node', message: `${byName.length} nodes are named "${which}" (${byName.map((n) => n.id).join(', ')}); give the id instead` }]);
      const node = byId ?? byName[0];
      if (!node) throw new ValidationError([{ path: 'node', message: `no node named or with id "${which}"; \`dsg nodes\` lists them` }]);
      const r = await client.revokeNode(node.id);
      if (opts.json) return printJson(r);
      print(`revoked node ${r.name} (${r.nodeId}): disconnected, its tasks requeued; to let that machine back in, delete node.json in its agent's --state-dir and start it again with the join token`);
    });
}
