import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { estimateRemainingMs, formatAgo, formatBytes, formatDuration, formatSpan } from '../src/lib/format.js';

describe('time and size formatting', () => {
  it('formats durations for people, at every scale', () => {
    const cases: Array<[number, string]> = [
      [0, '0 ms'], [850, '850 ms'], [1000, '1 s'], [59_400, '59 s'], [60_000, '1 min'], [184_000, '3 min 4 s'],
      [3_600_000, '1 h'], [7_500_000, '2 h 5 min'], [86_400_000, '1 d'], [100_800_000, '1 d 4 h'], [-1, '?'], [Number.NaN, '?'],
    ];
    for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, `${ms} ms`);
  });
  it('formats times relative to now, past and future, and says "—" for none', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    assert.equal(formatAgo(null, now), '—');
    assert.equal(formatAgo('not a time', now), '?');
    assert.equal(formatAgo('2026-01-01T12:00:00.500Z', now), 'just now');
    assert.equal(formatAgo('2026-01-01T11:59:55Z', now), '5 s ago');
    assert.equal(formatAgo('2026-01-01T11:57:00Z', now), '3 min ago');
    assert.equal(formatAgo('2026-01-01T12:02:00Z', now), 'in 2 min');
  });
  it('measures spans up to now while running', () => {
    const now = Date.parse('2026-01-01T12:00:10Z');
    assert.equal(formatSpan(null, null, now), '—');
    assert.equal(formatSpan('2026-01-01T12:00:00Z', null, now), '10 s');
    assert.equal(formatSpan('2026-01-01T12:00:00Z', '2026-01-01T12:00:03Z', now), '3 s');
  });
  it('formats sizes in binary units', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(2 * 1024 ** 3), '2 GiB');
    assert.equal(formatBytes(-5), '?');
  });
  it('estimates the time left from the pace so far, and gives none without a pace', () => {
    assert.equal(estimateRemainingMs({ total: 10, done: 0, startedAt: 0, now: 5000 }), null, 'nothing done yet');
    assert.equal(estimateRemainingMs({ total: 10, done: 10, startedAt: 0, now: 5000 }), null, 'nothing left');
    assert.equal(estimateRemainingMs({ total: 10, done: 5, startedAt: null, now: 5000 }), null, 'not started');
    assert.equal(estimateRemainingMs({ total: 10, done: 2, startedAt: 0, now: 4000 }), 16_000);
  });
});
