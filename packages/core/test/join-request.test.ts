// Joining by approval, the pure parts: the pending id derived from the agent's key, and the request schema's bounds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JoinRequestV1Schema, pendingNodeIdOf } from '@dsg/core';

const FACTS = { hostname: 'pc', os: 'Linux', arch: 'x64', cpuModel: 'cpu', cores: 4, memoryBytes: 1, gpus: [] };

describe('pendingNodeIdOf', () => {
  it('takes the first 40 bits of the hash as 8 Crockford base32 symbols, in two groups', () => {
    assert.equal(pendingNodeIdOf('0'.repeat(64)), '0000-0000');
    assert.equal(pendingNodeIdOf('f'.repeat(64)), 'ZZZZ-ZZZZ');
    // 0x0842108421 = 00001 00001 00001 … : every symbol is 1.
    assert.equal(pendingNodeIdOf(`0842108421${'0'.repeat(54)}`), '1111-1111');
    // Only the first 10 hex digits count.
    assert.equal(pendingNodeIdOf(`abcdef0123${'0'.repeat(54)}`), pendingNodeIdOf(`abcdef0123${'f'.repeat(54)}`));
  });
  it('never uses I, L, O or U, and refuses what is not a sha256 in hex', () => {
    for (let i = 0; i < 200; i++) {
      const hex = Array.from({ length: 64 }, (_, k) => '0123456789abcdef'[(i * 7 + k * 13 + (i * k) % 5) % 16]).join('');
      assert.match(pendingNodeIdOf(hex), /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
    }
    assert.throws(() => pendingNodeIdOf('ABC'), RangeError);
    assert.throws(() => pendingNodeIdOf('F'.repeat(64)), RangeError);
  });
});

describe('JoinRequestV1Schema (the one body accepted without a token)', () => {
  const key = 'k'.repeat(43);
  it('accepts a bounded request and refuses every field out of bounds or unknown', () => {
    assert.ok(JoinRequestV1Schema.safeParse({ key, name: 'lab-pc.3_a', facts: FACTS }).success);
    const bad = [
      { key: 'short', name: 'pc', facts: FACTS },
      { key: 'k'.repeat(87), name: 'pc', facts: FACTS },
      { key: `${'k'.repeat(42)}!`, name: 'pc', facts: FACTS },
      { key, name: '-pc', facts: FACTS },
      { key, name: 'a'.repeat(64), facts: FACTS },
      { key, name: 'pc/../x', facts: FACTS },
      { key, name: 'pc', facts: { ...FACTS, hostname: 'h'.repeat(254) } },
      { key, name: 'pc', facts: { ...FACTS, cores: -1 } },
      { key, name: 'pc', facts: { ...FACTS, cores: 1.5 } },
      { key, name: 'pc', facts: { ...FACTS, gpus: Array(65).fill('g') } },
      { key, name: 'pc', facts: { ...FACTS, extra: 1 } },
      { key, name: 'pc', facts: FACTS, extra: 1 },
    ];
    for (const b of bad) assert.equal(JoinRequestV1Schema.safeParse(b).success, false, JSON.stringify(b).slice(0, 120));
  });
});
