// Who may run on a node that cannot isolate tasks, with real processes: an agent started with --isolation none runs
// the operator's (admin's) jobs but not a submitter's — that job waits, and `dsg job explain` says why and what the
// node's operator can do — until the agent is restarted with --allow-unisolated-jobs. A job requiring a sandbox
// never runs there, whoever submits it.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox, type Credentials, freePort } from './harness.js';

describe('isolation policy: nodes without isolation run only the operator\'s jobs unless their operator opts in', { timeout: 120_000 }, () => {
  const sb = new Sandbox();
  const work = join(sb.dir, 'work');
  let creds: Credentials;
  let student = '';
  const as = (token: string) => (args: string[]) => sb.run(args, { env: { DSG_COORDINATOR: creds.url, DSG_TOKEN: token }, cwd: work });
  const agentArgs = ['agent', '--isolation', 'none', '--state-dir', join(sb.dir, 'agent'), '--name', 'bare-pc', '--cpus', '1', '--memory', '512Mi'];

  before(async () => {
    mkdirSync(work);
    const data = join(sb.dir, 'data');
    const c = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1']);
    creds = await sb.credentials(data, c.output);
    const t = await sb.api<{ secret: string }>(creds, 'POST', '/tokens', { role: 'submitter', projects: ['class'], name: 'student' });
    student = t.secret;
  });
  after(() => sb.cleanup());

  it('holds a submitter\'s job, runs the operator\'s, and runs both once the node opts in', async () => {
    let agent = sb.start([...agentArgs, '--coordinator', creds.url], { DSG_JOIN_TOKEN: creds.joinToken });
    await sb.waitFor('node online', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'), 30_000, agent.output);
    writeFileSync(join(work, 'student.yaml'), 'name: homework\nproject: class\nscript: echo done\n');
    writeFileSync(join(work, 'admin.yaml'), 'name: maintenance\nscript: echo done\n');
    const sub = await as(student)(['submit', 'student.yaml', '-q']);
    assert.equal(sub.code, 0, sub.stderr);
    const studentJob = sub.stdout.trim();
    const adm = await as(creds.adminToken)(['submit', 'admin.yaml', '--wait', '-q']);
    assert.equal(adm.code, 0, `the operator's job runs on the bare node: ${adm.stderr}`);

    const explain = await as(creds.adminToken)(['job', 'explain', studentJob, '--json']);
    assert.equal(explain.code, 0, explain.stderr);
    const x = JSON.parse(explain.stdout) as { filters: Array<{ filter: string; rejected: number }>; nodes: Array<{ name: string; filter: string | null; message: string | null }> };
    assert.equal(x.filters.find((f) => f.filter === 'isolation')?.rejected, 1);
    const bare = x.nodes.find((n) => n.name === 'bare-pc');
    assert.equal(bare?.filter, 'isolation');
    assert.match(bare?.message ?? '', /runs only the grid operator's jobs .*--allow-unisolated-jobs/);
    const still = await sb.api<{ state: string }>(creds, 'GET', `/jobs/${studentJob}`);
    assert.equal(still.state, 'queued');

    await sb.stop(agent.proc);
    agent = sb.start([...agentArgs, '--coordinator', creds.url, '--allow-unisolated-jobs'], { DSG_JOIN_TOKEN: creds.joinToken });
    const done = await as(student)(['wait', studentJob]);
    assert.equal(done.code, 0, done.stdout + done.stderr + agent.output());
  });

  it('never runs a job that requires a sandbox on a node without one', async () => {
    writeFileSync(join(work, 'boxed.yaml'), 'name: needs-box\nisolation: sandbox\nscript: echo done\n');
    const sub = await as(creds.adminToken)(['submit', 'boxed.yaml', '-q']);
    assert.equal(sub.code, 0, sub.stderr);
    const id = sub.stdout.trim().split('\n').pop()!;
    let last = '';
    const x = await sb.waitFor('explained', async () => {
      const r = await as(creds.adminToken)(['job', 'explain', id, '--json']);
      last = r.stdout + r.stderr;
      return r.code === 0 && /requires sandbox/.test(r.stdout) ? r.stdout : null;
    }, 20_000, () => `${sub.stdout}\n${last}`);
    const e = JSON.parse(x) as { verdict?: string; nodes: Array<{ filter: string | null; verdict: string; message: string | null }> };
    assert.deepEqual(e.nodes.map((n) => [n.filter, n.verdict]), [['isolation', 'never']]);
    assert.match(e.nodes[0]!.message ?? '', /isolates tasks with nothing; the job requires sandbox/);
  });
});
