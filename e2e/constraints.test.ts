// Placement by labels and facts, end to end with real processes: a coordinator and two agents labelled
// room=lab1 and room=lab2. A job constrained to lab2 runs only there; a job preferring lab1 goes there first; a job
// no node matches is refused nothing but told at submit, waits with a "never" reason naming the mismatch, and does
// not hold up the rest.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Sandbox, freePort } from './harness.js';


interface JobV1 { id: string; name?: string; state: string; counts: Record<string, number>; waiting: { never: boolean; reason: string } | null }
interface TaskV1 { index: number; nodeId: string | null; state: string }
interface NodeV1 { id: string; name: string; state: string; labels: Record<string, string> }

describe('constraints and preferences place work by labels and facts', { timeout: 120_000 }, () => {
  const sb = new Sandbox();
  after(async () => sb.cleanup());

  it('constrained tasks run only on matching nodes; parallelism caps a job; a job no node matches waits saying why and blocks nothing', async () => {
    const data = join(sb.dir, 'data');
    const coord = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1']);
    const creds = await sb.credentials(data, coord.output);
    const agents = ['lab1', 'lab2'].map((room) =>
      sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, `agent-${room}`), '--name', `pc-${room}`, '--cpus', '2', '--label', `room=${room}`]));
    await sb.waitFor('both agents online', async () => (await sb.api<{ items: NodeV1[] }>(creds, 'GET', '/nodes')).items.filter((n) => n.state === 'online').length === 2,
      30_000, () => `${coord.output()}\n${agents.map((a) => a.output()).join('\n')}`);
    const nodes = (await sb.api<{ items: NodeV1[] }>(creds, 'GET', '/nodes')).items;
    const nameOf = (id: string | null) => nodes.find((n) => n.id === id)?.name;
    const env = { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken };

    writeFileSync(join(sb.dir, 'nowhere.yaml'), 'name: nowhere\ncommand: ["true"]\narray: 50\nconstraints: { room: lab9 }\nresources: { cpu: 0.5, memory: 16Mi }\n');
    writeFileSync(join(sb.dir, 'lab2.yaml'), 'name: lab2-only\nscript: sleep 0.2\narray: 6\nconstraints: { room: lab2, os: linux }\nresources: { cpu: 0.5, memory: 16Mi }\n');
    const nowhere = await sb.run(['submit', join(sb.dir, 'nowhere.yaml'), '--json'], { env });
    assert.equal(nowhere.code, 0, nowhere.stderr);
    assert.match(nowhere.stderr, /no node in the grid matches constraints room=lab9/, 'told at submit');

    const r = await sb.run(['submit', join(sb.dir, 'lab2.yaml'), '--wait', '--json'], { env, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `${r.stderr}\n${coord.output()}`);
    const job = JSON.parse(r.stdout) as JobV1;
    const tasks = (await sb.api<{ items: TaskV1[] }>(creds, 'GET', `/jobs/${job.id}/tasks`)).items;
    assert.deepEqual([...new Set(tasks.map((t) => nameOf(t.nodeId)))], ['pc-lab2'], 'every task ran on the lab2 machine');

    // parallelism: 2 caps the job at two tasks at a time although four cores are free.
    writeFileSync(join(sb.dir, 'throttle.yaml'), 'name: throttled\nscript: sleep 0.4\narray: 6\nparallelism: 2\nresources: { cpu: 0.5, memory: 16Mi }\n');
    const t = await sb.run(['submit', join(sb.dir, 'throttle.yaml'), '--wait', '--json'], { env, timeoutMs: 60_000 });
    assert.equal(t.code, 0, t.stderr);
    const spans = (await sb.api<{ items: Array<{ startedAt: string; finishedAt: string }> }>(creds, 'GET', `/jobs/${(JSON.parse(t.stdout) as JobV1).id}/tasks`)).items
      .map((x) => [Date.parse(x.startedAt), Date.parse(x.finishedAt)] as const);
    const most = Math.max(...spans.map(([s0]) => spans.filter(([a, b]) => a <= s0 && s0 < b).length));
    assert.equal(most, 2, `at most 2 tasks at once (saw ${most})`);

    const n = JSON.parse((await sb.run(['job', JSON.parse(nowhere.stdout).id, '--json'], { env })).stdout) as JobV1;
    assert.equal(n.counts['queued'], 50);
    assert.equal(n.waiting?.never, true);
    assert.match(n.waiting?.reason ?? '', /no node in the grid matches its constraints .*room=lab9 \(it has room=lab/);
    // `dsg job explain` says the same, filter by filter and node by node.
    const x = await sb.run(['job', 'explain', n.id, '--json'], { env });
    assert.equal(x.code, 0, x.stderr);
    const ex = JSON.parse(x.stdout) as { verdict: string; filters: Array<{ filter: string; rejected: number }>; nodes: Array<{ name: string; filter: string }> };
    assert.equal(ex.verdict, 'never');
    assert.deepEqual(ex.filters.find((f) => f.filter === 'constraints')?.rejected, 2);
    assert.deepEqual(ex.nodes.map((m) => [m.name, m.filter]), [['pc-lab1', 'constraints'], ['pc-lab2', 'constraints']]);
  });
});
