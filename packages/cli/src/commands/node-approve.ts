/**
 * `dsg node list [--pending]`, `dsg node approve ID|NAME`, `dsg node reject ID|NAME [--reason]` (admin): joining by
 * approval. A machine that runs `dsg agent` with neither token nor join code waits as a pending node; its agent
 * prints a short id (from its own key) that the admin compares with the one listed here before approving.
 */
import type { Command } from 'commander';
import type { PendingNodeV1 } from '@dsg/core';
import { activeClientConfig, clientFrom, info, print, printJson, type GlobalFlags } from '../context.js';
import { ago, formatSize, table } from '../format.js';

/** The pending machines as a table, their facts marked as claimed (nobody has checked them). */
export function printPendingNodes(items: readonly PendingNodeV1[]): void {
  if (items.length === 0) return info('no machine waits for approval (an agent started without a token or join code shows up here)');
  print(table(['PENDING ID', 'NAME', 'ADDRESS', 'CLAIMS (unverified)', 'ASKED', 'LAST SEEN'], items.map((p) => [
    p.id, p.name, p.address,
    `${p.claimedFacts.cores} cores, ${formatSize(p.claimedFacts.memoryBytes)}, ${p.claimedFacts.os.split(' ')[0]}/${p.claimedFacts.arch}${p.claimedFacts.gpus.length > 0 ? `, ${p.claimedFacts.gpus.length} GPU ${p.claimedFacts.gpus[0]}` : ''}`,
    ago(p.createdAt), ago(p.lastSeenAt),
  ])));
  info('compare the id with what the agent prints, then: dsg node approve ID (or dsg node reject ID --reason "…")');
  const pin = activeClientConfig()?.tlsFingerprint;
  if (pin) info(`this grid's certificate is ${pin.slice(0, 'sha256:'.length + 16)}…: an agent that shows another one is talking to someone else`);
}

export function registerNodeApproval(node: Command, globals: () => GlobalFlags): void {
  node
    .command('list')
    .description('the grid\'s nodes and the machines waiting for approval (--pending: only those)')
    .option('--pending', 'only machines waiting for approval')
    .option('--json', 'print JSON: { items: NodeV1[], pending: PendingNodeV1[] } (with --pending: { items: PendingNodeV1[] })')
    .addHelpText('after', `
A pending node is a machine whose agent asked to join without a token or join code. What it says about itself
(name, cores, memory, GPUs) is a claim nobody has checked: approve only machines you recognise, by the id its
agent prints. Pending nodes never get work, tokens or data; one not heard from for 24 hours is forgotten.

Examples:
  dsg node list --pending
  dsg node list --pending --json | jq '.items[] | {id, name, address}'`)
    .action(async (opts: { pending?: boolean; json?: boolean }) => {
      const c = clientFrom(globals());
      const pending = (await c.listPendingNodes()).items;
      if (opts.pending) {
        if (opts.json) return printJson({ items: pending });
        return printPendingNodes(pending);
      }
      const nodes = (await c.listNodes()).items;
      if (opts.json) return printJson({ items: nodes, pending });
      if (nodes.length > 0) print(table(['NAME', 'ID', 'STATE'], nodes.map((n) => [n.name, n.id, n.state])));
      else info('no nodes yet');
      if (pending.length > 0) {
        print('');
        print(`waiting for approval (${pending.length}):`);
        printPendingNodes(pending);
      }
    });

  node
    .command('approve')
    .description('let a machine that waits for approval join the grid')
    .argument('<id-or-name>', 'the pending id its agent prints (e.g. K7Q2-M9XD), or its name if only one waiting machine has it')
    .option('--json', 'print { request: PendingNodeV1 } as JSON')
    .addHelpText('after', `
The agent gets its own node credential at its next poll (within a few seconds) and starts working, without a
restart. Approving also undoes a rejection (start that agent again afterwards). To shut a node out later:
dsg node revoke NAME.

Examples:
  dsg node approve K7Q2-M9XD
  dsg node approve lab-pc-3`)
    .action(async (id: string, opts: { json?: boolean }) => {
      const r = await clientFrom(globals()).approveNode(id);
      if (opts.json) return printJson(r);
      print(`approved ${r.request.name} (${r.request.id}) from ${r.request.address}: it joins as node ${r.request.nodeId} within a few seconds (dsg nodes)`);
    });

  node
    .command('reject')
    .description('keep a machine that waits for approval out; its agent is told (with --reason) and exits with code 5')
    .argument('<id-or-name>', 'the pending id its agent prints, or its name if only one waiting machine has it')
    .option('--reason <text>', 'why, shown on the rejected machine (at most 500 characters)')
    .option('--json', 'print { request: PendingNodeV1 } as JSON')
    .addHelpText('after', `
The same agent asking again is rejected again. To undo: dsg node approve ID (then start that agent again).

Examples:
  dsg node reject K7Q2-M9XD --reason "not a lab machine"`)
    .action(async (id: string, opts: { reason?: string; json?: boolean }) => {
      const r = await clientFrom(globals()).rejectNode(id, opts.reason !== undefined ? { reason: opts.reason } : {});
      if (opts.json) return printJson(r);
      print(`rejected ${r.request.name} (${r.request.id}) from ${r.request.address}; undo with: dsg node approve ${r.request.id}`);
    });
}
