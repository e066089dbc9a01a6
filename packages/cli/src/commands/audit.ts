/**
 * `dsg audit list | verify` (admin, reader): who did what, when and from where, and a check that nobody edited,
 * inserted, deleted or reordered an entry since (the entries are hash-chained; see docs/SECURITY.md).
 */
import type { Command } from 'commander';
import { AUDIT_ACTIONS, parseDuration, ValidationError, type AuditEntryV1 } from '@dsg/core';
import { clientFrom, Exit, ExitCode, info, print, printJson, type GlobalFlags } from '../context.js';
import { ago, bold, dim, green, red, table } from '../format.js';

/** `--since 2h` (a duration back from now) or an ISO date/time. */
export function parseSince(text: string): string {
  const ms = parseDuration(text);
  if (ms !== null) return new Date(Date.now() - ms).toISOString();
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new ValidationError([{ path: '--since', message: `expected a duration like 2h or 7d, or a date like 2026-12-01T09:00Z; got "${text}"` }]);
  return new Date(t).toISOString();
}

const who = (e: AuditEntryV1): string => (e.actor.kind === 'system' ? dim('coordinator') : `${e.actor.name} ${dim(`(${e.actor.role})`)}`);

function summary(e: AuditEntryV1): string {
  const d = e.detail;
  const bits: string[] = [];
  for (const k of ['name', 'project', 'tasks', 'stages', 'role', 'requeued', 'requeuedTasks', 'jobs', 'count']) {
    const v = d[k];
    if (v !== undefined && v !== null && typeof v !== 'object') bits.push(`${k}=${String(v)}`);
  }
  return bits.join(' ');
}

export function registerAudit(program: Command, globals: () => GlobalFlags): void {
  const group = program.command('audit').description('the audit log: who did what, when and from where (admin, reader)')
    .addHelpText('after', `
Examples:
  dsg audit list --since 7d           the last week, newest first
  dsg audit list --actor alice        what one token did
  dsg audit verify                    prove nobody edited, inserted or deleted an entry`);

  group
    .command('list')
    .description('recent entries, newest first')
    .option('--limit <n>', 'how many entries (1–1000)', '50')
    .option('--action <action>', `only this action (${AUDIT_ACTIONS.join(', ')})`)
    .option('--actor <name>', 'only actions by this token or node name (`coordinator` for its own)')
    .option('--since <when>', 'only entries since then: a duration back from now (2h, 7d) or a date')
    .option('--json', 'print JSON: { items: AuditEntryV1[], nextBefore }')
    .action(async (opts: { limit: string; action?: string; actor?: string; since?: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ValidationError([{ path: '--limit', message: `expected a whole number from 1 to 1000; got "${opts.limit}"` }]);
      if (opts.action && !(AUDIT_ACTIONS as readonly string[]).includes(opts.action))
        throw new ValidationError([{ path: '--action', message: `unknown action "${opts.action}"; one of ${AUDIT_ACTIONS.join(', ')}` }]);
      const page = await clientFrom(globals()).auditList({
        limit, ...(opts.action ? { action: opts.action } : {}), ...(opts.actor ? { actor: opts.actor } : {}), ...(opts.since ? { since: parseSince(opts.since) } : {}),
      });
      if (opts.json) return printJson(page);
      if (page.items.length === 0) return print('no audit entries match');
      print(table(['#', 'WHEN', 'WHO', 'FROM', 'ACTION', 'TARGET', 'DETAIL'], page.items.map((e) => [
        String(e.seq), ago(e.at), who(e), e.origin || '-', bold(e.action), e.target || '-', summary(e),
      ])));
      if (page.nextBefore !== null) print(dim(`\nolder entries: --limit ${limit * 2}, or GET /api/v1/audit?before=${page.nextBefore}`));
    });

  group
    .command('verify')
    .description('check the hash chain: exits 0 when intact, 1 naming the first entry edited, inserted, deleted or reordered')
    .option('--head <seq:hash>', 'a head you kept from an earlier verify: check it is still in the log (catches a rewritten history)')
    .option('--json', 'print JSON: AuditVerifyV1')
    .addHelpText('after', `
Each entry carries the hash of the one before it, and the coordinator keeps the latest head in audit-head.json
beside the database. Keep the head printed here somewhere else too (a lab notebook, an email): pass it back with
--head later, and a history rewritten together with that file is caught as well.`)
    .action(async (opts: { head?: string; json?: boolean }) => {
      if (opts.head && !/^\d+:[0-9a-f]{64}$/.test(opts.head))
        throw new ValidationError([{ path: '--head', message: `expected SEQ:HASH as printed by \`dsg audit verify\`; got "${opts.head}"` }]);
      const v = await clientFrom(globals()).auditVerify(opts.head);
      if (opts.json) printJson(v);
      else if (v.ok) {
        print(`${green('intact')}: ${v.entries} entries, hash chain unbroken${v.anchor === 'match' ? ', head matches the anchor file' : v.anchor === 'none' ? ' (no anchor file yet)' : ''}${v.expectedHeadFound ? ', and your head is in the log' : ''}`);
        print(`head: ${v.head.seq}:${v.head.hash}`);
        info(dim('keep this head elsewhere; `dsg audit verify --head SEQ:HASH` later proves nothing before it was rewritten'));
      } else {
        print(red(`TAMPERED: ${v.problems.length} problem(s) in ${v.entries} entries`));
        for (const p of v.problems) print(`  entry ${p.seq}: ${p.reason}`);
        info('the log no longer proves its history: compare with a backup of the data dir, and look at who had access to it');
      }
      if (!v.ok) throw new ExitCode(Exit.failed);
    });
}
