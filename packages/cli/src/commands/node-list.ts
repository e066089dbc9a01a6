import type { Command } from 'commander';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { ago, colorState, formatSize, table } from '../format.js';

export function registerNodes(program: Command, globals: () => GlobalFlags): void {
  program
    .command('nodes')
    .description('list the machines in the grid and what they offer')
    .option('--json', 'print JSON: { items: NodeV1[] }')
    .addHelpText('after', '\nCORES and MEMORY show what running tasks hold / what the node offers; TASKS counts running tasks and\nthose waiting in the node\'s queue. STATE adds cordoned, draining, drained or quarantined for a node that\ngets no new work (the reason follows the table), and how long an offline node has been gone; offline nodes\nare forgotten after offlineNodeRetentionHours (default a week).\n\nExamples:\n  dsg nodes\n  dsg nodes --json | jq \'.items[] | {name, state}\'\nISOLATION is what the node does to contain tasks: sandbox+cgroups (sandboxed, limits enforced), sandbox,\ncgroups (limits only), none (plain processes), ? (older agent).')
    .action(async (opts: { json?: boolean }) => {
      const { items } = await clientFrom(globals()).listNodes();
      if (opts.json) return printJson({ items });
      if (items.length === 0) return print('no nodes yet: start an agent with `dsg agent --coordinator URL --token JOIN_TOKEN`');
      const now = Date.now();
      const state = (n: (typeof items)[number]): string =>
        n.state === 'online' ? (n.scheduling === 'eligible' ? colorState('online') : `${colorState('online')}, ${colorState(n.scheduling)}`)
          : `${colorState(n.state)} (gone ${ago(n.lastSeenAt, now).replace(/ ago$/, '')})${n.scheduling === 'eligible' ? '' : `, ${n.scheduling}`}`;
      print(table(['NAME', 'ID', 'STATE', 'CORES', 'MEMORY', 'GPUS', 'TASKS', 'OS', 'ISOLATION', 'LAST SEEN'], items.map((n) => [
        n.name, n.id, state(n), `${n.allocated.cpu}/${n.capacity.cpu}`, `${formatSize(n.allocated.memoryBytes)}/${formatSize(n.capacity.memoryBytes)}`,
        n.capacity.gpus ? `${n.allocated.gpus}/${n.capacity.gpus} ${n.facts.gpus[0]?.model ?? ''}` : '0', n.assignedTasks ? `${n.runningTasks} +${n.assignedTasks} waiting` : String(n.runningTasks), `${n.facts.os.split(' ')[0]}/${n.facts.arch}`,
        n.facts.isolation ?? '?',
        n.state === 'online' ? 'now' : ago(n.lastSeenAt, now),
      ])));
      // Why a node takes no new work (quarantine reasons in full: they tell the operator what to look into).
      const held = items.filter((n) => n.schedulingReason);
      for (const n of held) print(`${n.name}: ${n.scheduling}: ${n.schedulingReason}`);
    });
}
