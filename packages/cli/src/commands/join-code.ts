/**
 * `dsg join-code create | list` (admin): four words a person can read aloud so a classroom of machines can join
 * (`dsg agent --join apple-river-cannon-ozone`). A code is a node token that may only register new nodes, lives an
 * hour by default (at most 7 days) and is revoked like any token (`dsg token revoke NAME`).
 */
import type { Command } from 'commander';
import { ValidationError } from '@dsg/core';
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
    .option('--json', 'print JSON: { token: TokenV1, code }')
    .addHelpText('after', `
Read the code out or write it on the board; on each machine run:
  dsg agent --join <code>
The agent finds the grid on the LAN (or give --coordinator URL) and joins as a new node with its own credential;
after that it needs the code no more. Anyone who has the code can add machines until it expires: keep it short-lived
and revoke it when the class has joined (dsg token revoke NAME).

Examples:
  dsg join-code create
  dsg join-code create --ttl 2h --name "physics lab, tuesday"`)
    .action(async (opts: { ttl?: string; name?: string; json?: boolean }) => {
      let seconds: number | undefined;
      if (opts.ttl !== undefined) {
        try {
          seconds = parseExpiry(opts.ttl);
        } catch {
          throw new ValidationError([{ path: '--ttl', message: `expected a duration of at least a minute, like 30m, 2h, 1d; got "${opts.ttl}"` }]);
        }
      }
      const client = clientFrom(globals());
      const r = await client.createJoinCode({ ...(seconds !== undefined ? { expiresInSeconds: seconds } : {}), ...(opts.name ? { name: opts.name } : {}) });
      if (opts.json) return printJson(r);
      const pin = activeClientConfig()?.tlsFingerprint;
      print(bold(r.code));
      info(`works until ${new Date(r.token.expiresAt!).toLocaleString()} (${r.token.name}); on each machine: ${cyan(`dsg agent --join ${r.code}`)}`);
      if (pin) info(`agents will show this grid's certificate as ${pin.slice(0, 'sha256:'.length + 16)}…: ask people to check it matches`);
      info(`revoke it when everyone has joined: dsg token revoke "${r.token.name}"`);
    });

  group
    .command('list')
    .description('join codes that still work (never the code itself)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const all = (await clientFrom(globals()).listTokens()).items;
      const now = Date.now();
      const codes = all.filter((t) => t.role === 'node' && t.nodeId === null && t.revokedAt === null && t.expiresAt !== null && Date.parse(t.expiresAt) > now);
      if (opts.json) return printJson({ items: codes });
      if (codes.length === 0) return info('no join code works now: make one with `dsg join-code create`');
      print(table(['NAME', 'ID', 'CREATED', 'EXPIRES', 'LAST USED'], codes.map((t) => [t.name, t.id, ago(t.createdAt), new Date(t.expiresAt!).toLocaleString(), t.lastUsedAt ? ago(t.lastUsedAt) : '-'])));
    });
}
