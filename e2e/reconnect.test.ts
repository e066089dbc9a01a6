// Waiting commands ride out a coordinator restart: `dsg wait`, `dsg submit --wait` and `dsg logs --follow` are
// running when the coordinator is SIGKILLed and started again on the same data dir and port; each says once that
// the coordinator is unreachable, carries on when it is back, and exits 0 when its job finishes. A waiter with a
// short give-up time exits 3 during the outage, saying how long it tried.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { DSG, Sandbox, type Credentials, freePort } from './harness.js';


interface JobV1 { id: string; state: string; counts: Record<string, number>; finishedAt: string | null }

/** A dsg command running in the background, its streams kept apart. */
interface Running {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exit: Promise<number | null>;
}

describe('waiting commands across a coordinator restart', { timeout: 120_000 }, () => {
  let sb: Sandbox;
  const running: Running[] = [];
  afterEach(async () => {
    for (const r of running) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
    await Promise.all(running.map((r) => r.exit));
    running.length = 0;
    await sb.cleanup();
  });

  function startDsg(args: string[], env: Record<string, string>): Running {
    const proc = spawn(process.execPath, [DSG, ...args], { cwd: sb.dir, env: sb.env(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (err += d));
    const exit = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
    const r: Running = { proc, stdout: () => out, stderr: () => err, exit };
    running.push(r);
    return r;
  }

  const coordinatorArgs = (data: string, port: number) => ['coordinator', '--data-dir', data, '--port', String(port), '--host', '127.0.0.1', '--heartbeat', '1', '--node-timeout', '10'];

  it('dsg wait, submit --wait and logs --follow reconnect with backoff and exit 0 when the job is done', async () => {
    sb = new Sandbox();
    const data = join(sb.dir, 'data');
    const port = await freePort();
    let coord = sb.start(coordinatorArgs(data, port));
    const creds: Credentials = await sb.credentials(data, coord.output);
    sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'agent'), '--name', 'a1', '--cpus', '2']);
    await sb.waitFor('agent online', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'), 30_000, coord.output);
    const env = { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken };

    // Job A: six tasks that each sleep a little (three at a time). Job B: one task that writes a line every 0.4 s.
    const { job: a } = await sb.api<{ job: JobV1 }>(creds, 'POST', '/jobs', { spec: { name: 'sleepers', script: 'sleep 1.5; echo done $DSG_TASK_INDEX', array: 6, resources: { cpu: 0.5, memory: '16Mi' } } });
    const { job: b } = await sb.api<{ job: JobV1 }>(creds, 'POST', '/jobs', { spec: { name: 'chatty', script: 'for i in $(seq 1 24); do echo "line $i"; sleep 0.4; done; echo end', resources: { cpu: 0.5, memory: '16Mi' } } });
    const specC = join(sb.dir, 'c.yaml');
    writeFileSync(specC, 'name: late\nscript: sleep 1; echo late\nresources: { cpu: 0.5, memory: 16Mi }\n');

    const waiter = startDsg(['wait', a.id], env);
    const follower = startDsg(['logs', b.id, '--follow'], env);
    const submitter = startDsg(['submit', specC, '--wait'], env);
    const diag = () => `wait: ${waiter.stderr()}\nfollow: ${follower.stdout()}${follower.stderr()}\nsubmit: ${submitter.stderr()}\ncoordinator: ${coord.output()}`;
    await sb.waitFor('all three waiting', () => waiter.stderr().includes(`${a.id}: `) && follower.stdout().includes('line 1') && submitter.stderr().includes('submitted'), 30_000, diag);

    const killedAt = Date.now();
    sb.kill(coord.proc, 'SIGKILL');
    await new Promise((r) => coord.proc.once('exit', r));
    // During the outage, a waiter with a short give-up time gives up, saying so.
    const t0 = Date.now();
    const quick = await sb.run(['wait', a.id, '--give-up-after', '1s'], { env });
    const quickMs = Date.now() - t0;
    assert.equal(quick.code, 3, quick.stderr);
    assert.match(quick.stderr, /still trying, for up to 1s \(from --give-up-after\)/);
    assert.match(quick.stderr, /gave up: the coordinator at http:\/\/127\.0\.0\.1:\d+ has been unreachable for 1(?:\.\d)?s, longer than the give-up time of 1s \(from --give-up-after\)/);
    assert.match(quick.stderr, new RegExp(`dsg wait ${a.id}\` waits again`));
    await sb.waitFor('the waiters noticed', () => [waiter, follower, submitter].every((r) => r.stderr().includes('is unreachable')), 10_000, diag);
    coord = sb.start(coordinatorArgs(data, port));
    const downMs = Date.now() - killedAt;

    const codes = await Promise.all([waiter.exit, follower.exit, submitter.exit]);
    assert.deepEqual(codes, [0, 0, 0], diag());
    for (const [name, r] of [['wait', waiter], ['logs --follow', follower], ['submit --wait', submitter]] as const) {
      const err = r.stderr();
      assert.equal(err.match(/is unreachable \([^)]+\); still trying, for up to 5m \(change it with --give-up-after or DSG_GIVE_UP_AFTER\)/g)?.length, 1, `${name} said once that it keeps trying:\n${err}`);
      assert.equal(err.match(/the coordinator is back \(unreachable for [\d.]+s\); carrying on/g)?.length, 1, `${name} said once that it carries on:\n${err}`);
    }
    assert.match(waiter.stderr(), new RegExp(`${a.id} succeeded: 6 succeeded, 0 failed, 0 cancelled of 6`));
    assert.match(submitter.stderr(), /succeeded: 1 succeeded, 0 failed, 0 cancelled of 1/);
    // Lines the task wrote while the coordinator was down are not kept (agents drop logs while disconnected);
    // the follower prints what the coordinator has, from before and after the outage, to the task's end.
    const lines = follower.stdout().trim().split('\n');
    assert.equal(lines[0], 'line 1');
    assert.equal(lines.at(-1), 'end');
    const final = await sb.api<JobV1>(creds, 'GET', `/jobs/${a.id}`);
    assert.equal(final.state, 'succeeded');
    process.stderr.write(`# coordinator down ${downMs} ms; \`dsg wait --give-up-after 1s\` exited 3 after ${quickMs} ms\n`);
  });
});
