// Files at rest and outputs that try to leave the working dir, with real `dsg coordinator` and `dsg agent`
// processes: the data dir is 0700 and every file in it 0600 (database and its WAL, lock, credentials, blobs, logs);
// the agent's state dir is 0700 and its node.json (id + credential) 0600. A task that links the coordinator's data
// dir into its outputs (`ln -s DATA out`, `outputs: [out/*]`) uploads nothing from it and says so on the task.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox, type Credentials } from './harness.js';

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8);

/** Every file and directory under `dir` with its mode, e.g. { 'blobs': '700', 'blobs/ab/ab…': '600' }. */
function modesUnder(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = join(e.parentPath, e.name);
    out[p.slice(dir.length + 1)] = mode(p);
  }
  return out;
}

describe('files at rest, and outputs leaving the working dir', () => {
  const sb = new Sandbox();
  const data = join(sb.dir, 'data');
  const state = join(sb.dir, 'agent');
  let creds: Credentials;
  let coordProc: ReturnType<Sandbox['start']>;
  let agentProc: ReturnType<Sandbox['start']>;

  before(async () => {
    const coord = (coordProc = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1']));
    creds = await sb.credentials(data, coord.output);
    const agent = (agentProc = sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', state, '--name', 'a1', '--cpus', '1']));
    await sb.waitFor('the agent online', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'), 20_000, agent.output);
  });
  after(() => sb.cleanup());

  const waitJob = (id: string) =>
    sb.waitFor(`job ${id} to end`, async () => {
      const j = await sb.api<{ state: string }>(creds, 'GET', `/jobs/${id}`);
      return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j.state : null;
    }, 30_000);

  it('keeps the data dir 0700 and every file in it 0600; the agent state dir 0700 and its credential 0600', async () => {
    // An input (a blob), a log and an output (another blob), so that every kind of file exists.
    const input = 'some input\n';
    const sha = createHash('sha256').update(input).digest('hex');
    writeFileSync(join(sb.dir, 'in.txt'), input);
    const put = await fetch(`${creds.url}/api/v1/blobs/${sha}`, { method: 'PUT', headers: { authorization: `Bearer ${creds.adminToken}`, 'content-type': 'application/octet-stream' }, body: input });
    assert.equal(put.status, 201);
    const { job } = await sb.api<{ job: { id: string } }>(creds, 'POST', '/jobs', {
      spec: { name: 'files', script: 'cat in.txt; cp in.txt out.txt', inputs: ['in.txt'], outputs: ['out.txt'] },
      inputs: [{ path: 'in.txt', sha256: sha, size: input.length }],
    });
    assert.equal(await waitJob(job.id), 'succeeded');

    assert.equal(mode(data), '700');
    const modes = modesUnder(data);
    for (const f of ['dsg.sqlite', 'dsg.sqlite-wal', 'dsg.sqlite-shm', 'credentials.json', 'coordinator.lock', 'api.sock']) assert.equal(modes[f], '600', `${f}: ${JSON.stringify(modes)}`);
    const files = Object.entries(modes).filter(([p]) => statSync(join(data, p)).isFile());
    const dirs = Object.entries(modes).filter(([p]) => statSync(join(data, p)).isDirectory());
    assert.ok(files.some(([p]) => p.startsWith('blobs/')) && files.some(([p]) => p.startsWith('logs/')), JSON.stringify(modes));
    assert.deepEqual(files.filter(([, m]) => m !== '600'), [], 'every file 0600');
    assert.deepEqual(dirs.filter(([, m]) => m !== '700'), [], 'every directory 0700');

    assert.equal(mode(state), '700');
    assert.equal(mode(join(state, 'node.json')), '600');
  });

  it('uploads nothing through a linked directory (ln -s DATA out, outputs out/*) and reports the refusal on the task', async () => {
    const { job } = await sb.api<{ job: { id: string } }>(creds, 'POST', '/jobs', {
      spec: { name: 'escape', script: `ln -s ${data} out; echo done`, outputs: ['out/*'] },
    });
    assert.equal(await waitJob(job.id), 'failed');
    const outputs = await sb.api<{ items: unknown[] }>(creds, 'GET', `/jobs/${job.id}/outputs`);
    assert.deepEqual(outputs.items, [], 'nothing uploaded');
    const [attempt] = (await sb.api<{ items: Array<{ failure: { reason: string; message: string } | null }> }>(creds, 'GET', `/jobs/${job.id}/tasks/0/attempts`)).items;
    assert.equal(attempt?.failure?.reason, 'outputs_missing');
    assert.match(attempt?.failure?.message ?? '', /output "out\/credentials.json" was not uploaded: it resolves to outside the working directory/);
    const log = await sb.api<{ data: string }>(creds, 'GET', `/jobs/${job.id}/tasks/0/logs`);
    assert.match(log.data, /\[dsg\] output "out\/credentials.json" was not uploaded/);
    const show = await sb.run(['--coordinator', creds.url, '--token', creds.adminToken, 'outputs', job.id, '--to', join(sb.dir, 'got')]);
    assert.doesNotMatch(show.stdout + show.stderr, /adminToken/);
  });

  it('an agent whose credential the coordinator does not know (a new grid) joins again as a new node with the join token', async () => {
    const before = JSON.parse(readFileSync(join(state, 'node.json'), 'utf8')) as { nodeId: string; credential: string };
    await sb.stop(agentProc.proc);
    await sb.stop(coordProc.proc);
    const data2 = join(sb.dir, 'data2');
    const coord2 = sb.start(['coordinator', '--data-dir', data2, '--port', String(await freePort()), '--host', '127.0.0.1']);
    const creds2 = await sb.credentials(data2, coord2.output);
    const agent2 = sb.start(['agent', '--coordinator', creds2.url, '--token', creds2.joinToken, '--state-dir', state, '--name', 'a1', '--cpus', '1']);
    const id = await sb.waitFor('the agent online on the new grid', async () =>
      (await sb.api<{ items: Array<{ id: string; state: string }> }>(creds2, 'GET', '/nodes')).items.find((n) => n.state === 'online')?.id, 20_000, agent2.output);
    assert.notEqual(id, before.nodeId);
    // The agent writes its new identity once the welcome reaches it, which may be a moment after the coordinator
    // lists the node as online.
    const after = await sb.waitFor('the agent to keep its new identity', async () => {
      const n = JSON.parse(readFileSync(join(state, 'node.json'), 'utf8')) as { nodeId: string; credential: string };
      return n.nodeId === id ? n : undefined;
    }, 10_000, agent2.output);
    assert.equal(after.nodeId, id);
    assert.notEqual(after.credential, before.credential);
    assert.match(agent2.output(), /does not know this node's credential .*joining again as a new node/);
  });
});
