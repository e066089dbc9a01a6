// Join codes: four words from a list of 2,048, read back however a person types them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JOIN_CODE_WORDS, joinCodeFromIndexes, looksLikeJoinCode, normalizeJoinCode, ValidationError } from '../src/index.js';

describe('join codes', () => {
  it('uses 2,048 distinct words, no two alike in their first four letters (44 bits in four words)', () => {
    assert.equal(JOIN_CODE_WORDS.length, 2048);
    assert.equal(new Set(JOIN_CODE_WORDS.map((w) => w.slice(0, 4))).size, 2048);
    assert.ok(JOIN_CODE_WORDS.every((w) => /^[a-z]{3,8}$/.test(w)));
  });

  it('makes a code from four indexes and refuses anything else', () => {
    assert.equal(joinCodeFromIndexes([0, 1, 2, 2047]), 'abandon-ability-able-zoo');
    for (const bad of [[0, 1, 2], [0, 1, 2, 2048], [0, 1, 2, -1], [0, 1, 2, 1.5]]) assert.throws(() => joinCodeFromIndexes(bad), RangeError);
  });

  it('reads a code in any case with hyphens, spaces, dots or underscores', () => {
    for (const typed of ['apple-river-cannon-ozone', 'Apple River Cannon Ozone', ' apple.river_cannon  ozone ', 'APPLE-RIVER-CANNON-OZONE'])
      assert.equal(normalizeJoinCode(typed), 'apple-river-cannon-ozone', typed);
  });

  it('names a word that is not in the list, with the words that start alike', () => {
    assert.throws(() => normalizeJoinCode('apple rivr cannon ozone', 'DSG_JOIN_CODE'), (e: unknown) =>
      e instanceof ValidationError && e.issues.length === 1 && e.issues[0]!.path === 'DSG_JOIN_CODE' && /"rivr" is not a join-code word \(did you mean rival, river\?\)/.test(e.message));
    assert.throws(() => normalizeJoinCode('apple river cannon'), /a join code is 4 words .* got 3 words/);
    assert.throws(() => normalizeJoinCode(''), /got 0 words/);
  });

  it('tells a code from a token', () => {
    assert.equal(looksLikeJoinCode('apple-river-cannon-ozone'), true);
    assert.equal(looksLikeJoinCode('apple river cannon ozone'), true);
    assert.equal(looksLikeJoinCode('dsg_node_AbC-12_xyz'), false);
    // A token whose random part is all letters around one underscore (CI drew one: its agent read it as a code).
    assert.equal(looksLikeJoinCode('dsg_node_VGLjQPJVfJqUBlaSa_ALuqFhBkUTbIIU'), false);
    assert.equal(looksLikeJoinCode('dsg_cred_abcdefghijklmnopqrstu_vwxyzABCDEFGHIJKLMNOPQRSTU'), false);
    assert.equal(looksLikeJoinCode('  dsg_admin_Abc_Def  '), false);
    assert.equal(looksLikeJoinCode('one-two-three'), false);
  });
});
