// The contribution ledger on a real grid: `dsg up` (coordinator + its agent as a child process, cgroup isolation
// where available) and a second `dsg agent` process without isolation. A job with a task that fails once and is
// retried, and a job that fails, run to the end; then the ledger's totals (API, `dsg ledger --json`, `--csv`) must
// equal the sum of the attempts' recorded run times, exactly (both come from the same recorded milliseconds).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LedgerV1 } from '@dsg/core';
import { Sandbox, type Credentials } from './harness.js';

interface JobV1 { id: string; state: string; finishedAt: string | null; taskCount: number }
interface AttemptV1 { state: string; nodeId: string; startedAt: string | null; finishedAt: string | null }

describe('contribution ledger end to end', { timeout: 180_000 }, () => {
  const sb = new Sandbox();
  let creds: Credentials;

  before(async () => {
    const up = sb.start(['up', '--data-dir', join(sb.dir, 'data'), '--port', '0', '--host', '127.0.0.1', '--cpus', '2']);
    creds = await sb.credentials(join(sb.dir, 'data'), up.output);
    const extra = sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'extra'), '--name', 'extra', '--cpus', '2', '--isolation', 'none']);
    await sb.waitFor('two online nodes', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.filter((n) => n.state === 'online').length === 2, 30_000, () => `${up.output()}\n${extra.output()}`);
  });
  after(() => sb.cleanup());

  const runJob = async (spec: Record<string, unknown>): Promise<JobV1> => {
    const { job } = await sb.api<{ job: JobV1 }>(creds, 'POST', '/jobs', { spec });
    return sb.waitFor(`job ${String(spec['name'])} finished`, async () => {
      const j = await sb.api<JobV1>(creds, 'GET', `/jobs/${job.id}`);
      return j.finishedAt ? j : null;
    }, 120_000);
  };

  it('totals equal the recorded attempt run times, with a retried task and a failed job; wasted attempts are counted', async () => {
    // Task 1 fails its first attempt (by attempt number: a sandboxed task cannot leave a marker file outside its dir).
    // Task 1 fails on its first attempt and succeeds on the retry; the CPU loop gives the cgroup something to measure.
    const flaky = await runJob({
      name: 'flaky', project: 'physics', array: 4, retries: 1, resources: { cpu: 1, memory: '64Mi' },
      script: `i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; if [ "$DSG_TASK_INDEX" = 1 ] && [ "$DSG_ATTEMPT" = 1 ]; then exit 3; fi`,
    });
    assert.equal(flaky.state, 'succeeded');
    const broken = await runJob({ name: 'broken', array: 2, resources: { cpu: 0.5, memory: '32Mi' }, script: 'sleep 0.2; exit 2' });
    assert.equal(broken.state, 'failed');

    let runMs = 0;
    let attempts = 0;
    let wasted = 0;
    for (const j of [flaky, broken]) for (let i = 0; i < j.taskCount; i++) {
      for (const a of (await sb.api<{ items: AttemptV1[] }>(creds, 'GET', `/jobs/${j.id}/tasks/${i}/attempts`)).items) {
        attempts++;
        if (a.state !== 'succeeded') wasted++;
        if (a.startedAt) runMs += Date.parse(a.finishedAt!) - Date.parse(a.startedAt);
      }
    }
    assert.equal(attempts, 4 + 1 + 2, 'four flaky tasks, one retry, two broken tasks');
    assert.equal(wasted, 3, 'the failed first attempt and the two broken tasks');

    for (const by of ['node', 'project', 'user'] as const) {
      const l = await sb.api<LedgerV1>(creds, 'GET', `/ledger?by=${by}`);
      assert.equal(l.total.attempts, attempts, by);
      assert.equal(l.total.wastedAttempts, wasted, by);
      assert.equal(Math.round(l.total.wallSeconds * 1000), runMs, `${by}: ledger wall time = sum of recorded attempt run times`);
      assert.equal(Math.round(l.rows.reduce((s, r) => s + r.wallSeconds, 0) * 1000), runMs, `${by}: the rows add up to the total`);
    }
    const byProject = await sb.api<LedgerV1>(creds, 'GET', '/ledger?by=project');
    assert.deepEqual(byProject.rows.map((r) => [r.key, r.attempts, r.wastedAttempts]).sort(), [['default', 2, 2], ['physics', 5, 1]]);
    const byUser = await sb.api<LedgerV1>(creds, 'GET', '/ledger?by=user');
    // Charged to the submitting token's name (here the admin token `dsg up` created).
    assert.deepEqual(byUser.rows.map((r) => [r.key, r.attempts]), [['admin (created by dsg up)', attempts]]);
    const byNode = await sb.api<LedgerV1>(creds, 'GET', '/ledger?by=node');
    const extra = byNode.rows.find((r) => r.key === 'extra');
    if (extra) assert.equal(extra.cpuMeasuredAttempts, 0, 'an agent without cgroups charges declared cores × wall');
    const local = byNode.rows.find((r) => r.key !== 'extra');
    if (local) console.log(`# ledger: local agent ${local.cpuMeasuredAttempts}/${local.attempts} attempts with measured CPU (${local.cpuSeconds}s CPU over ${local.wallSeconds}s wall)`);

    const env = { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken };
    const json = await sb.run(['ledger', '--by', 'project', '--json'], { env });
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), byProject);
    const csv = await sb.run(['ledger', '--by', 'project', '--csv', '--project', 'physics'], { env });
    assert.equal(csv.code, 0, csv.stderr);
    const lines = csv.stdout.trim().split('\n');
    assert.equal(lines.length, 3, csv.stdout);
    assert.match(lines[1]!, /^project,physics,5,4,1,/);
    assert.match(lines[2]!, /^total,,5,4,1,/);
    const human = await sb.run(['ledger'], { env });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /total/);
    const bad = await sb.run(['ledger', '--by', 'planet'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--by.*node, project, user/);
  });
});
