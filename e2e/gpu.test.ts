// GPUs as devices, end to end with a fake GPU probe (DSG_FAKE_GPUS: this machine has none): a real coordinator
// and a real agent with two "RTX 4090"s. Six 1-GPU tasks each see exactly one device, never one another task is
// holding; a CPU task sees none; a job asking for a model the grid lacks is "never", with the reason; shared tasks
// pack by GPU memory (3 × 8Gi per 24Gi device) and never run beside a task holding the device whole; the API and
// CLI show the devices.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, Sandbox, type Credentials } from './harness.js';


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
    assert.match(x, /has 0 GPUs of model H100, 1 needed \(it has NVIDIA GeForce RTX 4090 24Gi, NVIDIA GeForce RTX 4090 24Gi\)/);
    assert.equal((await sb.run(['cancel', id])).code, 0);
  });

  it('a spec asking for both gpus and gpu, or for a shared GPU without its memory, is refused naming the field', async () => {
    const both = await sb.run(['submit', '-'], { stdin: 'name: x\nscript: "true"\nresources: { gpus: 1, gpu: { count: 1 } }\n' });
    assert.equal(both.code, 2);
    assert.match(both.stderr, /resources\.gpu: give gpus \(a count\) or gpu/);
    const shared = await sb.run(['submit', '-'], { stdin: 'name: x\nscript: "true"\nresources: { gpu: { shared: true } }\n' });
    assert.equal(shared.code, 2);
    assert.match(shared.stderr, /resources\.gpu\.memory: a shared GPU needs memory/);
  });

  it('shared GPUs: 8Gi tasks pack 3 per 24Gi device at once, never 4, and never beside a task holding the device whole', async () => {
    // Nine shared tasks and, at the same time, two exclusive ones: each prints its device, what it was told, and
    // the wall-clock interval it ran.
    const line = 'echo "$DSG_GPUS $CUDA_VISIBLE_DEVICES ${DSG_GPU_MEMORY_BYTES:-whole} $s $(date +%s%N)"';
    const sharedSpec = `name: shared\narray: 9\nscript: 's=$(date +%s%N); sleep 2; ${line}'\nresources: { cpu: 0.25, memory: 16Mi, gpu: { memory: 8Gi, shared: true } }\n`;
    const wholeSpec = `name: whole\narray: 2\nscript: 's=$(date +%s%N); sleep 1; ${line}'\nresources: { cpu: 0.25, memory: 16Mi, gpus: 1 }\n`;
    const [sh, wh] = await Promise.all([
      sb.run(['submit', '-', '--wait', '--json'], { stdin: sharedSpec, timeoutMs: 120_000 }),
      sb.run(['submit', '-', '--wait', '--json'], { stdin: wholeSpec, timeoutMs: 120_000 }),
    ]);
    assert.equal(sh.code, 0, sh.stderr);
    assert.equal(wh.code, 0, wh.stderr);
    const parse = (l: string, shared: boolean) => {
      const [dsg, cuda, mem, start, end] = l.split(' ');
      return { dev: dsg!, cuda: cuda!, mem: mem!, start: Number(start), end: Number(end), shared };
    };
    const shRows = (await logsOf((JSON.parse(sh.stdout) as { id: string }).id, 9)).map((l) => parse(l, true));
    const whRows = (await logsOf((JSON.parse(wh.stdout) as { id: string }).id, 2)).map((l) => parse(l, false));
    for (const r of shRows) {
      assert.match(r.dev, /^[01]$/, 'one device each');
      assert.equal(r.cuda, `GPU-fake-${r.dev}`);
      assert.equal(r.mem, String(8 * 2 ** 30), 'told its declared GPU memory');
    }
    for (const r of whRows) assert.equal(r.mem, 'whole');
    const rows = [...shRows, ...whRows];
    // At each task's start, who else was on its device.
    let most = 0;
    for (const a of rows) {
      const beside = rows.filter((b) => b !== a && b.dev === a.dev && b.start <= a.start && a.start < b.end);
      if (!a.shared) assert.deepEqual(beside, [], `a whole-device task ran beside others: ${JSON.stringify([a, beside])}`);
      else {
        assert.ok(beside.every((b) => b.shared), `a shared task ran beside a whole-device task: ${JSON.stringify([a, beside])}`);
        assert.ok(beside.length <= 2, `${beside.length + 1} tasks of 8Gi on one 24Gi device: ${JSON.stringify([a, beside])}`);
        most = Math.max(most, beside.length + 1);
      }
    }
    assert.equal(most, 3, 'packed: three shared tasks ran on one device at once');
  });

  it('the API shows each attempt\'s devices, and each node\'s device use', async () => {
    const r = await sb.run(['submit', '-', '--json'], { stdin: 'name: hold\nscript: sleep 30\nresources: { cpu: 0.25, memory: 16Mi, gpu: { memory: 10Gi, shared: true } }\n' });
    assert.equal(r.code, 0, r.stderr);
    const id = (JSON.parse(r.stdout) as { id: string }).id;
    try {
      const att = await sb.waitFor('an attempt with its devices', async () => {
        const a = await sb.api<{ items: Array<{ gpuDevices?: Array<{ index: number; memoryBytes: number | null }> }> }>(creds, 'GET', `/jobs/${id}/tasks/0/attempts`);
        return a.items[0]?.gpuDevices ?? null;
      }, 20_000);
      assert.equal(att.length, 1);
      assert.equal(att[0]!.memoryBytes, 10 * 2 ** 30);
      const nodes = await sb.api<{ items: Array<{ gpuDevices: Array<{ index: number; sharedBytes: number; sharedTasks: number; exclusive: boolean }> }> }>(creds, 'GET', '/nodes');
      const d = nodes.items[0]!.gpuDevices.find((x) => x.index === att[0]!.index)!;
      assert.deepEqual([d.sharedBytes, d.sharedTasks, d.exclusive], [10 * 2 ** 30, 1, false]);
      const list = await sb.run(['nodes']);
      assert.match(list.stdout, new RegExp(`GPUs: .*${att[0]!.index} NVIDIA GeForce RTX 4090 24Gi: 10Gi of 24Gi shared by 1 task`));
      const show = await sb.run(['job', id]);
      assert.match(show.stdout, /1 shared GPU \(10Gi GPU memory each\)/);
      assert.match(show.stdout, new RegExp(`GPU devices of running tasks[\\s\\S]*${att[0]!.index} \\(10Gi shared\\)`));
    } finally {
      await sb.run(['cancel', id]);
    }
  });
});

