/**
 * The audit log service: records who did what, when and from where, and checks the chain (`dsg audit verify`).
 *
 * Every state-changing action of the API (submit, cancel, retry, tokens, sign-ins, node operations, collections)
 * and of the coordinator itself (a node joined, nodes pruned, retention) is appended through `record`, right after
 * the change committed. The entry is a separate commit from the change, so a crash between the two loses the entry
 * (never the change); the window is one SQLite commit wide. Putting the append inside every store transaction would
 * close it, at the price of threading audit entries through each store method — noted in docs/SECURITY.md.
 *
 * The **anchor** file (`audit-head.json` in the data dir, 0600) holds the last entry's seq and hash, rewritten after
 * each append. Rewriting the whole chain in the database (every later hash recomputed) or cutting its tail leaves
 * the anchor pointing at an entry that is not there or not the same: `verify` reports it. Someone who can write
 * both the database and the anchor can rewrite history undetected by this machine alone; `dsg audit verify` prints
 * the head so an operator can keep it elsewhere (and compare later with `--head`).
 *
 * Recording never fails the request that caused it: the action has happened; a failed append is logged as an
 * error (and the next verify shows no gap, since seqs are assigned at append time — the missing entry is simply
 * absent, which is why failures are logged loudly).
 */
import { createHash } from 'node:crypto';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { AuditChainChecker, type AuditActor, type AuditAction, type AuditAnchor, type AuditEntry, type AuditVerification } from '@dsg/core';
import type { GcReportV1 } from '@dsg/core';
import type { AuditQuery, Store } from '@dsg/store';
import type { Principal } from '../auth.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The coordinator acting on its own (timers: pruning, retention). */
export const SYSTEM_ACTOR: AuditActor = { kind: 'system', id: 'system', name: 'coordinator', role: 'system' };

/** Who a request spoke for: a node by its credential, or a token by its id and name. */
export function actorOf(p: Principal): AuditActor {
  return p.nodeId ? { kind: 'node', id: p.nodeId, name: p.name, role: p.role } : { kind: 'token', id: p.tokenId, name: p.name, role: p.role };
}

export interface AuditVerifyReport extends AuditVerification {
  /** Where the anchor was read from (null: this coordinator keeps none, e.g. in tests). */
  readonly anchorFile: string | null;
  /** The head the caller said it kept elsewhere, and whether the log still has it. */
  readonly expectedHead?: { readonly head: AuditAnchor; readonly found: boolean };
}

export class AuditLog {
  /** Appends and anchor writes, one at a time in order (the anchor must never go backwards). */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: { readonly store: Store; readonly clock: Clock; readonly log: Logger; readonly anchorFile: string | null }) {}

  /** Append an entry; resolves when it is stored (never rejects: see the header). */
  record(actor: AuditActor, action: AuditAction, target: string, detail: Record<string, unknown> = {}, origin = ''): Promise<AuditEntry | null> {
    const run = async (): Promise<AuditEntry | null> => {
      try {
        const entry = await this.deps.store.appendAudit({ at: this.deps.clock.now(), actor, action, target, detail, origin }, sha256Hex);
        if (this.deps.anchorFile) await writeAnchor(this.deps.anchorFile, { seq: entry.seq, hash: entry.hash });
        return entry;
      } catch (e) {
        this.deps.log.error({ err: e, action, target }, 'could not append to the audit log');
        return null;
      }
    };
    const p = this.tail.then(run, run);
    this.tail = p;
    return p;
  }

  /** Resolves once every record() called so far is stored (tests, shutdown). */
  async flush(): Promise<void> {
    await this.tail;
  }

  list(q: AuditQuery): Promise<readonly AuditEntry[]> {
    return this.deps.store.listAudit(q);
  }

  /** Walk the whole chain (in pages) and compare its head with the anchor and, if given, a head kept elsewhere. */
  async verify(expected?: AuditAnchor): Promise<AuditVerifyReport> {
    await this.flush();
    const read = this.deps.anchorFile ? await readAnchor(this.deps.anchorFile) : null;
    const anchor = read === 'unreadable' ? null : read;
    const checker = new AuditChainChecker(sha256Hex, anchor);
    let found = false;
    let after = 0;
    for (;;) {
      const page = await this.deps.store.listAudit({ ascending: true, afterSeq: after, limit: 5000 });
      for (const e of page) {
        checker.check(e);
        if (expected && e.seq === expected.seq && e.hash === expected.hash) found = true;
      }
      if (page.length < 5000) break;
      after = page[page.length - 1]!.seq;
    }
    const v = checker.finish();
    const problems = [...v.problems];
    if (read === 'unreadable') problems.push({ seq: 0, reason: `the anchor file ${this.deps.anchorFile} is unreadable: it was damaged or edited` });
    if (expected && !found) problems.push({ seq: expected.seq, reason: `the head you kept (entry ${expected.seq}, ${expected.hash.slice(0, 12)}…) is not in the log: it was rewritten or cut` });
    return {
      ...v,
      ok: problems.length === 0,
      problems,
      anchorFile: this.deps.anchorFile,
      ...(expected ? { expectedHead: { head: expected, found } } : {}),
    };
  }
}

async function writeAnchor(file: string, a: AuditAnchor): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ seq: a.seq, hash: a.hash })}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/** The anchor, null when none was kept yet, or 'unreadable' (a problem in itself). */
async function readAnchor(file: string): Promise<AuditAnchor | null | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const o = JSON.parse(text) as { seq?: unknown; hash?: unknown };
    if (typeof o.seq === 'number' && Number.isInteger(o.seq) && o.seq >= 0 && typeof o.hash === 'string') return { seq: o.seq, hash: o.hash };
  } catch { /* fall through */ }
  return 'unreadable';
}

/** What a collection removed, for its audit entry (ids of the first 50; the counts are complete). */
export const collectedDetail = (r: GcReportV1): Record<string, unknown> => ({
  jobs: r.jobs, workflows: r.workflows, bytesFreed: r.bytesFreed, removed: r.removed.slice(0, 50).map((x) => x.id),
});
