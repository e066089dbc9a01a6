// `dsg cancel` on a job that has already finished leaves its history alone: real `dsg up` (coordinator + agent),
// a job that succeeds and one that fails, then `dsg cancel` on each (exit 0, "nothing changed") and the REST
// answer (409 conflict with the unchanged job).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox, type Credentials } from './harness.js';

interface JobV1 { id: string; state: string; cancelRequested: boolean; finishedAt: string | null; counts: Record<string, number> }

describe('cancelling a finished job changes nothing', { timeout: 120_000 }, () => {
  const sb = new Sandbox();
  let creds: Credentials;

  before(async () => {
    const up = sb.start(['up', '--data-dir', join(sb.dir, 'data'), '--port', '0', '--host', '127.0.0.1']);
    creds = await sb.credentials(join(sb.dir, 'data'), up.output);
    await sb.waitFor('an online node', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'), 30_000, up.output);
  });
  after(() => sb.cleanup());

  const finishedJob = async (script: string): Promise<JobV1> => {
    const { job } = await sb.api<{ job: JobV1 }>(creds, 'POST', '/jobs', { spec: { name: 'short', script, array: 2, resources: { cpu: 0.5, memory: '16Mi' } } });
    return sb.waitFor('job finished', async () => {
      const j = await sb.api<JobV1>(creds, 'GET', `/jobs/${job.id}`);
      return j.finishedAt ? j : null;
    });
  };
  const env = () => ({ DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken });

  for (const [script, state, said] of [['true', 'succeeded', 'succeeded'], ['exit 3', 'failed', 'failed']] as const) {
    it(`a ${state} job stays ${state}: dsg cancel says so and exits 0; the API answers 409 with the job`, async () => {
      const before_ = await finishedJob(script);
      assert.equal(before_.state, state);

      const r = await sb.run(['cancel', before_.id], { env: env() });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), `job ${before_.id} had already ${said}; nothing changed`);
      const json = await sb.run(['cancel', before_.id, '--json'], { env: env() });
      assert.equal(json.code, 0, json.stderr);
      assert.equal((JSON.parse(json.stdout) as JobV1).state, state);

      const res = await fetch(`${creds.url}/api/v1/jobs/${before_.id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${creds.adminToken}` } });
      assert.equal(res.status, 409);
      const body = (await res.json()) as { error: { code: string; message: string; details: { job: JobV1 } } };
      assert.equal(body.error.code, 'conflict');
      assert.equal(body.error.message, `job ${before_.id} already ${state}; there is nothing to cancel`);
      assert.equal(body.error.details.job.state, state);

      const after_ = await sb.api<JobV1>(creds, 'GET', `/jobs/${before_.id}`);
      assert.deepEqual(after_, before_, 'the job is exactly as it was, cancelRequested included');
      assert.equal(after_.cancelRequested, false);
    });
  }
});
