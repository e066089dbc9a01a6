import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { href, parseRoute } from '../src/lib/route.js';

describe('dashboard addresses', () => {
  it('parses every page, with its query', () => {
    assert.deepEqual(parseRoute(''), { page: 'overview' });
    assert.deepEqual(parseRoute('#/'), { page: 'overview' });
    assert.deepEqual(parseRoute('#/jobs?state=failed&project=climate'), { page: 'jobs', query: { state: 'failed', project: 'climate' } });
    assert.deepEqual(parseRoute('#/jobs/job_01abc'), { page: 'job', id: 'job_01abc', query: {} });
    assert.deepEqual(parseRoute('#/jobs/job_01abc/tasks/12?attempt=2'), { page: 'task', id: 'job_01abc', index: 12, query: { attempt: '2' } });
    assert.deepEqual(parseRoute('#/workflows/wf_1'), { page: 'workflow', id: 'wf_1' });
    assert.deepEqual(parseRoute('#/nodes/lab-pc-1'), { page: 'node', id: 'lab-pc-1' });
    assert.deepEqual(parseRoute('#/audit?before=40'), { page: 'audit', query: { before: '40' } });
  });
  it('sends anything else to "not found" instead of guessing', () => {
    assert.equal(parseRoute('#/jobs/a/b').page, 'not-found');
    assert.equal(parseRoute('#/jobs/x/tasks/-1').page, 'not-found');
    assert.equal(parseRoute('#/jobs/<script>').page, 'not-found');
    assert.equal(parseRoute('#/nope').page, 'not-found');
  });
  it('builds links that parse back, leaving empty values out', () => {
    const h = href('/jobs', { state: '', project: 'a b&c', page: undefined });
    assert.equal(h, '#/jobs?project=a%20b%26c');
    assert.deepEqual(parseRoute(h), { page: 'jobs', query: { project: 'a b&c' } });
  });
});
