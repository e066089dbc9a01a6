/**
 * The audit log's rules: what an entry holds, the exact bytes that are hashed, and how a chain is checked. Pure (the
 * hash function is passed in, so this package stays free of `node:*`); every Store and the verifier use the same
 * functions, so "what was signed" is defined once.
 *
 * An entry's hash is sha256(prevHash + "\n" + payload), where payload is the canonical JSON of every field except
 * the two hashes (fixed key order, no whitespace). Entry 1 chains to GENESIS. Editing, inserting, deleting or
 * reordering any entry breaks the chain at that entry (its own hash or its link to the previous one), unless the
 * attacker recomputes every later hash too — which the **anchor** (the head seq and hash, kept outside the database
 * and printable for safekeeping elsewhere) catches: a head that no longer matches the anchor, or a shorter chain.
 */

/** The hash entry 1 chains to. */
export const AUDIT_GENESIS = '0'.repeat(64);

/** Who did it: a token (admin, submitter, reader, join token), a node (by its credential) or the coordinator itself. */
export interface AuditActor {
  readonly kind: 'token' | 'node' | 'system';
  /** Token id, node id, or `system`. */
  readonly id: string;
  readonly name: string;
  /** The token's role; `system` for the coordinator. */
  readonly role: string;
}

/** What is recorded; `seq`, `prevHash` and `hash` are added when it is appended. */
export interface AuditInput {
  readonly at: number;
  readonly actor: AuditActor;
  /** Dotted, past tense: `job.submitted`, `node.drained`, `token.revoked`, … (see AUDIT_ACTIONS). */
  readonly action: string;
  /** The id the action was about (job, workflow, node, token), or '' when none. */
  readonly target: string;
  /** A small JSON object with the facts worth keeping (name, project, counts, reason). */
  readonly detail: Readonly<Record<string, unknown>>;
  /** Where the request came from: the client's IP address, or '' for the coordinator's own actions. */
  readonly origin: string;
}

export interface AuditEntry extends AuditInput {
  /** 1, 2, 3, … with no gaps. */
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/** Every action the coordinator records (the dashboard and `dsg audit list --action` use these names). */
export const AUDIT_ACTIONS = [
  'job.submitted', 'job.cancelled', 'job.retried',
  'workflow.submitted', 'workflow.cancelled', 'workflow.retried',
  'token.created', 'token.revoked', 'joincode.created', 'session.signed-in',
  'joincode.revoked',
  'node.joined', 'node.cordoned', 'node.drained', 'node.uncordoned', 'node.removed', 'node.revoked', 'nodes.pruned',
  'node.approved', 'node.rejected',
  'data.collected',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** JSON with object keys sorted at every level: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** The bytes an entry's hash covers (everything but the hashes, with its sequence number). */
export function auditPayload(seq: number, e: AuditInput): string {
  return canonicalJson({ seq, at: e.at, actor: { kind: e.actor.kind, id: e.actor.id, name: e.actor.name, role: e.actor.role }, action: e.action, target: e.target, detail: e.detail, origin: e.origin });
}

export type HashFn = (text: string) => string;

/** The hash of entry `seq` chained to `prevHash`. */
export const auditHash = (hash: HashFn, prevHash: string, seq: number, e: AuditInput): string => hash(`${prevHash}\n${auditPayload(seq, e)}`);

/** The head of a chain as kept outside the database. */
export interface AuditAnchor {
  readonly seq: number;
  readonly hash: string;
}

export interface AuditProblem {
  /** The first entry that does not check out (for a truncated chain: the first missing one). */
  readonly seq: number;
  readonly reason: string;
}

export interface AuditVerification {
  readonly ok: boolean;
  /** Entries checked. */
  readonly entries: number;
  /** The last entry's seq and hash (0 and GENESIS for an empty log). */
  readonly head: AuditAnchor;
  /** Every problem found, first one first (a chain broken at one entry is reported once, not at every later one). */
  readonly problems: readonly AuditProblem[];
  /** How the head compared with the anchor: `match`, `none` (no anchor kept), or what is wrong. */
  readonly anchor: 'match' | 'none' | 'mismatch' | 'behind';
}

/**
 * Walks a chain in seq order and checks it: contiguous seqs from 1, each entry's own hash, each link. After a
 * break it re-bases on the entry found (so one inserted row is one problem, not a cascade), then compares the head
 * with the anchor. Feed it in pages: `check(entry)` for each, then `finish()`. Entries appended after the anchor was last
 * written (a crash between the two writes) are fine: the anchor's entry must still be the one it names.
 */
export class AuditChainChecker {
  private expectedSeq = 1;
  private prevHash = AUDIT_GENESIS;
  private count = 0;
  private readonly problems: AuditProblem[] = [];
  private head: AuditAnchor = { seq: 0, hash: AUDIT_GENESIS };
  /** The hash found at the anchor's seq, when the walk passed it. */
  private atAnchor: string | null = null;

  constructor(private readonly hash: HashFn, private readonly anchor: AuditAnchor | null) {}

  check(e: AuditEntry): void {
    this.count += 1;
    if (e.seq !== this.expectedSeq) {
      this.problems.push(e.seq > this.expectedSeq
        ? { seq: this.expectedSeq, reason: e.seq - 1 > this.expectedSeq ? `entries ${this.expectedSeq}–${e.seq - 1} are missing (deleted)` : `entry ${this.expectedSeq} is missing (deleted)` }
        : { seq: e.seq, reason: `entry ${e.seq} appears out of order or twice (after ${this.expectedSeq - 1})` });
    } else if (e.prevHash !== this.prevHash) {
      this.problems.push({ seq: e.seq, reason: `entry ${e.seq} does not link to entry ${e.seq - 1} (an entry before it was changed, inserted or removed)` });
    } else if (auditHash(this.hash, e.prevHash, e.seq, e) !== e.hash) {
      this.problems.push({ seq: e.seq, reason: `entry ${e.seq} was edited: its contents no longer match its hash` });
    }
    if (this.anchor && e.seq === this.anchor.seq) this.atAnchor = e.hash;
    this.expectedSeq = e.seq + 1;
    this.prevHash = e.hash;
    this.head = { seq: e.seq, hash: e.hash };
  }

  finish(): AuditVerification {
    const problems = [...this.problems];
    const anchor = this.anchor;
    let a: AuditVerification['anchor'] = 'none';
    if (anchor && anchor.seq > 0) {
      if (anchor.seq > this.head.seq) {
        a = 'behind';
        problems.push({ seq: this.head.seq + 1, reason: `the log ends at entry ${this.head.seq} but entry ${anchor.seq} was written: entries ${this.head.seq + 1}–${anchor.seq} were removed` });
      } else if (this.atAnchor !== anchor.hash) {
        a = 'mismatch';
        problems.push({ seq: anchor.seq, reason: `entry ${anchor.seq} is not the one that was written (its hash differs from the anchor's): the log was rewritten` });
      } else a = 'match';
    } else if (anchor) a = 'match';
    return { ok: problems.length === 0, entries: this.count, head: this.head, problems, anchor: a };
  }
}
