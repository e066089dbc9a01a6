/**
 * `dsg token create | list | revoke` (admin): tokens with roles. A submitter token is scoped to one or more projects
 * (it submits, reads, cancels and retries only their jobs and workflows); a reader token reads everything and
 * changes nothing; an admin token does everything. The secret is printed once, at creation; the grid keeps only
 * its hash.
 */
import type { Command } from 'commander';
import { parseDuration, ValidationError } from '@dsg/core/base';
import type { TokenV1 } from '@dsg/core';
import { clientFrom, info, print, printJson, type GlobalFlags } from '../context.js';
import { ago, bold, dim, red, table, yellow } from '../format.js';

const ROLES = ['admin', 'submitter', 'reader'] as const;

/** `30d`, `12h`, `90m` → seconds (at least a minute). */
export function parseExpiry(text: string): number {
  const ms = parseDuration(text);
  if (ms === null || ms < 60_000)
    throw new ValidationError([{ path: '--expires', message: `expected a duration of at least a minute, like 90m, 12h, 30d; got "${text}"` }]);
  return Math.round(ms / 1000);
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function expiry(t: TokenV1): string {
  if (!t.expiresAt) return 'never';
  const ms = Date.parse(t.expiresAt) - Date.now();
  if (ms <= 0) return red(`expired ${ago(t.expiresAt)}`);
  const d = ms / 86_400_000;
  return d >= 1 ? `in ${Math.round(d)}d` : `in ${Math.max(1, Math.round(ms / 3_600_000))}h`;
}

export function registerToken(program: Command, globals: () => GlobalFlags): void {
  const group = program.command('token').description('create, list and revoke API tokens (admin): admin, submitter (per project), reader');

  group
    .command('create')
    .description('mint a token and print its secret (shown this once)')
    .requiredOption('--role <role>', `admin, submitter or reader`)
    .option('--project <name>', 'a project a submitter token may use (repeat for more; required for submitter)', collect)
    .option('--expires <duration>', 'stop working after this long, e.g. 30d, 12h (default: never)')
    .option('--name <name>', 'a name to recognise it by in `dsg token list` and in "submitted by" (unique; default from role and projects)')
    .option('--json', 'print JSON: { token: TokenV1, secret }')
    .addHelpText('after', `
A submitter token submits, reads, cancels and retries only the jobs and workflows of its projects; a reader
token reads everything and changes nothing. Give each person their own token, so "submitted by" says who.

Examples:
  dsg token create --role submitter --project climate --name alice --expires 90d
  dsg token create --role submitter --project climate --project bio --name lab-2
  dsg token create --role reader --name dashboard-wall`)
    .action(async (opts: { role: string; project?: string[]; expires?: string; name?: string; json?: boolean }) => {
      if (!(ROLES as readonly string[]).includes(opts.role))
        throw new ValidationError([{ path: '--role', message: `expected ${ROLES.join(', ')}; got "${opts.role}"` }]);
      const role = opts.role as (typeof ROLES)[number];
      if (role === 'submitter' && !opts.project?.length)
        throw new ValidationError([{ path: '--project', message: 'a submitter token needs at least one --project NAME (the projects it may submit to and see)' }]);
      const client = clientFrom(globals());
      const r = await client.createToken({
        role,
        ...(opts.project?.length ? { projects: opts.project } : {}),
        ...(opts.expires ? { expiresInSeconds: parseExpiry(opts.expires) } : {}),
        ...(opts.name ? { name: opts.name } : {}),
      });
      if (opts.json) return printJson(r);
      const t = r.token;
      print(`${bold(t.name)} ${dim(t.id)}: ${t.role}${t.projects ? ` of ${t.projects.join(', ')}` : ''}, expires ${expiry(t)}`);
      print('');
      print(r.secret);
      print('');
      info(yellow('This secret is shown only now: copy it and give it to its user privately. It cannot be shown again.'));
      info(`They use it with:  dsg --coordinator ${client.baseUrl} --token <secret> submit job.yaml`);
      info(`  (or export DSG_COORDINATOR and DSG_TOKEN), and sign in to the dashboard with it.`);
      info(`Revoke it any time with:  dsg token revoke ${JSON.stringify(t.name)}`);
    });

  group
    .command('list')
    .description('list tokens: role, projects, created, expires, revoked, last used (never secrets)')
    .option('--all', 'also show node credentials and revoked tokens')
    .option('--json', 'print JSON: { items: TokenV1[] }')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      const { items } = await clientFrom(globals()).listTokens();
      if (opts.json) return printJson({ items });
      const shown = opts.all ? items : items.filter((t) => !t.nodeId && t.status !== 'revoked');
      if (shown.length === 0) return print('no tokens (dsg token create --role submitter --project NAME makes one)');
      print(table(['NAME', 'ID', 'ROLE', 'PROJECTS', 'CREATED', 'EXPIRES', 'LAST USED', 'STATUS'], shown.map((t) => [
        t.name, t.id, t.role, t.projects?.join(', ') ?? '-', ago(t.createdAt), expiry(t), t.lastUsedAt ? ago(t.lastUsedAt) : 'never',
        t.status === 'active' ? t.status : red(t.status),
      ])));
      const hidden = items.length - shown.length;
      if (hidden > 0) print(dim(`\n${hidden} node credential(s) and revoked token(s) not shown: --all`));
    });

  group
    .command('revoke')
    .description('revoke a token at once (and end its dashboard sessions)')
    .argument('<token>', 'token id or name (as `dsg token list` shows them)')
    .option('--json', 'print JSON: { token: TokenV1 }')
    .action(async (which: string, opts: { json?: boolean }) => {
      const r = await clientFrom(globals()).revokeToken(which);
      if (opts.json) return printJson(r);
      print(`revoked ${r.token.role} token "${r.token.name}" (${r.token.id}): it is refused from now on, and its dashboard sessions are ended`);
    });
}
