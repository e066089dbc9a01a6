// Joining by approval and join-code limits, with real processes: `dsg up` (TLS, SQLite) and `dsg agent` processes
// (e2e/approval.test.ts covers approving by id, identity across an agent restart and two machines under one name).
// Here: a rejected agent exits with code 5 and stays out when started again, until the admin undoes the rejection;
// a coordinator restart loses neither a waiting machine nor an approved node; a used-up join code is refused, saying so.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { Sandbox, freePort, type Credentials } from './harness.js';

interface Pending { id: string; name: string; address: string; facts: { cores: number } }

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
  const idIn = (output: string): string | null => /waiting for approval: request ([0-9A-Z]{4}-[0-9A-Z]{4})/.exec(output)?.[1] ?? null;
  const exitOf = (p: ChildProcess): Promise<number | null> => (p.exitCode !== null ? Promise.resolve(p.exitCode) : new Promise((r) => p.once('exit', (code) => r(code))));

  it('rejected → exit 5, and again when started again; approving undoes it, and the agent then joins and works', async () => {
    const b = agent('b', 'lab-pc-b');
    const idB = await sb.waitFor('agent b says it waits', () => idIn(b.output()), 30_000, b.output);
    assert.match(b.output(), new RegExp(`dsg node approve ${idB}`), 'the exact command to run');
    assert.match(b.output(), /trusts the grid's certificate sha256:[0-9a-f]{16}…/);
    const listed = await sb.run(['node', 'list', '--pending']);
    assert.match(listed.stdout, new RegExp(idB));
    assert.match(listed.stdout, /CLAIMS \(unverified\)/);
    assert.match(listed.stderr, new RegExp(`this grid's certificate is ${creds.tlsFingerprint!.slice(0, 23)}`));
    const rej = await sb.run(['node', 'reject', idB, '--reason', 'not a lab machine']);
    assert.equal(rej.code, 0, rej.stderr);
    assert.equal(await exitOf(b.proc), 5, b.output());
    assert.match(b.output(), /rejected this machine's request to join: not a lab machine/);
    const b2 = agent('b', 'lab-pc-b');
    assert.equal(await exitOf(b2.proc), 5, b2.output());
    assert.deepEqual((await nodes()).filter((n) => n.name === 'lab-pc-b'), []);
    // Undo: approve the rejected request; the same agent started again collects its credential and works.
    const undo = await sb.run(['node', 'approve', idB]);
    assert.equal(undo.code, 0, undo.stderr);
    const b3 = agent('b', 'lab-pc-b');
    await sb.waitFor('b online', async () => (await nodes()).some((n) => n.name === 'lab-pc-b' && n.state === 'online'), 30_000, b3.output);
    const r = await sb.run(['run', '--wait', '--json', '--memory', '32Mi', '--', 'echo', 'approved']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { state: string }).state, 'succeeded');
    assert.ok(existsSync(join(sb.dir, 'b', 'node.json')) && !existsSync(join(sb.dir, 'b', 'join-request.json')), 'credential kept, key forgotten');
    const audit = await sb.api<{ items: Array<{ action: string; detail: Record<string, unknown> }> }>(creds, 'GET', '/audit?limit=100');
    assert.ok(audit.items.some((e) => e.action === 'node.rejected') && audit.items.some((e) => e.action === 'node.approved' && e.detail['previously'] === 'rejected'));
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
    await sb.waitFor('b back online', async () => (await nodes()).some((n) => n.name === 'lab-pc-b' && n.state === 'online'), 30_000);
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
