// A classroom joins with four words: `dsg join-code create` on the grid, `dsg agent --join CODE` on each machine
// (typed any way a person types it). The agent gets its own credential and keeps working after the code is
// revoked; a revoked or mistyped code lets no new machine in, and the agent says why.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox, type Credentials } from './harness.js';

describe('joining with a four-word code', { timeout: 180_000 }, () => {
  const sb = new Sandbox();
  let creds: Credentials;

  before(async () => {
    const up = sb.start(['up', '--data-dir', join(sb.dir, 'data'), '--port', '0', '--no-advertise', '--no-agent']);
    creds = await sb.credentials(join(sb.dir, 'data'), up.output);
  });
  after(async () => {
    await sb.cleanup();
  });

  const nodes = async (): Promise<Array<{ name: string; state: string }>> => (await sb.api<{ items: Array<{ name: string; state: string }> }>(creds, 'GET', '/nodes')).items;
  const agent = (name: string, code: string): ReturnType<Sandbox['start']> =>
    sb.start(['agent', '--coordinator', creds.url, '--tls-fingerprint', creds.tlsFingerprint!, '--join', code, '--state-dir', join(sb.dir, name), '--name', name, '--cpus', '1', '--memory', '256Mi'], { DSG_LOG_LEVEL: 'info' });

  it('an agent joins with the code as a person types it, runs work, and keeps its own credential after the code is revoked', async () => {
    const made = await sb.run(['join-code', 'create', '--ttl', '30m', '--name', 'room 101', '--json']);
    assert.equal(made.code, 0, made.stderr);
    const { code } = JSON.parse(made.stdout) as { code: string };
    const typed = code.toUpperCase().replace(/-/g, ' ');
    const a = agent('pc-1', typed);
    await sb.waitFor('pc-1 online', async () => (await nodes()).some((n) => n.name === 'pc-1' && n.state === 'online'), 30_000, a.output);
    const listed = await sb.run(['join-code', 'list', '--json']);
    assert.deepEqual((JSON.parse(listed.stdout) as { items: Array<{ name: string }> }).items.map((t) => t.name), ['room 101']);

    assert.equal((await sb.run(['token', 'revoke', 'room 101'])).code, 0);
    const r = await sb.run(['run', '--wait', '--json', '--memory', '32Mi', '--', 'echo', 'still here']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { state: string }).state, 'succeeded', 'the node works on with its own credential');

    const late = agent('pc-2', code);
    await sb.waitFor('the refusal explained', () => late.output().includes('did not accept the join code'), 20_000, late.output);
    assert.match(late.output(), /it was revoked\); ask the grid's admin for a new one \(dsg join-code create\)/);
    assert.ok(!late.output().includes(code), 'the code is not written to the log');
    assert.ok(!(await nodes()).some((n) => n.name === 'pc-2'));
  });

  it('a mistyped code is refused before anything is sent, naming the word', async () => {
    const r = await sb.run(['agent', '--coordinator', creds.url, '--join', 'apple rivr cannon ozone', '--state-dir', join(sb.dir, 'x')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /"rivr" is not a join-code word \(did you mean rival, river\?\)/);
  });
});
