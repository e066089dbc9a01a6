// The runner against a small real HTTP server standing in for the coordinator's blob and output endpoints.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, readdir, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentMessage, Assignment } from '@dsg/core';
import { AttemptRun, CoordinatorHttp, NativeExecutor } from '@dsg/agent';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const SCRIPT = 'print("hello from input")\n';

describe('AttemptRun', () => {
  let dir: string;
  let server: Server;
  let url: string;
  const uploads = new Map<string, { sha: string; body: string }>();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsg-runner-'));
    server = createServer((req, res) => {
      if (req.headers.authorization !== 'Bearer t0k') return void res.writeHead(401).end();
      const m = /^\/api\/v1\/blobs\/([0-9a-f]{64})$/.exec(req.url ?? '');
      if (req.method === 'GET' && m) {
        if (m[1] === sha(SCRIPT)) return void res.writeHead(200).end(SCRIPT);
        return void res.writeHead(404).end();
      }
      const o = /^\/api\/v1\/attempts\/([^/]+)\/outputs\/(.+)$/.exec(req.url ?? '');
      if (req.method === 'PUT' && o) {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          uploads.set(decodeURIComponent(o[2]!), { sha: String(req.headers['x-dsg-sha256']), body: body.toString() });
          res.writeHead(sha(body) === req.headers['x-dsg-sha256'] ? 204 : 400).end();
        });
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  const assignment = (over: Partial<Assignment>): Assignment => ({
    attemptId: `att_${Math.random().toString(36).slice(2).padEnd(26, '0').slice(0, 26)}`, attemptNumber: 1, jobId: 'job_x', jobName: 'x', taskId: 'job_x.3', taskIndex: 3, taskCount: 5,
    arrayValue: '0.25', run: { kind: 'script', script: 'true' }, env: { A: '1' }, inputs: [], outputs: [], timeoutMs: 10_000,
    resources: { cpuMillis: 1000, memoryBytes: 1, gpus: 0, diskBytes: 0 }, ...over,
  });
  const runIt = async (a: Assignment, keep = false) => {
    const sent: AgentMessage[] = [];
    const http = new CoordinatorHttp(url, 't0k', join(dir, 'blobs'));
    const run = new AttemptRun(a, { executor: new NativeExecutor(), http, workDir: join(dir, 'work'), baseEnv: { PATH: process.env['PATH']! }, keepWorkDirs: keep, send: (m) => sent.push(m) });
    const fin = await run.done;
    return { fin, sent, logs: sent.filter((m) => m.type === 'log').map((m) => (m as { data: string }).data).join('') };
  };

  it('places inputs, sets DSG_* env, streams logs, collects and uploads outputs', async () => {
    const a = assignment({
      run: { kind: 'script', script: 'python3 in/hello.py; echo "$DSG_TASK_INDEX $DSG_ARRAY_VALUE $DSG_TASK_COUNT $A $DSG_JOB_ID"; mkdir -p out; echo result > out/r.txt; echo skip > other.txt' },
      inputs: [{ path: 'in/hello.py', sha256: sha(SCRIPT), size: SCRIPT.length, mode: 0o644 }],
      outputs: ['out/*.txt'],
    });
    const { fin, sent, logs } = await runIt(a);
    assert.deepEqual(fin.end, { kind: 'exited', exitCode: 0, signal: null });
    assert.equal(sent[0]?.type, 'started');
    assert.equal(logs, 'hello from input\n3 0.25 5 1 job_x\n');
    assert.deepEqual(fin.outputs, [{ path: 'out/r.txt', size: 7, sha256: sha('result\n') }]);
    assert.equal(uploads.get('out/r.txt')?.body, 'result\n');
    for (let i = 0; i < 50 && (await readdir(join(dir, 'work'))).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await readdir(join(dir, 'work')), [], 'working dir removed');
  });

  it('reports unavailable inputs as a system failure without running anything', async () => {
    const { fin, sent } = await runIt(assignment({ inputs: [{ path: 'x', sha256: sha('nope'), size: 4, mode: 0o644 }] }));
    assert.equal(fin.end.kind, 'error');
    assert.equal((fin.end as { reason: string }).reason, 'inputs_unavailable');
    assert.equal(sent.some((m) => m.type === 'started'), false);
  });

  it('refuses input paths that leave the working directory or are absolute, before fetching or writing anything', async () => {
    const marker = `dsg-runner-escape-${process.pid}`;
    for (const path of [`../${marker}`, `a/../../${marker}`, `/tmp/${marker}`]) {
      const { fin, sent } = await runIt(assignment({ inputs: [{ path, sha256: sha(SCRIPT), size: SCRIPT.length, mode: 0o644 }] }), true);
      assert.equal(fin.end.kind, 'error', path);
      assert.equal((fin.end as { reason: string }).reason, 'inputs_unavailable', path);
      assert.match((fin.end as { message: string }).message, path.startsWith('/') ? /is absolute; input paths must be relative/ : /leaves the working directory/, path);
      assert.equal(sent.some((m) => m.type === 'started'), false, `${path}: nothing ran`);
      const wd = join(dir, 'work', fin.attemptId);
      assert.deepEqual(await readdir(wd), [], `${path}: nothing placed in the working dir`);
      await rm(wd, { recursive: true, force: true });
    }
    for (const p of [join(dir, 'work', marker), join(dir, marker), join('/tmp', marker)])
      assert.equal(await stat(p).then(() => true, () => false), false, `${p} must not exist`);
  });

  it('never uploads a link to outside the working directory, and says so on the task', async () => {
    const { fin, logs } = await runIt(assignment({ run: { kind: 'script', script: 'ln -s /etc/passwd leak.txt; echo ok > real.txt; ln -s real.txt inside.txt' }, outputs: ['*.txt'] }));
    assert.deepEqual(fin.end, { kind: 'error', reason: 'outputs_missing', message: 'output "leak.txt" was not uploaded: it resolves to outside the working directory (through a link); files outside it are never uploaded' });
    assert.deepEqual(fin.outputs.map((o) => o.path), ['inside.txt', 'real.txt'], 'a link that stays inside is uploaded');
    assert.equal(uploads.has('leak.txt'), false);
    assert.match(logs, /\[dsg\] output "leak.txt" was not uploaded: it resolves to outside the working directory/);
  });

  it('resolves every directory on the way: a linked directory leading outside uploads nothing from there', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'dsg-runner-outside-'));
    try {
      await writeFile(join(outside, 'credentials.json'), '{"adminToken":"secret"}');
      await mkdir(join(outside, 'sub'));
      await writeFile(join(outside, 'sub', 'deep.txt'), 'secret too');
      uploads.clear();
      const { fin, logs } = await runIt(assignment({
        run: { kind: 'script', script: `ln -s ${outside} out; mkdir -p res; echo fine > res/ok.txt; ln -s ${outside} res/more` },
        outputs: ['out/*', 'res/**'],
      }));
      assert.equal(fin.end.kind, 'error');
      assert.equal((fin.end as { reason: string }).reason, 'outputs_missing');
      assert.match((fin.end as { message: string }).message, /output "out\/credentials.json" was not uploaded: it resolves to outside the working directory/);
      assert.deepEqual(fin.outputs.map((o) => o.path), ['res/ok.txt']);
      for (const k of uploads.keys()) assert.ok(!k.startsWith('out/') && !k.startsWith('res/more'), `${k} must not be uploaded`);
      assert.match(logs, /\[dsg\] output "out\/credentials.json" was not uploaded/);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('reports a timeout', async () => {
    const { fin } = await runIt(assignment({ run: { kind: 'command', argv: ['sleep', '10'] }, timeoutMs: 200 }));
    assert.deepEqual(fin.end, { kind: 'timeout', timeoutMs: 200 });
  });
});
