// The dsg binary against a real grid: a coordinator in this process (temp data dir, free port) and a `dsg agent`
// child process; what users see from each command. Every dsg run is a real child process with its own HOME.
// (The temp dir's name starts with dsg-e2e- so that `npm test`'s leak check would catch a process left behind.)
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DsgClient } from '@dsg/client';
import { startCoordinator, type RunningCoordinator } from '@dsg/coordinator';
import type { JobV1 } from '@dsg/core';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'dsg.js');

/** A port nothing listens on (undici refuses some low ports outright, so not 1 or 9). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('dsg commands against a real grid', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dsg-e2e-cli-'));
  const home = join(dir, 'home');
  let coord: RunningCoordinator;
  let agent: ChildProcess | null = null;
  let client: DsgClient;
  let env: Record<string, string>;

  /** Run dsg to completion. `closeStdout`: the reader has gone before dsg writes (as with `| head`). */
  function dsg(args: string[], opts: { env?: Record<string, string>; closeStdout?: boolean; stdin?: string } = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { ...env, ...opts.env }, stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
      if (opts.stdin !== undefined) p.stdin!.end(opts.stdin);
      let stdout = '';
      let stderr = '';
      if (opts.closeStdout) p.stdout!.destroy();
      else p.stdout!.on("data", (d) => (stdout += d));
      p.stderr!.on("data", (d) => (stderr += d));
      const t = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`dsg ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
      }, 30_000);
      p.on('close', (code) => {
        clearTimeout(t);
        resolve({ code, stdout, stderr });
      });
    });
  }

  async function submit(spec: Record<string, unknown>, wait = true): Promise<JobV1> {
    const { job } = await client.submitJob({ spec });
    if (!wait) return job;
    for (;;) {
      const j = await client.getJob(job.id);
      if (j.finishedAt) return j;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  before(async () => {
    coord = await startCoordinator({ dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0, logLevel: 'silent', heartbeatIntervalSeconds: 1, nodeTimeoutSeconds: 3 });
    env = { PATH: process.env['PATH']!, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), DSG_COORDINATOR: coord.url, DSG_TOKEN: coord.adminToken };
    client = new DsgClient({ baseUrl: coord.url, token: coord.adminToken });
  });
  after(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      const exited = new Promise((r) => agent!.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    await coord?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says "no jobs yet" only while there are none at all', async () => {
    const r = await dsg(['jobs', '--state', 'running']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^no jobs yet: submit one/);
  });

  it('a task that never ran: logs says so on stderr, stdout stays empty', async () => {
    const job = await submit({ name: 'too-big', script: 'echo hi', resources: { cpu: 64, memory: '16Mi' } }, false);
    const r = await dsg(['logs', job.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^task 0 has not started yet \(queued; `dsg job job_\w+` says why it waits\)$/m);
    await client.cancelJob(job.id);
    const c = await dsg(['logs', job.id, '--task', '0']);
    assert.equal(c.stdout, '');
    assert.match(c.stderr, /^task 0 was cancelled before it started$/m);
  });

  it('an empty --state list says how many jobs there are in other states', async () => {
    const r = await dsg(['jobs', '--state', 'running']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'no running jobs (1 job in other states; `dsg jobs` lists them)');
    const n = await dsg(['jobs', '--name', 'nope*']);
    assert.equal(n.stdout.trim(), 'no jobs named "nope*" (1 job in all; `dsg jobs` lists them)');
    const j = await dsg(['jobs', '--state', 'running', '--json']);
    assert.deepEqual(JSON.parse(j.stdout), { items: [] });
  });

  it('once an agent is running: tasks show node names and the value each task sees', async () => {
    agent = spawn(process.execPath, [BIN, 'agent', '--coordinator', coord.url, '--token', coord.joinToken, '--state-dir', join(dir, 'agent'), '--name', 'lab-pc-7', '--cpus', '2', '--memory', '512Mi', '--log-level', 'warn'], { cwd: dir, env, stdio: 'inherit' });
    for (let i = 0; !(await client.listNodes()).items.some((n) => n.name === 'lab-pc-7' && n.state === 'online'); i++) {
      assert.ok(i < 200, 'the agent joined within 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const plain = await submit({ name: 'plain', script: 'echo "v=$DSG_ARRAY_VALUE"', array: 3, resources: { cpu: 1, memory: '16Mi' } });
    const r = await dsg(['tasks', plain.id]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.trim().split('\n').map((l) => l.split(/\s{2,}/));
    assert.deepEqual(rows[0], ['TASK', 'VALUE', 'STATE', 'ATTEMPTS', 'EXIT', 'NODE', 'WHY']);
    assert.deepEqual(rows.slice(1), [['0', '0', 'succeeded', '1', '0', 'lab-pc-7'], ['1', '1', 'succeeded', '1', '0', 'lab-pc-7'], ['2', '2', 'succeeded', '1', '0', 'lab-pc-7']]);
    assert.equal((await dsg(['logs', plain.id, '--task', '2'])).stdout, 'v=2\n', 'VALUE is what the task saw');

    const listed = await submit({ name: 'listed', script: 'exit 1', array: ['a', 'b'], resources: { cpu: 1, memory: '16Mi' } });
    const s = await dsg(['job', listed.id]);
    assert.match(s.stdout, /^resources {2}1 core, 16Mi memory per task$/m);
    assert.match(s.stdout, /^TASK {2}VALUE {2}ATTEMPTS {2}NODE {6}WHY$/m);
    assert.match(s.stdout, /^0 {5}a {6}1 {9}lab-pc-7 {2}exited with code 1$/m);
  });

  it('dsg run: a one-off command with flags, Slurm-style --array with a %N cap, inputs and outputs; --print shows the spec', async () => {
    writeFileSync(join(dir, 'square.py'), 'import os\nv = int(os.environ["DSG_ARRAY_VALUE"])\nopen("out.txt", "w").write(str(v * v))\n');
    const r = await dsg(['run', '--name', 'squares', '--array', '2-6:2%2', '-m', '32Mi', '-i', 'square.py', '-o', 'out.txt', '--json', '--wait', '--', 'python3', 'square.py']);
    assert.equal(r.code, 0, r.stderr);
    const job = JSON.parse(r.stdout) as JobV1;
    assert.equal(job.state, 'succeeded');
    assert.equal(job.taskCount, 3);
    assert.equal(job.name, 'squares');
    const outs = await dsg(['outputs', job.id, '--to', join(dir, 'squares'), '--by-task']);
    assert.equal(outs.code, 0, outs.stderr);
    const got = [0, 1, 2].map((i) => readFileSync(join(dir, 'squares', `task-${i}`, 'out.txt'), 'utf8'));
    assert.deepEqual(got, ['4', '16', '36']);

    const printed = await dsg(['run', '--print', '--cpus', '0.5', '--env', 'A=1', '--wrap', 'echo $A']);
    assert.equal(printed.code, 0, printed.stderr);
    assert.match(printed.stdout, /^name: echo$/m);
    assert.match(printed.stdout, /^script: echo \$A$/m);
    assert.match(printed.stdout, /^ {2}cpu: 0\.5$/m);
    const capped = await dsg(['run', '--print', '--array', '1-3%2', '--', 'true']);
    assert.match(capped.stdout, /^parallelism: 2$/m);
    assert.match(capped.stdout, /^array:\n {2}- 1\n {2}- 2\n {2}- 3$/m);

    const bad = await dsg(['run', '--memory', 'lots', '--', 'true']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /resources\.memory/);
    const none = await dsg(['run', '--cpus', '2']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /nothing to run: put the command after --/);
  });

  it('dsg submit job.sbatch: a Slurm array script runs as it is, with SLURM_* set and --output collected', async () => {
    writeFileSync(join(dir, 'job.sbatch'), ['#!/bin/bash', '#SBATCH --job-name=slurmish', '#SBATCH --array=3,5%1', '#SBATCH --mem=32M', '#SBATCH --output=res_%a.txt', '#SBATCH --account=physics',
      'echo "id=$SLURM_ARRAY_TASK_ID n=$SLURM_ARRAY_TASK_COUNT cpus=$SLURM_CPUS_PER_TASK name=$SLURM_JOB_NAME job=${SLURM_JOB_ID%%_*}"'].join('\n'));
    const r = await dsg(['submit', 'job.sbatch', '--wait', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /note: job\.sbatch:6: --account=physics \(no meaning on a grid of single machines; ignored\)/);
    const job = JSON.parse(r.stdout) as JobV1;
    assert.equal(job.state, 'succeeded');
    const outs = await dsg(['outputs', job.id, '--to', join(dir, 'slurm-out'), '--by-task']);
    assert.equal(outs.code, 0, outs.stderr);
    assert.equal(readFileSync(join(dir, 'slurm-out', 'task-1', 'res_5.txt'), 'utf8'), 'id=5 n=2 cpus=1 name=slurmish job=job\n');
  });

  it('dsg submit - reads the spec from standard input, inputs relative to the current directory', async () => {
    writeFileSync(join(dir, 'greeting.txt'), 'hello');
    const r = await dsg(['submit', '-', '--wait', '--json'], { stdin: 'name: from-stdin\nscript: cat greeting.txt\ninputs: [greeting.txt]\nresources: { memory: 16Mi }\n' });
    assert.equal(r.code, 0, r.stderr);
    const job = JSON.parse(r.stdout) as JobV1;
    assert.equal(job.state, 'succeeded');
    assert.equal((await dsg(['logs', job.id])).stdout, 'hello');
    const empty = await dsg(['submit', '-'], { stdin: '' });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /standard input was empty/);
    const broken = await dsg(['submit', '-'], { stdin: 'name: [unclosed\n' });
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /<stdin>:\d+:\d+: YAML syntax error/);
  });

  it('dsg token create | list | revoke: a submitter token sees its project only, says who submitted, and stops at revoke', async () => {
    const c = await dsg(['token', 'create', '--role', 'submitter', '--project', 'climate', '--name', 'student-7', '--expires', '30d']);
    assert.equal(c.code, 0, c.stderr);
    const secret = c.stdout.split('\n').find((l) => l.startsWith('dsg_submitter_'));
    assert.ok(secret, c.stdout);
    assert.match(c.stdout, /^student-7 tok_\w+: submitter of climate, expires in 30d$/m);
    assert.match(c.stderr, /shown only now/);
    assert.match(c.stderr, /dsg token revoke "student-7"/);
    const noProject = await dsg(['token', 'create', '--role', 'submitter']);
    assert.equal(noProject.code, 2);
    assert.match(noProject.stderr, /--project: a submitter token needs at least one --project NAME/);

    const student = { DSG_TOKEN: secret };
    const theirs = await submit({ name: 'not-yours', project: 'bio', script: 'true' }, false);
    const { job } = await new DsgClient({ baseUrl: coord.url, token: secret }).submitJob({ spec: { name: 'homework', project: 'climate', script: 'true' } });
    const shown = await dsg(['job', job.id], { env: student });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /by student-7 \(submitter\)/);
    assert.match(shown.stdout, /^project {4}climate$/m);
    assert.match((await dsg(['job', job.id])).stdout, /by student-7 \(submitter\)/, 'the admin sees who submitted it too');
    const hidden = await dsg(['job', theirs.id], { env: student });
    assert.equal(hidden.code, 1);
    assert.match(hidden.stderr, /not found/);
    const wrongProject = await new DsgClient({ baseUrl: coord.url, token: secret }).submitJob({ spec: { name: 'x', project: 'bio', script: 'true' } }).catch((e: Error) => e);
    assert.match(String(wrongProject), /may submit only to project "climate", not to "bio"/);

    const l = await dsg(['token', 'list']);
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, /^student-7 +tok_\w+ +submitter +climate +\S.* +in 30d +\S.* +active$/m);
    assert.equal(l.stdout.includes(secret), false, 'no secret in the list');
    const lj = JSON.parse((await dsg(['token', 'list', '--json'])).stdout) as { items: Array<{ name: string; lastUsedAt: string | null; role: string }> };
    assert.ok(lj.items.find((t) => t.name === 'student-7')?.lastUsedAt, 'last used is recorded');
    assert.equal(JSON.stringify(lj).includes('dsg_'), false, 'no secret in the JSON either');

    const r = await dsg(['token', 'revoke', 'student-7']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^revoked submitter token "student-7"/);
    const after = await dsg(['jobs'], { env: student });
    assert.equal(after.code, 1);
    assert.match(after.stderr, /revoked/);
  });

  it('a task that ran and wrote nothing', async () => {
    const quiet = await submit({ name: 'silent', script: 'true', resources: { cpu: 1, memory: '16Mi' } });
    const r = await dsg(['logs', quiet.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^task 0 ran but wrote no output \(it succeeded\)$/m);
    const f = await dsg(['logs', quiet.id, '--follow']);
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stderr, /^task 0 ran but wrote no output \(it succeeded\)$/m);
  });

  it('dsg wait exits 0 for a job that succeeded, 1 for one that failed, and prints the job with --json', async () => {
    const ok = await submit({ name: 'ok', script: 'true', resources: { cpu: 1, memory: '16Mi' } }, false);
    const w = await dsg(['wait', ok.id, '--json']);
    assert.equal(w.code, 0, w.stderr);
    const final = JSON.parse(w.stdout) as JobV1;
    assert.deepEqual([final.id, final.state, final.counts.succeeded], [ok.id, 'succeeded', 1]);
    const bad = await submit({ name: 'bad', script: 'exit 4', resources: { cpu: 1, memory: '16Mi' } }, false);
    const b = await dsg(['wait', bad.id]);
    assert.equal(b.code, 1, b.stderr);
    assert.match(b.stderr, /failed: 0 succeeded, 1 failed, 0 cancelled of 1/);
    const missing = await dsg(['wait', 'job_01aaaaaaaaaaaaaaaaaaaaaaaa']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not found/);
  });

  it('writing to a closed stdout (`dsg … | head`) ends every command quietly with 0', async () => {
    const job = (await client.listJobs({ name: 'plain' })).items[0];
    const commands = [['spec', 'schema'], ['jobs'], ['jobs', '--json'], ['job', job!.id], ['tasks', job!.id], ['logs', job!.id], ['nodes'], ['outputs', job!.id, '--json'], ['wait', job!.id, '--json'], ['--help']];
    const runs = await Promise.all(commands.map((args) => dsg(args, { closeStdout: true })));
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, `dsg ${commands[i]!.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /EPIPE|Error/, `dsg ${commands[i]!.join(' ')}`);
    });
  });

  it('`dsg logs | head -n 1` on a long log: head gets its line, dsg exits 0', async () => {
    const big = await submit({ name: 'big-log', script: 'seq 1 200000', resources: { cpu: 1, memory: '64Mi' } });
    const r = await new Promise<Run>((resolve) => {
      const p = spawn('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" logs ${big.id} | head -n 1`], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr!.on("data", (d) => (stderr += d));
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(r.stdout, '1\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  });

  it('a coordinator URL without a scheme is read as http://', async () => {
    const hostPort = coord.url.replace(/^http:\/\//, '');
    for (const u of [hostPort, hostPort.replace('127.0.0.1', 'localhost')]) {
      const r = await dsg(['nodes', '--json'], { env: { DSG_COORDINATOR: u } });
      assert.equal(r.code, 0, `${u}: ${r.stderr}`);
      assert.equal((JSON.parse(r.stdout) as { items: Array<{ name: string }> }).items[0]!.name, 'lab-pc-7');
    }
    const f = await dsg(['--coordinator', hostPort, 'jobs', '-n', '1']);
    assert.equal(f.code, 0, f.stderr);
  });

  it('a bad URL is refused before anything is sent, naming where it came from', async () => {
    const flag = await dsg(['--coordinator', `ftp://${coord.url.slice(7)}`, 'jobs']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /^dsg: --coordinator: the scheme must be http:\/\/ or https:\/\/, not ftp:\/\//);
    const envBad = await dsg(['jobs'], { env: { DSG_COORDINATOR: 'my grid' } });
    assert.equal(envBad.code, 2);
    assert.match(envBad.stderr, /^dsg: DSG_COORDINATOR: a URL cannot contain spaces/);
    mkdirSync(join(home, '.config', 'dsg'), { recursive: true });
    const file = join(home, '.config', 'dsg', 'config.json');
    writeFileSync(file, JSON.stringify({ coordinator: 'localhost:99999', token: 'x' }));
    try {
      const fromFile = await dsg(['jobs'], { env: { DSG_COORDINATOR: '', DSG_TOKEN: '' } });
      assert.equal(fromFile.code, 2);
      assert.ok(fromFile.stderr.startsWith(`dsg: ${file}: coordinator: not a valid URL`), fromFile.stderr);
    } finally {
      rmSync(file);
    }
  });

  it('dsg agent refuses an unknown --isolation and a too small --max-processes before joining, naming both', async () => {
    const r = await dsg(['agent', '--coordinator', coord.url, '--state-dir', join(dir, 'agent-bad'), '--isolation', 'total', '--max-processes', '3'], { env: { DSG_JOIN_TOKEN: coord.joinToken } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--isolation: expected none, cgroups or sandbox, got "total"/);
    assert.match(r.stderr, /--max-processes: expected a whole number, at least 16/);
  });

  it('an unreachable coordinator: exit 3, the resolved URL and where it came from', async () => {
    const port = await closedPort();
    const r = await dsg(['jobs'], { env: { DSG_COORDINATOR: `127.0.0.1:${port}` } });
    assert.equal(r.code, 3);
    assert.ok(r.stderr.includes(`cannot reach the coordinator at http://127.0.0.1:${port}: ECONNREFUSED`), r.stderr);
    assert.ok(r.stderr.includes(`("127.0.0.1:${port}" from the DSG_COORDINATOR environment variable, read as http://127.0.0.1:${port})`), r.stderr);
  });

  it('a rejected token names its source and what to do', async () => {
    const e = await dsg(['jobs'], { env: { DSG_TOKEN: 'dsg_admin_wrong' } });
    assert.equal(e.code, 1);
    assert.match(e.stderr, /rejected the token: invalid token\n {2}the token came from the DSG_TOKEN environment variable \(the URL came from the DSG_COORDINATOR environment variable\)\n {2}to fix: set DSG_TOKEN to the adminToken/);
    const f = await dsg(['--token', 'wrong', 'jobs']);
    assert.match(f.stderr, /the token came from the --token flag/);
    const node = await dsg(['--token', coord.joinToken, 'jobs']);
    assert.match(node.stderr, /refused: a node token cannot do this.*\n {2}the token came from the --token flag; dsg commands need an admin, submitter or reader token/);
    mkdirSync(join(home, '.config', 'dsg'), { recursive: true });
    const file = join(home, '.config', 'dsg', 'config.json');
    writeFileSync(file, JSON.stringify({ coordinator: coord.url, token: 'dsg_admin_from_an_old_grid' }));
    try {
      const old = await dsg(['jobs'], { env: { DSG_COORDINATOR: '', DSG_TOKEN: '' } });
      assert.equal(old.code, 1);
      assert.ok(old.stderr.includes(`the token came from the config file ${file}\n`), old.stderr);
      assert.match(old.stderr, /start the grid again \(`npm start` or `dsg up` rewrites it\)/);
    } finally {
      rmSync(file);
    }
  });

  it('pluralises: 1 task, 1 core, 1 input file', async () => {
    writeFileSync(join(dir, 'in.txt'), 'x');
    writeFileSync(join(dir, 'one.yaml'), 'name: one\nscript: cat in.txt\ninputs: [in.txt]\nresources: { cpu: 1 }\nretries: 1\n');
    const r = await dsg(['spec', 'check', join(dir, 'one.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok — 1 task, 1 core and 256Mi each, 1 input file, timeout 1h, 1 retry$/m);
    const s = await dsg(['submit', join(dir, 'one.yaml')]);
    assert.match(s.stderr, /uploading 1 input file \(1B\)/);
    assert.match(s.stderr, /submitted job_\w+ \(one, 1 task\)/);
  });

  it('every command has --help with examples, and every read command takes --json', async () => {
    const top = await dsg(['--help']);
    const commands = [...top.stdout.matchAll(/^ {2}([a-z]+)(?: \[options\]| <)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    assert.ok(commands.includes('wait'), top.stdout);
    const servers = ['up', 'coordinator', 'agent'];
    // spec: checks files; openapi: its output is JSON already; snakemake: answers Snakemake in its own exact words.
    const writes = new Set([...servers, 'spec', 'openapi', 'snakemake']);
    const helps = await Promise.all(commands.map((c) => dsg([c, '--help'])));
    for (const [i, c] of commands.entries()) {
      const h = helps[i]!;
      assert.equal(h.code, 0, c);
      if (c !== 'spec') assert.match(h.stdout, /Examples?:/, `dsg ${c} --help has examples`);
      if (!writes.has(c)) assert.match(h.stdout, /--json/, `dsg ${c} takes --json`);
    }
    assert.match((await dsg(['spec', 'check', '--help'])).stdout, /--json/);
    const help = (c: string) => helps[commands.indexOf(c)]!.stdout;
    assert.match(help('wait'), /Exit codes: 0 the job succeeded · 1 it failed or was cancelled · 3 the coordinator stayed unreachable/);
    for (const c of ['wait', 'submit', 'logs']) assert.match(help(c), /--give-up-after <duration>/, c);
  });
});
