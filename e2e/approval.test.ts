// Joining by approval: an agent with no token or code asks and waits, showing a request id; an admin lets it in
// (`dsg node approve ID`) or turns it away (`dsg node reject ID`, the agent exits 5 and stays out). An approved
// node keeps its identity across restarts; two machines asking under one name are never confused.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox, type Credentials } from './harness.js';

interface Req { id: string; name: string; state: string; facts: { cores: number } }

describe('joining by approval', { timeout: 180_000 }, () => {
  const sb = new Sandbox();
  let creds: Credentials;

  before(async () => {
    const up = sb.start(['up', '--data-dir', join(sb.dir, 'data'), '--port', '0', '--no-advertise', '--no-agent']);
    creds = await sb.credentials(join(sb.dir, 'data'), up.output);
  });
  after(async () => {
    await sb.cleanup();
  });

  const agent = (name: string, dir = name): ReturnType<Sandbox['start']> =>
    sb.start(['agent', '--coordinator', creds.url, '--tls-fingerprint', creds.tlsFingerprint!, '--state-dir', join(sb.dir, dir), '--name', name, '--cpus', '1', '--memory', '256Mi'], { DSG_LOG_LEVEL: 'info' });
  const pending = async (): Promise<Req[]> => JSON.parse((await sb.run(['node', 'pending', '--json'])).stdout).items as Req[];
  const nodes = async (): Promise<Array<{ id: string; name: string; state: string }>> => (await sb.api<{ items: Array<{ id: string; name: string; state: string }> }>(creds, 'GET', '/nodes')).items;
  const idShown = (out: string): string | null => /waiting for approval: request ([A-Z0-9]{4}-[A-Z0-9]{4})/.exec(out)?.[1] ?? null;

  it('waits with a request id, is approved by it, works, and keeps its identity across a restart', async () => {
    const a = agent('lab-pc-1');
    const id = await sb.waitFor('the request id on the agent', () => idShown(a.output()), 20_000, a.output);
    const listed = await pending();
    assert.deepEqual(listed.map((r) => [r.id, r.name, r.state]), [[id, 'lab-pc-1', 'pending']]);
    assert.ok(listed[0]!.facts.cores > 0, 'its claims are shown');
    assert.ok(!(await nodes()).some((n) => n.name === 'lab-pc-1'), 'a pending machine is no node: it gets no work');

    const ok = await sb.run(['node', 'approve', id.toLowerCase()]);
    assert.equal(ok.code, 0, ok.stderr);
    const node = await sb.waitFor('lab-pc-1 online', async () => (await nodes()).find((n) => n.name === 'lab-pc-1' && n.state === 'online'), 30_000, a.output);
    const r = await sb.run(['run', '--wait', '--json', '--memory', '32Mi', '--', 'echo', 'hi']);
    assert.equal(r.code, 0, r.stderr);

    await sb.stop(a.proc);
    const again = agent('lab-pc-1');
    await sb.waitFor('back online as the same node', async () => (await nodes()).some((n) => n.id === node.id && n.state === 'online') && again.output().includes(node.id), 30_000, again.output);
    assert.equal(idShown(again.output()), null, 'it did not ask again');
    assert.deepEqual((await pending()).length, 0);
    const audit = (await sb.run(['audit', 'list', '--json'])).stdout;
    assert.match(audit, /node\.approved/);
  });

  it('two machines asking under one name: approving by name is refused, by id lets in exactly that one', async () => {
    const x = agent('twin', 'twin-x');
    const y = agent('twin', 'twin-y');
    const idX = await sb.waitFor('x waits', () => idShown(x.output()), 20_000, x.output);
    const idY = await sb.waitFor('y waits', () => idShown(y.output()), 20_000, y.output);
    assert.notEqual(idX, idY);
    const byName = await sb.run(['node', 'approve', 'twin']);
    assert.equal(byName.code, 2);
    assert.match(byName.stderr, /2 machines named twin wait .*name one by its id/);
    assert.equal((await sb.run(['node', 'approve', idY])).code, 0);
    await sb.waitFor('y joined', () => y.output().includes('connected to'), 30_000, y.output);
    await new Promise((res) => setTimeout(res, 11_000)); // x polls again meanwhile: still waiting, no credential
    assert.ok(!x.output().includes('connected to'), 'x was not let in by y\'s approval');
    assert.deepEqual((await pending()).map((r) => r.id), [idX]);
    assert.equal((await sb.run(['node', 'reject', idX, '--reason', 'two of one name'])).code, 0);
    await sb.waitFor('x exits 5', () => (x.proc.exitCode !== null ? x.proc.exitCode : null), 30_000, x.output);
    assert.equal(x.proc.exitCode, 5);
    assert.match(x.output(), /rejected this machine's request to join: two of one name/);
    // Started again, it is told again at once and stays out.
    const x2 = agent('twin', 'twin-x');
    await sb.waitFor('x exits again', () => (x2.proc.exitCode !== null ? x2.proc.exitCode : null), 20_000, x2.output);
    assert.equal(x2.proc.exitCode, 5);
    assert.equal((await nodes()).filter((n) => n.name === 'twin').length, 1);
  });
});
