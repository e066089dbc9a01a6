// Required outputs: after an exit with code 0, every pattern in `outputs` must match a file; patterns in
// `optionalOutputs` may match nothing. Real runner, real processes, a real HTTP server for the uploads.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { classifyEnd } from '@dsg/core';
import { CoordinatorHttp } from '@dsg/agent';
import { assignment, runAttempt, sha, startBlobServer, TOKEN, type BlobServer } from './blob-server.js';

describe('required outputs', () => {
  let dir: string;
  let srv: BlobServer;
  let http: CoordinatorHttp;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-outputs-'));
    srv = await startBlobServer();
    http = new CoordinatorHttp(srv.url, TOKEN, join(dir, 'blobs'));
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });
  const run = (over: Parameters<typeof assignment>[0]) => runAttempt(assignment(over), http, join(dir, 'work'));

  it('fails an exit 0 that leaves a required pattern unmatched, as a user failure naming it, and still uploads what exists', async () => {
    const { fin } = await run({
      run: { kind: 'script', script: 'mkdir -p out; echo r > out/r.txt' },
      outputs: ['out/*.txt', 'out/*.json'],
    });
    assert.deepEqual(fin.end, {
      kind: 'error',
      reason: 'outputs_missing',
      message: 'output pattern "out/*.json" matched no file in the working directory (mark it optional if it may be absent)',
    });
    assert.equal(classifyEnd(fin.end)?.kind, 'user');
    assert.deepEqual(fin.outputs, [{ path: 'out/r.txt', size: 2, sha256: sha('r\n') }]);
    assert.equal(srv.uploads.get('out/r.txt')?.body, 'r\n');
    assert.notEqual(fin.startedAt, null);
  });

  it('names every unmatched pattern', async () => {
    const { fin } = await run({ outputs: ['a/*.csv', 'b.txt'] });
    assert.deepEqual(fin.end, {
      kind: 'error',
      reason: 'outputs_missing',
      message: 'output patterns "a/*.csv", "b.txt" matched no file in the working directory (mark them optional if they may be absent)',
    });
    assert.deepEqual(fin.outputs, []);
  });

  it('lets optional patterns match nothing, and collects them when they match', async () => {
    const { fin } = await run({
      run: { kind: 'script', script: 'echo m > main.txt; echo d > debug.log' },
      outputs: ['main.txt'],
      optionalOutputs: ['*.log', 'plots/*.png'],
    });
    assert.deepEqual(fin.end, { kind: 'exited', exitCode: 0, signal: null });
    assert.deepEqual(fin.outputs.map((o) => o.path), ['debug.log', 'main.txt']);
  });

  it('succeeds when every required pattern matches (a file matched by two patterns is uploaded once)', async () => {
    const { fin } = await run({ run: { kind: 'script', script: 'echo x > x.txt' }, outputs: ['*.txt', 'x.txt'], optionalOutputs: ['x.*'] });
    assert.deepEqual(fin.end, { kind: 'exited', exitCode: 0, signal: null });
    assert.deepEqual(fin.outputs.map((o) => o.path), ['x.txt']);
  });

  it('keeps a non-zero exit as it is, and uploads the outputs that exist', async () => {
    const { fin } = await run({ run: { kind: 'script', script: 'echo p > partial.txt; exit 3' }, outputs: ['*.txt', 'final.json'] });
    assert.deepEqual(fin.end, { kind: 'exited', exitCode: 3, signal: null });
    assert.deepEqual(fin.outputs.map((o) => o.path), ['partial.txt']);
  });

  it('keeps a timeout as it is', async () => {
    const { fin } = await run({ run: { kind: 'command', argv: ['sleep', '10'] }, timeoutMs: 200, outputs: ['never.txt'] });
    assert.deepEqual(fin.end, { kind: 'timeout', timeoutMs: 200 });
  });

  it('counts a link that stays inside the working dir (its file is uploaded), never one that leads outside', async () => {
    const inside = await run({ run: { kind: 'script', script: 'echo t > target.dat; ln -s target.dat result.txt' }, outputs: ['result.txt'] });
    assert.deepEqual(inside.fin.end, { kind: 'exited', exitCode: 0, signal: null });
    assert.deepEqual(inside.fin.outputs.map((o) => [o.path, o.size]), [['result.txt', 2]]);
    const outside = await run({ run: { kind: 'script', script: 'ln -s /etc/hostname result.txt' }, outputs: ['result.txt'] });
    assert.equal(outside.fin.end.kind, 'error');
    assert.equal((outside.fin.end as { reason: string }).reason, 'outputs_missing');
    assert.match((outside.fin.end as { message: string }).message, /output "result.txt" was not uploaded: it resolves to outside the working directory/);
    assert.deepEqual(outside.fin.outputs, []);
  });
});
