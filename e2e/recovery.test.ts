// Crash and restart with real processes: a coordinator killed with SIGKILL mid-job loses no accepted job and no
// finished result; an agent killed mid-task has its task requeued onto another agent.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { Sandbox, type Credentials, freePort } from './harness.js';


interface JobV1 { id: string; state: string; counts: Record<string, number>; finishedAt: string | null }
interface TaskV1 { index: number; state: string; attempts: number; nodeId: string | null; finishedAt: string | null }

describe('crash recovery', { timeout: 300_000 }, () => {
  let sb: Sandbox;
  afterEach(async () => sb.cleanup());

  const coordinatorArgs = (data: string, port: number) => ['coordinator', '--data-dir', data, '--port', String(port), '--host', '127.0.0.1', '--heartbeat', '1', '--node-timeout', '3'];
  const agentArgs = (c: Credentials, name: string, state: string) => ['agent', '--coordinator', c.url, '--token', c.joinToken, '--state-dir', state, '--name', name, '--cpus', '1'];

  it('a coordinator killed with SIGKILL mid-job loses no accepted job and no finished result', async () => {
    sb = new Sandbox();
    const data = join(sb.dir, 'data');
    const port = await freePort();
    let coord = sb.start(coordinatorArgs(data, port));
    const creds = await sb.credentials(data, coord.output);
    sb.start(agentArgs(creds, 'a1', join(sb.dir, 'a1')));
    await sb.waitFor('agent online', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'));

    const { job } = await sb.api<{ job: JobV1 }>(creds, 'POST', '/jobs', { spec: { name: 'steady', script: 'sleep 0.5; echo done $DSG_TASK_INDEX', array: 8, resources: { cpu: 1, memory: '16Mi' } } });
    await sb.waitFor('two tasks done', async () => (await sb.api<JobV1>(creds, 'GET', `/jobs/${job.id}`)).counts['succeeded']! >= 2);
    const doneBefore = (await sb.api<{ items: TaskV1[] }>(creds, 'GET', `/jobs/${job.id}/tasks`)).items.filter((t) => t.state === 'succeeded');

    sb.kill(coord.proc, 'SIGKILL');
    await new Promise((r) => coord.proc.once('exit', r));
    coord = sb.start(coordinatorArgs(data, port));
    await sb.waitFor('coordinator back', async () => (await sb.api<{ status: string }>(creds, 'GET', '/health')).status === 'ok', 30_000, coord.output);

    const after = await sb.waitFor('job finished after restart', async () => {
      const j = await sb.api<JobV1>(creds, 'GET', `/jobs/${job.id}`);
      return j.finishedAt ? j : null;
    }, 90_000, coord.output);
    assert.equal(after.state, 'succeeded');
    assert.equal(after.counts['succeeded'], 8);
    const tasks = (await sb.api<{ items: TaskV1[] }>(creds, 'GET', `/jobs/${job.id}/tasks`)).items;
    for (const t of doneBefore) {
      const now = tasks.find((x) => x.index === t.index)!;
      assert.equal(now.state, 'succeeded');
      assert.equal(now.attempts, t.attempts, `task ${t.index} finished before the crash and was not run again`);
      assert.equal(now.finishedAt, t.finishedAt);
    }
    const logs = await sb.api<{ data: string }>(creds, 'GET', `/jobs/${job.id}/tasks/7/logs`);
    assert.match(logs.data, /done 7/);
  });

  it('an agent killed mid-task: the node is declared lost and the task runs again on another agent', async () => {
    sb = new Sandbox();
    const data = join(sb.dir, 'data');
    const port = await freePort();
    const coord = sb.start(coordinatorArgs(data, port));
    const creds = await sb.credentials(data, coord.output);
    const a1 = sb.start(agentArgs(creds, 'a1', join(sb.dir, 'a1')));
    await sb.waitFor('a1 online', async () => (await sb.api<{ items: Array<{ name: string; state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.name === 'a1' && n.state === 'online'));

    const { job } = await sb.api<{ job: JobV1 }>(creds, 'POST', '/jobs', { spec: { name: 'long', script: 'sleep 2; echo finished', resources: { cpu: 1, memory: '16Mi' } } });
    await sb.waitFor('task running on a1', async () => (await sb.api<TaskV1>(creds, 'GET', `/jobs/${job.id}/tasks/0`)).state === 'running');
    sb.kill(a1.proc, 'SIGKILL');
    sb.start(agentArgs(creds, 'a2', join(sb.dir, 'a2')));

    const done = await sb.waitFor('job finished on a2', async () => {
      const j = await sb.api<JobV1>(creds, 'GET', `/jobs/${job.id}`);
      return j.finishedAt ? j : null;
    }, 60_000, coord.output);
    assert.equal(done.state, 'succeeded');
    const attempts = (await sb.api<{ items: Array<{ state: string; nodeId: string; failure: { reason: string } | null }> }>(creds, 'GET', `/jobs/${job.id}/tasks/0/attempts`)).items;
    assert.deepEqual(attempts.map((a) => a.state), ['lost', 'succeeded']);
    assert.equal(attempts[0]!.failure?.reason, 'node_lost');
    assert.notEqual(attempts[0]!.nodeId, attempts[1]!.nodeId);
    const nodes = (await sb.api<{ items: Array<{ name: string; state: string }> }>(creds, 'GET', '/nodes')).items;
    assert.equal(nodes.find((n) => n.name === 'a1')?.state, 'lost');
  });
});
