// Prometheus metrics, end to end: a real coordinator and agent run a small job; /metrics (bearer token) then shows
// the grid's state and what happened, and `promtool check metrics` (Debian's prometheus package) accepts it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Sandbox, freePort } from './harness.js';


const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

describe('Prometheus metrics', { timeout: 90_000 }, () => {
  const sb = new Sandbox();
  after(async () => sb.cleanup());

  if (!hasPromtool && process.env['CI'] !== 'true') {
    it('SKIPPED LOUDLY: promtool not found (apt-get install -y prometheus) — the metrics format was not checked', { skip: true }, () => undefined);
    return;
  }

  it('/metrics needs a token, reports nodes, resources, tasks, passes and outcomes, and passes promtool check metrics', async () => {
    const data = join(sb.dir, 'data');
    const coord = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1']);
    const creds = await sb.credentials(data, coord.output);
    sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'agent'), '--cpus', '2']);
    await sb.waitFor('the agent online', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'), 30_000, coord.output);
    const { job } = await sb.api<{ job: { id: string } }>(creds, 'POST', '/jobs', { spec: { name: 'm', script: 'test "$DSG_TASK_INDEX" != 3', array: 5, resources: { cpu: 0.5, memory: '16Mi' } } });
    await sb.waitFor('the job to finish', async () => (await sb.api<{ finishedAt: string | null }>(creds, 'GET', `/jobs/${job.id}`)).finishedAt, 30_000, coord.output);

    assert.equal((await fetch(`${creds.url}/metrics`)).status, 401, 'no token, no metrics');
    const res = await fetch(`${creds.url}/metrics`, { headers: { authorization: `Bearer ${creds.adminToken}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    const value = (line: RegExp): number => Number(text.split('\n').find((l) => line.test(l))?.split(' ').pop());
    assert.equal(value(/^dsg_nodes\{state="online"\}/), 1);
    assert.equal(value(/^dsg_cpu_cores\{kind="total"\}/), 2);
    assert.equal(value(/^dsg_placements_total /), 5);
    assert.equal(value(/^dsg_task_outcomes_total\{outcome="succeeded"\}/), 4);
    assert.equal(value(/^dsg_task_outcomes_total\{outcome="failed"\}/), 1);
    assert.equal(value(/^dsg_tasks\{state="queued",project="default"\}/), 0);
    assert.ok(value(/^dsg_scheduler_pass_duration_seconds_count /) >= 1);

    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
  });
});
