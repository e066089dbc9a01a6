/**
 * `dsg node pending | list [--pending] | approve | reject`: machines that asked to join without a token or code wait for an admin.
 * Each shows a request id on its screen (e.g. K7Q2-M9XD); compare it before approving, so a classmate's laptop that
 * took the same name is not let in by mistake.
 */
import type { Command } from 'commander';
import type { JoinRequestV1 } from '@dsg/core';
import { activeClientConfig, clientFrom, info, print, printJson, type GlobalFlags } from '../context.js';
import { ago, formatSize, table } from '../format.js';

const describe = (r: JoinRequestV1): string =>
  `${r.facts.os} ${r.facts.arch}, ${r.facts.cores} cores, ${formatSize(r.facts.memoryBytes)}${r.facts.gpus.length > 0 ? `, ${r.facts.gpus.join(' + ')}` : ''}`;

export function registerNodeApproval(program: Command, globals: () => GlobalFlags): void {
  const node = program.commands.find((c) => c.name() === 'node')!;

  node
    .command('pending')
    .description('machines waiting for approval to join (and recent decisions with --all)')
    .option('--all', 'also approved and rejected requests')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      const items = (await clientFrom(globals()).listJoinRequests()).items.filter((r) => opts.all || r.state === 'pending');
      if (opts.json) return printJson({ items });
      if (items.length === 0) return info(opts.all ? 'no join requests' : 'no machine is waiting for approval');
      print(table(['ID', 'NAME', 'STATE', 'FROM', 'CLAIMS (unverified)', 'ASKED', 'LAST SEEN'], items.map((r) => [r.id, r.name, r.state, r.address, describe(r), ago(r.createdAt), ago(r.lastSeenAt)])));
      if (items.some((r) => r.state === 'pending')) info('let one in: dsg node approve ID   ·   turn one away: dsg node reject ID --reason "…"');
    });

  node
    .command('list')
    .description('the grid\'s nodes and the machines waiting for approval (--pending: only those)')
    .option('--pending', 'only machines waiting for approval (as dsg node pending)')
    .option('--json', 'print JSON: { items: NodeV1[], pending: JoinRequestV1[] } (with --pending: { items: JoinRequestV1[] })')
    .addHelpText('after', `
A pending machine is one whose agent asked to join without a token or join code. What it says about itself (name,
cores, memory, GPUs) is a claim nobody has checked: approve only machines you recognise, by the id its agent shows.

Examples:
  dsg node list --pending
  dsg node list --pending --json | jq '.items[] | {id, name, address}'`)
    .action(async (opts: { pending?: boolean; json?: boolean }) => {
      const c = clientFrom(globals());
      const pending = (await c.listJoinRequests()).items.filter((r) => r.state === 'pending');
      const show = (): void => {
        if (pending.length === 0) return info('no machine is waiting for approval');
        print(table(['ID', 'NAME', 'FROM', 'CLAIMS (unverified)', 'ASKED', 'LAST SEEN'], pending.map((r) => [r.id, r.name, r.address, describe(r), ago(r.createdAt), ago(r.lastSeenAt)])));
        info('let one in: dsg node approve ID   ·   turn one away: dsg node reject ID --reason "…"');
        const pin = activeClientConfig()?.tlsFingerprint;
        if (pin) info(`this grid's certificate is ${pin.slice(0, 'sha256:'.length + 16)}…: a waiting agent that shows another one is talking to someone else`);
      };
      if (opts.pending) return opts.json ? printJson({ items: pending }) : show();
      const nodes = (await c.listNodes()).items;
      if (opts.json) return printJson({ items: nodes, pending });
      if (nodes.length > 0) print(table(['NAME', 'ID', 'STATE'], nodes.map((n) => [n.name, n.id, n.state])));
      else info('no nodes yet');
      if (pending.length > 0) {
        print(`\nwaiting for approval (${pending.length}):`);
        show();
      }
    });

  node
    .command('approve')
    .description('let a machine that asked to join in (by request id, or name if only one waits with it)')
    .argument('<id>', 'the request id its agent shows (or its name)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const { request } = await clientFrom(globals()).approveJoinRequest(id);
      if (opts.json) return printJson(request);
      print(`approved ${request.name} (${request.id}, from ${request.address}): it joins as node ${request.nodeId} within about 10 s`);
    });

  node
    .command('reject')
    .description('turn away a machine that asked to join; its agent is told why and exits')
    .argument('<id>', 'the request id its agent shows (or its name)')
    .option('--reason <text>', 'why, shown on the machine')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { reason?: string; json?: boolean }) => {
      const { request } = await clientFrom(globals()).rejectJoinRequest(id, opts.reason);
      if (opts.json) return printJson(request);
      print(`rejected ${request.name} (${request.id}, from ${request.address})${request.reason ? `: ${request.reason}` : ''}`);
    });
}
