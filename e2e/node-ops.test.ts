// Node operations on a real coordinator and two real agents, driven through the `dsg` CLI: health probes without a
// token; cordon / uncordon; drain with a running task (it finishes, nothing new arrives, the node shows drained);
// remove refused while a node holds work and forced (its work requeued at once, long before the node timeout);
// quarantine after injected system failures (inputs the node cannot fetch), never after a task's own exit codes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox, type Credentials, freePort } from './harness.js';


interface JobV1 { id: string; state: string; counts: Record<string, number>; finishedAt: string | null; waiting: { never: boolean; reason: string } | null }
interface AttemptV1 { state: string; nodeId: string; failure: { kind: string; reason: string } | null }
interface NodeV1 { id: string; name: string; state: string; scheduling: string; schedulingReason: string | null; quarantinedUntil: string | null; runningTasks: number; lastSeenAt: string }

describe('node operations on a real grid', { timeout: 150_000 }, () => {
  const sb = new Sandbox();
  const data = join(sb.dir, 'data');
  let creds: Credentials;
  let coordOut: () => string;
  const agents = new Map<string, ReturnType<Sandbox['start']>>();
  const env = () => ({ DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken });
  const dsg = (args: string[]) => sb.run(args, { env: env() });
  const dsgJson = async <T>(args: string[]): Promise<T> => {
    const r = await dsg([...args, '--json']);
    assert.equal(r.code, 0, `dsg ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const nodes = async () => (await dsgJson<{ items: NodeV1[] }>(['nodes'])).items;
  const node = async (name: string) => (await nodes()).find((n) => n.name === name && n.state === 'online') ?? (await nodes()).find((n) => n.name === name);
  const startAgent = (name: string) => {
    const a = sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, name), '--name', name, '--cpus', '1']);
    agents.set(name, a);
    return a;
  };
  const submit = async (spec: Record<string, unknown>, inputs?: unknown[]) =>
    (await sb.api<{ job: JobV1 }>(creds, 'POST', '/jobs', { spec: { resources: { cpu: 1, memory: '16Mi' }, ...spec }, ...(inputs ? { inputs } : {}) })).job;
  const job = (id: string) => sb.api<JobV1>(creds, 'GET', `/jobs/${id}`);
  const finished = (id: string, ms = 30_000) => sb.waitFor(`job ${id} finished`, async () => ((await job(id)).finishedAt ? job(id) : null), ms, coordOut);
  const attempts = (id: string, index = 0) => sb.api<{ items: AttemptV1[] }>(creds, 'GET', `/jobs/${id}/tasks/${index}/attempts`).then((r) => r.items);

  before(async () => {
    // A long node timeout: a forced remove must requeue at once, not when the node would time out.
    const coord = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1', '--heartbeat', '1', '--node-timeout', '60',
      '--quarantine-failures', '3', '--quarantine-window', '10', '--quarantine-cool-down', '60']);
    coordOut = coord.output;
    creds = await sb.credentials(data, coord.output);
    startAgent('a1');
    startAgent('a2');
    await sb.waitFor('both agents online', async () => (await sb.api<{ items: NodeV1[] }>(creds, 'GET', '/nodes')).items.filter((n) => n.state === 'online').length === 2, 30_000, coord.output);
  });
  after(() => sb.cleanup());

  it('/healthz and /readyz answer without a token and reveal nothing else', async () => {
    const h = await fetch(`${creds.url}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    const r = await fetch(`${creds.url}/readyz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ready' });
    assert.equal((await fetch(`${creds.url}/api/v1/health`)).status, 401, 'the detailed health still needs a token');
  });

  it('cordon: no new work on the node, a reason on the waiting job; uncordon takes it back', async () => {
    const c = await dsgJson<NodeV1>(['node', 'cordon', 'a2']);
    assert.equal(c.scheduling, 'cordoned');
    const said = await dsg(['node', 'cordon', 'a2']);
    assert.match(said.stdout, /a2 is cordoned: it gets no new work/);
    const j1 = await submit({ name: 'only-a1', script: 'sleep 0.1', array: 4 });
    assert.equal((await finished(j1.id)).state, 'succeeded');
    const a1 = (await node('a1'))!;
    for (let i = 0; i < 4; i++) assert.ok((await attempts(j1.id, i)).every((a) => a.nodeId === a1.id), 'every task ran on a1');

    await dsg(['node', 'cordon', 'a1']);
    const j2 = await submit({ name: 'nowhere', script: 'true' });
    const waiting = await sb.waitFor('a reason naming the cordoned nodes', async () => {
      const j = await job(j2.id);
      return j.waiting && /cordoned/.test(j.waiting.reason) ? j : null;
    }, 10_000, coordOut);
    assert.equal(waiting.waiting!.never, false, 'not "never": an uncordon brings capacity back');
    assert.match(waiting.waiting!.reason, /a1 \(cordoned\)/);
    assert.match(waiting.waiting!.reason, /a2 \(cordoned\)/);
    assert.equal(waiting.counts['queued'], 1);
    const shown = await dsg(['job', j2.id]);
    assert.match(shown.stdout, /cordoned/, 'dsg job shows why it waits');

    const u = await dsgJson<NodeV1>(['node', 'uncordon', 'a1']);
    assert.equal(u.scheduling, 'eligible');
    assert.equal((await finished(j2.id)).state, 'succeeded');
    await dsg(['node', 'uncordon', 'a2']);
  });

  it('drain: the running task finishes, nothing new arrives, the node shows draining then drained', async () => {
    await dsg(['node', 'cordon', 'a2']);
    const long = await submit({ name: 'long', script: 'sleep 3' });
    await sb.waitFor('the long task running', async () => (await job(long.id)).counts['running'] === 1, 10_000, coordOut);
    const d = await dsgJson<NodeV1>(['node', 'drain', 'a1']);
    assert.equal(d.scheduling, 'draining');
    const later = await submit({ name: 'later', script: 'true' });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await job(later.id)).counts['queued'], 1, 'nothing new on a draining node');
    assert.equal((await finished(long.id)).state, 'succeeded', 'the running task finished');
    const drained = await sb.waitFor('a1 drained', async () => ((await node('a1'))?.scheduling === 'drained' ? node('a1') : null), 5000);
    assert.equal(drained!.runningTasks, 0);
    const table = await dsg(['nodes']);
    assert.match(table.stdout, /a1\s+\S+\s+online, drained/);
    assert.equal((await job(later.id)).counts['queued'], 1, 'still nothing new on the drained node');
    assert.equal((await attempts(later.id)).length, 0);

    await dsg(['node', 'uncordon', 'a2']);
    assert.equal((await finished(later.id)).state, 'succeeded');
    assert.equal((await attempts(later.id))[0]!.nodeId, (await node('a2'))!.id, 'it ran on a2, not on the drained a1');
    await dsg(['node', 'uncordon', 'a1']);
  });

  it('remove: refused while the node holds work; --force requeues it at once; offline nodes show how long they are gone', async () => {
    await dsg(['node', 'cordon', 'a2']);
    const work = await submit({ name: 'orphan', script: 'sleep 2' });
    await sb.waitFor('the task running on a1', async () => (await job(work.id)).counts['running'] === 1, 10_000, coordOut);
    const a1 = (await node('a1'))!;
    // The machine dies: the coordinator would wait the 60 s node timeout before requeueing.
    sb.kill(agents.get('a1')!.proc, 'SIGKILL');
    await sb.waitFor('a1 offline', async () => (await nodes()).find((n) => n.id === a1.id)?.state === 'offline', 10_000, coordOut);
    await new Promise((r) => setTimeout(r, 1100));
    const table = await dsg(['nodes']);
    assert.match(table.stdout, /a1\s+\S+\s+offline \(gone \d+s\)/);

    const refused = await dsg(['node', 'remove', 'a1']);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /a1 still holds 1 task\(s\); drain it first .* or remove it now with --force/);
    assert.ok((await nodes()).some((n) => n.id === a1.id), 'still there');

    await dsg(['node', 'uncordon', 'a2']);
    const t0 = Date.now();
    const forced = await dsgJson<{ removed: boolean; node: { id: string }; requeuedTasks: number }>(['node', 'remove', 'a1', '--force']);
    assert.deepEqual(forced, { removed: true, node: { id: a1.id, name: 'a1' }, requeuedTasks: 1 });
    assert.ok(!(await nodes()).some((n) => n.id === a1.id), 'forgotten');
    const done = await finished(work.id, 20_000);
    assert.equal(done.state, 'succeeded');
    assert.ok(Date.now() - t0 < 15_000, 'requeued at once, not after the 60 s node timeout');
    console.log(`forced remove of a dead node (node timeout 60 s): its 2 s task rerun and done ${((Date.now() - t0) / 1000).toFixed(1)} s after the remove`);
    const tries = await attempts(work.id);
    assert.equal(tries.length, 2);
    assert.equal(tries[0]!.failure?.kind, 'system');
    assert.equal(tries[1]!.nodeId, (await node('a2'))!.id);

    // Without work, a remove needs no --force.
    const idle = startAgent('a3');
    await sb.waitFor('a3 online', async () => (await node('a3'))?.state === 'online', 20_000, idle.output);
    await sb.stop(idle.proc);
    const r = await dsg(['node', 'remove', 'a3']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /node a3 \(node_\S+\) removed/);
    // Operator actions need the admin token: a node's join token is refused.
    const byNode = await fetch(`${creds.url}/api/v1/nodes/a2/cordon`, { method: 'POST', headers: { authorization: `Bearer ${creds.joinToken}` } });
    assert.equal(byNode.status, 403);
    assert.equal((await node('a2'))!.scheduling, 'eligible');
    const missing = await dsg(['node', 'drain', 'nosuchnode']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nosuchnode/);
  });

  it('quarantine: repeated system failures (not exit codes) take a node out, with the reason; uncordon releases it', async () => {
    // Only a2 is left. Failing tasks (exit 1, retried 3 times) are user failures: no quarantine.
    const failing = await submit({ name: 'exit-1', script: 'exit 1', retries: 3 });
    assert.equal((await finished(failing.id)).state, 'failed');
    assert.equal((await attempts(failing.id)).length, 4);
    assert.equal((await node('a2'))!.scheduling, 'eligible', 'exit codes never quarantine a node');

    // Inject system failures: an input whose blob disappears from the coordinator after submit.
    const body = Buffer.from('input data\n');
    const sha = createHash('sha256').update(body).digest('hex');
    const put = await fetch(`${creds.url}/api/v1/blobs/${sha}`, { method: 'PUT', headers: { authorization: `Bearer ${creds.adminToken}`, 'content-type': 'application/octet-stream' }, body });
    assert.equal(put.status, 201);
    await dsg(['node', 'cordon', 'a2']);
    const doomed = await submit({ name: 'doomed', script: 'cat in.txt', inputs: ['in.txt'] }, [{ path: 'in.txt', sha256: sha, size: body.length }]);
    unlinkSync(join(data, 'blobs', sha.slice(0, 2), sha));
    await dsg(['node', 'uncordon', 'a2']);
    const tq = Date.now();

    const q = await sb.waitFor('a2 quarantined', async () => ((await node('a2'))?.scheduling === 'quarantined' ? node('a2') : null), 20_000, coordOut);
    assert.match(q!.schedulingReason!, /3 system failures in 10 min \(latest: inputs_unavailable/);
    console.log(`quarantine: a2 quarantined ${((Date.now() - tq) / 1000).toFixed(1)} s after it started failing: ${q!.schedulingReason}`);
    assert.ok(q!.quarantinedUntil && Date.parse(q!.quarantinedUntil) > Date.now() + 50_000, 'released after the cool-down');
    const table = await dsg(['nodes']);
    assert.match(table.stdout, /a2\s+\S+\s+online, quarantined/);
    assert.match(table.stdout, /a2: quarantined: 3 system failures/);
    // The task waits (its 4th try is still in its budget), with the quarantine named.
    const w = await sb.waitFor('the reason', async () => ((await job(doomed.id)).waiting ? job(doomed.id) : null), 10_000);
    assert.match(w.waiting!.reason, /a2 \(quarantined\)/);
    assert.equal((await attempts(doomed.id)).length, 3);
    assert.ok((await attempts(doomed.id)).every((a) => a.failure?.reason === 'inputs_unavailable'));

    const released = await dsgJson<NodeV1>(['node', 'uncordon', 'a2']);
    assert.equal(released.scheduling, 'eligible');
    assert.equal(released.quarantinedUntil, null);
    // Its last try fails too (the blob is gone); that one failure after the release does not quarantine it again.
    assert.equal((await finished(doomed.id)).state, 'failed');
    assert.equal((await node('a2'))!.scheduling, 'eligible');
    const ok = await submit({ name: 'after', script: 'true' });
    assert.equal((await finished(ok.id)).state, 'succeeded');
  });
});
