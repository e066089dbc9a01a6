import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { currentCursor, decodePager, encodePager, firstPage, MAX_REMEMBERED, nextPage, pageNumber, previousPage } from '../src/lib/pager.js';

describe('cursor pager', () => {
  it('walks forward and back through keyset pages', () => {
    let s = firstPage();
    assert.equal(currentCursor(s), undefined);
    assert.equal(pageNumber(s), 1);
    s = nextPage(s, 'job_b');
    s = nextPage(s, 'job_a');
    assert.equal(currentCursor(s), 'job_a');
    assert.equal(pageNumber(s), 3);
    s = previousPage(s);
    assert.equal(currentCursor(s), 'job_b');
    s = previousPage(previousPage(s));
    assert.deepEqual(s, firstPage(), 'never before the first page');
  });
  it('stays on the last page when there is no next cursor', () => {
    const s = nextPage(firstPage(), 'x');
    assert.equal(nextPage(s, null), s);
  });
  it('round-trips through one URL parameter, dropping what is malformed and keeping the URL short', () => {
    const s = nextPage(nextPage(firstPage(), 'job_1'), 'a,b/c');
    assert.deepEqual(decodePager(encodePager(s)), s);
    assert.deepEqual(decodePager(''), firstPage());
    assert.deepEqual(decodePager('%E0%A4%A,ok'), { cursors: ['ok'] }, 'a broken escape is dropped');
    assert.deepEqual(decodePager(`${'x'.repeat(201)},ok`), { cursors: ['ok'] }, 'an over-long cursor is dropped');
    let long = firstPage();
    for (let i = 0; i < 50; i++) long = nextPage(long, `c${i}`);
    const back = decodePager(encodePager(long));
    assert.equal(back.cursors.length, MAX_REMEMBERED);
    assert.equal(currentCursor(back), 'c49', 'the current page survives');
  });
});
