import type { Command } from 'commander';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { ago, colorState, formatSize, table } from '../format.js';

export function registerNodes(program: Command, globals: () => GlobalFlags): void {
  program
    .command('nodes')
    .description('list the machines in the grid and what they offer')
    .option('--json', 'print JSON: { items: NodeV1[] }')
    .addHelpText('after', '\nCORES and MEMORY show what running tasks hold / what the node offers; TASKS counts running tasks and\nthose waiting in the node\'s queue. ISOLATION is what the node does to contain tasks: sandbox+cgroups\n(sandboxed, limits enforced), sandbox, cgroups (limits only), none (plain processes), ? (older agent).\n\nExamples:\n  dsg nodes\n  dsg nodes --json | jq \'.items[] | {name, state}\'')
    .action(async (opts: { json?: boolean }) => {
      const { items } = await clientFrom(globals()).listNodes();
      if (opts.json) return printJson({ items });
      if (items.length === 0) return print('no nodes yet: start an agent with `dsg agent --coordinator URL --token JOIN_TOKEN`');
      print(table(['NAME', 'ID', 'STATE', 'CORES', 'MEMORY', 'GPUS', 'TASKS', 'OS', 'ISOLATION', 'LAST SEEN'], items.map((n) => [
        n.name, n.id, colorState(n.state), `${n.allocated.cpu}/${n.capacity.cpu}`, `${formatSize(n.allocated.memoryBytes)}/${formatSize(n.capacity.memoryBytes)}`,
        n.capacity.gpus ? `${n.allocated.gpus}/${n.capacity.gpus} ${n.facts.gpus[0]?.model ?? ''}` : '0', n.assignedTasks ? `${n.runningTasks} +${n.assignedTasks} waiting` : String(n.runningTasks), `${n.facts.os.split(' ')[0]}/${n.facts.arch}`,
        n.facts.isolation ?? '?',
        n.state === 'online' ? 'now' : ago(n.lastSeenAt),
      ])));
    });
}
