/**
 * `dsg node pending | approve | reject`: machines that asked to join without a token or code wait for an admin.
 * Each shows a request id on its screen (e.g. K7Q2-M9XD); compare it before approving, so a classmate's laptop that
 * took the same name is not let in by mistake.
 */
import type { Command } from 'commander';
import type { JoinRequestV1 } from '@dsg/core';
import { clientFrom, info, print, printJson, type GlobalFlags } from '../context.js';
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
