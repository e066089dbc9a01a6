// Data lifecycle on a real coordinator and agent, through `dsg gc` and `dsg status`: finished work past the
// retention goes with its logs and the blobs only it used; a blob shared with a queued job, the inputs of a queued
// job and the outputs of a workflow that has not finished are never removed (the queued job then runs on them),
// and a dry run changes nothing.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox, type Credentials, freePort } from './harness.js';


interface JobV1 { id: string; state: string; finishedAt: string | null }
interface WorkflowV1 { id: string; state: string; stages: Array<{ name: string; jobId: string; state: string }> }
interface GcReportV1 { dryRun: boolean; removed: Array<{ kind: string; id: string; why: string }>; jobs: number; workflows: number; logs: { jobs: number; bytes: number }; blobs: { count: number; bytes: number }; bytesFreed: number }
interface StatusV1 { disk: { databaseBytes: number; blobs: { count: number; bytes: number }; logs: { jobs: number; bytes: number } }; jobs: Record<string, number>; workflows: Record<string, number>; nodes: Record<string, number>; retention: { maxAgeDays: number | null }; lastGc: GcReportV1 | null }

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const RETENTION_S = 3;

describe('data lifecycle: dsg gc and dsg status on a real grid', { timeout: 120_000 }, () => {
  const sb = new Sandbox();
  const data = join(sb.dir, 'data');
  const work = join(sb.dir, 'work');
  let creds: Credentials;
  let out: () => string;
  const env = () => ({ DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken });
  const dsg = (args: string[]) => sb.run(args, { env: env(), cwd: work });
  const dsgJson = async <T>(args: string[]): Promise<T> => {
    const r = await dsg([...args, '--json']);
    assert.equal(r.code, 0, `dsg ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const submit = async (file: string, yaml: string): Promise<string> => {
    writeFileSync(join(work, file), yaml);
    const r = await dsg(['submit', file, '-q']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const blobPath = (h: string) => join(data, 'blobs', h.slice(0, 2), h);
  const job = (id: string) => sb.api<JobV1>(creds, 'GET', `/jobs/${id}`);
  const workflow = (id: string) => sb.api<WorkflowV1>(creds, 'GET', `/workflows/${id}`);

  const SHARED = 'shared input\n';
  const QUEUED_ONLY = 'only the queued job reads this\n';
  let plain: string;
  let wf: string;
  let queued: string;
  let wfOutputSha: string;
  const plainOut = 'written by the finished job only\n';

  before(async () => {
    mkdirSync(work);
    writeFileSync(join(work, 'shared.txt'), SHARED);
    writeFileSync(join(work, 'q.txt'), QUEUED_ONLY);
    const coord = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1',
      '--retention-days', String(RETENTION_S / 86_400), '--gc-grace', '0', '--gc-interval', '600']);
    out = coord.output;
    creds = await sb.credentials(data, coord.output);
    sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'agent'), '--name', 'n1', '--cpus', '2', '--memory', '1Gi']);
    await sb.waitFor('the agent online', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'), 30_000, out);

    // A plain job that finishes, reading the shared input and writing an output only it has.
    plain = await submit('plain.yaml', `name: plain\nscript: cat shared.txt && printf '${plainOut.trim()}\\n' > p.txt\ninputs: [shared.txt]\noutputs: [p.txt]\nresources: { memory: 16Mi }\n`);
    // A workflow that never finishes: stage A succeeds, stage B (which needs A's output) fits no node.
    wf = await submit('wf.yaml', `name: unfinished
stages:
  A:
    script: mkdir -p out && echo stage-A-output > out/w.txt
    outputs: [out/w.txt]
    resources: { memory: 16Mi }
  B:
    needs: [A]
    script: cat out/w.txt
    inputs: [{ from: A }]
    resources: { memory: 64Gi }
`);
    await sb.waitFor('plain finished, workflow stage A done', async () => {
      const w = await workflow(wf);
      return (await job(plain)).finishedAt && w.stages.find((s) => s.name === 'A')!.state === 'succeeded';
    }, 30_000, out);
    // A queued job (its node cordoned) that shares the input and has one of its own.
    assert.equal((await dsg(['node', 'cordon', 'n1'])).code, 0);
    queued = await submit('queued.yaml', `name: queued\nscript: cat shared.txt q.txt\ninputs: [shared.txt, q.txt]\nresources: { memory: 16Mi }\n`);
    const stageA = (await workflow(wf)).stages.find((s) => s.name === 'A')!.jobId;
    wfOutputSha = (await sb.api<{ items: Array<{ sha256: string }> }>(creds, 'GET', `/jobs/${stageA}/outputs`)).items[0]!.sha256;
    // Past the retention for everything finished.
    await new Promise((r) => setTimeout(r, RETENTION_S * 1000 + 500));
  });
  after(() => sb.cleanup());

  it('dsg gc --dry-run names the finished job only, and changes nothing', async () => {
    const r = await dsgJson<GcReportV1>(['gc', '--dry-run']);
    assert.equal(r.dryRun, true);
    assert.deepEqual(r.removed.map((w) => [w.kind, w.id, w.why]), [['job', plain, 'age']]);
    assert.deepEqual([r.jobs, r.workflows, r.logs.jobs, r.blobs.count], [1, 0, 1, 1]);
    assert.equal(r.blobs.bytes, plainOut.length);
    assert.equal((await job(plain)).state, 'succeeded', 'still there');
    assert.ok(existsSync(blobPath(sha(plainOut))));
    const text = await dsg(['gc', '--dry-run']);
    assert.match(text.stdout, new RegExp(`would remove job ${plain} \\(plain, finished .*, past the retention\\)`));
    assert.match(text.stdout, /dry run: would free .*1 job, 0 workflows, logs of 1 job .*1 blob/);
  });

  it('dsg gc removes the finished job, its log and its own output; never what a queued job or an unfinished workflow needs', async () => {
    const before_ = await dsgJson<StatusV1>(['status']);
    const r = await dsgJson<GcReportV1>(['gc']);
    assert.deepEqual(r.removed.map((w) => w.id), [plain]);
    assert.equal(r.bytesFreed, r.logs.bytes + r.blobs.bytes);
    assert.ok(r.logs.bytes > 0, 'the log went');
    await assert.rejects(job(plain), /404/);
    assert.ok(!existsSync(blobPath(sha(plainOut))), 'the output only the finished job had is gone');
    assert.ok(!existsSync(join(data, 'logs', plain)), 'its logs are gone');
    assert.ok(existsSync(blobPath(sha(SHARED))), 'the input shared with the queued job stays');
    assert.ok(existsSync(blobPath(sha(QUEUED_ONLY))), 'the queued job\'s own input stays');
    assert.ok(existsSync(blobPath(wfOutputSha)), 'the unfinished workflow\'s stage output stays');
    assert.equal((await workflow(wf)).state, 'running');
    const after_ = await dsgJson<StatusV1>(['status']);
    assert.equal(after_.disk.blobs.count, before_.disk.blobs.count - 1);
    assert.equal(after_.lastGc?.jobs, 1);

    // Nothing more to do: a second run removes nothing.
    const again = await dsgJson<GcReportV1>(['gc']);
    assert.deepEqual([again.jobs, again.workflows, again.blobs.count, again.logs.jobs], [0, 0, 0, 0]);

    // The queued job runs on what was kept.
    assert.equal((await dsg(['node', 'uncordon', 'n1'])).code, 0);
    const done = await sb.waitFor('the queued job finished', async () => ((await job(queued)).finishedAt ? job(queued) : null), 30_000, out);
    assert.equal(done.state, 'succeeded');
    const logs = await dsg(['logs', queued]);
    assert.match(logs.stdout, /shared input\nonly the queued job reads this/);
  });

  it('dsg status shows disk use and work by state', async () => {
    const s = await dsgJson<StatusV1>(['status']);
    assert.ok(s.disk.databaseBytes > 0);
    assert.ok(s.disk.blobs.count >= 3 && s.disk.blobs.bytes > 0);
    assert.ok(s.disk.logs.jobs >= 1);
    // Stage jobs count as jobs: the queued job and stage A succeeded, stage B waits for a node big enough.
    assert.deepEqual(s.jobs, { succeeded: 2, queued: 1 });
    assert.equal(s.workflows['running'], 1);
    assert.equal(s.nodes['online'], 1);
    assert.equal(s.retention.maxAgeDays, RETENTION_S / 86_400);
    const text = await dsg(['status']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^database {3}\S+/m);
    assert.match(text.stdout, /^blobs {6}.* in \d+ files$/m);
    assert.match(text.stdout, /^workflows {2}1 running$/m);
    assert.match(text.stdout, /^last gc {4}\S+: /m);
    // Refused for a node token: gc is an operator's.
    const res = await fetch(`${creds.url}/api/v1/gc`, { method: 'POST', headers: { authorization: `Bearer ${creds.joinToken}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 403);
  });
});
