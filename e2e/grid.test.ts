// End to end through the CLI: `dsg up` (coordinator + agent child process) in a temp dir, the README workflow
// on the π example, failures, bad input, cancel and timeout.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, Sandbox, type Credentials } from './harness.js';

describe('a grid on one machine (dsg up)', { timeout: 300_000 }, () => {
  const sb = new Sandbox();
  let creds: Credentials;
  let up: ReturnType<Sandbox['start']>;

  before(async () => {
    up = sb.start(['up', '--data-dir', join(sb.dir, 'data'), '--port', '0', '--no-advertise']);
    creds = await sb.credentials(join(sb.dir, 'data'), up.output);
    await sb.waitFor('an online node', async () => {
      const r = await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes');
      return r.items.some((n) => n.state === 'online');
    }, 30_000, up.output);
  });
  after(async () => {
    await sb.cleanup();
  });

  it('lists the local node with this machine\'s cores, found without flags', async () => {
    const r = await sb.run(['nodes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const nodes = JSON.parse(r.stdout) as { items?: unknown[] } | unknown[];
    const list = (Array.isArray(nodes) ? nodes : nodes.items) as Array<{ state: string; capacity: { cpu: number } }>;
    assert.equal(list.length, 1);
    assert.equal(list[0]!.state, 'online');
    assert.ok(list[0]!.capacity.cpu >= 1);
  });

  it('the agent of dsg up gets its join token in its environment, not on its command line (ps), and dsg nodes shows its isolation', async () => {
    const procs = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
    const cmdlines = procs.map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ');
      } catch {
        return '';
      }
    });
    const agent = cmdlines.filter((c) => c.includes(' agent ') && c.includes(join(sb.dir, 'data')));
    assert.equal(agent.length, 1, 'the agent process of this grid');
    assert.ok(!agent[0]!.includes(creds.joinToken), 'the join token is on the agent\'s command line');
    assert.ok(!cmdlines.some((c) => c.includes(creds.joinToken)), 'the join token is on a command line');
    const r = await sb.run(['nodes']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ISOLATION/);
    assert.match(r.stdout, / (sandbox\+cgroups|sandbox|cgroups|none) /);
  });

  it('runs the π sweep example: submit --wait, outputs on disk, logs', async () => {
    cpSync(join(ROOT, 'examples', 'pi'), join(sb.dir, 'pi'), { recursive: true });
    const r = await sb.run(['submit', join(sb.dir, 'pi', 'pi.yaml'), '--wait', '--json'], { timeoutMs: 180_000 });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const job = JSON.parse(r.stdout) as { id: string; state: string; counts: { succeeded: number } };
    assert.equal(job.state, 'succeeded');
    assert.equal(job.counts.succeeded, 20);

    const o = await sb.run(['outputs', job.id, '--to', join(sb.dir, 'results')]);
    assert.equal(o.code, 0, o.stderr);
    const files = readdirSync(join(sb.dir, 'results', 'out')).sort();
    assert.equal(files.length, 20);
    const estimates = files.map((f) => JSON.parse(readFileSync(join(sb.dir, 'results', 'out', f), 'utf8')) as { pi: number; seed: number });
    assert.deepEqual(new Set(estimates.map((e) => e.seed)).size, 20, 'each task used its own seed');
    const mean = estimates.reduce((s, e) => s + e.pi, 0) / estimates.length;
    assert.ok(Math.abs(mean - Math.PI) < 0.01, `mean estimate ${mean}`);
    const combined = execFileSync('python3', [join(ROOT, 'examples', 'pi', 'combine.py'), join(sb.dir, 'results', 'out')], { encoding: 'utf8' });
    assert.match(combined, /pi ≈ 3\.14/);
  });

  it('runs the other examples, with inputs uploaded once and outputs collected', async () => {
    cpSync(join(ROOT, 'examples'), join(sb.dir, 'examples'), { recursive: true });
    const sir = await sb.run(['submit', join(sb.dir, 'examples', 'epidemic', 'epidemic.yaml'), '--wait', '--json'], { timeoutMs: 180_000 });
    assert.equal(sir.code, 0, sir.stderr);
    const sirJob = JSON.parse(sir.stdout) as { id: string; counts: { succeeded: number } };
    assert.equal(sirJob.counts.succeeded, 8);
    const st = await sb.run(['submit', join(sb.dir, 'examples', 'stations', 'stations.yaml'), '--wait', '--json'], { timeoutMs: 120_000 });
    assert.equal(st.code, 0, st.stderr);
    const stJob = JSON.parse(st.stdout) as { id: string };
    const outs = await sb.run(['outputs', stJob.id, '--json']);
    const items = (JSON.parse(outs.stdout) as { items: Array<{ path: string; taskIndex: number }> }).items;
    assert.deepEqual(items.map((o) => o.path).sort(), ['summary/lisbon.json', 'summary/nairobi.json', 'summary/reykjavik.json', 'summary/ushuaia.json']);
    const dl = await sb.run(['outputs', stJob.id, '--to', join(sb.dir, 'st')]);
    assert.equal(dl.code, 0, dl.stderr);
    const lisbon = JSON.parse(readFileSync(join(sb.dir, 'st', 'summary', 'lisbon.json'), 'utf8')) as { years: number; trend_c_per_decade: number };
    assert.equal(lisbon.years, 10);
    assert.ok(lisbon.trend_c_per_decade > 0, 'the synthetic data warms');
    const logs = await sb.run(['logs', stJob.id, '--task', '1']);
    assert.match(logs.stdout, /task 1 analysed station lisbon/);
  });

  it('follows a running task\'s log to its end', async () => {
    const spec = join(sb.dir, 'chatty.yaml');
    writeFileSync(spec, 'name: chatty\nscript: for i in 1 2 3 4 5; do echo "line $i"; sleep 0.3; done\n');
    const sub = await sb.run(['submit', spec, '--quiet']);
    assert.equal(sub.code, 0, sub.stderr);
    const id = sub.stdout.trim();
    const t0 = Date.now();
    const f = await sb.run(['logs', id, '--follow'], { timeoutMs: 30_000 });
    assert.equal(f.code, 0, f.stderr);
    assert.equal(f.stdout, 'line 1\nline 2\nline 3\nline 4\nline 5\n');
    assert.ok(Date.now() - t0 > 700, 'it waited for the task instead of printing a snapshot');
  });

  it('a job looking for credentials finds none: not in its environment, not on a command line, not in /proc, not in the data dir', async () => {
    const spec = join(sb.dir, 'snoop.yaml');
    const data = join(sb.dir, 'data');
    writeFileSync(spec, `name: snoop
script: |
  env
  ps axww -o args
  for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ 2>/dev/null; tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done
  cat ${data}/credentials.json 2>&1
  ls -la ${data} 2>&1
  cat ${join(data, 'agent', 'node.json')} 2>&1
  true
`);
    const r = await sb.run(['submit', spec, '--wait', '--json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const logs = await sb.run(['logs', (JSON.parse(r.stdout) as { id: string }).id]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /DSG_TASK_ID=/, 'the task ran and printed its environment');
    assert.ok(!logs.stdout.includes(creds.joinToken), 'the join token reached the task');
    assert.ok(!logs.stdout.includes(creds.adminToken), 'the admin token reached the task');
    assert.doesNotMatch(logs.stdout, /"nodeId"/, 'the agent\'s node.json reached the task');
  });

  it('reports a failing job: retries, exit code 1 from --wait, stderr in the logs', async () => {
    const spec = join(sb.dir, 'fail.yaml');
    writeFileSync(spec, 'name: fails\nscript: echo "boom on $DSG_TASK_INDEX" >&2; exit 3\nretries: 1\n');
    const r = await sb.run(['submit', spec, '--wait', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const job = JSON.parse(r.stdout) as { id: string; state: string };
    assert.equal(job.state, 'failed');
    const task = await sb.api<{ attempts: number; exitCode: number; failure: { reason: string; kind: string } }>(creds, 'GET', `/jobs/${job.id}/tasks/0`);
    assert.equal(task.attempts, 2, 'one retry');
    assert.equal(task.exitCode, 3);
    assert.deepEqual([task.failure.kind, task.failure.reason], ['user', 'exit_code']);
    const logs = await sb.run(['logs', job.id]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /boom on 0/);
  });

  it('fails a task that exits 0 without its required output: a user failure naming the glob, retried per the spec', async () => {
    const spec = join(sb.dir, 'no-output.yaml');
    writeFileSync(spec, 'name: no-output\nscript: mkdir -p out; echo partial > out/log.txt\noutputs: ["out/*.txt", "out/*.json"]\nretries: 1\n');
    const r = await sb.run(['submit', spec, '--wait', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const job = JSON.parse(r.stdout) as { id: string; state: string };
    assert.equal(job.state, 'failed');
    const task = await sb.api<{ attempts: number; failure: { reason: string; kind: string; message: string } }>(creds, 'GET', `/jobs/${job.id}/tasks/0`);
    assert.equal(task.attempts, 2, 'retried once, as retries: 1 says (not as a system failure)');
    assert.deepEqual(task.failure, {
      kind: 'user',
      reason: 'outputs_missing',
      message: 'output pattern "out/*.json" matched no file in the working directory (mark it optional if it may be absent)',
    });
    const outs = await sb.run(['outputs', job.id, '--json']);
    assert.deepEqual((JSON.parse(outs.stdout) as { items: Array<{ path: string }> }).items.map((o) => o.path), ['out/log.txt'], 'what exists is still uploaded');
  });

  it('rejects a bad spec before anything is queued, naming the field', async () => {
    const before_ = await sb.api<{ items: unknown[] }>(creds, 'GET', '/jobs?limit=500');
    const spec = join(sb.dir, 'bad.yaml');
    writeFileSync(spec, 'name: bad\nscript: "true"\nresources: { memory: 512 }\ninputs: [missing.txt]\n');
    const r = await sb.run(['submit', spec]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /resources\.memory: expected a size like 512Mi/);
    const after_ = await sb.api<{ items: unknown[] }>(creds, 'GET', '/jobs?limit=500');
    assert.equal(after_.items.length, before_.items.length);
  });

  it('cancels a running job and kills its processes', async () => {
    const marker = `dsg-e2e-cancel-${process.pid}`;
    const spec = join(sb.dir, 'sleepy.yaml');
    writeFileSync(spec, `name: sleepy\nscript: sleep 300 # ${marker}\narray: 3\nresources: { cpu: 0.5, memory: 16Mi }\n`);
    const r = await sb.run(['submit', spec, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const job = JSON.parse(r.stdout) as { id?: string; job?: { id: string } };
    const id = job.id ?? job.job!.id;
    await sb.waitFor('tasks running', async () => (await sb.api<{ counts: { running: number } }>(creds, 'GET', `/jobs/${id}`)).counts.running >= 1);
    const c = await sb.run(['cancel', id]);
    assert.equal(c.code, 0, c.stderr);
    const final = await sb.waitFor('job cancelled', async () => {
      const j = await sb.api<{ state: string }>(creds, 'GET', `/jobs/${id}`);
      return j.state === 'cancelled' ? j : null;
    }, 20_000);
    assert.equal(final.state, 'cancelled');
    await sb.waitFor('no sleep processes left', () => {
      try {
        execFileSync('pgrep', ['-f', marker]);
        return false;
      } catch {
        return true; // pgrep exits 1 when nothing matches
      }
    }, 10_000);
  });

  it('enforces the timeout', async () => {
    const spec = join(sb.dir, 'slow.yaml');
    writeFileSync(spec, 'name: slow\nscript: sleep 30\ntimeout: 1s\n');
    const t0 = Date.now();
    const r = await sb.run(['submit', spec, '--wait', '--json']);
    assert.equal(r.code, 1);
    assert.ok(Date.now() - t0 < 20_000, 'killed well before the script would have ended');
    const job = JSON.parse(r.stdout) as { id: string };
    const task = await sb.api<{ failure: { reason: string } }>(creds, 'GET', `/jobs/${job.id}/tasks/0`);
    assert.equal(task.failure.reason, 'timeout');
  });
});
