// Workflows end to end: a coordinator and two agents, each with its own state and work directory, so files move
// between stages only through the coordinator. A stage's output reaches the next stage on another node; the
// workflow examples run through the CLI; a failing middle stage skips what follows and `dsg retry` re-runs only
// what failed; `dsg cancel` cascades; `dsg outputs` writes one folder per stage (or as publish: says); a bad
// spec is refused with exit 2 and its path; a corrupted cached artifact is fetched again.
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, Sandbox, type Credentials } from './harness.js';

interface Counts { queued: number; assigned: number; running: number; succeeded: number; failed: number; cancelled: number }
interface Stage { name: string; jobId: string; state: string; taskCount: number; counts: Counts; skipReason: string | null; waiting: { never: boolean; reason: string } | null }
interface Workflow { id: string; name: string; state: string; finishedAt: string | null; stages: Stage[]; publish: Record<string, string> }
interface Task { index: number; state: string; attempts: number; nodeId: string | null }
interface Attempt { nodeId: string; state: string; failure: { kind: string; reason: string } | null }
interface Node { id: string; name: string; state: string }

describe('workflows on a coordinator and two agents that share no files', { timeout: 180_000 }, () => {
  const sb = new Sandbox();
  const data = join(sb.dir, 'data');
  let creds: Credentials;
  let env: Record<string, string>;
  let coordinator: ReturnType<Sandbox['start']>;
  const agents = new Map<string, ReturnType<Sandbox['start']>>();
  const diag = (): string => [['coordinator', coordinator], ...agents].map(([n, p]) => `--- ${String(n)}\n${(p as ReturnType<Sandbox['start']>).output().slice(-3000)}`).join('\n');

  const startAgent = (name: string, memory: string): void => {
    agents.set(name, sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, `agent-${name}`), '--name', name, '--cpus', '2', '--memory', memory]));
  };
  const online = async (n: number): Promise<Node[]> =>
    sb.waitFor(`${n} node(s) online`, async () => {
      const nodes = (await sb.api<{ items: Node[] }>(creds, 'GET', '/nodes')).items.filter((x) => x.state === 'online');
      return nodes.length === n ? nodes : null;
    }, 30_000, diag);
  const workflow = (id: string): Promise<Workflow> => sb.api<Workflow>(creds, 'GET', `/workflows/${id}`);
  const finished = (id: string, ms = 60_000): Promise<Workflow> =>
    sb.waitFor(`workflow ${id} to finish`, async () => {
      const wf = await workflow(id);
      return wf.finishedAt ? wf : null;
    }, ms, diag);
  const tasks = async (jobId: string): Promise<Task[]> => (await sb.api<{ items: Task[] }>(creds, 'GET', `/jobs/${jobId}/tasks?limit=500`)).items;
  const dsg = (args: string[], timeoutMs = 90_000) => sb.run(args, { env, timeoutMs });
  const byName = (wf: Workflow) => Object.fromEntries(wf.stages.map((s) => [s.name, s]));

  before(async () => {
    coordinator = sb.start(['coordinator', '--data-dir', data, '--host', '127.0.0.1', '--port', '0', '--heartbeat', '1', '--node-timeout', '5']);
    creds = await sb.credentials(data, diag);
    env = { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken };
    startAgent('small', '1Gi');
    await online(1);
  });
  after(async () => {
    await sb.cleanup();
  });

  // Runs first: only the small agent is up.
  it('a stage that fits only on the second agent gets the first stage\'s output through the coordinator', async () => {
    const dir = join(sb.dir, 'relay');
    mkdirSync(dir);
    writeFileSync(join(dir, 'relay.yaml'), `
name: relay
stages:
  A:
    script: mkdir -p out && echo "payload $(od -An -N8 -tx1 /dev/urandom | tr -d ' \\n')" > out/a.txt
    outputs: [out/a.txt]
    resources: { memory: 256Mi }
  B:
    needs: [A]
    script: tr a-z A-Z < out/a.txt > b.txt && wc -c < out/a.txt >> b.txt
    inputs: [{ from: A }]
    outputs: [b.txt]
    resources: { memory: 1536Mi }
`);
    const sub = await dsg(['submit', join(dir, 'relay.yaml'), '-q']);
    assert.equal(sub.code, 0, sub.stderr);
    const id = sub.stdout.trim();
    assert.match(id, /^wf_/);
    // A runs on the small node; B is queued and says no node can ever hold it (yet).
    const waiting = await sb.waitFor('A done, B queued', async () => {
      const wf = await workflow(id);
      const s = byName(wf);
      return s['A']!.state === 'succeeded' && s['B']!.state === 'queued' && s['B']!.waiting ? s['B']! : null;
    }, 30_000, diag);
    assert.equal(waiting.waiting?.never, true, JSON.stringify(waiting.waiting));
    assert.match(waiting.waiting!.reason, /memory/i);

    startAgent('big', '2Gi');
    const nodes = await online(2);
    const wf = await finished(id);
    assert.equal(wf.state, 'succeeded', diag());
    const s = byName(wf);
    const [aTask] = await tasks(s['A']!.jobId);
    const [bTask] = await tasks(s['B']!.jobId);
    const nodeName = (nid: string | null) => nodes.find((n) => n.id === nid)?.name;
    assert.equal(nodeName(aTask!.nodeId), 'small');
    assert.equal(nodeName(bTask!.nodeId), 'big');
    const attempts = (await sb.api<{ items: Attempt[] }>(creds, 'GET', `/jobs/${s['B']!.jobId}/tasks/0/attempts`)).items;
    assert.deepEqual(attempts.map((a) => [nodeName(a.nodeId), a.state]), [['big', 'succeeded']]);

    // dsg outputs wf_… --to DIR: one folder per stage (no publish: here).
    const out = join(sb.dir, 'relay-out');
    const o = await dsg(['outputs', id, '--to', out]);
    assert.equal(o.code, 0, o.stderr);
    const a = readFileSync(join(out, 'A', 'out', 'a.txt'), 'utf8');
    assert.match(a, /^payload [0-9a-f]{16}\n$/);
    assert.equal(readFileSync(join(out, 'B', 'b.txt'), 'utf8'), `${a.toUpperCase()}${Buffer.byteLength(a)}\n`);
    // The artifact was fetched by the big agent into its own cache; the small agent only produced it.
    const sha = (await sb.api<{ items: Array<{ path: string; sha256: string }> }>(creds, 'GET', `/jobs/${s['A']!.jobId}/outputs`)).items[0]!.sha256;
    assert.ok(existsSync(join(sb.dir, 'agent-big', 'blobs', sha)), 'cached by the agent that ran B');
    assert.ok(!existsSync(join(sb.dir, 'agent-small', 'blobs', sha)), 'the producing agent never downloaded it');
  });

  it('a corrupted cached artifact is detected by the agent and fetched again', async () => {
    // The big agent has the relay's A output in its cache. Damage it (same size), then run a job that needs the
    // same content on the big agent: the task must see the original bytes.
    const blobs = join(sb.dir, 'agent-big', 'blobs');
    const relay = (await sb.api<{ items: Workflow[] }>(creds, 'GET', '/workflows')).items.find((w) => w.name === 'relay')!;
    const aJob = relay.stages.find((x) => x.name === 'A')!.jobId;
    const { sha256 } = (await sb.api<{ items: Array<{ sha256: string }> }>(creds, 'GET', `/jobs/${aJob}/outputs`)).items[0]!;
    const cached = join(blobs, sha256);
    const original = readFileSync(cached, 'utf8');
    writeFileSync(cached, 'X'.repeat(statSync(cached).size));
    const dir = join(sb.dir, 'cache');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.txt'), original);
    writeFileSync(join(dir, 'copy.yaml'), 'name: copy\nscript: cat a.txt > copy.txt\ninputs: [a.txt]\noutputs: [copy.txt]\nresources: { memory: 1536Mi }\n');
    const r = await dsg(['submit', join(dir, 'copy.yaml'), '--wait', '--json']);
    assert.equal(r.code, 0, `${r.stderr}\n${diag()}`);
    const job = JSON.parse(r.stdout) as { id: string };
    const o = await dsg(['outputs', job.id, '--to', join(dir, 'out')]);
    assert.equal(o.code, 0, o.stderr);
    assert.equal(readFileSync(join(dir, 'out', 'copy.txt'), 'utf8'), original);
    assert.equal(readFileSync(cached, 'utf8'), original, 'the cache holds the right content again');
    assert.match(agents.get('big')!.output(), /is corrupted/);
  });

  it('runs the map/reduce example: π within 4 standard errors, outputs where publish: says', async () => {
    cpSync(join(ROOT, 'examples'), join(sb.dir, 'examples'), { recursive: true });
    const r = await dsg(['submit', join(sb.dir, 'examples', 'mapreduce', 'mapreduce.yaml'), '--set', 'SAMPLES=40000', '--wait', '--json']);
    assert.equal(r.code, 0, `${r.stderr}\n${diag()}`);
    const wf = JSON.parse(r.stdout) as Workflow;
    assert.equal(wf.state, 'succeeded');
    assert.deepEqual(wf.publish, { simulate: 'simulations', reduce: 'estimate' });
    const out = join(sb.dir, 'mr-out');
    const o = await dsg(['outputs', wf.id, '--to', out]);
    assert.equal(o.code, 0, o.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['estimate', 'simulations']);
    const sims = readdirSync(join(out, 'simulations', 'sims')).map((f) => JSON.parse(readFileSync(join(out, 'simulations', 'sims', f), 'utf8')) as { inside: number; samples: number; seed: number });
    assert.equal(sims.length, 16);
    assert.equal(new Set(sims.map((x) => x.seed)).size, 16, 'each task its own seed');
    assert.ok(sims.every((x) => x.samples === 40000), 'the --set value reached every task');
    const inside = sims.reduce((n, x) => n + x.inside, 0);
    const n = sims.reduce((k, x) => k + x.samples, 0);
    const p = inside / n;
    const pi = 4 * p;
    const se = 4 * Math.sqrt((p * (1 - p)) / n);
    assert.ok(Math.abs(pi - Math.PI) < 4 * se, `π ≈ ${pi} ± ${se}`);
    const text = readFileSync(join(out, 'estimate', 'pi.txt'), 'utf8');
    const m = /^pi ≈ (\d\.\d+) ± (\d\.\d+) from 16 simulations, 640,000 samples .*off by (\d+\.\d) standard errors\)\n$/.exec(text);
    assert.ok(m, text);
    assert.ok(Math.abs(Number(m[1]) - pi) < 1e-6, 'the reduce stage combined all 16 simulations');
    assert.ok(Number(m[3]) < 4, text);
  });

  it('runs the climate example: per-item chains and a summary of all 8 stations', async () => {
    const r = await dsg(['submit', join(sb.dir, 'examples', 'climate', 'climate.yaml'), '--set', 'YEARS=20', '--wait', '--json']);
    assert.equal(r.code, 0, `${r.stderr}\n${diag()}`);
    const wf = JSON.parse(r.stdout) as Workflow;
    assert.equal(wf.state, 'succeeded');
    assert.deepEqual(wf.stages.map((s) => [s.name, s.counts.succeeded]), [['generate', 8], ['clean', 8], ['trend', 8], ['extremes', 1], ['summary', 1]]);
    const out = join(sb.dir, 'climate-out');
    const o = await dsg(['outputs', wf.id, '--to', out]);
    assert.equal(o.code, 0, o.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['clean', 'extremes', 'generate', 'summary', 'trend']);
    const summary = readFileSync(join(out, 'summary', 'summary.txt'), 'utf8');
    const stations = ['oslo', 'lima', 'cairo', 'perth', 'quito', 'tromso', 'dakar', 'lhasa'];
    for (const st of stations) assert.match(summary, new RegExp(`^${st} +\\d+ +-?\\d+\\.\\d{3} +-?\\d+\\.\\d{2}$`, 'm'), `${st} in\n${summary}`);
    assert.match(summary, /^8 stations; largest error/m);
    assert.deepEqual(readdirSync(join(out, 'trend', 'trend')).sort(), stations.map((x) => `${x}.json`).sort());
  });

  it('every example in examples/ is run by an end-to-end test', () => {
    // pi, epidemic and stations run in grid.test.ts; the workflows here. A new example needs a test too.
    const yamls = readdirSync(join(ROOT, 'examples')).filter((d) => readdirSync(join(ROOT, 'examples', d)).some((f) => f.endsWith('.yaml'))).sort();
    assert.deepEqual(yamls, ['climate', 'epidemic', 'mapreduce', 'pi', 'stations']);
  });

  it('a failing middle stage: --wait exits 1 and the next stage reads skipped; after the fix, retry --wait exits 0 without re-running what succeeded', async (t) => {
    const dir = join(sb.dir, 'flaky');
    mkdirSync(dir);
    // The "fix" is a file the task checks for: outside /tmp, which a sandboxed task sees as its own empty tmpfs, in
    // a directory the task's unprivileged user may read.
    const shared = mkdtempSync(join('/var/tmp', 'dsg-e2e-flaky-'));
    chmodSync(shared, 0o755);
    t.after(() => rmSync(shared, { recursive: true, force: true }));
    const marker = join(shared, 'fixed');
    writeFileSync(join(dir, 'flaky.yaml'), `
name: flaky
params: { MARKER: "${marker}" }
stages:
  first:
    array: 3
    script: mkdir -p out && echo "part $DSG_TASK_INDEX" > "out/$DSG_TASK_INDEX.txt"
    outputs: ["out/*.txt"]
  middle:
    needs: [first]
    inputs: [{ from: first }]
    script: |
      test -f "$MARKER" || { echo "not fixed yet: $MARKER is missing" >&2; exit 3; }
      cat out/*.txt > all.txt
    outputs: [all.txt]
  last:
    needs: [middle]
    inputs: [{ from: middle }]
    script: wc -l < all.txt > count.txt
    outputs: [count.txt]
`);
    const r = await dsg(['submit', join(dir, 'flaky.yaml'), '--wait', '--json']);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const failed = JSON.parse(r.stdout) as Workflow;
    assert.equal(failed.state, 'failed');
    assert.deepEqual(failed.stages.map((s) => [s.name, s.state, s.skipReason]), [
      ['first', 'succeeded', null],
      ['middle', 'failed', null],
      ['last', 'skipped', 'it needs "middle", which failed'],
    ]);
    const show = await dsg(['workflow', failed.id]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /last +skipped .*skipped: it needs "middle", which failed/);
    assert.match(show.stderr, new RegExp(`dsg retry ${failed.id}`));

    writeFileSync(marker, '');
    const again = await dsg(['retry', failed.id, '--wait', '--json']);
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
    const done = JSON.parse(again.stdout) as Workflow;
    assert.equal(done.state, 'succeeded');
    const s = byName(done);
    assert.deepEqual((await tasks(s['first']!.jobId)).map((t) => [t.index, t.state, t.attempts]), [[0, 'succeeded', 1], [1, 'succeeded', 1], [2, 'succeeded', 1]]);
    assert.deepEqual((await tasks(s['middle']!.jobId)).map((t) => t.attempts), [2]);
    const out = join(dir, 'out');
    assert.equal((await dsg(['outputs', done.id, '--to', out])).code, 0);
    assert.equal(readFileSync(join(out, 'last', 'count.txt'), 'utf8').trim(), '3');
    assert.equal(readFileSync(join(out, 'middle', 'all.txt'), 'utf8'), 'part 0\npart 1\npart 2\n');
  });

  it('dsg cancel wf_… stops running tasks and cancels the stages that have not started', async () => {
    const token = `dsg-e2e-nap-${process.pid}`;
    const spec = join(sb.dir, 'nap.yaml');
    writeFileSync(spec, `name: nap\nstages:\n  nap:\n    array: 2\n    script: sleep 120 # ${token}\n    resources: { cpu: 0.5, memory: 64Mi }\n  after:\n    needs: [nap]\n    script: echo never\n`);
    const sub = await dsg(['submit', spec, '-q']);
    assert.equal(sub.code, 0, sub.stderr);
    const id = sub.stdout.trim();
    await sb.waitFor('both nap tasks running', async () => byName(await workflow(id))['nap']!.counts.running === 2, 30_000, diag);
    const c = await dsg(['cancel', id]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, new RegExp(`${id}: .*stopping 2 running tasks`));
    const wf = await finished(id, 20_000);
    assert.equal(wf.state, 'cancelled');
    const s = byName(wf);
    assert.deepEqual([s['nap']!.state, s['nap']!.counts.cancelled, s['after']!.state, s['after']!.skipReason], ['cancelled', 2, 'cancelled', 'the workflow was cancelled']);
    await sb.waitFor('the sleeping processes are gone', () => {
      for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
        try {
          if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(token)) return false;
        } catch {
          /* gone */
        }
      }
      return true;
    }, 10_000);
  });

  // Runs last: it stops one of the two agents.
  it('an agent stopped while it runs a stage: the task runs again on the other agent and nothing is skipped', async () => {
    const spec = join(sb.dir, 'handover.yaml');
    writeFileSync(spec, 'name: handover\nstages:\n  slow:\n    script: sleep 2 && echo done > done.txt\n    outputs: [done.txt]\n    resources: { memory: 64Mi }\n  next:\n    needs: [slow]\n    inputs: [{ from: slow }]\n    script: cat done.txt\n    resources: { memory: 64Mi }\n');
    const sub = await dsg(['submit', spec, '-q']);
    assert.equal(sub.code, 0, sub.stderr);
    const id = sub.stdout.trim();
    const slow = byName(await workflow(id))['slow']!;
    const first = await sb.waitFor('slow running', async () => (await tasks(slow.jobId)).find((t) => t.state === 'running' && t.nodeId), 30_000, diag);
    const nodes = (await sb.api<{ items: Node[] }>(creds, 'GET', '/nodes')).items;
    const victim = nodes.find((n) => n.id === first.nodeId)!.name;
    // `kill PID` (or a service manager stopping it): the agent alone gets SIGTERM, stops its tasks and reports them
    // stopped before it leaves. (Ctrl-C in a terminal signals the whole process group, the launcher helper too.)
    const proc = agents.get(victim)!.proc;
    const exited = new Promise((r) => proc.once('exit', r));
    process.kill(proc.pid!, 'SIGTERM');
    await exited;
    const wf = await finished(id, 30_000);
    assert.equal(wf.state, 'succeeded', JSON.stringify(wf.stages));
    const attempts = (await sb.api<{ items: Attempt[] }>(creds, 'GET', `/jobs/${slow.jobId}/tasks/0/attempts`)).items;
    const nameOf = (nid: string) => nodes.find((n) => n.id === nid)?.name;
    // Its attempt on the stopped agent ended as a system failure (the agent reports it `agent_stopped` as it stops;
    // one it could not report is lost), never as cancelled or as the task's own failure.
    const last = attempts[attempts.length - 1]!;
    assert.deepEqual([nameOf(last.nodeId), last.state], [victim === 'big' ? 'small' : 'big', 'succeeded']);
    for (const a of attempts.slice(0, -1)) {
      assert.equal(nameOf(a.nodeId), victim);
      assert.ok(
        (a.state === 'failed' && a.failure?.kind === 'system' && a.failure.reason === 'agent_stopped') || a.state === 'lost',
        `attempt on the stopped agent: ${JSON.stringify(a)}`,
      );
    }
    assert.ok(attempts.length >= 2);
  });

  it('a bad workflow spec is refused by dsg submit with exit 2 and the path of the problem; nothing is queued', async () => {
    const count = async () => (await sb.api<{ items: unknown[] }>(creds, 'GET', '/workflows?limit=500')).items.length;
    const jobs = async () => (await sb.api<{ items: unknown[] }>(creds, 'GET', '/jobs?limit=500')).items.length;
    const [w0, j0] = [await count(), await jobs()];
    const spec = join(sb.dir, 'bad-wf.yaml');
    writeFileSync(spec, 'name: bad\nstages:\n  split:\n    script: "true"\n    outputs: [x]\n  align:\n    needs: [split]\n    script: "true"\n    inputs: [a.txt, { from: splitt }]\n');
    const r = await dsg(['submit', spec]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /stages\.align\.inputs\[1\]\.from: stage "splitt" does not exist \(did you mean "split"\?\)/);
    // The coordinator refuses it too, whatever the client: a cycle sent straight to the API.
    const res = await fetch(`${creds.url}/api/v1/workflows`, {
      method: 'POST',
      headers: { authorization: `Bearer ${creds.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ spec: { name: 'loop', stages: { a: { script: 'x', needs: ['b'] }, b: { script: 'x', needs: ['a'] } } } }),
    });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /stages\.a\.needs\[0\]: the stages form a cycle: a needs b, b needs a/);
    assert.deepEqual([await count(), await jobs()], [w0, j0]);
  });
});