describe('GPU device state survives a coordinator crash (derived from the active attempts)', { timeout: 180_000 }, () => {
  const sb = new Sandbox();
  after(async () => {
    await sb.cleanup();
  });

  it('a coordinator killed with SIGKILL while a 16Gi share runs does not give its 24Gi GPU\'s memory out again on restart', async () => {
    const data = join(sb.dir, 'data');
    const port = await freePort();
    const coordArgs = ['coordinator', '--data-dir', data, '--port', String(port), '--host', '127.0.0.1', '--heartbeat', '1', '--node-timeout', '60'];
    let coord = sb.start(coordArgs);
    const creds = await sb.credentials(data, coord.output);
    sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'agent'), '--name', 'ws', '--cpus', '2', '--isolation', 'none'], { DSG_FAKE_GPUS: '1x24Gi:NVIDIA GeForce RTX 4090' });
    await sb.waitFor('the GPU node online', async () => (await sb.api<{ items: Array<{ state: string; facts: { gpus: unknown[] } }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online' && n.facts.gpus.length === 1));
    // Two 16Gi shares of one 24Gi GPU: one at a time. Each records when it ran.
    const { job } = await sb.api<{ job: { id: string } }>(creds, 'POST', '/jobs', { spec: {
      name: 'big-shares', array: 2, script: 's=$(date +%s%N); sleep 4; echo "$s $(date +%s%N)"',
      resources: { cpu: 0.5, memory: '16Mi', gpu: { memory: '16Gi', shared: true } },
    } });
    await sb.waitFor('one share running', async () => (await sb.api<{ counts: Record<string, number> }>(creds, 'GET', `/jobs/${job.id}`)).counts['running']! >= 1);
    sb.kill(coord.proc, 'SIGKILL');
    await new Promise((r) => coord.proc.once('exit', r));
    coord = sb.start(coordArgs);
    const done = await sb.waitFor('the job finished after the restart', async () => {
      const j = await sb.api<{ state: string; finishedAt: string | null }>(creds, 'GET', `/jobs/${job.id}`);
      return j.finishedAt ? j : null;
    }, 90_000, coord.output);
    assert.equal(done.state, 'succeeded');
    const rows: Array<{ start: number; end: number }> = [];
    for (const i of [0, 1]) {
      const attempts = (await sb.api<{ items: Array<{ state: string; failure: unknown; gpuDevices?: Array<{ index: number; memoryBytes: number }> }> }>(creds, 'GET', `/jobs/${job.id}/tasks/${i}/attempts`)).items;
      assert.deepEqual(attempts.map((a) => a.state), ['succeeded'], `task ${i}: one attempt, never refused by the agent (${JSON.stringify(attempts)})`);
      assert.deepEqual(attempts[0]!.gpuDevices, [{ index: 0, memoryBytes: 16 * 2 ** 30 }]);
      const [start, end] = (await sb.api<{ data: string }>(creds, 'GET', `/jobs/${job.id}/tasks/${i}/logs`)).data.trim().split(' ').map(Number);
      rows.push({ start: start!, end: end! });
    }
    assert.ok(rows[0]!.end <= rows[1]!.start || rows[1]!.end <= rows[0]!.start, `two 16Gi shares ran on one 24Gi GPU at once: ${JSON.stringify(rows)}`);
  });
});
