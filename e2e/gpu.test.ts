// GPUs as devices, end to end with a fake GPU probe (DSG_FAKE_GPUS: this machine has none): a real coordinator
// and a real agent with two "RTX 4090"s. Six 1-GPU tasks each see exactly one device, never one another task is
// holding; a CPU task sees none; a job asking for a model the grid lacks is "never", with the reason.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox, type Credentials } from './harness.js';


describe('GPUs as devices (fake GPU probe)', { timeout: 180_000 }, () => {
  const sb = new Sandbox();
  let creds: Credentials;

  before(async () => {
    const up = sb.start(['up', '--data-dir', join(sb.dir, 'data'), '--port', '0', '--no-advertise', '--cpus', '4', '--isolation', 'none'], { DSG_FAKE_GPUS: '2x24Gi:NVIDIA GeForce RTX 4090' });
    creds = await sb.credentials(join(sb.dir, 'data'), up.output);
    await sb.waitFor('a node with 2 GPUs', async () => {
      const r = await sb.api<{ items: Array<{ state: string; capacity: { gpus: number } }> }>(creds, 'GET', '/nodes');
      return r.items.some((n) => n.state === 'online' && n.capacity.gpus === 2);
    }, 30_000, up.output);
  });
  after(async () => {
    await sb.cleanup();
  });

  const logsOf = async (id: string, n: number): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push((await sb.run(['logs', id, '--task', String(i)])).stdout.trim());
    return out;
  };

  it('six 1-GPU tasks: each sees exactly one device, and no two running at once share one', async () => {
    // Each task prints its device and the wall-clock interval it held it.
    const r = await sb.run(['run', '--wait', '--json', '--array', '6', '--gpus', '1', '--memory', '32Mi', '--wrap',
      's=$(date +%s%N); sleep 0.6; echo "$CUDA_VISIBLE_DEVICES $DSG_GPUS $s $(date +%s%N)"'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const job = JSON.parse(r.stdout) as { id: string; state: string };
    assert.equal(job.state, 'succeeded');
    const rows = (await logsOf(job.id, 6)).map((l) => {
      const [cuda, dsg, start, end] = l.split(' ');
      return { cuda: cuda!, dsg: dsg!, start: Number(start), end: Number(end) };
    });
    for (const x of rows) {
      assert.match(x.cuda, /^GPU-fake-[01]$/, 'exactly one device, by uuid');
      assert.equal(x.dsg, x.cuda.slice(-1));
    }
    for (const a of rows) for (const b of rows) {
      if (a === b || a.cuda !== b.cuda) continue;
      assert.ok(a.end <= b.start || b.end <= a.start, `two tasks held ${a.cuda} at once: ${JSON.stringify([a, b])}`);
    }
    assert.ok(new Set(rows.map((x) => x.cuda)).size === 2, 'both devices were used');
  });

  it('a task without GPUs sees none; a 2-GPU task sees both', async () => {
    const cpu = await sb.run(['run', '--wait', '--json', '--memory', '32Mi', '--wrap', 'echo "[$CUDA_VISIBLE_DEVICES][$NVIDIA_VISIBLE_DEVICES]"']);
    assert.equal(cpu.code, 0, cpu.stderr);
    assert.deepEqual(await logsOf((JSON.parse(cpu.stdout) as { id: string }).id, 1), ['[][void]']);
    const two = await sb.run(['run', '--wait', '--json', '--gpus', '2', '--memory', '32Mi', '--wrap', 'echo "$CUDA_VISIBLE_DEVICES"']);
    assert.equal(two.code, 0, two.stderr);
    assert.deepEqual(await logsOf((JSON.parse(two.stdout) as { id: string }).id, 1), ['GPU-fake-0,GPU-fake-1']);
  });

  it('GPU conditions: a model the grid has runs; one it lacks is "never", explained per node', async () => {
    const spec = (model: string): string => `name: want-${model.replace(/\W/g, '')}\nscript: echo "$CUDA_VISIBLE_DEVICES"\nresources: { memory: 32Mi, gpu: { count: 1, memory: 16Gi, model: "${model}" } }\n`;
    const ok = await sb.run(['submit', '-', '--wait', '--json'], { stdin: spec('A100|rtx 4090') });
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await sb.run(['submit', '-', '--json'], { stdin: spec('H100') });
    assert.equal(bad.code, 0, bad.stderr);
    const id = (JSON.parse(bad.stdout) as { id: string }).id;
    const x = await sb.waitFor('explained as never', async () => {
      const e = await sb.run(['job', 'explain', id]);
      return /never/i.test(e.stdout) && e.stdout.includes('gpu') ? e.stdout : null;
    }, 20_000);
    assert.match(x, /has 0 GPUs with at least 16Gi of memory, H100, 1 needed \(it has NVIDIA GeForce RTX 4090 24Gi, NVIDIA GeForce RTX 4090 24Gi\)/);
    assert.equal((await sb.run(['cancel', id])).code, 0);
  });

  it('a spec asking for both gpus and gpu, or for a shared GPU, is refused naming the field', async () => {
    const both = await sb.run(['submit', '-'], { stdin: 'name: x\nscript: "true"\nresources: { gpus: 1, gpu: { count: 1 } }\n' });
    assert.equal(both.code, 2);
    assert.match(both.stderr, /resources\.gpu: give gpus \(a count\) or gpu/);
    const shared = await sb.run(['submit', '-'], { stdin: 'name: x\nscript: "true"\nresources: { gpu: { memory: 8Gi, shared: true } }\n' });
    assert.equal(shared.code, 2);
    assert.match(shared.stderr, /resources\.gpu\.shared: sharing a GPU between tasks .* is not supported yet/);
  });
});
