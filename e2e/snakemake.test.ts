// A real Snakemake 7 workflow on a real grid: `dsg snakemake profile`, then `snakemake --profile` runs the SIR
// example (examples/snakemake: 4 simulations → 4 final sizes → a summary → a report), every job a sandboxed grid
// task that gets its inputs from the coordinator and whose outputs `dsg snakemake status` brings back. Then a rule
// that fails is reported `failed` (Snakemake stops with the grid's job id), an unknown job is `failed`, and a file
// that is not a jobscript is refused; an unreachable coordinator is `running`, then `failed` after the give-up time.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, ROOT, Sandbox, type Credentials } from './harness.js';

function snakemakeVersion(): string | null {
  const r = spawnSync('snakemake', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

describe('Snakemake workflows on the grid', { timeout: 400_000 }, () => {
  const version = snakemakeVersion();
  if (!version || !version.startsWith('7.')) {
    const why = version ? `snakemake ${version} is not 7.x (its --cluster mode is what dsg snakemake serves)` : 'snakemake is not installed (apt-get install -y snakemake)';
    if (process.env['CI'] === 'true') it('has Snakemake 7', () => assert.fail(why));
    else it.skip(`SKIPPED LOUDLY: ${why} — the Snakemake integration was not tested`);
    return;
  }
  const sb = new Sandbox();
  let creds: Credentials;
  const profile = join(sb.dir, 'profile');
  before(async () => {
    const up = sb.start(['up', '--data-dir', join(sb.dir, 'data'), '--port', '0', '--no-advertise', '--cpus', '2']);
    creds = await sb.credentials(join(sb.dir, 'data'), up.output);
    await sb.waitFor('an online node', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'), 30_000, up.output);
    const r = await sb.run(['snakemake', 'profile', profile, '--jobs', '4']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await sb.cleanup();
  });

  /** snakemake with the dsg profile, in `cwd`; CI=true makes Snakemake 7 check job status every 1 s instead of 10 s. */
  const snakemake = (cwd: string, args: string[] = []): Promise<{ code: number | null; out: string }> =>
    new Promise((resolve, reject) => {
      const p = spawn('snakemake', ['--profile', profile, ...args], { cwd, env: sb.env({ CI: 'true' }), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      const t = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`snakemake timed out\n${out}`));
      }, 300_000);
      p.on('close', (code) => {
        clearTimeout(t);
        resolve({ code, out });
      });
    });

  it('writes a profile that runs this dsg', () => {
    const yaml = readFileSync(join(profile, 'config.yaml'), 'utf8');
    assert.match(yaml, /^cluster: ".* snakemake submit"$/m);
    assert.match(yaml, /^cluster-status: ".* snakemake status"$/m);
    assert.match(yaml, /^cluster-cancel: ".* snakemake cancel"$/m);
    assert.match(yaml, /^jobs: 4$/m);
  });

  it('runs the example workflow end to end: every job on the grid, the final report here', async () => {
    const wf = join(sb.dir, 'sir');
    cpSync(join(ROOT, 'examples', 'snakemake'), wf, { recursive: true });
    const t0 = Date.now();
    const r = await snakemake(wf);
    assert.equal(r.code, 0, r.out);
    const seconds = (Date.now() - t0) / 1000;
    const report = readFileSync(join(wf, 'results', 'report.txt'), 'utf8');
    assert.match(report, /R0 1\.5: {2}58\.3% infected \(theory {2}58\.3%\)/);
    assert.match(report, /R0 3\.0: {2}94\.0% infected \(theory {2}94\.0%\)/);
    assert.match(report, /^OK$/m, report);
    for (const r0 of ['1.5', '2.0', '2.5', '3.0']) {
      assert.ok(existsSync(join(wf, 'runs', `r0-${r0}.csv`)), `runs/r0-${r0}.csv came back`);
      assert.ok(existsSync(join(wf, 'sizes', `r0-${r0}.json`)), `sizes/r0-${r0}.json came back`);
    }
    // Every job Snakemake ran went through the grid and succeeded there: 4 + 4 + 1 + 1.
    const jobs = await sb.api<{ items: Array<{ name: string; state: string; resources: { cpu: number; memoryBytes?: number } }> }>(creds, 'GET', '/jobs?limit=100');
    const smk = jobs.items.filter((j) => j.name.startsWith('smk-'));
    assert.equal(smk.length, 10, smk.map((j) => j.name).join(', '));
    assert.ok(smk.every((j) => j.state === 'succeeded'), smk.map((j) => `${j.name} ${j.state}`).join(', '));
    assert.equal(smk.filter((j) => j.name.startsWith('smk-simulate-')).length, 4);
    assert.match(r.out, /Submitted job \d+ with external jobid 'job_[0-9a-z]+'/);
    assert.match(r.out, /11 of 11 steps \(100%\) done/);
    process.stderr.write(`[snakemake] example workflow: 10 grid jobs in ${seconds.toFixed(1)} s (Snakemake checks status every 1 s with CI=true)\n`);

    // By hand, outside the workflow's directory, status refuses to write the outputs there.
    const reportJob = [...r.out.matchAll(/external jobid '(job_[0-9a-z]+)'/g)].pop()![1]!;
    const elsewhere = await sb.run(['snakemake', 'status', reportJob]);
    assert.equal(elsewhere.code, 2, elsewhere.stderr);
    assert.equal(elsewhere.stdout, '');
    assert.match(elsewhere.stderr, /not a Snakemake working directory \(no \.snakemake\/ here\)/);
    assert.ok(!existsSync(join(sb.dir, 'results')));

    // Run again: nothing to do (the outputs that came back are newer than their inputs), no new grid job.
    const again = await snakemake(wf);
    assert.equal(again.code, 0, again.out);
    assert.match(again.out, /Nothing to be done/);
  });

  it('reports a failing rule as failed, with the grid job id, after the rule before it succeeded with a directory() output', async () => {
    const wf = join(sb.dir, 'bad');
    mkdirSync(wf);
    writeFileSync(join(wf, 'Snakefile'), [
      'rule all:', '    input: "b.txt"', '',
      'rule first:', '    output: directory("d")', '    shell: "mkdir -p {output}/sub && echo fine > {output}/sub/a.txt"', '',
      'rule boom:', '    input: "d"', '    output: "b.txt"', '    shell: "echo about to fail >&2; exit 3"', '',
    ].join('\n'));
    const r = await snakemake(wf);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /Error in rule boom/);
    const id = /Error executing rule boom on cluster \(jobid: \d+, external: (job_[0-9a-z]+)/.exec(r.out)?.[1];
    assert.ok(id, r.out);
    assert.match(r.out, new RegExp(`dsg: job ${id} \\(smk-boom-\\d+\\) failed: exited with code 1\\. Its output: dsg logs ${id}`));
    assert.equal(readFileSync(join(wf, 'd', 'sub', 'a.txt'), 'utf8'), 'fine\n', 'the rule before it ran on the grid and its directory() output came back');
    assert.ok(!existsSync(join(wf, 'b.txt')));
    const status = await sb.run(['snakemake', 'status', id], { cwd: wf });
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.stdout, 'failed\n');
    const logs = await sb.run(['logs', id]);
    assert.match(logs.stdout + logs.stderr, /about to fail/);
  });

  it('fails a job clearly on a node whose Python has no Snakemake', async () => {
    // The jobscript names a "Python" that exists on the node but cannot import snakemake (/bin/false stands in).
    const wf = join(sb.dir, 'nosmk');
    mkdirSync(wf);
    writeFileSync(join(wf, 'Snakefile'), 'rule a:\n    output: "a.txt"\n    shell: "echo hi > {output}"\n');
    const props = { type: 'single', rule: 'a', input: [], output: ['a.txt'], log: [], threads: 1, resources: { mem_mb: 100 }, jobid: 1 };
    writeFileSync(join(wf, 'snakejob.a.1.sh'), `#!/bin/sh\n# properties = ${JSON.stringify(props)}\ncd '${wf}' && /bin/false -m snakemake --snakefile '${wf}/Snakefile' --target-jobs 'a:' --allowed-rules 'a' --mode 2 && exit 0 || exit 1\n`);
    const sub = await sb.run(['snakemake', 'submit', join(wf, 'snakejob.a.1.sh')], { cwd: wf });
    assert.equal(sub.code, 0, sub.stderr);
    const id = sub.stdout.trim();
    assert.match(id, /^job_[0-9a-z]+$/);
    const verdict = await sb.waitFor('a verdict', async () => {
      const s = await sb.run(['snakemake', 'status', id], { cwd: wf });
      return s.stdout === 'running\n' ? null : s;
    }, 60_000);
    assert.equal(verdict.stdout, 'failed\n');
    assert.match(verdict.stderr, /exited with code 127/);
    const logs = await sb.run(['logs', id]);
    assert.match(logs.stdout, /Snakemake is not installed on node .* \(tried \/bin\/false -m snakemake.*apt-get install snakemake/);
  });

  it('cancels running jobs (the --cluster-cancel command), which then say failed', async () => {
    const wf = join(sb.dir, 'slow');
    mkdirSync(wf);
    writeFileSync(join(wf, 'Snakefile'), 'rule all:\n    input: "s.txt"\n\nrule slow:\n    output: "s.txt"\n    shell: "sleep 120; touch {output}"\n');
    const p = spawn('snakemake', ['--profile', profile], { cwd: wf, env: sb.env({ CI: 'true' }), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const closed = new Promise((r) => p.on('close', r));
    try {
      const id = await sb.waitFor('the job submitted', () => /external jobid '(job_[0-9a-z]+)'/.exec(out)?.[1], 60_000, () => out);
      await sb.waitFor('the job running', async () => (await sb.api<{ state: string }>(creds, 'GET', `/jobs/${id}`)).state === 'running', 60_000);
      // What Snakemake does on Ctrl-C: its --cluster-cancel command with every job id it has out.
      const c = await sb.run(['snakemake', 'cancel', id, 'job_00000000000000000000000000'], { cwd: wf });
      assert.equal(c.code, 0, c.stderr);
      const s = await sb.waitFor('a verdict', async () => {
        const r = await sb.run(['snakemake', 'status', id], { cwd: wf });
        return r.stdout === 'running\n' ? null : r;
      }, 30_000);
      assert.equal(s.stdout, 'failed\n');
      assert.match(s.stderr, /cancelled/);
    } finally {
      p.kill('SIGKILL');
      await closed;
    }
  });

  it('says failed for a job the grid does not know, and refuses a file that is not a jobscript', async () => {
    const unknown = await sb.run(['snakemake', 'status', 'job_00000000000000000000000000']);
    assert.equal(unknown.stdout, 'failed\n', unknown.stderr);
    assert.match(unknown.stderr, /not on this grid/);
    // An unreachable coordinator: `running` (Snakemake asks again) until the give-up time, then `failed`.
    const gone = { DSG_COORDINATOR: `http://127.0.0.1:${await freePort()}`, DSG_TOKEN: creds.adminToken };
    const cwd = join(sb.dir, 'gone');
    mkdirSync(cwd);
    const first = await sb.run(['snakemake', 'status', 'job_01m93md3ec217ypf8mnr6nwe12'], { cwd, env: gone });
    assert.equal(first.stdout, 'running\n', first.stderr);
    assert.match(first.stderr, /cannot reach the coordinator/);
    const later = await sb.run(['snakemake', 'status', 'job_01m93md3ec217ypf8mnr6nwe12'], { cwd, env: { ...gone, DSG_GIVE_UP_AFTER: '0' } });
    assert.equal(later.stdout, 'failed\n', later.stderr);
    assert.match(later.stderr, /unreachable for \d+ s .*reporting job job_01m93md3ec217ypf8mnr6nwe12 as failed/);
    const notJs = join(sb.dir, 'Snakefile.txt');
    writeFileSync(notJs, 'rule all:\n    input: "x"\n');
    const r = await sb.run(['snakemake', 'submit', notJs]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /has no "# properties = \{…\}" line/);
  });
});
