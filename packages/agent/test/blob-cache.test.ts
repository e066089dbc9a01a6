// The agent's input cache is verified: a cached blob whose content no longer matches its sha256 (disk error, a
// user editing it) is deleted and downloaded again instead of being handed to tasks. Real runner, real
// processes, a real HTTP server counting downloads.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Assignment } from '@dsg/core';
import { CoordinatorHttp } from '@dsg/agent';
import { assignment, runAttempt, sha, startBlobServer, TOKEN, type BlobServer } from './blob-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('verified input cache', () => {
  let root: string;
  let srv: BlobServer;
  let n = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsg-blobcache-'));
    srv = await startBlobServer();
  });
  after(async () => {
    await srv.close();
    await rm(root, { recursive: true, force: true });
  });

  /** A fresh agent state (blob cache + work dir) and a blob of its own, served by the server. */
  const setup = (content = `row ${++n}: ${'0123456789'.repeat(20)}\n`) => {
    const dir = join(root, `s${++n}`);
    const data = Buffer.from(content);
    const id = sha(data);
    srv.blobs.set(id, data);
    const warnings: string[] = [];
    const agent = () => new CoordinatorHttp(srv.url, TOKEN, join(dir, 'blobs'), { log: (level, m) => void (level === 'warn' && warnings.push(m)) });
    const task = (): Assignment => assignment({
      run: { kind: 'script', script: 'cat in/data.txt' },
      inputs: [{ path: 'in/data.txt', sha256: id, size: data.length, mode: 0o644 }],
    });
    const run = (http: CoordinatorHttp, a = task()) => runAttempt(a, http, join(dir, 'work'));
    return { dir, data, id, cached: join(dir, 'blobs', id), warnings, agent, task, run, gets: () => srv.gets.get(id) ?? 0 };
  };

  it('downloads a blob once, then serves the unchanged cached copy, also to a fresh agent process', async () => {
    const s = setup();
    const http = s.agent();
    for (let i = 0; i < 3; i++) assert.equal((await s.run(http)).logs, s.data.toString());
    assert.equal(s.gets(), 1);
    // A new CoordinatorHttp is what a restarted agent has: nothing verified yet, so it hashes the cached file,
    // finds it right and uses it.
    assert.equal((await s.run(s.agent())).logs, s.data.toString());
    assert.equal(s.gets(), 1, 'an intact cached blob is not downloaded again');
    assert.deepEqual(s.warnings, []);
  });

  it('a fresh agent finds a cached blob corrupted with the same size, deletes it and downloads it again', async () => {
    const s = setup();
    await s.run(s.agent());
    const bad = Buffer.from(s.data);
    bad[5] = bad[5]! ^ 0x20;
    await writeFile(s.cached, bad);
    const { fin, logs } = await s.run(s.agent());
    assert.deepEqual(fin.end, { kind: 'exited', exitCode: 0, signal: null });
    assert.equal(logs, s.data.toString(), 'the task got the right content');
    assert.equal(s.gets(), 2, 'fetched again');
    assert.deepEqual(await readFile(s.cached), s.data, 'the cache holds the right content again');
    assert.equal(s.warnings.length, 1);
    assert.match(s.warnings[0]!, new RegExp(`cached input ${s.id.slice(0, 12)}… is corrupted \\(its content hashes to ${sha(bad).slice(0, 12)}…\\)`));
  });

  it('the same agent notices a change after it verified a blob, even with its mtime put back', async () => {
    const s = setup();
    const http = s.agent();
    await s.run(http);
    // A whole-second mtime, so that it can be put back exactly (utimes takes a double of seconds). The touch
    // alone changes the signature: the blob is re-hashed, found intact and not downloaded again.
    const T = 1_700_000_000;
    await utimes(s.cached, T, T);
    assert.equal((await s.run(http)).logs, s.data.toString());
    assert.equal(s.gets(), 1);
    // Timestamps come from the kernel's coarse clock: let it tick, so the edit is visible in ctime.
    await sleep(30);
    const bad = Buffer.from(s.data);
    bad[0] = bad[0]! ^ 0x01;
    await writeFile(s.cached, bad);
    await utimes(s.cached, T, T);
    const st = await stat(s.cached, { bigint: true });
    assert.deepEqual([st.size, st.mtimeNs], [BigInt(s.data.length), BigInt(T) * 1_000_000_000n], 'size and mtime look unchanged');
    const { logs } = await s.run(http);
    assert.equal(logs, s.data.toString());
    assert.equal(s.gets(), 2);
    assert.equal(s.warnings.length, 1);
  });

  it('a truncated cached blob is downloaded again, by the same agent and by a fresh one', async () => {
    const s = setup();
    const http = s.agent();
    await s.run(http);
    await truncate(s.cached, 10);
    assert.equal((await s.run(http)).logs, s.data.toString());
    assert.equal(s.gets(), 2);
    await truncate(s.cached, 0);
    assert.equal((await s.run(s.agent())).logs, s.data.toString());
    assert.equal(s.gets(), 3);
    assert.match(s.warnings[1]!, new RegExp(`is corrupted \\(it has 0 bytes instead of ${s.data.length}\\)`));
  });

  it('concurrent tasks share one download, and one re-download of a corrupted blob', async () => {
    const s = setup(`big ${'x'.repeat(256 * 1024)}\n`);
    const http = s.agent();
    const first = await Promise.all(Array.from({ length: 4 }, () => s.run(http)));
    for (const r of first) assert.equal(r.logs, s.data.toString());
    assert.equal(s.gets(), 1);
    const bad = Buffer.from(s.data);
    bad[100] = bad[100]! ^ 0x01;
    await writeFile(s.cached, bad);
    const fresh = s.agent();
    const second = await Promise.all(Array.from({ length: 4 }, () => s.run(fresh)));
    for (const r of second) assert.equal(r.logs, s.data.toString());
    assert.equal(s.gets(), 2);
    assert.equal(s.warnings.length, 1);
  });

  it('refuses a download whose announced size is not the expected one, leaving nothing in the cache', async () => {
    const s = setup();
    const a = s.task();
    const { fin } = await s.run(s.agent(), { ...a, inputs: [{ ...a.inputs[0]!, size: s.data.length - 1 }] });
    assert.deepEqual(fin.end, {
      kind: 'error',
      reason: 'inputs_unavailable',
      message: `input ${s.id.slice(0, 12)}… could not be fetched: the coordinator announced ${s.data.length} bytes, expected ${s.data.length - 1}`,
    });
    assert.equal(fin.startedAt, null);
    assert.deepEqual(await readdir(join(s.dir, 'blobs')), []);
  });

  it('refuses a download without a content-length that is shorter than expected, or whose content is wrong', async () => {
    const s = setup();
    srv.chunked.add(s.id);
    srv.blobs.set(s.id, s.data.subarray(0, 7));
    const short = await s.run(s.agent());
    assert.equal((short.fin.end as { message?: string }).message, `input ${s.id.slice(0, 12)}… arrived truncated (7 of ${s.data.length} bytes)`);
    const wrong = Buffer.from(s.data);
    wrong[3] = wrong[3]! ^ 0x01;
    srv.blobs.set(s.id, wrong);
    const bad = await s.run(s.agent());
    assert.equal((bad.fin.end as { message?: string }).message, `input ${s.id.slice(0, 12)}… arrived corrupted (hash ${sha(wrong).slice(0, 12)}…)`);
    assert.deepEqual(await readdir(join(s.dir, 'blobs')), [], 'no partial or wrong file left behind');
  });
});
