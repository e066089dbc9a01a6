/**
 * `dsg join-code create | list | revoke` (admin): four words a person can read aloud so a classroom of machines can
 * join (`dsg agent --join apple-river-cannon-ozone`). A code is a node token that may only register new nodes,
 * lives an hour by default (at most 7 days), admits at most `--uses` machines (default 100) and can be revoked.
 */
import type { Command } from 'commander';
import { ValidationError } from '@dsg/core/base';
import { activeClientConfig, clientFrom, info, print, printJson, type GlobalFlags } from '../context.js';
import { ago, bold, cyan, table } from '../format.js';
import { parseExpiry } from './token.js';

export function registerJoinCode(program: Command, globals: () => GlobalFlags): void {
  const group = program.command('join-code').description('make a four-word code that lets new machines join this grid (admin)');

  group
    .command('create')
    .description('make a join code and print it (shown this once)')
    .option('--ttl <duration>', 'how long it works, e.g. 30m, 2h, 1d (default 1h, at most 7d)')
    .option('--name <name>', 'a name for it in `dsg token list` (default: "join code" and the time)')
    .option('--uses <n>', 'how many machines it may admit (default 100, at most 10,000)')
    .option('--json', 'print JSON: { token: TokenV1, code }')
    .addHelpText('after', `
Read the code out or write it on the board; on each machine run:
  dsg agent --join <code>
The agent finds the grid on the LAN (or give --coordinator URL) and joins as a new node with its own credential;
after that it needs the code no more. Anyone who has the code can add machines until it expires: keep it short-lived
and revoke it when the class has joined (dsg join-code revoke NAME). A code that expired, is used up or was
revoked is refused with a message saying which.

Examples:
  dsg join-code create
  dsg join-code create --ttl 2h --uses 30 --name "physics lab, tuesday"`)
    .action(async (opts: { ttl?: string; name?: string; uses?: string; json?: boolean }) => {
      let maxUses: number | undefined;
      if (opts.uses !== undefined) {
        maxUses = Number(opts.uses);
        if (!/^\d+$/.test(opts.uses.trim()) || maxUses < 1 || maxUses > 10_000)
          throw new ValidationError([{ path: '--uses', message: `expected a whole number of machines from 1 to 10,000; got "${opts.uses}"` }]);
      }
      let seconds: number | undefined;
      if (opts.ttl !== undefined) {
        try {
          seconds = parseExpiry(opts.ttl);
        } catch {
          throw new ValidationError([{ path: '--ttl', message: `expected a duration of at least a minute, like 30m, 2h, 1d; got "${opts.ttl}"` }]);
        }
      }
      const client = clientFrom(globals());
      const r = await client.createJoinCode({ ...(seconds !== undefined ? { expiresInSeconds: seconds } : {}), ...(opts.name ? { name: opts.name } : {}), ...(maxUses !== undefined ? { maxUses } : {}) });
      if (opts.json) return printJson(r);
      const pin = activeClientConfig()?.tlsFingerprint;
      print(bold(r.code));
      info(`works until ${new Date(r.token.expiresAt!).toLocaleString()} for up to ${r.token.maxUses ?? 'any number of'} machines (${r.token.name}); on each machine: ${cyan(`dsg agent --join ${r.code}`)}`);
      if (pin) info(`agents will show this grid's certificate as ${pin.slice(0, 'sha256:'.length + 16)}…: ask people to check it matches`);
      info(`revoke it when everyone has joined: dsg join-code revoke "${r.token.name}"`);
    });

  group
    .command('list')
    .description('join codes that still work (never the code itself)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const all = (await clientFrom(globals()).listTokens()).items;
      const now = Date.now();
      const codes = all.filter((t) => t.role === 'node' && t.nodeId === null && t.status === 'active' && t.expiresAt !== null && Date.parse(t.expiresAt) > now);
      if (opts.json) return printJson({ items: codes });
      if (codes.length === 0) return info('no join code works now: make one with `dsg join-code create`');
      print(table(['NAME', 'ID', 'CREATED', 'EXPIRES', 'USES', 'LAST USED'], codes.map((t) => [t.name, t.id, ago(t.createdAt), new Date(t.expiresAt!).toLocaleString(), `${t.uses}/${t.maxUses ?? '∞'}`, t.lastUsedAt ? ago(t.lastUsedAt) : '-'])));
    });

  group
    .command('revoke')
    .description('stop a join code from admitting more machines (those it admitted stay)')
    .argument('<name-or-id>', 'the code\'s name or id, as `dsg join-code list` shows it (never the words)')
    .option('--json', 'print { token: TokenV1 } as JSON')
    .addHelpText('after', '\nExamples:\n  dsg join-code revoke "physics lab, tuesday"')
    .action(async (name: string, opts: { json?: boolean }) => {
      const r = await clientFrom(globals()).revokeToken(name);
      if (opts.json) return printJson(r);
      print(`join code ${r.token.name} (${r.token.id}) revoked: it admitted ${r.token.uses} machine${r.token.uses === 1 ? '' : 's'}, which keep their own credentials`);
    });
}
