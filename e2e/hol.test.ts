// Head-of-line blocking, end to end with real processes: a coordinator and an agent (2 cores, no GPU). A
// 5,000-task GPU job that no node can run is queued first; a 4-task CPU job submitted after it with
// `dsg submit --wait` must run at once on the idle node, while the GPU job keeps waiting with its "never" reason.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Sandbox, freePort } from './harness.js';


interface JobV1 { id: string; state: string; counts: Record<string, number>; waiting: { never: boolean; reason: string } | null; warnings: string[] }

describe('a job that cannot run does not hold up the grid', { timeout: 120_000 }, () => {
  const sb = new Sandbox();
  after(async () => sb.cleanup());

  it('5,000 GPU tasks with no GPU node queued first: a 4-task CPU job submitted after them with --wait succeeds within seconds', async () => {
    const data = join(sb.dir, 'data');
    const coord = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1']);
    const creds = await sb.credentials(data, coord.output);
    const agent = sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'agent'), '--name', 'cpu-only', '--cpus', '2']);
    await sb.waitFor('the agent online', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'), 30_000, () => `${coord.output()}\n${agent.output()}`);
    const env = { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken };

    writeFileSync(join(sb.dir, 'gpu.yaml'), 'name: gpu-sweep\ncommand: ["true"]\narray: 5000\nresources: { gpus: 1, memory: 16Mi }\n');
    writeFileSync(join(sb.dir, 'cpu.yaml'), 'name: cpu-small\nscript: echo "ran $DSG_TASK_INDEX"\narray: 4\nresources: { cpu: 0.5, memory: 16Mi }\n');

    const g = await sb.run(['submit', join(sb.dir, 'gpu.yaml'), '--json'], { env });
    assert.equal(g.code, 0, g.stderr);
    const gpu = JSON.parse(g.stdout) as JobV1;
    assert.match(g.stderr, /no node in the grid can run these tasks/, 'the submitter is told at once');

    const t0 = Date.now();
    const c = await sb.run(['submit', join(sb.dir, 'cpu.yaml'), '--wait', '--json'], { env, timeoutMs: 60_000 });
    const seconds = (Date.now() - t0) / 1000;
    console.log(`4-task CPU job behind 5,000 queued GPU tasks: submit --wait returned in ${seconds.toFixed(2)} s`);
    assert.equal(c.code, 0, `${c.stdout}\n${c.stderr}\n${coord.output()}`);
    const cpu = JSON.parse(c.stdout) as JobV1;
    assert.equal(cpu.state, 'succeeded');
    assert.equal(cpu.counts['succeeded'], 4);
    assert.ok(seconds < 15, `the CPU job took ${seconds.toFixed(1)} s`);

    const logs = await sb.run(['logs', cpu.id, '--task', '3'], { env });
    assert.match(logs.stdout, /ran 3/);
    // The GPU job is untouched and still says why it waits: "never" on this grid.
    const shown = await sb.run(['job', gpu.id, '--json'], { env });
    assert.equal(shown.code, 0, shown.stderr);
    const after = JSON.parse(shown.stdout) as JobV1;
    assert.equal(after.counts['queued'], 5000);
    assert.equal(after.waiting?.never, true);
    assert.match(after.waiting?.reason ?? '', /no node in the grid is big enough/);
  });
});
