import type { Command } from 'commander';
import { describeNodePolicyState, type GpuDeviceUseV1 } from '@dsg/core';
import { clientFrom, info, print, printJson, type GlobalFlags } from '../context.js';
import { ago, colorState, formatSize, table } from '../format.js';

export function registerNodes(program: Command, globals: () => GlobalFlags): void {
  program
    .command('nodes')
    .description('list the machines in the grid and what they offer')
    .option('--json', 'print JSON: { items: NodeV1[] } (with --pending: { items: JoinRequestV1[] })')
    .option('--pending', 'machines waiting for approval instead (admin; same as dsg node list --pending)')
    .addHelpText('after', '\nCORES and MEMORY show what running tasks hold / what the node offers; TASKS counts running tasks and\nthose waiting in the node\'s queue. STATE adds cordoned, draining, drained or quarantined for a node that\ngets no new work (the reason follows the table), and a volunteer node\'s policy state when its owner\'s policy\nholds it back (suspended: owner active, outside its time window, on battery, too hot), and how long an offline node has been gone; offline nodes\nare forgotten after offlineNodeRetentionHours (default a week).\n\nExamples:\n  dsg nodes\n  dsg nodes --json | jq \'.items[] | {name, state}\'\nGPUS counts devices in use (held whole or shared) / all; the lines after the table show each GPU.\nISOLATION is what the node does to contain tasks: sandbox+cgroups (sandboxed, limits enforced), sandbox,\ncgroups (limits only), none (plain processes), ? (older agent).')
    .action(async (opts: { json?: boolean; pending?: boolean }) => {
      const client = clientFrom(globals());
      if (opts.pending) {
        const pending = (await client.listJoinRequests()).items.filter((r) => r.state === 'pending');
        if (opts.json) return printJson({ items: pending });
        if (pending.length === 0) return info('no machine is waiting for approval');
        print(table(['ID', 'NAME', 'FROM', 'ASKED'], pending.map((r) => [r.id, r.name, r.address, ago(r.createdAt)])));
        return info('details: dsg node list --pending   ·   let one in: dsg node approve ID');
      }
      const { items } = await client.listNodes();
      if (opts.json) return printJson({ items });
      // Machines waiting for approval, for an admin (others may not list them: the answer is 403, and nothing shows).
      const waiting = await client.listJoinRequests().then((r) => r.items.filter((x) => x.state === 'pending').length, () => 0);
      if (waiting > 0) info(`${waiting} machine${waiting === 1 ? '' : 's'} wait${waiting === 1 ? 's' : ''} for approval: dsg node list --pending`);
      if (items.length === 0) return print('no nodes yet: start an agent with `dsg agent --coordinator URL --token JOIN_TOKEN`');
      const now = Date.now();
      // A volunteer node its owner's policy holds back: "online, suspended: owner active".
      const held = (n: (typeof items)[number]): string => (n.policy && n.policy.state !== 'working' ? `, ${describeNodePolicyState(n.policy.state)}` : '');
      const state = (n: (typeof items)[number]): string =>
        n.state === 'online' ? (n.scheduling === 'eligible' ? `${colorState('online')}${held(n)}` : `${colorState('online')}, ${colorState(n.scheduling)}${held(n)}`)
          : `${colorState(n.state)} (gone ${ago(n.lastSeenAt, now).replace(/ ago$/, '')})${n.scheduling === 'eligible' ? '' : `, ${n.scheduling}`}`;
      print(table(['NAME', 'ID', 'STATE', 'CORES', 'MEMORY', 'GPUS', 'TASKS', 'OS', 'ISOLATION', 'LAST SEEN'], items.map((n) => [
        n.name, n.id, state(n), `${n.allocated.cpu}/${n.capacity.cpu}`, `${formatSize(n.allocated.memoryBytes)}/${formatSize(n.capacity.memoryBytes)}`,
        n.capacity.gpus || n.facts.gpus.length ? `${n.gpuDevices ? n.gpuDevices.filter((d) => d.exclusive || d.sharedTasks > 0).length : n.allocated.gpus}/${n.facts.gpus.length || n.capacity.gpus} ${n.facts.gpus[0]?.model ?? ''}` : '0', n.assignedTasks ? `${n.runningTasks} +${n.assignedTasks} waiting` : String(n.runningTasks), `${n.facts.os.split(' ')[0]}/${n.facts.arch}`,
        n.facts.isolation ?? '?',
        n.state === 'online' ? 'now' : ago(n.lastSeenAt, now),
      ])));
      // Each GPU and what its tasks hold: whole, or GPU memory shared (the scheduler's per-device accounting).
      for (const n of items.filter((x) => (x.gpuDevices?.length ?? 0) > 0))
        print(`${n.name} GPUs: ${n.gpuDevices!.map((d) => `${d.index} ${d.model} ${formatSize(d.memoryBytes)}: ${describeDeviceUse(d)}`).join(' · ')}`);
      // Why a node takes no new work (quarantine reasons in full: they tell the operator what to look into).
      for (const n of items.filter((x) => x.schedulingReason)) print(`${n.name}: ${n.scheduling}: ${n.schedulingReason}`);
      for (const n of items.filter((x) => x.policy && x.policy.state !== 'working'))
        print(`${n.name}: ${describeNodePolicyState(n.policy!.state)} for ${ago(n.policy!.since, now).replace(/ ago$/, '')}: ${n.policy!.reason} (its owner's volunteer policy; no new work until it is working again)`);
    });
}

/** "free", "held whole", "8Gi of 24Gi shared by 1 task". */
export function describeDeviceUse(d: GpuDeviceUseV1): string {
  if (d.exclusive) return 'held whole';
  if (d.sharedTasks === 0) return 'free';
  return `${formatSize(d.sharedBytes)} of ${formatSize(d.memoryBytes)} shared by ${d.sharedTasks} task${d.sharedTasks === 1 ? '' : 's'}`;
}
