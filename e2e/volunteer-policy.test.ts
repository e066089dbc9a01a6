// A volunteer machine that respects its owner, end to end: a real coordinator and two real agents (CLI processes).
// a1 has a policy (AC power only, 3 s grace) and reads its power state from a fake /sys tree (DSG_AGENT_SYS_ROOT);
// a2 has none. A job that prefers a1 starts there; "unplugging" a1 makes it report `on-battery` at once (GET /nodes
// and `dsg nodes` show it), suspends the task, and after the grace period stops it: the attempt ends `preempted`
// (a system failure with the work lost in its message), the task runs again on a2 — never back on a1 while it is
// held back — and the job succeeds. Plugged in again, a1 is `working` and takes work.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Sandbox, type Credentials, freePort } from './harness.js';

interface JobV1 { id: string; state: string; finishedAt: string | null }
interface TaskV1 { index: number; state: string; attempts: number; nodeId: string | null }
interface AttemptV1 { state: string; nodeId: string; failure: { kind: string; reason: string; message: string } | null }
interface NodeV1 { id: string; name: string; state: string; policy: { state: string; reason: string } | null }

describe('volunteer policy: suspend, give back, requeue elsewhere', { timeout: 120_000 }, () => {
  const sb = new Sandbox();
  after(() => sb.cleanup());

  it('an unplugged volunteer suspends its task, gives it back after the grace period, and the job finishes on another node', async () => {
    const data = join(sb.dir, 'data');
    const coord = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1', '--heartbeat', '1']);
    const creds: Credentials = await sb.credentials(data, coord.output);
    const sys = join(sb.dir, 'fake-sys');
    mkdirSync(join(sys, 'class', 'power_supply', 'AC'), { recursive: true });
    const plug = (on: boolean): void => {
      writeFileSync(join(sys, 'class', 'power_supply', 'AC', 'type'), 'Mains\n');
      writeFileSync(join(sys, 'class', 'power_supply', 'AC', 'online'), on ? '1\n' : '0\n');
    };
    plug(true);
    writeFileSync(join(sb.dir, 'policy.yaml'), 'acPowerOnly: true\ngracePeriodMinutes: 0.05\nresumeAfterSeconds: 0\ncheckEverySeconds: 0.2\n');
    const a1 = sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'a1'), '--name', 'a1', '--cpus', '1', '--label', 'owner=volunteer', '--policy', join(sb.dir, 'policy.yaml'), '--log-level', 'info'], { DSG_AGENT_SYS_ROOT: sys });
    const a2 = sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'a2'), '--name', 'a2', '--cpus', '1']);
    const logs = (): string => `${coord.output()}\n--- a1\n${a1.output()}\n--- a2\n${a2.output()}`;
    const nodes = async (): Promise<NodeV1[]> => (await sb.api<{ items: NodeV1[] }>(creds, 'GET', '/nodes')).items;
    await sb.waitFor('both agents online', async () => (await nodes()).filter((n) => n.state === 'online').length === 2, 30_000, logs);
    const a1Node = (await nodes()).find((n) => n.name === 'a1')!;
    assert.equal(a1Node.policy?.state, 'working');
    assert.equal((await nodes()).find((n) => n.name === 'a2')!.policy, null, 'no policy: null');

    const { job } = await sb.api<{ job: JobV1 }>(creds, 'POST', '/jobs', {
      spec: { name: 'count', script: 'for i in $(seq 1 30); do echo $i; sleep 0.1; done', resources: { cpu: 1, memory: '16Mi' }, prefer: { owner: 'volunteer' } },
    });
    await sb.waitFor('the task running on a1', async () => {
      const t = (await sb.api<{ items: TaskV1[] }>(creds, 'GET', `/jobs/${job.id}/tasks`)).items[0];
      return t?.state === 'running' && t.nodeId === a1Node.id;
    }, 20_000, logs);

    const t0 = Date.now();
    plug(false);
    await sb.waitFor('a1 reported on battery', async () => (await nodes()).find((n) => n.name === 'a1')?.policy?.state === 'on-battery', 10_000, logs);
    const reportedMs = Date.now() - t0;
    const env = { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken };
    const shown = await sb.run(['nodes'], { env });
    assert.match(shown.stdout, /a1: on battery for \d+s: running on battery; the policy works on AC power only/, shown.stdout);

    const done = await sb.waitFor('the job finished', async () => {
      const j = await sb.api<JobV1>(creds, 'GET', `/jobs/${job.id}`);
      return j.finishedAt ? j : null;
    }, 60_000, logs);
    assert.equal(done.state, 'succeeded', logs());
    const attempts = (await sb.api<{ items: AttemptV1[] }>(creds, 'GET', `/jobs/${job.id}/tasks/0/attempts`)).items;
    assert.equal(attempts.length, 2, JSON.stringify(attempts));
    const [first, second] = attempts;
    assert.equal(first!.nodeId, a1Node.id);
    assert.deepEqual([first!.state, first!.failure?.kind, first!.failure?.reason], ['failed', 'system', 'preempted'], JSON.stringify(first));
    assert.match(first!.failure!.message, /^preempted by the machine's owner \(running on battery; .*suspended for more than 3s\); \d+\.\ds of work lost; it runs again on another node$/);
    assert.deepEqual([second!.state, second!.nodeId === a1Node.id], ['succeeded', false], 'ran again on a2, not on the held-back a1');
    assert.match(a1.output(), /volunteer policy: suspending tasks: running on battery/);
    assert.match(a1.output(), /volunteer policy: giving tasks back to the grid/);

    plug(true);
    await sb.waitFor('a1 working again', async () => (await nodes()).find((n) => n.name === 'a1')?.policy?.state === 'working', 10_000, logs);
    // Working again: it takes work (a job that must run on it).
    const back = await sb.api<{ job: JobV1 }>(creds, 'POST', '/jobs', { spec: { name: 'back', command: ['true'], resources: { cpu: 1, memory: '16Mi' }, constraints: { owner: 'volunteer' } } });
    const fin = await sb.waitFor('the job on a1 finished', async () => {
      const j = await sb.api<JobV1>(creds, 'GET', `/jobs/${back.job.id}`);
      return j.finishedAt ? j : null;
    }, 30_000, logs);
    assert.equal(fin.state, 'succeeded');
    console.log(`a1's change of state reached the coordinator ${reportedMs} ms after the power went (checks every 200 ms)`);
  });
});
