// Joining by approval, with real processes: `dsg up` (TLS, SQLite) and `dsg agent` processes without a token.
// A waiting agent prints its pending id and the command to run; the admin compares it with `dsg node list
// --pending` and approves by id; the agent starts working without a restart. Another machine claiming the same
// name (its own key) collects nothing. A rejected agent exits with code 5 and stays out when started again. A
// coordinator restart neither loses a waiting machine nor an approved node. A join code used up is refused, saying so.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { Sandbox, freePort, type Credentials } from './harness.js';

interface Pending { id: string; name: string; address: string; claimedFacts: { cores: number } }

describe('joining by approval (pending nodes) and join-code limits', { timeout: 240_000 }, () => {
  const sb = new Sandbox();
  let creds: Credentials;
  let port: number;
  let up: ReturnType<Sandbox['start']>;
  const dataDir = join(sb.dir, 'data');
  const startUp = (): ReturnType<Sandbox['start']> => sb.start(['up', '--data-dir', dataDir, '--port', String(port), '--no-advertise', '--no-agent']);

  before(async () => {
    port = await freePort();
    up = startUp();
    creds = await sb.credentials(dataDir, up.output);
  });
  after(async () => {
    await sb.cleanup();
  });

  const nodes = async (): Promise<Array<{ id: string; name: string; state: string }>> => (await sb.api<{ items: Array<{ id: string; name: string; state: string }> }>(creds, 'GET', '/nodes')).items;
  const pending = async (): Promise<Pending[]> => {
    const r = await sb.run(['node', 'list', '--pending', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { items: Pending[] }).items;
  };
  const agent = (dir: string, name: string, extra: string[] = []): ReturnType<Sandbox['start']> =>
    sb.start(['agent', '--coordinator', creds.url, '--tls-fingerprint', creds.tlsFingerprint!, '--state-dir', join(sb.dir, dir), '--name', name, '--cpus', '1', '--memory', '256Mi', ...extra], { DSG_LOG_LEVEL: 'info' });
  const idIn = (output: string): string | null => /pending node ([0-9A-Z]{4}-[0-9A-Z]{4})/.exec(output)?.[1] ?? null;
  const exitOf = (p: ChildProcess): Promise<number | null> => (p.exitCode !== null ? Promise.resolve(p.exitCode) : new Promise((r) => p.once('exit', (code) => r(code))));

  it('pending → approve by id → runs a task; another key with the same name collects nothing; reject → exit 5, and again', async () => {
    const a = agent('a', 'lab-pc');
    const idA = await sb.waitFor('agent a says it waits', () => idIn(a.output()), 30_000, a.output);
    assert.match(a.output(), new RegExp(`dsg node approve ${idA}`), 'the exact command to run');
    assert.equal(a.output().split('waits for the grid\'s admin').length - 1, 1, 'said once');
    // A classmate's laptop claims the same name, with its own key: another pending id.
    const b = agent('b', 'lab-pc');
    const idB = await sb.waitFor('agent b says it waits', () => idIn(b.output()), 30_000, b.output);
    assert.notEqual(idA, idB);
    const listed = await sb.waitFor('both listed', async () => ((await pending()).length === 2 ? pending() : null), 15_000);
    assert.deepEqual(listed.map((p) => p.id).sort(), [idA, idB].sort());
    assert.equal(listed[0]!.claimedFacts.cores, 1, 'what it offers, as claimed');
    const human = await sb.run(['node', 'list', '--pending']);
    assert.match(human.stdout, /CLAIMS \(unverified\)/);
    assert.deepEqual(await nodes(), [], 'a pending machine is no node: it gets no work');

    // By name: ambiguous, and said so with both ids.
    const byName = await sb.run(['node', 'approve', 'lab-pc']);
    assert.equal(byName.code, 2, byName.stderr);
    assert.match(byName.stderr, new RegExp(`${idA}.*${idB}|${idB}.*${idA}`));
    const ok = await sb.run(['node', 'approve', idA]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /approved lab-pc/);
    const approvedAt = Date.now();
    await sb.waitFor('a online', async () => (await nodes()).some((n) => n.name === 'lab-pc' && n.state === 'online'), 30_000, a.output);
    // One poll interval (3 s) at most, plus the WebSocket join.
    console.log(`# approval → node online: ${Date.now() - approvedAt} ms`);
    const r = await sb.run(['run', '--wait', '--json', '--memory', '32Mi', '--', 'echo', 'approved']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { state: string }).state, 'succeeded');
    assert.ok(existsSync(join(sb.dir, 'a', 'node.json')), 'a keeps its credential');
    assert.ok(!existsSync(join(sb.dir, 'a', 'join-key.json')), 'and forgets its key');

    // b, same name, other key: still waiting, no credential.
    await new Promise((res) => setTimeout(res, 4000));
    assert.ok(!existsSync(join(sb.dir, 'b', 'node.json')), 'b collected nothing');
    assert.equal((await nodes()).length, 1);

    const rej = await sb.run(['node', 'reject', idB, '--reason', 'not a lab machine']);
    assert.equal(rej.code, 0, rej.stderr);
    assert.equal(await exitOf(b.proc), 5, b.output());
    assert.match(b.output(), /rejected this machine .*"not a lab machine"/);
    // Started again (same state dir, same key): rejected again at once.
    const b2 = agent('b', 'lab-pc');
    assert.equal(await exitOf(b2.proc), 5, b2.output());
    assert.match(b2.output(), /rejected this machine/);
    const audit = await sb.api<{ items: Array<{ action: string }> }>(creds, 'GET', '/audit?limit=100');
    assert.ok(audit.items.some((e) => e.action === 'node.approved') && audit.items.some((e) => e.action === 'node.rejected'));
  });

  it('a waiting agent and an approved node both survive a coordinator restart', async () => {
    const c = agent('c', 'lab-pc-c');
    const idC = await sb.waitFor('agent c waits', () => idIn(c.output()), 30_000, c.output);
    await sb.stop(up.proc);
    await new Promise((res) => setTimeout(res, 1500));
    up = startUp();
    await sb.credentials(dataDir, up.output);
    await sb.waitFor('c still listed after the restart', async () => (await pending()).some((p) => p.id === idC), 30_000, c.output);
    assert.equal((await sb.run(['node', 'approve', idC])).code, 0);
    await sb.waitFor('c online', async () => (await nodes()).some((n) => n.name === 'lab-pc-c' && n.state === 'online'), 30_000, c.output);
    await sb.waitFor('a back online', async () => (await nodes()).some((n) => n.name === 'lab-pc' && n.state === 'online'), 30_000);
    assert.equal(c.proc.exitCode, null, 'c never exited');
  });

  it('a join code admits at most --uses machines; the next is refused saying it is used up', async () => {
    const made = await sb.run(['join-code', 'create', '--uses', '1', '--name', 'one seat', '--json']);
    assert.equal(made.code, 0, made.stderr);
    const { code, token } = JSON.parse(made.stdout) as { code: string; token: { maxUses: number } };
    assert.equal(token.maxUses, 1);
    const first = agent('j1', 'seat-1', ['--join', code]);
    await sb.waitFor('seat-1 online', async () => (await nodes()).some((n) => n.name === 'seat-1' && n.state === 'online'), 30_000, first.output);
    const second = agent('j2', 'seat-2', ['--join', code]);
    await sb.waitFor('the refusal explained', () => second.output().includes('used up'), 20_000, second.output);
    assert.match(second.output(), /did not accept the join code .*it is used up/);
    assert.ok(!(await nodes()).some((n) => n.name === 'seat-2'));
    const list = await sb.run(['join-code', 'list', '--json']);
    assert.ok(!(JSON.parse(list.stdout) as { items: Array<{ name: string }> }).items.some((t) => t.name === 'one seat'), 'a used-up code is not listed as working');
    const rev = await sb.run(['join-code', 'revoke', 'one seat']);
    assert.equal(rev.code, 0, rev.stderr);
    assert.match(rev.stdout, /admitted 1 machine/);
  });
});
