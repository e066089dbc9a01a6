// The audit chain's rules (pure): canonical JSON, and the checker catching an edited, inserted, deleted,
// reordered or truncated entry, and a rewritten chain through the anchor.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { AUDIT_GENESIS, AuditChainChecker, auditHash, canonicalJson, type AuditAnchor, type AuditEntry, type AuditInput } from '../src/index.js';

const sha = (t: string): string => createHash('sha256').update(t).digest('hex');

function chain(n: number): AuditEntry[] {
  const out: AuditEntry[] = [];
  let prev = AUDIT_GENESIS;
  for (let seq = 1; seq <= n; seq++) {
    const input: AuditInput = {
      at: 1_700_000_000_000 + seq, actor: { kind: 'token', id: `tok_${seq % 3}`, name: `user${seq % 3}`, role: 'admin' },
      action: seq % 2 ? 'job.submitted' : 'job.cancelled', target: `job_${seq}`, detail: { name: `run ${seq}`, tasks: seq }, origin: '10.0.0.7',
    };
    const e: AuditEntry = { ...input, seq, prevHash: prev, hash: auditHash(sha, prev, seq, input) };
    out.push(e);
    prev = e.hash;
  }
  return out;
}

/** Re-hash every entry from `from` on, as an attacker who rewrites history would. */
function rehash(entries: AuditEntry[]): AuditEntry[] {
  let prev = AUDIT_GENESIS;
  return entries.map((e, i) => {
    const seq = i + 1;
    const r = { ...e, seq, prevHash: prev, hash: auditHash(sha, prev, seq, e) };
    prev = r.hash;
    return r;
  });
}

function verify(entries: readonly AuditEntry[], anchor: AuditAnchor | null = null) {
  const c = new AuditChainChecker(sha, anchor);
  for (const e of entries) c.check(e);
  return c.finish();
}

describe('audit chain', () => {
  it('canonical JSON sorts keys at every level and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
    assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  });

  it('an intact chain verifies, with its head, against its anchor', () => {
    const c = chain(20);
    const v = verify(c, { seq: 20, hash: c[19]!.hash });
    assert.equal(v.ok, true, JSON.stringify(v.problems));
    assert.equal(v.entries, 20);
    assert.deepEqual(v.head, { seq: 20, hash: c[19]!.hash });
    assert.equal(v.anchor, 'match');
    assert.equal(verify([]).ok, true);
    assert.equal(verify(c).anchor, 'none');
  });

  it('an edited entry is named (its detail, its actor, its time)', () => {
    for (const edit of [
      (e: AuditEntry) => ({ ...e, detail: { ...e.detail, tasks: 999 } }),
      (e: AuditEntry) => ({ ...e, actor: { ...e.actor, name: 'someone else' } }),
      (e: AuditEntry) => ({ ...e, at: e.at + 1 }),
      (e: AuditEntry) => ({ ...e, origin: '127.0.0.1' }),
    ]) {
      const c = chain(10);
      c[4] = edit(c[4]!);
      const v = verify(c);
      assert.equal(v.ok, false);
      assert.equal(v.problems.length, 1, 'one edit is one problem, not a cascade');
      assert.equal(v.problems[0]!.seq, 5);
      assert.match(v.problems[0]!.reason, /entry 5 was edited/);
    }
  });

  it('a deleted entry is named', () => {
    const c = chain(10);
    c.splice(6, 1);
    const v = verify(c);
    assert.equal(v.ok, false);
    assert.equal(v.problems[0]!.seq, 7);
    assert.match(v.problems[0]!.reason, /entry 7 is missing/);
  });

  it('an inserted entry (seqs renumbered after it) breaks the next link', () => {
    const c = chain(10);
    const forged: AuditEntry = { ...c[3]!, target: 'job_forged', hash: 'f'.repeat(64) };
    const tampered = [...c.slice(0, 4), { ...forged, seq: 5 }, ...c.slice(4).map((e) => ({ ...e, seq: e.seq + 1 }))];
    const v = verify(tampered);
    assert.equal(v.ok, false);
    assert.equal(v.problems[0]!.seq, 5);
  });

  it('reordered entries are caught', () => {
    const c = chain(10);
    const swapped = [...c];
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    const v = verify(swapped);
    assert.equal(v.ok, false);
    assert.equal(v.problems[0]!.seq, 3);
  });

  it('a chain rewritten from scratch passes its own links but not the anchor', () => {
    const c = chain(10);
    const anchor = { seq: 10, hash: c[9]!.hash };
    c[2] = { ...c[2]!, detail: { name: 'nothing to see' } };
    const rewritten = rehash(c);
    assert.equal(verify(rewritten).ok, true, 'without an anchor a full rewrite is undetectable (documented)');
    const v = verify(rewritten, anchor);
    assert.equal(v.ok, false);
    assert.equal(v.anchor, 'mismatch');
  });

  it('a cut tail is caught by the anchor; entries appended after the anchor are fine', () => {
    const c = chain(10);
    const v = verify(c.slice(0, 7), { seq: 10, hash: c[9]!.hash });
    assert.equal(v.ok, false);
    assert.equal(v.anchor, 'behind');
    assert.equal(v.problems[0]!.seq, 8);
    assert.equal(verify(c, { seq: 8, hash: c[7]!.hash }).ok, true, 'an anchor one write behind (crash between the two) still checks entry 8');
    assert.equal(verify(c, { seq: 8, hash: c[6]!.hash }).ok, false);
  });
});
