import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FileLogStore } from '../src/files/log-store.js';

describe('FileLogStore', () => {
  it('appends per attempt, reads from an offset, caps each attempt with one marker, never splits a character', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-logs-'));
    try {
      const logs = new FileLogStore(dir, 64);
      await logs.append(new Map([['att_a', { jobId: 'job_1', text: 'héllo\n' }], ['att_b', { jobId: 'job_1', text: 'other\n' }]]));
      await logs.append(new Map([['att_a', { jobId: 'job_1', text: 'wörld\n' }]]));
      const all = await logs.read('job_1', 'att_a', 0, 1000);
      assert.equal(all.data, 'héllo\nwörld\n');
      // 'é' is two bytes at offsets 1-2: a 2-byte read stops before it instead of splitting it.
      const part = await logs.read('job_1', 'att_a', 0, 2);
      assert.equal(part.data, 'h');
      assert.equal(part.nextOffset, 1);
      const rest = await logs.read('job_1', 'att_a', part.nextOffset, 1000);
      assert.equal(rest.data, 'éllo\nwörld\n');
      await logs.append(new Map([['att_a', { jobId: 'job_1', text: 'x'.repeat(200) }]]));
      await logs.append(new Map([['att_a', { jobId: 'job_1', text: 'dropped' }]]));
      const capped = await logs.read('job_1', 'att_a', 0, 10_000);
      assert.match(capped.data, /\[dsg\] log truncated/);
      assert.equal(capped.data.match(/log truncated/g)?.length, 1);
      assert.equal(capped.data.includes('dropped'), false);
      assert.deepEqual(await logs.read('job_1', 'att_missing', 0, 10), { data: '', size: 0, nextOffset: 0 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
