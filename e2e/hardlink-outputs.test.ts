// Hard-linked outputs, as a real job on a real agent: a task that hard-links a file it can read from outside its
// working dir (here a stand-in credential; the agent runs with --isolation none, so nothing but the output check
// stands between the task and the file) gets it refused, reported on the task and in its log, never uploaded;
// files the task linked among its own outputs are uploaded as usual.
import assert from 'node:assert/strict';
import { writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox, type Credentials, freePort } from './harness.js';

describe('hard-linked outputs', { timeout: 90_000 }, () => {
  const sb = new Sandbox();
  const data = join(sb.dir, 'data');
  const secret = join(sb.dir, 'secret-credential.json');
  let creds: Credentials;

  before(async () => {
    writeFileSync(secret, '{"adminToken":"dsg-e2e-not-for-upload"}\n');
    chmodSync(secret, 0o644);
    const coord = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1']);
    creds = await sb.credentials(data, coord.output);
    const agent = sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'agent'), '--name', 'h1', '--cpus', '1', '--isolation', 'none']);
    await sb.waitFor('the agent online', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'), 20_000, agent.output);
  });
  after(() => sb.cleanup());

  it('refuses a hard link to a file outside the working dir, uploads files linked among its own outputs', async () => {
    const { job } = await sb.api<{ job: { id: string } }>(creds, 'POST', '/jobs', {
      spec: { name: 'hardlink', script: `ln ${secret} stolen.txt && echo mine > a.txt && ln a.txt b.txt && ls -li`, outputs: ['stolen.txt', 'a.txt', 'b.txt'] },
    });
    const state = await sb.waitFor(`job ${job.id} to end`, async () => {
      const j = await sb.api<{ state: string }>(creds, 'GET', `/jobs/${job.id}`);
      return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j.state : null;
    }, 30_000);
    const log = await sb.api<{ data: string }>(creds, 'GET', `/jobs/${job.id}/tasks/0/logs`);
    assert.equal(state, 'failed', log.data);
    const outputs = await sb.api<{ items: Array<{ path: string }> }>(creds, 'GET', `/jobs/${job.id}/outputs`);
    assert.deepEqual(outputs.items.map((o) => o.path).sort(), ['a.txt', 'b.txt'], 'the task\'s own linked files are uploaded; the credential is not');
    const [attempt] = (await sb.api<{ items: Array<{ failure: { reason: string; message: string } | null }> }>(creds, 'GET', `/jobs/${job.id}/tasks/0/attempts`)).items;
    assert.equal(attempt?.failure?.reason, 'outputs_missing');
    assert.match(attempt?.failure?.message ?? '', /output "stolen.txt" was not uploaded: it is a hard link to a file that also has a name outside the working directory/);
    assert.match(log.data, /\[dsg\] output "stolen.txt" was not uploaded: it is a hard link/);
    const got = await fetch(`${creds.url}/api/v1/jobs/${job.id}/tasks/0/outputs/stolen.txt`, { headers: { authorization: `Bearer ${creds.adminToken}` } });
    assert.equal(got.status, 404);
  });
});
