// A frozen agent is noticed by its silence, not by its socket: real coordinator and agents, one agent SIGSTOPped
// mid-task (its kernel keeps the TCP connection open). With `--heartbeat 0.5 --node-timeout 4` it must be offline
// within 3 silent heartbeats (plus the check interval) — well before the 4 s timeout — and its task requeued at
// 4 s after it was last heard from, then run to success on the other agent. The figures are printed.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Sandbox, type Credentials, freePort } from './harness.js';


interface JobV1 { id: string; state: string; finishedAt: string | null }
interface TaskV1 { index: number; state: string; nodeId: string | null; attempts: number }
interface NodeV1 { id: string; name: string; state: string }

describe('a SIGSTOPped agent', { timeout: 120_000 }, () => {
  const sb = new Sandbox();
  let frozenPid: number | null = null;
  after(async () => {
    if (frozenPid) process.kill(frozenPid, 'SIGCONT'); // so it can be stopped like the others
    await sb.cleanup();
  });

  it('is offline within 3 heartbeats and its task requeued at the node timeout, though its connection stays open', async () => {
    const data = join(sb.dir, 'data');
    const coord = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1', '--heartbeat', '0.5', '--node-timeout', '4']);
    const creds: Credentials = await sb.credentials(data, coord.output);
    const agent = (name: string) => sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, name), '--name', name, '--cpus', '1']);
    const agents = { a1: agent('a1'), a2: agent('a2') };
    const nodes = async () => (await sb.api<{ items: NodeV1[] }>(creds, 'GET', '/nodes')).items;
    await sb.waitFor('both agents online', async () => (await nodes()).filter((n) => n.state === 'online').length === 2, 30_000, coord.output);

    const { job } = await sb.api<{ job: JobV1 }>(creds, 'POST', '/jobs', { spec: { name: 'two', script: 'sleep 1.5; echo done', array: 2, resources: { cpu: 1, memory: '16Mi' } } });
    const tasks = async () => (await sb.api<{ items: TaskV1[] }>(creds, 'GET', `/jobs/${job.id}/tasks`)).items;
    await sb.waitFor('one task running on each agent', async () => (await tasks()).filter((t) => t.state === 'running').length === 2);
    const byName = new Map((await nodes()).map((n) => [n.name, n] as const));
    const victim = (await tasks()).find((t) => t.nodeId === byName.get('a1')!.id)!;

    const t0 = Date.now();
    frozenPid = agents.a1.proc.pid!;
    process.kill(frozenPid, 'SIGSTOP'); // the agent only: its socket stays open, nothing more comes through it
    await sb.waitFor('a1 offline', async () => (await nodes()).find((n) => n.name === 'a1')!.state !== 'online', 20_000, coord.output);
    const detectedS = (Date.now() - t0) / 1000;
    await sb.waitFor('its task requeued', async () => {
      const t = (await tasks()).find((x) => x.index === victim.index)!;
      return t.attempts > 1 || t.state === 'queued';
    }, 20_000, coord.output);
    const requeuedS = (Date.now() - t0) / 1000;
    const done = await sb.waitFor('job finished', async () => {
      const j = await sb.api<JobV1>(creds, 'GET', `/jobs/${job.id}`);
      return j.finishedAt ? j : null;
    }, 30_000, coord.output);
    const doneS = (Date.now() - t0) / 1000;
    console.log(`SIGSTOPped agent (heartbeat 0.5 s, node timeout 4 s): offline after ${detectedS.toFixed(1)} s, task requeued after ${requeuedS.toFixed(1)} s, job done after ${doneS.toFixed(1)} s`);

    // 3 silent heartbeats (1.5 s) + a check every 0.25 s + polling; the old rule waited for the whole 4 s.
    assert.ok(detectedS < 3, `offline only after ${detectedS.toFixed(1)} s`);
    assert.ok(requeuedS < 5.5, `requeued only after ${requeuedS.toFixed(1)} s`);
    assert.equal(done.state, 'succeeded');
    const attempts = (await sb.api<{ items: Array<{ state: string; nodeId: string; failure: { reason: string } | null }> }>(creds, 'GET', `/jobs/${job.id}/tasks/${victim.index}/attempts`)).items;
    assert.deepEqual(attempts.map((a) => a.state), ['lost', 'succeeded']);
    assert.equal(attempts[0]!.failure?.reason, 'node_lost');
    assert.equal(attempts[1]!.nodeId, byName.get('a2')!.id);
    assert.equal((await nodes()).find((n) => n.name === 'a1')!.state, 'lost');
  });
});
